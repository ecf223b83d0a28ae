//! Forwarding database: (MAC, VLAN) → port.
use crate::cache::CacheStamp;

/// Key of the `fdb` map, as the Linux bridge keys its FDB: `{ addr, vlan_id }`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FdbKey {
    pub mac: [u8; 6],
    pub vlan: u16,
}

/// Value of the `fdb` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    /// Port the MAC lives behind.
    pub ifindex: u32,
    /// `FDB_F_*` bits.
    pub flags: u32,
    /// CLOCK_MONOTONIC (the datapath's coarse clock) when the entry was last confirmed.
    pub last_seen_ns: u64,
    /// When the MAC last moved to another port: a MAC that moved less than `FDB_MOVE_HOLD_NS`
    /// ago is held where it is (flapping).
    pub moved_ns: u64,
}

/// Configured by the operator: never aged, never moved by learning.
pub const FDB_F_STATIC: u32 = 1 << 0;
/// The MAC belongs to a stack listening on its port (a macvlan of it, wherever it lives): frames
/// for it that arrive on that port go up that port's stack. Kept by the agent, static.
pub const FDB_F_LOCAL: u32 = 1 << 1;
/// Mirrored from the Linux bridge vbr accelerates: the kernel learns, moves and ages it; the fast
/// path only stamps `last_seen_ns`, for the agent to refresh the kernel's entry.
pub const FDB_F_MIRRORED: u32 = 1 << 2;

/// Learning rewrites an unchanged entry's timestamp at most this often: a write on every frame
/// would bounce the entry's cache line between CPUs.
pub const FDB_REFRESH_NS: u64 = 1_000_000_000;

/// A MAC that moved between ports is held on its new port this long: one flapping between two
/// ports (a loop, a spoofer) is reported, not bounced on every frame.
pub const FDB_MOVE_HOLD_NS: u64 = 1_000_000_000;

/// Slots of each CPU's `fdb_cache` (a power of two): destinations looked up recently, so that a
/// working set of a few thousand MACs costs the same in a table of a thousand or a million.
pub const FDB_CACHE_SLOTS: u32 = 4096;

/// In `FdbCacheSlot::flags` only: learning filled the slot, having found the entry's timestamp
/// fresh (or refreshed it). Only such a slot spares learning the map: a slot a destination
/// lookup filled says nothing about when the MAC last sent, and trusting it could let an active
/// source age out.
pub const FDB_CACHE_F_SEEN: u32 = 1 << 31;

/// One slot of a CPU's `fdb_cache`: what the `fdb` map held for `key` (see `crate::cache`).
/// Only found entries are cached.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbCacheSlot {
    pub key: FdbKey,
    /// The entry's port.
    pub ifindex: u32,
    /// The entry's `FDB_F_*` bits, and `FDB_CACHE_F_SEEN`.
    pub flags: u32,
    /// Under which `fdb_generation`, and when, the slot was filled.
    pub stamp: CacheStamp,
}

impl FdbKey {
    pub const fn new(mac: [u8; 6], vlan: u16) -> Self {
        Self { mac, vlan }
    }

    /// The key's `fdb_cache` slot: a multiplicative hash of its 8 bytes.
    pub const fn cache_slot(&self) -> u32 {
        let [a, b, c, d, e, f] = self.mac;
        let [g, h] = self.vlan.to_le_bytes();
        let word = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
        (word.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as u32 & (FDB_CACHE_SLOTS - 1)
    }
}

impl FdbEntry {
    pub const fn is_static(&self) -> bool {
        self.flags & FDB_F_STATIC != 0
    }

    pub const fn is_local(&self) -> bool {
        self.flags & FDB_F_LOCAL != 0
    }

    pub const fn is_mirrored(&self) -> bool {
        self.flags & FDB_F_MIRRORED != 0
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `#[repr(C)]` data without padding holes.
    unsafe impl aya::Pod for super::FdbKey {}
    unsafe impl aya::Pod for super::FdbEntry {}
    unsafe impl aya::Pod for super::FdbCacheSlot {}
}
