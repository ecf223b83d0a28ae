//! End to end: macvlan's modes on a bridge with an uplink and three guests, and the Linux bridge's
//! per-port flags, proven by who receives which frame.
//!
//! ```text
//!   g1 (h1), g2 (h2), g3 (h3) ── veth ── <prefix>p1..3 ┐
//!                                                      ├ bridge (vbr)
//!   <prefix>x: eth0 ⊂ br0 (hairpin on) ── <prefix>u ───┘ uplink
//! ```
//!
//! The external namespace stands for the physical switch and a host behind it: a Linux bridge
//! whose port toward vbr reflects frames back (reflective relay, as VEPA needs), with the host's
//! address on the bridge itself. Its "wire" column counts the frames vbr sent out of the uplink;
//! the external host's column what reached the host. In bridge mode, where a reflecting switch
//! would loop vbr's floods, the far side is a plain host instead. Every lab is silent (no IPv6
//! chatter), so only the test's frames cross the bridge.

use std::time::Duration;

use vbr_tests::agent::assert_refused;
use vbr_tests::cli::PortStatus;
use vbr_tests::config::{BridgeMode, BridgePort, PortFlags, config_toml};
use vbr_tests::devices::{EXTERNAL_IFNAME, External, FarSide};
use vbr_tests::station::{Expect, Station, assert_round};
use vbr_tests::{Agent, Bridge, Frame, Lab, Mac, vbr_bin};

/// How long every station listens while a round of probes is sent: forwarding takes
/// microseconds, this leaves slack for a loaded machine while keeping "never seen" meaningful.
const CAPTURE: Duration = Duration::from_millis(1000);
/// A multicast group (mDNS's): floods under the mcast_flood flag.
const MULTICAST: Mac = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
/// A unicast MAC nobody has: floods under the flood flag.
const NOBODY: Mac = Mac([0x02, 0, 0, 0, 0xee, 0x99]);

/// Three guests (h1..h3, silent) and an uplink to an external namespace with `far_side`; the
/// bridge holds the guests' ports and, last, the uplink, marked as such outside bridge mode.
fn mode_lab(mode: BridgeMode, far_side: FarSide) -> (Lab, External, Bridge) {
    let lab = Lab::silent(3).expect("building the lab");
    let external = External::new(&lab, far_side).expect("building the uplink");
    let mut bridge = lab.bridge(&[1, 2, 3]);
    bridge.mode = Some(mode);
    bridge.ports.push(BridgePort {
        uplink: mode != BridgeMode::Bridge,
        ..BridgePort::new(&external.port)
    });
    (lab, external, bridge)
}

/// The stations of a mode lab: the uplink's wire (what vbr sends out of it, seen where it
/// arrives), the external host, g1, g2, g3.
fn mode_stations<'a>(lab: &'a Lab, external: &'a External) -> [Station<'a>; 5] {
    let wire_mac = external.netns.link(EXTERNAL_IFNAME).expect("ip link")["address"]
        .as_str()
        .expect("the wire's MAC")
        .parse()
        .expect("a MAC");
    [
        Station::interface("wire", &external.netns, EXTERNAL_IFNAME, wire_mac, None),
        Station::interface(
            "external",
            &external.netns,
            external.host_ifname(),
            external.mac,
            Some(external.ip),
        ),
        Station::host(lab.host(1)),
        Station::host(lab.host(2)),
        Station::host(lab.host(3)),
    ]
}

/// Station indices in [`mode_stations`].
const WIRE: usize = 0;
const EXT: usize = 1;
const G1: usize = 2;
const G2: usize = 3;
const G3: usize = 4;

/// `n` zeros but a 1 at each of `at`.
fn at(n: usize, at: &[usize]) -> Vec<usize> {
    (0..n).map(|i| usize::from(at.contains(&i))).collect()
}

/// The external host pings g1 and g1 pings it back.
fn assert_external_and_guest_ping(lab: &Lab, stations: &[Station]) {
    for (from, to) in [(EXT, G1), (G1, EXT)] {
        let ping = stations[from]
            .ping(stations[to].ip.expect("an address"))
            .expect("running ping");
        assert!(
            ping.success,
            "{} -> {} ping failed in lab {}:\n{}",
            stations[from].name,
            stations[to].name,
            lab.prefix(),
            ping.output
        );
    }
}

#[test]
fn bridge_mode_switches_every_port_directly() {
    let vbr = vbr_bin();
    let (lab, external, bridge) = mode_lab(BridgeMode::Bridge, FarSide::Host);
    let _agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    // The far side is a plain host: its wire is the host itself.
    let all = mode_stations(&lab, &external);
    let stations = &all[EXT..];
    let n = stations.len();
    let (ext, g1, g2, g3) = (0, 1, 2, 3);
    let broadcasts: Vec<Expect> = (0..n)
        .map(|from| {
            let others: Vec<usize> = (0..n).filter(|&to| to != from).collect();
            Expect::probe(stations, from, Mac::BROADCAST, &at(n, &others))
        })
        .collect();
    assert_round("broadcasts", stations, &broadcasts, CAPTURE);
    let round = [
        Expect::probe(stations, g1, stations[g2].mac, &at(n, &[g2])),
        Expect::probe(stations, g3, stations[g1].mac, &at(n, &[g1])),
        Expect::probe(stations, g1, stations[ext].mac, &at(n, &[ext])),
        Expect::probe(stations, ext, stations[g3].mac, &at(n, &[g3])),
    ];
    assert_round("unicasts", stations, &round, CAPTURE);
    assert_external_and_guest_ping(&lab, &all);
}

#[test]
fn private_mode_keeps_guests_apart_even_hairpinned() {
    let vbr = vbr_bin();
    let (lab, external, bridge) = mode_lab(BridgeMode::Private, FarSide::HairpinSwitch);
    let agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let stations = mode_stations(&lab, &external);
    let n = stations.len();
    // A guest's broadcast goes out of the uplink only; the external switch floods it to its host
    // and reflects it back, and vbr drops what comes back from a guest's own MAC.
    let broadcasts = [
        Expect::probe(&stations, EXT, Mac::BROADCAST, &at(n, &[G1, G2, G3])),
        Expect::probe(&stations, G1, Mac::BROADCAST, &at(n, &[WIRE, EXT])),
        Expect::probe(&stations, G2, Mac::BROADCAST, &at(n, &[WIRE, EXT])),
        Expect::probe(&stations, G3, Mac::BROADCAST, &at(n, &[WIRE, EXT])),
    ];
    assert_round("broadcasts", &stations, &broadcasts, CAPTURE);
    let round = [
        Expect::probe(&stations, G1, stations[G2].mac, &at(n, &[])),
        Expect::probe(&stations, G3, stations[G1].mac, &at(n, &[])),
        Expect::probe(&stations, G1, stations[EXT].mac, &at(n, &[WIRE, EXT])),
        Expect::probe(&stations, EXT, stations[G2].mac, &at(n, &[G2])),
    ];
    assert_round("unicasts", &stations, &round, CAPTURE);

    // Hairpinned: vbr forgets g2, so g1's frame for it floods out of the uplink; the external
    // switch, which knows g2 behind its port toward vbr, sends it straight back.
    assert!(
        external
            .switch_knows(stations[G2].mac)
            .expect("bridge fdb show"),
        "the external switch has not learned g2"
    );
    let cli = agent.cli();
    cli.fdb_del(&bridge.name, stations[G2].mac)
        .expect("vbr fdb del g2");
    let before = cli.stats(&bridge.name).expect("vbr stats");
    let hairpinned = [Expect::probe(
        &stations,
        G1,
        stations[G2].mac,
        &at(n, &[WIRE]),
    )];
    assert_round(
        "g1 -> g2 through the external switch",
        &stations,
        &hairpinned,
        CAPTURE,
    );
    let reasons = cli
        .stats(&bridge.name)
        .expect("vbr stats")
        .reasons_since(&before);
    assert!(
        reasons.get("drop_private").copied().unwrap_or(0) >= 1,
        "the reflected frame was not dropped as private: {reasons:#?}"
    );
    assert_external_and_guest_ping(&lab, &stations);
}

#[test]
fn vepa_mode_sends_guest_traffic_through_the_external_switch() {
    let vbr = vbr_bin();
    let (lab, external, bridge) = mode_lab(BridgeMode::Vepa, FarSide::HairpinSwitch);
    let _agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let stations = mode_stations(&lab, &external);
    let n = stations.len();
    // A guest's broadcast crosses the uplink once, and the reflected copy reaches the other
    // guests once each, never its sender.
    let broadcasts = [
        Expect::probe(&stations, EXT, Mac::BROADCAST, &at(n, &[G1, G2, G3])),
        Expect::probe(&stations, G1, Mac::BROADCAST, &at(n, &[WIRE, EXT, G2, G3])),
        Expect::probe(&stations, G2, Mac::BROADCAST, &at(n, &[WIRE, EXT, G1, G3])),
        Expect::probe(&stations, G3, Mac::BROADCAST, &at(n, &[WIRE, EXT, G1, G2])),
    ];
    assert_round("broadcasts", &stations, &broadcasts, CAPTURE);
    for guest in [G1, G2, G3] {
        assert!(
            external
                .switch_knows(stations[guest].mac)
                .expect("bridge fdb show"),
            "the external switch has not learned {}",
            stations[guest].name
        );
    }
    let mut round: Vec<Expect> = [(G1, G2), (G2, G1), (G1, G3), (G3, G1), (G2, G3), (G3, G2)]
        .iter()
        .map(|&(from, to)| Expect::probe(&stations, from, stations[to].mac, &at(n, &[WIRE, to])))
        .collect();
    round.push(Expect::probe(
        &stations,
        G1,
        stations[EXT].mac,
        &at(n, &[WIRE, EXT]),
    ));
    round.push(Expect::probe(
        &stations,
        EXT,
        stations[G3].mac,
        &at(n, &[G3]),
    ));
    assert_round("unicasts", &stations, &round, CAPTURE);
    assert_external_and_guest_ping(&lab, &stations);
    let ping = lab.host(1).ping(lab.host(2).ip).expect("running ping");
    assert!(ping.success, "g1 -> g2 ping failed:\n{}", ping.output);
}

#[test]
fn passthru_mode_gives_one_guest_the_uplink() {
    let vbr = vbr_bin();
    let (lab, external, mut bridge) = mode_lab(BridgeMode::Passthru, FarSide::HairpinSwitch);
    // g1 and the uplink only.
    bridge
        .ports
        .retain(|port| port.uplink || port.ifname == lab.host(1).port);
    let _agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let stations = mode_stations(&lab, &external);
    let n = stations.len();
    let round = [
        Expect::probe(&stations, EXT, Mac::BROADCAST, &at(n, &[G1])),
        Expect::probe(&stations, G1, Mac::BROADCAST, &at(n, &[WIRE, EXT])),
        Expect::probe(&stations, G2, Mac::BROADCAST, &at(n, &[])),
    ];
    assert_round("broadcasts", &stations, &round, CAPTURE);
    let round = [
        Expect::probe(&stations, G1, stations[EXT].mac, &at(n, &[WIRE, EXT])),
        Expect::probe(&stations, EXT, stations[G1].mac, &at(n, &[G1])),
    ];
    assert_round("unicasts", &stations, &round, CAPTURE);
    assert_external_and_guest_ping(&lab, &stations);
}

#[test]
fn passthru_mode_refuses_a_second_guest() {
    let (lab, _external, bridge) = mode_lab(BridgeMode::Passthru, FarSide::HairpinSwitch);
    let second = lab.host(2).port.clone();
    assert_refused(
        &lab,
        &vbr_bin(),
        &bridge,
        &config_toml(std::slice::from_ref(&bridge)),
        &[&second, "passthru"],
    );
}

/// A silent lab of `hosts` hosts on one bridge in bridge mode, port i given `flags[i]`.
fn flags_lab(hosts: usize, flags: &[(usize, PortFlags)]) -> (Lab, Bridge) {
    let lab = Lab::silent(hosts).expect("building the lab");
    let mut bridge = lab.bridge(&(1..=hosts).collect::<Vec<_>>());
    for &(host, port_flags) in flags {
        bridge.ports[host - 1].flags = port_flags;
    }
    (lab, bridge)
}

fn hosts(lab: &Lab) -> Vec<Station<'_>> {
    lab.hosts().iter().map(Station::host).collect()
}

/// Every host broadcasts once, so that the bridge learns them all; each broadcast is expected
/// at every other host but those in `deaf` (broadcast flooding off).
fn teach(stations: &[Station], deaf: &[usize]) {
    let n = stations.len();
    let round: Vec<Expect> = (0..n)
        .map(|from| {
            let to: Vec<usize> = (0..n)
                .filter(|&to| to != from && !deaf.contains(&to))
                .collect();
            Expect::probe(stations, from, Mac::BROADCAST, &at(n, &to))
        })
        .collect();
    assert_round("broadcasts from every host", stations, &round, CAPTURE);
}

/// The MACs `bridge`'s FDB holds on `port`.
fn learned_on(agent: &Agent, bridge: &Bridge, port: &str) -> Vec<String> {
    agent
        .cli()
        .fdb_show(&bridge.name)
        .expect("vbr fdb show")
        .into_iter()
        .filter(|entry| entry.port == port)
        .map(|entry| entry.mac)
        .collect()
}

#[test]
fn learning_off_forwards_but_never_learns() {
    let vbr = vbr_bin();
    let off = PortFlags {
        learning: Some(false),
        ..PortFlags::default()
    };
    let (lab, bridge) = flags_lab(3, &[(1, off)]);
    let agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    lab.ping_pairs(&[(1, 2), (2, 1)])
        .expect("pings from and to the port that does not learn");
    let stations = hosts(&lab);
    teach(&stations, &[]);
    // h1 is never learned: frames for it flood, to h3 too.
    let round = [
        Expect::probe(&stations, 1, stations[0].mac, &[1, 0, 1]),
        Expect::probe(&stations, 0, stations[1].mac, &[0, 1, 0]),
    ];
    assert_round("unicasts", &stations, &round, CAPTURE);
    let fdb = agent.cli().fdb_show(&bridge.name).expect("vbr fdb show");
    let mac_of = |i: usize| lab.host(i).mac.to_string();
    assert!(
        fdb.iter().all(|entry| entry.mac != mac_of(1)),
        "h1 learned on a port with learning off: {fdb:#?}"
    );
    assert!(
        learned_on(&agent, &bridge, &lab.host(1).port).is_empty(),
        "{fdb:#?}"
    );
    for i in [2, 3] {
        assert!(
            fdb.iter().any(|entry| entry.mac == mac_of(i)),
            "h{i} not learned: {fdb:#?}"
        );
    }
}

#[test]
fn flood_off_keeps_unknown_unicast_away() {
    let vbr = vbr_bin();
    let off = PortFlags {
        flood: Some(false),
        ..PortFlags::default()
    };
    let (lab, bridge) = flags_lab(3, &[(3, off)]);
    let _agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let stations = hosts(&lab);
    teach(&stations, &[]);
    let round = [
        Expect::probe(&stations, 0, NOBODY, &[0, 1, 0]),
        Expect::probe(&stations, 0, MULTICAST, &[0, 1, 1]),
        Expect::probe(&stations, 0, stations[2].mac, &[0, 0, 1]),
    ];
    assert_round("h1's floods and unicast", &stations, &round, CAPTURE);
}

#[test]
fn bcast_flood_off_keeps_broadcast_away() {
    let vbr = vbr_bin();
    let off = PortFlags {
        bcast_flood: Some(false),
        ..PortFlags::default()
    };
    let (lab, bridge) = flags_lab(3, &[(3, off)]);
    let _agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let stations = hosts(&lab);
    // h3 hears no broadcast; its own still reach the others.
    teach(&stations, &[2]);
    let round = [
        Expect::probe(&stations, 0, NOBODY, &[0, 1, 1]),
        Expect::probe(&stations, 0, MULTICAST, &[0, 1, 1]),
        Expect::probe(&stations, 0, stations[2].mac, &[0, 0, 1]),
    ];
    assert_round("h1's floods and unicast", &stations, &round, CAPTURE);
}

#[test]
fn mcast_flood_off_keeps_multicast_away() {
    let vbr = vbr_bin();
    let off = PortFlags {
        mcast_flood: Some(false),
        ..PortFlags::default()
    };
    let (lab, bridge) = flags_lab(3, &[(3, off)]);
    let _agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let stations = hosts(&lab);
    teach(&stations, &[]);
    let round = [
        Expect::probe(&stations, 0, MULTICAST, &[0, 1, 0]),
        Expect::probe(&stations, 0, NOBODY, &[0, 1, 1]),
        Expect::probe(&stations, 0, stations[2].mac, &[0, 0, 1]),
    ];
    assert_round("h1's floods and unicast", &stations, &round, CAPTURE);
}

#[test]
fn hairpin_sends_a_frame_back_out_of_its_ingress_port() {
    let vbr = vbr_bin();
    let on = PortFlags {
        hairpin: Some(true),
        ..PortFlags::default()
    };
    let (lab, bridge) = flags_lab(3, &[(1, on)]);
    let _agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let stations = hosts(&lab);
    // As on a Linux bridge (should_deliver), a flood goes back out of a hairpin port too.
    let round = [
        Expect::probe(&stations, 0, Mac::BROADCAST, &[1, 1, 1]),
        Expect::probe(&stations, 1, Mac::BROADCAST, &[1, 0, 1]),
        Expect::probe(&stations, 2, Mac::BROADCAST, &[1, 1, 0]),
    ];
    assert_round("broadcasts", &stations, &round, CAPTURE);
    // A second MAC behind h1 (hairpin on) and behind h2 (hairpin off), as a VM nested behind a
    // guest or a reflecting switch would have.
    let behind = |host: usize| Mac([0x02, 0, 0, 0, lab.id(), 0x60 + host as u8]);
    let learn = [
        Expect {
            label: "h1 as its second MAC -> broadcast".to_owned(),
            from: 0,
            frame: Frame::probe(Mac::BROADCAST, behind(1)),
            copies: vec![1, 1, 1],
        },
        Expect {
            label: "h2 as its second MAC -> broadcast".to_owned(),
            from: 1,
            frame: Frame::probe(Mac::BROADCAST, behind(2)),
            copies: vec![1, 0, 1],
        },
    ];
    assert_round("second MACs", &stations, &learn, CAPTURE);
    let round = [
        Expect::probe(&stations, 0, behind(1), &[1, 0, 0]),
        Expect::probe(&stations, 1, behind(2), &[0, 0, 0]),
    ];
    assert_round(
        "frames for a MAC behind their own port",
        &stations,
        &round,
        CAPTURE,
    );
}

#[test]
fn isolated_ports_only_talk_to_non_isolated_ones() {
    let vbr = vbr_bin();
    let on = PortFlags {
        isolated: Some(true),
        ..PortFlags::default()
    };
    let (lab, bridge) = flags_lab(3, &[(1, on), (2, on)]);
    let _agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let stations = hosts(&lab);
    let round = [
        Expect::probe(&stations, 0, Mac::BROADCAST, &[0, 0, 1]),
        Expect::probe(&stations, 1, Mac::BROADCAST, &[0, 0, 1]),
        Expect::probe(&stations, 2, Mac::BROADCAST, &[1, 1, 0]),
    ];
    assert_round("broadcasts", &stations, &round, CAPTURE);
    let round = [
        Expect::probe(&stations, 0, stations[1].mac, &[0, 0, 0]),
        Expect::probe(&stations, 1, stations[0].mac, &[0, 0, 0]),
        Expect::probe(&stations, 0, stations[2].mac, &[0, 0, 1]),
        Expect::probe(&stations, 2, stations[0].mac, &[1, 0, 0]),
        Expect::probe(&stations, 1, stations[2].mac, &[0, 0, 1]),
        Expect::probe(&stations, 2, stations[1].mac, &[0, 1, 0]),
    ];
    assert_round("unicasts", &stations, &round, CAPTURE);
    lab.ping_pairs(&[(1, 3), (2, 3)])
        .expect("isolated ports reach the non-isolated one");
}

#[test]
fn max_learned_caps_the_macs_a_port_holds() {
    let vbr = vbr_bin();
    const LIMIT: usize = 3;
    const SOURCES: usize = 10;
    let capped = PortFlags {
        max_learned: Some(LIMIT as u32),
        ..PortFlags::default()
    };
    let (lab, bridge) = flags_lab(2, &[(1, capped)]);
    let agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let stations = hosts(&lab);
    let sources: Vec<Mac> = (0..SOURCES)
        .map(|i| Mac([0x02, 0, 0, lab.id(), 0xa0, i as u8]))
        .collect();
    let flood = || -> Vec<Expect> {
        sources
            .iter()
            .map(|&src| Expect {
                label: format!("h1 as {src} -> broadcast"),
                from: 0,
                frame: Frame::probe(Mac::BROADCAST, src),
                copies: vec![0, 1],
            })
            .collect()
    };
    // Beyond the limit frames are still forwarded, only not learned; the agent's recount a
    // second later does not let more in.
    assert_round("broadcasts from ten sources", &stations, &flood(), CAPTURE);
    let first = learned_on(&agent, &bridge, &lab.host(1).port);
    std::thread::sleep(Duration::from_millis(1200));
    assert_round("the same again", &stations, &flood(), CAPTURE);
    let again = learned_on(&agent, &bridge, &lab.host(1).port);
    for learned in [&first, &again] {
        assert!(
            (1..=LIMIT).contains(&learned.len())
                && learned
                    .iter()
                    .all(|mac| sources.iter().any(|src| src.to_string() == *mac)),
            "port {} with max_learned = {LIMIT} holds {learned:?} after frames from {sources:?}",
            lab.host(1).port
        );
    }
    assert_eq!(first, again, "the learned MACs changed");
}

/// The flags `vbr port show -j` lists for `ifname`.
fn shown_flags(ports: &[PortStatus], ifname: &str) -> vbr_tests::cli::PortFlagsShown {
    ports
        .iter()
        .find(|port| port.ifname == ifname)
        .and_then(|port| port.flags)
        .unwrap_or_else(|| panic!("no flags for {ifname}: {ports:#?}"))
}

#[test]
fn port_set_changes_isolation_and_learning_at_once() {
    let vbr = vbr_bin();
    let (lab, bridge) = flags_lab(3, &[]);
    let agent = Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting agent");
    let cli = agent.cli();
    let stations = hosts(&lab);
    teach(&stations, &[]);
    let h1_to_h2 = |copies: &[usize]| [Expect::probe(&stations, 0, stations[1].mac, copies)];
    assert_round(
        "before isolation",
        &stations,
        &h1_to_h2(&[0, 1, 0]),
        CAPTURE,
    );

    for host in [1, 2] {
        cli.port_set(&lab.host(host).port, &[("isolated", "on")])
            .expect("vbr port set --isolated on");
    }
    let round = [
        Expect::probe(&stations, 0, stations[1].mac, &[0, 0, 0]),
        Expect::probe(&stations, 0, Mac::BROADCAST, &[0, 0, 1]),
        Expect::probe(&stations, 2, stations[1].mac, &[0, 1, 0]),
    ];
    assert_round("h1 and h2 isolated", &stations, &round, CAPTURE);
    let ports = cli.port_status(&bridge.name).expect("vbr port show");
    for host in [1, 2] {
        assert!(
            shown_flags(&ports, &lab.host(host).port).isolated,
            "{ports:#?}"
        );
    }
    assert!(
        !shown_flags(&ports, &lab.host(3).port).isolated,
        "{ports:#?}"
    );

    cli.port_set(&lab.host(1).port, &[("isolated", "off")])
        .expect("vbr port set --isolated off");
    assert_round(
        "h1 no longer isolated",
        &stations,
        &h1_to_h2(&[0, 1, 0]),
        CAPTURE,
    );

    let h3 = &lab.host(3).port;
    cli.port_set(h3, &[("learning", "off")])
        .expect("vbr port set --learning off");
    assert!(!shown_flags(&cli.port_status(&bridge.name).expect("vbr port show"), h3).learning);
    let fresh = Mac([0x02, 0, 0, 0, lab.id(), 0x70]);
    let round = [Expect {
        label: "h3 as a fresh MAC -> broadcast".to_owned(),
        from: 2,
        frame: Frame::probe(Mac::BROADCAST, fresh),
        copies: vec![1, 1, 0],
    }];
    assert_round("h3 not learning", &stations, &round, CAPTURE);
    let learned = learned_on(&agent, &bridge, h3);
    assert!(
        !learned.contains(&fresh.to_string()),
        "{fresh} learned on {h3} after learning off: {learned:?}"
    );
}
