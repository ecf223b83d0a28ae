//! `vbr vlan show|add|del`: the ports' VLAN membership, changed live in the pinned `ports` map.
use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde::Serialize;
use vbr::{config::parse_vlan_range, netdev, pinned::PinnedBridge};
use vbr_common::port::PVID_NONE;

use super::{port::bridge_with_port, table};

#[derive(Debug, Subcommand)]
pub enum VlanCommand {
    /// List each port's PVID and tagged VLANs.
    Show {
        /// Only this bridge.
        #[arg(long)]
        bridge: Option<String>,
    },
    /// Make a port a member of VLANs: tagged, or with --pvid its untagged PVID.
    Add {
        /// The port.
        #[arg(long)]
        port: String,
        /// A VLAN id (1-4094), or a range like 100-110.
        #[arg(long, value_parser = parse_vlan_range)]
        vid: std::ops::RangeInclusive<u16>,
        /// Make the VLAN the port's PVID (the former PVID stops being a member).
        #[arg(long)]
        pvid: bool,
        /// The bridge; by default the one that has the port.
        #[arg(long)]
        bridge: Option<String>,
    },
    /// Remove a port from VLANs (removing the PVID leaves the port without one).
    Del {
        /// The port.
        #[arg(long)]
        port: String,
        /// A VLAN id (1-4094), or a range like 100-110.
        #[arg(long, value_parser = parse_vlan_range)]
        vid: std::ops::RangeInclusive<u16>,
        /// The bridge; by default the one that has the port.
        #[arg(long)]
        bridge: Option<String>,
    },
}

#[derive(Serialize)]
struct VlanRow {
    bridge: String,
    ifname: String,
    pvid: Option<u16>,
    tagged: Vec<u16>,
}

pub fn run(command: VlanCommand, json: bool) -> anyhow::Result<()> {
    match command {
        VlanCommand::Show { bridge } => show(bridge.as_deref(), json),
        VlanCommand::Add {
            port,
            vid,
            pvid,
            bridge,
        } => change(&port, bridge.as_deref(), |info| {
            if pvid {
                if vid.start() != vid.end() {
                    bail!("a port has one PVID: give --pvid a single VLAN id");
                }
                info.set_pvid(*vid.start());
                return Ok(());
            }
            if vid.contains(&info.pvid) {
                bail!(
                    "VLAN {} is the port's PVID: a VLAN cannot be both the pvid and tagged",
                    info.pvid
                );
            }
            vid.clone().for_each(|vid| info.set_member(vid, true));
            Ok(())
        }),
        VlanCommand::Del { port, vid, bridge } => change(&port, bridge.as_deref(), |info| {
            if let Some(missing) = vid.clone().find(|vid| !info.is_member(*vid)) {
                bail!("the port is not a member of VLAN {missing}");
            }
            if vid.contains(&info.pvid) {
                info.set_pvid(PVID_NONE);
            }
            vid.clone().for_each(|vid| info.set_member(vid, false));
            Ok(())
        }),
    }
}

fn show(bridge: Option<&str>, json: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for bridge in PinnedBridge::select(bridge)? {
        for (ifindex, info) in bridge.port_list()? {
            rows.push(VlanRow {
                bridge: bridge.name.clone(),
                ifname: netdev::name(ifindex).unwrap_or_else(|_| format!("#{ifindex}")),
                pvid: (info.pvid != PVID_NONE).then_some(info.pvid),
                tagged: info.tagged().collect(),
            });
        }
    }
    table::show(json, &rows, &["BRIDGE", "PORT", "PVID", "TAGGED"], |row| {
        vec![
            row.bridge.clone(),
            row.ifname.clone(),
            table::pvid(row.pvid),
            table::vlan_ranges(&row.tagged),
        ]
    })
}

/// Applies `edit` to the port's entry and writes it back in one map update, which the
/// datapath sees whole: the old membership or the new one, never a mix.
fn change(
    port: &str,
    bridge: Option<&str>,
    edit: impl FnOnce(&mut vbr_common::port::PortInfo) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let ifindex = netdev::ifindex(port)?;
    let mut bridge = match bridge {
        Some(name) => PinnedBridge::open(name)?,
        None => bridge_with_port(ifindex, port)?,
    };
    bridge.ensure_editable()?;
    let mut info = bridge
        .port(ifindex)
        .with_context(|| format!("{port} is not a port of bridge {}", bridge.name))?;
    edit(&mut info).with_context(|| format!("port {port}"))?;
    bridge
        .ports
        .set(ifindex, info)
        .with_context(|| format!("updating port {port} of bridge {}", bridge.name))
}
