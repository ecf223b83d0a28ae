//! Sending a frame to one port or flooding it to all others (br_forward.c).
use aya_ebpf::{
    bindings::{BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS, xdp_action},
    cty::c_void,
    helpers::{bpf_loop, bpf_redirect},
    programs::XdpContext,
};
use vbr_common::{
    FLOOD_BARE_SLOTS,
    flow::FlowCacheSlot,
    port::{POLICY_HAIRPIN, POLICY_ISOLATED, POLICY_UPLINK, PortInfo},
    stats::Reason,
    vlan::ETH_P_8021Q,
};

use crate::{
    batch,
    maps::{EGRESS, FLOOD_BARE, INFO, SLOTS},
    parse, policy,
    ports::Ports,
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
    bare_unicast: bool,
) -> Result<(u32, Reason), Reason> {
    if !port.is_member(frame.vid) {
        return Err(Reason::DropVlanEgress);
    }
    send(
        ctx,
        frame,
        ifindex,
        frame.vid != port.pvid,
        (port.slot, port.counted_vlan(frame.vid)),
        bare_unicast,
    )
}

/// Sends a known unicast frame as its flow's first frame was sent (see `flow`), counting it on
/// both ports as `switch_frame` and `to_port` do.
#[inline(always)]
pub fn as_cached(ctx: &XdpContext, flow: &FlowCacheSlot) -> Result<(u32, Reason), Reason> {
    let frame = Classified {
        vid: flow.vid,
        tci: (flow.key.ether_type == ETH_P_8021Q).then_some(flow.key.tci),
    };
    let counted_vlan = (flow.vlan_stats != 0).then_some(flow.vid);
    stats::add(Direction::Rx, flow.rx_slot, counted_vlan, parse::len(ctx));
    send(
        ctx,
        &frame,
        flow.egress,
        flow.tagged != 0,
        (flow.tx_slot, counted_vlan),
        flow.bare_unicast != 0,
    )
}

/// Tags the frame (`tagged`) or not, counts it on the port in counter slot `tx_slot` (and in
/// VLAN `tx_vlan`, if counted) and redirects it to port `ifindex`. The frame is finished here, so
/// where the ingress port may (`bare_unicast`) and the batch allows it skips the target's devmap
/// program, which only passes unicast.
#[inline(always)]
fn send(
    ctx: &XdpContext,
    frame: &Classified,
    ifindex: u32,
    tagged: bool,
    (tx_slot, tx_vlan): (u16, Option<u16>),
    bare_unicast: bool,
) -> Result<(u32, Reason), Reason> {
    vlan::set_tag(ctx, frame, tagged)?;
    stats::add(Direction::Tx, tx_slot, tx_vlan, parse::len(ctx));
    if bare_unicast && batch::finished_may_skip_egress() {
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

/// A flood every port takes alike, finished at ingress (see `finished_flood`).
pub struct FinishedFlood {
    /// Whether the copies leave tagged.
    tagged: bool,
}

/// What `vbr_flood_plan` answers: the copies differ (or there are none), or all leave untagged,
/// or all tagged.
const PLAN_NONE: u32 = 0;
const PLAN_UNTAGGED: u32 = 1;
const PLAN_TAGGED: u32 = 2;

/// How the flood of `frame` (for `dst`) from port `from` (`ingress`) can be finished here, or
/// `None` when some port would make its copy differ, so that each copy needs that port's
/// `vbr_egress`. Floods from a hairpin port or the uplink are never finished here (their copies
/// depend on more than the port they leave by).
#[inline(always)]
pub fn finished_flood(
    from: &PortInfo,
    ingress: u32,
    frame: &Classified,
    dst: &[u8; 6],
    now: u64,
) -> Option<FinishedFlood> {
    if from.has(POLICY_HAIRPIN | POLICY_UPLINK) {
        return None;
    }
    let kind = u32::from(policy::flood_kind(dst));
    let isolated = u32::from(from.has(POLICY_ISOLATED));
    match vbr_flood_plan(ingress, u32::from(frame.vid), kind, isolated, now) {
        PLAN_UNTAGGED => Some(FinishedFlood { tagged: false }),
        PLAN_TAGGED => Some(FinishedFlood { tagged: true }),
        _ => None,
    }
}

/// The check behind `finished_flood`: every port but `ingress` must be a member of VLAN `vid`,
/// take floods of `kind` (a `POLICY_*` bit) from the ingress port (`isolated` or not), and tag
/// the frame as the rest do. A global function, so the verifier checks it once on its own, and
/// its loop a `bpf_loop`, checked as one round: inline and unrolled, the check took the verifier
/// past its million instructions at eight ports.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn vbr_flood_plan(
    ingress: u32,
    vid: u32,
    kind: u32,
    isolated: u32,
    now: u64,
) -> u32 {
    let Some(slot_end) = slot_end() else {
        return PLAN_NONE;
    };
    let mut scan = FloodScan {
        ports: Ports::new(now),
        ingress,
        vid: vid as u16,
        kind: kind as u16,
        isolated: isolated != 0,
        some_tagged: false,
        some_untagged: false,
        differs: false,
    };
    // SAFETY: the callback gets `scan`, which outlives the call, as its context.
    unsafe {
        bpf_loop(
            slot_end,
            scan_slot as *mut c_void,
            (&mut scan as *mut FloodScan).cast(),
            0,
        )
    };
    match (scan.differs, scan.some_tagged, scan.some_untagged) {
        (false, true, false) => PLAN_TAGGED,
        (false, false, true) => PLAN_UNTAGGED,
        _ => PLAN_NONE,
    }
}

/// What `vbr_flood_plan` checks each port against, and what it found so far.
struct FloodScan {
    ports: Ports,
    ingress: u32,
    vid: u16,
    kind: u16,
    isolated: bool,
    /// Whether some copy leaves tagged, and some untagged: the copies differ if both.
    some_tagged: bool,
    some_untagged: bool,
    /// Some port would drop or treat its copy otherwise.
    differs: bool,
}

/// One round of `vbr_flood_plan`'s loop: the port in counter slot `slot`. Returns 1 to stop.
extern "C" fn scan_slot(slot: u64, scan: *mut c_void) -> i64 {
    // SAFETY: `vbr_flood_plan` passes its `FloodScan`.
    let scan = unsafe { &mut *scan.cast::<FloodScan>() };
    let Some(ifindex) = copy_target(slot as u32, scan.ingress) else {
        return 0;
    };
    match scan.ports.peek(ifindex) {
        Some(to) if to.is_member(scan.vid) && policy::takes_flood(scan.isolated, to, scan.kind) => {
            let tagged = scan.vid != to.pvid;
            scan.some_tagged |= tagged;
            scan.some_untagged |= !tagged;
            0
        }
        _ => {
            scan.differs = true;
            1
        }
    }
}

/// Counts a finished flood's copies of `len` bytes as sent by every port but `ingress`, and in
/// VLAN `vid` unless it is `NOT_COUNTED`, as `vbr_egress` counts each copy it lets pass. A global
/// function for the same reason as `vbr_flood_plan`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn vbr_count_flood_copies(ingress: u32, vid: u32, len: u32) -> u32 {
    let counted_vlan = (vid != NOT_COUNTED).then_some(vid as u16);
    let Some(slot_end) = slot_end() else {
        return 0;
    };
    for slot in 0..FLOOD_BARE_SLOTS {
        if slot >= slot_end {
            break;
        }
        if copy_target(slot, ingress).is_some() {
            stats::add(Direction::Tx, slot as u16, counted_vlan, len as usize);
        }
    }
    0
}

/// `vbr_count_flood_copies`'s VLAN when the bridge does not count per VLAN: no VID.
const NOT_COUNTED: u32 = u32::MAX;

/// The bridge's `slot_end`, if floods may be finished at ingress: every port's slot is below
/// `FLOOD_BARE_SLOTS`.
#[inline(always)]
fn slot_end() -> Option<u32> {
    INFO.get(0)
        .map(|info| info.slot_end)
        .filter(|slot_end| *slot_end <= FLOOD_BARE_SLOTS)
}

/// The port in counter slot `slot` that a flood from `ingress` sends a copy to, if any.
#[inline(always)]
fn copy_target(slot: u32, ingress: u32) -> Option<u32> {
    SLOTS
        .get(slot)
        .copied()
        .filter(|ifindex| *ifindex != 0 && *ifindex != ingress)
}

/// Sends a copy of the frame to every port but the ingress one (unless it has hairpin on). A
/// `finished` flood leaves as it is now through `flood_bare`; any other is tagged with its VLAN
/// and marked as a flood copy, and each port's `vbr_egress` program then applies that port's
/// VLAN policy and flags to its copy. (BPF_F_BROADCAST and BPF_F_EXCLUDE_INGRESS need Linux
/// 5.14.)
#[inline(always)]
pub fn flood(
    ctx: &XdpContext,
    ingress: &PortInfo,
    ingress_ifindex: u32,
    frame: &Classified,
    finished: Option<FinishedFlood>,
) -> Result<(u32, Reason), Reason> {
    if !policy::storm_allows(ingress) {
        return Err(Reason::DropStorm);
    }
    let counted_vlan = ingress.counted_vlan(frame.vid);
    stats::add(
        Direction::Flood,
        ingress.slot,
        counted_vlan,
        parse::len(ctx),
    );
    let redirected = if let Some(plan) = finished {
        vlan::set_tag(ctx, frame, plan.tagged)?;
        vbr_count_flood_copies(
            ingress_ifindex,
            counted_vlan.map_or(NOT_COUNTED, u32::from),
            parse::len(ctx) as u32,
        );
        FLOOD_BARE.redirect(0, u64::from(BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS))
    } else {
        vlan::mark_flood(ctx, frame)?;
        let flags = if ingress.has(POLICY_HAIRPIN) {
            BPF_F_BROADCAST
        } else {
            BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
        };
        EGRESS.redirect(0, u64::from(flags))
    };
    redirected
        .map(|action| (action, Reason::Flooded))
        .map_err(|_| Reason::DropRedirect)
}
