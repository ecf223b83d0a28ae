//! vbr's datapath, loaded straight from the vbr library (no agent, nothing pinned) and driven
//! through its maps as the agent would, with an FDB filled to a given size.
use std::os::fd::{AsFd as _, AsRawFd as _};

use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf,
    maps::{Array, DevMapHash, HashMap, MapData, PerCpuArray},
    programs::{
        SchedClassifier, TcAttachType, Xdp, XdpMode, raw_trace_point::RawTracePointLinkId,
        tc::SchedClassifierLinkId, xdp::XdpLinkId,
    },
};
use vbr_common::{
    MAX_FDB_ENTRIES, PROG_ACCEL, PROG_EGRESS, PROG_INGRESS, PROG_TC_INGRESS,
    bridge::BridgeInfo,
    fdb::{FDB_F_STATIC, FdbEntry, FdbKey},
    map_names,
    port::{PORT_F_ATTACHED, PORT_F_BARE_UNICAST, PORT_F_VLAN_STATS, PortInfo, PortMode},
    stats::Reason,
};

use crate::{bench_abi::destination, topology::Iface};

/// The VLAN every path runs in: untagged on access ports (their PVID), tagged on trunks.
pub const VID: u16 = 10;

/// How a port treats VLAN `VID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// PVID `VID`: frames enter and leave untagged.
    Access,
    /// No PVID, `VID` tagged.
    Trunk,
}

pub struct VbrSwitch {
    ebpf: Ebpf,
    /// Entries in the FDB.
    pub entries: u32,
    /// The FDB map's `max_entries`.
    pub capacity: u32,
    links: Vec<XdpLinkId>,
    tc_links: Vec<SchedClassifierLinkId>,
    /// The flush watch runs after every NAPI poll of the host, so it is attached only while
    /// the switch runs: the other switches measured, and vbr's other instances, do not pay it.
    watch: Option<RawTracePointLinkId>,
    ports: Vec<u32>,
}

/// Memory the kernel charges for a datapath instance's maps (fdinfo `memlock`).
pub struct Memory {
    pub fdb: u64,
    pub all_maps: u64,
}

impl VbrSwitch {
    /// Loads a datapath instance whose FDB holds `entries` entries, `destination(0..entries)` in
    /// VLAN `VID`, all behind `port`. The FDB map keeps vbr's capacity (`MAX_FDB_ENTRIES`) when
    /// that is enough, and is otherwise sized to the next power of two.
    pub fn load(entries: u32, port: &Iface) -> Result<Self> {
        let capacity = MAX_FDB_ENTRIES.max(entries.next_power_of_two());
        let mut ebpf = vbr::datapath::loader()?
            .map_max_entries(map_names::FDB, capacity)
            .load(vbr::datapath::object())
            .context("loading vbr's datapath")?;
        // vbr_accel too, so that the program sizes list it; it forwards nothing here.
        for name in [PROG_INGRESS, PROG_EGRESS, PROG_ACCEL] {
            program(&mut ebpf, name)?
                .load()
                .with_context(|| format!("loading {name}"))?;
        }
        // As the agent runs it: unicast skips the devmap program within a batch (its flushes
        // watched while the switch runs), floods after such unicast take the TC program.
        tc_program(&mut ebpf)?
            .load()
            .context("loading the TC program")?;
        vbr::datapath::flush_watch(&mut ebpf)?
            .load()
            .context("loading the flush watch")?;
        let mut fdb: HashMap<_, FdbKey, FdbEntry> =
            HashMap::try_from(map(&mut ebpf, map_names::FDB)?)?;
        let entry = FdbEntry {
            ifindex: port.ifindex,
            flags: FDB_F_STATIC,
            last_seen_ns: 0,
            moved_ns: 0,
        };
        for index in 0..entries {
            fdb.insert(FdbKey::new(destination(index), VID), entry, 0)
                .with_context(|| format!("filling the FDB: entry {index} of {entries}"))?;
        }
        Ok(Self {
            ebpf,
            entries,
            capacity,
            links: Vec::new(),
            tc_links: Vec::new(),
            watch: None,
            ports: Vec::new(),
        })
    }

    /// Makes `ports` (with their roles) the bridge's ports and attaches vbr to each; with
    /// `vlan_stats`, frames are counted per VLAN too.
    pub fn start(&mut self, ports: &[(&Iface, Role)], vlan_stats: bool) -> Result<()> {
        let watch = vbr::datapath::flush_watch(&mut self.ebpf)?;
        self.watch = Some(vbr::datapath::attach_flush_watch(watch)?);
        let egress = program(&mut self.ebpf, PROG_EGRESS)?.fd()?.try_clone()?;
        for (slot, (iface, role)) in ports.iter().enumerate() {
            let mut info = PortInfo::new(PortMode::XdpNative, slot as u16);
            info.flags = PORT_F_ATTACHED | PORT_F_BARE_UNICAST;
            if vlan_stats {
                info.flags |= PORT_F_VLAN_STATS;
            }
            match role {
                Role::Access => info.set_pvid(VID),
                Role::Trunk => info.set_member(VID, true),
            }
            vbr::datapath::ports(&self.ebpf)?.set(iface.ifindex, info)?;
            DevMapHash::try_from(map(&mut self.ebpf, map_names::EGRESS)?)?
                .insert(iface.ifindex, iface.ifindex, Some(&egress), 0)
                .with_context(|| format!("adding {} to the egress devmap", iface.name))?;
            Array::try_from(map(&mut self.ebpf, map_names::SLOTS)?)?
                .set(slot as u32, iface.ifindex, 0)
                .context("recording the port's slot")?;
            self.ports.push(iface.ifindex);
        }
        // As the agent does once the slots cover every port: floods every port takes alike
        // leave finished from ingress, through the program-less devmap.
        self.set_slot_end(ports.len() as u32)?;
        for (iface, _) in ports {
            DevMapHash::try_from(map(&mut self.ebpf, map_names::FLOOD_BARE)?)?
                .insert(iface.ifindex, iface.ifindex, None, 0)
                .with_context(|| format!("adding {} to the flood_bare devmap", iface.name))?;
        }
        for (iface, _) in ports {
            let link = program(&mut self.ebpf, PROG_INGRESS)?
                .attach_to_if_index(iface.ifindex, XdpMode::Driver)
                .with_context(|| format!("attaching vbr to {}", iface.name))?;
            self.links.push(link);
            let tc_link = tc_program(&mut self.ebpf)?
                .attach(&iface.name, TcAttachType::Ingress)
                .with_context(|| format!("attaching vbr's TC program to {}", iface.name))?;
            self.tc_links.push(tc_link);
        }
        Ok(())
    }

    /// Detaches vbr and forgets the ports.
    pub fn stop(&mut self) -> Result<()> {
        for link in self.links.drain(..) {
            program(&mut self.ebpf, PROG_INGRESS)?.detach(link)?;
        }
        for link in self.tc_links.drain(..) {
            tc_program(&mut self.ebpf)?.detach(link)?;
        }
        if let Some(link) = self.watch.take() {
            vbr::datapath::flush_watch(&mut self.ebpf)?.detach(link)?;
        }
        for ifindex in &self.ports {
            DevMapHash::try_from(map(&mut self.ebpf, map_names::FLOOD_BARE)?)?.remove(*ifindex)?;
        }
        self.set_slot_end(0)?;
        for (slot, ifindex) in std::mem::take(&mut self.ports).into_iter().enumerate() {
            Array::try_from(map(&mut self.ebpf, map_names::SLOTS)?)?.set(slot as u32, 0, 0)?;
            vbr::datapath::ports(&self.ebpf)?.remove(ifindex)?;
            DevMapHash::try_from(map(&mut self.ebpf, map_names::EGRESS)?)?.remove(ifindex)?;
        }
        Ok(())
    }

    /// Sets the info's `slot_end`: where the datapath's loops over port slots stop.
    fn set_slot_end(&mut self, slot_end: u32) -> Result<()> {
        let mut infos: Array<_, BridgeInfo> =
            Array::try_from(map(&mut self.ebpf, map_names::INFO)?)?;
        let mut info = infos.get(&0, 0)?;
        info.slot_end = slot_end;
        infos.set(0, info, 0).context("writing the info map")
    }

    /// Frames counted under `reason`, summed over CPUs.
    pub fn count(&self, reason: Reason) -> Result<u64> {
        count(&self.ebpf, reason)
    }

    pub fn memory(&self) -> Result<Memory> {
        let mut memory = Memory {
            fdb: 0,
            all_maps: 0,
        };
        for (name, map) in self.ebpf.maps() {
            let bytes = memlock(map_data(map)?)?;
            memory.all_maps += bytes;
            if name == map_names::FDB {
                memory.fdb = bytes;
            }
        }
        Ok(memory)
    }

    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }
}

/// Frames a datapath instance counted under `reason`, summed over CPUs.
pub fn count(ebpf: &Ebpf, reason: Reason) -> Result<u64> {
    let stats: PerCpuArray<_, u64> = PerCpuArray::try_from(
        ebpf.map(map_names::STATS)
            .ok_or_else(|| anyhow!("no map {}", map_names::STATS))?,
    )?;
    Ok(stats.get(&(reason as u32), 0)?.iter().sum())
}

pub fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    Ok(ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("no program {name}"))?
        .try_into()?)
}

fn tc_program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier> {
    Ok(ebpf
        .program_mut(PROG_TC_INGRESS)
        .ok_or_else(|| anyhow!("no program {PROG_TC_INGRESS}"))?
        .try_into()?)
}

pub fn map<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut aya::maps::Map> {
    ebpf.map_mut(name).ok_or_else(|| anyhow!("no map {name}"))
}

fn map_data(map: &aya::maps::Map) -> Result<&MapData> {
    use aya::maps::Map;
    Ok(match map {
        Map::Array(data)
        | Map::PerCpuArray(data)
        | Map::HashMap(data)
        | Map::PerCpuHashMap(data)
        | Map::LruHashMap(data)
        | Map::DevMap(data)
        | Map::DevMapHash(data)
        | Map::ProgramArray(data)
        | Map::RingBuf(data)
        | Map::Unsupported(data) => data,
        other => anyhow::bail!("a map of unexpected type {other:?}"),
    })
}

/// The `memlock` line of the map's fdinfo: bytes the kernel charges for it.
fn memlock(map: &MapData) -> Result<u64> {
    let path = format!("/proc/self/fdinfo/{}", map.fd().as_fd().as_raw_fd());
    let fdinfo = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("memlock:"))
        .ok_or_else(|| anyhow!("no memlock in {path}"))?
        .trim()
        .parse()
        .with_context(|| format!("parsing memlock in {path}"))
}
