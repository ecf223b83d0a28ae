//! `vbr port show`.
use anyhow::Context as _;
use clap::{Args, Subcommand, builder::BoolishValueParser};
use serde::Serialize;
use vbr::{
    config::PortFlags,
    control::{self, Request},
    netdev,
    pinned::PinnedBridge,
    port_policy,
};
use vbr_common::port::{
    POLICY_ACCEL_FORWARDING, POLICY_UPLINK, PORT_F_BARE_UNICAST, PVID_NONE, PortMode,
};

use super::table;

#[derive(Debug, Subcommand)]
pub enum PortCommand {
    /// List the ports of every running bridge (or of one).
    Show {
        /// Only this bridge.
        #[arg(long)]
        bridge: Option<String>,
    },
    /// Change a port's flags live, as `bridge link set dev IFNAME ...` (until the agent restarts
    /// from its config).
    Set(SetFlags),
}

#[derive(Debug, Args)]
pub struct SetFlags {
    /// The port.
    ifname: String,
    /// Learn the source MACs seen on the port.
    #[arg(long, value_parser = BoolishValueParser::new(), value_name = "on|off")]
    learning: Option<bool>,
    /// Flood unknown unicast to the port.
    #[arg(long, value_parser = BoolishValueParser::new(), value_name = "on|off")]
    flood: Option<bool>,
    /// Flood broadcast to the port.
    #[arg(long, value_parser = BoolishValueParser::new(), value_name = "on|off")]
    bcast_flood: Option<bool>,
    /// Flood multicast to the port.
    #[arg(long, value_parser = BoolishValueParser::new(), value_name = "on|off")]
    mcast_flood: Option<bool>,
    /// Let frames leave by the port they came in on.
    #[arg(long, value_parser = BoolishValueParser::new(), value_name = "on|off")]
    hairpin: Option<bool>,
    /// Keep the port from talking to other isolated ports.
    #[arg(long, value_parser = BoolishValueParser::new(), value_name = "on|off")]
    isolated: Option<bool>,
    /// Learned MACs the port may hold (0: no limit).
    #[arg(long)]
    max_learned: Option<u32>,
    /// Flooded frames per second the port may send into the bridge (0: no limit).
    #[arg(long)]
    flood_rate: Option<u32>,
    /// The bridge; by default the one that has the port.
    #[arg(long)]
    bridge: Option<String>,
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
    /// "attached", "detached", or "waiting" (a hotplug port whose interface is absent); on an
    /// accelerated Linux bridge "accelerated" or "passing" (every frame to the kernel bridge).
    state: &'static str,
    /// The bridge's uplink (private, vepa and passthru modes).
    uplink: bool,
    /// Its native XDP unicast may leave without the devmap program (`vbr_common::batch`).
    direct_unicast: bool,
    flags: Option<PortFlags>,
}

pub fn run(command: PortCommand, json: bool) -> anyhow::Result<()> {
    let only = match command {
        PortCommand::Show { bridge } => bridge,
        PortCommand::Set(flags) => return set(flags),
    };
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
                state: match (info.is_attached(), bridge.accelerates != 0) {
                    (false, _) => "detached",
                    (true, false) => "attached",
                    (true, true) if info.has(POLICY_ACCEL_FORWARDING) => "accelerated",
                    (true, true) => "passing",
                },
                uplink: info.has(POLICY_UPLINK),
                direct_unicast: info.flags & PORT_F_BARE_UNICAST != 0,
                flags: Some(port_policy::decode(&info)),
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
                uplink: false,
                direct_unicast: false,
                flags: None,
            });
        }
    }
    table::show(
        json,
        &rows,
        &[
            "BRIDGE", "PORT", "IFINDEX", "MODE", "PVID", "TAGGED", "FLAGS", "STATE",
        ],
        |row| {
            vec![
                row.bridge.clone(),
                row.ifname.clone(),
                row.ifindex
                    .map_or("-".to_owned(), |ifindex| ifindex.to_string()),
                row.mode.unwrap_or("-").to_owned(),
                table::pvid(row.pvid),
                table::vlan_ranges(&row.tagged),
                row.flags
                    .as_ref()
                    .map_or("-".to_owned(), |flags| flag_names(flags, row.uplink)),
                row.state.to_owned(),
            ]
        },
    )
}

/// The flags that are on, as `bridge link show` names them.
fn flag_names(flags: &PortFlags, uplink: bool) -> String {
    let mut names: Vec<String> = [
        (uplink, "uplink"),
        (flags.learning, "learning"),
        (flags.flood, "flood"),
        (flags.bcast_flood, "bcast_flood"),
        (flags.mcast_flood, "mcast_flood"),
        (flags.hairpin, "hairpin"),
        (flags.isolated, "isolated"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| (*name).to_owned())
    .collect();
    if flags.max_learned != 0 {
        names.push(format!("max_learned={}", flags.max_learned));
    }
    if flags.flood_rate != 0 {
        names.push(format!("flood_rate={}", flags.flood_rate));
    }
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(",")
    }
}

/// `vbr port set`: one update of the port's entry, which the datapath sees whole.
fn set(change: SetFlags) -> anyhow::Result<()> {
    let ifindex = netdev::ifindex(&change.ifname)?;
    let mut bridge = match &change.bridge {
        Some(name) => PinnedBridge::open(name)?,
        None => bridge_with_port(ifindex, &change.ifname)?,
    };
    bridge.ensure_editable()?;
    let mut info = bridge
        .port(ifindex)
        .with_context(|| format!("{} is not a port of bridge {}", change.ifname, bridge.name))?;
    let mut flags = port_policy::decode(&info);
    for (value, flag) in [
        (change.learning, &mut flags.learning),
        (change.flood, &mut flags.flood),
        (change.bcast_flood, &mut flags.bcast_flood),
        (change.mcast_flood, &mut flags.mcast_flood),
        (change.hairpin, &mut flags.hairpin),
        (change.isolated, &mut flags.isolated),
    ] {
        if let Some(value) = value {
            *flag = value;
        }
    }
    if let Some(max_learned) = change.max_learned {
        flags.max_learned = max_learned;
    }
    if let Some(flood_rate) = change.flood_rate {
        flags.flood_rate = flood_rate;
    }
    port_policy::set_flags(&mut info, &flags);
    bridge
        .ports
        .set(ifindex, info)
        .with_context(|| format!("updating port {} of bridge {}", change.ifname, bridge.name))
}

/// The running bridge that has port `ifindex`, when `--bridge` was left out.
pub fn bridge_with_port(ifindex: u32, port: &str) -> anyhow::Result<PinnedBridge> {
    PinnedBridge::select(None)?
        .into_iter()
        .find(|bridge| bridge.port(ifindex).is_some())
        .with_context(|| format!("{port} is not a port of any running bridge"))
}
