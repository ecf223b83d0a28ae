//! The devmap program every frame redirected to a port runs. A unicast frame comes finished
//! from ingress and passes; a flood copy gets the port's VLAN policy and flags.
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};

use crate::{
    fdb, parse, policy,
    ports::Ports,
    stats::{self, Direction},
    vlan,
};

/// XDP_PASS sends the frame out of the port, XDP_DROP suppresses it.
#[inline(always)]
pub fn handle_frame(ctx: &XdpContext) -> u32 {
    let vid = match vlan::flood_vid(ctx) {
        Ok(Some(vid)) => vid,
        Ok(None) => return xdp_action::XDP_PASS,
        Err(_) => return xdp_action::XDP_DROP,
    };
    // SAFETY: the context of a devmap program carries both ifindexes (Linux ≥ 5.8).
    let (ingress, egress) = unsafe { ((*ctx.ctx).ingress_ifindex, (*ctx.ctx).egress_ifindex) };
    let ports = Ports::new(fdb::now());
    let Some(port) = ports.get(egress) else {
        return xdp_action::XDP_DROP;
    };
    let from = ports.get(ingress);
    let Ok(eth) = parse::eth_header(ctx) else {
        return xdp_action::XDP_DROP;
    };
    let (dst, src) = (eth.dst_addr, eth.src_addr);
    if !port.is_member(vid)
        || !policy::flood_allowed(from, port, egress, &dst, src, vid)
        || vlan::finish_flood(ctx, port, vid).is_err()
    {
        return xdp_action::XDP_DROP;
    }
    stats::add_port(Direction::Tx, port, vid, parse::len(ctx));
    xdp_action::XDP_PASS
}
