//! FDB events as `vbr monitor` shows them: from the datapath's ring buffer (learned, moved,
//! missed) and from the agent (aged, added, deleted).
use serde::{Deserialize, Serialize};
use vbr_common::{
    event::{EventKind, FdbEvent},
    fdb::FdbKey,
};

use crate::{mac::MacAddr, netdev};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub bridge: String,
    pub event: String,
    pub mac: String,
    pub vlan: u16,
    /// The port the MAC is on (for `missed`: the port the frame came in on).
    pub port: String,
    /// For `moved`: the port it was on before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_port: Option<String>,
}

impl Event {
    pub fn new(bridge: &str, kind: EventKind, key: FdbKey, ifindex: u32, old_ifindex: u32) -> Self {
        Self {
            bridge: bridge.to_owned(),
            event: kind.name().to_owned(),
            mac: MacAddr(key.mac).to_string(),
            vlan: key.vlan,
            port: port_name(ifindex),
            old_port: (kind == EventKind::Moved).then(|| port_name(old_ifindex)),
        }
    }

    /// An event of the datapath's ring buffer; `None` for an unknown kind.
    pub fn from_datapath(bridge: &str, raw: &FdbEvent) -> Option<Self> {
        let kind = EventKind::from_u8(raw.kind)?;
        Some(Self::new(
            bridge,
            kind,
            FdbKey::new(raw.mac, raw.vlan),
            raw.ifindex,
            raw.old_ifindex,
        ))
    }

    /// One line for people, in the spirit of `bridge monitor fdb`.
    pub fn line(&self) -> String {
        let moved = self
            .old_port
            .as_ref()
            .map_or(String::new(), |old| format!(" (was {old})"));
        format!(
            "{} {} vlan {} dev {}{moved} bridge {}",
            self.event, self.mac, self.vlan, self.port, self.bridge
        )
    }
}

fn port_name(ifindex: u32) -> String {
    netdev::name(ifindex).unwrap_or_else(|_| format!("#{ifindex}"))
}
