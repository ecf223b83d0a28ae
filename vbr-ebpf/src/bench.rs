//! The benchmark rig's own programs (`cargo xtask bench`): an in-kernel traffic generator, the
//! bare-redirect ceiling vbr is measured against, and the sink that counts what arrives. None of
//! this is part of vbr's datapath.
#![no_std]
#![no_main]

// The names in it are userspace's: here the macros name programs and maps after literals.
#[allow(dead_code, reason = "shared with userspace, which uses the rest")]
mod bench_abi;

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, DevMap, PerCpuArray},
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use bench_abi::{GeneratorConfig, PREFIX_LEN, SINK_SLOTS, SOURCE};

#[btf_map(name = "bench_generator")]
static GENERATOR: Array<GeneratorConfig, 1> = Array::new();

#[btf_map(name = "bench_sequence")]
static SEQUENCE: PerCpuArray<u32, 1> = PerCpuArray::new();

#[btf_map(name = "bench_ceiling_tx")]
static CEILING_TX: DevMap<1> = DevMap::new();

#[btf_map(name = "bench_sink_frames")]
static SINK_FRAMES: PerCpuArray<u64, { SINK_SLOTS as usize }> = PerCpuArray::new();

/// Stamps the configured prefix (and the next destination) on the frame and sends it back out.
#[xdp]
pub fn bench_generate(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + PREFIX_LEN > end {
        return xdp_action::XDP_ABORTED;
    }
    let Some(config) = GENERATOR.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: the frame holds at least PREFIX_LEN bytes (checked above).
    let frame = unsafe { &mut *(start as *mut [u8; PREFIX_LEN]) };
    *frame = config.prefix;
    if config.destinations > 1
        && let Some(sequence) = SEQUENCE.get_ptr_mut(0)
    {
        // SAFETY: per-CPU slot, only this CPU touches it while the program runs.
        let sequence = unsafe { &mut *sequence };
        let destination = bench_abi::destination(*sequence % config.destinations);
        frame[..6].copy_from_slice(&destination);
        *sequence = sequence.wrapping_add(1);
    }
    xdp_action::XDP_TX
}

/// The ceiling: the least any XDP switch must do, one redirect through a devmap.
#[xdp]
pub fn bench_redirect(_ctx: XdpContext) -> u32 {
    CEILING_TX.redirect(0, 0).unwrap_or(xdp_action::XDP_ABORTED)
}

/// Counts the frame against the interface it arrived on if the generator sent it, then drops it.
#[xdp]
pub fn bench_sink(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + 12 > end {
        return xdp_action::XDP_DROP;
    }
    // SAFETY: the frame holds both MAC addresses (checked above).
    let source = unsafe { &*((start + 6) as *const [u8; 6]) };
    if *source == SOURCE
        && let Some(count) = SINK_FRAMES.get_ptr_mut(ctx.ingress_ifindex() as u32)
    {
        // SAFETY: per-CPU slot, only this CPU touches it while the program runs.
        unsafe { *count += 1 };
    }
    xdp_action::XDP_DROP
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
