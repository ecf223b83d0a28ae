//! `vbr stats`.
use vbr::{pinned::PinnedBridge, stats};
use vbr_common::stats::Counters;

use super::table;

/// The columns of `Counters`, after each row's name.
const COUNTER_COLUMNS: [&str; 6] = ["RX", "RX_BYTES", "TX", "TX_BYTES", "FLOOD", "FLOOD_BYTES"];

pub fn run(bridge: Option<&str>, json: bool) -> anyhow::Result<()> {
    let all = PinnedBridge::select(bridge)?
        .iter()
        .map(stats::collect)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string(&all)?);
        return Ok(());
    }
    for bridge in &all {
        println!("bridge {}", bridge.bridge);
        // A row of `COUNTER_COLUMNS` after its name.
        let row = |name: String, c: &Counters| {
            let values = [
                c.rx_frames,
                c.rx_bytes,
                c.tx_frames,
                c.tx_bytes,
                c.flood_frames,
                c.flood_bytes,
            ];
            std::iter::once(name)
                .chain(values.map(|n| n.to_string()))
                .collect::<Vec<_>>()
        };
        let ports: Vec<Vec<String>> = bridge
            .ports
            .iter()
            .map(|port| row(port.ifname.clone(), &port.counters))
            .collect();
        table::print(&[&["PORT"][..], &COUNTER_COLUMNS].concat(), &ports);
        if bridge.vlan_stats {
            let vlans: Vec<Vec<String>> = bridge
                .vlans
                .iter()
                .map(|vlan| row(vlan.vid.to_string(), &vlan.counters))
                .collect();
            table::print(&[&["VLAN"][..], &COUNTER_COLUMNS].concat(), &vlans);
        } else {
            println!(
                "VLAN counters off (vlan_stats = true in the bridge's config counts per VLAN)"
            );
        }
        let reasons: Vec<Vec<String>> = bridge
            .reasons
            .iter()
            .map(|(reason, frames)| vec![(*reason).to_owned(), frames.to_string()])
            .collect();
        table::print(&["REASON", "FRAMES"], &reasons);
    }
    Ok(())
}
