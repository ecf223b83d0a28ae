//! End to end: the agent as a long-running daemon on a hypervisor host — restarted and upgraded
//! under traffic without losing a frame, reconfigured live, ageing the FDB, reporting events and
//! counters, one per network namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use vbr_tests::agent::{Options, REFUSAL_TIMEOUT};
use vbr_tests::bpf;
use vbr_tests::cli::{BridgeStats, Counters, FdbEntry, pin_dir};
use vbr_tests::config::config_toml;
use vbr_tests::frames::tci;
use vbr_tests::lab::PingStream;
use vbr_tests::{Agent, Bridge, BridgePort, Cli, Frame, Lab, Mac, Monitor, vbr_bin};

/// The ping stream a restart or an upgrade must not disturb: 1,000 echo requests 10 ms apart.
const STREAM_PINGS: u32 = 1000;
const STREAM_INTERVAL: Duration = Duration::from_millis(10);
/// Bound on the stream: nominally 10 s of pings (ping's timer granularity can stretch that to 16 s)
/// and the last reply's second, with slack for a loaded host.
const STREAM_TIMEOUT: Duration = Duration::from_secs(40);
/// How long the stream runs before the agent is stopped: well inside it, with pings before.
const STREAM_LEAD_IN: Duration = Duration::from_secs(3);
/// How long the bridge forwards with no agent at all during a restart.
const AGENTLESS: Duration = Duration::from_secs(1);
/// How long a condition the agent brings about (a reload by SIGHUP, old programs unloaded after
/// an RCU grace period, counters caught up with frames in flight) may take.
const SETTLE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);
/// Every probe frame is this long on the wire: an Ethernet header and the minimum payload.
const PROBE_BYTES: u64 = 60;
const VLAN_DEFAULT: u16 = 1;
/// A VLAN no port of the stats test carries.
const VLAN_ABSENT: u16 = 30;

/// Polls `done` every `POLL` until it holds or `timeout` passes; whether it held.
fn wait_until(timeout: Duration, done: impl FnMut() -> bool) -> bool {
    vbr_tests::poll_until(timeout, POLL, done)
}

/// The id of the XDP program on each port of `bridge`, in the bridge's order.
fn ingress_programs(lab: &Lab, bridge: &Bridge) -> Vec<u32> {
    bridge
        .ports
        .iter()
        .map(|port| {
            lab.switch()
                .xdp_prog_id(&port.ifname)
                .expect("ip link")
                .unwrap_or_else(|| panic!("no XDP program on {}", port.ifname))
        })
        .collect()
}

/// The FDB entry of `mac`, if listed.
fn fdb_entry(fdb: &[FdbEntry], mac: Mac) -> Option<&FdbEntry> {
    fdb.iter().find(|entry| entry.mac == mac.to_string())
}

/// Checks that `mac` is a learned entry behind `port`.
fn assert_learned(fdb: &[FdbEntry], mac: Mac, port: &str, when: &str) {
    let entry =
        fdb_entry(fdb, mac).unwrap_or_else(|| panic!("{mac} not in the FDB {when}: {fdb:#?}"));
    assert_eq!(
        (entry.port.as_str(), entry.kind.as_str()),
        (port, "learned"),
        "{mac} {when}: {entry:?}"
    );
}

/// A two-host lab whose bridge outlives its agent. Besides h1 and h2 it learns a third MAC behind
/// h2's port from one frame, which nothing refreshes: if that entry is still there after a
/// restart, the FDB was kept, not learned again.
struct RestartLab {
    lab: Lab,
    bridge: Bridge,
    config: PathBuf,
    once_seen: Mac,
}

impl RestartLab {
    fn new() -> Self {
        let lab = Lab::new(2).expect("building the lab");
        let bridge = lab.bridge(&[1, 2]);
        let config = lab
            .write_config(std::slice::from_ref(&bridge))
            .expect("writing the config");
        let once_seen = Mac([0x02, 0, 0, 0xee, lab.id(), 0x02]);
        Self {
            lab,
            bridge,
            config,
            once_seen,
        }
    }

    fn start(&self, options: &Options) -> Agent<'_> {
        Agent::start_with(
            &self.lab,
            &vbr_bin(),
            &self.config,
            std::slice::from_ref(&self.bridge),
            options,
        )
        .expect("starting the agent")
    }

    /// Learns h1, h2 (a ping) and the once-seen MAC (one probe from h2).
    fn learn(&self, cli: &Cli) {
        self.lab
            .ping_pairs(&[(1, 2)])
            .expect("h1 -> h2 before the stream");
        self.lab
            .host(2)
            .send(&Frame::probe(Mac::BROADCAST, self.once_seen))
            .expect("sending from the once-seen MAC");
        let port = &self.lab.host(2).port;
        assert!(
            wait_until(SETTLE, || {
                cli.fdb_show(&self.bridge.name)
                    .is_ok_and(|fdb| fdb_entry(&fdb, self.once_seen).is_some())
            }),
            "{} never learned behind {port}",
            self.once_seen
        );
    }

    /// Checks that the FDB still holds h1, h2 and the once-seen MAC, learned on their ports.
    fn assert_fdb_kept(&self, cli: &Cli, when: &str) {
        let fdb = cli.fdb_show(&self.bridge.name).expect("vbr fdb show");
        let (h1, h2) = (self.lab.host(1), self.lab.host(2));
        assert_learned(&fdb, h1.mac, &h1.port, when);
        assert_learned(&fdb, h2.mac, &h2.port, when);
        assert_learned(&fdb, self.once_seen, &h2.port, when);
    }

    /// Starts h1's 1,000 pings to h2.
    fn ping_stream(&self) -> PingStream {
        self.lab
            .host(1)
            .ping_stream(self.lab.host(2).ip, STREAM_PINGS, STREAM_INTERVAL)
            .expect("starting the ping stream")
    }
}

/// Checks that every ping of the stream was answered.
fn assert_no_ping_lost(stream: PingStream, during: &str) {
    let summary = stream.finish(STREAM_TIMEOUT).expect("the ping stream");
    assert_eq!(
        (summary.transmitted, summary.received),
        (STREAM_PINGS, STREAM_PINGS),
        "pings lost {during}:\n{}",
        summary.output
    );
}

#[test]
fn restart_loses_no_ping_and_keeps_the_fdb() {
    let rig = RestartLab::new();
    let agent = rig.start(&Options::keep_bridges());
    rig.learn(agent.cli());
    let programs = ingress_programs(&rig.lab, &rig.bridge);
    let stream = rig.ping_stream();

    thread::sleep(STREAM_LEAD_IN);
    let exit = agent.stop().expect("stopping the agent");
    assert!(
        exit.status.success(),
        "agent exited with {} on SIGTERM:\n{}",
        exit.status,
        exit.stderr
    );
    // No agent: the pinned maps and links carry on alone.
    thread::sleep(AGENTLESS);
    let cli = Cli::new(&vbr_bin(), rig.lab.switch().name());
    rig.assert_fdb_kept(&cli, "with no agent running");
    assert_eq!(
        ingress_programs(&rig.lab, &rig.bridge),
        programs,
        "the programs changed with no agent running"
    );

    let agent = rig.start(&Options::default());
    rig.assert_fdb_kept(agent.cli(), "after the restart");
    let adopted = ingress_programs(&rig.lab, &rig.bridge);
    for ((port, before), after) in rig.bridge.ports.iter().zip(&programs).zip(&adopted) {
        assert_ne!(
            before, after,
            "{}: still XDP program {before} after the restart (not adopted)",
            port.ifname
        );
    }
    assert_no_ping_lost(stream, "across the restart");
}

/// An upgrade is a new agent taking the bridges over from the old one the moment it exits. Here
/// the new agent is the same binary: it still loads and swaps in fresh instances of the ingress
/// program, the devmap (egress) program and the flush watch, which is all an upgrade does to the
/// kernel.
#[test]
fn upgrade_swaps_every_program_and_loses_no_ping() {
    let rig = RestartLab::new();
    let agent = rig.start(&Options::keep_bridges());
    rig.learn(agent.cli());
    let ingress = ingress_programs(&rig.lab, &rig.bridge);
    let egress = bpf::devmap_programs(&rig.bridge.name).expect("reading the devmaps");
    assert!(
        !egress.is_empty(),
        "no devmap entry runs a program: nothing to swap"
    );
    let watch = bpf::flush_watch_program(&rig.bridge.name).expect("reading the flush watch");
    let stream = rig.ping_stream();

    thread::sleep(STREAM_LEAD_IN);
    let exit = agent.stop().expect("stopping the old agent");
    assert!(
        exit.status.success(),
        "old agent exited with {} on SIGTERM:\n{}",
        exit.status,
        exit.stderr
    );
    let agent = rig.start(&Options::default());

    let new_ingress = ingress_programs(&rig.lab, &rig.bridge);
    let new_egress = bpf::devmap_programs(&rig.bridge.name).expect("reading the devmaps");
    let new_watch = bpf::flush_watch_program(&rig.bridge.name).expect("reading the flush watch");
    assert_ne!(watch, new_watch, "flush watch not swapped");
    for ((port, old), new) in rig.bridge.ports.iter().zip(&ingress).zip(&new_ingress) {
        assert_ne!(old, new, "{}: ingress program not swapped", port.ifname);
    }
    assert_eq!(
        new_egress.keys().collect::<Vec<_>>(),
        egress.keys().collect::<Vec<_>>(),
        "devmap entries with a program changed: {egress:?} then {new_egress:?}"
    );
    for ((map, ifindex), new) in &new_egress {
        assert_ne!(
            egress[&(map.clone(), *ifindex)],
            *new,
            "{map} devmap, port {ifindex}: egress program not swapped"
        );
    }
    // Nothing holds the old instances any more: the kernel unloads them (the devmap's after an
    // RCU grace period).
    let old: Vec<u32> = ingress
        .iter()
        .chain(egress.values())
        .chain([&watch])
        .copied()
        .collect();
    assert!(
        wait_until(SETTLE, || old
            .iter()
            .all(|&id| !bpf::program_loaded(id).expect("bpftool prog show"))),
        "old programs still loaded {SETTLE:?} after the upgrade: {:?}",
        old.iter()
            .filter(|&&id| bpf::program_loaded(id).unwrap_or(true))
            .collect::<Vec<_>>()
    );
    rig.assert_fdb_kept(agent.cli(), "after the upgrade");
    assert_no_ping_lost(stream, "across the upgrade");
}

#[test]
fn reload_applies_ports_and_vlans_and_refuses_a_bad_config() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let mut bridge = lab.bridge(&[1, 2]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let rewrite = |bridge: &Bridge| {
        std::fs::write(agent.config(), config_toml(std::slice::from_ref(bridge)))
            .expect("rewriting the config");
    };
    lab.ping_pairs(&[(1, 2)])
        .expect("h1 -> h2 before the reload");

    // h3's port in, h2's out.
    bridge.ports = vec![BridgePort::new(&h1.port), BridgePort::new(&h3.port)];
    rewrite(&bridge);
    cli.reload().expect("vbr agent reload");
    let ports = cli.port_show(&bridge.name).expect("vbr port show");
    let listed: Vec<(&str, bool)> = ports
        .iter()
        .map(|port| (port.ifname.as_str(), port.attached))
        .collect();
    assert_eq!(
        listed,
        [(h1.port.as_str(), true), (h3.port.as_str(), true)],
        "ports after the reload: {ports:#?}"
    );
    assert!(
        !lab.switch().has_xdp(&h2.port).expect("ip link"),
        "XDP program left on {} after its port was removed",
        h2.port
    );
    lab.ping_pairs(&[(1, 3), (3, 1)])
        .expect("h1 <-> h3 after h3's port was added");
    // Floods finished at ingress go to exactly the native ports there are now.
    let native: BTreeSet<u32> = (ports.iter())
        .filter(|port| port.mode == "xdp-native")
        .map(|port| port.ifindex)
        .collect();
    assert_eq!(native.len(), 2, "veth ports run native XDP: {ports:#?}");
    assert_eq!(
        bpf::devmap_ports(&bridge.name, "flood_bare").expect("reading flood_bare"),
        native,
        "flood_bare after the reload: {ports:#?}"
    );
    let ping = h1.ping(h2.ip).expect("running ping");
    assert!(
        !ping.success,
        "h1 still reaches h2 after its port was removed:\n{}",
        ping.output
    );

    // A config that would move h3 to VLAN 20 but names an interface that does not exist:
    // refused as a whole.
    let missing = format!("{}zz", lab.prefix());
    let mut bad = bridge.clone();
    bad.ports[1].pvid = Some(20);
    bad.ports.push(BridgePort::new(&missing));
    rewrite(&bad);
    let output = cli
        .output(&["agent", "reload"])
        .expect("running vbr agent reload");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "reload accepted a config naming {missing}:\n{stderr}"
    );
    assert!(
        stderr.contains(&missing),
        "the refusal does not name {missing}:\n{stderr}"
    );
    assert_eq!(
        cli.port_show(&bridge.name).expect("vbr port show"),
        ports,
        "ports changed by a refused reload"
    );
    lab.ping_pairs(&[(1, 3)])
        .expect("h1 -> h3 after a refused reload");

    // h3 to VLAN 20 for real, by SIGHUP this time.
    bridge.ports[1].pvid = Some(20);
    rewrite(&bridge);
    agent.hangup().expect("SIGHUP to the agent");
    assert!(
        wait_until(SETTLE, || cli.port_show(&bridge.name).is_ok_and(|ports| {
            ports
                .iter()
                .any(|port| port.ifname == h3.port && port.pvid == Some(20))
        })),
        "{} not in VLAN 20 {SETTLE:?} after SIGHUP: {:#?}\n{}",
        h3.port,
        cli.port_show(&bridge.name),
        agent.logs()
    );
    let ping = h1.ping(h3.ip).expect("running ping");
    assert!(
        !ping.success,
        "h1 (VLAN 1) still reaches h3 (VLAN 20):\n{}",
        ping.output
    );
}

#[test]
fn ageing_forgets_a_silent_host_and_keeps_a_static_entry() {
    const AGEING_TIME: Duration = Duration::from_secs(2);
    // Removal comes at the first check (every second) after the entry is older than the ageing
    // time; the rest is slack for the CLI and a loaded machine.
    const AGED_BY: Duration = Duration::from_secs(4);
    let vbr = vbr_bin();
    // Silent hosts: nothing but the one probe below ever refreshes h1's entry.
    let lab = Lab::silent(2).expect("building the lab");
    let (h1, h2) = (lab.host(1), lab.host(2));
    let mut bridge = lab.bridge(&[1, 2]);
    bridge.ageing_time = Some(AGEING_TIME.as_secs());
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let mut monitor = Monitor::start(cli).expect("starting vbr monitor");

    // The static entry's "added" event also tells that the monitor is listening.
    let pinned = monitor
        .wait_listening(cli, &bridge.name, &h2.port, lab.id(), SETTLE)
        .expect("vbr monitor listening");

    let sent = Instant::now();
    h1.send(&h1.probe_to(Mac::BROADCAST))
        .expect("h1's only frame");
    let h1_mac = h1.mac.to_string();
    let (learned_at, learned) = monitor
        .wait_for("learned", SETTLE, |event| {
            event.event == "learned" && event.mac == h1_mac
        })
        .expect("h1 learned");
    assert_eq!(
        (learned.port.as_str(), learned.vlan, learned.bridge.as_str()),
        (h1.port.as_str(), VLAN_DEFAULT, bridge.name.as_str()),
        "{learned:?}"
    );

    let mut gone_after = None;
    while sent.elapsed() < AGED_BY + Duration::from_secs(2) {
        let fdb = cli.fdb_show(&bridge.name).expect("vbr fdb show");
        let elapsed = sent.elapsed();
        if fdb_entry(&fdb, h1.mac).is_none() {
            gone_after = Some(elapsed);
            break;
        }
        thread::sleep(POLL);
    }
    let gone_after = gone_after.unwrap_or_else(|| {
        panic!(
            "h1's entry still there {:?} after its only frame",
            sent.elapsed()
        )
    });
    assert!(
        (AGEING_TIME..=AGED_BY).contains(&gone_after),
        "h1's entry went {gone_after:?} after its only frame, not within {AGEING_TIME:?}-{AGED_BY:?}"
    );
    let (aged_at, aged) = monitor
        .wait_for("aged", SETTLE, |event| {
            event.event == "aged" && event.mac == h1_mac
        })
        .expect("h1 aged");
    assert_eq!(aged.port, h1.port, "{aged:?}");
    assert!(
        aged_at > learned_at,
        "aged before learned: {:#?}",
        monitor.events()
    );

    let fdb = cli.fdb_show(&bridge.name).expect("vbr fdb show");
    let entry =
        fdb_entry(&fdb, pinned).unwrap_or_else(|| panic!("static {pinned} aged too: {fdb:#?}"));
    assert_eq!(
        (entry.kind.as_str(), entry.port.as_str()),
        ("static", h2.port.as_str()),
        "{entry:?}"
    );
    let h1_events: Vec<&str> = monitor
        .events()
        .into_iter()
        .filter(|event| event.mac == h1_mac)
        .map(|event| event.event.as_str())
        .collect();
    assert_eq!(h1_events, ["learned", "aged"], "{:#?}", monitor.events());
    assert!(
        monitor
            .events()
            .iter()
            .all(|event| event.mac != pinned.to_string() || event.event == "added"),
        "{:#?}",
        monitor.events()
    );
}

/// The counters of `rx` frames received, `tx` sent and `flood` flooded, all probes.
fn frames(rx: u64, tx: u64, flood: u64) -> Counters {
    Counters {
        rx_frames: rx,
        rx_bytes: rx * PROBE_BYTES,
        tx_frames: tx,
        tx_bytes: tx * PROBE_BYTES,
        flood_frames: flood,
        flood_bytes: flood * PROBE_BYTES,
    }
}

/// Sends `count` fresh probes made by `make` from host `sender`.
fn send_burst(lab: &Lab, sender: usize, count: usize, make: impl Fn() -> Frame) {
    for _ in 0..count {
        lab.host(sender).send(&make()).expect("sending a probe");
    }
}

/// Counters are compared as deltas between two snapshots, and the hosts are silent (IPv6 off),
/// so the only frames in between are the test's own: every count is exact.
#[test]
fn stats_count_a_known_burst_exactly() {
    const UNICAST: u64 = 100;
    const BROADCAST: u64 = 50;
    const INVALID_SOURCE: u64 = 10;
    const WRONG_VLAN: u64 = 7;
    let vbr = vbr_bin();
    let lab = Lab::silent(3).expect("building the lab");
    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let bridge = Bridge {
        vlan_stats: true,
        ..lab.bridge(&[1, 2, 3])
    };
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let before = cli.stats(&bridge.name).expect("vbr stats");
    assert!(
        before.vlan_stats,
        "vbr stats does not say VLANs are counted"
    );

    // One broadcast from h2, so that h1's unicasts find it known.
    h2.send(&h2.probe_to(Mac::BROADCAST)).expect("sending");
    assert!(
        wait_until(SETTLE, || cli
            .fdb_show(&bridge.name)
            .is_ok_and(|fdb| fdb_entry(&fdb, h2.mac).is_some())),
        "h2 never learned"
    );
    send_burst(&lab, 1, UNICAST as usize, || h1.probe_to(h2.mac));
    send_burst(&lab, 3, BROADCAST as usize, || h3.probe_to(Mac::BROADCAST));
    let multicast = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
    send_burst(&lab, 1, INVALID_SOURCE as usize, || {
        Frame::probe(h2.mac, multicast)
    });
    send_burst(&lab, 1, WRONG_VLAN as usize, || {
        h1.probe_to(h2.mac).with_tci(tci(0, 0, VLAN_ABSENT))
    });

    let expected_reasons: BTreeMap<String, u64> = [
        ("forwarded", UNICAST),
        ("flooded", 1 + BROADCAST),
        ("drop_invalid_source", INVALID_SOURCE),
        ("drop_vlan_ingress", WRONG_VLAN),
    ]
    .into_iter()
    .map(|(reason, frames)| (reason.to_owned(), frames))
    .collect();
    let total: u64 = expected_reasons.values().sum();
    let counted = |stats: &BridgeStats| stats.reasons_since(&before).values().sum::<u64>();
    // Frames are switched in the ports' NAPI, after send() returns: wait until all are counted.
    assert!(
        wait_until(SETTLE, || cli
            .stats(&bridge.name)
            .is_ok_and(|stats| counted(&stats) >= total)),
        "fewer than {total} frames counted {SETTLE:?} after sending them"
    );
    thread::sleep(POLL * 3);
    let after = cli.stats(&bridge.name).expect("vbr stats");

    // Every other reason counted nothing.
    let reasons: BTreeMap<String, u64> = after
        .reasons_since(&before)
        .into_iter()
        .filter(|(_, frames)| *frames != 0)
        .collect();
    assert_eq!(reasons, expected_reasons, "frames per reason");

    let port = |host: usize| {
        let ifname = &lab.host(host).port;
        after.port(ifname).since(&before.port(ifname))
    };
    // h1: the unicasts in (the invalid and wrongly tagged frames never join a VLAN); copies of
    // h2's and h3's broadcasts out.
    assert_eq!(port(1), frames(UNICAST, 1 + BROADCAST, 0), "h1's port");
    // h2: its broadcast in and flooded; the unicasts and h3's broadcasts out.
    assert_eq!(port(2), frames(1, UNICAST + BROADCAST, 1), "h2's port");
    // h3: its broadcasts in and flooded; a copy of h2's broadcast out.
    assert_eq!(port(3), frames(BROADCAST, 1, BROADCAST), "h3's port");
    assert_eq!(
        after.vlan(VLAN_DEFAULT).since(&before.vlan(VLAN_DEFAULT)),
        frames(
            1 + UNICAST + BROADCAST,
            UNICAST + 2 + 2 * BROADCAST,
            1 + BROADCAST
        ),
        "VLAN {VLAN_DEFAULT}"
    );
    assert_eq!(
        after.vlan(VLAN_ABSENT),
        Counters::default(),
        "VLAN {VLAN_ABSENT}, which no port carries"
    );
}

/// Fetches `http://ADDRESS/metrics` from inside the lab's switch namespace; returns the body.
fn fetch_metrics(lab: &Lab, address: SocketAddr) -> String {
    let response = lab
        .switch()
        .run_inside(move || {
            let timeout = Duration::from_secs(5);
            let mut stream = TcpStream::connect_timeout(&address, timeout)?;
            stream.set_read_timeout(Some(timeout))?;
            // In one write, as HTTP clients send a request this small: the agent answers after
            // its first read.
            let request = format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
            stream.write_all(request.as_bytes())?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        })
        .unwrap_or_else(|error| panic!("GET http://{address}/metrics: {error:#}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    body.to_owned()
}

#[test]
fn metrics_serve_the_counters_as_prometheus_text() {
    let vbr = vbr_bin();
    let lab = Lab::silent(2).expect("building the lab");
    let (h1, h2) = (lab.host(1), lab.host(2));
    let bridge = lab.bridge(&[1, 2]);
    let bridges = std::slice::from_ref(&bridge);
    // The switch namespace is the test's own: nothing else can hold a port on its loopback.
    let address: SocketAddr = "127.0.0.1:9470".parse().expect("an address");
    let options = Options {
        metrics_addr: Some(address),
        ..Options::default()
    };
    let config = lab.write_config(bridges).expect("writing the config");
    let agent =
        Agent::start_with(&lab, &vbr, &config, bridges, &options).expect("starting the agent");
    let cli = agent.cli();
    h1.send(&h1.probe_to(Mac::BROADCAST)).expect("sending");
    assert!(
        wait_until(SETTLE, || cli
            .fdb_show(&bridge.name)
            .is_ok_and(|fdb| fdb_entry(&fdb, h1.mac).is_some())),
        "h1 never learned"
    );
    send_burst(&lab, 2, 3, || h2.probe_to(h1.mac));
    assert!(
        wait_until(SETTLE, || cli
            .stats(&bridge.name)
            .is_ok_and(|stats| stats.reasons.get("forwarded") == Some(&3))),
        "h2's three frames to h1 not counted as forwarded"
    );

    let body = fetch_metrics(&lab, address);
    let stats = cli.stats(&bridge.name).expect("vbr stats");
    assert!(
        !stats.vlan_stats && stats.vlans.is_empty(),
        "a bridge without vlan_stats counted VLANs: {:?}",
        stats.vlans
    );
    assert!(body.contains("# TYPE vbr_frames_total counter"), "{body}");
    let samples: BTreeMap<&str, u64> = body
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("not a counter: {line:?}"));
            (series, value)
        })
        .collect();
    // The hosts are silent: metrics and stats read the same counters at rest.
    for (reason, frames) in &stats.reasons {
        let series = format!(
            "vbr_frames_total{{bridge=\"{}\",reason=\"{reason}\"}}",
            bridge.name
        );
        assert_eq!(
            samples.get(series.as_str()),
            Some(frames),
            "{series} in:\n{body}"
        );
    }
    for port in &stats.ports {
        for (field, value) in [
            ("rx_frames", port.counters.rx_frames),
            ("tx_frames", port.counters.tx_frames),
            ("flood_frames", port.counters.flood_frames),
        ] {
            let series = format!(
                "vbr_port_{field}_total{{bridge=\"{}\",port=\"{}\"}}",
                bridge.name, port.ifname
            );
            assert_eq!(
                samples.get(series.as_str()),
                Some(&value),
                "{series} in:\n{body}"
            );
        }
    }
}

#[test]
fn a_second_agent_in_the_namespace_is_refused() {
    let vbr = vbr_bin();
    let lab = Lab::new(2).expect("building the lab");
    let bridge = lab.bridge(&[1, 2]);
    let bridges = std::slice::from_ref(&bridge);
    let first = Agent::start(&lab, &vbr, bridges).expect("starting the first agent");

    let second = Agent::spawn(&lab, &vbr, first.config(), bridges, &Options::default())
        .expect("spawning the second agent");
    let exit = second
        .wait_exit(REFUSAL_TIMEOUT)
        .expect("the second agent to give up");
    assert!(
        !exit.status.success(),
        "a second agent ran beside the first:\n{}",
        exit.stderr
    );
    assert!(
        exit.stderr
            .contains("another vbr agent running in this network namespace"),
        "the refusal does not say why:\n{}",
        exit.stderr
    );

    // The first is untouched, and still the one the CLI talks to.
    assert!(
        pin_dir(&bridge.name).exists(),
        "the refused agent removed the pins"
    );
    let ports = first.cli().port_show(&bridge.name).expect("vbr port show");
    assert!(
        ports.len() == 2 && ports.iter().all(|port| port.attached),
        "{ports:#?}"
    );
    first
        .cli()
        .reload()
        .expect("vbr agent reload to the first agent");
    lab.ping_pairs(&[(1, 2)])
        .expect("h1 -> h2 with the first agent");
}
