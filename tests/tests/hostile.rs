//! End to end: one guest must not be able to blind, flood or fool the bridge — a MAC flood with
//! malformed frames mixed in, link-local frames, a spoofed static MAC, a flapping MAC and a
//! broadcast storm, each against the README's "Hostile traffic" promises.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vbr_tests::cli::{BridgeStats, FdbEntry};
use vbr_tests::cmd;
use vbr_tests::config::{LinkLocal, config_toml};
use vbr_tests::flood::{RandomMacs, RawSocket, raw_frame};
use vbr_tests::frames::{ETHERTYPE_FLOOD_MARK, ETHERTYPE_PROBE, ETHERTYPE_VLAN};
use vbr_tests::lab::HOST_IFNAME;
use vbr_tests::{Agent, Bridge, Capture, Cli, Frame, Host, Lab, Mac, Monitor, vbr_bin};

/// How long a condition the datapath or the agent brings about may take (frames switched in the
/// ports' NAPI after send() returns, events relayed, a reload applied).
const SETTLE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);
/// How long a capture listens for frames that should (or should not) arrive.
const CAPTURE: Duration = Duration::from_millis(800);
/// Bound on any burst, however slow the machine.
const BURST_LIMIT: Duration = Duration::from_secs(20);
/// The shortest Ethernet payload.
const MIN_PAYLOAD: usize = 46;
const ETHERTYPE_LLDP: u16 = 0x88cc;
const ETHERTYPE_8021AD: u16 = 0x88a8;

/// Polls `done` every `POLL` until it holds or `timeout` passes; whether it held.
fn wait_until(timeout: Duration, done: impl FnMut() -> bool) -> bool {
    vbr_tests::poll_until(timeout, POLL, done)
}

/// `pairs` as the map `BridgeStats::reasons_since` gives, for comparisons.
fn reasons(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs
        .iter()
        .map(|&(reason, frames)| (reason.to_owned(), frames))
        .collect()
}

/// Waits until the bridge has counted `total` frames since `before` (the datapath counts them in
/// the ports' NAPI, after send() returns), then returns every reason whose count moved.
fn reasons_counted(
    cli: &Cli,
    bridge: &str,
    before: &BridgeStats,
    total: u64,
) -> BTreeMap<String, u64> {
    let counted = |stats: &BridgeStats| stats.reasons_since(before).values().sum::<u64>();
    let settled = wait_until(SETTLE, || {
        cli.stats(bridge)
            .is_ok_and(|stats| counted(&stats) >= total)
    });
    // Anything counted beyond `total` must show up in the comparison, not slip in after it.
    thread::sleep(POLL * 3);
    let after = cli.stats(bridge).expect("vbr stats");
    let moved: BTreeMap<String, u64> = after
        .reasons_since(before)
        .into_iter()
        .filter(|(_, frames)| *frames != 0)
        .collect();
    assert!(
        settled,
        "{total} frames not counted {SETTLE:?} after sending them: {moved:?}"
    );
    moved
}

/// Waits until `mac` is in the FDB of `bridge`.
fn wait_learned(cli: &Cli, bridge: &str, mac: Mac) {
    let text = mac.to_string();
    assert!(
        wait_until(SETTLE, || cli
            .fdb_show(bridge)
            .is_ok_and(|fdb| fdb.iter().any(|entry| entry.mac == text))),
        "{mac} never learned: {:#?}",
        cli.fdb_show(bridge)
    );
}

/// The entries of `mac` in `fdb`.
fn entries_of(fdb: &[FdbEntry], mac: Mac) -> Vec<&FdbEntry> {
    let text = mac.to_string();
    fdb.iter().filter(|entry| entry.mac == text).collect()
}

/// The captured frames `wanted` accepts.
fn count(frames: &[Frame], wanted: impl Fn(&Frame) -> bool) -> usize {
    frames.iter().filter(|frame| wanted(frame)).count()
}

/// A minimum-size payload that opens with `tag`, so that frames of one burst can be told apart.
fn payload(tag: u32) -> Vec<u8> {
    let mut payload = tag.to_be_bytes().to_vec();
    payload.resize(MIN_PAYLOAD, 0);
    payload
}

/// `[ethertype, payload…]`: what follows the MAC addresses of a plain frame.
fn typed(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    [&ethertype.to_be_bytes()[..], payload].concat()
}

/// A seed that differs from run to run, printed so that a failure can be replayed.
fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |since| since.as_nanos() as u64)
}

/// The acceptance test. h1 (port limit 100) floods 20,000 frames from random source
/// MACs and h2 (no port limit of its own) 1,000 more, against a bridge limited to 500 learned
/// MACs; h1 also sends one frame of every malformed kind. Afterwards the agent runs, every pair
/// of hosts pings, both limits held, no invalid source was learned, and the hosts' entries and a
/// static one are intact.
#[test]
fn mac_flood_and_malformed_frames_leave_the_bridge_bounded_and_forwarding() {
    const PORT_LIMIT: usize = 100;
    const BRIDGE_LIMIT: usize = 500;
    const FLOOD_FRAMES: usize = 20_000;
    const FILL_FRAMES: usize = 1_000;
    let vbr = vbr_bin();
    let lab = Lab::silent(4).expect("building the lab");
    let hosts = lab.hosts();
    let (h1, h2, h4) = (lab.host(1), lab.host(2), lab.host(4));
    let mut bridge = lab.bridge(&[1, 2, 3, 4]);
    bridge.max_learned = Some(BRIDGE_LIMIT as u32);
    bridge.ports[0].flags.max_learned = Some(PORT_LIMIT as u32);
    let mut agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli().clone();
    let name = bridge.name.as_str();

    let pinned = Mac([0x02, 0, 0, 0xee, lab.id(), 0x04]);
    cli.fdb_add(name, pinned, &h4.port).expect("vbr fdb add");
    for host in hosts {
        host.send(&host.probe_to(Mac::BROADCAST))
            .expect("a host's first frame");
        wait_learned(&cli, name, host.mac);
    }

    // One frame of every malformed kind, and frames that are odd but valid.
    let attacker = RawSocket::open(&h1.netns, HOST_IFNAME).expect("h1's raw socket");
    let before = cli.stats(name).expect("vbr stats");
    // Shorter than an Ethernet header: the kernel's AF_PACKET refuses it (dev_validate_header:
    // below the device's min_header_len, 14 for Ethernet) before any driver sees it, so no
    // software interface can hand one to XDP. Should a kernel ever take it, it must be counted.
    let runt = &raw_frame(Mac::BROADCAST, h1.mac, &[])[..10];
    let runt_sent = match attacker.try_send(runt) {
        Ok(()) => true,
        Err(error) => {
            assert_eq!(
                error.raw_os_error(),
                Some(libc::EINVAL),
                "the kernel refused a 10-byte frame, but not as expected: {error}"
            );
            eprintln!("note: AF_PACKET refuses a 10-byte runt ({error}); it never reaches XDP");
            false
        }
    };
    let invalid_sources = [
        Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]),
        Mac([0; 6]),
        Mac::BROADCAST,
    ];
    let malformed: Vec<Vec<u8>> = vec![
        // A VLAN header cut right after its TPID, then after its TCI.
        raw_frame(Mac::BROADCAST, h1.mac, &ETHERTYPE_VLAN.to_be_bytes()),
        raw_frame(
            Mac::BROADCAST,
            h1.mac,
            &typed(ETHERTYPE_VLAN, &[0x00, 0x01]),
        ),
        // The reserved flood marker.
        raw_frame(
            Mac::BROADCAST,
            h1.mac,
            &typed(ETHERTYPE_FLOOD_MARK, &payload(1)),
        ),
    ];
    let invalid: Vec<Vec<u8>> = invalid_sources
        .iter()
        .map(|&src| raw_frame(h2.mac, src, &typed(ETHERTYPE_PROBE, &payload(2))))
        .collect();
    // Valid frames of unusual shape, flooded like any broadcast: an 802.1ad S-tag over an
    // 802.1Q C-tag (payload to vbr, which joins them to the PVID), an all-zero ethertype, an
    // 802.3 length and 0xffff.
    let stacked = raw_frame(
        Mac::BROADCAST,
        h1.mac,
        &[
            &ETHERTYPE_8021AD.to_be_bytes()[..],
            &100u16.to_be_bytes(),
            &typed(ETHERTYPE_VLAN, &10u16.to_be_bytes()),
            &typed(ETHERTYPE_PROBE, &payload(3)),
        ]
        .concat(),
    );
    let mut odd = vec![stacked];
    for ethertype in [0x0000, 0x05dc, 0xffff] {
        odd.push(raw_frame(
            Mac::BROADCAST,
            h1.mac,
            &typed(ethertype, &payload(4)),
        ));
    }
    let h3_capture = lab.host(3).capture(CAPTURE).expect("capture on h3");
    for frame in malformed.iter().chain(&invalid).chain(&odd) {
        attacker.send(frame).expect("a malformed frame");
    }
    let malformed_count = (malformed.len() + usize::from(runt_sent)) as u64;
    let expected = reasons(&[
        ("drop_malformed", malformed_count),
        ("drop_invalid_source", invalid.len() as u64),
        ("flooded", odd.len() as u64),
    ]);
    let total = expected.values().sum();
    assert_eq!(
        reasons_counted(&cli, name, &before, total),
        expected,
        "frames per reason for the malformed and odd frames"
    );
    let on_h3 = h3_capture.frames().expect("h3's capture");
    for frame in &odd {
        let copies = count(&on_h3, |seen| seen.to_bytes() == *frame);
        assert_eq!(
            copies, 1,
            "copies on h3 of the valid odd frame {frame:02x?}: {on_h3:#?}"
        );
    }
    for frame in &malformed {
        assert_eq!(
            count(&on_h3, |seen| seen.to_bytes().starts_with(frame)),
            0,
            "a malformed frame reached h3: {frame:02x?}"
        );
    }

    // The MAC flood: h1 against its port's limit, then h2 to fill the bridge to its own.
    let seed = seed();
    let flood = |macs: RandomMacs, frames: usize| -> Vec<Vec<u8>> {
        macs.take(frames)
            .map(|src| raw_frame(Mac::BROADCAST, src, &typed(ETHERTYPE_PROBE, &payload(5))))
            .collect()
    };
    let before = cli.stats(name).expect("vbr stats");
    let burst = attacker
        .burst(&flood(RandomMacs::new(seed), FLOOD_FRAMES), BURST_LIMIT)
        .expect("h1's MAC flood");
    let filler = RawSocket::open(&h2.netns, HOST_IFNAME).expect("h2's raw socket");
    let fill = filler
        .burst(
            &flood(RandomMacs::new(seed.rotate_left(32)), FILL_FRAMES),
            BURST_LIMIT,
        )
        .expect("h2's MAC flood");
    eprintln!(
        "MAC flood (seed {seed}): h1 sent {} frames in {:?}, h2 {} in {:?}",
        burst.sent, burst.elapsed, fill.sent, fill.elapsed
    );
    let sent = (burst.sent + fill.sent) as u64;
    assert_eq!(
        reasons_counted(&cli, name, &before, sent),
        reasons(&[("flooded", sent)]),
        "frames per reason for the MAC flood (seed {seed})"
    );

    assert!(
        agent.is_running().expect("polling the agent"),
        "the agent died under the flood:\n{}",
        agent.logs()
    );
    let fdb = cli.fdb_show(name).expect("vbr fdb show");
    let learned: Vec<&FdbEntry> = fdb.iter().filter(|entry| entry.kind == "learned").collect();
    let on_h1 = learned.iter().filter(|entry| entry.port == h1.port).count();
    eprintln!(
        "FDB after the flood: {} learned ({on_h1} behind h1's port), {} static",
        learned.len(),
        fdb.len() - learned.len()
    );
    assert!(
        on_h1 <= PORT_LIMIT,
        "{on_h1} MACs learned behind h1's port, over its limit of {PORT_LIMIT} (seed {seed})"
    );
    assert_eq!(
        on_h1, PORT_LIMIT,
        "h1's port did not fill up to its limit (seed {seed})"
    );
    assert!(
        learned.len() <= BRIDGE_LIMIT,
        "{} MACs learned, over the bridge's limit of {BRIDGE_LIMIT} (seed {seed})",
        learned.len()
    );
    assert_eq!(
        learned.len(),
        BRIDGE_LIMIT,
        "the bridge did not fill up to its limit (seed {seed})"
    );
    for entry in &fdb {
        let mac: Mac = entry.mac.parse().expect("a MAC in fdb show");
        assert!(
            mac.0[0] & 1 == 0 && mac.0 != [0; 6],
            "invalid source {mac} in the FDB: {entry:?}"
        );
    }
    for host in hosts {
        let entries = entries_of(&fdb, host.mac);
        assert!(
            entries.len() == 1 && entries[0].port == host.port && entries[0].kind == "learned",
            "h{}'s entry after the flood: {entries:?}",
            host.index
        );
    }
    let entries = entries_of(&fdb, pinned);
    assert!(
        entries.len() == 1 && entries[0].port == h4.port && entries[0].kind == "static",
        "the static entry after the flood: {entries:?}"
    );

    let pairs: Vec<(usize, usize)> = (1..=4)
        .flat_map(|from| (from + 1..=4).map(move |to| (from, to)))
        .collect();
    lab.ping_pairs(&pairs)
        .expect("every pair of hosts after the flood");
    assert!(
        agent.is_running().expect("polling the agent"),
        "the agent died after the flood:\n{}",
        agent.logs()
    );
}

/// An LLDP frame from `src`, unique to this call.
fn lldp(src: Mac) -> Frame {
    Frame {
        ethertype: ETHERTYPE_LLDP,
        ..Frame::probe(Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]), src)
    }
}

/// Sends `frame` from h1 and returns how many copies h2, h3 and h1's own switch port (the
/// stack of the switch namespace, where "host" passes link-local frames) received.
fn send_and_count(lab: &Lab, frame: &Frame) -> [usize; 3] {
    let captures = [
        lab.host(2).capture(CAPTURE).expect("capture on h2"),
        lab.host(3).capture(CAPTURE).expect("capture on h3"),
        Capture::start(lab.switch(), &lab.host(1).port, CAPTURE).expect("capture on h1's port"),
    ];
    lab.host(1).send(frame).expect("sending from h1");
    captures.map(|capture| capture.copies_of(frame).expect("capture"))
}

#[test]
fn link_local_frames_follow_the_bridge_policy() {
    let vbr = vbr_bin();
    let lab = Lab::silent(3).expect("building the lab");
    let h1 = lab.host(1);
    let mut bridge = lab.bridge(&[1, 2, 3]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let name = bridge.name.clone();
    let mut apply = |policy: LinkLocal| -> Bridge {
        bridge.link_local = Some(policy);
        std::fs::write(agent.config(), config_toml(std::slice::from_ref(&bridge)))
            .expect("rewriting the config");
        cli.reload().expect("vbr agent reload");
        bridge.clone()
    };

    // Default: dropped, the STP address as well; the first address past the range floods.
    let before = cli.stats(&name).expect("vbr stats");
    let stp = Frame::probe(Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x00]), h1.mac);
    let beyond = Frame::probe(Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x10]), h1.mac);
    assert_eq!(send_and_count(&lab, &lldp(h1.mac)), [0, 0, 0], "LLDP, drop");
    assert_eq!(send_and_count(&lab, &stp), [0, 0, 0], "STP, drop");
    assert_eq!(
        send_and_count(&lab, &beyond),
        [1, 1, 0],
        "01:80:c2:00:00:10, not link-local"
    );
    assert_eq!(
        reasons_counted(cli, &name, &before, 3),
        reasons(&[("drop_link_local", 2), ("flooded", 1)]),
        "frames per reason with link_local = \"drop\""
    );

    apply(LinkLocal::Forward);
    let before = cli.stats(&name).expect("vbr stats");
    assert_eq!(
        send_and_count(&lab, &lldp(h1.mac)),
        [1, 1, 0],
        "LLDP, forward"
    );
    assert_eq!(
        reasons_counted(cli, &name, &before, 1),
        reasons(&[("flooded", 1)]),
        "frames per reason with link_local = \"forward\""
    );

    apply(LinkLocal::Host);
    let before = cli.stats(&name).expect("vbr stats");
    assert_eq!(
        send_and_count(&lab, &lldp(h1.mac)),
        [0, 0, 1],
        "LLDP, host: only up the stack of h1's port"
    );
    assert_eq!(
        reasons_counted(cli, &name, &before, 1),
        reasons(&[("pass_link_local", 1)]),
        "frames per reason with link_local = \"host\""
    );
}

#[test]
fn a_static_mac_spoofed_from_another_port_is_dropped() {
    const SPOOFED: u64 = 10;
    let vbr = vbr_bin();
    let lab = Lab::silent(3).expect("building the lab");
    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let bridge = lab.bridge(&[1, 2, 3]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let name = bridge.name.as_str();
    cli.fdb_add(name, h2.mac, &h2.port).expect("vbr fdb add");

    let before = cli.stats(name).expect("vbr stats");
    let captures = [
        h1.capture(CAPTURE).expect("capture on h1"),
        h2.capture(CAPTURE).expect("capture on h2"),
    ];
    let spoofer = RawSocket::open(&h3.netns, HOST_IFNAME).expect("h3's raw socket");
    for tag in 0..SPOOFED as u32 {
        let frame = raw_frame(
            Mac::BROADCAST,
            h2.mac,
            &typed(ETHERTYPE_PROBE, &payload(tag)),
        );
        spoofer.send(&frame).expect("a spoofed frame");
    }
    assert_eq!(
        reasons_counted(cli, name, &before, SPOOFED),
        reasons(&[("drop_spoofed", SPOOFED)]),
        "frames per reason for frames from h3 with h2's static MAC"
    );
    for (host, capture) in [1, 2].iter().zip(captures) {
        let frames = capture.frames().expect("capture");
        assert_eq!(
            count(&frames, |frame| frame.src == h2.mac),
            0,
            "a spoofed frame reached h{host}"
        );
    }
    let fdb = cli.fdb_show(name).expect("vbr fdb show");
    let entries = entries_of(&fdb, h2.mac);
    assert!(
        entries.len() == 1 && entries[0].port == h2.port && entries[0].kind == "static",
        "h2's static entry after the spoofing: {entries:?}"
    );

    // The MAC's owner and the spoofer's own MAC still get through.
    lab.ping_pairs(&[(1, 2), (3, 1)])
        .expect("h1 -> h2 and h3 -> h1 after the spoofing");
}

#[test]
fn a_flapping_mac_is_held_on_one_port() {
    /// How long a MAC that moved stays put (FDB_MOVE_HOLD_NS).
    const HOLD: Duration = Duration::from_secs(1);
    const ROUNDS: usize = 20;
    let vbr = vbr_bin();
    let lab = Lab::silent(3).expect("building the lab");
    let (h1, h2) = (lab.host(1), lab.host(2));
    let bridge = lab.bridge(&[1, 2, 3]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let name = bridge.name.as_str();
    let mut monitor = Monitor::start(cli).expect("starting vbr monitor");
    monitor
        .wait_listening(cli, name, &lab.host(3).port, lab.id(), SETTLE)
        .expect("vbr monitor listening");

    let wanderer = Mac([0x02, 0, 0, 0xee, lab.id(), 0x0f]);
    let text = wanderer.to_string();
    let frame = Frame::probe(Mac::BROADCAST, wanderer).to_bytes();
    let sockets = [
        RawSocket::open(&h1.netns, HOST_IFNAME).expect("h1's raw socket"),
        RawSocket::open(&h2.netns, HOST_IFNAME).expect("h2's raw socket"),
    ];
    sockets[0].send(&frame).expect("from h1");
    monitor
        .wait_for("learned", SETTLE, |event| {
            event.event == "learned" && event.mac == text
        })
        .expect("the wandering MAC learned");

    // h2, h1, h2, h1…: a loop or a spoofer. Each frame is switched before the next is sent.
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for socket in [&sockets[1], &sockets[0]] {
            socket.send(&frame).expect("a flapping frame");
            thread::sleep(Duration::from_millis(2));
        }
    }
    let elapsed = started.elapsed();
    // Every frame from h1 after the move to h2 is held back and reported.
    let flapping = |monitor: &Monitor| {
        monitor
            .events()
            .iter()
            .filter(|event| event.event == "flapping" && event.mac == text)
            .count()
    };
    // The datapath reports in order on one ring buffer: once a MAC learned after the flapping is
    // reported, so is every flapping frame.
    let marker = Mac([0x02, 0, 0, 0xee, lab.id(), 0x0e]);
    lab.host(3)
        .send(&Frame::probe(Mac::BROADCAST, marker))
        .expect("the marker frame");
    monitor
        .wait_for("learned marker", SETTLE, |event| {
            event.event == "learned" && event.mac == marker.to_string()
        })
        .expect("the marker MAC learned");
    let moves: Vec<String> = monitor
        .events()
        .iter()
        .filter(|event| event.event == "moved" && event.mac == text)
        .map(|event| format!("{:?} -> {}", event.old_port, event.port))
        .collect();
    eprintln!(
        "{} frames alternating in {elapsed:?}: {} moved, {} flapping",
        2 * ROUNDS,
        moves.len(),
        flapping(&monitor)
    );
    assert!(
        elapsed < HOLD,
        "sending took {elapsed:?}, longer than the hold time: the machine is too slow for this test"
    );
    assert_eq!(
        moves,
        [format!("{:?} -> {}", Some(&h1.port), h2.port)],
        "the MAC bounced: {:#?}",
        monitor.events()
    );
    assert!(
        flapping(&monitor) >= 1,
        "no flapping event: {:#?}",
        monitor.events()
    );
    assert!(
        monitor
            .events()
            .iter()
            .filter(|event| event.event == "flapping" && event.mac == text)
            .all(|event| event.port == h1.port),
        "flapping events name the port the MAC was held away from: {:#?}",
        monitor.events()
    );
    let fdb = cli.fdb_show(name).expect("vbr fdb show");
    let entries = entries_of(&fdb, wanderer);
    assert!(
        entries.len() == 1 && entries[0].port == h2.port,
        "the wandering MAC after the flapping: {entries:?}"
    );

    // Once the hold time is over, a real move goes through again.
    thread::sleep(HOLD.saturating_sub(started.elapsed()) + Duration::from_millis(200));
    sockets[0].send(&frame).expect("from h1 after the hold");
    monitor
        .wait_for("moved back", SETTLE, |event| {
            event.event == "moved" && event.mac == text && event.port == h1.port
        })
        .expect("the MAC moved back to h1 after the hold time");
    let fdb = cli.fdb_show(name).expect("vbr fdb show");
    let entries = entries_of(&fdb, wanderer);
    assert!(
        entries.len() == 1 && entries[0].port == h1.port,
        "the wandering MAC after the hold time: {entries:?}"
    );
}

/// Frames `host`'s `eth0` has received, as the kernel counts them: exact in a silent lab, and
/// unlike a capture it cannot miss frames of a burst that overflow a socket's buffer.
fn rx_packets(host: &Host) -> u64 {
    let shown = host
        .netns
        .ip(&["-j", "-s", "link", "show", "dev", HOST_IFNAME])
        .expect("ip -s link");
    let links: serde_json::Value = serde_json::from_str(&shown).expect("ip -j -s link output");
    links[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("no rx packets for h{} in {shown}", host.index))
}

/// Turns IPv6 off in the switch namespace: its own stack, which owns the switch-side ends of
/// the veths, would otherwise send router solicitations and MLD reports out of them to the
/// hosts, past the bridge, and the hosts' frame counters would not be exact.
fn silence_switch(lab: &Lab) {
    cmd::run_ok(
        lab.switch()
            .exec("sysctl")
            .args(["-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"]),
        Duration::from_secs(10),
    )
    .expect("turning IPv6 off in the switch namespace");
}

/// Waits until each of `hosts` has received what `expected` says since `before` (same order), and
/// returns what they received then.
fn received_since(hosts: &[&Host], before: &[u64], expected: &[u64]) -> Vec<u64> {
    let deltas = || -> Vec<u64> {
        hosts
            .iter()
            .zip(before)
            .map(|(host, before)| rx_packets(host) - before)
            .collect()
    };
    wait_until(SETTLE, || {
        deltas().iter().zip(expected).all(|(got, want)| got >= want)
    });
    thread::sleep(POLL * 3);
    deltas()
}

#[test]
fn storm_control_caps_the_floods_of_one_port() {
    const RATE: u64 = 100;
    const STORM: usize = 1_000;
    const OTHER: usize = 300;
    /// The bucket is shared by the CPUs without atomics: a few frames more may pass.
    const SLACK: u64 = 5;
    /// Between two storms: half a second's worth of floods.
    const PAUSE: Duration = Duration::from_millis(500);
    let per_rate =
        |time: Duration, round: fn(f64) -> f64| round(RATE as f64 * time.as_secs_f64()) as u64;
    let vbr = vbr_bin();
    let lab = Lab::silent(3).expect("building the lab");
    silence_switch(&lab);
    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let hosts = [h1, h2, h3];
    let mut bridge = lab.bridge(&[1, 2, 3]);
    bridge.ports[0].flags.flood_rate = Some(RATE as u32);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let name = bridge.name.as_str();
    let broadcasts = |src: Mac, frames: usize| -> Vec<Vec<u8>> {
        (0..frames as u32)
            .map(|tag| raw_frame(Mac::BROADCAST, src, &typed(ETHERTYPE_PROBE, &payload(tag))))
            .collect()
    };
    let rx = || hosts.map(rx_packets);

    // h1's storm: one second's worth passes at once (the bucket starts full)…
    let before = cli.stats(name).expect("vbr stats");
    let rx_before = rx();
    let storm = RawSocket::open(&h1.netns, HOST_IFNAME).expect("h1's raw socket");
    let first_started = Instant::now();
    let first = storm
        .burst(&broadcasts(h1.mac, STORM), BURST_LIMIT)
        .expect("h1's storm");
    let first_ended = Instant::now();
    let counted = reasons_counted(cli, name, &before, STORM as u64);
    let flooded = counted.get("flooded").copied().unwrap_or(0);
    let allowed = RATE + per_rate(first.elapsed, f64::ceil) + SLACK;
    eprintln!(
        "storm of {STORM} broadcasts in {:?}: {counted:?} (allowed {RATE} to {allowed} floods)",
        first.elapsed
    );
    assert_eq!(
        counted,
        reasons(&[("drop_storm", STORM as u64 - flooded), ("flooded", flooded)]),
        "the storm's frames per reason"
    );
    assert!(
        (RATE..=allowed).contains(&flooded),
        "{flooded} of the storm's frames flooded in {:?}: expected one second's worth ({RATE}) \
         and at most {allowed}",
        first.elapsed
    );

    // …then RATE per second: after a pause, what the pause refilled.
    thread::sleep(PAUSE);
    let before = cli.stats(name).expect("vbr stats");
    let second_started = Instant::now();
    let second = storm
        .burst(&broadcasts(h1.mac, STORM), BURST_LIMIT)
        .expect("h1's second storm");
    let counted = reasons_counted(cli, name, &before, STORM as u64);
    let refilled = counted.get("flooded").copied().unwrap_or(0);
    // The datapath refills in whole milliseconds of its coarse clock: allow two frames less.
    let least = per_rate(second_started - first_ended, f64::floor).saturating_sub(2);
    let most = per_rate(second_started + second.elapsed - first_started, f64::ceil) + SLACK;
    eprintln!(
        "after {PAUSE:?}, {STORM} broadcasts in {:?}: {counted:?} (allowed {least} to {most} floods)",
        second.elapsed
    );
    assert_eq!(
        counted,
        reasons(&[
            ("drop_storm", STORM as u64 - refilled),
            ("flooded", refilled)
        ]),
        "the second storm's frames per reason"
    );
    assert!(
        (least..=most).contains(&refilled),
        "{refilled} of the second storm's frames flooded: expected {RATE}/s over the pause, \
         {least} to {most}"
    );
    let flooded = flooded + refilled;
    assert_eq!(
        received_since(&hosts, &rx_before, &[0, flooded, flooded]),
        [0, flooded, flooded],
        "frames received by h1, h2 and h3 during h1's storms"
    );

    // Another port floods freely.
    let before = cli.stats(name).expect("vbr stats");
    let rx_before = rx();
    RawSocket::open(&h2.netns, HOST_IFNAME)
        .expect("h2's raw socket")
        .burst(&broadcasts(h2.mac, OTHER), BURST_LIMIT)
        .expect("h2's broadcasts");
    let other = OTHER as u64;
    assert_eq!(
        reasons_counted(cli, name, &before, other),
        reasons(&[("flooded", other)]),
        "frames per reason for h2's broadcasts"
    );
    assert_eq!(
        received_since(&hosts, &rx_before, &[other, 0, other]),
        [other, 0, other],
        "frames received by h1, h2 and h3 from h2's broadcasts"
    );

    // The storm port's unicast is not capped: storm control only meters floods.
    let before = cli.stats(name).expect("vbr stats");
    let rx_before = rx();
    let unicast: Vec<Vec<u8>> = (0..OTHER as u32)
        .map(|tag| raw_frame(h2.mac, h1.mac, &typed(ETHERTYPE_PROBE, &payload(tag))))
        .collect();
    RawSocket::open(&h1.netns, HOST_IFNAME)
        .expect("h1's raw socket")
        .burst(&unicast, BURST_LIMIT)
        .expect("h1's unicasts");
    assert_eq!(
        reasons_counted(cli, name, &before, other),
        reasons(&[("forwarded", other)]),
        "frames per reason for h1's unicasts"
    );
    assert_eq!(
        received_since(&hosts, &rx_before, &[0, other, 0]),
        [0, other, 0],
        "frames received by h1, h2 and h3 from h1's unicasts"
    );
}
