//! FDB events for the agent, rate-limited per CPU so that a MAC flood cannot drown it.
use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use vbr_common::event::{EVENT_WINDOW_NS, EVENTS_PER_WINDOW, EventKind, FdbEvent};

use crate::maps::{EVENT_BUDGET, EVENTS};

#[inline(always)]
pub fn emit(kind: EventKind, mac: [u8; 6], vlan: u16, ifindex: u32, old_ifindex: u32) {
    let Some(budget) = EVENT_BUDGET.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU slot, only this CPU touches it while the program runs.
    let budget = unsafe { &mut *budget };
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if now.saturating_sub(budget.window_start_ns) >= EVENT_WINDOW_NS {
        budget.window_start_ns = now;
        budget.sent = 0;
    }
    if budget.sent >= EVENTS_PER_WINDOW {
        budget.suppressed = budget.suppressed.wrapping_add(1);
        return;
    }
    budget.sent += 1;
    let event = FdbEvent::new(kind, mac, vlan, ifindex, old_ifindex);
    // A full ring only loses this event: the agent is behind, forwarding is not.
    let _ = EVENTS.output(event, 0);
}
