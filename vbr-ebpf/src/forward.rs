//! Sending a frame to one port or flooding it to all others (br_forward.c).
use aya_ebpf::{
    bindings::{BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS},
    programs::XdpContext,
};
use vbr_common::{
    port::{POLICY_HAIRPIN, PortInfo},
    stats::Reason,
};

use crate::{
    maps::EGRESS,
    parse, policy,
    stats::{self, Direction},
    vlan::{self, Classified},
};

/// Redirects the frame to the port `ifindex`, tagged as that port wants its VLAN.
#[inline(always)]
pub fn to_port(
    ctx: &XdpContext,
    frame: &Classified,
    ifindex: u32,
    port: &PortInfo,
) -> Result<(u32, Reason), Reason> {
    if !port.is_member(frame.vid) {
        return Err(Reason::DropVlanEgress);
    }
    vlan::set_tag(ctx, frame, frame.vid != port.pvid)?;
    stats::add(Direction::Tx, port.slot, frame.vid, parse::len(ctx));
    EGRESS
        .redirect(ifindex, 0)
        .map(|action| (action, Reason::Forwarded))
        .map_err(|_| Reason::DropRedirect)
}

/// Sends a copy of the frame, tagged with its VLAN, to every port but the ingress one (unless it
/// has hairpin on), marked as a flood copy; each port's `vbr_egress` program then applies that
/// port's VLAN policy and flags to its copy. (BPF_F_BROADCAST and BPF_F_EXCLUDE_INGRESS need
/// Linux 5.14.)
#[inline(always)]
pub fn flood(
    ctx: &XdpContext,
    ingress: &PortInfo,
    frame: &Classified,
) -> Result<(u32, Reason), Reason> {
    if !policy::storm_allows(ingress) {
        return Err(Reason::DropStorm);
    }
    stats::add(Direction::Flood, ingress.slot, frame.vid, parse::len(ctx));
    vlan::mark_flood(ctx, frame)?;
    let flags = if ingress.has(POLICY_HAIRPIN) {
        BPF_F_BROADCAST
    } else {
        BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
    };
    EGRESS
        .redirect(0, u64::from(flags))
        .map(|action| (action, Reason::Flooded))
        .map_err(|_| Reason::DropRedirect)
}
