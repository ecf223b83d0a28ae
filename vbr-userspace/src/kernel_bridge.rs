//! A Linux bridge that something else made (libvirt, Docker), as rtnetlink shows it: how the agent
//! accelerates it. The agent re-reads the whole bridge (ports, their flags and VLANs, its FDB)
//! whenever rtnetlink says a link or an FDB entry changed, mirrors it into vbr's maps, and tells
//! the kernel about stations whose frames only XDP carried, so that its FDB does not age them out.
use std::io::ErrorKind;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use futures_util::{StreamExt as _, TryStreamExt as _};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    link::{
        AfSpecBridge, BridgePortState, BridgeVlanInfoFlags, InfoBridge, InfoBridgePort, InfoData,
        InfoPortData, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage, State,
        VlanProtocol,
    },
    neighbour::{
        NeighbourAttribute, NeighbourExtFlags, NeighbourFlags, NeighbourMessage, NeighbourState,
    },
};
use netlink_sys::{AsyncSocket as _, SocketAddr};
use rtnetlink::constants::{RTMGRP_LINK, RTMGRP_NEIGH};
use tokio::sync::mpsc;

use crate::mac::MacAddr;

/// The bridge's netfilter switches for bridged IPv4, IPv6 and ARP, per network namespace; they
/// exist only while br_netfilter is loaded (or built in).
const BRIDGE_NF_SYSCTLS: [&str; 3] = [
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
    "/proc/sys/net/bridge/bridge-nf-call-arptables",
];

/// The unit of the bridge's timers in rtnetlink: clock_t, in USER_HZ (100) ticks.
const CLOCK_TICK: Duration = Duration::from_millis(10);

/// A Linux bridge as rtnetlink shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBridge {
    pub ifindex: u32,
    pub name: String,
    /// How long the kernel keeps a silent learned MAC (IFLA_BR_AGEING_TIME).
    pub ageing_time: Duration,
    /// IFLA_BR_VLAN_FILTERING; false on kernels built without CONFIG_BRIDGE_VLAN_FILTERING.
    pub vlan_filtering: bool,
    /// The tag the bridge pushes and pops (IFLA_BR_VLAN_PROTOCOL): 0x8100 or 0x88a8; 0x8100
    /// when the kernel does not report it (no CONFIG_BRIDGE_VLAN_FILTERING).
    pub vlan_protocol: u16,
    /// Whether bridged IPv4/IPv6/ARP frames go through netfilter: the bridge's own
    /// IFLA_BR_NF_CALL_{IPTABLES,IP6TABLES,ARPTABLES} or this namespace's
    /// /proc/sys/net/bridge/bridge-nf-call-{iptables,ip6tables,arptables} = 1. XDP would skip
    /// those rules.
    pub netfilter: bool,
    /// Sorted by ifindex.
    pub ports: Vec<KernelPort>,
    pub fdb: Vec<KernelFdbEntry>,
}

/// A member of the bridge, with the attributes its forwarding decisions depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPort {
    pub ifindex: u32,
    pub name: String,
    /// IFLA_BRPORT_STATE: STP's `BR_STATE_*` (forwarding is 3).
    pub state: u8,
    pub learning: bool,
    pub hairpin: bool,
    pub isolated: bool,
    /// IFLA_BRPORT_LOCKED or IFLA_BRPORT_MAB: only stations the FDB already holds may send.
    pub locked: bool,
    /// Administratively up and operationally up (or unknown), as the bridge itself judges a
    /// port's carrier (br_port_carrier_check).
    pub up: bool,
    /// With VLAN filtering: the PVID (None without one).
    pub pvid: Option<u16>,
    /// With VLAN filtering: every member VLAN, sorted, with whether it egresses untagged.
    pub vlans: Vec<(u16, bool)>,
}

impl KernelPort {
    /// Whether XDP may carry this port's frames: the kernel bridge forwards through it, and no
    /// admission check (locked, MAB) that only the kernel makes applies to it.
    pub fn forwarding(&self) -> bool {
        self.state == u8::from(BridgePortState::Forwarding) && self.up && !self.locked
    }
}

/// One entry of the bridge's FDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFdbEntry {
    pub mac: [u8; 6],
    /// NDA_VLAN, 0 when absent.
    pub vid: u16,
    /// The port, or the bridge itself for the bridge's own addresses.
    pub ifindex: u32,
    /// NUD_PERMANENT: the bridge's or a port's own address; frames for it go up the stack.
    pub local: bool,
    /// NUD_NOARP ("static") or extern_learn: the kernel does not age it.
    pub is_static: bool,
}

/// Reads bridge `name` whole: its settings, its ports and its FDB. The netfilter sysctls are
/// read in the calling thread's network namespace, which must be the bridge's.
pub async fn snapshot(netlink: &rtnetlink::Handle, name: &str) -> anyhow::Result<KernelBridge> {
    let link = netlink
        .link()
        .get()
        .match_name(name)
        .execute()
        .try_next()
        .await
        .with_context(|| format!("reading interface {name}"))?
        .ok_or_else(|| anyhow!("reading interface {name}: no reply"))?;
    let settings = bridge_settings(&link).ok_or_else(|| anyhow!("{name} is not a Linux bridge"))?;
    let ifindex = link.header.index;
    let ageing_time = settings
        .iter()
        .find_map(|setting| match setting {
            InfoBridge::AgeingTime(ticks) => Some(CLOCK_TICK * *ticks),
            _ => None,
        })
        .with_context(|| format!("bridge {name} reports no ageing time"))?;
    let vlan_filtering = settings
        .iter()
        .any(|setting| matches!(setting, InfoBridge::VlanFiltering(true)));
    let vlan_protocol = settings
        .iter()
        .find_map(|setting| match setting {
            InfoBridge::VlanProtocol(protocol) => Some(*protocol),
            _ => None,
        })
        .unwrap_or(VlanProtocol::Ieee8021Q);
    let netfilter = settings.iter().any(|setting| {
        matches!(
            setting,
            InfoBridge::NfCallIpTables(true)
                | InfoBridge::NfCallIp6Tables(true)
                | InfoBridge::NfCallArpTables(true)
        )
    }) || netfilter_sysctls_on()?;
    let mut ports = members(netlink, ifindex)
        .await
        .with_context(|| format!("reading the ports of bridge {name}"))?;
    if vlan_filtering {
        read_vlans(netlink, &mut ports)
            .await
            .with_context(|| format!("reading the VLANs of bridge {name}'s ports"))?;
    }
    let fdb = fdb(netlink, ifindex)
        .await
        .with_context(|| format!("reading the FDB of bridge {name}"))?;
    Ok(KernelBridge {
        ifindex,
        name: name.to_owned(),
        ageing_time,
        vlan_filtering,
        vlan_protocol: u16::from(vlan_protocol),
        netfilter,
        ports,
        fdb,
    })
}

/// The bridge's IFLA_INFO_DATA; `None` when `link` is not a bridge.
fn bridge_settings(link: &LinkMessage) -> Option<&[InfoBridge]> {
    link.attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
                LinkInfo::Data(InfoData::Bridge(settings)) => Some(settings.as_slice()),
                _ => None,
            }),
            _ => None,
        })
}

/// Whether any of this namespace's bridge-nf-call sysctls is on; all off when br_netfilter is
/// not loaded.
fn netfilter_sysctls_on() -> anyhow::Result<bool> {
    for path in BRIDGE_NF_SYSCTLS {
        match std::fs::read_to_string(path) {
            Ok(value) if value.trim() != "0" => return Ok(true),
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error).with_context(|| format!("reading {path}")),
        }
    }
    Ok(false)
}

/// The bridge's ports, sorted by ifindex, without VLANs. Their bridge attributes come from
/// IFLA_LINKINFO's port data, which the kernel fills as it fills IFLA_PROTINFO
/// (br_port_fill_attrs), but which netlink-packet-route 0.34 parses into `InfoBridgePort`
/// where it leaves AF_BRIDGE's IFLA_PROTINFO raw.
async fn members(netlink: &rtnetlink::Handle, bridge: u32) -> anyhow::Result<Vec<KernelPort>> {
    let mut request = netlink.link().get();
    // The kernel filters a dump by master (rtnl_dump_ifinfo, Linux 4.4): only the ports come back.
    request
        .message_mut()
        .attributes
        .push(LinkAttribute::Controller(bridge));
    let links: Vec<LinkMessage> = request
        .execute()
        .try_collect()
        .await
        .context("dumping links")?;
    let mut ports: Vec<KernelPort> = links
        .iter()
        .filter(|link| link.attributes.contains(&LinkAttribute::Controller(bridge)))
        .map(port)
        .collect::<anyhow::Result<_>>()?;
    ports.sort_unstable_by_key(|port| port.ifindex);
    Ok(ports)
}

/// One port from its link message.
fn port(link: &LinkMessage) -> anyhow::Result<KernelPort> {
    let ifindex = link.header.index;
    let mut name = None;
    let mut oper_up = false;
    let mut attributes: &[InfoBridgePort] = &[];
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(ifname) => name = Some(ifname.clone()),
            LinkAttribute::OperState(state) => {
                oper_up = matches!(state, State::Up | State::Unknown);
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::PortData(InfoPortData::BridgePort(port)) = info {
                        attributes = port;
                    }
                }
            }
            _ => {}
        }
    }
    let name = name.ok_or_else(|| anyhow!("port {ifindex} has no name"))?;
    let state = attributes
        .iter()
        .find_map(|attribute| match attribute {
            InfoBridgePort::State(state) => Some(u8::from(*state)),
            _ => None,
        })
        .with_context(|| format!("port {name} reports no bridge port state"))?;
    let flag = |wanted: fn(&InfoBridgePort) -> bool| attributes.iter().any(wanted);
    Ok(KernelPort {
        ifindex,
        state,
        learning: flag(|a| matches!(a, InfoBridgePort::Learning(true))),
        hairpin: flag(|a| matches!(a, InfoBridgePort::HairpinMode(true))),
        isolated: flag(|a| matches!(a, InfoBridgePort::Isolated(true))),
        locked: flag(|a| matches!(a, InfoBridgePort::Locked(true) | InfoBridgePort::Mab(true))),
        up: link.header.flags.contains(LinkFlags::Up) && oper_up,
        pvid: None,
        vlans: Vec::new(),
        name,
    })
}

/// Fills in the ports' VLANs from an AF_BRIDGE link dump, which carries them in IFLA_AF_SPEC.
/// RTEXT_FILTER_BRVLAN (not _COMPRESSED) lists every VLAN on its own, never as a range.
async fn read_vlans(netlink: &rtnetlink::Handle, ports: &mut [KernelPort]) -> anyhow::Result<()> {
    let links: Vec<LinkMessage> = netlink
        .link()
        .get()
        .set_filter_mask(AddressFamily::Bridge, vec![LinkExtentMask::Brvlan])
        .execute()
        .try_collect()
        .await
        .context("dumping the bridge ports' VLANs")?;
    for link in links {
        let Some(port) = ports
            .iter_mut()
            .find(|port| port.ifindex == link.header.index)
        else {
            continue;
        };
        for attribute in &link.attributes {
            if let LinkAttribute::AfSpecBridge(spec) = attribute {
                (port.pvid, port.vlans) = port_vlans(spec.as_slice());
            }
        }
    }
    Ok(())
}

/// A port's PVID and member VLANs (with their untagged flag) from its IFLA_AF_SPEC.
fn port_vlans(spec: &[AfSpecBridge]) -> (Option<u16>, Vec<(u16, bool)>) {
    let mut pvid = None;
    let mut vlans = Vec::new();
    for attribute in spec {
        if let AfSpecBridge::VlanInfo(info) = attribute {
            if info.flags.contains(BridgeVlanInfoFlags::Pvid) {
                pvid = Some(info.vid);
            }
            vlans.push((info.vid, info.flags.contains(BridgeVlanInfoFlags::Untagged)));
        }
    }
    vlans.sort_unstable();
    (pvid, vlans)
}

/// Every AF_BRIDGE neighbour of this namespace: the FDB entries of its bridges and the unicast
/// address filters of its devices (`bridge fdb show`).
pub async fn bridge_neighbours(
    netlink: &rtnetlink::Handle,
) -> anyhow::Result<Vec<NeighbourMessage>> {
    netlink
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge)
        .execute()
        .try_collect()
        .await
        .context("dumping AF_BRIDGE neighbours")
}

/// The bridge's FDB: the entries the bridge reports as its own (NDA_MASTER), not the address
/// filters ("self") of the bridge device or its ports.
async fn fdb(netlink: &rtnetlink::Handle, bridge: u32) -> anyhow::Result<Vec<KernelFdbEntry>> {
    Ok(bridge_neighbours(netlink)
        .await?
        .iter()
        .filter_map(|entry| fdb_entry(bridge, entry))
        .collect())
}

/// One FDB entry of `bridge`; `None` for another bridge's, a device's own address filter or a
/// locked one.
fn fdb_entry(bridge: u32, entry: &NeighbourMessage) -> Option<KernelFdbEntry> {
    let mut master = None;
    let mut mac = None;
    let mut vid = 0;
    let mut locked = false;
    for attribute in &entry.attributes {
        match attribute {
            NeighbourAttribute::Controller(index) => master = Some(*index),
            NeighbourAttribute::LinkLayerAddress(address) => {
                mac = <[u8; 6]>::try_from(address.as_slice()).ok();
            }
            NeighbourAttribute::Vlan(id) => vid = *id,
            NeighbourAttribute::ExtFlags(flags) => {
                locked = flags.contains(NeighbourExtFlags::Locked)
            }
            _ => {}
        }
    }
    // A locked entry (MAB, Linux 6.2) is a station the kernel has not admitted yet: what
    // becomes of frames for it is the kernel's call, so vbr must not know it.
    if master != Some(bridge) || locked {
        return None;
    }
    Some(KernelFdbEntry {
        mac: mac?,
        vid,
        ifindex: entry.header.ifindex,
        local: entry.header.state == NeighbourState::Permanent,
        is_static: entry.header.state == NeighbourState::Noarp
            || entry.header.flags.contains(NeighbourFlags::ExtLearned),
    })
}

/// A stream of nudges, one per rtnetlink link or AF_BRIDGE neighbour change in the calling
/// thread's network namespace, so that the caller re-reads the [`snapshot`]. Port flag and VLAN
/// changes arrive as link messages (br_ifinfo_notify); the netfilter sysctls send nothing.
pub fn watch() -> anyhow::Result<mpsc::UnboundedReceiver<()>> {
    let (mut connection, _, mut messages) = rtnetlink::new_connection()
        .context("opening an rtnetlink socket for kernel bridge changes")?;
    connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_LINK | RTMGRP_NEIGH))
        .context("joining rtnetlink's link and neighbour groups")?;
    tokio::spawn(connection);
    let (nudges, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((message, _)) = messages.next().await {
            let NetlinkPayload::InnerMessage(message) = message.payload else {
                continue;
            };
            let changed = match message {
                RouteNetlinkMessage::NewLink(_) | RouteNetlinkMessage::DelLink(_) => true,
                RouteNetlinkMessage::NewNeighbour(entry)
                | RouteNetlinkMessage::DelNeighbour(entry) => {
                    entry.header.family == AddressFamily::Bridge
                }
                _ => false,
            };
            if changed && nudges.send(()).is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}

/// Tells the kernel bridge that `mac`/`vid` was just seen on port `ifindex`, as if a frame from
/// it had crossed the bridge, which restarts the entry's ageing timer (or learns it afresh):
/// RTM_NEWNEIGH with NTF_MASTER|NTF_USE reaches br_fdb_update (br_fdb.c __br_fdb_add). The
/// kernel skips it unless the port's STP state is learning or forwarding (its `learning` flag
/// is not consulted), and notifies (nudging [`watch`]) only when the entry moved or was new.
pub async fn refresh(
    netlink: &rtnetlink::Handle,
    ifindex: u32,
    mac: [u8; 6],
    vid: u16,
) -> anyhow::Result<()> {
    let mut request = netlink
        .neighbours()
        .add_bridge(ifindex, &mac)
        // br_fdb_add refuses states other than permanent, noarp and reachable, though NTF_USE
        // ignores it: reachable is what a learned entry is.
        .state(NeighbourState::Reachable)
        .flags(NeighbourFlags::Controller | NeighbourFlags::Use)
        .replace();
    if vid != 0 {
        request
            .message_mut()
            .attributes
            .push(NeighbourAttribute::Vlan(vid));
    }
    request.execute().await.with_context(|| {
        format!(
            "refreshing {} vlan {vid} on ifindex {ifindex} in the kernel bridge's FDB",
            MacAddr(mac)
        )
    })
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::link::BridgeVlanInfo;
    use vbr_tests::{Frame, Mac, Netns, cmd, frames};

    use super::*;

    /// Bound on one `bridge` invocation.
    const CMD_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long a change is waited for: learning, a nudge.
    const WAIT: Duration = Duration::from_secs(3);
    /// Quiet time after which a watch is taken to have delivered everything pending.
    const SETTLE: Duration = Duration::from_millis(300);

    const BRIDGE_MAC: [u8; 6] = [0x02, 0xb0, 0, 0, 0, 0x01];
    const STATIC_MAC: [u8; 6] = [0x02, 0x5a, 0, 0, 0, 0x09];
    const EXTERN_MAC: [u8; 6] = [0x02, 0xe1, 0, 0, 0, 0x0a];
    const SELF_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 0x0c];
    const OTHER_BRIDGE_MAC: [u8; 6] = [0x02, 0x0b, 0, 0, 0, 0x0d];
    const STATION: [u8; 6] = [0x02, 0x57, 0, 0, 0, 0x01];
    const UNLEARNT: [u8; 6] = [0x02, 0x57, 0, 0, 0, 0x02];
    const BROADCAST: [u8; 6] = [0xff; 6];

    /// A network namespace of the test's own, entered by its thread, with a runtime and an
    /// rtnetlink handle there. IPv6 is off so that no DAD or MLD frame teaches the bridges or
    /// nudges a watch behind the test's back.
    struct Lab {
        netlink: rtnetlink::Handle,
        runtime: tokio::runtime::Runtime,
        netns: Netns,
    }

    impl Lab {
        fn new() -> Self {
            vbr_tests::require_root();
            let netns = Netns::entered("vkb").expect("creating and entering the test's namespace");
            for path in [
                "/proc/sys/net/ipv6/conf/all/disable_ipv6",
                "/proc/sys/net/ipv6/conf/default/disable_ipv6",
            ] {
                std::fs::write(path, "1").unwrap_or_else(|error| panic!("writing {path}: {error}"));
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a runtime");
            let netlink = runtime.block_on(async {
                let (connection, netlink, _) =
                    rtnetlink::new_connection().expect("opening rtnetlink");
                tokio::spawn(connection);
                netlink
            });
            Self {
                netlink,
                runtime,
                netns,
            }
        }

        /// Runs `ip COMMAND` in the namespace (COMMAND split at spaces).
        fn ip(&self, command: &str) {
            self.try_ip(command)
                .unwrap_or_else(|error| panic!("{error:#}"));
        }

        fn try_ip(&self, command: &str) -> anyhow::Result<String> {
            let args: Vec<&str> = command.split_whitespace().collect();
            self.netns.ip(&args)
        }

        /// Runs `bridge COMMAND` in the namespace (COMMAND split at spaces); its stdout.
        fn bridge(&self, command: &str) -> String {
            let args = command.split_whitespace();
            let output = cmd::run_ok(self.netns.exec("bridge").args(args), CMD_TIMEOUT)
                .unwrap_or_else(|error| panic!("{error:#}"));
            String::from_utf8_lossy(&output.stdout).into_owned()
        }

        /// A veth pair, `port` enslaved to `bridge` (if any), both ends up.
        fn veth(&self, port: &str, far: &str, bridge: Option<&str>) {
            self.ip(&format!("link add {port} type veth peer name {far}"));
            if let Some(bridge) = bridge {
                self.ip(&format!("link set {port} master {bridge}"));
            }
            self.ip(&format!("link set {port} up"));
            self.ip(&format!("link set {far} up"));
        }

        fn ifindex(&self, ifname: &str) -> u32 {
            self.netns
                .ifindex(ifname)
                .unwrap_or_else(|error| panic!("{error:#}"))
        }

        fn mac(&self, ifname: &str) -> [u8; 6] {
            let link = self
                .netns
                .link(ifname)
                .unwrap_or_else(|error| panic!("{error:#}"));
            let address = link["address"].as_str().expect("a link address");
            address
                .parse::<MacAddr>()
                .unwrap_or_else(|error| panic!("{error}"))
                .0
        }

        /// Sends one broadcast from `src` out of `ifname`, which the bridge learns on the far
        /// end's port.
        fn send_from(&self, ifname: &str, src: [u8; 6]) {
            frames::send(&self.netns, ifname, &Frame::probe(Mac(BROADCAST), Mac(src)))
                .unwrap_or_else(|error| panic!("{error:#}"));
        }

        fn snapshot(&self, name: &str) -> KernelBridge {
            self.runtime
                .block_on(snapshot(&self.netlink, name))
                .unwrap_or_else(|error| panic!("{error:#}"))
        }

        /// The snapshot of `name` once `done` holds of it, waiting up to [`WAIT`].
        fn snapshot_when(&self, name: &str, done: impl Fn(&KernelBridge) -> bool) -> KernelBridge {
            let mut last = self.snapshot(name);
            let held = vbr_tests::poll_until(WAIT, Duration::from_millis(50), || {
                last = self.snapshot(name);
                done(&last)
            });
            assert!(
                held,
                "bridge {name} never reached the state awaited: {last:#?}"
            );
            last
        }

        /// The bridge-nf-call sysctls of the namespace, all set to `value`.
        fn netfilter_sysctls(&self, value: &str) {
            for path in BRIDGE_NF_SYSCTLS {
                std::fs::write(path, value)
                    .unwrap_or_else(|error| panic!("writing {path}: {error}"));
            }
        }

        /// Seconds since `bridge -s -j fdb show` says the entry `mac` of bridge `name` was
        /// last updated.
        fn fdb_updated(&self, name: &str, mac: [u8; 6]) -> Option<u64> {
            let shown = self.bridge(&format!("-s -j fdb show br {name}"));
            let entries: Vec<serde_json::Value> =
                serde_json::from_str(&shown).unwrap_or_else(|error| panic!("{error}: {shown}"));
            let mac = MacAddr(mac).to_string();
            entries
                .iter()
                .find(|entry| entry["mac"] == mac.as_str())
                .and_then(|entry| entry["updated"].as_u64())
        }
    }

    fn port<'a>(bridge: &'a KernelBridge, name: &str) -> &'a KernelPort {
        bridge
            .ports
            .iter()
            .find(|port| port.name == name)
            .unwrap_or_else(|| panic!("no port {name} in {bridge:#?}"))
    }

    fn entry(bridge: &KernelBridge, mac: [u8; 6]) -> Option<&KernelFdbEntry> {
        bridge.fdb.iter().find(|entry| entry.mac == mac)
    }

    #[test]
    fn snapshot_mirrors_settings_ports_and_fdb() {
        let lab = Lab::new();
        lab.ip(&format!(
            "link add kb0 address {} type bridge",
            MacAddr(BRIDGE_MAC)
        ));
        // 123.4 s is a whole number of jiffies at any HZ, so the kernel gives back what it took.
        lab.ip("link set kb0 type bridge ageing_time 12340");
        lab.ip("link set kb0 up");
        // Another bridge and a lone veth, whose ports and entries must not show.
        lab.ip("link add kb1 type bridge");
        lab.ip("link set kb1 up");
        lab.veth("q1", "g1", Some("kb1"));
        lab.veth("x1", "y1", None);
        lab.veth("p1", "h1", Some("kb0"));
        lab.veth("p2", "h2", Some("kb0"));
        lab.veth("p3", "h3", Some("kb0"));
        lab.veth("p4", "h4", Some("kb0"));
        lab.ip("link set h4 down");
        lab.bridge("link set dev p2 isolated on hairpin on learning off");
        lab.bridge("link set dev p3 locked on");
        let fdb_add = |mac: [u8; 6], rest: &str| {
            lab.bridge(&format!("fdb add {} {rest}", MacAddr(mac)));
        };
        fdb_add(STATIC_MAC, "dev p1 master static");
        fdb_add(EXTERN_MAC, "dev p2 master extern_learn");
        fdb_add(SELF_MAC, "dev p1 self");
        fdb_add(OTHER_BRIDGE_MAC, "dev q1 master static");
        lab.send_from("h1", STATION);
        lab.send_from("h2", UNLEARNT);
        lab.netfilter_sysctls("0");

        let bridge = lab.snapshot_when("kb0", |bridge| entry(bridge, STATION).is_some());
        assert_eq!(bridge.name, "kb0");
        assert_eq!(bridge.ifindex, lab.ifindex("kb0"));
        assert_eq!(bridge.ageing_time, Duration::from_millis(123_400));
        assert!(!bridge.vlan_filtering);
        assert_eq!(bridge.vlan_protocol, 0x8100);
        assert!(!bridge.netfilter);

        let names: Vec<&str> = bridge.ports.iter().map(|port| port.name.as_str()).collect();
        assert_eq!(
            names,
            ["p1", "p2", "p3", "p4"],
            "the members, sorted by ifindex"
        );
        assert!(bridge.ports.is_sorted_by_key(|port| port.ifindex));
        let p1 = port(&bridge, "p1");
        assert_eq!(p1.ifindex, lab.ifindex("p1"));
        assert_eq!(p1.state, u8::from(BridgePortState::Forwarding));
        assert!(p1.learning && !p1.hairpin && !p1.isolated && !p1.locked && p1.up);
        assert!(p1.forwarding());
        let p2 = port(&bridge, "p2");
        assert!(!p2.learning && p2.hairpin && p2.isolated && !p2.locked);
        assert!(
            p2.forwarding(),
            "isolation does not stop forwarding: {p2:?}"
        );
        let p3 = port(&bridge, "p3");
        assert!(p3.locked && p3.up && p3.state == u8::from(BridgePortState::Forwarding));
        assert!(
            !p3.forwarding(),
            "a locked port's frames stay with the kernel: {p3:?}"
        );
        let p4 = port(&bridge, "p4");
        assert!(!p4.up, "p4's peer is down: {p4:?}");
        assert_eq!(p4.state, u8::from(BridgePortState::Disabled));
        assert!(!p4.forwarding());
        for port in &bridge.ports {
            assert_eq!(
                (port.pvid, port.vlans.as_slice()),
                (None, &[][..]),
                "{port:?}"
            );
        }

        let expect = |mac: [u8; 6], ifindex: u32, local: bool, is_static: bool| {
            let expected = KernelFdbEntry {
                mac,
                vid: 0,
                ifindex,
                local,
                is_static,
            };
            assert_eq!(entry(&bridge, mac), Some(&expected), "in {:#?}", bridge.fdb);
        };
        expect(BRIDGE_MAC, bridge.ifindex, true, false);
        expect(lab.mac("p1"), p1.ifindex, true, false);
        expect(STATIC_MAC, p1.ifindex, false, true);
        expect(EXTERN_MAC, p2.ifindex, false, true);
        expect(STATION, p1.ifindex, false, false);
        for (mac, why) in [
            (UNLEARNT, "p2 does not learn"),
            (SELF_MAC, "p1's own address filter is not the bridge's FDB"),
            (OTHER_BRIDGE_MAC, "kb1's entry is not kb0's"),
            (lab.mac("q1"), "kb1's port is not kb0's"),
            (lab.mac("x1"), "x1 is on no bridge"),
        ] {
            assert_eq!(entry(&bridge, mac), None, "{why}: {:#?}", bridge.fdb);
        }
        assert!(
            bridge.fdb.iter().all(|entry| entry.mac[0] & 1 == 0),
            "no multicast address filter of the bridge device: {:#?}",
            bridge.fdb
        );
    }

    #[test]
    fn netfilter_follows_the_bridge_and_the_namespace_sysctls() {
        let lab = Lab::new();
        lab.ip("link add kbn type bridge");
        lab.netfilter_sysctls("0");
        assert!(!lab.snapshot("kbn").netfilter);
        lab.ip("link set kbn type bridge nf_call_ip6tables 1");
        assert!(
            lab.snapshot("kbn").netfilter,
            "the bridge's own nf_call_ip6tables"
        );
        lab.ip("link set kbn type bridge nf_call_ip6tables 0");
        assert!(!lab.snapshot("kbn").netfilter);
        std::fs::write(BRIDGE_NF_SYSCTLS[2], "1").expect("turning bridge-nf-call-arptables on");
        assert!(
            lab.snapshot("kbn").netfilter,
            "the namespace's bridge-nf-call-arptables"
        );
    }

    #[test]
    fn snapshot_names_what_is_not_a_bridge() {
        let lab = Lab::new();
        lab.veth("kbv0", "kbv1", None);
        for (name, says) in [("kbnone", "kbnone"), ("kbv0", "kbv0 is not a Linux bridge")] {
            let error = lab
                .runtime
                .block_on(snapshot(&lab.netlink, name))
                .expect_err(name);
            assert!(format!("{error:#}").contains(says), "{name}: {error:#}");
        }
    }

    /// Where the kernel has CONFIG_BRIDGE_VLAN_FILTERING, each port's PVID and VLANs; where it
    /// lacks it, turning filtering on fails and the bridge shows no VLANs at all.
    #[test]
    fn vlans_are_mirrored_where_the_kernel_filters_them() {
        let lab = Lab::new();
        lab.ip("link add kbq type bridge");
        lab.ip("link set kbq up");
        lab.veth("p1", "h1", Some("kbq"));
        lab.veth("p2", "h2", Some("kbq"));
        match lab.try_ip("link set kbq type bridge vlan_filtering 1") {
            Err(error) => {
                assert!(
                    format!("{error:#}").contains("Operation not supported"),
                    "turning VLAN filtering on: {error:#}"
                );
                let mut bridge = lab.snapshot("kbq");
                assert!(!bridge.vlan_filtering);
                assert_eq!(bridge.vlan_protocol, 0x8100);
                // The AF_BRIDGE dump decodes here too, and carries no VLAN.
                lab.runtime
                    .block_on(read_vlans(&lab.netlink, &mut bridge.ports))
                    .unwrap_or_else(|error| panic!("{error:#}"));
                for port in &bridge.ports {
                    assert_eq!(
                        (port.pvid, port.vlans.as_slice()),
                        (None, &[][..]),
                        "{port:?}"
                    );
                }
            }
            Ok(_) => {
                lab.ip("link set kbq type bridge vlan_protocol 802.1ad");
                lab.bridge("vlan add dev p1 vid 10 pvid untagged");
                lab.bridge("vlan del dev p1 vid 1");
                lab.bridge("vlan add dev p2 vid 20");
                lab.bridge("vlan add dev p2 vid 30 untagged");
                lab.bridge("vlan del dev p2 vid 1");
                let bridge = lab.snapshot("kbq");
                assert!(bridge.vlan_filtering);
                assert_eq!(bridge.vlan_protocol, 0x88a8);
                let p1 = port(&bridge, "p1");
                assert_eq!(
                    (p1.pvid, p1.vlans.as_slice()),
                    (Some(10), &[(10, true)][..])
                );
                let p2 = port(&bridge, "p2");
                assert_eq!(
                    (p2.pvid, p2.vlans.as_slice()),
                    (None, &[(20, false), (30, true)][..])
                );
            }
        }
    }

    #[test]
    fn port_vlans_reads_pvid_and_untagged_flags() {
        let info = |vid, flags| AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid });
        let spec = [
            AfSpecBridge::Flags(netlink_packet_route::link::BridgeFlag::Controller),
            info(30, BridgeVlanInfoFlags::empty()),
            info(
                10,
                BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged,
            ),
            info(20, BridgeVlanInfoFlags::Untagged),
        ];
        assert_eq!(
            port_vlans(&spec),
            (Some(10), vec![(10, true), (20, true), (30, false)])
        );
        assert_eq!(port_vlans(&spec[..2]), (None, vec![(30, false)]));
    }

    #[test]
    fn refresh_restarts_the_kernel_ageing_timer() {
        let lab = Lab::new();
        lab.ip("link add kbr type bridge");
        lab.ip("link set kbr up");
        lab.veth("p1", "h1", Some("kbr"));
        let p1 = lab.ifindex("p1");
        lab.send_from("h1", STATION);
        let mut aged = None;
        let aged_enough =
            vbr_tests::poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
                aged = lab.fdb_updated("kbr", STATION);
                aged.is_some_and(|seconds| seconds >= 2)
            });
        assert!(
            aged_enough,
            "the learned entry never aged 2 s: updated {aged:?}"
        );
        lab.runtime
            .block_on(refresh(&lab.netlink, p1, STATION, 0))
            .unwrap_or_else(|error| panic!("{error:#}"));
        let refreshed = lab
            .fdb_updated("kbr", STATION)
            .expect("the entry after refresh");
        assert!(
            refreshed < 2,
            "updated {refreshed} s ago after refresh, {aged:?} before"
        );

        // A station the kernel never saw (or already forgot) is learned as a dynamic entry.
        lab.runtime
            .block_on(refresh(&lab.netlink, p1, UNLEARNT, 0))
            .unwrap_or_else(|error| panic!("{error:#}"));
        let bridge = lab.snapshot("kbr");
        let expected = KernelFdbEntry {
            mac: UNLEARNT,
            vid: 0,
            ifindex: p1,
            local: false,
            is_static: false,
        };
        assert_eq!(
            entry(&bridge, UNLEARNT),
            Some(&expected),
            "{:#?}",
            bridge.fdb
        );
    }

    #[test]
    fn watch_nudges_on_ports_and_fdb_entries() {
        let lab = Lab::new();
        lab.ip("link add kbw type bridge");
        lab.ip("link set kbw up");
        lab.veth("p1", "h1", None);
        let mut nudges = {
            let _runtime = lab.runtime.enter();
            watch().unwrap_or_else(|error| panic!("{error:#}"))
        };
        // Everything pending is delivered; then whether `change` brings a nudge.
        let mut nudged_by = |what: &str, change: &dyn Fn()| {
            lab.runtime.block_on(async {
                while tokio::time::timeout(SETTLE, nudges.recv()).await.is_ok() {}
                change();
                let nudge = tokio::time::timeout(WAIT, nudges.recv()).await;
                assert!(
                    matches!(nudge, Ok(Some(()))),
                    "no nudge after {what}: {nudge:?}"
                );
            });
        };
        nudged_by("a port joined", &|| lab.ip("link set p1 master kbw"));
        assert_eq!(lab.snapshot("kbw").ports.len(), 1);
        nudged_by("a port flag changed", &|| {
            lab.bridge("link set dev p1 isolated on");
        });
        nudged_by("a static entry was added", &|| {
            lab.bridge(&format!(
                "fdb add {} dev p1 master static",
                MacAddr(STATIC_MAC)
            ));
        });
        nudged_by("a station was learned", &|| lab.send_from("h1", STATION));
        assert!(entry(&lab.snapshot("kbw"), STATION).is_some());
        // A refresh of an entry that stays put is no change: mirroring it does not loop.
        let p1 = lab.ifindex("p1");
        lab.runtime.block_on(async {
            while tokio::time::timeout(SETTLE, nudges.recv()).await.is_ok() {}
            refresh(&lab.netlink, p1, STATION, 0)
                .await
                .unwrap_or_else(|error| panic!("{error:#}"));
            let nudge = tokio::time::timeout(SETTLE, nudges.recv()).await;
            assert!(nudge.is_err(), "a nudge after a refresh: {nudge:?}");
        });
    }
}
