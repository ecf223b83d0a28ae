//! The host's own port on a bridge (what an address on a Linux bridge is): a veth pair the agent
//! makes, the host side carrying the configured address, the other side a port of the bridge.
use anyhow::Context as _;
use futures_util::TryStreamExt as _;
use rtnetlink::{LinkUnspec, LinkVeth};

use crate::{config::HostPortConfig, netdev};

/// Makes the host port's veth pair if missing, gives the host side its address, brings both up.
pub async fn ensure(netlink: &rtnetlink::Handle, host: &HostPortConfig) -> anyhow::Result<()> {
    let port = host.port_ifname();
    if netdev::ifindex(&host.ifname).is_err() {
        netlink
            .link()
            .add(LinkVeth::new(&host.ifname, &port).build())
            .execute()
            .await
            .with_context(|| format!("creating the host port {} <-> {port}", host.ifname))?;
        tracing::info!(host = %host.ifname, port = %port, "host port created");
    }
    let host_index = netdev::ifindex(&host.ifname)?;
    if let Some(address) = host.address {
        let present = netlink
            .address()
            .get()
            .set_link_index_filter(host_index)
            .execute()
            .try_collect::<Vec<_>>()
            .await
            .with_context(|| format!("reading the addresses of {}", host.ifname))?
            .iter()
            .any(|message| {
                message.attributes.iter().any(|attribute| {
                    matches!(attribute,
                        netlink_packet_route::address::AddressAttribute::Address(ip) if *ip == address.ip)
                })
            });
        if !present {
            netlink
                .address()
                .add(host_index, address.ip, address.prefix_len)
                .execute()
                .await
                .with_context(|| {
                    format!(
                        "adding {}/{} to {}",
                        address.ip, address.prefix_len, host.ifname
                    )
                })?;
        }
    }
    for ifname in [host.ifname.as_str(), port.as_str()] {
        let index = netdev::ifindex(ifname)?;
        netlink
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .with_context(|| format!("bringing {ifname} up"))?;
    }
    Ok(())
}

/// Deletes the host port's veth pair (both sides go together), if it exists.
pub async fn remove(netlink: &rtnetlink::Handle, host: &HostPortConfig) -> anyhow::Result<()> {
    let Ok(index) = netdev::ifindex(&host.ifname) else {
        return Ok(());
    };
    netlink
        .link()
        .del(index)
        .execute()
        .await
        .with_context(|| format!("deleting the host port {}", host.ifname))?;
    tracing::info!(host = %host.ifname, "host port deleted");
    Ok(())
}
