//! A running bridge as the kernel holds it: its maps pinned under /sys/fs/bpf/vbr/<bridge>/.
//! The agent and the CLI both work through these pins.
use std::{fs, io::ErrorKind, os::unix::fs::MetadataExt as _};

use anyhow::{Context as _, bail};
use aya::maps::{Array, Map, MapData};
use vbr_common::{MAP_LAYOUT_VERSION, bridge::BridgeInfo, map_names, port::PortInfo};

use crate::{fdb::Fdb, paths, ports::Ports};

pub struct PinnedBridge {
    pub name: String,
    /// Ifindex of the Linux bridge this one accelerates; 0 for a vbr bridge.
    pub accelerates: u32,
    pub ports: Ports,
    pub fdb: Fdb,
}

impl PinnedBridge {
    /// Opens the pins of bridge `name`, which must run in this network namespace: its ports'
    /// ifindexes mean nothing elsewhere.
    pub fn open(name: &str) -> anyhow::Result<Self> {
        let dir = paths::bridge_dir(name);
        if !dir.is_dir() {
            bail!(
                "no bridge {name:?} is running (nothing pinned at {})",
                dir.display()
            );
        }
        if !runs_here(name)? {
            bail!(
                "bridge {name:?} runs in another network namespace: run vbr there \
                 (`nsenter --net=<namespace> vbr ...`)"
            );
        }
        Ok(Self {
            name: name.to_owned(),
            accelerates: info(name)?.map_or(0, |info| info.accelerates),
            ports: Ports::new(
                open_map(name, map_names::PORTS)?,
                open_map(name, map_names::PORT_GENERATION)?,
            ),
            fdb: Fdb::new(
                open_map(name, map_names::FDB)?,
                open_map(name, map_names::FDB_GENERATION)?,
            ),
        })
    }

    /// The bridges `bridge` selects: that one, or every bridge running in this network
    /// namespace when it is `None`.
    pub fn select(bridge: Option<&str>) -> anyhow::Result<Vec<Self>> {
        match bridge {
            Some(name) => Ok(vec![Self::open(name)?]),
            None => local_bridges()?
                .iter()
                .map(|name| Self::open(name))
                .collect(),
        }
    }

    /// Refuses changes to the fast path of an accelerated Linux bridge: its ports, VLANs and
    /// entries are the kernel bridge's, and the agent would undo them.
    pub fn ensure_editable(&self) -> anyhow::Result<()> {
        if self.accelerates != 0 {
            bail!(
                "bridge {:?} is vbr's fast path beside the Linux bridge of that name: change the \
                 Linux bridge (`bridge fdb`, `bridge vlan`, `bridge link`) and vbr follows",
                self.name
            );
        }
        Ok(())
    }

    /// The port `ifindex` of this bridge, if it is one.
    pub fn port(&self, ifindex: u32) -> Option<PortInfo> {
        self.ports.get(ifindex)
    }

    /// Every port as (ifindex, info), by ifindex.
    pub fn port_list(&self) -> anyhow::Result<Vec<(u32, PortInfo)>> {
        self.ports
            .list()
            .with_context(|| format!("reading the ports of bridge {}", self.name))
    }
}

/// Names of the bridges running in this network namespace, sorted.
pub fn local_bridges() -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for name in pinned_bridges()? {
        if runs_here(&name)? {
            names.push(name);
        }
    }
    Ok(names)
}

/// Writes `value` as the info of bridge `name`, stamped with the calling thread's network
/// namespace and this vbr's map layout. Written first when a bridge's pins are complete (pins
/// without it are an unfinished start), again as its ports and settings change.
pub fn write_info(name: &str, mut value: BridgeInfo) -> anyhow::Result<()> {
    let mut info: Array<MapData, BridgeInfo> = open_map(name, map_names::INFO)?;
    value.netns_inode = current_netns_inode()?;
    value.layout_version = MAP_LAYOUT_VERSION;
    info.set(0, value, 0)
        .with_context(|| format!("writing the info map of bridge {name}"))
}

/// The info of bridge `name`, or `None` if its creation never finished.
pub fn info(name: &str) -> anyhow::Result<Option<BridgeInfo>> {
    if !paths::map_pin(name, map_names::INFO).exists() {
        return Ok(None);
    }
    let info: Array<MapData, BridgeInfo> = open_map(name, map_names::INFO)?;
    let value = info
        .get(&0, 0)
        .with_context(|| format!("reading the info map of bridge {name}"))?;
    Ok((value.layout_version != 0).then_some(value))
}

/// Whether bridge `name` runs in the calling thread's network namespace.
fn runs_here(name: &str) -> anyhow::Result<bool> {
    Ok(info(name)?.is_some_and(|info| info.netns_inode == current_netns_inode().unwrap_or(0)))
}

fn current_netns_inode() -> anyhow::Result<u64> {
    let path = "/proc/thread-self/ns/net";
    Ok(fs::metadata(path)
        .with_context(|| format!("reading {path}"))?
        .ino())
}

/// Names of every bridge that has pins, in any network namespace, sorted.
fn pinned_bridges() -> anyhow::Result<Vec<String>> {
    let entries = match fs::read_dir(paths::PIN_ROOT) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(error).with_context(|| format!("listing {}", paths::PIN_ROOT));
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", paths::PIN_ROOT))?;
        if entry.path().is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Opens the pinned map `map` of `bridge` as the typed map `M`.
pub fn open_map<M>(bridge: &str, map: &str) -> anyhow::Result<M>
where
    M: TryFrom<Map, Error = aya::maps::MapError>,
{
    let path = paths::map_pin(bridge, map);
    let data = MapData::from_pin(&path)
        .with_context(|| format!("opening pinned map {} (are you root?)", path.display()))?;
    let map = Map::from_map_data(data)
        .with_context(|| format!("pinned map {} has an unexpected type", path.display()))?;
    M::try_from(map)
        .with_context(|| format!("pinned map {} has an unexpected layout", path.display()))
}
