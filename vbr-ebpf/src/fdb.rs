//! Forwarding database: source learning and destination lookup (br_fdb.c).
use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use vbr_common::{
    event::EventKind,
    fdb::{FDB_REFRESH_NS, FdbEntry, FdbKey},
};

use crate::{event, maps::FDB};

/// Records that `mac` in `vlan` lives behind `ifindex`. Static entries are never moved; a learned
/// entry is only rewritten when it moved or its timestamp is `FDB_REFRESH_NS` old, so a busy
/// flow does not write the same cache line on every frame.
#[inline(always)]
pub fn learn(mac: [u8; 6], vlan: u16, ifindex: u32) {
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
    write(key, ifindex, now);
    event::emit(event_kind, mac, vlan, ifindex, old_ifindex);
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

/// The port `mac` in `vlan` lives behind, if known.
#[inline(always)]
pub fn lookup(mac: [u8; 6], vlan: u16) -> Option<u32> {
    let key = FdbKey::new(mac, vlan);
    // SAFETY: the pointer comes from a successful map lookup.
    FDB.get_ptr(key).map(|entry| unsafe { (*entry).ifindex })
}
