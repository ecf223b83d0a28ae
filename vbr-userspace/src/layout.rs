//! Whether pinned maps can be read by this vbr. aya reuses a pinned map by name without looking
//! at it, so a bridge pinned by another vbr version is checked here first: refused with a clear
//! message rather than misread.
use std::mem::size_of;

use anyhow::{Context as _, bail};
use aya::maps::MapInfo;
use vbr_common::{
    FLOOD_BARE_SLOTS, MAP_LAYOUT_VERSION, MAX_FDB_ENTRIES, MAX_PORTS,
    bridge::BridgeInfo,
    event::{EVENTS_RING_BYTES, EventBudget},
    fdb::{FDB_CACHE_SLOTS, FdbCacheSlot, FdbEntry, FdbKey},
    flow::FlowCacheSlot,
    map_names,
    port::{PORT_CACHE_SLOTS, PortCacheSlot, PortInfo, VLAN_BITMAP_WORDS},
    stats::{Counters, Reason, StormBucket},
};

use crate::{datapath, paths, pinned};

/// Key size, value size and capacity this vbr gives map `name`, on a machine whose `flow_cache`
/// has `flow_cache_entries` (see `datapath::flow_cache_entries`).
fn expected(name: &str, flow_cache_entries: u32) -> Option<(u32, u32, u32)> {
    let size = |bytes: usize| bytes as u32;
    // A devmap value is `struct bpf_devmap_val`: the target ifindex and a program fd/id.
    let devmap = |capacity: u32| (size(size_of::<u32>()), size(2 * size_of::<u32>()), capacity);
    Some(match name {
        map_names::FDB => (
            size(size_of::<FdbKey>()),
            size(size_of::<FdbEntry>()),
            MAX_FDB_ENTRIES,
        ),
        map_names::PORTS => (
            size(size_of::<u32>()),
            size(size_of::<PortInfo>()),
            MAX_PORTS,
        ),
        map_names::EGRESS => devmap(MAX_PORTS),
        map_names::FLOOD_BARE => devmap(FLOOD_BARE_SLOTS),
        map_names::STATS => (
            size(size_of::<u32>()),
            size(size_of::<u64>()),
            Reason::COUNT,
        ),
        map_names::PORT_STATS => (
            size(size_of::<u32>()),
            size(size_of::<Counters>()),
            MAX_PORTS,
        ),
        map_names::VLAN_STATS => (
            size(size_of::<u32>()),
            size(size_of::<Counters>()),
            size(VLAN_BITMAP_WORDS * 64),
        ),
        map_names::EVENTS => (0, 0, EVENTS_RING_BYTES),
        map_names::EVENT_BUDGET => (size(size_of::<u32>()), size(size_of::<EventBudget>()), 1),
        map_names::INFO => (size(size_of::<u32>()), size(size_of::<BridgeInfo>()), 1),
        map_names::SLOTS => (size(size_of::<u32>()), size(size_of::<u32>()), MAX_PORTS),
        map_names::XDP_BATCH => (size(size_of::<u32>()), size(size_of::<u32>()), 1),
        map_names::FDB_CACHE => (
            size(size_of::<u32>()),
            size(size_of::<FdbCacheSlot>()),
            FDB_CACHE_SLOTS,
        ),
        map_names::FDB_GENERATION => (size(size_of::<u32>()), size(size_of::<u64>()), 1),
        map_names::FLOW_CACHE => (
            size(size_of::<u32>()),
            size(size_of::<FlowCacheSlot>()),
            flow_cache_entries,
        ),
        map_names::PORT_CACHE => (
            size(size_of::<u32>()),
            size(size_of::<PortCacheSlot>()),
            PORT_CACHE_SLOTS,
        ),
        map_names::PORT_GENERATION => (size(size_of::<u32>()), size(size_of::<u64>()), 1),
        map_names::PORT_LEARNED => (
            size(size_of::<u32>()),
            size(size_of::<u64>()),
            MAX_PORTS + 1,
        ),
        map_names::STORM => (
            size(size_of::<u32>()),
            size(size_of::<StormBucket>()),
            MAX_PORTS,
        ),
        _ => return None,
    })
}

/// Checks every pinned map of bridge `name` against this vbr's definitions.
pub fn check(name: &str) -> anyhow::Result<()> {
    let advice = format!(
        "the pins of bridge {name:?} were made by an incompatible vbr; use that vbr, or run \
         `vbr bridge del {name}` to start afresh (its learned entries are lost)"
    );
    if let Some(info) = pinned::info(name)?
        && info.layout_version != MAP_LAYOUT_VERSION
    {
        bail!(
            "map layout {} pinned, this vbr uses layout {MAP_LAYOUT_VERSION}: {advice}",
            info.layout_version
        );
    }
    let flow_cache_entries = datapath::flow_cache_entries()?;
    for map in map_names::ALL {
        let path = paths::map_pin(name, map);
        let info = MapInfo::from_pin(&path)
            .with_context(|| format!("reading pinned map {}", path.display()))?;
        let found = (info.key_size(), info.value_size(), info.max_entries());
        let wanted = expected(map, flow_cache_entries).expect("every map has a definition");
        if found != wanted {
            bail!(
                "pinned map {map} has key/value/entries {found:?}, this vbr expects {wanted:?}: {advice}"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_map_has_an_expected_shape() {
        for map in vbr_common::map_names::ALL {
            assert!(super::expected(map, 4096).is_some(), "{map}");
        }
    }
}
