//! `vbr fdb show|add|replace|del`.
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use vbr::{
    control::{self, Request},
    event::Event,
    fdb::monotonic_now_ns,
    mac::MacAddr,
    netdev,
    pinned::{PinnedBridge, local_bridges},
};
use vbr_common::{DEFAULT_VLAN, event::EventKind, fdb::FdbKey};

use super::{port::bridge_with_port, table};

#[derive(Debug, Subcommand)]
pub enum FdbCommand {
    /// List the entries of every running bridge (or of one).
    Show {
        /// Only this bridge.
        #[arg(long)]
        bridge: Option<String>,
    },
    /// Add a static entry; fails if the entry exists.
    Add(StaticEntry),
    /// Add a static entry or overwrite an existing one.
    Replace(StaticEntry),
    /// Remove an entry, static or learned.
    Del {
        mac: MacAddr,
        /// VLAN of the entry.
        #[arg(long, default_value_t = DEFAULT_VLAN, value_parser = parse_vlan)]
        vlan: u16,
        /// The bridge; may be left out when only one runs.
        #[arg(long)]
        bridge: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct StaticEntry {
    mac: MacAddr,
    /// The port the MAC lives behind.
    #[arg(long)]
    port: String,
    /// VLAN of the entry.
    #[arg(long, default_value_t = DEFAULT_VLAN, value_parser = parse_vlan)]
    vlan: u16,
    /// The bridge; by default the one that has the port.
    #[arg(long)]
    bridge: Option<String>,
}

#[derive(Serialize)]
struct FdbRow {
    bridge: String,
    mac: String,
    vlan: u16,
    port: String,
    #[serde(rename = "type")]
    kind: &'static str,
    age_s: u64,
}

pub fn run(command: FdbCommand, json: bool) -> anyhow::Result<()> {
    match command {
        FdbCommand::Show { bridge } => show(bridge.as_deref(), json),
        FdbCommand::Add(entry) => add(entry, false),
        FdbCommand::Replace(entry) => add(entry, true),
        FdbCommand::Del { mac, vlan, bridge } => {
            let mut bridge = match bridge {
                Some(name) => PinnedBridge::open(&name)?,
                None => PinnedBridge::open(&only_bridge()?)?,
            };
            bridge.ensure_editable()?;
            let key = FdbKey::new(mac.0, vlan);
            let entry = bridge.fdb.delete(&key).with_context(|| {
                format!("deleting {mac} vlan {vlan} from bridge {}", bridge.name)
            })?;
            tell_monitors(&bridge.name, EventKind::Deleted, key, entry.ifindex);
            Ok(())
        }
    }
}

fn show(bridge: Option<&str>, json: bool) -> anyhow::Result<()> {
    let now = monotonic_now_ns();
    let mut rows = Vec::new();
    for bridge in PinnedBridge::select(bridge)? {
        for (key, entry) in bridge.fdb.entries()? {
            rows.push(FdbRow {
                bridge: bridge.name.clone(),
                mac: MacAddr(key.mac).to_string(),
                vlan: key.vlan,
                port: netdev::name(entry.ifindex).unwrap_or_else(|_| format!("#{}", entry.ifindex)),
                kind: if entry.is_local() {
                    "local"
                } else if entry.is_mirrored() {
                    "mirrored"
                } else if entry.is_static() {
                    "static"
                } else {
                    "learned"
                },
                age_s: now.saturating_sub(entry.last_seen_ns) / 1_000_000_000,
            });
        }
    }
    rows.sort_by(|a, b| (&a.bridge, a.vlan, &a.mac).cmp(&(&b.bridge, b.vlan, &b.mac)));
    table::show(
        json,
        &rows,
        &["BRIDGE", "MAC", "VLAN", "PORT", "TYPE", "AGE"],
        |row| {
            vec![
                row.bridge.clone(),
                row.mac.clone(),
                row.vlan.to_string(),
                row.port.clone(),
                row.kind.to_owned(),
                format!("{}s", row.age_s),
            ]
        },
    )
}

fn add(entry: StaticEntry, replace: bool) -> anyhow::Result<()> {
    let StaticEntry {
        mac,
        port,
        vlan,
        bridge,
    } = entry;
    if mac.is_multicast() || mac.is_zero() {
        bail!("{mac} cannot be a static entry: it is a multicast or all-zero address");
    }
    let ifindex = netdev::ifindex(&port)?;
    let mut bridge = match bridge {
        Some(name) => PinnedBridge::open(&name)?,
        None => bridge_with_port(ifindex, &port)?,
    };
    bridge.ensure_editable()?;
    if bridge.port(ifindex).is_none() {
        bail!("{port} is not a port of bridge {}", bridge.name);
    }
    let key = FdbKey::new(mac.0, vlan);
    bridge
        .fdb
        .add_static(key, ifindex, replace)
        .with_context(|| {
            format!(
                "adding {mac} vlan {vlan} on {port} to bridge {}",
                bridge.name
            )
        })?;
    tell_monitors(&bridge.name, EventKind::Added, key, ifindex);
    Ok(())
}

/// Passes what the CLI did on to the agent's monitors; without an agent there are none.
fn tell_monitors(bridge: &str, kind: EventKind, key: FdbKey, ifindex: u32) {
    let event = Event::new(bridge, kind, key, ifindex, 0);
    if let Err(error) = control::request(&Request::Notify { event }) {
        tracing::debug!("telling the agent: {error:#}");
    }
}

/// The one running bridge, when `--bridge` was left out.
fn only_bridge() -> anyhow::Result<String> {
    let mut names = local_bridges()?;
    match names.len() {
        0 => bail!("no bridge is running in this network namespace"),
        1 => Ok(names.remove(0)),
        _ => bail!(
            "several bridges run ({}): say which with --bridge",
            names.join(", ")
        ),
    }
}

/// VLAN ids 0 and 4095 are reserved by 802.1Q.
fn parse_vlan(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(vlan @ 1..=4094) => Ok(vlan),
        _ => Err(format!("VLAN id {text:?} is outside 1-4094")),
    }
}
