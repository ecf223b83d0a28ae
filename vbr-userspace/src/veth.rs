//! The guest side of a veth port needs two settings, and usually sits in a guest's network
//! namespace, so the agent finds that namespace and makes them there, sparing operators steps
//! they would not guess:
//! - XDP_REDIRECT into a veth delivers only if the peer runs NAPI (an XDP program on the peer, or
//!   GRO enabled on it, Linux ≥ 5.13); otherwise the kernel drops the frames without a counter.
//! - With tx-vlan-offload on, the peer may hand a frame's 802.1Q tag over out of band (in skb
//!   metadata), where XDP on the port cannot see it; off, every tag travels in the frame.
//!
//! Both stay as set when the agent leaves: harmless to the guest, and its namespace may be gone.
use std::{
    collections::HashSet,
    fs::{self, File},
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::PathBuf,
};

use anyhow::{Context as _, anyhow, bail};
use futures_util::StreamExt as _;
use futures_util::TryStreamExt as _;
use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{InfoKind, LinkAttribute, LinkInfo},
    nsid::{NsidAttribute, NsidMessage},
};

use crate::{ethtool, netdev};

/// Prepares the peer of `ifindex` if it is a veth; does nothing for other devices.
pub async fn prepare_peer(handle: &rtnetlink::Handle, ifindex: u32) -> anyhow::Result<()> {
    let link = handle
        .link()
        .get()
        .match_index(ifindex)
        .execute()
        .try_next()
        .await
        .with_context(|| format!("reading link {ifindex} over netlink"))?
        .ok_or_else(|| anyhow!("link {ifindex} vanished"))?;
    let mut is_veth = false;
    let mut peer_ifindex = None;
    let mut peer_nsid = None;
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::LinkInfo(infos) => {
                is_veth = infos
                    .iter()
                    .any(|info| matches!(info, LinkInfo::Kind(InfoKind::Veth)));
            }
            LinkAttribute::Link(index) => peer_ifindex = Some(*index),
            LinkAttribute::LinkNetNsId(nsid) => peer_nsid = Some(*nsid),
            _ => {}
        }
    }
    let Some(peer_ifindex) = peer_ifindex.filter(|_| is_veth) else {
        return Ok(());
    };
    let netns = match peer_nsid {
        Some(nsid) => Some(find_netns(handle, nsid).await?),
        None => None,
    };
    std::thread::spawn(move || prepare_in(netns, peer_ifindex))
        .join()
        .map_err(|_| anyhow!("the thread preparing the veth peer panicked"))?
        .with_context(|| format!("preparing the veth peer of interface {ifindex}"))
}

/// Opens the network namespace that has `nsid` as seen from ours.
async fn find_netns(handle: &rtnetlink::Handle, nsid: i32) -> anyhow::Result<File> {
    let mut seen = HashSet::new();
    for path in netns_candidates() {
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        // A file in /run/netns that `ip netns add` is still mounting (or `del` unmounting) is
        // no namespace yet: the kernel refuses it, and it is not the one sought.
        if nsid_of(handle, &file).await.ok().flatten() == Some(nsid) {
            return Ok(file);
        }
    }
    bail!("found no network namespace with nsid {nsid} (neither in /run/netns nor in /proc)")
}

/// Named namespaces first (cheap, and where test and lab namespaces live), then every process's.
fn netns_candidates() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    paths.extend(
        fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .map(|entry| entry.path().join("ns/net")),
    );
    paths
}

/// RTM_GETNSID: the id our namespace gives the namespace `file` refers to, if any.
async fn nsid_of(handle: &rtnetlink::Handle, file: &File) -> anyhow::Result<Option<i32>> {
    let mut message = NsidMessage::default();
    message.attributes = vec![NsidAttribute::Fd(file.as_raw_fd() as u32)];
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetNsId(message));
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    let mut responses = handle
        .clone()
        .request(request)
        .context("sending RTM_GETNSID")?;
    while let Some(response) = responses.next().await {
        match response.payload {
            NetlinkPayload::Error(error) if error.code.is_some() => {
                return Err(anyhow!("RTM_GETNSID failed: {error:?}"));
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(reply)) => {
                let id = reply
                    .attributes
                    .iter()
                    .find_map(|attribute| match attribute {
                        NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                        _ => None,
                    });
                return Ok(id);
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Runs on a thread of its own: setns changes the calling thread's namespace for good.
fn prepare_in(netns: Option<File>, ifindex: u32) -> anyhow::Result<()> {
    if let Some(netns) = &netns {
        // SAFETY: a valid namespace fd; only this short-lived thread changes namespace.
        if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).context("entering the peer's namespace");
        }
    }
    let name = netdev::name(ifindex)?;
    ethtool::set_gro(&name, true)?;
    ethtool::update_flags(&name, ethtool::FLAG_TXVLAN, 0)?;
    Ok(())
}
