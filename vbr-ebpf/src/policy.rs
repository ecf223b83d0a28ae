//! The bridge's port flags and its macvlan-like modes (br_forward.c's should_deliver, the
//! learning gate of br_input.c): which ports a frame may reach, and whether its source is
//! learned. Shared by the XDP path, the flood egress program and the skb path.
use vbr_common::{
    fdb::FdbKey,
    port::{
        POLICY_BCAST_FLOOD, POLICY_FLOOD, POLICY_ISOLATED, POLICY_MCAST_FLOOD, POLICY_PRIVATE,
        POLICY_UPLINK, POLICY_VIA_UPLINK, PortInfo,
    },
    stats::Reason,
};

use crate::{
    fdb::{self, Destination},
    maps::{FDB, INFO},
    parse::is_multicast,
};

/// Learns `src` as seen on `port` where the port's flags and the bridge's mode allow. On the
/// uplink of a private, vepa or passthru bridge a MAC that lives behind a local port is a frame
/// the far side hairpinned back: never moved to the uplink, and in private mode dropped.
#[inline(always)]
pub fn learn_source(port: &PortInfo, ingress: u32, src: [u8; 6], vid: u16) -> Result<(), Reason> {
    if port.has(POLICY_UPLINK)
        && let Some(home) = FDB.get_ptr(FdbKey::new(src, vid))
        // SAFETY: the pointer comes from a successful map lookup.
        && unsafe { (*home).ifindex } != ingress
    {
        return if port.has(POLICY_PRIVATE) {
            Err(Reason::DropPrivate)
        } else {
            Ok(())
        };
    }
    fdb::learn(src, vid, ingress, port);
    Ok(())
}

/// Where a frame from `port` goes in this bridge's mode: in vepa, private and passthru modes
/// everything from a non-uplink port goes out the uplink (private: never to another local port).
#[inline(always)]
pub fn steer(port: &PortInfo, destination: Destination) -> Result<Destination, Reason> {
    if !port.has(POLICY_VIA_UPLINK) {
        return Ok(destination);
    }
    // SAFETY: the pointer comes from a successful map lookup.
    let uplink = INFO
        .get_ptr(0)
        .map_or(0, |info| unsafe { (*info).uplink_ifindex });
    if uplink == 0 {
        return Err(Reason::DropRedirect);
    }
    match destination {
        Destination::Port(egress) if egress != uplink && port.has(POLICY_PRIVATE) => {
            Err(Reason::DropPrivate)
        }
        _ => Ok(Destination::Port(uplink)),
    }
}

/// Whether a unicast frame from `from` may leave by `to`.
#[inline(always)]
pub fn unicast_allowed(from: &PortInfo, to: &PortInfo) -> Result<(), Reason> {
    if from.has(POLICY_ISOLATED) && to.has(POLICY_ISOLATED) {
        return Err(Reason::DropIsolated);
    }
    Ok(())
}

/// Whether a flooded copy of a frame from `dst`/`src` in `vid` that came in on `from` (if it is
/// a port) may leave by `to` (`to_ifindex`): the port must take that kind of flood, isolated
/// ports do not talk to each other, and a flood the uplink's far side hairpinned back does not
/// return to the port it came from.
#[inline(always)]
pub fn flood_allowed(
    from: Option<&PortInfo>,
    to: &PortInfo,
    to_ifindex: u32,
    dst: &[u8; 6],
    src: [u8; 6],
    vid: u16,
) -> bool {
    let wanted = if *dst == [0xff; 6] {
        POLICY_BCAST_FLOOD
    } else if is_multicast(dst) {
        POLICY_MCAST_FLOOD
    } else {
        POLICY_FLOOD
    };
    if !to.has(wanted) {
        return false;
    }
    let Some(from) = from else {
        return true;
    };
    if from.has(POLICY_ISOLATED) && to.has(POLICY_ISOLATED) {
        return false;
    }
    // SAFETY: the pointer comes from a successful map lookup.
    !(from.has(POLICY_UPLINK)
        && FDB
            .get_ptr(FdbKey::new(src, vid))
            .is_some_and(|home| unsafe { (*home).ifindex } == to_ifindex))
}
