//! The agent's config: bridges, their ports and each port's 802.1Q VLANs, written as the TOML the
//! agent reads.

/// The VLAN untagged frames join on a port whose config names no PVID.
pub const DEFAULT_PVID: u16 = 1;

/// A bridge of the agent's config: a name unique to the lab and the switch ports it holds.
#[derive(Clone, Debug)]
pub struct Bridge {
    pub name: String,
    /// Seconds before a silent learned MAC is forgotten; `None` leaves the agent's default.
    pub ageing_time: Option<u64>,
    pub ports: Vec<BridgePort>,
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
}

impl BridgePort {
    /// `ifname` as a port of the default VLAN only: PVID [`DEFAULT_PVID`], nothing tagged.
    pub fn new(ifname: &str) -> Self {
        Self {
            ifname: ifname.to_owned(),
            pvid: Some(DEFAULT_PVID),
            tagged: Vec::new(),
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
        };
        assert_eq!(
            config_toml(&[bridge]),
            "[[bridge]]\nname = \"b0\"\nageing_time = 2\n\n[[bridge.port]]\nifname = \"p1\"\n\n"
        );
    }
}
