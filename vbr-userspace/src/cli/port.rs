//! `vbr port show`.
use clap::Subcommand;
use serde::Serialize;
use vbr::{netdev, pinned::PinnedBridge};
use vbr_common::port::PortMode;

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
                pvid: Some(info.pvid),
                tagged: Vec::new(),
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
                row.pvid.map_or("-".to_owned(), |pvid| pvid.to_string()),
                if row.attached { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    table::print(
        &["BRIDGE", "PORT", "IFINDEX", "MODE", "PVID", "ATTACHED"],
        &cells,
    );
    Ok(())
}
