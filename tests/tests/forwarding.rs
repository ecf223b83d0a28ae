//! End to end: hosts in namespaces talk through vbr, which forwards known unicast to its port only
//! and floods the rest to every other port of the bridge.

use std::time::Duration;

use vbr_tests::{Agent, Frame, Host, Lab, Mac, vbr_bin};

/// How long a capture listens for a probe: forwarding takes microseconds, this leaves slack for a
/// loaded machine while keeping negative checks ("never seen") meaningful.
const CAPTURE: Duration = Duration::from_millis(800);

/// Sends `frame` from `sender` while every host of `lab` captures; returns the copies of it each
/// host received (index 0 is h1). The sender's own transmission is not counted.
fn copies_seen(lab: &Lab, sender: &Host, frame: &Frame) -> Vec<usize> {
    lab.capture_send(sender, frame, CAPTURE)
        .expect("sending the probe while every host captures")
        .into_iter()
        .map(|capture| capture.copies_of(frame).expect("capturing"))
        .collect()
}

#[test]
fn hosts_ping_each_other_through_the_bridge() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let _agent = Agent::start(&lab, &vbr, &[bridge]).expect("starting the agent");

    lab.ping_pairs(&[(1, 2), (2, 1), (1, 3), (3, 1), (2, 3)])
        .expect("pings through vbr");
}

#[test]
fn known_unicast_reaches_only_its_destination() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let _agent = Agent::start(&lab, &vbr, &[bridge]).expect("starting the agent");
    // The pings' ARP and replies teach the bridge where h1 and h2 are.
    lab.ping_pairs(&[(1, 2)]).expect("ping to learn h1 and h2");

    let (h1, h2) = (lab.host(1), lab.host(2));
    let probe = h1.probe_to(h2.mac);
    assert_eq!(
        copies_seen(&lab, h1, &probe),
        [0, 1, 0],
        "copies of a unicast h1 -> h2 seen on h1, h2, h3"
    );
}

#[test]
fn broadcast_and_multicast_flood_to_every_other_port() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let _agent = Agent::start(&lab, &vbr, &[bridge]).expect("starting the agent");

    // mDNS's group address: any multicast destination floods like broadcast.
    let multicast = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    for (sender, dst) in [(1, Mac::BROADCAST), (3, Mac::BROADCAST), (2, multicast)] {
        let probe = lab.host(sender).probe_to(dst);
        let mut expected = vec![1; 3];
        expected[sender - 1] = 0;
        assert_eq!(
            copies_seen(&lab, lab.host(sender), &probe),
            expected,
            "copies of a frame h{sender} -> {dst} seen on h1, h2, h3"
        );
    }
}

#[test]
fn unknown_unicast_floods_to_every_other_port() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let _agent = Agent::start(&lab, &vbr, &[bridge]).expect("starting the agent");

    let nobody = Mac([0x02, 0, 0, 0, 0xee, 0x99]);
    let probe = lab.host(1).probe_to(nobody);
    assert_eq!(
        copies_seen(&lab, lab.host(1), &probe),
        [0, 1, 1],
        "copies of a frame h1 -> unknown {nobody} seen on h1, h2, h3"
    );
}

#[test]
fn frames_from_a_multicast_source_are_dropped_and_not_learned() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");

    let bogus_source = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
    for (what, dst) in [
        ("broadcast", Mac::BROADCAST),
        ("unicast to h2", lab.host(2).mac),
    ] {
        let probe = Frame::probe(dst, bogus_source);
        assert_eq!(
            copies_seen(&lab, lab.host(1), &probe),
            [0, 0, 0],
            "copies of a {what} from multicast source {bogus_source} seen on h1, h2, h3"
        );
    }
    let fdb = agent.cli().fdb_show(&bridge.name).expect("vbr fdb show");
    assert!(
        fdb.iter()
            .all(|entry| entry.mac != bogus_source.to_string()),
        "multicast source {bogus_source} was learned: {fdb:#?}"
    );
}

#[test]
fn two_bridges_do_not_exchange_traffic() {
    let vbr = vbr_bin();
    let lab = Lab::new(4).expect("building the lab");
    let left = lab.bridge(&[1, 2]);
    let right = lab.bridge(&[3, 4]);
    let agent =
        Agent::start(&lab, &vbr, &[left.clone(), right.clone()]).expect("starting the agent");

    lab.ping_pairs(&[(1, 2), (3, 4)])
        .expect("pings within each bridge");
    // All four hosts share one subnet: only the bridges keep h1 from reaching h3.
    let ping = lab.host(1).ping(lab.host(3).ip).expect("running ping");
    assert!(
        !ping.success,
        "h1 reached h3 across bridges:\n{}",
        ping.output
    );

    for (sender, expected) in [(1, [0, 1, 0, 0]), (4, [0, 0, 1, 0])] {
        let probe = lab.host(sender).probe_to(Mac::BROADCAST);
        assert_eq!(
            copies_seen(&lab, lab.host(sender), &probe),
            expected,
            "copies of a broadcast from h{sender} seen on h1..h4"
        );
    }
    let mac_of = |i: usize| lab.host(i).mac.to_string();
    for (bridge, own, foreign) in [(&left, [1, 2], [3, 4]), (&right, [3, 4], [1, 2])] {
        let fdb = agent.cli().fdb_show(&bridge.name).expect("vbr fdb show");
        for i in own {
            assert!(
                fdb.iter().any(|entry| entry.mac == mac_of(i)),
                "{} did not learn h{i}: {fdb:#?}",
                bridge.name
            );
        }
        for i in foreign {
            assert!(
                fdb.iter().all(|entry| entry.mac != mac_of(i)),
                "{} learned h{i} of the other bridge: {fdb:#?}",
                bridge.name
            );
        }
    }
}
