//! Bounds-checked access to the frame.
use core::mem;

use aya_ebpf::programs::XdpContext;
use network_types::eth::EthHdr;
use vbr_common::stats::Reason;

/// A pointer to a `T` at `offset` in the frame, or `DropMalformed` if the frame is too short.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*const T, Reason> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + mem::size_of::<T>() > end {
        return Err(Reason::DropMalformed);
    }
    Ok((start + offset) as *const T)
}

/// The Ethernet header at the start of the frame.
#[inline(always)]
pub fn eth_header(ctx: &XdpContext) -> Result<&EthHdr, Reason> {
    // SAFETY: ptr_at checked that the whole header lies inside the frame.
    ptr_at::<EthHdr>(ctx, 0).map(|hdr| unsafe { &*hdr })
}

/// Group bit: broadcast and multicast addresses.
#[inline(always)]
pub fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

#[inline(always)]
pub fn is_zero(mac: &[u8; 6]) -> bool {
    mac.iter().all(|byte| *byte == 0)
}
