//! End to end: vbr accelerating an existing Linux bridge (`[[accelerate]]`). A kernel bridge in
//! the switch namespace joins the lab's ports; vbr carries the known unicast between them in XDP
//! and leaves everything else, and everything it is unsure of, to the kernel bridge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vbr_tests::{Agent, Bridge, Lab, Mac, agent::Options, netfilter, poll_until, vbr_bin};

/// How long the agent may take to follow a change of the kernel bridge: it hears of most at once
/// (rtnetlink) and reads the bridge again every second anyway.
const FOLLOW: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(100);

/// The kernel bridge `bridge.name` with the ports of `bridge`, up; bridged frames do not go
/// through netfilter unless `netfilter` (br_netfilter is on by default in a new namespace).
fn kernel_bridge(lab: &Lab, bridge: &Bridge, netfilter: bool) {
    let switch = lab.switch();
    switch
        .ip(&["link", "add", &bridge.name, "type", "bridge"])
        .expect("creating the kernel bridge");
    for port in &bridge.ports {
        switch
            .ip(&["link", "set", &port.ifname, "master", &bridge.name])
            .expect("adding a port to the kernel bridge");
    }
    switch
        .ip(&["link", "set", &bridge.name, "up"])
        .expect("bringing the kernel bridge up");
    set_netfilter(lab, netfilter);
}

/// Turns bridge-nf-call-{arp,ip,ip6}tables of the switch namespace on or off.
fn set_netfilter(lab: &Lab, on: bool) {
    lab.switch()
        .run_inside(move || netfilter::set(on))
        .expect("setting the switch namespace's bridge-nf-call-*");
}

/// Starts an agent accelerating `bridge` and waits until every port of it is attached.
fn accelerate<'lab>(
    lab: &'lab Lab,
    vbr: &Path,
    bridge: &Bridge,
    extra: &str,
    options: &Options,
) -> Agent<'lab> {
    let config = lab
        .write_file(
            "vbr.toml",
            &format!("[[accelerate]]\nbridge = \"{}\"\n{extra}", bridge.name),
        )
        .expect("writing the config");
    Agent::start_with(lab, vbr, &config, std::slice::from_ref(bridge), options)
        .expect("starting the agent")
}

/// Waits until `vbr port show` gives every port of `bridge` the state `state` ("accelerated" or
/// "passing").
fn wait_ports(agent: &Agent, bridge: &Bridge, state: &str) {
    let reached = poll_until(FOLLOW, POLL, || {
        agent.cli().port_status(&bridge.name).is_ok_and(|ports| {
            ports.len() == bridge.ports.len() && ports.iter().all(|port| port.state == state)
        })
    });
    assert!(
        reached,
        "ports of {} not all {state}: {:?}\n{}",
        bridge.name,
        agent.cli().port_status(&bridge.name),
        agent.logs()
    );
}

/// Frames vbr counted on `bridge` under each reason ("forwarded", "pass_to_bridge"...) while
/// `traffic` ran.
fn counted_during(agent: &Agent, bridge: &Bridge, traffic: impl FnOnce()) -> BTreeMap<String, u64> {
    let before = agent.cli().stats(&bridge.name).expect("vbr stats");
    traffic();
    let after = agent.cli().stats(&bridge.name).expect("vbr stats");
    after.reasons_since(&before)
}

/// The kernel bridge's FDB as `bridge -s -j fdb show br NAME` lists it.
fn kernel_fdb(lab: &Lab, bridge: &str) -> Vec<Value> {
    let output = lab
        .switch()
        .exec("bridge")
        .args(["-s", "-j", "fdb", "show", "br", bridge])
        .output()
        .expect("running bridge fdb show");
    assert!(output.status.success(), "bridge fdb show br {bridge}");
    serde_json::from_slice(&output.stdout).expect("parsing bridge -j fdb show")
}

/// The kernel bridge's entry of `mac`, if it has one.
fn kernel_entry(lab: &Lab, bridge: &str, mac: Mac) -> Option<Value> {
    let mac = mac.to_string();
    kernel_fdb(lab, bridge)
        .into_iter()
        .find(|entry| entry["mac"] == mac.as_str())
}

/// The port vbr's mirror has `mac` behind, if any.
fn mirrored_port(agent: &Agent, bridge: &str, mac: Mac) -> Option<String> {
    let mac = mac.to_string();
    agent
        .cli()
        .fdb_show(bridge)
        .expect("vbr fdb show")
        .into_iter()
        .find(|entry| entry.mac == mac && entry.kind == "mirrored")
        .map(|entry| entry.port)
}

#[test]
fn known_unicast_takes_the_fast_path_and_the_kernel_bridge_sees_only_the_first_frames() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    kernel_bridge(&lab, &bridge, false);
    let agent = accelerate(&lab, &vbr, &bridge, "", &Options::default());
    wait_ports(&agent, &bridge, "accelerated");

    lab.ping_pairs(&[(1, 2), (2, 3), (3, 1)])
        .expect("pings across the accelerated bridge");
    for host in lab.hosts() {
        assert!(
            poll_until(FOLLOW, POLL, || mirrored_port(
                &agent,
                &bridge.name,
                host.mac
            ) == Some(host.port.clone())),
            "h{} ({}) mirrored behind {}: {:?}",
            host.index,
            host.mac,
            host.port,
            agent.cli().fdb_show(&bridge.name)
        );
    }

    let before = agent.cli().stats(&bridge.name).expect("vbr stats");
    let (h1, h2) = (lab.host(1), lab.host(2));
    let pings = 100;
    let summary = h1
        .ping_stream(h2.ip, pings, Duration::from_millis(20))
        .expect("starting pings")
        .finish(Duration::from_secs(15))
        .expect("pings h1 -> h2");
    assert_eq!(summary.received, pings, "{}", summary.output);
    let after = agent.cli().stats(&bridge.name).expect("vbr stats");
    let reasons = after.reasons_since(&before);
    let (forwarded, passed) = (reasons["forwarded"], reasons["pass_to_bridge"]);
    // Each echo and each reply crosses once.
    assert!(
        forwarded >= 2 * u64::from(pings),
        "fast path forwarded {forwarded} of {} frames: {reasons:?}",
        2 * pings
    );
    // What it does get is the hosts' own multicast (IPv6 neighbour discovery...), if anything.
    assert!(
        passed <= forwarded / 20,
        "the kernel bridge got {passed} frames beside {forwarded}: {reasons:?}"
    );
    let from_h1 = after.port(&h1.port).since(&before.port(&h1.port));
    assert!(from_h1.rx_frames >= u64::from(pings), "{from_h1:?}");
    // The kernel bridge forwarded none of it: its entry for h2 was last used before the pings.
    let used = kernel_entry(&lab, &bridge.name, h2.mac)
        .and_then(|entry| entry["used"].as_u64())
        .expect("the kernel's entry of h2, with its use");
    assert!(used >= 1, "the kernel bridge used h2's entry {used} s ago");
}

#[test]
fn the_fast_path_follows_the_kernel_bridges_ports() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let mut bridge = lab.bridge(&[1, 2]);
    kernel_bridge(&lab, &bridge, false);
    let agent = accelerate(&lab, &vbr, &bridge, "", &Options::default());
    wait_ports(&agent, &bridge, "accelerated");
    let (p2, p3) = (lab.host(2).port.clone(), lab.host(3).port.clone());

    lab.switch()
        .ip(&["link", "set", &p3, "master", &bridge.name])
        .expect("adding h3's port to the kernel bridge");
    lab.switch()
        .ip(&["link", "set", &p2, "nomaster"])
        .expect("taking h2's port out of the kernel bridge");
    bridge.ports = lab.bridge(&[1, 3]).ports;
    wait_ports(&agent, &bridge, "accelerated");
    assert!(
        !lab.switch().has_xdp(&p2).expect("reading XDP state"),
        "{p2} left, XDP stayed"
    );
    assert!(
        lab.switch().has_xdp(&p3).expect("reading XDP state"),
        "{p3} joined without XDP"
    );

    lab.ping_pairs(&[(1, 3)]).expect("ping h1 -> h3");
    let forwarded = counted_during(&agent, &bridge, || {
        lab.ping_pairs(&[(3, 1)]).expect("ping h3 -> h1")
    })["forwarded"];
    assert!(
        forwarded >= 6,
        "h3 <-> h1 on the fast path: forwarded {forwarded}"
    );
}

#[test]
fn a_host_moved_to_another_port_keeps_working() {
    let vbr = vbr_bin();
    let lab = Lab::new(4).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3, 4]);
    kernel_bridge(&lab, &bridge, false);
    let agent = accelerate(&lab, &vbr, &bridge, "", &Options::default());
    wait_ports(&agent, &bridge, "accelerated");
    let (h1, h2, h4) = (lab.host(1), lab.host(2), lab.host(4));
    lab.ping_pairs(&[(1, 2), (2, 1)]).expect("pings h1 <-> h2");
    assert!(poll_until(FOLLOW, POLL, || {
        mirrored_port(&agent, &bridge.name, h1.mac) == Some(h1.port.clone())
    }));

    // h1 "migrates" to h4's port: h4 takes its MAC and address, h1 goes quiet.
    h1.netns
        .ip(&["link", "set", "eth0", "down"])
        .expect("h1 down");
    let address = format!("{}/24", h1.ip);
    let mac = h1.mac.to_string();
    for args in [
        &["link", "set", "eth0", "down"][..],
        &["link", "set", "eth0", "address", &mac],
        &["addr", "flush", "dev", "eth0"],
        &["addr", "add", &address, "dev", "eth0"],
        &["link", "set", "eth0", "up"],
    ] {
        h4.netns.ip(args).expect("moving h1's identity to h4");
    }
    // h2 still has h1's MAC cached: its pings are unicast from the first, and the first reply
    // from the new port teaches the kernel (and so vbr) where h1 went.
    let ping = h2.ping(h1.ip).expect("pinging the moved host");
    assert!(ping.success, "h2 -> moved h1:\n{}", ping.output);
    let ping = h4.ping(h2.ip).expect("pinging from the moved host");
    assert!(ping.success, "moved h1 -> h2:\n{}", ping.output);
    assert!(
        poll_until(FOLLOW, POLL, || mirrored_port(&agent, &bridge.name, h1.mac)
            == Some(h4.port.clone())),
        "h1's MAC mirrored behind {}: {:?}",
        h4.port,
        agent.cli().fdb_show(&bridge.name)
    );
    let forwarded = counted_during(&agent, &bridge, || {
        let ping = h2.ping(h1.ip).expect("pinging the moved host again");
        assert!(ping.success, "h2 -> moved h1:\n{}", ping.output);
    })["forwarded"];
    assert!(
        forwarded >= 6,
        "moved host's flow not on the fast path: {forwarded}"
    );
}

#[test]
fn isolated_ports_set_on_the_kernel_bridge_are_honoured_by_the_fast_path() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    kernel_bridge(&lab, &bridge, false);
    let agent = accelerate(&lab, &vbr, &bridge, "", &Options::default());
    wait_ports(&agent, &bridge, "accelerated");
    lab.ping_pairs(&[(1, 2), (1, 3), (2, 3)])
        .expect("pings before isolation");
    let (h1, h2) = (lab.host(1), lab.host(2));
    for host in [h1, h2] {
        lab.switch()
            .exec("bridge")
            .args(["link", "set", "dev", &host.port, "isolated", "on"])
            .status()
            .expect("bridge link set isolated on")
            .success()
            .then_some(())
            .expect("isolating a port");
    }
    assert!(
        poll_until(FOLLOW, POLL, || {
            agent.cli().port_status(&bridge.name).is_ok_and(|ports| {
                ports
                    .iter()
                    .filter(|port| port.flags.is_some_and(|flags| flags.isolated))
                    .count()
                    == 2
            })
        }),
        "vbr did not follow the isolated flags: {:?}",
        agent.cli().port_status(&bridge.name)
    );
    // Known unicast h1 -> h2 would take the fast path; isolation keeps it off both paths.
    let probe = h1.probe_to(h2.mac);
    let copies: Vec<usize> = lab
        .capture_send(h1, &probe, Duration::from_millis(800))
        .expect("sending h1 -> h2")
        .into_iter()
        .map(|capture| capture.copies_of(&probe).expect("capturing"))
        .collect();
    assert_eq!(copies, [0, 0, 0], "copies of h1 -> h2 seen on h1, h2, h3");
    let ping = h1.ping(h2.ip).expect("pinging between isolated ports");
    assert!(
        !ping.success,
        "isolated h1 reached isolated h2:\n{}",
        ping.output
    );
    lab.ping_pairs(&[(1, 3), (2, 3)])
        .expect("isolated ports still reach a non-isolated one");
}

#[test]
fn the_kernel_bridge_keeps_the_entries_of_flows_the_fast_path_carries() {
    let vbr = vbr_bin();
    let lab = Lab::new(2).expect("building the lab");
    let bridge = lab.bridge(&[1, 2]);
    kernel_bridge(&lab, &bridge, false);
    // 3 s: without refreshes the kernel forgets both hosts within the flow below.
    lab.switch()
        .ip(&[
            "link",
            "set",
            &bridge.name,
            "type",
            "bridge",
            "ageing_time",
            "300",
        ])
        .expect("setting the kernel bridge's ageing time");
    let agent = accelerate(&lab, &vbr, &bridge, "", &Options::default());
    wait_ports(&agent, &bridge, "accelerated");
    let (h1, h2) = (lab.host(1), lab.host(2));
    lab.ping_pairs(&[(1, 2)]).expect("ping to learn both hosts");

    let before = agent.cli().stats(&bridge.name).expect("vbr stats");
    let stream = h1
        .ping_stream(h2.ip, 180, Duration::from_millis(50))
        .expect("starting pings");
    // Over three ageing times, both hosts stay in the kernel's FDB.
    for _ in 0..18 {
        std::thread::sleep(Duration::from_millis(500));
        for host in [h1, h2] {
            assert!(
                kernel_entry(&lab, &bridge.name, host.mac).is_some(),
                "the kernel bridge aged out h{} while the fast path carried its flow: {:?}",
                host.index,
                kernel_fdb(&lab, &bridge.name)
            );
        }
    }
    let summary = stream
        .finish(Duration::from_secs(15))
        .expect("pings h1 -> h2");
    assert_eq!(summary.received, 180, "{}", summary.output);
    let reasons = agent
        .cli()
        .stats(&bridge.name)
        .expect("vbr stats")
        .reasons_since(&before);
    // Every echo and every reply took the fast path: none fell back to the kernel's flooding.
    let forwarded = reasons["forwarded"];
    assert!(
        forwarded >= 2 * 180,
        "the flow fell back to the kernel bridge: {reasons:?}"
    );
}

#[test]
fn netfilter_on_the_bridge_keeps_frames_on_the_kernel_path_unless_bypassed() {
    let vbr = vbr_bin();
    let lab = Lab::new(2).expect("building the lab");
    let bridge = lab.bridge(&[1, 2]);
    kernel_bridge(&lab, &bridge, true);
    let agent = accelerate(&lab, &vbr, &bridge, "", &Options::default());
    wait_ports(&agent, &bridge, "passing");
    let reasons = counted_during(&agent, &bridge, || {
        lab.ping_pairs(&[(1, 2), (2, 1)])
            .expect("pings on the kernel path")
    });
    assert_eq!(reasons["forwarded"], 0, "{reasons:?}");
    assert!(reasons["pass_to_bridge"] >= 12, "{reasons:?}");

    // Turned off at run time: no event tells of it, the agent's periodic read does.
    set_netfilter(&lab, false);
    wait_ports(&agent, &bridge, "accelerated");
    drop(agent);

    set_netfilter(&lab, true);
    let agent = accelerate(
        &lab,
        &vbr,
        &bridge,
        "bypass_netfilter = true\n",
        &Options::default(),
    );
    wait_ports(&agent, &bridge, "accelerated");
    let forwarded = counted_during(&agent, &bridge, || {
        lab.ping_pairs(&[(1, 2)]).expect("pings on the fast path")
    })["forwarded"];
    assert!(forwarded >= 4, "bypass_netfilter: forwarded {forwarded}");
}

/// What the kernel bridge is, without counters and timers: links and their bridge attributes,
/// and its FDB entries.
fn kernel_bridge_state(lab: &Lab, bridge: &Bridge) -> (String, String, BTreeSet<String>) {
    let switch = lab.switch();
    let strip = |mut value: Value| {
        for link in value.as_array_mut().into_iter().flatten() {
            if let Some(link) = link.as_object_mut() {
                for noisy in ["stats64", "linkinfo"] {
                    link.remove(noisy);
                }
            }
        }
        value.to_string()
    };
    let links = switch
        .ip(&["-d", "-j", "link", "show", "master", &bridge.name])
        .expect("ip link show master");
    let links = strip(serde_json::from_str(&links).expect("parsing ip -j link"));
    let output = switch
        .exec("bridge")
        .args(["-d", "-j", "link", "show"])
        .output()
        .expect("bridge link show");
    let ports = String::from_utf8_lossy(&output.stdout).into_owned();
    let fdb = kernel_fdb(lab, &bridge.name)
        .into_iter()
        .map(|entry| {
            format!(
                "{} {} {} {}",
                entry["mac"], entry["ifname"], entry["flags"], entry["state"]
            )
        })
        .collect();
    (links, ports, fdb)
}

#[test]
fn stopping_the_accelerator_loses_no_pings_and_leaves_the_kernel_bridge_as_it_was() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    kernel_bridge(&lab, &bridge, false);
    // Static entries stay put whatever the traffic: the FDB compares exactly.
    for host in lab.hosts() {
        lab.switch()
            .exec("bridge")
            .args([
                "fdb",
                // The kernel may have learned the host already (its IPv6 start-up chatter).
                "replace",
                &host.mac.to_string(),
                "dev",
                &host.port,
                "master",
                "static",
            ])
            .status()
            .expect("bridge fdb replace")
            .success()
            .then_some(())
            .expect("making the host's entry static");
    }
    let untouched = kernel_bridge_state(&lab, &bridge);
    let (h1, h2) = (lab.host(1), lab.host(2));

    // A restart in the middle of a flow: the next agent adopts the fast path.
    let agent = accelerate(&lab, &vbr, &bridge, "", &Options::keep_bridges());
    wait_ports(&agent, &bridge, "accelerated");
    let stream = h1
        .ping_stream(h2.ip, 300, Duration::from_millis(10))
        .expect("starting pings");
    std::thread::sleep(Duration::from_millis(1000));
    let config = agent.config().to_owned();
    agent.stop().expect("stopping the agent");
    let agent = Agent::start_with(
        &lab,
        &vbr,
        &config,
        std::slice::from_ref(&bridge),
        &Options::default(),
    )
    .expect("restarting the agent");
    wait_ports(&agent, &bridge, "accelerated");
    std::thread::sleep(Duration::from_millis(500));
    // Then for good (--detach-on-exit): the kernel bridge carries the rest of the flow.
    let exit = agent.stop().expect("stopping the agent for good");
    assert!(exit.leftover_pins.is_empty(), "{:?}", exit.leftover_pins);
    let summary = stream
        .finish(Duration::from_secs(20))
        .expect("pings h1 -> h2");
    assert_eq!(summary.received, 300, "{}", summary.output);

    for host in lab.hosts() {
        assert!(
            !lab.switch().has_xdp(&host.port).expect("reading XDP state"),
            "{} still has an XDP program",
            host.port
        );
    }
    assert_eq!(
        kernel_bridge_state(&lab, &bridge),
        untouched,
        "the kernel bridge changed"
    );
    lab.ping_pairs(&[(1, 3), (3, 2)])
        .expect("the kernel bridge alone");
}
