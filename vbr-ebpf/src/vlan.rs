//! 802.1Q classification and tag push/pop (br_vlan.c): ingress filtering by the port's
//! membership, egress tagging by the egress port's PVID.
use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use vbr_common::{
    port::{PVID_NONE, PortInfo},
    stats::Reason,
    vlan::{ETH_P_8021Q, ETH_P_VBR_FLOOD, VLAN_HLEN, VLAN_VID_MASK},
};

use crate::parse::{self, TCI_OFFSET};

/// Both MAC addresses, as 16-bit words: what moves when a tag is pushed or popped.
pub type MacPair = [u16; 6];

/// A frame after ingress classification.
pub struct Classified {
    /// The VLAN the frame belongs to.
    pub vid: u16,
    /// The TCI of the 802.1Q tag the frame carries in its bytes, if any. Its VID is 0 for a
    /// priority-tagged frame, whose PCP is kept.
    pub tci: Option<u16>,
}

/// Which VLAN a frame entering `port` belongs to, or `DropVlanIngress` (br_allowed_ingress).
/// An 802.1ad outer tag is payload here: such frames join the PVID with the S-tag intact.
#[inline(always)]
pub fn classify(ctx: &XdpContext, ether_type: u16, port: &PortInfo) -> Result<Classified, Reason> {
    let tci = if ether_type == ETH_P_8021Q {
        Some(parse::vlan_tci(ctx)?)
    } else {
        None
    };
    admit(port, tci)
}

/// Ingress filtering of a frame carrying an 802.1Q tag with `tci`, or none: tagged frames need
/// the port to be a member of their VLAN; untagged and priority-tagged (VID 0) ones join the
/// PVID, if the port has one. Shared by the XDP and skb paths, which find the tag differently.
#[inline(always)]
pub fn admit(port: &PortInfo, tci: Option<u16>) -> Result<Classified, Reason> {
    let vid = tci.map_or(0, |tci| tci & VLAN_VID_MASK);
    if vid != 0 {
        if !port.is_member(vid) {
            return Err(Reason::DropVlanIngress);
        }
        return Ok(Classified { vid, tci });
    }
    if port.pvid == PVID_NONE {
        return Err(Reason::DropVlanIngress);
    }
    Ok(Classified {
        vid: port.pvid,
        tci,
    })
}

/// Makes the frame carry an 802.1Q tag for its VLAN (`tagged`) or none, keeping PCP and DEI.
#[inline(always)]
pub fn set_tag(ctx: &XdpContext, frame: &Classified, tagged: bool) -> Result<(), Reason> {
    match (frame.tci, tagged) {
        (None, true) => push(ctx, ETH_P_8021Q, frame.vid),
        (Some(tci), true) if tci & VLAN_VID_MASK != frame.vid => {
            write_tci(ctx, (tci & !VLAN_VID_MASK) | frame.vid)
        }
        (Some(_), false) => pop(ctx),
        _ => Ok(()),
    }
}

/// Marks the frame as a flood copy: a tag with `ETH_P_VBR_FLOOD` for TPID and the frame's VLAN
/// in its TCI (PCP and DEI kept), pushed or made from the 802.1Q tag it carries.
#[inline(always)]
pub fn mark_flood(ctx: &XdpContext, frame: &Classified) -> Result<(), Reason> {
    match frame.tci {
        Some(tci) => {
            write_tpid(ctx, ETH_P_VBR_FLOOD)?;
            write_tci(ctx, (tci & !VLAN_VID_MASK) | frame.vid)
        }
        None => push(ctx, ETH_P_VBR_FLOOD, frame.vid),
    }
}

/// The VLAN of a flood copy, or `None` for a unicast frame, which ingress finished.
#[inline(always)]
pub fn flood_vid(ctx: &XdpContext) -> Result<Option<u16>, Reason> {
    let eth = parse::eth_header(ctx)?;
    if u16::from_be(eth.ether_type) != ETH_P_VBR_FLOOD {
        return Ok(None);
    }
    Ok(Some(parse::vlan_tci(ctx)? & VLAN_VID_MASK))
}

/// Finishes a flood copy for the egress port: untagged where its VLAN is the port's PVID, an
/// 802.1Q tag otherwise.
#[inline(always)]
pub fn finish_flood(ctx: &XdpContext, port: &PortInfo, vid: u16) -> Result<(), Reason> {
    if vid == port.pvid {
        pop(ctx)
    } else {
        write_tpid(ctx, ETH_P_8021Q)
    }
}

#[inline(always)]
fn push(ctx: &XdpContext, tpid: u16, vid: u16) -> Result<(), Reason> {
    let macs = read_macs(ctx, 0)?;
    // SAFETY: a valid XDP context; a negative delta grows the frame at its head.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(VLAN_HLEN as i32)) } != 0 {
        return Err(Reason::DropNoHeadroom);
    }
    let tag = parse::ptr_at::<[u8; 4]>(ctx, TCI_OFFSET - 2)?;
    let [tpid_hi, tpid_lo] = tpid.to_be_bytes();
    let [tci_hi, tci_lo] = vid.to_be_bytes();
    // SAFETY: ptr_at checked the bounds.
    unsafe { *tag = [tpid_hi, tpid_lo, tci_hi, tci_lo] };
    write_macs(ctx, 0, macs)
}

#[inline(always)]
fn pop(ctx: &XdpContext) -> Result<(), Reason> {
    write_macs(ctx, VLAN_HLEN, read_macs(ctx, 0)?)?;
    // SAFETY: a valid XDP context; the frame is longer than the tag.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, VLAN_HLEN as i32) } != 0 {
        return Err(Reason::DropMalformed);
    }
    Ok(())
}

/// The MAC addresses at `offset`. Word by word and volatile, so that a move of them never
/// compiles to a call of the byte-wise `memmove` (pop's ranges overlap): all six words are read
/// before `write_macs` writes one. Frames start 2-byte aligned (every driver's headroom is even,
/// and tags move them by 4).
#[inline(always)]
pub fn read_macs(ctx: &XdpContext, offset: usize) -> Result<MacPair, Reason> {
    let words = parse::ptr_at::<MacPair>(ctx, offset)?.cast::<u16>();
    let mut macs = [0; 6];
    for (n, mac) in macs.iter_mut().enumerate() {
        // SAFETY: ptr_at checked the bounds; aligned as said above.
        *mac = unsafe { words.add(n).read_volatile() };
    }
    Ok(macs)
}

#[inline(always)]
fn write_macs(ctx: &XdpContext, offset: usize, macs: MacPair) -> Result<(), Reason> {
    let words = parse::ptr_at::<MacPair>(ctx, offset)?.cast::<u16>();
    for (n, mac) in macs.into_iter().enumerate() {
        // SAFETY: as in read_macs.
        unsafe { words.add(n).write_volatile(mac) };
    }
    Ok(())
}

#[inline(always)]
fn write_tpid(ctx: &XdpContext, tpid: u16) -> Result<(), Reason> {
    let slot = parse::ptr_at::<[u8; 2]>(ctx, TCI_OFFSET - 2)?;
    // SAFETY: ptr_at checked the bounds.
    unsafe { *slot = tpid.to_be_bytes() };
    Ok(())
}

#[inline(always)]
fn write_tci(ctx: &XdpContext, tci: u16) -> Result<(), Reason> {
    let slot = parse::ptr_at::<[u8; 2]>(ctx, TCI_OFFSET)?;
    // SAFETY: ptr_at checked the bounds.
    unsafe { *slot = tci.to_be_bytes() };
    Ok(())
}
