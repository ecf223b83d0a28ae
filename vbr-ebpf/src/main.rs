//! vbr's datapath: entry points only; the work lives in one module per concern, split the way
//! the Linux bridge splits it (br_input.c, br_fdb.c, br_vlan.c, br_forward.c).
#![no_std]
#![no_main]

mod accel;
mod batch;
mod egress;
mod event;
mod fdb;
mod flow;
mod forward;
mod input;
mod maps;
mod parse;
mod policy;
mod ports;
mod skb;
mod stats;
mod vlan;

use aya_ebpf::{
    macros::{classifier, raw_tracepoint, xdp},
    programs::{RawTracePointContext, TcContext, XdpContext},
};

/// XDP ingress of every bridge port.
#[xdp]
pub fn vbr_ingress(ctx: XdpContext) -> u32 {
    let (action, reason) = input::handle_frame(&ctx);
    stats::count(reason);
    action
}

/// XDP ingress of every port of a Linux bridge vbr accelerates.
#[xdp]
pub fn vbr_accel(ctx: XdpContext) -> u32 {
    let (action, reason) = accel::handle_frame(&ctx);
    stats::count(reason);
    action
}

/// Devmap program of every port: finishes flooded copies, lets unicast frames pass (devmap
/// programs need Linux 5.8, and 5.15 for generic XDP).
#[xdp(map = "devmap")]
pub fn vbr_egress(ctx: XdpContext) -> u32 {
    egress::handle_frame(&ctx)
}

/// TC (clsact ingress) program of every port: the skb path.
#[classifier]
pub fn vbr_tc_ingress(ctx: TcContext) -> i32 {
    let (action, reason) = skb::handle_skb(&ctx);
    if let Some(reason) = reason {
        stats::count(reason);
    }
    action
}

/// Runs after every NAPI poll, whose driver flushed the CPU's queued XDP redirects at its end:
/// the next frames start a new batch. A raw tracepoint, because kernels under lockdown refuse
/// fentry programs.
#[raw_tracepoint(tracepoint = "napi_poll")]
pub fn vbr_flush_watch(_ctx: RawTracePointContext) -> i32 {
    batch::flushed();
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
