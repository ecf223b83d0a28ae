//! End to end: the agent's life — attaching its ports, refusing bad configs without leaving
//! anything behind, leaving its bridges forwarding on SIGTERM (or removing them with
//! `--detach-on-exit`), and `vbr bridge del`.

use vbr_tests::agent::{Options, assert_refused};
use vbr_tests::cli::pin_dir;
use vbr_tests::config::{DEFAULT_PVID, config_toml};
use vbr_tests::{Agent, Bridge, BridgePort, Cli, Lab, vbr_bin};

const PORT_MODES: [&str; 3] = ["xdp-native", "xdp-generic", "tc"];

#[test]
fn agent_attaches_and_lists_every_port() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");

    let ports = agent.cli().port_show(&bridge.name).expect("vbr port show");
    assert_eq!(ports.len(), 3, "{ports:#?}");
    for host in lab.hosts() {
        let port = ports
            .iter()
            .find(|port| port.ifname == host.port)
            .unwrap_or_else(|| panic!("{} missing: {ports:#?}", host.port));
        assert_eq!(port.bridge, bridge.name, "{port:?}");
        assert!(port.attached, "{port:?}");
        assert!(PORT_MODES.contains(&port.mode.as_str()), "{port:?}");
        assert_eq!(port.pvid, Some(DEFAULT_PVID), "{port:?}");
        assert!(port.tagged.is_empty(), "{port:?}");
        let ifindex = lab.switch().ifindex(&host.port).expect("port ifindex");
        assert_eq!(port.ifindex, ifindex, "{port:?}");
        if port.mode.starts_with("xdp") {
            assert!(
                lab.switch().has_xdp(&host.port).expect("ip link"),
                "{} reports {} but the kernel shows no XDP program",
                host.port,
                port.mode
            );
        }
    }
    // -j is global: before the object too.
    let global: Vec<vbr_tests::cli::Port> = agent
        .cli()
        .json(&["-j", "port", "show", "--bridge", &bridge.name])
        .expect("vbr -j port show");
    assert_eq!(
        global, ports,
        "`vbr -j port show` differs from `vbr port show -j`"
    );
    // The human table names every port too.
    let table = agent
        .cli()
        .run(&["port", "show", "--bridge", &bridge.name])
        .expect("vbr port show");
    for host in lab.hosts() {
        assert!(
            table.contains(&host.port),
            "{} missing from:\n{table}",
            host.port
        );
    }
}

/// Every port of `bridge` has its link pinned, its XDP program attached, and h1 reaches h2.
fn assert_forwarding(lab: &Lab, bridge: &Bridge, after: &str) {
    let pins = pin_dir(&bridge.name);
    for map in ["fdb", "ports", "egress", "stats"] {
        assert!(
            pins.join(map).exists(),
            "{} not pinned {after}",
            pins.join(map).display()
        );
    }
    for port in &bridge.ports {
        let ifindex = lab.switch().ifindex(&port.ifname).expect("port ifindex");
        let link = pins.join("links").join(ifindex.to_string());
        assert!(link.exists(), "{} not pinned {after}", link.display());
        assert!(
            lab.switch().has_xdp(&port.ifname).expect("ip link"),
            "no XDP program on {} {after}",
            port.ifname
        );
    }
    lab.ping_pairs(&[(1, 2)])
        .unwrap_or_else(|error| panic!("{after}: {error:#}"));
}

/// Nothing of `bridge` is left: no pins, no XDP program on its ports, no forwarding.
fn assert_removed(lab: &Lab, bridge: &Bridge, after: &str) {
    assert!(
        !pin_dir(&bridge.name).exists(),
        "{} still there {after}",
        pin_dir(&bridge.name).display()
    );
    for port in &bridge.ports {
        assert!(
            !lab.switch().has_xdp(&port.ifname).expect("ip link"),
            "XDP program still attached to {} {after}",
            port.ifname
        );
    }
    let ping = lab.host(1).ping(lab.host(2).ip).expect("running ping");
    assert!(
        !ping.success,
        "h1 still reaches h2 {after}:\n{}",
        ping.output
    );
}

#[test]
fn sigterm_leaves_the_bridge_forwarding_until_bridge_del() {
    let vbr = vbr_bin();
    let lab = Lab::new(2).expect("building the lab");
    let bridge = lab.bridge(&[1, 2]);
    let bridges = std::slice::from_ref(&bridge);
    let config = lab.write_config(bridges).expect("writing the config");
    let agent = Agent::start_with(&lab, &vbr, &config, bridges, &Options::keep_bridges())
        .expect("starting the agent");
    assert_forwarding(&lab, &bridge, "with the agent running");

    let exit = agent.stop().expect("stopping the agent");
    assert!(
        exit.status.success(),
        "agent exited with {} on SIGTERM:\n{}",
        exit.status,
        exit.stderr
    );
    assert_eq!(exit.leftover_pins, [pin_dir(&bridge.name)]);
    assert_forwarding(&lab, &bridge, "after SIGTERM");

    // No agent runs: the CLI removes the bridge from its pins.
    Cli::new(&vbr, lab.switch().name())
        .bridge_del(&bridge.name)
        .expect("vbr bridge del");
    assert_removed(&lab, &bridge, "after vbr bridge del");
}

#[test]
fn sigterm_with_detach_on_exit_removes_the_bridge() {
    let vbr = vbr_bin();
    let lab = Lab::new(2).expect("building the lab");
    let bridge = lab.bridge(&[1, 2]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    assert_forwarding(&lab, &bridge, "with the agent running");

    let exit = agent.stop().expect("stopping the agent");
    assert!(
        exit.status.success(),
        "agent exited with {} on SIGTERM:\n{}",
        exit.status,
        exit.stderr
    );
    assert!(
        exit.leftover_pins.is_empty(),
        "pins left after SIGTERM: {:?}",
        exit.leftover_pins
    );
    assert_removed(&lab, &bridge, "after SIGTERM with --detach-on-exit");
}

#[test]
fn agent_refuses_an_unknown_interface() {
    let lab = Lab::new(2).expect("building the lab");
    let mut bridge = lab.bridge(&[1, 2]);
    let missing = format!("{}zz", lab.prefix());
    bridge.ports.push(BridgePort::new(&missing));
    assert_refused(
        &lab,
        &vbr_bin(),
        &bridge,
        &config_toml(std::slice::from_ref(&bridge)),
        &[&missing],
    );
}

#[test]
fn agent_refuses_a_duplicate_port() {
    let lab = Lab::new(2).expect("building the lab");
    let mut bridge = lab.bridge(&[1, 2]);
    let twice = lab.host(1).port.clone();
    bridge.ports.push(BridgePort::new(&twice));
    assert_refused(
        &lab,
        &vbr_bin(),
        &bridge,
        &config_toml(std::slice::from_ref(&bridge)),
        &[&twice],
    );
}

#[test]
fn agent_refuses_a_port_in_two_bridges() {
    let lab = Lab::new(2).expect("building the lab");
    let first = lab.bridge(&[1, 2]);
    let second = lab.bridge(&[1]);
    let shared = lab.host(1).port.clone();
    let config = config_toml(&[first.clone(), second.clone()]);
    assert_refused(&lab, &vbr_bin(), &first, &config, &[&shared]);
    assert!(
        !pin_dir(&second.name).exists(),
        "pins of {} left",
        second.name
    );
}

#[test]
fn agent_refuses_unparsable_toml() {
    let lab = Lab::new(1).expect("building the lab");
    let bridge = lab.bridge(&[1]);
    // The port table's closing bracket is missing (line 3).
    let config = format!(
        "[[bridge]]\nname = \"{}\"\n[[bridge.port]\nifname = \"{}\"\n",
        bridge.name, bridge.ports[0].ifname
    );
    assert_refused(&lab, &vbr_bin(), &bridge, &config, &["line 3", "bad.toml"]);
}
