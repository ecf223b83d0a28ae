//! Operations on a bridge's `ports` map.
use anyhow::Context as _;
use aya::maps::{Array, HashMap, MapData, MapError};
use vbr_common::{map_names, port::PortInfo};

use crate::cache::Generation;

/// The `ports` map, and the `port_generation` every change of it replaces: the datapath's
/// per-CPU copies of ports (`port_cache`) trust only slots filled under the current generation.
pub struct Ports {
    map: HashMap<MapData, u32, PortInfo>,
    generation: Generation,
}

impl Ports {
    pub fn new(map: HashMap<MapData, u32, PortInfo>, generation: Array<MapData, u64>) -> Self {
        Self {
            map,
            generation: Generation::new(generation, map_names::PORT_GENERATION),
        }
    }

    /// Port `ifindex`, if the interface is one.
    pub fn get(&self, ifindex: u32) -> Option<PortInfo> {
        self.map.get(&ifindex, 0).ok()
    }

    /// Every port as (ifindex, info), by ifindex.
    pub fn list(&self) -> anyhow::Result<Vec<(u32, PortInfo)>> {
        let mut ports = self
            .map
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .context("reading the ports map")?;
        ports.sort_by_key(|(ifindex, _)| *ifindex);
        Ok(ports)
    }

    /// Adds port `ifindex`, or replaces its configuration.
    pub fn set(&mut self, ifindex: u32, info: PortInfo) -> anyhow::Result<()> {
        self.map
            .insert(ifindex, info, 0)
            .with_context(|| format!("writing port {ifindex} to the ports map"))?;
        self.generation.replace()
    }

    /// Takes `ifindex` out of the map; nothing to do if it is not there.
    pub fn remove(&mut self, ifindex: u32) -> anyhow::Result<()> {
        match self.map.remove(&ifindex) {
            Ok(()) | Err(MapError::KeyNotFound) => self.generation.replace(),
            Err(MapError::SyscallError(error))
                if error.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                self.generation.replace()
            }
            Err(error) => {
                Err(error).with_context(|| format!("removing port {ifindex} from the ports map"))
            }
        }
    }
}
