//! What is measured: which switch forwards, along which path, with how big an FDB.
use std::fmt;

use anyhow::{Result, bail, ensure};
use vbr_common::stats::Reason;

use crate::{
    accelerated::Accelerated,
    bench_abi::destination,
    frames,
    linux_bridge::LinuxBridge,
    rig::Rig,
    topology::{Iface, Topology},
    vbr_switch::{Role, VID, VbrSwitch},
};

/// FDB sizes vbr is measured with.
pub const FDB_SIZES: [u32; 3] = [1_000, 100_000, 1_000_000];
/// Flood fan-outs: ports a broadcast is copied to.
pub const FAN_OUTS: [usize; 3] = [2, 4, 8];
/// Destinations the baselines' unicast traffic spreads over (the Linux bridge holds them as
/// static entries), as many as vbr's smallest FDB.
pub const BASELINE_DESTINATIONS: u32 = FDB_SIZES[0];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// No switch: the sink counts on pa what the generator sends.
    Generator,
    /// A bare XDP redirect pa → p1, the ceiling of any XDP switch.
    Ceiling,
    LinuxBridge {
        netfilter: bool,
    },
    /// The Linux bridge (netfilter off) with vbr's fast path beside it (`[[accelerate]]`).
    Accelerated,
    /// vbr with an FDB of this many entries.
    Vbr {
        fdb: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Untagged known unicast between access ports.
    Unicast,
    /// Untagged in, tagged out: a tag push.
    AccessToTrunk,
    /// Tagged in, untagged out: a tag pop.
    TrunkToAccess,
    TrunkToTrunk,
    /// Broadcast from an access port to this many other access ports.
    Flood(usize),
}

/// Which destinations unicast frames go to, one after the other (`destination(0..n)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// Every entry of vbr's FDB; the baselines' `BASELINE_DESTINATIONS`.
    AllEntries,
    /// `BASELINE_DESTINATIONS` of the FDB's entries: the same working set whatever the table's
    /// size, so that only the size differs.
    WorkingSet,
    /// All to `destination(0)`.
    One,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub switch: Switch,
    pub path: Path,
    /// Unicast only.
    pub traffic: Traffic,
    /// vbr only: the bridge counts per VLAN too (`vlan_stats = true`), which it does not by
    /// default.
    pub vlan_stats: bool,
}

impl Variant {
    const fn new(switch: Switch, path: Path) -> Self {
        Self {
            switch,
            path,
            traffic: Traffic::AllEntries,
            vlan_stats: false,
        }
    }

    /// Every variant, in the order a round measures them.
    pub fn all() -> Vec<Self> {
        let mut all = vec![
            Self::new(Switch::Generator, Path::Unicast),
            Self::new(Switch::Ceiling, Path::Unicast),
        ];
        for netfilter in [false, true] {
            let switch = Switch::LinuxBridge { netfilter };
            all.push(Self::new(switch, Path::Unicast));
            all.extend(FAN_OUTS.map(|n| Self::new(switch, Path::Flood(n))));
        }
        all.push(Self::new(Switch::Accelerated, Path::Unicast));
        all.extend(FAN_OUTS.map(|n| Self::new(Switch::Accelerated, Path::Flood(n))));
        for fdb in FDB_SIZES {
            let switch = Switch::Vbr { fdb };
            all.extend(
                [
                    Path::Unicast,
                    Path::AccessToTrunk,
                    Path::TrunkToAccess,
                    Path::TrunkToTrunk,
                ]
                .map(|path| Self::new(switch, path)),
            );
            all.extend(FAN_OUTS.map(|n| Self::new(switch, Path::Flood(n))));
        }
        // What the FDB's size costs for the same working set (the 1k FDB's is all its entries),
        // and when the working set is one destination.
        for fdb in &FDB_SIZES[1..] {
            all.push(Self {
                traffic: Traffic::WorkingSet,
                ..Self::new(Switch::Vbr { fdb: *fdb }, Path::Unicast)
            });
        }
        for fdb in [FDB_SIZES[0], FDB_SIZES[FDB_SIZES.len() - 1]] {
            all.push(Self {
                traffic: Traffic::One,
                ..Self::new(Switch::Vbr { fdb }, Path::Unicast)
            });
        }
        // What counting per VLAN costs.
        all.push(Self {
            vlan_stats: true,
            ..Self::new(Switch::Vbr { fdb: FDB_SIZES[0] }, Path::Unicast)
        });
        all
    }

    /// The frame the generator sends (its destination is rewritten when there are several).
    pub fn frame(&self, wire_size: usize) -> Vec<u8> {
        let dst = match self.path {
            Path::Flood(_) => frames::BROADCAST,
            _ => destination(0),
        };
        let tagged = matches!(self.path, Path::TrunkToAccess | Path::TrunkToTrunk);
        frames::udp(dst, tagged.then_some(VID), wire_size)
    }

    /// Destination MACs the generator rotates over.
    pub fn destinations(&self) -> u32 {
        match (self.path, self.switch, self.traffic) {
            (Path::Flood(_), _, _) | (_, _, Traffic::One) => 1,
            (_, Switch::Vbr { fdb }, Traffic::AllEntries) => fdb,
            _ => BASELINE_DESTINATIONS,
        }
    }

    /// The sinks (or pa, for the generator alone) that must receive every frame, once each.
    pub fn receivers<'t>(&self, topology: &'t Topology) -> Vec<&'t Iface> {
        match (self.switch, self.path) {
            (Switch::Generator, _) => vec![&topology.ingress],
            (_, Path::Flood(n)) => topology.sinks[..n].iter().collect(),
            _ => vec![&topology.sinks[0]],
        }
    }

    /// Ports of the switch besides pa.
    fn ports(&self) -> usize {
        match self.path {
            Path::Flood(n) => n,
            _ => 1,
        }
    }

    /// Roles of pa and of the other ports in vbr.
    fn roles(&self) -> (Role, Role) {
        match self.path {
            Path::Unicast | Path::Flood(_) => (Role::Access, Role::Access),
            Path::AccessToTrunk => (Role::Access, Role::Trunk),
            Path::TrunkToAccess => (Role::Trunk, Role::Access),
            Path::TrunkToTrunk => (Role::Trunk, Role::Trunk),
        }
    }

    /// Sets the switch up, runs `measure`, and takes the switch down again.
    pub fn run<T>(
        &self,
        topology: &Topology,
        rig: &mut Rig,
        vbr: &mut [VbrSwitch],
        measure: impl FnOnce(&mut Rig, Option<&VbrSwitch>) -> Result<T>,
    ) -> Result<T> {
        let ports = topology.ports(self.ports());
        match self.switch {
            Switch::Generator => {
                let link = rig.attach_sink(&topology.ingress)?;
                let result = measure(rig, None);
                rig.detach_sink(link)?;
                result
            }
            Switch::Ceiling => {
                let link = rig.attach_ceiling(&topology.ingress)?;
                let result = measure(rig, None);
                rig.detach_ceiling(link)?;
                result
            }
            Switch::LinuxBridge { netfilter } => {
                if !matches!(self.path, Path::Unicast | Path::Flood(_)) {
                    bail!("this kernel's bridge has no VLAN filtering: no {self}");
                }
                let _bridge = LinuxBridge::new(
                    &topology.netns,
                    &topology.ingress,
                    ports,
                    BASELINE_DESTINATIONS,
                    netfilter,
                )?;
                measure(rig, None)
            }
            Switch::Accelerated => {
                let _bridge = LinuxBridge::new(
                    &topology.netns,
                    &topology.ingress,
                    ports,
                    BASELINE_DESTINATIONS,
                    false,
                )?;
                let fast_path =
                    Accelerated::start(&topology.ingress, &ports[0], ports, BASELINE_DESTINATIONS)?;
                let forwarded = fast_path.count(Reason::Forwarded)?;
                let result = measure(rig, None)?;
                // Known unicast takes the fast path, floods the kernel's.
                let forwarded = fast_path.count(Reason::Forwarded)? - forwarded;
                ensure!(
                    (forwarded > 0) == (self.path == Path::Unicast),
                    "{self}: the fast path forwarded {forwarded} frames"
                );
                Ok(result)
            }
            Switch::Vbr { fdb } => {
                let Some(switch) = vbr.iter_mut().find(|switch| switch.entries == fdb) else {
                    bail!("no vbr instance with {fdb} FDB entries");
                };
                let (ingress_role, role) = self.roles();
                let members: Vec<(&Iface, Role)> =
                    std::iter::once((&topology.ingress, ingress_role))
                        .chain(ports.iter().map(|port| (port, role)))
                        .collect();
                switch.start(&members, self.vlan_stats)?;
                let result = measure(rig, Some(switch));
                switch.stop()?;
                result
            }
        }
    }
}

impl Path {
    pub fn label(&self) -> String {
        match self {
            Self::Unicast => "known unicast".to_owned(),
            Self::AccessToTrunk => "access → trunk (tag push)".to_owned(),
            Self::TrunkToAccess => "trunk → access (tag pop)".to_owned(),
            Self::TrunkToTrunk => "trunk → trunk".to_owned(),
            Self::Flood(n) => format!("broadcast to {n} ports"),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.label();
        match self.switch {
            Switch::Generator => write!(f, "generator alone (gen0 → pa, no switch)"),
            Switch::Ceiling => write!(f, "bare XDP redirect (the ceiling)"),
            Switch::LinuxBridge { netfilter } => write!(
                f,
                "Linux bridge, netfilter {}: {path}",
                if netfilter { "on" } else { "off" }
            ),
            Switch::Accelerated => write!(f, "Linux bridge accelerated by vbr: {path}"),
            Switch::Vbr { fdb } => {
                write!(f, "vbr, {} FDB: {path}", fdb_label(fdb))?;
                match self.traffic {
                    Traffic::AllEntries => Ok(()),
                    Traffic::WorkingSet => write!(
                        f,
                        ", traffic to {} of its entries",
                        fdb_label(BASELINE_DESTINATIONS)
                    ),
                    Traffic::One => write!(f, ", one destination"),
                }?;
                if self.vlan_stats {
                    write!(f, ", counting per VLAN (vlan_stats = true)")?;
                }
                Ok(())
            }
        }
    }
}

/// 1000 → "1k", 1000000 → "1M".
pub fn fdb_label(entries: u32) -> String {
    match entries {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
