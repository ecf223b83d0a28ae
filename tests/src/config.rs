//! The agent's config: bridges, their ports and each port's 802.1Q VLANs, written as the TOML the
//! agent reads. Port kinds, flags, bridge modes and the host port are written only when a test
//! sets them, so that a config that does not use them reads as one without them.

/// The VLAN untagged frames join on a port whose config names no PVID.
pub const DEFAULT_PVID: u16 = 1;

/// A bridge of the agent's config: a name unique to the lab and the switch ports it holds.
#[derive(Clone, Debug)]
pub struct Bridge {
    pub name: String,
    /// Seconds before a silent learned MAC is forgotten; `None` leaves the agent's default.
    pub ageing_time: Option<u64>,
    pub ports: Vec<BridgePort>,
    /// How the ports may talk to each other (macvlan's modes); `None` leaves the default, bridge.
    pub mode: Option<BridgeMode>,
    /// The host's own port on the bridge: a veth pair the agent makes.
    pub host_port: Option<HostPort>,
    /// Learned MACs the whole bridge may hold; `None` leaves the agent's default.
    pub max_learned: Option<u32>,
    /// What becomes of link-local frames (01:80:c2:00:00:0x); `None` leaves the default, drop.
    pub link_local: Option<LinkLocal>,
    /// Counts frames per VLAN too (`vlan_stats = true`); false leaves the default, off.
    pub vlan_stats: bool,
}

/// The bridge's `link_local` policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLocal {
    Drop,
    /// Up the stack of the port the frame came in on.
    Host,
    /// Flooded like other multicast.
    Forward,
}

impl LinkLocal {
    /// The name the config uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Host => "host",
            Self::Forward => "forward",
        }
    }
}

/// macvlan's modes, as the bridge's `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeMode {
    Bridge,
    Private,
    Vepa,
    Passthru,
}

impl BridgeMode {
    /// The name the config uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Private => "private",
            Self::Vepa => "vepa",
            Self::Passthru => "passthru",
        }
    }
}

/// How a port's frames reach the datapath, as a port's `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatapathMode {
    Auto,
    Xdp,
    XdpGeneric,
    Tc,
}

impl DatapathMode {
    /// The name the config uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Xdp => "xdp",
            Self::XdpGeneric => "xdp-generic",
            Self::Tc => "tc",
        }
    }
}

/// `host_port = { ifname, address, pvid }`: the agent makes the veth pair IFNAME (the host's
/// side, with the address) <-> IFNAME-br (the bridge's port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// At most 12 bytes: the agent appends "-br" for the bridge's side.
    pub ifname: String,
    /// An address with its prefix length, `10.0.0.1/24`.
    pub address: Option<String>,
    pub pvid: Option<u16>,
}

impl HostPort {
    /// The bridge's side of the pair, the port `vbr port show` lists.
    pub fn port_ifname(&self) -> String {
        format!("{}-br", self.ifname)
    }

    fn toml(&self) -> String {
        let mut fields = vec![format!("ifname = \"{}\"", self.ifname)];
        if let Some(address) = &self.address {
            fields.push(format!("address = \"{address}\""));
        }
        if let Some(pvid) = self.pvid {
            fields.push(format!("pvid = {pvid}"));
        }
        format!("host_port = {{ {} }}\n", fields.join(", "))
    }
}

/// The Linux bridge's per-port flags (`bridge link set dev X ...`); `None` leaves the agent's
/// default and writes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortFlags {
    pub learning: Option<bool>,
    pub flood: Option<bool>,
    pub bcast_flood: Option<bool>,
    pub mcast_flood: Option<bool>,
    pub hairpin: Option<bool>,
    pub isolated: Option<bool>,
    pub max_learned: Option<u32>,
    pub flood_rate: Option<u32>,
}

impl PortFlags {
    fn toml(&self) -> String {
        let switches = [
            ("learning", self.learning),
            ("flood", self.flood),
            ("bcast_flood", self.bcast_flood),
            ("mcast_flood", self.mcast_flood),
            ("hairpin", self.hairpin),
            ("isolated", self.isolated),
        ];
        let limits = [
            ("max_learned", self.max_learned),
            ("flood_rate", self.flood_rate),
        ];
        let switches = switches
            .iter()
            .filter_map(|(key, value)| value.map(|value| format!("{key} = {value}\n")));
        let limits = limits
            .iter()
            .filter_map(|(key, value)| value.map(|value| format!("{key} = {value}\n")));
        switches.chain(limits).collect()
    }
}

/// One port of a [`Bridge`]: a switch-side interface and its VLAN membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgePort {
    pub ifname: String,
    /// The VLAN untagged frames join and leave in; `None` admits no untagged frame
    /// (`pvid = "none"`, a pure trunk).
    pub pvid: Option<u16>,
    /// The VLANs the port carries tagged.
    pub tagged: Vec<u16>,
    /// How its frames reach the datapath; `None` leaves the default, auto.
    pub mode: Option<DatapathMode>,
    /// The interface may be absent: the port waits for it.
    pub hotplug: bool,
    /// The bridge's uplink (private, vepa and passthru modes).
    pub uplink: bool,
    pub flags: PortFlags,
}

impl BridgePort {
    /// `ifname` as a port of the default VLAN only: PVID [`DEFAULT_PVID`], nothing tagged.
    pub fn new(ifname: &str) -> Self {
        Self {
            ifname: ifname.to_owned(),
            pvid: Some(DEFAULT_PVID),
            tagged: Vec::new(),
            mode: None,
            hotplug: false,
            uplink: false,
            flags: PortFlags::default(),
        }
    }

    /// The `[[bridge.port]]` table; the VLAN keys only when they differ from the defaults, so that a
    /// VLAN-unaware test's config reads as one without VLANs.
    fn toml(&self) -> String {
        let mut toml = format!("\n[[bridge.port]]\nifname = \"{}\"\n", self.ifname);
        match self.pvid {
            Some(DEFAULT_PVID) => {}
            Some(pvid) => toml += &format!("pvid = {pvid}\n"),
            None => toml += "pvid = \"none\"\n",
        }
        if !self.tagged.is_empty() {
            let tagged: Vec<String> = self.tagged.iter().map(u16::to_string).collect();
            toml += &format!("tagged = [{}]\n", tagged.join(", "));
        }
        if let Some(mode) = self.mode {
            toml += &format!("mode = \"{}\"\n", mode.name());
        }
        if self.hotplug {
            toml += "hotplug = true\n";
        }
        if self.uplink {
            toml += "uplink = true\n";
        }
        toml += &self.flags.toml();
        toml
    }
}

/// The agent's config (TOML) for `bridges`.
pub fn config_toml(bridges: &[Bridge]) -> String {
    let mut toml = String::new();
    for bridge in bridges {
        toml += &format!("[[bridge]]\nname = \"{}\"\n", bridge.name);
        if let Some(seconds) = bridge.ageing_time {
            toml += &format!("ageing_time = {seconds}\n");
        }
        if let Some(mode) = bridge.mode {
            toml += &format!("mode = \"{}\"\n", mode.name());
        }
        if let Some(limit) = bridge.max_learned {
            toml += &format!("max_learned = {limit}\n");
        }
        if let Some(policy) = bridge.link_local {
            toml += &format!("link_local = \"{}\"\n", policy.name());
        }
        if bridge.vlan_stats {
            toml += "vlan_stats = true\n";
        }
        if let Some(host_port) = &bridge.host_port {
            toml += &host_port.toml();
        }
        for port in &bridge.ports {
            toml += &port.toml();
        }
        toml += "\n";
    }
    toml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_vlans_are_left_out_and_others_written() {
        let trunk = BridgePort {
            pvid: None,
            tagged: vec![10, 20],
            ..BridgePort::new("p2")
        };
        let access = BridgePort {
            pvid: Some(30),
            ..BridgePort::new("p3")
        };
        let bridge = Bridge {
            name: "b0".to_owned(),
            ageing_time: None,
            ports: vec![BridgePort::new("p1"), trunk, access],
            mode: None,
            host_port: None,
            max_learned: None,
            link_local: None,
            vlan_stats: false,
        };
        assert_eq!(
            config_toml(&[bridge]),
            "[[bridge]]\nname = \"b0\"\n\
             \n[[bridge.port]]\nifname = \"p1\"\n\
             \n[[bridge.port]]\nifname = \"p2\"\npvid = \"none\"\ntagged = [10, 20]\n\
             \n[[bridge.port]]\nifname = \"p3\"\npvid = 30\n\n"
        );
    }

    #[test]
    fn ageing_time_is_written_when_set() {
        let bridge = Bridge {
            name: "b0".to_owned(),
            ageing_time: Some(2),
            ports: vec![BridgePort::new("p1")],
            mode: None,
            host_port: None,
            max_learned: None,
            link_local: None,
            vlan_stats: false,
        };
        assert_eq!(
            config_toml(&[bridge]),
            "[[bridge]]\nname = \"b0\"\nageing_time = 2\n\n[[bridge.port]]\nifname = \"p1\"\n\n"
        );
    }

    #[test]
    fn bridge_limit_link_local_and_vlan_stats_are_written_when_set() {
        let bridge = Bridge {
            name: "b0".to_owned(),
            ageing_time: None,
            ports: vec![BridgePort::new("p1")],
            mode: None,
            host_port: None,
            max_learned: Some(500),
            link_local: Some(LinkLocal::Forward),
            vlan_stats: true,
        };
        assert_eq!(
            config_toml(&[bridge]),
            "[[bridge]]\nname = \"b0\"\nmax_learned = 500\nlink_local = \"forward\"\n\
             vlan_stats = true\n\n[[bridge.port]]\nifname = \"p1\"\n\n"
        );
    }

    #[test]
    fn modes_flags_and_host_port_are_written_when_set() {
        let uplink = BridgePort {
            uplink: true,
            mode: Some(DatapathMode::Tc),
            ..BridgePort::new("up")
        };
        let guest = BridgePort {
            hotplug: true,
            flags: PortFlags {
                learning: Some(false),
                hairpin: Some(true),
                max_learned: Some(3),
                ..PortFlags::default()
            },
            ..BridgePort::new("g1")
        };
        let bridge = Bridge {
            name: "b0".to_owned(),
            ageing_time: None,
            ports: vec![uplink, guest],
            mode: Some(BridgeMode::Vepa),
            host_port: Some(HostPort {
                ifname: "vbr0".to_owned(),
                address: Some("10.0.0.1/24".to_owned()),
                pvid: None,
            }),
            max_learned: None,
            link_local: None,
            vlan_stats: false,
        };
        assert_eq!(
            config_toml(&[bridge]),
            "[[bridge]]\nname = \"b0\"\nmode = \"vepa\"\n\
             host_port = { ifname = \"vbr0\", address = \"10.0.0.1/24\" }\n\
             \n[[bridge.port]]\nifname = \"up\"\nmode = \"tc\"\nuplink = true\n\
             \n[[bridge.port]]\nifname = \"g1\"\nhotplug = true\nlearning = false\nhairpin = true\nmax_learned = 3\n\n"
        );
    }
}
