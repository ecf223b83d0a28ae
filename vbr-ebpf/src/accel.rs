//! The fast path beside a Linux bridge (`[[accelerate]]`): known unicast between the kernel
//! bridge's forwarding ports, as its FDB says (the agent mirrors it into `fdb`), is redirected in
//! XDP. Everything else — floods, frames for the host, new or moved sources, anything the fast path
//! is unsure of — goes to the kernel bridge unchanged (XDP_PASS), which keeps learning, STP,
//! multicast snooping and whatever else it does.
use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_ktime_get_coarse_ns, bpf_redirect},
    programs::XdpContext,
};
use vbr_common::{
    fdb::{FDB_REFRESH_NS, FdbKey},
    port::{POLICY_ACCEL_FORWARDING, POLICY_ACCEL_VLAN, POLICY_ISOLATED, PortInfo, PortMode},
    stats::Reason,
};

use crate::{
    maps::{FDB, PORTS},
    parse::{self, is_multicast},
    stats::{self, Direction},
    vlan::{self, Classified},
};

/// The XDP action for the frame and the reason it is counted under.
#[inline(always)]
pub fn handle_frame(ctx: &XdpContext) -> (u32, Reason) {
    let ingress = ctx.ingress_ifindex() as u32;
    let Some(port) = PORTS.get_ptr(ingress) else {
        return (xdp_action::XDP_PASS, Reason::PassNotPort);
    };
    // SAFETY: the pointer comes from a successful map lookup.
    let port = unsafe { &*port };
    match forward(ctx, ingress, port) {
        Some(action) => (action, Reason::Forwarded),
        None => (xdp_action::XDP_PASS, Reason::PassToBridge),
    }
}

/// Redirects a known unicast frame the kernel bridge would forward the same way; `None` leaves
/// the frame, untouched, to the kernel bridge.
#[inline(always)]
fn forward(ctx: &XdpContext, ingress: u32, port: &PortInfo) -> Option<u32> {
    if !port.has(POLICY_ACCEL_FORWARDING) {
        return None;
    }
    let eth = parse::eth_header(ctx).ok()?;
    let (src, dst, ether_type) = (eth.src_addr, eth.dst_addr, u16::from_be(eth.ether_type));
    if is_multicast(&dst) {
        return None;
    }
    let frame = if port.has(POLICY_ACCEL_VLAN) {
        // A frame the kernel's ingress filtering drops is the kernel's to drop.
        vlan::classify(ctx, ether_type, port).ok()?
    } else {
        Classified { vid: 0, tci: None }
    };
    // The source must live where the kernel bridge has it: a new or moved MAC is the kernel's to
    // learn, and its notification brings the change here.
    let source_key = FdbKey::new(src, frame.vid);
    let source = FDB.get_ptr_mut(source_key)?;
    // SAFETY: the pointer comes from a successful map lookup.
    let source = unsafe { &mut *source };
    if !source.is_mirrored() {
        return None;
    }
    if source.ifindex != ingress {
        // It moved (or is spoofed): until the agent mirrors what the kernel makes of it, frames
        // for it take the kernel's path too rather than the old port.
        let _ = FDB.remove(source_key);
        return None;
    }
    // Traffic the kernel no longer sees must not age out there: the agent refreshes the kernel's
    // entries whose stamp moved. One write a second at most, as learning does.
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if now.saturating_sub(source.last_seen_ns) >= FDB_REFRESH_NS {
        source.last_seen_ns = now;
    }
    let destination = FDB.get_ptr(FdbKey::new(dst, frame.vid))?;
    // SAFETY: the pointer comes from a successful map lookup.
    let egress = unsafe { (*destination).ifindex };
    // Hairpin is the kernel's business, and so are the host's own addresses (never mirrored).
    if egress == ingress {
        return None;
    }
    // SAFETY: the pointer comes from a successful map lookup.
    let target = unsafe { &*PORTS.get_ptr(egress)? };
    if !target.has(POLICY_ACCEL_FORWARDING)
        || (port.has(POLICY_ISOLATED) && target.has(POLICY_ISOLATED))
        // Native XDP redirects only to devices that take XDP frames.
        || (port.mode == PortMode::XdpNative as u8 && target.mode != PortMode::XdpNative as u8)
    {
        return None;
    }
    if port.has(POLICY_ACCEL_VLAN) {
        if !target.is_member(frame.vid) {
            return None;
        }
        vlan::set_tag(ctx, &frame, frame.vid != target.pvid).ok()?;
    }
    let bytes = parse::len(ctx);
    stats::add_port(Direction::Rx, port, frame.vid, bytes);
    stats::add_port(Direction::Tx, target, frame.vid, bytes);
    // SAFETY: no preconditions; an ifindex that vanished makes the redirect fail, not crash.
    Some(unsafe { bpf_redirect(egress, 0) } as u32)
}
