//! Operations on a bridge's forwarding database map.
use std::time::Duration;

use anyhow::{Context as _, bail};
use aya::maps::{Array, HashMap, MapData, MapError};
use vbr_common::{
    fdb::{FDB_F_LOCAL, FDB_F_MIRRORED, FDB_F_STATIC, FdbEntry, FdbKey},
    map_names,
};

use crate::cache::Generation;

/// BPF_NOEXIST: `bpf_map_update_elem` fails if the key is present.
const BPF_NOEXIST: u64 = 1;

/// The `fdb` map, and the `fdb_generation` every change of it replaces: the datapath's per-CPU
/// caches of destinations trust only slots filled under the current generation.
pub struct Fdb {
    map: HashMap<MapData, FdbKey, FdbEntry>,
    generation: Generation,
}

impl Fdb {
    pub fn new(map: HashMap<MapData, FdbKey, FdbEntry>, generation: Array<MapData, u64>) -> Self {
        Self {
            map,
            generation: Generation::new(generation, map_names::FDB_GENERATION),
        }
    }

    /// Every entry.
    pub fn entries(&self) -> anyhow::Result<Vec<(FdbKey, FdbEntry)>> {
        self.map
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .context("reading the fdb map")
    }

    /// Adds a static entry; with `replace` it overwrites an existing one, as `bridge fdb replace`.
    pub fn add_static(&mut self, key: FdbKey, ifindex: u32, replace: bool) -> anyhow::Result<()> {
        let entry = FdbEntry {
            ifindex,
            flags: FDB_F_STATIC,
            last_seen_ns: monotonic_now_ns(),
            moved_ns: 0,
        };
        match self
            .map
            .insert(key, entry, if replace { 0 } else { BPF_NOEXIST })
        {
            Ok(()) => self.generation.replace(),
            Err(MapError::SyscallError(error))
                if error.io_error.raw_os_error() == Some(libc::EEXIST) =>
            {
                bail!("the entry exists already (use `vbr fdb replace` to overwrite it)")
            }
            Err(error) => Err(error).context("writing the fdb map"),
        }
    }

    /// Adds (or refreshes) the local entry of a stack listening on port `ifindex`.
    pub fn add_local(&mut self, key: FdbKey, ifindex: u32) -> anyhow::Result<()> {
        let entry = FdbEntry {
            ifindex,
            flags: FDB_F_STATIC | FDB_F_LOCAL,
            last_seen_ns: monotonic_now_ns(),
            moved_ns: 0,
        };
        self.map
            .insert(key, entry, 0)
            .context("writing a local entry to the fdb map")?;
        self.generation.replace()
    }

    /// Writes the mirror of a Linux bridge's entry, behind `ifindex` as the kernel has it. The
    /// fast path's stamp starts cleared: it dates traffic seen on that port only.
    pub fn mirror(&mut self, key: FdbKey, ifindex: u32) -> anyhow::Result<()> {
        let entry = FdbEntry {
            ifindex,
            flags: FDB_F_MIRRORED,
            last_seen_ns: 0,
            moved_ns: 0,
        };
        self.map
            .insert(key, entry, 0)
            .context("writing a mirrored entry to the fdb map")?;
        self.generation.replace()
    }

    /// Removes an entry, static or learned; returns it.
    pub fn delete(&mut self, key: &FdbKey) -> anyhow::Result<FdbEntry> {
        let entry = self
            .map
            .get(key, 0)
            .map_err(|_| anyhow::anyhow!("no such entry"))?;
        match self.map.remove(key) {
            Ok(()) => self.generation.replace().map(|()| entry),
            Err(MapError::KeyNotFound) => bail!("no such entry"),
            Err(MapError::SyscallError(error))
                if error.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                bail!("no such entry")
            }
            Err(error) => Err(error).context("deleting from the fdb map"),
        }
    }

    /// Removes learned entries not seen for `ageing_time`; returns them.
    pub fn age(&mut self, ageing_time: Duration) -> anyhow::Result<Vec<(FdbKey, FdbEntry)>> {
        let now = monotonic_now_ns();
        let limit = ageing_time.as_nanos() as u64;
        self.remove_where(|entry| {
            !entry.is_static() && now.saturating_sub(entry.last_seen_ns) > limit
        })
    }

    /// Removes every entry, static or learned, behind port `ifindex`; returns them.
    pub fn flush_port(&mut self, ifindex: u32) -> anyhow::Result<Vec<(FdbKey, FdbEntry)>> {
        self.remove_where(|entry| entry.ifindex == ifindex)
    }

    fn remove_where(
        &mut self,
        doomed: impl Fn(&FdbEntry) -> bool,
    ) -> anyhow::Result<Vec<(FdbKey, FdbEntry)>> {
        let removed: Vec<_> = self
            .entries()?
            .into_iter()
            .filter(|(_, entry)| doomed(entry))
            .collect();
        let mut gone = Vec::with_capacity(removed.len());
        for (key, _) in removed {
            // Look again: the datapath may have refreshed or moved it meanwhile.
            if let Ok(entry) = self.map.get(&key, 0)
                && doomed(&entry)
                && self.map.remove(&key).is_ok()
            {
                gone.push((key, entry));
            }
        }
        if !gone.is_empty() {
            self.generation.replace()?;
        }
        Ok(gone)
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of the datapath's `bpf_ktime_get_ns`.
pub fn monotonic_now_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
