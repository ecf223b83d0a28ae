//! Forwarding database: source learning and destination lookup (br_fdb.c).
use aya_ebpf::helpers::bpf_ktime_get_ns;
use vbr_common::fdb::{FDB_REFRESH_NS, FdbEntry, FdbKey};

use crate::maps::FDB;

/// Records that `mac` in `vlan` lives behind `ifindex`. Static entries are never moved; a learned
/// entry is only rewritten when it moved or its timestamp is `FDB_REFRESH_NS` old.
#[inline(always)]
pub fn learn(mac: [u8; 6], vlan: u16, ifindex: u32) {
    let key = FdbKey::new(mac, vlan);
    // SAFETY: `bpf_ktime_get_ns` has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(entry) = FDB.get_ptr(key) {
        // SAFETY: the pointer comes from a successful map lookup.
        let entry = unsafe { &*entry };
        if entry.is_static()
            || (entry.ifindex == ifindex && now.wrapping_sub(entry.last_seen_ns) < FDB_REFRESH_NS)
        {
            return;
        }
    }
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
