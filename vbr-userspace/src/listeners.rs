//! MACs that other stacks listen on through a port: macvlans (and macvtaps) of the port's
//! device, wherever their namespace. Each adds its MAC to the device's unicast address filter,
//! which rtnetlink lists with the bridge family (`bridge fdb show dev X`: "self permanent").
use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use futures_util::TryStreamExt as _;
use netlink_packet_route::{AddressFamily, neighbour::NeighbourAttribute};

/// The unicast MACs in the address filters of the devices `ifindexes`, per device.
pub async fn listened_macs(
    netlink: &rtnetlink::Handle,
    ifindexes: &BTreeSet<u32>,
) -> anyhow::Result<BTreeMap<u32, BTreeSet<[u8; 6]>>> {
    let entries: Vec<_> = netlink
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge)
        .execute()
        .try_collect()
        .await
        .context("dumping the devices' address filters")?;
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
