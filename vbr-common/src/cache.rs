//! The datapath's per-CPU caches of maps (`fdb_cache`, `port_cache`): a slot copies what a map
//! held, and is trusted while the map's generation (`fdb_generation`, `port_generation`) is the
//! one it was filled under, for at most `CACHE_TTL_NS`. Every writer of the map replaces the
//! generation with a fresh reading of CLOCK_MONOTONIC, a value no writer gave it before.

/// A cached slot is trusted at most this long, whatever its map's generation says: a bound on
/// what a writer that does not replace the generation (bpftool by hand) can leave stale.
pub const CACHE_TTL_NS: u64 = 1_000_000_000;

/// When, and under which generation of its map, a cache slot was filled.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheStamp {
    /// The map's generation, read before the lookup that filled the slot: a writer that changes
    /// the map after that lookup replaces the generation after it, so the slot is never trusted.
    pub generation: u64,
    /// When the slot was filled (the datapath's coarse clock).
    pub filled_ns: u64,
}

impl CacheStamp {
    /// Whether the slot may be trusted at `now` while its map's generation is `generation`.
    #[inline(always)]
    pub const fn is_current(&self, generation: u64, now: u64) -> bool {
        self.generation == generation && now.wrapping_sub(self.filled_ns) < CACHE_TTL_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_current_under_its_generation_for_less_than_the_ttl() {
        let stamp = CacheStamp {
            generation: 7,
            filled_ns: 1_000,
        };
        assert!(stamp.is_current(7, 1_000));
        assert!(stamp.is_current(7, 1_000 + CACHE_TTL_NS - 1));
        assert!(!stamp.is_current(7, 1_000 + CACHE_TTL_NS), "too old");
        assert!(!stamp.is_current(8, 1_000), "the map changed");
        assert!(
            !CacheStamp {
                generation: 0,
                filled_ns: 0
            }
            .is_current(0, 5 * CACHE_TTL_NS),
            "a never-filled slot of a never-written map"
        );
    }
}
