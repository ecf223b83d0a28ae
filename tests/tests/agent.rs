//! End to end: the agent's life — attaching its ports, refusing bad configs without leaving
//! anything behind, and cleaning up on SIGTERM.

use std::time::Duration;

use vbr_tests::cli::pin_dir;
use vbr_tests::lab::config_toml;
use vbr_tests::{Agent, Bridge, Lab, vbr_bin};

/// A bad config is refused at once; this bounds "at once" generously for a loaded machine.
const REFUSAL: Duration = Duration::from_secs(5);
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
        assert_eq!(port.pvid, 1, "{port:?}");
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

#[test]
fn sigterm_detaches_every_port_and_removes_the_pins() {
    let vbr = vbr_bin();
    let lab = Lab::new(2).expect("building the lab");
    let bridge = lab.bridge(&[1, 2]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let pins = pin_dir(&bridge.name);
    for map in ["fdb", "ports", "egress", "stats"] {
        assert!(
            pins.join(map).exists(),
            "{} not pinned",
            pins.join(map).display()
        );
    }

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
    for host in lab.hosts() {
        assert!(
            !lab.switch().has_xdp(&host.port).expect("ip link"),
            "XDP program still attached to {} after SIGTERM",
            host.port
        );
    }
    let ping = lab.host(1).ping(lab.host(2).ip).expect("running ping");
    assert!(
        !ping.success,
        "h1 still reaches h2 with the agent gone:\n{}",
        ping.output
    );
}

/// Starts the agent on `config` (text), expects it to exit non-zero quickly with every one of
/// `names` in its stderr, without leaving pins for `bridge` or XDP programs on the lab's ports.
fn assert_refused(lab: &Lab, bridge: &Bridge, config: &str, names: &[&str]) {
    let vbr = vbr_bin();
    let path = lab
        .write_file("bad.toml", config)
        .expect("writing the config");
    let agent =
        Agent::spawn(lab, &vbr, &path, std::slice::from_ref(bridge)).expect("spawning the agent");
    let exit = agent
        .wait_exit(REFUSAL)
        .expect("the agent to refuse its config");
    assert!(
        !exit.status.success(),
        "agent accepted:\n{config}\nstderr:\n{}",
        exit.stderr
    );
    for name in names {
        assert!(
            exit.stderr.contains(name),
            "stderr does not name {name:?}:\n{}",
            exit.stderr
        );
    }
    assert!(
        exit.leftover_pins.is_empty(),
        "pins left: {:?}",
        exit.leftover_pins
    );
    assert!(!pin_dir(&bridge.name).exists());
    for host in lab.hosts() {
        assert!(
            !lab.switch().has_xdp(&host.port).expect("ip link"),
            "XDP program left on {} by a refused config",
            host.port
        );
    }
}

#[test]
fn agent_refuses_an_unknown_interface() {
    let lab = Lab::new(2).expect("building the lab");
    let mut bridge = lab.bridge(&[1, 2]);
    let missing = format!("{}zz", lab.prefix());
    bridge.ports.push(missing.clone());
    assert_refused(
        &lab,
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
    bridge.ports.push(twice.clone());
    assert_refused(
        &lab,
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
    assert_refused(&lab, &first, &config, &[&shared]);
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
        bridge.name, bridge.ports[0]
    );
    assert_refused(&lab, &bridge, &config, &["line 3", "bad.toml"]);
}
