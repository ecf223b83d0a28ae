//! The `vbr` command line, run in the switch namespace, with its JSON output parsed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cmd;
use crate::frames::Mac;
use crate::netns;

/// Where the agent pins each bridge's maps: `<PIN_ROOT>/<bridge>/`.
pub const PIN_ROOT: &str = "/sys/fs/bpf/vbr";
/// Bound on one CLI invocation.
const CLI_TIMEOUT: Duration = Duration::from_secs(10);

/// The pin folder of `bridge`.
pub fn pin_dir(bridge: &str) -> PathBuf {
    Path::new(PIN_ROOT).join(bridge)
}

/// One entry of `vbr port show -j`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Port {
    pub bridge: String,
    pub ifname: String,
    pub ifindex: u32,
    pub mode: String,
    /// `None` when the port admits no untagged frame.
    pub pvid: Option<u16>,
    pub tagged: Vec<u16>,
    pub attached: bool,
    /// Its unicast leaves without the devmap program.
    pub direct_unicast: bool,
}

/// One entry of `vbr port show -j` in any state, with the port's flags: unlike [`Port`], a
/// hotplug port still waiting for its interface parses too (no ifindex, mode or flags yet).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PortStatus {
    pub bridge: String,
    pub ifname: String,
    pub ifindex: Option<u32>,
    /// "xdp-native", "xdp-generic" or "tc".
    pub mode: Option<String>,
    pub attached: bool,
    /// "attached", "detached" or "waiting".
    pub state: String,
    /// The bridge's uplink (private, vepa and passthru modes).
    pub uplink: bool,
    pub flags: Option<PortFlagsShown>,
}

/// A port's flags as `vbr port show -j` lists them.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct PortFlagsShown {
    pub learning: bool,
    pub flood: bool,
    pub bcast_flood: bool,
    pub mcast_flood: bool,
    pub hairpin: bool,
    pub isolated: bool,
    pub max_learned: u32,
    pub flood_rate: u32,
}

/// One entry of `vbr vlan show -j`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PortVlans {
    pub bridge: String,
    pub ifname: String,
    /// `None` when the port admits no untagged frame.
    pub pvid: Option<u16>,
    pub tagged: Vec<u16>,
}

/// One entry of `vbr fdb show -j`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct FdbEntry {
    pub bridge: String,
    pub mac: String,
    pub vlan: u16,
    pub port: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub age_s: u64,
}

/// One line of `vbr monitor -j`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Event {
    pub bridge: String,
    /// learned, moved, missed, aged, added or deleted.
    pub event: String,
    pub mac: String,
    pub vlan: u16,
    pub port: String,
    /// For `moved`: the port the MAC was on before.
    pub old_port: Option<String>,
}

/// Frames and bytes through a port or a VLAN, as `vbr stats -j` counts them.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Counters {
    /// Frames accepted into a VLAN.
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Copies sent.
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Received frames that were flooded.
    pub flood_frames: u64,
    pub flood_bytes: u64,
}

impl Counters {
    /// What was counted between `before` and `self`. Panics if a counter went backwards.
    pub fn since(&self, before: &Counters) -> Counters {
        let delta = |now: u64, then: u64, name: &str| {
            now.checked_sub(then)
                .unwrap_or_else(|| panic!("{name} went backwards: {then} then {now}"))
        };
        Counters {
            rx_frames: delta(self.rx_frames, before.rx_frames, "rx_frames"),
            rx_bytes: delta(self.rx_bytes, before.rx_bytes, "rx_bytes"),
            tx_frames: delta(self.tx_frames, before.tx_frames, "tx_frames"),
            tx_bytes: delta(self.tx_bytes, before.tx_bytes, "tx_bytes"),
            flood_frames: delta(self.flood_frames, before.flood_frames, "flood_frames"),
            flood_bytes: delta(self.flood_bytes, before.flood_bytes, "flood_bytes"),
        }
    }
}

/// A port's entry in `vbr stats -j`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PortStats {
    pub ifname: String,
    pub ifindex: u32,
    #[serde(flatten)]
    pub counters: Counters,
}

/// A VLAN's entry in `vbr stats -j` (only VLANs that saw traffic are listed).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct VlanStats {
    pub vid: u16,
    #[serde(flatten)]
    pub counters: Counters,
}

/// One bridge of `vbr stats -j`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct BridgeStats {
    pub bridge: String,
    pub ports: Vec<PortStats>,
    /// Whether the bridge counts per VLAN (`vlan_stats` in its config).
    pub vlan_stats: bool,
    pub vlans: Vec<VlanStats>,
    /// Frames per fate: forwarded, flooded, drop_*, pass_*.
    pub reasons: BTreeMap<String, u64>,
}

impl BridgeStats {
    /// The counters of port `ifname`; panics if the bridge has no such port.
    pub fn port(&self, ifname: &str) -> Counters {
        self.ports
            .iter()
            .find(|port| port.ifname == ifname)
            .unwrap_or_else(|| {
                panic!(
                    "no port {ifname} in the stats of {}: {self:#?}",
                    self.bridge
                )
            })
            .counters
    }

    /// The counters of VLAN `vid`, zero if it is not listed (no traffic yet).
    pub fn vlan(&self, vid: u16) -> Counters {
        self.vlans
            .iter()
            .find(|vlan| vlan.vid == vid)
            .map_or_else(Counters::default, |vlan| vlan.counters)
    }

    /// Frames per reason counted between `before` and `self`, every reason listed.
    pub fn reasons_since(&self, before: &BridgeStats) -> BTreeMap<String, u64> {
        self.reasons
            .iter()
            .map(|(reason, &now)| {
                let then = before.reasons.get(reason).copied().unwrap_or(0);
                let delta = now
                    .checked_sub(then)
                    .unwrap_or_else(|| panic!("reason {reason} went backwards: {then} then {now}"));
                (reason.clone(), delta)
            })
            .collect()
    }
}

/// `vbr` run inside a network namespace (through nsenter, so it sees the host's bpffs).
#[derive(Clone, Debug)]
pub struct Cli {
    vbr: PathBuf,
    netns: PathBuf,
}

impl Cli {
    /// The CLI at `vbr`, run in the namespace named `netns`.
    pub fn new(vbr: &Path, netns: &str) -> Self {
        Self {
            vbr: vbr.to_owned(),
            netns: netns::path_of(netns),
        }
    }

    /// `vbr ARGS` ready to run in the namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.netns.display()))
            .arg(&self.vbr)
            .args(args);
        command
    }

    /// Runs `vbr ARGS` to completion, whatever its exit status.
    pub fn output(&self, args: &[&str]) -> Result<Output> {
        cmd::run(&mut self.command(args), CLI_TIMEOUT)
    }

    /// Runs `vbr ARGS` and returns its stdout, failing on a non-zero exit.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let output = cmd::run_ok(&mut self.command(args), CLI_TIMEOUT)?;
        String::from_utf8(output.stdout).with_context(|| format!("vbr {}: stdout", args.join(" ")))
    }

    /// Runs `vbr ARGS` and parses its stdout as JSON.
    pub fn json<T: DeserializeOwned>(&self, args: &[&str]) -> Result<T> {
        let stdout = self.run(args)?;
        serde_json::from_str(&stdout)
            .with_context(|| format!("vbr {}: parsing JSON output {stdout:?}", args.join(" ")))
    }

    /// `vbr port show -j --bridge BRIDGE`
    pub fn port_show(&self, bridge: &str) -> Result<Vec<Port>> {
        self.json(&["port", "show", "-j", "--bridge", bridge])
    }

    /// `vbr port show -j --bridge BRIDGE`, every port in whatever state it is (see [`PortStatus`]).
    pub fn port_status(&self, bridge: &str) -> Result<Vec<PortStatus>> {
        self.json(&["port", "show", "-j", "--bridge", bridge])
    }

    /// `vbr port set IFNAME --FLAG VALUE ...`: `flags` are (flag, value) pairs such as
    /// `("isolated", "on")` or `("max-learned", "3")`.
    pub fn port_set(&self, ifname: &str, flags: &[(&str, &str)]) -> Result<()> {
        let options: Vec<String> = flags.iter().map(|(flag, _)| format!("--{flag}")).collect();
        let mut args = vec!["port", "set", ifname];
        for (option, (_, value)) in options.iter().zip(flags) {
            args.push(option);
            args.push(value);
        }
        self.run(&args).map(drop)
    }

    /// `vbr vlan show -j --bridge BRIDGE`
    pub fn vlan_show(&self, bridge: &str) -> Result<Vec<PortVlans>> {
        self.json(&["vlan", "show", "-j", "--bridge", bridge])
    }

    /// `vbr vlan add --port PORT --vid VID [--pvid] --bridge BRIDGE`: `port` carries `vid` tagged,
    /// or with `pvid` takes it as its PVID.
    pub fn vlan_add(&self, bridge: &str, port: &str, vid: u16, pvid: bool) -> Result<()> {
        let vid = vid.to_string();
        let mut args = vec![
            "vlan", "add", "--port", port, "--vid", &vid, "--bridge", bridge,
        ];
        if pvid {
            args.push("--pvid");
        }
        self.run(&args).map(drop)
    }

    /// `vbr vlan del --port PORT --vid VID --bridge BRIDGE`
    pub fn vlan_del(&self, bridge: &str, port: &str, vid: u16) -> Result<()> {
        let vid = vid.to_string();
        self.run(&[
            "vlan", "del", "--port", port, "--vid", &vid, "--bridge", bridge,
        ])
        .map(drop)
    }

    /// `vbr fdb show -j --bridge BRIDGE`
    pub fn fdb_show(&self, bridge: &str) -> Result<Vec<FdbEntry>> {
        self.json(&["fdb", "show", "-j", "--bridge", bridge])
    }

    /// `vbr fdb add MAC --port PORT --bridge BRIDGE`
    pub fn fdb_add(&self, bridge: &str, mac: Mac, port: &str) -> Result<()> {
        let mac = mac.to_string();
        self.run(&["fdb", "add", &mac, "--port", port, "--bridge", bridge])
            .map(drop)
    }

    /// `vbr stats -j --bridge BRIDGE`
    pub fn stats(&self, bridge: &str) -> Result<BridgeStats> {
        let mut all: Vec<BridgeStats> = self.json(&["stats", "-j", "--bridge", bridge])?;
        match all.len() {
            1 => Ok(all.remove(0)),
            n => Err(anyhow!(
                "`vbr stats -j --bridge {bridge}` listed {n} bridges: {all:#?}"
            )),
        }
    }

    /// `vbr agent reload`, failing with its stderr if the agent refuses.
    pub fn reload(&self) -> Result<()> {
        self.run(&["agent", "reload"]).map(drop)
    }

    /// `vbr bridge del BRIDGE`
    pub fn bridge_del(&self, bridge: &str) -> Result<()> {
        self.run(&["bridge", "del", bridge]).map(drop)
    }

    /// `vbr fdb del MAC --bridge BRIDGE`
    pub fn fdb_del(&self, bridge: &str, mac: Mac) -> Result<()> {
        let mac = mac.to_string();
        self.run(&["fdb", "del", &mac, "--bridge", bridge])
            .map(drop)
    }
}
