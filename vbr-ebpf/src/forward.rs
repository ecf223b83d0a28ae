//! Sending a frame to one port or flooding it to all others (br_forward.c).
use aya_ebpf::{
    bindings::{BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS, xdp_action},
    helpers::bpf_redirect,
    programs::XdpContext,
};
use vbr_common::{
    port::{POLICY_HAIRPIN, PortInfo},
    stats::Reason,
};

use crate::{
    batch,
    maps::EGRESS,
    parse, policy,
    stats::{self, Direction},
    vlan::{self, Classified},
};

/// Redirects the frame to the port `ifindex`, tagged as that port wants its VLAN. The frame is
/// finished here, so where the ingress port may (`bare_unicast`) and the batch allows it skips
/// the target's devmap program, which only passes unicast.
#[inline(always)]
pub fn to_port(
    ctx: &XdpContext,
    frame: &Classified,
    ifindex: u32,
    port: &PortInfo,
    bare_unicast: bool,
) -> Result<(u32, Reason), Reason> {
    if !port.is_member(frame.vid) {
        return Err(Reason::DropVlanEgress);
    }
    vlan::set_tag(ctx, frame, frame.vid != port.pvid)?;
    stats::add(Direction::Tx, port.slot, frame.vid, parse::len(ctx));
    if bare_unicast && batch::unicast_may_skip_egress() {
        // SAFETY: no preconditions; the redirect happens when the program returns.
        return match unsafe { bpf_redirect(ifindex, 0) } as u32 {
            xdp_action::XDP_REDIRECT => Ok((xdp_action::XDP_REDIRECT, Reason::Forwarded)),
            _ => Err(Reason::DropRedirect),
        };
    }
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
