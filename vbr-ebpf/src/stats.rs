//! Per-CPU counters: frames per `Reason`, frames and bytes per port and per VLAN.
use vbr_common::{
    port::PortInfo,
    stats::{Counters, Reason},
};

use crate::maps::{PORT_STATS, STATS, VLAN_STATS};

#[inline(always)]
pub fn count(reason: Reason) {
    if let Some(counter) = STATS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *counter += 1 };
    }
}

/// Which half of `Counters` a frame adds to.
#[derive(Clone, Copy)]
pub enum Direction {
    Rx,
    Tx,
    Flood,
}

/// Adds one frame of `bytes` in VLAN `vid` to `port`, and to the VLAN if the bridge counts per
/// VLAN.
#[inline(always)]
pub fn add_port(direction: Direction, port: &PortInfo, vid: u16, bytes: usize) {
    add(direction, port.slot, port.counted_vlan(vid), bytes);
}

/// Adds one frame of `bytes` to port `slot` and, if the bridge counts per VLAN, to VLAN `vlan`
/// (see `PortInfo::counted_vlan`).
#[inline(always)]
pub fn add(direction: Direction, slot: u16, vlan: Option<u16>, bytes: usize) {
    if let Some(counters) = PORT_STATS.get_ptr_mut(u32::from(slot)) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { add_to(&mut *counters, direction, bytes as u64) };
    }
    if let Some(counters) = vlan.and_then(|vid| VLAN_STATS.get_ptr_mut(u32::from(vid))) {
        // SAFETY: as above.
        unsafe { add_to(&mut *counters, direction, bytes as u64) };
    }
}

#[inline(always)]
fn add_to(counters: &mut Counters, direction: Direction, bytes: u64) {
    let (frames, total) = match direction {
        Direction::Rx => (&mut counters.rx_frames, &mut counters.rx_bytes),
        Direction::Tx => (&mut counters.tx_frames, &mut counters.tx_bytes),
        Direction::Flood => (&mut counters.flood_frames, &mut counters.flood_bytes),
    };
    *frames += 1;
    *total += bytes;
}
