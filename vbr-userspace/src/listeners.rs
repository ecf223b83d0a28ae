//! MACs that other stacks listen on through a port: macvlans (and macvtaps) of the port's
//! device, wherever their namespace. Each adds its MAC to the device's unicast address filter,
//! which rtnetlink lists with the bridge family (`bridge fdb show dev X`: "self permanent").
use std::collections::{BTreeMap, BTreeSet};

use netlink_packet_route::neighbour::NeighbourAttribute;

use crate::kernel_bridge;

/// The unicast MACs in the address filters of the devices `ifindexes`, per device.
pub async fn listened_macs(
    netlink: &rtnetlink::Handle,
    ifindexes: &BTreeSet<u32>,
) -> anyhow::Result<BTreeMap<u32, BTreeSet<[u8; 6]>>> {
    let entries = kernel_bridge::bridge_neighbours(netlink).await?;
    let mut macs: BTreeMap<u32, BTreeSet<[u8; 6]>> = BTreeMap::new();
    for entry in entries {
        let ifindex = entry.header.ifindex;
        if !ifindexes.contains(&ifindex) {
            continue;
        }
        for attribute in &entry.attributes {
            if let NeighbourAttribute::LinkLayerAddress(address) = attribute
                && let Ok(mac) = <[u8; 6]>::try_from(address.as_slice())
                && mac[0] & 1 == 0
            {
                macs.entry(ifindex).or_default().insert(mac);
            }
        }
    }
    Ok(macs)
}
