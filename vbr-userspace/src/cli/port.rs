//! `vbr port show`.
use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;
use vbr::{
    control::{self, Request},
    netdev,
    pinned::PinnedBridge,
};
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
    /// `None` while a hotplug port waits for its interface.
    ifindex: Option<u32>,
    mode: Option<&'static str>,
    pvid: Option<u16>,
    tagged: Vec<u16>,
    attached: bool,
    /// "attached", "detached", or "waiting" (a hotplug port whose interface is absent).
    state: &'static str,
}

pub fn run(command: PortCommand, json: bool) -> anyhow::Result<()> {
    let PortCommand::Show { bridge: only } = command;
    let mut rows = Vec::new();
    for bridge in PinnedBridge::select(only.as_deref())? {
        for (ifindex, info) in bridge.port_list()? {
            rows.push(PortRow {
                bridge: bridge.name.clone(),
                ifname: netdev::name(ifindex).unwrap_or_else(|_| format!("#{ifindex}")),
                ifindex: Some(ifindex),
                mode: Some(PortMode::from_u8(info.mode).map_or("unknown", PortMode::name)),
                pvid: (info.pvid != PVID_NONE).then_some(info.pvid),
                tagged: info.tagged().collect(),
                attached: info.is_attached(),
                state: if info.is_attached() {
                    "attached"
                } else {
                    "detached"
                },
            });
        }
    }
    // Only the agent knows the hotplug ports still waiting for their interface.
    let waiting = control::request(&Request::Waiting)?.map_or(Vec::new(), |reply| reply.waiting);
    for port in waiting {
        if only.as_ref().is_none_or(|only| *only == port.bridge) {
            rows.push(PortRow {
                bridge: port.bridge,
                ifname: port.ifname,
                ifindex: None,
                mode: None,
                pvid: None,
                tagged: Vec::new(),
                attached: false,
                state: "waiting",
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
                row.ifindex
                    .map_or("-".to_owned(), |ifindex| ifindex.to_string()),
                row.mode.unwrap_or("-").to_owned(),
                table::pvid(row.pvid),
                table::vlan_ranges(&row.tagged),
                row.state.to_owned(),
            ]
        })
        .collect();
    table::print(
        &[
            "BRIDGE", "PORT", "IFINDEX", "MODE", "PVID", "TAGGED", "STATE",
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
