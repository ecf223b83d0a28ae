//! The agent's configuration file (TOML).
//!
//! ```toml
//! [[bridge]]
//! name = "br0"          # pins under /sys/fs/bpf/vbr/br0/
//! ageing_time = 300     # seconds; 0 = never
//!
//! [[bridge.port]]
//! ifname = "sw-h1"
//! pvid = 10                 # default 1; "none" admits no untagged frames (a pure trunk)
//! tagged = [20, "100-110"]  # VLANs carried 802.1Q-tagged
//! mode = "auto"             # "xdp", "xdp-generic" or "tc": how frames reach the datapath
//!
//! [[accelerate]]
//! bridge = "br1"            # an existing Linux bridge: vbr carries its known unicast in XDP
//! ```
use std::{collections::HashSet, path::Path};

use serde::Deserialize;
use vbr_common::{
    DEFAULT_BRIDGE_MAX_LEARNED, DEFAULT_PORT_MAX_LEARNED, DEFAULT_VLAN, port::PVID_NONE,
    vlan::VID_MAX,
};

/// Learned entries older than this many seconds are removed, as the Linux bridge's default.
pub const DEFAULT_AGEING_TIME: u64 = 300;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "bridge", default)]
    pub bridges: Vec<BridgeConfig>,
    #[serde(rename = "accelerate", default)]
    pub accelerators: Vec<AccelerateConfig>,
}

/// An existing Linux bridge whose known unicast vbr carries in XDP, beside it: the kernel bridge
/// stays the control plane and the slow path.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccelerateConfig {
    /// The Linux bridge's name; vbr's pins for it go under /sys/fs/bpf/vbr/<bridge>/.
    pub bridge: String,
    /// Accelerate even while the bridge hands bridged frames to netfilter (bridge-nf-call-* on,
    /// br_netfilter): the frames vbr carries then skip iptables/nftables. Off by default: such a
    /// bridge's frames all stay on the kernel's path.
    #[serde(default)]
    pub bypass_netfilter: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    pub name: String,
    #[serde(default = "default_ageing_time")]
    pub ageing_time: u64,
    #[serde(rename = "port", default)]
    pub ports: Vec<PortConfig>,
    /// Gives the host stack a port on the bridge, as an address on a Linux bridge does.
    pub host_port: Option<HostPortConfig>,
    /// How the ports may talk to each other, as macvlan's modes.
    #[serde(default)]
    pub mode: BridgeMode,
    /// Learned MACs the whole bridge may hold.
    #[serde(default = "default_bridge_max_learned")]
    pub max_learned: u32,
    /// What becomes of link-local frames (01:80:c2:00:00:0x: STP, LACP, LLDP).
    #[serde(default)]
    pub link_local: LinkLocalPolicy,
    /// Counts frames and bytes per VLAN too. Off by default, as the Linux bridge's
    /// `vlan_stats_enabled`: it costs every frame two more counter updates.
    #[serde(default)]
    pub vlan_stats: bool,
}

/// What the bridge does with link-local frames, which 802.1D bridges never forward.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LinkLocalPolicy {
    #[default]
    Drop,
    /// Up the stack of the port they came in on.
    Host,
    /// Flooded like other multicast.
    Forward,
}

fn default_bridge_max_learned() -> u32 {
    DEFAULT_BRIDGE_MAX_LEARNED
}

/// macvlan's forwarding modes between the ports of one uplink.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BridgeMode {
    /// Ports talk directly.
    #[default]
    Bridge,
    /// Non-uplink ports never talk to each other, even hairpinned by the uplink's far side.
    Private,
    /// Every frame from a non-uplink port goes out the uplink; the external switch hairpins
    /// frames for local ports back.
    Vepa,
    /// One port owns the uplink.
    Passthru,
}

impl BridgeMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Private => "private",
            Self::Vepa => "vepa",
            Self::Passthru => "passthru",
        }
    }
}

/// `host_port = { ifname = "vbr0", address = "10.0.0.1/24", pvid = 1 }`: the agent makes a veth
/// pair, `vbr0` for the host (with the address) and `vbr0-br` as the bridge's port.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostPortConfig {
    pub ifname: String,
    pub address: Option<Address>,
    #[serde(default = "default_pvid")]
    pub pvid: u16,
}

impl HostPortConfig {
    /// The bridge's side of the host port's veth pair.
    pub fn port_ifname(&self) -> String {
        format!("{}{HOST_PORT_SUFFIX}", self.ifname)
    }
}

/// Appended to a host port's name to name the bridge's side of its veth pair.
const HOST_PORT_SUFFIX: &str = "-br";

/// An interface address with its prefix length: `10.0.0.1/24`, `fd00::1/64`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub struct Address {
    pub ip: std::net::IpAddr,
    pub prefix_len: u8,
}

impl TryFrom<String> for Address {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let error = || format!("{text:?} is not an address with a prefix length, like 10.0.0.1/24");
        let (ip, prefix) = text.split_once('/').ok_or_else(error)?;
        let ip: std::net::IpAddr = ip.parse().map_err(|_| error())?;
        let prefix_len: u8 = prefix.parse().map_err(|_| error())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(error());
        }
        Ok(Self { ip, prefix_len })
    }
}

fn default_pvid() -> u16 {
    DEFAULT_VLAN
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawPort")]
pub struct PortConfig {
    pub ifname: String,
    /// `PVID_NONE` for `pvid = "none"`.
    pub pvid: u16,
    /// Ascending, without duplicates, never containing the PVID.
    pub tagged: Vec<u16>,
    pub mode: DatapathMode,
    /// The interface may be absent (a VM's tap before the VM starts): the port waits for it.
    pub hotplug: bool,
    /// The bridge's uplink (private, vepa and passthru modes).
    pub uplink: bool,
    pub flags: PortFlags,
}

/// The Linux bridge's per-port flags (`bridge link set dev X learning off ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PortFlags {
    pub learning: bool,
    /// Unknown unicast is flooded to the port.
    pub flood: bool,
    pub bcast_flood: bool,
    pub mcast_flood: bool,
    /// A frame may leave by the port it came in on.
    pub hairpin: bool,
    /// Isolated ports never talk to each other, only to non-isolated ones.
    pub isolated: bool,
    /// Learned MACs the port may hold; 0 for no limit.
    pub max_learned: u32,
    /// Flooded frames per second the port may send into the bridge; 0 for no limit.
    pub flood_rate: u32,
}

impl Default for PortFlags {
    fn default() -> Self {
        Self {
            learning: true,
            flood: true,
            bcast_flood: true,
            mcast_flood: true,
            hairpin: false,
            isolated: false,
            max_learned: DEFAULT_PORT_MAX_LEARNED,
            flood_rate: 0,
        }
    }
}

/// How a port's frames reach the datapath.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DatapathMode {
    /// Native XDP where the driver has it, the skb (TC) path otherwise.
    #[default]
    Auto,
    /// Native XDP, or fail.
    Xdp,
    /// Generic (skb-backed) XDP.
    XdpGeneric,
    /// TC clsact ingress: the skb path.
    Tc,
}

/// A port as written, before its VLANs are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    ifname: String,
    pvid: Option<VlanSpec>,
    #[serde(default)]
    tagged: Vec<VlanSpec>,
    #[serde(default)]
    mode: DatapathMode,
    #[serde(default)]
    hotplug: bool,
    #[serde(default)]
    uplink: bool,
    learning: Option<bool>,
    flood: Option<bool>,
    bcast_flood: Option<bool>,
    mcast_flood: Option<bool>,
    hairpin: Option<bool>,
    isolated: Option<bool>,
    max_learned: Option<u32>,
    flood_rate: Option<u32>,
}

/// A VID as a number, or text: `"none"` (for pvid), `"10"` or a range `"100-110"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum VlanSpec {
    Number(i64),
    Text(String),
}

impl TryFrom<RawPort> for PortConfig {
    type Error = String;

    fn try_from(raw: RawPort) -> Result<Self, String> {
        let defaults = PortFlags::default();
        let ifname = raw.ifname;
        let in_port = |error: String| format!("port {ifname:?}: {error}");
        let pvid = match raw.pvid {
            None => DEFAULT_VLAN,
            Some(VlanSpec::Text(text)) if text == "none" => PVID_NONE,
            Some(VlanSpec::Number(number)) => vid(number).map_err(in_port)?,
            Some(VlanSpec::Text(text)) => vid_text(&text).map_err(in_port)?,
        };
        let mut tagged = Vec::new();
        for spec in raw.tagged {
            match spec {
                VlanSpec::Number(number) => tagged.push(vid(number).map_err(in_port)?),
                VlanSpec::Text(text) => tagged.extend(parse_vlan_range(&text).map_err(in_port)?),
            }
        }
        tagged.sort_unstable();
        tagged.dedup();
        if tagged.contains(&pvid) {
            return Err(in_port(format!(
                "VLAN {pvid} cannot be both the pvid and tagged"
            )));
        }
        Ok(Self {
            ifname,
            pvid,
            tagged,
            mode: raw.mode,
            hotplug: raw.hotplug,
            uplink: raw.uplink,
            flags: PortFlags {
                learning: raw.learning.unwrap_or(defaults.learning),
                flood: raw.flood.unwrap_or(defaults.flood),
                bcast_flood: raw.bcast_flood.unwrap_or(defaults.bcast_flood),
                mcast_flood: raw.mcast_flood.unwrap_or(defaults.mcast_flood),
                hairpin: raw.hairpin.unwrap_or(defaults.hairpin),
                isolated: raw.isolated.unwrap_or(defaults.isolated),
                max_learned: raw.max_learned.unwrap_or(defaults.max_learned),
                flood_rate: raw.flood_rate.unwrap_or(defaults.flood_rate),
            },
        })
    }
}

/// Parses `"N"` or `"A-B"` (A ≤ B) into the VIDs it names, each within 1–4094.
pub fn parse_vlan_range(text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (vid_text(first)?, vid_text(last)?),
        None => {
            let vid = vid_text(text)?;
            (vid, vid)
        }
    };
    if first > last {
        return Err(format!("VLAN range {text:?} runs backwards"));
    }
    Ok(first..=last)
}

fn vid_text(text: &str) -> Result<u16, String> {
    let number = text.trim().parse::<i64>().map_err(|_| {
        format!("{text:?} is not a VLAN id (expected 1-{VID_MAX}, or a range like \"100-110\")")
    })?;
    vid(number)
}

fn vid(number: i64) -> Result<u16, String> {
    match u16::try_from(number) {
        Ok(vid @ 1..=VID_MAX) => Ok(vid),
        _ => Err(format!("VLAN id {number} is outside 1-{VID_MAX}")),
    }
}

fn default_ageing_time() -> u64 {
    DEFAULT_AGEING_TIME
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("the config defines no bridge (add a [[bridge]] or an [[accelerate]] table)")]
    NoBridge,
    #[error(
        "[[accelerate]] bridge {0:?} is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)"
    )]
    AccelerateName(String),
    #[error(
        "bridge name {0:?} is invalid: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    BridgeName(String),
    #[error("bridge {0:?} is defined twice")]
    DuplicateBridge(String),
    #[error("bridge {0:?} has no port (add a [[bridge.port]] table)")]
    NoPort(String),
    #[error("port {ifname:?} is listed twice (in bridge {first:?} and in bridge {second:?})")]
    DuplicatePort {
        ifname: String,
        first: String,
        second: String,
    },
    #[error("port name {0:?} is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)")]
    PortName(String),
    #[error(
        "host port name {0:?} is too long or invalid: use 1 to 12 bytes (the agent appends \"-br\" for the bridge's side)"
    )]
    HostPortName(String),
    #[error("host port pvid {0} is outside 1-4094")]
    HostPortPvid(u16),
    #[error(
        "bridge {bridge:?} in {mode} mode needs exactly one port with uplink = true, not {count}"
    )]
    Uplink {
        bridge: String,
        mode: &'static str,
        count: usize,
    },
    #[error(
        "bridge {bridge:?} marks port {port:?} as uplink: only private, vepa and passthru bridges have one"
    )]
    UplinkInBridgeMode { bridge: String, port: String },
    #[error(
        "bridge {bridge:?} is in passthru mode, where a single port owns the uplink: {port:?} would be a second one"
    )]
    PassthruSecondPort { bridge: String, port: String },
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|error| ConfigError::Parse {
            path: path.display().to_string(),
            message: match error {
                ConfigError::Parse { message, .. } => message,
                other => other.to_string(),
            },
        })
    }

    /// Parses and validates a config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: String::new(),
            message: error.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what can be checked without looking at the system.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.bridges.is_empty() && self.accelerators.is_empty() {
            return Err(ConfigError::NoBridge);
        }
        let mut bridge_names = HashSet::new();
        // Both kinds pin under /sys/fs/bpf/vbr/<name>/: one namespace of names.
        for accelerator in &self.accelerators {
            if !valid_ifname(&accelerator.bridge) || !valid_bridge_name(&accelerator.bridge) {
                return Err(ConfigError::AccelerateName(accelerator.bridge.clone()));
            }
            if !bridge_names.insert(accelerator.bridge.as_str()) {
                return Err(ConfigError::DuplicateBridge(accelerator.bridge.clone()));
            }
        }
        let mut port_owner: Vec<(String, String)> = Vec::new();
        for bridge in &self.bridges {
            if !valid_bridge_name(&bridge.name) {
                return Err(ConfigError::BridgeName(bridge.name.clone()));
            }
            if !bridge_names.insert(bridge.name.as_str()) {
                return Err(ConfigError::DuplicateBridge(bridge.name.clone()));
            }
            if bridge.ports.is_empty() && bridge.host_port.is_none() {
                return Err(ConfigError::NoPort(bridge.name.clone()));
            }
            let host_port = bridge
                .host_port
                .as_ref()
                .map(|host| (host.ifname.clone(), host.port_ifname(), host.pvid));
            if let Some((host, _, pvid)) = &host_port {
                if !valid_ifname(&format!("{host}{HOST_PORT_SUFFIX}")) {
                    return Err(ConfigError::HostPortName(host.clone()));
                }
                if !(1..=VID_MAX).contains(pvid) {
                    return Err(ConfigError::HostPortPvid(*pvid));
                }
            }
            bridge.validate_mode()?;
            let names = bridge.ports.iter().map(|port| port.ifname.clone()).chain(
                host_port
                    .into_iter()
                    .flat_map(|(host, port, _)| [host, port]),
            );
            for ifname in names {
                if !valid_ifname(&ifname) {
                    return Err(ConfigError::PortName(ifname));
                }
                if let Some((_, first)) = port_owner.iter().find(|(name, _)| *name == ifname) {
                    return Err(ConfigError::DuplicatePort {
                        ifname,
                        first: first.clone(),
                        second: bridge.name.clone(),
                    });
                }
                port_owner.push((ifname, bridge.name.clone()));
            }
        }
        Ok(())
    }
}

impl BridgeConfig {
    /// The uplink rules of the bridge's mode.
    fn validate_mode(&self) -> Result<(), ConfigError> {
        let uplinks: Vec<&PortConfig> = self.ports.iter().filter(|port| port.uplink).collect();
        if self.mode == BridgeMode::Bridge {
            if let Some(port) = uplinks.first() {
                return Err(ConfigError::UplinkInBridgeMode {
                    bridge: self.name.clone(),
                    port: port.ifname.clone(),
                });
            }
            return Ok(());
        }
        if uplinks.len() != 1 {
            return Err(ConfigError::Uplink {
                bridge: self.name.clone(),
                mode: self.mode.name(),
                count: uplinks.len(),
            });
        }
        if self.mode == BridgeMode::Passthru {
            let mut guests = self
                .ports
                .iter()
                .filter(|port| !port.uplink)
                .map(|port| port.ifname.clone())
                .chain(self.host_port.iter().map(HostPortConfig::port_ifname));
            if let (Some(_), Some(second)) = (guests.next(), guests.next()) {
                return Err(ConfigError::PassthruSecondPort {
                    bridge: self.name.clone(),
                    port: second,
                });
            }
        }
        Ok(())
    }
}

/// A bridge name becomes a directory under /sys/fs/bpf/vbr.
fn valid_bridge_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The kernel's rules for interface names (dev_valid_name).
fn valid_ifname(name: &str) -> bool {
    (1..libc::IF_NAMESIZE).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_bridges_with_defaults() {
        let config = Config::parse(
            r#"
            [[bridge]]
            name = "br0"
            [[bridge.port]]
            ifname = "sw-h1"
            [[bridge.port]]
            ifname = "sw-h2"

            [[bridge]]
            name = "br1"
            ageing_time = 0
            vlan_stats = true
            [[bridge.port]]
            ifname = "sw-h3"
            "#,
        )
        .unwrap();
        assert_eq!(config.bridges.len(), 2);
        assert_eq!(config.bridges[0].ageing_time, DEFAULT_AGEING_TIME);
        assert!(!config.bridges[0].vlan_stats, "off unless asked for");
        assert!(config.bridges[1].vlan_stats);
        assert_eq!(config.bridges[0].ports[1].ifname, "sw-h2");
        assert_eq!(config.bridges[0].ports[1].pvid, DEFAULT_VLAN);
        assert!(config.bridges[0].ports[1].tagged.is_empty());
        assert_eq!(config.bridges[1].ageing_time, 0);
    }

    fn one_port(port_fields: &str) -> Result<PortConfig, String> {
        let text =
            format!("[[bridge]]\nname = \"a\"\n[[bridge.port]]\nifname = \"p1\"\n{port_fields}\n");
        Config::parse(&text)
            .map(|mut config| config.bridges.remove(0).ports.remove(0))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn parses_host_port_and_hotplug() {
        let config = Config::parse(
            r#"
            [[bridge]]
            name = "a"
            host_port = { ifname = "vbr0", address = "10.0.0.1/24" }
            [[bridge.port]]
            ifname = "tap-vm1"
            hotplug = true
            "#,
        )
        .unwrap();
        let host = config.bridges[0].host_port.as_ref().unwrap();
        assert_eq!(host.port_ifname(), "vbr0-br");
        assert_eq!(host.address.unwrap().prefix_len, 24);
        assert_eq!(host.pvid, DEFAULT_VLAN);
        assert!(config.bridges[0].ports[0].hotplug);
        let message = error_of(
            "[[bridge]]\nname = \"a\"\nhost_port = { ifname = \"h\", address = \"10.0.0.300/24\" }\n",
        );
        assert!(message.contains("10.0.0.300/24"), "{message}");
        let message =
            error_of("[[bridge]]\nname = \"a\"\nhost_port = { ifname = \"thirteen-char\" }\n");
        assert!(message.contains("thirteen-char"), "{message}");
    }

    #[test]
    fn checks_modes_and_flags() {
        let ports = |extra: &str| {
            format!(
                "[[bridge.port]]\nifname = \"up\"\nuplink = true\n[[bridge.port]]\nifname = \"g1\"\n{extra}"
            )
        };
        let config = Config::parse(&format!(
            "[[bridge]]\nname = \"a\"\nmode = \"vepa\"\n{}",
            ports("hairpin = true\nisolated = true\nlearning = false\nmax_learned = 5\n")
        ))
        .unwrap();
        let bridge = &config.bridges[0];
        assert_eq!(bridge.mode, BridgeMode::Vepa);
        assert!(bridge.ports[0].uplink);
        let flags = bridge.ports[1].flags;
        assert!(flags.hairpin && flags.isolated && !flags.learning && flags.flood);
        assert_eq!(flags.max_learned, 5);
        let message = error_of(&format!(
            "[[bridge]]\nname = \"a\"\nmode = \"passthru\"\n{}",
            ports("[[bridge.port]]\nifname = \"g2\"\n")
        ));
        assert!(
            message.contains("\"g2\"") && message.contains("passthru"),
            "{message}"
        );
        let message = error_of(
            "[[bridge]]\nname = \"a\"\nmode = \"private\"\n[[bridge.port]]\nifname = \"g1\"\n",
        );
        assert!(
            message.contains("exactly one port with uplink"),
            "{message}"
        );
        let message = error_of(&format!("[[bridge]]\nname = \"a\"\n{}", ports("")));
        assert!(
            message.contains("only private, vepa and passthru"),
            "{message}"
        );
    }

    #[test]
    fn parses_pvid_and_tagged_ranges() {
        let port = one_port("pvid = 10\ntagged = [20, \"100-103\", 20]").unwrap();
        assert_eq!(port.pvid, 10);
        assert_eq!(port.tagged, vec![20, 100, 101, 102, 103]);
        assert_eq!(port.mode, DatapathMode::Auto);
        let trunk =
            one_port("pvid = \"none\"\ntagged = [\"4094\"]\nmode = \"xdp-generic\"").unwrap();
        assert_eq!(trunk.mode, DatapathMode::XdpGeneric);
        assert_eq!(trunk.pvid, PVID_NONE);
        assert_eq!(trunk.tagged, vec![4094]);
    }

    #[test]
    fn rejects_bad_vlans_naming_port_and_value() {
        for (fields, needle) in [
            ("pvid = 0", "VLAN id 0 is outside 1-4094"),
            ("pvid = 4095", "VLAN id 4095"),
            ("tagged = [5000]", "VLAN id 5000"),
            ("tagged = [\"10-5\"]", "\"10-5\" runs backwards"),
            ("tagged = [\"ten\"]", "\"ten\" is not a VLAN id"),
            ("pvid = 10\ntagged = [\"5-15\"]", "VLAN 10 cannot be both"),
        ] {
            let message = one_port(fields).unwrap_err();
            assert!(
                message.contains("port \"p1\"") && message.contains(needle),
                "{fields}: {message}"
            );
        }
    }

    fn error_of(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn rejects_duplicate_port_naming_it() {
        let message = error_of(
            r#"
            [[bridge]]
            name = "a"
            [[bridge.port]]
            ifname = "p1"
            [[bridge]]
            name = "b"
            [[bridge.port]]
            ifname = "p1"
            "#,
        );
        assert!(
            message.contains("\"p1\"") && message.contains("twice"),
            "{message}"
        );
    }

    #[test]
    fn rejects_unparsable_and_unknown_fields() {
        assert!(error_of("[[bridge]\nname=").contains("not valid"));
        let message =
            error_of("[[bridge]]\nname = \"a\"\ncolour = 1\n[[bridge.port]]\nifname = \"p\"\n");
        assert!(message.contains("colour"), "{message}");
    }

    #[test]
    fn rejects_bad_names_and_empty_bridges() {
        assert!(error_of("").contains("no bridge"));
        assert!(
            error_of("[[bridge]]\nname = \"../x\"\n[[bridge.port]]\nifname = \"p\"\n")
                .contains("../x")
        );
        assert!(error_of("[[bridge]]\nname = \"a\"\n").contains("no port"));
        let long = "[[bridge]]\nname = \"a\"\n[[bridge.port]]\nifname = \"sixteen-chars-xx\"\n";
        assert!(error_of(long).contains("sixteen-chars-xx"));
        let twice = "[[bridge]]\nname = \"a\"\n[[bridge.port]]\nifname = \"p\"\n[[bridge]]\nname = \"a\"\n[[bridge.port]]\nifname = \"q\"\n";
        assert!(error_of(twice).contains("defined twice"));
    }

    #[test]
    fn accelerators_share_the_bridges_names() {
        let config = Config::parse("[[accelerate]]\nbridge = \"br0\"\n").unwrap();
        assert_eq!(
            config.accelerators,
            [AccelerateConfig {
                bridge: "br0".into(),
                bypass_netfilter: false
            }]
        );
        let clash = "[[accelerate]]\nbridge = \"a\"\n[[bridge]]\nname = \"a\"\n[[bridge.port]]\nifname = \"p\"\n";
        assert!(error_of(clash).contains("\"a\" is defined twice"));
        assert!(
            error_of("[[accelerate]]\nbridge = \"sixteen-chars-xx\"\n")
                .contains("sixteen-chars-xx")
        );
        assert!(error_of("[[accelerate]]\nbridge = \"br0\"\nports = []\n").contains("ports"));
    }
}
