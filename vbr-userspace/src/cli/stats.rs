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
        let counters = |c: &Counters| {
            [
                c.rx_frames,
                c.rx_bytes,
                c.tx_frames,
                c.tx_bytes,
                c.flood_frames,
                c.flood_bytes,
            ]
            .map(|n| n.to_string())
        };
        let ports: Vec<Vec<String>> = bridge
            .ports
            .iter()
            .map(|port| [vec![port.ifname.clone()], counters(&port.counters).to_vec()].concat())
            .collect();
        table::print(&[&["PORT"][..], &COUNTER_COLUMNS].concat(), &ports);
        if bridge.vlan_stats {
            let vlans: Vec<Vec<String>> = bridge
                .vlans
                .iter()
                .map(|vlan| {
                    [
                        vec![vlan.vid.to_string()],
                        counters(&vlan.counters).to_vec(),
                    ]
                    .concat()
                })
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
