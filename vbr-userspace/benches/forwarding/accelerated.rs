//! vbr's fast path beside the Linux bridge (`[[accelerate]]`), loaded straight from the vbr
//! library like `VbrSwitch`: `vbr_accel` on the bridge's ports, the bridge's entries mirrored into
//! its FDB as the agent mirrors them.
use anyhow::{Context as _, Result};
use aya::{
    Ebpf,
    maps::HashMap,
    programs::{XdpMode, xdp::XdpLinkId},
};
use vbr_common::{
    PROG_ACCEL,
    fdb::{FDB_F_MIRRORED, FdbEntry, FdbKey},
    map_names,
    port::{POLICY_ACCEL_FORWARDING, PORT_F_ATTACHED, PortInfo, PortMode},
    stats::Reason,
};

use crate::{
    bench_abi::{SOURCE, destination},
    topology::Iface,
    vbr_switch::{count, map, program},
};

/// Attached to its ports until dropped.
pub struct Accelerated {
    ebpf: Ebpf,
    links: Vec<XdpLinkId>,
}

impl Accelerated {
    /// Mirrors the Linux bridge's view: `destination(0..destinations)` behind `port`, the
    /// generator's source behind `ingress`; then attaches the fast path to both and `others`.
    pub fn start(
        ingress: &Iface,
        port: &Iface,
        others: &[Iface],
        destinations: u32,
    ) -> Result<Self> {
        let mut ebpf = vbr::datapath::load()?;
        program(&mut ebpf, PROG_ACCEL)?
            .load()
            .with_context(|| format!("loading {PROG_ACCEL}"))?;
        let mut fdb: HashMap<_, FdbKey, FdbEntry> =
            HashMap::try_from(map(&mut ebpf, map_names::FDB)?)?;
        let mirrored = |ifindex| FdbEntry {
            ifindex,
            flags: FDB_F_MIRRORED,
            last_seen_ns: 0,
            moved_ns: 0,
        };
        fdb.insert(FdbKey::new(SOURCE, 0), mirrored(ingress.ifindex), 0)?;
        for index in 0..destinations {
            fdb.insert(
                FdbKey::new(destination(index), 0),
                mirrored(port.ifindex),
                0,
            )
            .with_context(|| format!("mirroring entry {index} of {destinations}"))?;
        }
        let members: Vec<&Iface> = [ingress].into_iter().chain(others).collect();
        let mut ports: HashMap<_, u32, PortInfo> =
            HashMap::try_from(map(&mut ebpf, map_names::PORTS)?)?;
        for (slot, iface) in members.iter().enumerate() {
            let mut info = PortInfo::new(PortMode::XdpNative, slot as u16);
            info.flags = PORT_F_ATTACHED;
            info.policy |= POLICY_ACCEL_FORWARDING;
            ports.insert(iface.ifindex, info, 0)?;
        }
        let mut accelerated = Self {
            ebpf,
            links: Vec::new(),
        };
        for iface in members {
            let link = program(&mut accelerated.ebpf, PROG_ACCEL)?
                .attach_to_if_index(iface.ifindex, XdpMode::Driver)
                .with_context(|| format!("attaching {PROG_ACCEL} to {}", iface.name))?;
            accelerated.links.push(link);
        }
        Ok(accelerated)
    }

    /// Frames counted under `reason`, summed over CPUs.
    pub fn count(&self, reason: Reason) -> Result<u64> {
        count(&self.ebpf, reason)
    }
}

impl Drop for Accelerated {
    fn drop(&mut self) {
        for link in std::mem::take(&mut self.links) {
            if let Err(error) =
                program(&mut self.ebpf, PROG_ACCEL).and_then(|p| Ok(p.detach(link)?))
            {
                eprintln!("warning: detaching {PROG_ACCEL}: {error:#}");
            }
        }
    }
}
