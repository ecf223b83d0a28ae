//! Bounds-checked access to the frame.
use core::mem;

use aya_ebpf::programs::XdpContext;
use network_types::eth::EthHdr;
use vbr_common::{stats::Reason, vlan::VLAN_HLEN};

/// A pointer to a `T` at `offset` in the frame, or `DropMalformed` if the frame is too short.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*mut T, Reason> {
    let start = ctx.data();
    if start + offset + mem::size_of::<T>() > ctx.data_end() {
        return Err(Reason::DropMalformed);
    }
    Ok((start + offset) as *mut T)
}

/// The frame's length in bytes.
#[inline(always)]
pub fn len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}

/// The Ethernet header at the start of the frame.
#[inline(always)]
pub fn eth_header(ctx: &XdpContext) -> Result<&EthHdr, Reason> {
    // SAFETY: ptr_at checked that the whole header lies inside the frame.
    ptr_at::<EthHdr>(ctx, 0).map(|hdr| unsafe { &*hdr })
}

/// Offset of the TCI of an 802.1Q tag that follows the MAC addresses.
pub const TCI_OFFSET: usize = 2 * 6 + 2;

/// The TCI of the 802.1Q tag right after the MAC addresses (host byte order).
#[inline(always)]
pub fn vlan_tci(ctx: &XdpContext) -> Result<u16, Reason> {
    // The tag must be followed by an ethertype to be a whole header.
    ptr_at::<[u8; VLAN_HLEN + 2]>(ctx, TCI_OFFSET - 2)?;
    let tci = ptr_at::<[u8; 2]>(ctx, TCI_OFFSET)?;
    // SAFETY: ptr_at checked the bounds.
    Ok(u16::from_be_bytes(unsafe { *tci }))
}

/// The ethertype behind an 802.1Q tag, if the frame is long enough to have one.
#[inline(always)]
pub fn inner_ether_type(ctx: &XdpContext) -> Option<u16> {
    // SAFETY: ptr_at checked the bounds.
    ptr_at::<[u8; 2]>(ctx, TCI_OFFSET + 2)
        .ok()
        .map(|inner| u16::from_be_bytes(unsafe { *inner }))
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
