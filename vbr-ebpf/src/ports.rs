//! The bridge's ports as a frame reads them: this CPU's copy in `port_cache` while it is current,
//! else the `ports` map, whose entry is then copied there. Ports change rarely and a frame reads
//! two of them: copies save two hash lookups a frame.
use vbr_common::{
    cache::CacheStamp,
    port::{PORT_CACHE_SLOTS, PortInfo},
};

use crate::maps::{PORT_CACHE, PORT_GENERATION, PORTS};

/// One frame's view of the ports. The generation and the time are read once a frame, so a slot
/// the frame filled or found current stays so until it ends: a later read never refills a slot
/// under a reference the frame holds.
pub struct Ports {
    generation: u64,
    now: u64,
}

impl Ports {
    #[inline(always)]
    pub fn new(now: u64) -> Self {
        Self {
            generation: PORT_GENERATION.get(0).copied().unwrap_or(0),
            now,
        }
    }

    /// Port `ifindex`, or `None` when the interface is not a port of the bridge.
    #[inline(always)]
    pub fn get(&self, ifindex: u32) -> Option<&PortInfo> {
        let slot = PORT_CACHE.get_ptr_mut(ifindex & (PORT_CACHE_SLOTS - 1));
        let mut stale = true;
        if let Some(slot) = slot {
            // SAFETY: per-CPU slot, only this CPU's programs touch it, one at a time.
            let slot = unsafe { &*slot };
            stale = !slot.stamp.is_current(self.generation, self.now);
            if !stale && slot.ifindex == ifindex {
                return Some(&slot.info);
            }
        }
        // SAFETY: the pointer comes from a successful map lookup.
        let info = unsafe { &*PORTS.get_ptr(ifindex)? };
        if let Some(slot) = slot
            && stale
        {
            // SAFETY: as above.
            let slot = unsafe { &mut *slot };
            // A non-overlapping copy compiles inline (a struct assignment would call memmove).
            unsafe { core::ptr::copy_nonoverlapping(info, &mut slot.info, 1) };
            slot.stamp = CacheStamp {
                generation: self.generation,
                filled_ns: self.now,
            };
            slot.ifindex = ifindex;
        }
        Some(info)
    }

    /// Port `ifindex` as `get` finds it, without ever filling a slot: for loops over many
    /// ports, where the copy in every round would cost the verifier more than it saves.
    #[inline(always)]
    pub fn peek(&self, ifindex: u32) -> Option<&PortInfo> {
        if let Some(slot) = PORT_CACHE.get(ifindex & (PORT_CACHE_SLOTS - 1))
            && slot.ifindex == ifindex
            && slot.stamp.is_current(self.generation, self.now)
        {
            return Some(&slot.info);
        }
        // SAFETY: the pointer comes from a successful map lookup.
        PORTS.get_ptr(ifindex).map(|info| unsafe { &*info })
    }
}
