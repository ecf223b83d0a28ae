//! The devmap program run on each flooded copy as it leaves a port.
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};

use crate::{
    maps::PORTS,
    parse,
    stats::{self, Direction},
    vlan,
};

/// XDP_PASS sends the copy out of the port, XDP_DROP suppresses it.
#[inline(always)]
pub fn handle_copy(ctx: &XdpContext) -> u32 {
    // SAFETY: the context of a devmap program carries the egress ifindex (Linux ≥ 5.8).
    let egress = unsafe { (*ctx.ctx).egress_ifindex };
    let Some(port) = PORTS.get_ptr(egress) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: the pointer comes from a successful map lookup.
    let port = unsafe { &*port };
    match vlan::egress_policy(ctx, port) {
        Ok(Some(vid)) => {
            stats::add(Direction::Tx, port.slot, vid, parse::len(ctx));
            xdp_action::XDP_PASS
        }
        _ => xdp_action::XDP_DROP,
    }
}
