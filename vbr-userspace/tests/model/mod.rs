//! A reference model of vbr's datapath for one frame, written from README.md and vbr-common's
//! documentation: what `vbr_ingress` does with a frame arriving on a port (the verdict, the bytes
//! it leaves, the FDB entries, learned-MAC counts and storm buckets it changes, the events it
//! reports, the reason it counts), and what each port's `vbr_egress` makes of a flood copy.
//!
//! Where the spec is silent the model follows the eBPF source, and says so ("spec silent:").
//! Mostly that is the order of the checks when several reasons apply to one frame.
//!
//! Left out: the skb (TC) path (`PassToSkb` is where the model stops), per-port and per-VLAN
//! byte counters, the events' rate limit and a full ring or FDB (the model has room for
//! everything), a devmap that lacks a port (the agent keeps every port in it), and the lack of
//! headroom for a pushed tag (`DropNoHeadroom`: BPF_PROG_TEST_RUN always leaves 256 bytes).
use std::collections::{BTreeMap, HashMap};

use vbr_common::{
    BRIDGE_LEARNED_SLOT,
    bridge::{BridgeInfo, LinkLocal},
    event::{EventKind, FdbEvent},
    fdb::{FDB_MOVE_HOLD_NS, FDB_REFRESH_NS, FdbEntry, FdbKey},
    port::{
        POLICY_BCAST_FLOOD, POLICY_FLOOD, POLICY_HAIRPIN, POLICY_ISOLATED, POLICY_LEARNING,
        POLICY_MCAST_FLOOD, POLICY_PRIVATE, POLICY_UPLINK, POLICY_VIA_UPLINK, PVID_NONE, PortInfo,
        PortMode,
    },
    stats::{Reason, StormBucket},
    vlan::{ETH_P_8021Q, ETH_P_VBR_FLOOD, VLAN_HLEN, VLAN_VID_MASK},
};

/// Length of an Ethernet header: two MAC addresses and an ethertype.
const ETH_HLEN: usize = 14;
/// Where the ethertype (or an 802.1Q tag's TPID) sits.
const TPID_AT: usize = 12;
/// Where the TCI of an 802.1Q tag sits.
const TCI_AT: usize = TPID_AT + 2;
/// A whole 802.1Q header: the tag and the ethertype after it (spec silent on the ethertype: the
/// datapath's `vlan_tci` wants it, so a tag right at the end of the frame is truncated).
const TAGGED_HLEN: usize = ETH_HLEN + VLAN_HLEN;
const BROADCAST: [u8; 6] = [0xff; 6];
/// Link-local destinations are 01:80:c2:00:00:00 to 01:80:c2:00:00:0f.
const LINK_LOCAL_PREFIX: [u8; 5] = [0x01, 0x80, 0xc2, 0x00, 0x00];
const LINK_LOCAL_LAST: u8 = 0x0f;
/// The storm-control bucket counts thousandths of a frame.
const MILLI: u64 = 1000;
const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;

/// Everything the datapath reads and writes for one frame: the maps and the clock.
#[derive(Clone, Debug)]
pub struct Bridge {
    /// The `ports` map.
    pub ports: HashMap<u32, PortInfo>,
    /// The `fdb` map.
    pub fdb: HashMap<FdbKey, FdbEntry>,
    /// The `info` map's one entry.
    pub info: BridgeInfo,
    /// The `port_learned` array: learned MACs by port slot, the bridge's at
    /// `BRIDGE_LEARNED_SLOT`; a missing slot counts 0.
    pub learned: HashMap<u32, u64>,
    /// The `storm` array, by port slot; a missing slot is an all-zero bucket.
    pub storm: HashMap<u16, StormBucket>,
    /// CLOCK_MONOTONIC when the frame arrives.
    pub now: u64,
}

/// What becomes of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Drop,
    /// Up the stack of the ingress port: not a port, link-local for the host, or for the skb path.
    Pass,
    /// To this port, finished as it wants the frame.
    Redirect(u32),
    /// A copy to every port (the ingress one only with hairpin), each finished by `vbr_egress`.
    Flood,
}

/// What learning did to the entry of the frame's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learning {
    Unchanged,
    Learned,
    /// Same port, timestamp rewritten.
    Refreshed,
    Moved,
    /// Moved less than `FDB_MOVE_HOLD_NS` ago and seen on yet another port: kept where it is.
    Held,
}

/// The model's answer for one frame. The `Bridge` it ran on holds the maps' new contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// The one counter the frame adds to.
    pub reason: Reason,
    /// The frame as the program leaves it: finished for its port, marked as a flood copy, or
    /// unchanged.
    pub frame: Vec<u8>,
    pub learning: Learning,
    /// What the datapath reports on the `events` ring buffer, in order.
    pub events: Vec<FdbEvent>,
}

/// The fields of the Ethernet header the datapath decides on.
struct Header {
    dst: [u8; 6],
    src: [u8; 6],
    ether_type: u16,
}

/// A frame after ingress classification.
struct Classified {
    vid: u16,
    /// The TCI of the 802.1Q tag it carries, if any (VID 0 when priority-tagged).
    tci: Option<u16>,
}

/// Where the frame goes after the FDB lookup.
enum Destination {
    Port(u32),
    /// `missed`: its destination is an unknown unicast address.
    Flood {
        missed: bool,
    },
}

/// One frame on its way through ingress: what it has done so far besides deciding.
struct Run {
    learning: Learning,
    events: Vec<FdbEvent>,
}

/// `vbr_ingress` on `frame` arriving on `ingress`; `bridge` ends as the maps would.
pub fn ingress(bridge: &mut Bridge, ingress: u32, frame: &[u8]) -> Outcome {
    let mut run = Run {
        learning: Learning::Unchanged,
        events: Vec::new(),
    };
    let mut bytes = frame.to_vec();
    let decided = match bridge.ports.get(&ingress).copied() {
        Some(port) => switch(bridge, &mut run, ingress, &port, &mut bytes),
        None => Err(Reason::PassNotPort),
    };
    // Every check comes before the first byte changes: what is not sent on leaves as it came.
    let (verdict, reason) = decided.unwrap_or_else(|reason| (not_sent(reason), reason));
    Outcome {
        verdict,
        reason,
        frame: bytes,
        learning: run.learning,
        events: run.events,
    }
}

/// The verdict of a frame that is not switched: passed (to the stack, the host or the skb path)
/// or dropped.
fn not_sent(reason: Reason) -> Verdict {
    match reason {
        Reason::PassNotPort | Reason::PassLinkLocal | Reason::PassToSkb => Verdict::Pass,
        _ => Verdict::Drop,
    }
}

/// Validate, classify, learn, look up, then send to one port or flood (br_handle_frame_finish).
fn switch(
    bridge: &mut Bridge,
    run: &mut Run,
    ingress: u32,
    port: &PortInfo,
    bytes: &mut Vec<u8>,
) -> Result<(Verdict, Reason), Reason> {
    let header = header(bytes)?;
    // Spec silent on the order of these checks, and on learning the source of a link-local
    // frame (it is not learned); this is the datapath's.
    check_source(&header.src)?;
    check_ether_type(bytes, header.ether_type)?;
    link_local(&bridge.info, &header.dst)?;
    let frame = classify(port, bytes, header.ether_type)?;
    // Learning comes after ingress filtering, as in the Linux bridge the README follows.
    learn_source(bridge, run, port, ingress, header.src, frame.vid)?;
    let destination = destination(bridge, &header.dst, frame.vid, ingress, port)?;
    match steer(&bridge.info, port, destination)? {
        Destination::Port(egress) => to_port(bridge, port, egress, &frame, bytes),
        // Spec silent on the order of the skb hand-over, the missed event and storm control;
        // this is the datapath's, which reports a miss even when storm control drops the frame.
        Destination::Flood { missed } => {
            flood_by_xdp(&bridge.info, port)?;
            if missed {
                let key = FdbKey::new(header.dst, frame.vid);
                run.events.push(event(EventKind::Missed, key, ingress, 0));
            }
            flood(bridge, port, &frame, bytes)
        }
    }
}

/// The Ethernet header, or `DropMalformed` for a frame shorter than one (a runt).
fn header(bytes: &[u8]) -> Result<Header, Reason> {
    if bytes.len() < ETH_HLEN {
        return Err(Reason::DropMalformed);
    }
    let mac = |at: usize| <[u8; 6]>::try_from(&bytes[at..at + 6]).expect("six bytes");
    Ok(Header {
        dst: mac(0),
        src: mac(6),
        ether_type: be16(bytes, TPID_AT),
    })
}

/// A multicast or all-zero source is never a real sender.
fn check_source(src: &[u8; 6]) -> Result<(), Reason> {
    if is_multicast(src) || *src == [0; 6] {
        return Err(Reason::DropInvalidSource);
    }
    Ok(())
}

/// 0x88b6 marks flood copies inside the bridge: a frame arriving with it is dropped, so that it
/// never leaves the bridge. That holds for the ethertype behind an 802.1Q tag too, which egress
/// bares where it pops the tag.
fn check_ether_type(bytes: &[u8], ether_type: u16) -> Result<(), Reason> {
    let inner = (ether_type == ETH_P_8021Q && bytes.len() >= TAGGED_HLEN)
        .then(|| be16(bytes, TAGGED_HLEN - 2));
    if ether_type == ETH_P_VBR_FLOOD || inner == Some(ETH_P_VBR_FLOOD) {
        return Err(Reason::DropMalformed);
    }
    Ok(())
}

/// Link-local frames (STP, LACP, LLDP) go where the bridge's `link_local` says; anything else
/// (including policy values the agent never writes, as the datapath reads them: spec silent)
/// is dropped.
fn link_local(info: &BridgeInfo, dst: &[u8; 6]) -> Result<(), Reason> {
    if dst[..5] != LINK_LOCAL_PREFIX || dst[5] > LINK_LOCAL_LAST {
        return Ok(());
    }
    match info.link_local {
        policy if policy == LinkLocal::Forward as u32 => Ok(()),
        policy if policy == LinkLocal::Host as u32 => Err(Reason::PassLinkLocal),
        _ => Err(Reason::DropLinkLocal),
    }
}

/// The frame's VLAN (br_allowed_ingress): an 802.1Q tag's VID if the port is a member of it;
/// the PVID for untagged and priority-tagged frames (an 802.1ad S-tag is payload). A truncated
/// 802.1Q header is malformed.
fn classify(port: &PortInfo, bytes: &[u8], ether_type: u16) -> Result<Classified, Reason> {
    let tci = if ether_type == ETH_P_8021Q {
        if bytes.len() < TAGGED_HLEN {
            return Err(Reason::DropMalformed);
        }
        Some(be16(bytes, TCI_AT))
    } else {
        None
    };
    let vid = tci.map_or(0, |tci| tci & VLAN_VID_MASK);
    match vid {
        0 if port.pvid == PVID_NONE => Err(Reason::DropVlanIngress),
        0 => Ok(Classified {
            vid: port.pvid,
            tci,
        }),
        vid if port.is_member(vid) => Ok(Classified { vid, tci }),
        _ => Err(Reason::DropVlanIngress),
    }
}

/// Learns the source where the port's flags and the bridge's mode allow. On the uplink, a
/// source that lives behind another port is one of ours hairpinned back by the far side: never
/// moved to the uplink, and dropped in private mode. (Spec silent on a static entry there: the
/// datapath lets the hairpinned frame through, not counting it as spoofed.)
fn learn_source(
    bridge: &mut Bridge,
    run: &mut Run,
    port: &PortInfo,
    ingress: u32,
    src: [u8; 6],
    vid: u16,
) -> Result<(), Reason> {
    let key = FdbKey::new(src, vid);
    let home = bridge.fdb.get(&key).map(|entry| entry.ifindex);
    if port.has(POLICY_UPLINK) && home.is_some_and(|home| home != ingress) {
        return if port.has(POLICY_PRIVATE) {
            Err(Reason::DropPrivate)
        } else {
            Ok(())
        };
    }
    if !port.has(POLICY_LEARNING) {
        return Ok(());
    }
    fdb_update(bridge, run, port, ingress, key)
}

/// br_fdb_update: a new MAC is learned within the limits; a known one on its port is refreshed
/// once a second; one on another port moves, unless it is static (spoofed) or moved less than
/// a second ago (held).
fn fdb_update(
    bridge: &mut Bridge,
    run: &mut Run,
    port: &PortInfo,
    ingress: u32,
    key: FdbKey,
) -> Result<(), Reason> {
    let now = bridge.now;
    let Some(entry) = bridge.fdb.get(&key).copied() else {
        if take_learned_slot(bridge, port) {
            bridge.fdb.insert(key, learned(ingress, now, 0));
            run.learning = Learning::Learned;
            run.events.push(event(EventKind::Learned, key, ingress, 0));
        }
        return Ok(());
    };
    if entry.ifindex == ingress {
        if !entry.is_static() && now.saturating_sub(entry.last_seen_ns) >= FDB_REFRESH_NS {
            bridge
                .fdb
                .insert(key, learned(ingress, now, entry.moved_ns));
            run.learning = Learning::Refreshed;
        }
        return Ok(());
    }
    if entry.is_static() {
        return Err(Reason::DropSpoofed);
    }
    // Spec silent on a MAC that never moved: moved_ns 0 is "never", as in the datapath.
    if entry.moved_ns != 0 && now.saturating_sub(entry.moved_ns) < FDB_MOVE_HOLD_NS {
        run.learning = Learning::Held;
        run.events
            .push(event(EventKind::Flapping, key, ingress, entry.ifindex));
        return Ok(());
    }
    bridge.fdb.insert(key, learned(ingress, now, now));
    run.learning = Learning::Moved;
    run.events
        .push(event(EventKind::Moved, key, ingress, entry.ifindex));
    Ok(())
}

/// One more learned MAC for `port` and the bridge, unless either holds its limit (0: none for
/// both, spec silent for the bridge's). Spec silent on moves: they count for neither port (the
/// agent recounts every second).
fn take_learned_slot(bridge: &mut Bridge, port: &PortInfo) -> bool {
    let slot = u32::from(port.slot);
    let count = |slot: u32| bridge.learned.get(&slot).copied().unwrap_or(0);
    let full = |count: u64, limit: u32| limit != 0 && count >= u64::from(limit);
    if full(count(slot), port.max_learned)
        || full(count(BRIDGE_LEARNED_SLOT), bridge.info.max_learned)
    {
        return false;
    }
    for slot in [slot, BRIDGE_LEARNED_SLOT] {
        *bridge.learned.entry(slot).or_insert(0) += 1;
    }
    true
}

fn learned(ifindex: u32, now: u64, moved_ns: u64) -> FdbEntry {
    FdbEntry {
        ifindex,
        flags: 0,
        last_seen_ns: now,
        moved_ns,
    }
}

fn event(kind: EventKind, key: FdbKey, ifindex: u32, old_ifindex: u32) -> FdbEvent {
    FdbEvent::new(kind, key.mac, key.vlan, ifindex, old_ifindex)
}

/// Broadcast and multicast flood; a known unicast goes to its port, or is dropped when that is
/// the ingress port without hairpin; an unknown one floods.
fn destination(
    bridge: &Bridge,
    dst: &[u8; 6],
    vid: u16,
    ingress: u32,
    port: &PortInfo,
) -> Result<Destination, Reason> {
    if is_multicast(dst) {
        return Ok(Destination::Flood { missed: false });
    }
    match bridge.fdb.get(&FdbKey::new(*dst, vid)) {
        Some(entry) if entry.ifindex == ingress && !port.has(POLICY_HAIRPIN) => {
            Err(Reason::DropSamePort)
        }
        Some(entry) => Ok(Destination::Port(entry.ifindex)),
        None => Ok(Destination::Flood { missed: true }),
    }
}

/// The bridge's mode: in vepa, private and passthru modes everything from a guest goes out the
/// uplink, and in private mode a guest never reaches another one. Spec silent on a bridge
/// without an uplink (dropped as undeliverable) and on a guest's broadcasts there (sent to the
/// uplink alone, so not flooded, and not held to the guest's `flood_rate`), as in the datapath.
fn steer(
    info: &BridgeInfo,
    port: &PortInfo,
    destination: Destination,
) -> Result<Destination, Reason> {
    if !port.has(POLICY_VIA_UPLINK) {
        return Ok(destination);
    }
    let uplink = info.uplink_ifindex;
    if uplink == 0 {
        return Err(Reason::DropRedirect);
    }
    match destination {
        Destination::Port(egress) if egress != uplink && port.has(POLICY_PRIVATE) => {
            Err(Reason::DropPrivate)
        }
        _ => Ok(Destination::Port(uplink)),
    }
}

/// Known unicast (or anything a guest sends up the uplink): to its port if that is a port,
/// isolation allows, native XDP can reach it and it is a member of the frame's VLAN, tagged as
/// it wants. Spec silent on the order of these checks; this is the datapath's.
fn to_port(
    bridge: &Bridge,
    from: &PortInfo,
    egress: u32,
    frame: &Classified,
    bytes: &mut Vec<u8>,
) -> Result<(Verdict, Reason), Reason> {
    let target = bridge.ports.get(&egress).ok_or(Reason::DropRedirect)?;
    if from.has(POLICY_ISOLATED) && target.has(POLICY_ISOLATED) {
        return Err(Reason::DropIsolated);
    }
    if is_native(from) && !is_native(target) {
        return Err(Reason::PassToSkb);
    }
    if !target.is_member(frame.vid) {
        return Err(Reason::DropVlanEgress);
    }
    set_tag(bytes, frame, frame.vid != target.pvid);
    Ok((Verdict::Redirect(egress), Reason::Forwarded))
}

/// Native XDP redirects only to native XDP ports; generic XDP reaches any device.
fn is_native(port: &PortInfo) -> bool {
    port.mode == PortMode::XdpNative as u8
}

/// While the bridge has skb-only ports, a frame that came in by native XDP floods by the skb
/// path, which reaches them.
fn flood_by_xdp(info: &BridgeInfo, port: &PortInfo) -> Result<(), Reason> {
    if is_native(port) && info.skb_ports != 0 {
        return Err(Reason::PassToSkb);
    }
    Ok(())
}

/// Broadcast, multicast and unknown unicast: to every other port, unless the ingress port spent
/// its storm-control budget.
fn flood(
    bridge: &mut Bridge,
    port: &PortInfo,
    frame: &Classified,
    bytes: &mut Vec<u8>,
) -> Result<(Verdict, Reason), Reason> {
    if !storm_allows(bridge, port) {
        return Err(Reason::DropStorm);
    }
    mark_flood(bytes, frame);
    Ok((Verdict::Flood, Reason::Flooded))
}

/// Storm control: a token bucket of flooded frames per port, refilled at `flood_rate` per
/// second (0: no limit), counted in thousandths of a frame. Spec silent on the bucket's size:
/// one second's worth, as in the datapath, which also refills only in whole milliseconds.
fn storm_allows(bridge: &mut Bridge, port: &PortInfo) -> bool {
    if port.flood_rate == 0 {
        return true;
    }
    let now = bridge.now;
    let bucket = bridge.storm.entry(port.slot).or_default();
    let rate = u64::from(port.flood_rate);
    let refill = now.saturating_sub(bucket.refilled_ns).min(NS_PER_S) / NS_PER_MS * rate;
    if refill > 0 {
        bucket.milli_tokens = (bucket.milli_tokens + refill).min(rate * MILLI);
        bucket.refilled_ns = now;
    }
    if bucket.milli_tokens < MILLI {
        return false;
    }
    bucket.milli_tokens -= MILLI;
    true
}

/// Where each copy of the frame goes and what it looks like there, once `vbr_egress` has run:
/// the one port of a redirect, every port that takes a flood copy.
pub fn deliveries(bridge: &Bridge, ingress: u32, outcome: &Outcome) -> BTreeMap<u32, Vec<u8>> {
    match outcome.verdict {
        Verdict::Redirect(egress) => BTreeMap::from([(egress, outcome.frame.clone())]),
        Verdict::Flood => flood_copies(bridge, ingress, &outcome.frame),
        Verdict::Drop | Verdict::Pass => BTreeMap::new(),
    }
}

/// The copies of a marked flood frame: one per port but the ingress one (unless it has
/// hairpin), kept where the port is a member of the frame's VLAN and the flood is allowed,
/// untagged where the VLAN is its PVID, 802.1Q-tagged elsewhere.
fn flood_copies(bridge: &Bridge, ingress: u32, marked: &[u8]) -> BTreeMap<u32, Vec<u8>> {
    let from = &bridge.ports[&ingress];
    let vid = be16(marked, TCI_AT) & VLAN_VID_MASK;
    let header = header(marked).expect("a marked frame has a header");
    bridge
        .ports
        .iter()
        .filter(|(ifindex, _)| **ifindex != ingress || from.has(POLICY_HAIRPIN))
        .filter(|(ifindex, to)| {
            to.is_member(vid) && flood_allowed(bridge, from, to, **ifindex, &header, vid)
        })
        .map(|(ifindex, to)| (*ifindex, finish_flood(marked, to, vid)))
        .collect()
}

/// Whether a flood copy may leave by `to`: the port must take this kind of flood (its flags),
/// isolated ports do not talk to each other, and a flood that the uplink's far side hairpinned
/// back does not return to the port its source lives behind (README, vepa).
fn flood_allowed(
    bridge: &Bridge,
    from: &PortInfo,
    to: &PortInfo,
    to_ifindex: u32,
    header: &Header,
    vid: u16,
) -> bool {
    let wanted = if header.dst == BROADCAST {
        POLICY_BCAST_FLOOD
    } else if is_multicast(&header.dst) {
        POLICY_MCAST_FLOOD
    } else {
        POLICY_FLOOD
    };
    let home = bridge
        .fdb
        .get(&FdbKey::new(header.src, vid))
        .map(|entry| entry.ifindex);
    to.has(wanted)
        && !(from.has(POLICY_ISOLATED) && to.has(POLICY_ISOLATED))
        && !(from.has(POLICY_UPLINK) && home == Some(to_ifindex))
}

/// A flood copy as it leaves `port`: the mark popped where the VLAN is its PVID, an 802.1Q tag
/// otherwise.
fn finish_flood(marked: &[u8], port: &PortInfo, vid: u16) -> Vec<u8> {
    let mut copy = marked.to_vec();
    if vid == port.pvid {
        pop_tag(&mut copy);
    } else {
        put16(&mut copy, TPID_AT, ETH_P_8021Q);
    }
    copy
}

/// Gives the frame an 802.1Q tag for its VLAN (`tagged`) or none, keeping PCP and DEI; a
/// priority tag gets the VID.
fn set_tag(bytes: &mut Vec<u8>, frame: &Classified, tagged: bool) {
    match (frame.tci, tagged) {
        (None, true) => push_tag(bytes, ETH_P_8021Q, frame.vid),
        (Some(tci), true) => put16(bytes, TCI_AT, (tci & !VLAN_VID_MASK) | frame.vid),
        (Some(_), false) => pop_tag(bytes),
        (None, false) => {}
    }
}

/// Marks a flood copy: its 802.1Q tag (or a new one) gets TPID 0x88b6 and the frame's VID,
/// PCP and DEI kept.
fn mark_flood(bytes: &mut Vec<u8>, frame: &Classified) {
    match frame.tci {
        Some(tci) => {
            put16(bytes, TPID_AT, ETH_P_VBR_FLOOD);
            put16(bytes, TCI_AT, (tci & !VLAN_VID_MASK) | frame.vid);
        }
        None => push_tag(bytes, ETH_P_VBR_FLOOD, frame.vid),
    }
}

fn push_tag(bytes: &mut Vec<u8>, tpid: u16, tci: u16) {
    let tag = [tpid.to_be_bytes(), tci.to_be_bytes()].concat();
    bytes.splice(TPID_AT..TPID_AT, tag);
}

fn pop_tag(bytes: &mut Vec<u8>) {
    bytes.drain(TPID_AT..TPID_AT + VLAN_HLEN);
}

fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn put16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
}
