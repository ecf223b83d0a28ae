//! XDP_REDIRECT into a veth delivers only if the veth's peer runs NAPI (an XDP program on the
//! peer, or GRO enabled on it, Linux ≥ 5.13); otherwise the kernel drops the frames without a
//! counter anywhere. The peer usually sits in a guest's network namespace, so the agent finds that
//! namespace and turns GRO on there, sparing operators a step they would not guess.
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

use crate::netdev;

/// ETHTOOL_SGRO from linux/ethtool.h (the legacy ioctl is enough to flip one feature).
const ETHTOOL_SGRO: u32 = 0x0000_002c;

/// `struct ethtool_value` from linux/ethtool.h.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Enables GRO on the peer of `ifindex` if it is a veth; does nothing for other devices.
pub async fn enable_peer_gro(handle: &rtnetlink::Handle, ifindex: u32) -> anyhow::Result<()> {
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
    std::thread::spawn(move || set_gro_in(netns, peer_ifindex))
        .join()
        .map_err(|_| anyhow!("the thread enabling GRO panicked"))?
        .with_context(|| format!("enabling GRO on the veth peer of interface {ifindex}"))
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
        if nsid_of(handle, &file).await? == Some(nsid) {
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
fn set_gro_in(netns: Option<File>, ifindex: u32) -> anyhow::Result<()> {
    if let Some(netns) = &netns {
        // SAFETY: a valid namespace fd; only this short-lived thread changes namespace.
        if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).context("entering the peer's namespace");
        }
    }
    let name = netdev::name(ifindex)?;
    // SAFETY: plain socket creation; the fd is closed below.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if socket < 0 {
        return Err(std::io::Error::last_os_error()).context("opening an ioctl socket");
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_SGRO,
        data: 1,
    };
    // SAFETY: zero is a valid ifreq; the name fits (kernel names are < IF_NAMESIZE).
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    // SAFETY: SIOCETHTOOL with a valid ifreq pointing at a valid ethtool_value.
    let rc = unsafe { libc::ioctl(socket, libc::SIOCETHTOOL, &mut request) };
    let error = std::io::Error::last_os_error();
    // SAFETY: `socket` is ours and open.
    unsafe { libc::close(socket) };
    if rc != 0 {
        return Err(error).with_context(|| format!("ETHTOOL_SGRO on {name}"));
    }
    Ok(())
}
