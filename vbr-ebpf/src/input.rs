//! Ingress of one frame (br_input.c): validate, classify the VLAN, learn the source, look the
//! destination up, then forward or flood.
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vbr_common::{event::EventKind, port::PortInfo, stats::Reason};

use crate::{
    event, fdb, forward,
    maps::PORTS,
    parse::{self, is_multicast, is_zero},
    stats::{self, Direction},
    vlan,
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
    switch_frame(ctx, ingress, port).unwrap_or_else(|reason| (xdp_action::XDP_DROP, reason))
}

/// Everything but the drops, which come back as `Err(reason)`.
#[inline(always)]
fn switch_frame(ctx: &XdpContext, ingress: u32, port: &PortInfo) -> Result<(u32, Reason), Reason> {
    let eth = parse::eth_header(ctx)?;
    let (src, dst, ether_type) = (eth.src_addr, eth.dst_addr, u16::from_be(eth.ether_type));
    if is_multicast(&src) || is_zero(&src) {
        return Err(Reason::DropInvalidSource);
    }
    // Learn only after ingress filtering, as br_handle_frame_finish does.
    let frame = vlan::classify(ctx, ether_type, port)?;
    stats::add(Direction::Rx, port.slot, frame.vid, parse::len(ctx));
    fdb::learn(src, frame.vid, ingress);
    if is_multicast(&dst) {
        return forward::flood(ctx, port, &frame);
    }
    match fdb::lookup(dst, frame.vid) {
        Some(egress) if egress == ingress => Err(Reason::DropSamePort),
        Some(egress) => forward::to_port(ctx, &frame, egress),
        None => {
            event::emit(EventKind::Missed, dst, frame.vid, ingress, 0);
            forward::flood(ctx, port, &frame)
        }
    }
}
