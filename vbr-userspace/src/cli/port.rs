//! `vbr port show`.
use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;
use vbr::{netdev, pinned::PinnedBridge};
use vbr_common::port::{PVID_NONE, PortMode};

use super::table;

#[derive(Debug, Subcommand)]
pub enum PortCommand {
    /// List the ports of every running bridge (or of one).
    Show {
        /// Only this bridge.
        #[arg(long)]
        bridge: Option<String>,
    },
}

#[derive(Serialize)]
struct PortRow {
    bridge: String,
    ifname: String,
    ifindex: u32,
    mode: &'static str,
    pvid: Option<u16>,
    tagged: Vec<u16>,
    attached: bool,
}

pub fn run(command: PortCommand, json: bool) -> anyhow::Result<()> {
    let PortCommand::Show { bridge } = command;
    let mut rows = Vec::new();
    for bridge in PinnedBridge::select(bridge.as_deref())? {
        for (ifindex, info) in bridge.port_list()? {
            rows.push(PortRow {
                bridge: bridge.name.clone(),
                ifname: netdev::name(ifindex).unwrap_or_else(|_| format!("#{ifindex}")),
                ifindex,
                mode: PortMode::from_u8(info.mode).map_or("unknown", PortMode::name),
                pvid: (info.pvid != PVID_NONE).then_some(info.pvid),
                tagged: info.tagged().collect(),
                attached: info.is_attached(),
            });
        }
    }
    if json {
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.bridge.clone(),
                row.ifname.clone(),
                row.ifindex.to_string(),
                row.mode.to_owned(),
                table::pvid(row.pvid),
                table::vlan_ranges(&row.tagged),
                if row.attached { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    table::print(
        &[
            "BRIDGE", "PORT", "IFINDEX", "MODE", "PVID", "TAGGED", "ATTACHED",
        ],
        &cells,
    );
    Ok(())
}

/// The running bridge that has port `ifindex`, when `--bridge` was left out.
pub fn bridge_with_port(ifindex: u32, port: &str) -> anyhow::Result<PinnedBridge> {
    PinnedBridge::select(None)?
        .into_iter()
        .find(|bridge| bridge.port(ifindex).is_some())
        .with_context(|| format!("{port} is not a port of any running bridge"))
}
