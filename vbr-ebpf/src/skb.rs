//! The skb path (TC clsact ingress): the bridge for ports XDP cannot serve (macvlan, devices
//! without native XDP) and for frames native XDP hands over because their destination is such a
//! port. Same semantics as the XDP path; frames leave through `bpf_redirect` and, for floods,
//! one `bpf_clone_redirect` per port. The stack has already moved the outer VLAN tag into skb
//! metadata (skb_vlan_untag), and the tag stays there: tag push and pop only touch metadata,
//! and the egress device puts it back into the frame.
use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT},
    helpers::{bpf_clone_redirect, bpf_redirect, bpf_skb_vlan_pop, bpf_skb_vlan_push},
    programs::TcContext,
};
use network_types::eth::EthHdr;
use vbr_common::{
    MAX_SKB_FLOOD_PORTS,
    event::EventKind,
    port::{POLICY_HAIRPIN, POLICY_LOCAL_STACK, PortInfo, PortMode},
    stats::Reason,
    vlan::{ETH_P_8021Q, ETH_P_VBR_FLOOD, VLAN_VID_MASK},
};

use crate::{
    event,
    fdb::{self, Destination},
    maps::{PORTS, SLOTS},
    parse::{is_multicast, is_zero},
    policy,
    stats::{self, Direction},
    vlan::{self, Classified},
};

/// The TC action for the frame and the reason it is counted under; `None` for a frame native
/// XDP already counted when it passed it up (a link-local frame for the host).
#[inline(always)]
pub fn handle_skb(ctx: &TcContext) -> (i32, Option<Reason>) {
    let skb = ctx.skb.skb;
    // SAFETY: a valid skb context.
    let ingress = unsafe { (*skb).ifindex };
    let Some(port) = PORTS.get_ptr(ingress) else {
        return (TC_ACT_OK, Some(Reason::PassNotPort));
    };
    // SAFETY: the pointer comes from a successful map lookup.
    let port = unsafe { &*port };
    match switch_skb(ctx, skb, ingress, port) {
        Ok((action, reason)) => (action, Some(reason)),
        Err(Reason::PassLinkLocal) if port.mode == PortMode::XdpNative as u8 => (TC_ACT_OK, None),
        Err(reason @ (Reason::PassLinkLocal | Reason::PassToStack)) => (TC_ACT_OK, Some(reason)),
        Err(reason) => (TC_ACT_SHOT, Some(reason)),
    }
}

#[inline(always)]
fn switch_skb(
    ctx: &TcContext,
    skb: *mut __sk_buff,
    ingress: u32,
    port: &PortInfo,
) -> Result<(i32, Reason), Reason> {
    let eth: EthHdr = ctx.load(0).map_err(|_| Reason::DropMalformed)?;
    let (src, dst) = (eth.src_addr, eth.dst_addr);
    if is_multicast(&src) || is_zero(&src) {
        return Err(Reason::DropInvalidSource);
    }
    if u16::from_be(eth.ether_type) == ETH_P_VBR_FLOOD {
        return Err(Reason::DropMalformed);
    }
    policy::link_local(&dst)?;
    // SAFETY: a valid skb context.
    let (tagged, proto, tci) = unsafe { ((*skb).vlan_present, (*skb).vlan_proto, (*skb).vlan_tci) };
    // An 802.1ad tag the stack took out stays payload: only an 802.1Q tag classifies.
    let c_tag = tagged != 0 && proto == u32::from(ETH_P_8021Q.to_be());
    let frame = vlan::admit(port, c_tag.then_some(tci as u16))?;
    let now = fdb::now();
    policy::learn_source(port, ingress, src, frame.vid, now)?;
    let destination = fdb::destination(dst, frame.vid, ingress, port.has(POLICY_HAIRPIN), now)?;
    let len = ctx.len() as usize;
    stats::add_port(Direction::Rx, port, frame.vid, len);
    carry_tag(skb, &frame, c_tag)?;
    match policy::steer(port, destination)? {
        Destination::Port(egress) => {
            // SAFETY: the pointer comes from a successful map lookup.
            let target = unsafe { &*PORTS.get_ptr(egress).ok_or(Reason::DropRedirect)? };
            policy::unicast_allowed(port, target)?;
            if !target.is_member(frame.vid) {
                return Err(Reason::DropVlanEgress);
            }
            if frame.vid == target.pvid {
                vlan_pop(skb)?;
            }
            stats::add_port(Direction::Tx, target, frame.vid, len);
            // SAFETY: no preconditions; the redirect happens when the program returns.
            let action = unsafe { bpf_redirect(egress, 0) };
            if action != i64::from(TC_ACT_REDIRECT) {
                return Err(Reason::DropRedirect);
            }
            Ok((TC_ACT_REDIRECT, Reason::Forwarded))
        }
        Destination::Flood { missed } => {
            if missed {
                event::emit(EventKind::Missed, dst, frame.vid, ingress, 0);
            }
            if !policy::storm_allows(port) {
                return Err(Reason::DropStorm);
            }
            stats::add_port(Direction::Flood, port, frame.vid, len);
            flood(skb, &frame, port, ingress, (dst, src), len)?;
            if !port.has(POLICY_LOCAL_STACK) {
                // Every port got its copy; the original goes nowhere.
                return Ok((TC_ACT_SHOT, Reason::Flooded));
            }
            // The stacks listening on the port (its macvlans) get the original, as it came.
            if !c_tag {
                vlan_pop(skb)?;
            }
            Ok((TC_ACT_OK, Reason::Flooded))
        }
    }
}

/// Makes the skb carry its VLAN as an 802.1Q tag in metadata, keeping PCP and DEI. Pushing onto
/// an 802.1ad tag moves that tag into the frame first (skb_vlan_push), as payload.
#[inline(always)]
fn carry_tag(skb: *mut __sk_buff, frame: &Classified, c_tag: bool) -> Result<(), Reason> {
    let tci = match frame.tci {
        Some(tci) if c_tag && tci & VLAN_VID_MASK == frame.vid => return Ok(()),
        Some(tci) if c_tag => {
            vlan_pop(skb)?;
            (tci & !VLAN_VID_MASK) | frame.vid
        }
        _ => frame.vid,
    };
    vlan_push(skb, tci)
}

/// One copy to every other port (the ingress one too with hairpin on) that is a member of the
/// frame's VLAN and whose flags take it, untagged where the VLAN is the port's PVID.
#[inline(always)]
fn flood(
    skb: *mut __sk_buff,
    frame: &Classified,
    from: &PortInfo,
    ingress: u32,
    (dst, src): ([u8; 6], [u8; 6]),
    len: usize,
) -> Result<(), Reason> {
    let hairpin = from.has(POLICY_HAIRPIN);
    // SAFETY: a valid skb context.
    let tci = unsafe { (*skb).vlan_tci } as u16;
    for slot in 0..MAX_SKB_FLOOD_PORTS {
        let Some(ifindex) = SLOTS.get(slot).copied() else {
            continue;
        };
        if ifindex == 0 || (ifindex == ingress && !hairpin) {
            continue;
        }
        let Some(port) = PORTS.get_ptr(ifindex) else {
            continue;
        };
        // SAFETY: the pointer comes from a successful map lookup.
        let port = unsafe { &*port };
        if !port.is_member(frame.vid)
            || !policy::flood_allowed(Some(from), port, ifindex, &dst, src, frame.vid)
        {
            continue;
        }
        let untagged = frame.vid == port.pvid;
        if untagged {
            vlan_pop(skb)?;
        }
        // SAFETY: a valid skb; the clone leaves at once, the original stays ours.
        if unsafe { bpf_clone_redirect(skb, ifindex, 0) } == 0 {
            stats::add_port(Direction::Tx, port, frame.vid, len);
        }
        if untagged {
            vlan_push(skb, tci)?;
        }
    }
    Ok(())
}

#[inline(always)]
fn vlan_push(skb: *mut __sk_buff, tci: u16) -> Result<(), Reason> {
    // SAFETY: a valid skb context.
    match unsafe { bpf_skb_vlan_push(skb, ETH_P_8021Q.to_be(), tci) } {
        0 => Ok(()),
        _ => Err(Reason::DropNoHeadroom),
    }
}

#[inline(always)]
fn vlan_pop(skb: *mut __sk_buff) -> Result<(), Reason> {
    // SAFETY: a valid skb context.
    match unsafe { bpf_skb_vlan_pop(skb) } {
        0 => Ok(()),
        _ => Err(Reason::DropMalformed),
    }
}
