//! Which path a native XDP frame takes within the current flush (see `vbr_common::batch`): the
//! state is per CPU, as the kernel's redirect queues are, and `vbr_flush_watch` resets it when
//! they are flushed.
use vbr_common::batch::{BATCH_BARE_UNICAST, BATCH_CLEAN, BATCH_FLOODED};

use crate::maps::XDP_BATCH;

/// Whether a finished frame about to be redirected (unicast, or a flood finished at ingress) may
/// skip the devmap program: yes unless a flood went through the devmap since the last flush.
#[inline(always)]
pub fn finished_may_skip_egress() -> bool {
    take(BATCH_BARE_UNICAST)
}

/// Whether a flood must take the skb path because unicast left without the devmap program since
/// the last flush; if not, the flood goes through the devmap and the state says so.
#[inline(always)]
pub fn flood_must_take_skb_path() -> bool {
    !take(BATCH_FLOODED)
}

/// Claims this CPU's batch for `kind` (`BATCH_BARE_UNICAST` or `BATCH_FLOODED`): false when the
/// other kind has it since the last flush.
#[inline(always)]
fn take(kind: u32) -> bool {
    let Some(state) = XDP_BATCH.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
    unsafe {
        if *state != BATCH_CLEAN && *state != kind {
            return false;
        }
        *state = kind;
    }
    true
}

/// The CPU's redirect queues are being flushed: the next frame starts a new batch.
#[inline(always)]
pub fn flushed() {
    if let Some(state) = XDP_BATCH.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *state = BATCH_CLEAN };
    }
}
