//! Interfaces appearing and vanishing, from rtnetlink's link multicast group: how the agent
//! attaches a hotplug port when its interface appears and cleans a port that vanishes, without
//! polling.
use anyhow::Context as _;
use futures_util::StreamExt as _;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage},
};
use netlink_sys::{AsyncSocket as _, SocketAddr};
use rtnetlink::constants::RTMGRP_LINK;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    /// An interface appeared or changed.
    Present { ifindex: u32, name: String },
    /// An interface went away.
    Gone { ifindex: u32, name: String },
}

/// Starts watching the calling thread's network namespace; changes arrive on the receiver.
pub fn watch() -> anyhow::Result<mpsc::UnboundedReceiver<LinkChange>> {
    let (mut connection, _, mut messages) =
        rtnetlink::new_connection().context("opening an rtnetlink socket for link changes")?;
    connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_LINK))
        .context("joining rtnetlink's link group")?;
    tokio::spawn(connection);
    let (changes, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((message, _)) = messages.next().await {
            let change = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    named(&link).map(|(ifindex, name)| LinkChange::Present { ifindex, name })
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    named(&link).map(|(ifindex, name)| LinkChange::Gone { ifindex, name })
                }
                _ => None,
            };
            if let Some(change) = change
                && changes.send(change).is_err()
            {
                return;
            }
        }
    });
    Ok(receiver)
}

fn named(link: &LinkMessage) -> Option<(u32, String)> {
    link.attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::IfName(name) => Some((link.header.index, name.clone())),
            _ => None,
        })
}
