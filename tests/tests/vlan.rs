//! End to end: 802.1Q VLANs, proven with raw frames between hosts. Access ports carry one VLAN
//! untagged, trunks carry several tagged; floods stay inside their VLAN, the FDB is keyed by
//! (MAC, VLAN), tags keep their priority bits, and `vbr vlan` changes membership live.
//!
//! Every test uses the same lab:
//!
//! ```text
//!   h1, h2  access ports, PVID 10
//!   h3      access port,  PVID 20
//!   h4, h5  trunks: no PVID (untagged frames dropped), 10 and 20 tagged
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use vbr_tests::agent::assert_refused;
use vbr_tests::config::config_toml;
use vbr_tests::flood::RawSocket;
use vbr_tests::frames::{ETHERTYPE_FLOOD_MARK, tci};
use vbr_tests::lab::HOST_IFNAME;
use vbr_tests::{Agent, Bridge, Frame, Lab, Mac, vbr_bin};

/// How long a capture listens for a frame: forwarding takes microseconds, this leaves slack for a
/// loaded machine while keeping "never seen" meaningful.
const CAPTURE: Duration = Duration::from_millis(400);
const VLAN_A: u16 = 10;
const VLAN_B: u16 = 20;
/// A VLAN no port carries.
const VLAN_ABSENT: u16 = 30;
/// Each host's port: PVID (`None`: no untagged frames) and tagged VLANs.
const PORT_VLANS: [(Option<u16>, &[u16]); 5] = [
    (Some(VLAN_A), &[]),
    (Some(VLAN_A), &[]),
    (Some(VLAN_B), &[]),
    (None, &[VLAN_A, VLAN_B]),
    (None, &[VLAN_A, VLAN_B]),
];

/// The 802.1Q tags of the copies of a frame each host received (index 0 is h1); an untagged copy
/// is `None`.
type Seen = Vec<Vec<Option<u16>>>;

/// The five-host lab and its bridge, each port given its [`PORT_VLANS`].
fn vlan_lab() -> (Lab, Bridge) {
    let lab = Lab::new(PORT_VLANS.len()).expect("building the lab");
    let mut bridge = lab.bridge(&[1, 2, 3, 4, 5]);
    for (port, (pvid, tagged)) in bridge.ports.iter_mut().zip(PORT_VLANS) {
        port.pvid = pvid;
        port.tagged = tagged.to_vec();
    }
    (lab, bridge)
}

/// Sends `frame` from h`sender` while every host captures; returns the tags of the copies each
/// host received.
fn tags_seen(lab: &Lab, sender: usize, frame: &Frame) -> Seen {
    lab.capture_send(lab.host(sender), frame, CAPTURE)
        .expect("sending a probe while every host captures")
        .into_iter()
        .map(|capture| capture.tags_of(frame).expect("capturing"))
        .collect()
}

/// What each host should see: one copy on each host listed with its tag, nothing elsewhere.
fn seen_only(copies: &[(usize, Option<u16>)]) -> Seen {
    let mut seen = vec![Vec::new(); PORT_VLANS.len()];
    for &(host, tag) in copies {
        seen[host - 1].push(tag);
    }
    seen
}

fn tag(vid: u16) -> Option<u16> {
    Some(tci(0, 0, vid))
}

#[test]
fn broadcasts_flood_only_within_their_vlan() {
    let vbr = vbr_bin();
    let (lab, bridge) = vlan_lab();
    let _agent = Agent::start(&lab, &vbr, &[bridge]).expect("starting the agent");

    let from_h1 = lab.host(1).probe_to(Mac::BROADCAST);
    assert_eq!(
        tags_seen(&lab, 1, &from_h1),
        seen_only(&[(2, None), (4, tag(VLAN_A)), (5, tag(VLAN_A))]),
        "tags of the copies of h1's broadcast (VLAN {VLAN_A}) seen on h1..h5"
    );
    let from_h3 = lab.host(3).probe_to(Mac::BROADCAST);
    assert_eq!(
        tags_seen(&lab, 3, &from_h3),
        seen_only(&[(4, tag(VLAN_B)), (5, tag(VLAN_B))]),
        "tags of the copies of h3's broadcast (VLAN {VLAN_B}) seen on h1..h5"
    );
    let from_h4 = lab.host(4).probe_to(Mac::BROADCAST).tagged(VLAN_A);
    assert_eq!(
        tags_seen(&lab, 4, &from_h4),
        seen_only(&[(1, None), (2, None), (5, tag(VLAN_A))]),
        "tags of the copies of h4's broadcast tagged {VLAN_A} seen on h1..h5"
    );
}

#[test]
fn tagged_frame_from_a_trunk_reaches_a_learned_access_host_untagged() {
    let vbr = vbr_bin();
    let (lab, bridge) = vlan_lab();
    let _agent = Agent::start(&lab, &vbr, &[bridge]).expect("starting the agent");
    let (h3, h4) = (lab.host(3), lab.host(4));

    let learn = h3.probe_to(Mac::BROADCAST);
    assert_eq!(
        tags_seen(&lab, 3, &learn),
        seen_only(&[(4, tag(VLAN_B)), (5, tag(VLAN_B))]),
        "tags of the copies of h3's broadcast seen on h1..h5"
    );
    let to_h3 = h4.probe_to(h3.mac).tagged(VLAN_B);
    assert_eq!(
        tags_seen(&lab, 4, &to_h3),
        seen_only(&[(3, None)]),
        "tags of the copies of h4 -> learned h3, tagged {VLAN_B}, seen on h1..h5"
    );
}

#[test]
fn trunk_drops_untagged_frames_and_vlans_it_does_not_carry() {
    let vbr = vbr_bin();
    let (lab, bridge) = vlan_lab();
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let h4 = lab.host(4);

    for (what, frame) in [
        (
            format!("tagged {VLAN_ABSENT}"),
            h4.probe_to(Mac::BROADCAST).tagged(VLAN_ABSENT),
        ),
        ("untagged".to_owned(), h4.probe_to(Mac::BROADCAST)),
    ] {
        assert_eq!(
            tags_seen(&lab, 4, &frame),
            seen_only(&[]),
            "tags of the copies of h4's {what} broadcast seen on h1..h5"
        );
    }
    // Learning comes after ingress filtering: neither frame taught the bridge where h4 is.
    let fdb = agent.cli().fdb_show(&bridge.name).expect("vbr fdb show");
    assert!(
        fdb.iter().all(|entry| entry.mac != h4.mac.to_string()),
        "h4 ({}) learned from frames its trunk drops: {fdb:#?}",
        h4.mac
    );
}

#[test]
fn priority_and_drop_eligibility_survive_the_switch() {
    let vbr = vbr_bin();
    let (lab, bridge) = vlan_lab();
    let _agent = Agent::start(&lab, &vbr, &[bridge]).expect("starting the agent");
    let (h4, h5) = (lab.host(4), lab.host(5));

    let learn = h5.probe_to(Mac::BROADCAST).tagged(VLAN_B);
    assert_eq!(
        tags_seen(&lab, 5, &learn),
        seen_only(&[(3, None), (4, tag(VLAN_B))]),
        "tags of the copies of h5's broadcast tagged {VLAN_B} seen on h1..h5"
    );
    let marked = tci(5, 1, VLAN_B);
    let trunk_to_trunk = h4.probe_to(h5.mac).with_tci(marked);
    assert_eq!(
        tags_seen(&lab, 4, &trunk_to_trunk),
        seen_only(&[(5, Some(marked))]),
        "tags of the copies of h4 -> learned h5 with TCI {marked:#06x} seen on h1..h5"
    );

    // A priority tag (VID 0) puts the frame in the PVID and keeps its PCP where it leaves tagged.
    let priority = lab.host(1).probe_to(Mac::BROADCAST).with_tci(tci(6, 0, 0));
    let in_vlan = Some(tci(6, 0, VLAN_A));
    assert_eq!(
        tags_seen(&lab, 1, &priority),
        seen_only(&[(2, None), (4, in_vlan), (5, in_vlan)]),
        "tags of the copies of h1's priority-tagged (PCP 6) broadcast seen on h1..h5"
    );
}

#[test]
fn one_mac_in_two_vlans_has_an_fdb_entry_in_each() {
    let vbr = vbr_bin();
    let (lab, bridge) = vlan_lab();
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let h4 = lab.host(4);

    // The captures also make sure both frames went through the switch before the FDB is read.
    for (vid, seen) in [
        (VLAN_A, seen_only(&[(1, None), (2, None), (5, tag(VLAN_A))])),
        (VLAN_B, seen_only(&[(3, None), (5, tag(VLAN_B))])),
    ] {
        let frame = h4.probe_to(Mac::BROADCAST).tagged(vid);
        assert_eq!(
            tags_seen(&lab, 4, &frame),
            seen,
            "tags of the copies of h4's broadcast tagged {vid} seen on h1..h5"
        );
    }
    let fdb = agent.cli().fdb_show(&bridge.name).expect("vbr fdb show");
    let mut entries: Vec<_> = fdb
        .iter()
        .filter(|entry| entry.mac == h4.mac.to_string())
        .collect();
    entries.sort_by_key(|entry| entry.vlan);
    let vlans: Vec<u16> = entries.iter().map(|entry| entry.vlan).collect();
    assert_eq!(
        vlans,
        [VLAN_A, VLAN_B],
        "VLANs of the entries for h4 ({}): {fdb:#?}",
        h4.mac
    );
    for entry in entries {
        assert_eq!(entry.port, h4.port, "{entry:?}");
        assert_eq!(entry.kind, "learned", "{entry:?}");
    }
}

#[test]
fn port_and_vlan_show_report_the_configured_vlans() {
    let vbr = vbr_bin();
    let (lab, bridge) = vlan_lab();
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let configured: BTreeMap<String, (Option<u16>, Vec<u16>)> = bridge
        .ports
        .iter()
        .map(|port| (port.ifname.clone(), (port.pvid, port.tagged.clone())))
        .collect();

    let ports = agent.cli().port_show(&bridge.name).expect("vbr port show");
    let shown: BTreeMap<_, _> = ports
        .iter()
        .map(|port| (port.ifname.clone(), (port.pvid, port.tagged.clone())))
        .collect();
    assert_eq!(shown, configured, "`vbr port show -j`: {ports:#?}");

    let vlans = agent.cli().vlan_show(&bridge.name).expect("vbr vlan show");
    assert!(
        vlans.iter().all(|port| port.bridge == bridge.name),
        "{vlans:#?}"
    );
    let shown: BTreeMap<_, _> = vlans
        .iter()
        .map(|port| (port.ifname.clone(), (port.pvid, port.tagged.clone())))
        .collect();
    assert_eq!(shown, configured, "`vbr vlan show -j`: {vlans:#?}");
}

#[test]
fn vlan_membership_changes_take_effect_at_once() {
    let vbr = vbr_bin();
    let (lab, bridge) = vlan_lab();
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let (h3, h4) = (lab.host(3), lab.host(4));
    let vlans_of = |port: &str| {
        let vlans = cli.vlan_show(&bridge.name).expect("vbr vlan show");
        vlans
            .iter()
            .find(|shown| shown.ifname == port)
            .map(|shown| (shown.pvid, shown.tagged.clone()))
            .unwrap_or_else(|| panic!("{port} missing from `vbr vlan show`: {vlans:#?}"))
    };
    let broadcast_from_h1 = || tags_seen(&lab, 1, &lab.host(1).probe_to(Mac::BROADCAST));

    cli.vlan_del(&bridge.name, &h4.port, VLAN_A)
        .expect("vbr vlan del");
    assert_eq!(vlans_of(&h4.port), (None, vec![VLAN_B]));
    assert_eq!(
        broadcast_from_h1(),
        seen_only(&[(2, None), (5, tag(VLAN_A))]),
        "tags of h1's broadcast seen on h1..h5 after `vlan del` of {VLAN_A} on h4"
    );

    cli.vlan_add(&bridge.name, &h4.port, VLAN_A, false)
        .expect("vbr vlan add");
    assert_eq!(vlans_of(&h4.port), (None, vec![VLAN_A, VLAN_B]));
    assert_eq!(
        broadcast_from_h1(),
        seen_only(&[(2, None), (4, tag(VLAN_A)), (5, tag(VLAN_A))]),
        "tags of h1's broadcast seen on h1..h5 after `vlan add` of {VLAN_A} on h4"
    );

    cli.vlan_add(&bridge.name, &h3.port, VLAN_A, true)
        .expect("vbr vlan add --pvid");
    assert_eq!(vlans_of(&h3.port), (Some(VLAN_A), vec![]));
    assert_eq!(
        broadcast_from_h1(),
        seen_only(&[(2, None), (3, None), (4, tag(VLAN_A)), (5, tag(VLAN_A))]),
        "tags of h1's broadcast seen on h1..h5 after h3 took PVID {VLAN_A}"
    );
    // The former PVID is no longer h3's.
    let in_b = h4.probe_to(Mac::BROADCAST).tagged(VLAN_B);
    assert_eq!(
        tags_seen(&lab, 4, &in_b),
        seen_only(&[(5, tag(VLAN_B))]),
        "tags of h4's broadcast tagged {VLAN_B} seen on h1..h5 after h3 left VLAN {VLAN_B}"
    );
}

#[test]
fn vlan_changes_that_contradict_membership_are_refused() {
    let vbr = vbr_bin();
    let (lab, bridge) = vlan_lab();
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let (h1, h3) = (lab.host(1), lab.host(3));
    let before = cli.vlan_show(&bridge.name).expect("vbr vlan show");

    assert!(
        cli.vlan_add(&bridge.name, &h3.port, VLAN_B, false).is_err(),
        "`vbr vlan add` accepted VLAN {VLAN_B} tagged on {}, whose PVID it is",
        h3.port
    );
    assert!(
        cli.vlan_del(&bridge.name, &h1.port, VLAN_B).is_err(),
        "`vbr vlan del` accepted VLAN {VLAN_B} on {}, which is not a member",
        h1.port
    );
    assert_eq!(
        cli.vlan_show(&bridge.name).expect("vbr vlan show"),
        before,
        "refused changes altered the membership"
    );
}

#[test]
fn agent_refuses_a_pvid_out_of_range() {
    let lab = Lab::new(2).expect("building the lab");
    let mut bridge = lab.bridge(&[1, 2]);
    bridge.ports[1].pvid = Some(5000);
    let port = bridge.ports[1].ifname.clone();
    assert_refused(
        &lab,
        &vbr_bin(),
        &bridge,
        &config_toml(std::slice::from_ref(&bridge)),
        &[&port, "5000"],
    );
}

#[test]
fn agent_refuses_a_vlan_both_pvid_and_tagged() {
    let lab = Lab::new(2).expect("building the lab");
    let mut bridge = lab.bridge(&[1, 2]);
    bridge.ports[0].pvid = Some(777);
    bridge.ports[0].tagged = vec![VLAN_A, 777];
    let port = bridge.ports[0].ifname.clone();
    assert_refused(
        &lab,
        &vbr_bin(),
        &bridge,
        &config_toml(std::slice::from_ref(&bridge)),
        &[&port, "777"],
    );
}

/// Unicast pairs and broadcasts each sender puts in its burst.
const MIXED_PAIRS: usize = 500;
/// Bound on each burst, however slow the machine.
const MIXED_BURST_LIMIT: Duration = Duration::from_secs(10);

#[test]
fn unicast_and_floods_sent_together_all_leave_finished() {
    // Two senders on h1, one per CPU, interleave unicast to h2 with broadcasts, so that the
    // switch's polls carry both to the same ports: every frame must leave as its port wants it,
    // never with the datapath's internal flood mark, whichever batch it shared with which.
    let vbr = vbr_bin();
    let (lab, bridge) = vlan_lab();
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    // The agent lets unicast skip the devmap program: the batches must keep floods apart.
    let ports = agent.cli().port_show(&bridge.name).expect("vbr port show");
    assert!(
        ports.iter().all(|port| port.direct_unicast),
        "unicast keeps the devmap program: {ports:?}"
    );
    let (h1, h2, h4) = (lab.host(1), lab.host(2), lab.host(4));
    h2.send(&h2.probe_to(Mac::BROADCAST))
        .expect("h2 announces itself");
    let h2_mac = h2.mac.to_string();
    assert!(
        vbr_tests::poll_until(Duration::from_secs(2), Duration::from_millis(50), || agent
            .cli()
            .fdb_show(&bridge.name)
            .is_ok_and(|entries| entries.iter().any(|entry| entry.mac == h2_mac))),
        "h2 never learned"
    );
    let captures = [h2, h4].map(|host| host.capture(Duration::from_secs(4)).expect("capturing"));
    let before = agent.cli().stats(&bridge.name).expect("vbr stats");
    let senders: Vec<_> = (0..2)
        .map(|cpu| {
            let frames: Vec<Vec<u8>> = (0..MIXED_PAIRS)
                .flat_map(|_| {
                    [h1.probe_to(h2.mac), h1.probe_to(Mac::BROADCAST)].map(|f| f.to_bytes())
                })
                .collect();
            let socket = RawSocket::open(&h1.netns, HOST_IFNAME).expect("h1's raw socket");
            std::thread::spawn(move || {
                // A machine without that CPU still sends, from wherever the thread runs.
                let _ = vbr_tests::pin_to_cpu(cpu);
                socket.burst(&frames, MIXED_BURST_LIMIT)
            })
        })
        .collect();
    for sender in senders {
        sender.join().expect("sender thread").expect("burst");
    }
    let sent = 2 * MIXED_PAIRS as u64;
    let reasons = agent
        .cli()
        .stats(&bridge.name)
        .expect("vbr stats")
        .reasons_since(&before);
    // Other hosts' own chatter may flood too.
    assert!(
        reasons["forwarded"] == sent && reasons["flooded"] >= sent,
        "{reasons:?}"
    );

    let [at_h2, at_h4] = captures.map(|capture| capture.frames().expect("capture"));
    for (host, frames, tag) in [(2, &at_h2, None), (4, &at_h4, Some(VLAN_A))] {
        let from_h1: Vec<&Frame> = frames.iter().filter(|frame| frame.src == h1.mac).collect();
        let marked = from_h1
            .iter()
            .filter(|frame| frame.ethertype == ETHERTYPE_FLOOD_MARK)
            .count();
        let mistagged = from_h1
            .iter()
            .filter(|frame| frame.vlan_tci.map(|tci| tci & 0x0fff) != tag)
            .count();
        assert_eq!(
            (marked, mistagged),
            (0, 0),
            "h{host}: {} frames from h1, {marked} with the flood mark, {mistagged} not tagged {tag:?}",
            from_h1.len()
        );
        assert!(!from_h1.is_empty(), "h{host} received nothing from h1");
    }
}
