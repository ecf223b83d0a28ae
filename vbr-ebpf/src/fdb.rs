//! Forwarding database: source learning and destination lookup (br_fdb.c).
use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use vbr_common::{
    event::EventKind,
    fdb::{FDB_REFRESH_NS, FdbEntry, FdbKey},
    port::PortInfo,
    stats::Reason,
};

use crate::{
    event,
    maps::{FDB, PORT_LEARNED},
    parse::is_multicast,
};

/// Records that `mac` in `vlan` lives behind `ifindex` (`port`). Static entries are never moved;
/// a learned entry is only rewritten when it moved or its timestamp is `FDB_REFRESH_NS` old, so
/// a busy flow does not write the same cache line on every frame. A port holding its learned-MAC
/// limit learns no new MAC (its frames are still forwarded; replies to them flood).
#[inline(always)]
pub fn learn(mac: [u8; 6], vlan: u16, ifindex: u32, port: &PortInfo) {
    let key = FdbKey::new(mac, vlan);
    // The coarse clock (Linux ≥ 5.11) is cheap and plenty for a one-second refresh step; it
    // runs on CLOCK_MONOTONIC like the agent's ageing.
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let mut event_kind = EventKind::Learned;
    let mut old_ifindex = 0;
    if let Some(entry) = FDB.get_ptr(key) {
        // SAFETY: the pointer comes from a successful map lookup.
        let entry = unsafe { &*entry };
        if entry.is_static()
            || (entry.ifindex == ifindex && now.wrapping_sub(entry.last_seen_ns) < FDB_REFRESH_NS)
        {
            return;
        }
        if entry.ifindex == ifindex {
            // Only the timestamp was stale.
            write(key, ifindex, now);
            return;
        }
        event_kind = EventKind::Moved;
        old_ifindex = entry.ifindex;
    }
    if !take_learned_slot(port) {
        return;
    }
    write(key, ifindex, now);
    event::emit(event_kind, mac, vlan, ifindex, old_ifindex);
}

/// Counts one more learned MAC on `port`, unless it holds its limit. The count is shared by
/// all CPUs without atomics (the BPF target has no atomic add in core): two CPUs learning on one
/// port at the same instant may both pass, and the agent recounts exactly every second, which
/// also frees the places of entries that aged or moved away.
#[inline(always)]
fn take_learned_slot(port: &PortInfo) -> bool {
    let Some(count) = PORT_LEARNED.get_ptr_mut(u32::from(port.slot)) else {
        return true;
    };
    // SAFETY: the pointer comes from a successful map lookup.
    let count = unsafe { &mut *count };
    if port.max_learned != 0 && *count >= u64::from(port.max_learned) {
        return false;
    }
    *count += 1;
    true
}

#[inline(always)]
fn write(key: FdbKey, ifindex: u32, now: u64) {
    let entry = FdbEntry {
        ifindex,
        flags: 0,
        last_seen_ns: now,
    };
    // A full table only means this source floods back to it for a while: nothing to do.
    let _ = FDB.insert(key, entry, 0);
}

/// Where a frame for `dst` in `vlan` that came in on `ingress` goes.
pub enum Destination {
    /// The port the destination lives behind.
    Port(u32),
    /// Every other port of the VLAN; `missed` when the destination was an unknown unicast.
    Flood { missed: bool },
}

/// Looks the destination up (br_handle_frame_finish): multicast floods, a known unicast goes to
/// its port, an unknown one floods, and one that lives behind the ingress port is dropped unless
/// the port has hairpin on.
#[inline(always)]
pub fn destination(
    dst: [u8; 6],
    vlan: u16,
    ingress: u32,
    hairpin: bool,
) -> Result<Destination, Reason> {
    if is_multicast(&dst) {
        return Ok(Destination::Flood { missed: false });
    }
    // SAFETY: the pointer comes from a successful map lookup.
    match FDB
        .get_ptr(FdbKey::new(dst, vlan))
        .map(|entry| unsafe { (*entry).ifindex })
    {
        Some(egress) if egress == ingress && !hairpin => Err(Reason::DropSamePort),
        Some(egress) => Ok(Destination::Port(egress)),
        None => Ok(Destination::Flood { missed: true }),
    }
}
