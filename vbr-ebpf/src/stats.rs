//! Per-CPU frame counters, one per `Reason`.
use vbr_common::stats::Reason;

use crate::maps::STATS;

#[inline(always)]
pub fn count(reason: Reason) {
    if let Some(counter) = STATS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *counter += 1 };
    }
}
