//! Ingress of one frame (br_input.c): validate, learn the source, look the destination up,
//! then forward or flood.
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vbr_common::{port::PortInfo, stats::Reason};

use crate::{
    fdb, forward,
    maps::PORTS,
    parse::{self, is_multicast, is_zero},
};

/// The XDP action for the frame and the reason it is counted under.
#[inline(always)]
pub fn handle_frame(ctx: &XdpContext) -> (u32, Reason) {
    let ingress = ctx.ingress_ifindex() as u32;
    // SAFETY: the pointer comes from a successful map lookup.
    let Some(port) = PORTS.get_ptr(ingress).map(|port| unsafe { *port }) else {
        return (xdp_action::XDP_PASS, Reason::PassNotPort);
    };
    switch_frame(ctx, ingress, &port).unwrap_or_else(|reason| (xdp_action::XDP_DROP, reason))
}

/// Everything but the drops, which come back as `Err(reason)`.
#[inline(always)]
fn switch_frame(ctx: &XdpContext, ingress: u32, port: &PortInfo) -> Result<(u32, Reason), Reason> {
    let eth = parse::eth_header(ctx)?;
    let (src, dst) = (eth.src_addr, eth.dst_addr);
    if is_multicast(&src) || is_zero(&src) {
        return Err(Reason::DropInvalidSource);
    }
    let vlan = port.pvid;
    fdb::learn(src, vlan, ingress);
    if is_multicast(&dst) {
        return Ok(forward::flood());
    }
    match fdb::lookup(dst, vlan) {
        Some(egress) if egress == ingress => Err(Reason::DropSamePort),
        Some(egress) => Ok(forward::to_port(egress)),
        None => Ok(forward::flood()),
    }
}
