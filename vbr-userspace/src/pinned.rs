//! A running bridge as the kernel holds it: its maps pinned under /sys/fs/bpf/vbr/<bridge>/.
//! The agent and the CLI both work through these pins.
use std::{fs, io::ErrorKind};

use anyhow::{Context as _, bail};
use aya::maps::{HashMap, Map, MapData};
use vbr_common::{
    fdb::{FdbEntry, FdbKey},
    map_names,
    port::PortInfo,
};

use crate::{fdb::Fdb, paths};

pub struct PinnedBridge {
    pub name: String,
    pub ports: HashMap<MapData, u32, PortInfo>,
    pub fdb: Fdb,
}

impl PinnedBridge {
    /// Opens the pins of bridge `name`.
    pub fn open(name: &str) -> anyhow::Result<Self> {
        let dir = paths::bridge_dir(name);
        if !dir.is_dir() {
            bail!(
                "no bridge {name:?} is running (nothing pinned at {})",
                dir.display()
            );
        }
        Ok(Self {
            name: name.to_owned(),
            ports: open_hash_map(name, map_names::PORTS)?,
            fdb: Fdb::new(open_hash_map::<FdbKey, FdbEntry>(name, map_names::FDB)?),
        })
    }

    /// The bridges `bridge` selects: that one, or every running bridge when it is `None`.
    pub fn select(bridge: Option<&str>) -> anyhow::Result<Vec<Self>> {
        match bridge {
            Some(name) => Ok(vec![Self::open(name)?]),
            None => running_bridges()?
                .iter()
                .map(|name| Self::open(name))
                .collect(),
        }
    }

    /// The port `ifindex` of this bridge, if it is one.
    pub fn port(&self, ifindex: u32) -> Option<PortInfo> {
        self.ports.get(&ifindex, 0).ok()
    }

    /// Every port as (ifindex, info), by ifindex.
    pub fn port_list(&self) -> anyhow::Result<Vec<(u32, PortInfo)>> {
        let mut ports = self
            .ports
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading the ports of bridge {}", self.name))?;
        ports.sort_by_key(|(ifindex, _)| *ifindex);
        Ok(ports)
    }
}

/// Names of the bridges that have pins, sorted.
pub fn running_bridges() -> anyhow::Result<Vec<String>> {
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

fn open_hash_map<K: aya::Pod, V: aya::Pod>(
    bridge: &str,
    map: &str,
) -> anyhow::Result<HashMap<MapData, K, V>> {
    let path = paths::map_pin(bridge, map);
    let data = MapData::from_pin(&path)
        .with_context(|| format!("opening pinned map {} (are you root?)", path.display()))?;
    let map = Map::from_map_data(data)
        .with_context(|| format!("pinned map {} has an unexpected type", path.display()))?;
    HashMap::try_from(map)
        .with_context(|| format!("pinned map {} has an unexpected layout", path.display()))
}
