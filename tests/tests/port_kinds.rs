//! End to end: one bridge with a port of every kind — a veth host (native XDP), a veth host forced
//! to generic XDP, a VM's tap (native XDP; the test holds the fd and plays the VM), a passthru
//! macvlan on an uplink with an external host behind it (the skb path), and the host port (the
//! switch namespace's own stack) — switching unicast and broadcast between every pair, both ways;
//! and a hotplug tap that comes and goes under a running agent.
//!
//! ```text
//!   h1 ── veth ─────────────────── <prefix>p1   xdp-native ┐
//!   h2 ── veth ─────────────────── <prefix>p2   xdp-generic│
//!   vm ── fd ┄┄ tap ────────────── <prefix>v    xdp-native ├ bridge
//!   external ── veth ── <prefix>u ⊃ <prefix>m   tc         │  (macvlan passthru on the uplink)
//!   switch stack ── vbrhost ─────── vbrhost-br  xdp-native ┘  (host port)
//! ```

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use vbr_tests::agent::{Agent, Options, READY_TIMEOUT, assert_refused};
use vbr_tests::cli::{Cli, PortStatus};
use vbr_tests::config::{BridgePort, DatapathMode, HostPort, config_toml};
use vbr_tests::devices::{External, FarSide, Tap, add_macvlan, wait_until};
use vbr_tests::station::{Expect, Station, assert_round};
use vbr_tests::{Bridge, Lab, Mac, Netns, vbr_bin};

/// How long every station listens while a round of probes is sent: forwarding takes
/// microseconds, this leaves slack for a loaded machine and a round of twenty sends.
const CAPTURE: Duration = Duration::from_millis(1200);
/// The host port's name in the switch namespace (at most 12 bytes: the agent appends "-br").
const HOST_PORT: &str = "vbrhost";
/// The host port's address: 10.77.<lab id>.HOST_PORT_OCTET/24.
const HOST_PORT_OCTET: u8 = 200;
/// The 6th byte of the VM's MAC (02:00:00:00:<lab id>:..), clear of the lab's hosts.
const VM_MAC_OCTET: u8 = 0x50;
/// How soon a hotplug port is attached once its interface appears, and waits again once it
/// vanishes.
const HOTPLUG_DELAY: Duration = Duration::from_secs(1);

/// The tap's name in the switch namespace.
fn tap_name(lab: &Lab) -> String {
    format!("{}v", lab.prefix())
}

fn vm_mac(lab: &Lab) -> Mac {
    Mac([0x02, 0, 0, 0, lab.id(), VM_MAC_OCTET])
}

/// The entry of `ifname` in `ports`; panics naming what is there if it is missing.
fn status_of<'p>(ports: &'p [PortStatus], ifname: &str) -> &'p PortStatus {
    ports
        .iter()
        .find(|port| port.ifname == ifname)
        .unwrap_or_else(|| panic!("{ifname} not listed by vbr port show: {ports:#?}"))
}

/// Every station sends a broadcast, then a unicast to every other station: each broadcast
/// reaches every other station exactly once and never comes back, each unicast reaches its
/// destination only. The broadcasts teach the bridge every station's MAC.
fn assert_switches_every_pair(stations: &[Station]) {
    let n = stations.len();
    let broadcasts: Vec<Expect> = (0..n)
        .map(|from| {
            let copies: Vec<usize> = (0..n).map(|to| usize::from(to != from)).collect();
            Expect::probe(stations, from, Mac::BROADCAST, &copies)
        })
        .collect();
    assert_round("broadcasts", stations, &broadcasts, CAPTURE);
    let unicasts: Vec<Expect> = (0..n)
        .flat_map(|from| {
            (0..n)
                .filter(move |&to| to != from)
                .map(move |to| (from, to))
        })
        .map(|(from, to)| {
            let copies: Vec<usize> = (0..n).map(|station| usize::from(station == to)).collect();
            Expect::probe(stations, from, stations[to].mac, &copies)
        })
        .collect();
    assert_round("known unicasts", stations, &unicasts, CAPTURE);
}

/// Every station with an IP stack pings every other one, all at once.
fn assert_pings_every_pair(stations: &[Station]) {
    let speaking: Vec<&Station> = stations.iter().filter(|s| s.ip.is_some()).collect();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = speaking
            .iter()
            .flat_map(|from| speaking.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.name != to.name)
            .map(|(from, to)| {
                let target: Ipv4Addr = to.ip.expect("a station with an address");
                let run = scope.spawn(move || from.ping(target));
                (from, to, run)
            })
            .collect();
        runs.into_iter()
            .filter_map(|(from, to, run)| {
                let ping = run.join().expect("ping thread").expect("running ping");
                (!ping.success).then(|| {
                    format!(
                        "{} -> {} ({target}):\n{}",
                        from.name,
                        to.name,
                        ping.output,
                        target = to.ip.expect("address")
                    )
                })
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "pings failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_kind_of_port_switches_with_every_other() {
    let vbr = vbr_bin();
    let lab = Lab::new(2).expect("building the lab");
    let switch = lab.switch();
    let tap = Tap::create(switch, &tap_name(&lab)).expect("creating the VM's tap");
    let external = External::new(&lab, FarSide::Host).expect("building the uplink");
    let macvlan = format!("{}m", lab.prefix());
    add_macvlan(switch, &macvlan, &external.port, "passthru").expect("adding the macvlan");
    // The switch namespace is also the host behind the host port. Linux answers ARP for any of
    // its addresses on any interface, and a passthru macvlan leaves broadcasts to its lower
    // device's stack too: the uplink would answer the external host's ARP for the host port's
    // address with its own MAC, which leads nowhere. A hypervisor keeps its uplink quiet so.
    switch
        .ip(&["link", "set", "dev", &external.port, "arp", "off"])
        .expect("turning ARP off on the uplink");
    let host_ip = Ipv4Addr::new(10, 77, lab.id(), HOST_PORT_OCTET);
    let host_port = HostPort {
        ifname: HOST_PORT.to_owned(),
        address: Some(format!("{host_ip}/24")),
        pvid: None,
    };

    let mut bridge = lab.bridge(&[1, 2]);
    bridge.ports[1].mode = Some(DatapathMode::XdpGeneric);
    bridge.ports.push(BridgePort::new(tap.ifname()));
    bridge.ports.push(BridgePort::new(&macvlan));
    bridge.host_port = Some(host_port.clone());
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");

    let ports = agent
        .cli()
        .port_status(&bridge.name)
        .expect("vbr port show");
    for (ifname, mode) in [
        (lab.host(1).port.as_str(), "xdp-native"),
        (lab.host(2).port.as_str(), "xdp-generic"),
        (tap.ifname(), "xdp-native"),
        (macvlan.as_str(), "tc"),
        (host_port.port_ifname().as_str(), "xdp-native"),
    ] {
        let port = status_of(&ports, ifname);
        assert_eq!(port.mode.as_deref(), Some(mode), "{port:#?}");
        assert!(port.attached && port.state == "attached", "{port:#?}");
        assert_eq!(
            port.ifindex,
            Some(switch.ifindex(ifname).expect("port ifindex")),
            "{port:#?}"
        );
    }
    assert_eq!(ports.len(), 5, "{ports:#?}");

    let host_mac: Mac = switch.link(HOST_PORT).expect("ip link")["address"]
        .as_str()
        .expect("the host port's MAC")
        .parse()
        .expect("a MAC");
    let stations = [
        Station::host(lab.host(1)),
        Station::host(lab.host(2)),
        Station::tap("vm", &tap, vm_mac(&lab)),
        Station::interface(
            "external",
            &external.netns,
            external.host_ifname(),
            external.mac,
            Some(external.ip),
        ),
        Station::interface("host", switch, HOST_PORT, host_mac, Some(host_ip)),
    ];
    assert_pings_every_pair(&stations);
    assert_switches_every_pair(&stations);
}

/// Whether the agent's log reports an error or a warning.
fn log_complains(logs: &str) -> bool {
    logs.lines()
        .any(|line| line.contains("ERROR") || line.contains("WARN"))
}

/// Waits until `vbr port show` lists `ifname` in `state`, and returns its entry and when it was
/// first seen so.
fn wait_for_state(
    cli: &Cli,
    bridge: &Bridge,
    ifname: &str,
    state: &str,
    timeout: Duration,
) -> (PortStatus, Instant) {
    wait_until(&format!("{ifname} {state}"), timeout, || {
        let ports = cli.port_status(&bridge.name)?;
        Ok(ports
            .into_iter()
            .find(|port| port.ifname == ifname && port.state == state)
            .map(|port| (port, Instant::now())))
    })
    .unwrap_or_else(|error| panic!("{error:#}"))
}

/// The VM's broadcast reaches h1, and each one's unicast reaches the other.
fn assert_vm_talks_to_h1(lab: &Lab, tap: &Tap, when: &str) {
    let stations = [
        Station::host(lab.host(1)),
        Station::tap("vm", tap, vm_mac(lab)),
    ];
    let round = [
        Expect::probe(&stations, 1, Mac::BROADCAST, &[1, 0]),
        Expect::probe(&stations, 1, stations[0].mac, &[1, 0]),
        Expect::probe(&stations, 0, stations[1].mac, &[0, 1]),
    ];
    assert_round(&format!("vm and h1 {when}"), &stations, &round, CAPTURE);
}

#[test]
fn hotplug_tap_is_attached_when_it_appears_and_waits_when_it_goes() {
    let vbr = vbr_bin();
    let lab = Lab::new(1).expect("building the lab");
    let tap_ifname = tap_name(&lab);
    let mut bridge = lab.bridge(&[1]);
    bridge.ports.push(BridgePort {
        hotplug: true,
        ..BridgePort::new(&tap_ifname)
    });
    let bridges = std::slice::from_ref(&bridge);
    let config = lab.write_config(bridges).expect("writing the config");
    // Started without waiting for every port: the tap's is not attached yet, and says so.
    let agent = Agent::spawn(&lab, &vbr, &config, bridges, &Options::default())
        .expect("starting the agent");
    let cli = agent.cli();

    let (waiting, _) = wait_for_state(cli, &bridge, &tap_ifname, "waiting", READY_TIMEOUT);
    assert!(
        !waiting.attached && waiting.ifindex.is_none() && waiting.mode.is_none(),
        "{waiting:#?}"
    );
    let ports = cli.port_status(&bridge.name).expect("vbr port show");
    let h1 = status_of(&ports, &lab.host(1).port);
    assert!(h1.attached && h1.state == "attached", "{ports:#?}");

    for round in ["first", "second"] {
        let created = Instant::now();
        let tap = Tap::create(lab.switch(), &tap_ifname).expect("creating the tap");
        let (attached, at) = wait_for_state(cli, &bridge, &tap_ifname, "attached", HOTPLUG_DELAY);
        assert!(
            attached.attached
                && attached.mode.as_deref() == Some("xdp-native")
                && attached.ifindex == Some(lab.switch().ifindex(&tap_ifname).expect("ifindex")),
            "{round} appearance: {attached:#?}"
        );
        eprintln!(
            "{round} appearance: attached after {:?}",
            at.duration_since(created)
        );
        assert_vm_talks_to_h1(&lab, &tap, &format!("after the tap's {round} appearance"));

        drop(tap);
        let (waiting, _) = wait_for_state(cli, &bridge, &tap_ifname, "waiting", HOTPLUG_DELAY);
        assert!(
            !waiting.attached && waiting.ifindex.is_none(),
            "after the tap's {round} removal: {waiting:#?}"
        );
        let logs = agent.logs();
        assert!(
            !log_complains(&logs),
            "the agent complained about the tap's {round} removal:\n{logs}"
        );
    }
    let exit = agent.stop().expect("stopping the agent");
    assert!(
        exit.status.success(),
        "agent exited with {} after the hotplug rounds:\n{}",
        exit.status,
        exit.stderr
    );
}

#[test]
fn a_missing_interface_without_hotplug_is_still_a_config_error() {
    let lab = Lab::new(1).expect("building the lab");
    let mut bridge = lab.bridge(&[1]);
    let later = format!("{}v", lab.prefix());
    let missing = format!("{}w", lab.prefix());
    bridge.ports.push(BridgePort {
        hotplug: true,
        ..BridgePort::new(&later)
    });
    bridge.ports.push(BridgePort::new(&missing));
    assert_refused(
        &lab,
        &vbr_bin(),
        &bridge,
        &config_toml(std::slice::from_ref(&bridge)),
        &[&missing],
    );
}

/// A physical uplink is often both a bridge port and the lower device of macvlans given to
/// containers. XDP on it must not switch away the frames meant for those macvlans: the agent
/// keeps their MACs (whatever namespace they were moved to) as local entries, and frames for
/// them go up the uplink's stack, where macvlan delivers them.
#[test]
fn an_uplink_port_keeps_its_macvlans_working() {
    let vbr = vbr_bin();
    let lab = Lab::new(1).expect("building the lab");
    let switch = lab.switch();
    let external = External::new(&lab, FarSide::Host).expect("building the uplink");
    let container = Netns::new(&format!("{}c", lab.prefix())).expect("the container namespace");
    let macvlan = format!("{}m", lab.prefix());
    add_macvlan(switch, &macvlan, &external.port, "bridge").expect("adding the macvlan");
    switch
        .ip(&["link", "set", &macvlan, "netns", container.name()])
        .expect("moving the macvlan into the container");
    let macvlan_ip = Ipv4Addr::new(10, 77, lab.id(), 50);
    container
        .ip(&["addr", "add", &format!("{macvlan_ip}/24"), "dev", &macvlan])
        .expect("addressing the macvlan");
    container
        .ip(&["link", "set", &macvlan, "up"])
        .expect("bringing the macvlan up");
    let macvlan_mac = container.link(&macvlan).expect("ip link")["address"]
        .as_str()
        .expect("the macvlan's MAC")
        .to_owned();

    let mut bridge = lab.bridge(&[1]);
    bridge.ports.push(BridgePort::new(&external.port));
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let local = wait_until(
        "the macvlan's MAC as a local entry",
        Duration::from_secs(3),
        || {
            let entries = agent.cli().fdb_show(&bridge.name)?;
            Ok(entries
                .into_iter()
                .find(|entry| entry.mac == macvlan_mac && entry.kind == "local"))
        },
    )
    .unwrap_or_else(|error| panic!("{error:#}"));
    assert_eq!(local.port, external.port, "{local:?}");

    let to_container = vbr_tests::devices::ping(&external.netns, macvlan_ip).expect("ping");
    assert!(
        to_container.success,
        "external → macvlan:\n{}",
        to_container.output
    );
    let to_host = vbr_tests::devices::ping(&external.netns, lab.host(1).ip).expect("ping");
    assert!(
        to_host.success,
        "external → h1 through the bridge:\n{}",
        to_host.output
    );
    let from_host = lab.host(1).ping(external.ip).expect("ping");
    assert!(from_host.success, "h1 → external:\n{}", from_host.output);
    let stats = agent.cli().stats(&bridge.name).expect("vbr stats");
    assert!(stats.reasons["pass_to_stack"] > 0, "{stats:#?}");
}
