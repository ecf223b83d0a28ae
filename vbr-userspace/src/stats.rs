//! Counters of a running bridge, read from its pins: per port, per VLAN, per reason. What
//! `vbr stats` prints and the agent's metrics endpoint serves.
use std::{collections::BTreeMap, fmt::Write as _};

use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray};
use serde::Serialize;
use vbr_common::{
    map_names,
    port::VLAN_BITMAP_WORDS,
    stats::{Counters, Reason},
};

use crate::{
    netdev,
    pinned::{self, PinnedBridge},
};

#[derive(Debug, Serialize)]
pub struct BridgeStats {
    pub bridge: String,
    pub ports: Vec<PortStats>,
    /// VLANs that saw traffic.
    pub vlans: Vec<VlanStats>,
    /// Frames per reason: forwarded, flooded, and drops.
    pub reasons: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize)]
pub struct PortStats {
    pub ifname: String,
    pub ifindex: u32,
    #[serde(flatten)]
    pub counters: CountersJson,
}

#[derive(Debug, Serialize)]
pub struct VlanStats {
    pub vid: u16,
    #[serde(flatten)]
    pub counters: CountersJson,
}

/// `Counters` with names for JSON.
#[derive(Debug, Serialize)]
pub struct CountersJson {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub flood_frames: u64,
    pub flood_bytes: u64,
}

impl From<Counters> for CountersJson {
    fn from(c: Counters) -> Self {
        Self {
            rx_frames: c.rx_frames,
            rx_bytes: c.rx_bytes,
            tx_frames: c.tx_frames,
            tx_bytes: c.tx_bytes,
            flood_frames: c.flood_frames,
            flood_bytes: c.flood_bytes,
        }
    }
}

/// Reads the counters of `bridge`, summed over CPUs.
pub fn collect(bridge: &PinnedBridge) -> anyhow::Result<BridgeStats> {
    let name = bridge.name.as_str();
    let port_stats: PerCpuArray<MapData, Counters> = pinned::open_map(name, map_names::PORT_STATS)?;
    let vlan_stats: PerCpuArray<MapData, Counters> = pinned::open_map(name, map_names::VLAN_STATS)?;
    let reason_stats: PerCpuArray<MapData, u64> = pinned::open_map(name, map_names::STATS)?;
    let sum = |values: aya::maps::PerCpuValues<Counters>| {
        values.iter().fold(Counters::default(), |mut total, cpu| {
            total.add(cpu);
            total
        })
    };
    let mut ports = Vec::new();
    for (ifindex, info) in bridge.port_list()? {
        let values = port_stats
            .get(&u32::from(info.slot), 0)
            .with_context(|| format!("reading the counters of port {ifindex}"))?;
        ports.push(PortStats {
            ifname: netdev::name(ifindex).unwrap_or_else(|_| format!("#{ifindex}")),
            ifindex,
            counters: sum(values).into(),
        });
    }
    let mut vlans = Vec::new();
    for vid in 0..(VLAN_BITMAP_WORDS * 64) as u16 {
        let counters = sum(vlan_stats
            .get(&u32::from(vid), 0)
            .context("reading VLAN counters")?);
        if counters != Counters::default() {
            vlans.push(VlanStats {
                vid,
                counters: counters.into(),
            });
        }
    }
    let mut reasons = BTreeMap::new();
    for reason in Reason::ALL {
        let values = reason_stats
            .get(&(reason as u32), 0)
            .context("reading the reason counters")?;
        reasons.insert(reason.name(), values.iter().sum());
    }
    Ok(BridgeStats {
        bridge: name.to_owned(),
        ports,
        vlans,
        reasons,
    })
}

/// One named counter of `CountersJson`.
type CounterField = fn(&CountersJson) -> u64;

/// The Prometheus text exposition of `bridges`.
pub fn prometheus(bridges: &[BridgeStats]) -> String {
    let mut text = String::new();
    let fields: [(&str, CounterField); 6] = [
        ("rx_frames", |c| c.rx_frames),
        ("rx_bytes", |c| c.rx_bytes),
        ("tx_frames", |c| c.tx_frames),
        ("tx_bytes", |c| c.tx_bytes),
        ("flood_frames", |c| c.flood_frames),
        ("flood_bytes", |c| c.flood_bytes),
    ];
    for (field, value) in fields {
        let _ = writeln!(text, "# TYPE vbr_port_{field}_total counter");
        for bridge in bridges {
            for port in &bridge.ports {
                let _ = writeln!(
                    text,
                    "vbr_port_{field}_total{{bridge=\"{}\",port=\"{}\"}} {}",
                    bridge.bridge,
                    port.ifname,
                    value(&port.counters)
                );
            }
        }
        let _ = writeln!(text, "# TYPE vbr_vlan_{field}_total counter");
        for bridge in bridges {
            for vlan in &bridge.vlans {
                let _ = writeln!(
                    text,
                    "vbr_vlan_{field}_total{{bridge=\"{}\",vlan=\"{}\"}} {}",
                    bridge.bridge,
                    vlan.vid,
                    value(&vlan.counters)
                );
            }
        }
    }
    let _ = writeln!(text, "# TYPE vbr_frames_total counter");
    for bridge in bridges {
        for (reason, frames) in &bridge.reasons {
            let _ = writeln!(
                text,
                "vbr_frames_total{{bridge=\"{}\",reason=\"{reason}\"}} {frames}",
                bridge.bridge
            );
        }
    }
    text
}
