//! Forwarding database: source learning and destination lookup (br_fdb.c).
use aya_ebpf::helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns};
use vbr_common::{
    BRIDGE_LEARNED_SLOT,
    cache::CacheStamp,
    event::EventKind,
    fdb::{
        FDB_CACHE_F_SEEN, FDB_F_LOCAL, FDB_MOVE_HOLD_NS, FDB_REFRESH_NS, FdbCacheSlot, FdbEntry,
        FdbKey,
    },
    port::PortInfo,
    stats::Reason,
};

use crate::{
    event,
    maps::{FDB, FDB_CACHE, FDB_GENERATION, INFO, PORT_LEARNED},
    parse::is_multicast,
};

/// The time learning stamps and the cache ages by, read once a frame: the coarse clock
/// (Linux ≥ 5.11) is cheap and plenty for one-second steps; it runs on CLOCK_MONOTONIC like the
/// agent's ageing.
#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// Records that `mac` in `vlan` lives behind `ifindex` (`port`), as br_fdb_update does:
/// - a static entry never moves, and its MAC as source on another port is spoofed: dropped;
/// - a learned entry is rewritten only when it moved or its timestamp is `FDB_REFRESH_NS` old,
///   so a busy flow does not write the same cache line on every frame;
/// - a MAC that moved less than `FDB_MOVE_HOLD_NS` ago stays where it is (flapping, reported);
/// - a new MAC is not learned while its port or the bridge holds its learned-MAC limit (its
///   frames are still forwarded; replies to them flood).
///
/// A source this CPU's `fdb_cache` places on `ifindex`, in a slot learning filled
/// (`FDB_CACHE_F_SEEN`), needs nothing: the slot is younger than `CACHE_TTL_NS`, so a busy
/// source still reaches the map, and its refresh, about once per `CACHE_TTL_NS + FDB_REFRESH_NS`.
#[inline(always)]
pub fn learn(
    mac: [u8; 6],
    vlan: u16,
    ifindex: u32,
    port: &PortInfo,
    now: u64,
) -> Result<Learning, Reason> {
    let key = FdbKey::new(mac, vlan);
    let probe = match cached(key, now, FDB_CACHE_F_SEEN) {
        Ok((cached_ifindex, _)) if cached_ifindex == ifindex => return Ok(Learning::Settled),
        Ok(_) => None,
        Err(probe) => Some(probe),
    };
    let Some(entry) = FDB.get_ptr(key) else {
        if take_learned_slot(port) {
            write(key, ifindex, now, 0);
            event::emit(EventKind::Learned, mac, vlan, ifindex, 0);
        }
        return Ok(Learning::Unsettled);
    };
    // SAFETY: the pointer comes from a successful map lookup.
    let entry = unsafe { &*entry };
    if entry.ifindex == ifindex {
        if !entry.is_static() && now.saturating_sub(entry.last_seen_ns) >= FDB_REFRESH_NS {
            write(key, ifindex, now, entry.moved_ns);
        }
        if let Some(probe) = probe {
            probe.fill(key, ifindex, entry.flags | FDB_CACHE_F_SEEN, now);
        }
        return Ok(Learning::Settled);
    }
    if entry.is_static() {
        return Err(Reason::DropSpoofed);
    }
    if entry.moved_ns != 0 && now.saturating_sub(entry.moved_ns) < FDB_MOVE_HOLD_NS {
        event::emit(EventKind::Flapping, mac, vlan, ifindex, entry.ifindex);
        return Ok(Learning::Unsettled);
    }
    let old_ifindex = entry.ifindex;
    write(key, ifindex, now, now);
    invalidate_cached();
    event::emit(EventKind::Moved, mac, vlan, ifindex, old_ifindex);
    Ok(Learning::Unsettled)
}

/// What learning a source left behind.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Learning {
    /// Nothing to learn: the FDB places the source on the port its frame came by, fresh, or is not
    /// to be changed by it. The next frames of its flow would learn nothing either.
    Settled,
    /// The FDB changed, or a limit or a move's hold kept it from changing: the next frame may
    /// learn something.
    Unsettled,
}

/// Every CPU's cached destinations are stale: `fdb_generation` takes a value no writer gave it
/// before (a fresh reading of CLOCK_MONOTONIC, which userspace writers use too). A plain store
/// suffices: racing writers may leave an older value, but never one a cache slot holds.
#[inline(always)]
fn invalidate_cached() {
    if let Some(generation) = FDB_GENERATION.get_ptr_mut(0) {
        // SAFETY: the pointer comes from a successful map lookup; no preconditions for the clock.
        unsafe { *generation = bpf_ktime_get_ns() };
    }
}

/// The port and `FDB_F_*` bits of `key`'s entry: from this CPU's `fdb_cache` while the slot is
/// current, else from the `fdb` map.
#[inline(always)]
fn lookup(key: FdbKey, now: u64) -> Option<(u32, u32)> {
    let probe = match cached(key, now, 0) {
        Ok(hit) => return Some(hit),
        Err(probe) => probe,
    };
    // SAFETY: the pointer comes from a successful map lookup.
    let (ifindex, flags) = FDB
        .get_ptr(key)
        .map(|entry| unsafe { ((*entry).ifindex, (*entry).flags) })?;
    probe.fill(key, ifindex, flags, now);
    Some((ifindex, flags))
}

/// This CPU's `fdb_cache` slot for a key that it does not hold as asked, or holds stale.
struct Probe {
    slot: Option<*mut FdbCacheSlot>,
    /// `fdb_generation`, read before the `fdb` lookup that follows the probe.
    generation: u64,
    /// Whether `fill` may write the slot: it is stale, or holds the key without the bits asked.
    refill: bool,
}

/// The port and flags this CPU's `fdb_cache` holds for `key`, while its slot is current and has
/// the bits `required` (`FDB_CACHE_F_SEEN` or none); else the slot, for `Probe::fill` after a
/// look at the `fdb` map.
#[inline(always)]
fn cached(key: FdbKey, now: u64, required: u32) -> Result<(u32, u32), Probe> {
    let generation = FDB_GENERATION.get(0).copied().unwrap_or(0);
    let slot = FDB_CACHE.get_ptr_mut(key.cache_slot());
    let mut refill = true;
    if let Some(slot) = slot {
        // SAFETY: per-CPU slot, only this CPU's programs touch it, one at a time.
        let slot = unsafe { &*slot };
        let current = slot.stamp.is_current(generation, now);
        let ours = current && slot.key == key;
        if ours && slot.flags & required == required {
            return Ok((slot.ifindex, slot.flags));
        }
        refill = !current || ours;
    }
    Err(Probe {
        slot,
        generation,
        refill,
    })
}

impl Probe {
    /// Caches what the `fdb` map holds for `key`, if the slot is stale or already `key`'s: a
    /// working set larger than the cache then costs a read of the slot, not a write on every
    /// frame.
    #[inline(always)]
    fn fill(self, key: FdbKey, ifindex: u32, flags: u32, now: u64) {
        if let Some(slot) = self.slot
            && self.refill
        {
            // SAFETY: per-CPU slot, only this CPU's programs touch it, one at a time.
            unsafe {
                *slot = FdbCacheSlot {
                    key,
                    ifindex,
                    flags,
                    stamp: CacheStamp {
                        generation: self.generation,
                        filled_ns: now,
                    },
                }
            };
        }
    }
}

/// Counts one more learned MAC on `port` and on the bridge, unless either holds its limit. The
/// counts are shared by all CPUs without atomics (the BPF target has no atomic add in core): two
/// CPUs learning at the same instant may both pass, and the agent recounts exactly every second,
/// which also frees the places of entries that aged or moved away.
#[inline(always)]
fn take_learned_slot(port: &PortInfo) -> bool {
    let (Some(port_count), Some(bridge_count)) = (
        PORT_LEARNED.get_ptr_mut(u32::from(port.slot)),
        PORT_LEARNED.get_ptr_mut(BRIDGE_LEARNED_SLOT),
    ) else {
        return true;
    };
    // SAFETY: the pointers come from successful map lookups.
    let (port_count, bridge_count) = unsafe { (&mut *port_count, &mut *bridge_count) };
    // SAFETY: the pointer comes from a successful map lookup.
    let bridge_limit = INFO
        .get_ptr(0)
        .map_or(0, |info| unsafe { (*info).max_learned });
    let full = |count: u64, limit: u32| limit != 0 && count >= u64::from(limit);
    if full(*port_count, port.max_learned) || full(*bridge_count, bridge_limit) {
        return false;
    }
    *port_count += 1;
    *bridge_count += 1;
    true
}

#[inline(always)]
fn write(key: FdbKey, ifindex: u32, now: u64, moved_ns: u64) {
    let entry = FdbEntry {
        ifindex,
        flags: 0,
        last_seen_ns: now,
        moved_ns,
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
/// the port has hairpin on — or passed up, when a stack listens for it on that port.
#[inline(always)]
pub fn destination(
    dst: [u8; 6],
    vlan: u16,
    ingress: u32,
    hairpin: bool,
    now: u64,
) -> Result<Destination, Reason> {
    if is_multicast(&dst) {
        return Ok(Destination::Flood { missed: false });
    }
    match lookup(FdbKey::new(dst, vlan), now)
        .map(|(egress, flags)| (egress, flags & FDB_F_LOCAL != 0))
    {
        Some((egress, true)) if egress == ingress => Err(Reason::PassToStack),
        Some((egress, _)) if egress == ingress && !hairpin => Err(Reason::DropSamePort),
        Some((egress, _)) => Ok(Destination::Port(egress)),
        None => Ok(Destination::Flood { missed: true }),
    }
}
