//! Sending a frame to one port or flooding it to all others (br_forward.c).
use aya_ebpf::bindings::{BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS, xdp_action};
use vbr_common::stats::Reason;

use crate::maps::EGRESS;

/// Redirects the frame to the port `ifindex`.
#[inline(always)]
pub fn to_port(ifindex: u32) -> (u32, Reason) {
    match EGRESS.redirect(ifindex, 0) {
        Ok(action) => (action, Reason::Forwarded),
        Err(_) => (xdp_action::XDP_DROP, Reason::DropRedirect),
    }
}

/// Sends a copy of the frame to every port but the ingress one
/// (BPF_F_BROADCAST and BPF_F_EXCLUDE_INGRESS need Linux 5.14).
#[inline(always)]
pub fn flood() -> (u32, Reason) {
    match EGRESS.redirect(0, (BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS) as u64) {
        Ok(action) => (action, Reason::Flooded),
        Err(_) => (xdp_action::XDP_DROP, Reason::DropRedirect),
    }
}
