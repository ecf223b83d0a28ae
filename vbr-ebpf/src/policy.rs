//! The bridge's port flags and its macvlan-like modes (br_forward.c's should_deliver, the
//! learning gate of br_input.c): which ports a frame may reach, and whether its source is
//! learned. Shared by the XDP path, the egress program and the skb path.
use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use vbr_common::{
    bridge::LinkLocal,
    fdb::FdbKey,
    port::{
        POLICY_BCAST_FLOOD, POLICY_FLOOD, POLICY_ISOLATED, POLICY_LEARNING, POLICY_MCAST_FLOOD,
        POLICY_PRIVATE, POLICY_UPLINK, POLICY_VIA_UPLINK, PortInfo,
    },
    stats::Reason,
};

use crate::{
    fdb::{self, Destination, Learning},
    maps::{FDB, INFO, STORM},
    parse::is_multicast,
};

/// Learns `src` as seen on `port` where the port's flags and the bridge's mode allow. On the
/// uplink of a private, vepa or passthru bridge a MAC that lives behind a local port is a frame
/// the far side hairpinned back: never moved to the uplink, and in private mode dropped. Says
/// whether the next frames of the source would learn anything (`fdb::Learning`).
#[inline(always)]
pub fn learn_source(
    port: &PortInfo,
    ingress: u32,
    src: [u8; 6],
    vid: u16,
    now: u64,
) -> Result<Learning, Reason> {
    if port.has(POLICY_UPLINK)
        && let Some(home) = FDB.get_ptr(FdbKey::new(src, vid))
        // SAFETY: the pointer comes from a successful map lookup.
        && unsafe { (*home).ifindex } != ingress
    {
        return if port.has(POLICY_PRIVATE) {
            Err(Reason::DropPrivate)
        } else {
            Ok(Learning::Settled)
        };
    }
    if !port.has(POLICY_LEARNING) {
        return Ok(Learning::Settled);
    }
    fdb::learn(src, vid, ingress, port, now)
}

/// What becomes of a frame for a link-local address (01:80:c2:00:00:00–0f: STP, LACP, LLDP),
/// which 802.1D bridges never forward: `Err` drops it or passes it to the host, as the bridge's
/// policy says; `Ok` forwards it like other multicast.
#[inline(always)]
pub fn link_local(dst: &[u8; 6]) -> Result<(), Reason> {
    if dst[..5] != [0x01, 0x80, 0xc2, 0x00, 0x00] || dst[5] > 0x0f {
        return Ok(());
    }
    // SAFETY: the pointer comes from a successful map lookup.
    match INFO
        .get_ptr(0)
        .map_or(0, |info| unsafe { (*info).link_local })
    {
        policy if policy == LinkLocal::Forward as u32 => Ok(()),
        policy if policy == LinkLocal::Host as u32 => Err(Reason::PassLinkLocal),
        _ => Err(Reason::DropLinkLocal),
    }
}

/// Storm control: whether `port` may flood one more frame now (a token bucket refilled at the
/// port's `flood_rate`, holding at most one second's worth). The bucket is shared by all CPUs
/// without atomics: under contention a few frames more may pass.
#[inline(always)]
pub fn storm_allows(port: &PortInfo) -> bool {
    if port.flood_rate == 0 {
        return true;
    }
    let Some(bucket) = STORM.get_ptr_mut(u32::from(port.slot)) else {
        return true;
    };
    // SAFETY: the pointer comes from a successful map lookup.
    let bucket = unsafe { &mut *bucket };
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let rate = u64::from(port.flood_rate);
    let elapsed = now.saturating_sub(bucket.refilled_ns).min(1_000_000_000);
    // rate frames per second = rate milli-frames per millisecond.
    let refill = elapsed / 1_000_000 * rate;
    if refill > 0 {
        bucket.milli_tokens = (bucket.milli_tokens + refill).min(rate * 1000);
        bucket.refilled_ns = now;
    }
    if bucket.milli_tokens < 1000 {
        return false;
    }
    bucket.milli_tokens -= 1000;
    true
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
/// a port) may leave by `to` (`to_ifindex`): as `takes_flood` says, and a flood the uplink's far
/// side hairpinned back does not return to the port it came from.
#[inline(always)]
pub fn flood_allowed(
    from: Option<&PortInfo>,
    to: &PortInfo,
    to_ifindex: u32,
    dst: &[u8; 6],
    src: [u8; 6],
    vid: u16,
) -> bool {
    let isolated = from.is_some_and(|from| from.has(POLICY_ISOLATED));
    if !takes_flood(isolated, to, flood_kind(dst)) {
        return false;
    }
    // SAFETY: the pointer comes from a successful map lookup.
    !from.is_some_and(|from| {
        from.has(POLICY_UPLINK)
            && FDB
                .get_ptr(FdbKey::new(src, vid))
                .is_some_and(|home| unsafe { (*home).ifindex } == to_ifindex)
    })
}

/// The `POLICY_*` bit of the floods a frame for `dst` belongs to.
#[inline(always)]
pub fn flood_kind(dst: &[u8; 6]) -> u16 {
    if *dst == [0xff; 6] {
        POLICY_BCAST_FLOOD
    } else if is_multicast(dst) {
        POLICY_MCAST_FLOOD
    } else {
        POLICY_FLOOD
    }
}

/// Whether port `to` takes floods of `kind` from a port (`isolated` or not): the port must take
/// that kind of flood, and isolated ports do not talk to each other.
#[inline(always)]
pub fn takes_flood(isolated: bool, to: &PortInfo, kind: u16) -> bool {
    to.has(kind) && !(isolated && to.has(POLICY_ISOLATED))
}
