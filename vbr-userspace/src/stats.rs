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
    /// Whether the bridge counts per VLAN (`vlan_stats` in its config).
    pub vlan_stats: bool,
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
    pub counters: Counters,
}

#[derive(Debug, Serialize)]
pub struct VlanStats {
    pub vid: u16,
    #[serde(flatten)]
    pub counters: Counters,
}

/// Reads the counters of `bridge`, summed over CPUs.
pub fn collect(bridge: &PinnedBridge) -> anyhow::Result<BridgeStats> {
    let name = bridge.name.as_str();
    let port_stats: PerCpuArray<MapData, Counters> = pinned::open_map(name, map_names::PORT_STATS)?;
    let vlan_stats: PerCpuArray<MapData, Counters> = pinned::open_map(name, map_names::VLAN_STATS)?;
    let reason_stats: PerCpuArray<MapData, u64> = pinned::open_map(name, map_names::STATS)?;
    let mut ports = Vec::new();
    let mut counts_vlans = false;
    for (ifindex, info) in bridge.port_list()? {
        counts_vlans |= info.counts_vlans();
        let values = port_stats
            .get(&u32::from(info.slot), 0)
            .with_context(|| format!("reading the counters of port {ifindex}"))?;
        ports.push(PortStats {
            ifname: netdev::name(ifindex).unwrap_or_else(|_| format!("#{ifindex}")),
            ifindex,
            counters: values.iter().sum(),
        });
    }
    let mut vlans = Vec::new();
    // 4096 reads, only where the datapath counts per VLAN.
    let counted_vids = if counts_vlans {
        0..(VLAN_BITMAP_WORDS * 64) as u16
    } else {
        0..0
    };
    for vid in counted_vids {
        let counters = vlan_stats
            .get(&u32::from(vid), 0)
            .context("reading VLAN counters")?
            .iter()
            .sum();
        if counters != Counters::default() {
            vlans.push(VlanStats { vid, counters });
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
        vlan_stats: counts_vlans,
        vlans,
        reasons,
    })
}

/// One named counter of `Counters`.
type CounterField = fn(&Counters) -> u64;

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
        let ports = bridges.iter().flat_map(|bridge| {
            bridge
                .ports
                .iter()
                .map(move |port| (bridge, port.ifname.clone(), &port.counters))
        });
        series(
            &mut text,
            &format!("vbr_port_{field}_total"),
            "port",
            ports,
            value,
        );
        let vlans = bridges.iter().flat_map(|bridge| {
            bridge
                .vlans
                .iter()
                .map(move |vlan| (bridge, vlan.vid.to_string(), &vlan.counters))
        });
        series(
            &mut text,
            &format!("vbr_vlan_{field}_total"),
            "vlan",
            vlans,
            value,
        );
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

/// One counter `metric` with a `label` per item, after its TYPE line.
fn series<'a>(
    text: &mut String,
    metric: &str,
    label: &str,
    items: impl Iterator<Item = (&'a BridgeStats, String, &'a Counters)>,
    value: CounterField,
) {
    let _ = writeln!(text, "# TYPE {metric} counter");
    for (bridge, name, counters) in items {
        let _ = writeln!(
            text,
            "{metric}{{bridge=\"{}\",{label}=\"{name}\"}} {}",
            bridge.bridge,
            value(counters)
        );
    }
}
