//! The fixtures checked against the kernel's own bridge, so that a failing vbr test points at vbr
//! and not at the harness. Needs root, not vbr.

use std::time::Duration;

use vbr_tests::{Capture, Lab, Mac, require_root};

const CAPTURE: Duration = Duration::from_millis(800);

/// A lab whose switch namespace joins the ports with a Linux bridge.
fn lab_with_linux_bridge(hosts: usize) -> Lab {
    require_root();
    let lab = Lab::new(hosts).expect("building the lab");
    let switch = lab.switch();
    switch
        .ip(&["link", "add", "br0", "type", "bridge"])
        .expect("creating the Linux bridge");
    for host in lab.hosts() {
        switch
            .ip(&["link", "set", &host.port, "master", "br0"])
            .expect("enslaving a port");
    }
    switch.ip(&["link", "set", "br0", "up"]).expect("bridge up");
    lab
}

#[test]
fn lab_hosts_have_their_names_and_addresses() {
    require_root();
    let lab = Lab::new(2).expect("building the lab");
    let id = lab.id();
    for host in lab.hosts() {
        let shown = host
            .netns
            .ip(&["-o", "addr", "show", "dev", "eth0"])
            .expect("ip addr");
        assert!(
            shown.contains(&format!("{}/24", host.ip)),
            "h{}: {shown}",
            host.index
        );
        assert_eq!(host.mac, Mac([2, 0, 0, 0, id, host.index as u8]));
        let link = host
            .netns
            .ip(&["-o", "link", "show", "dev", "eth0"])
            .expect("ip link");
        assert!(
            link.contains(&host.mac.to_string()),
            "h{}: {link}",
            host.index
        );
        let port = lab
            .switch()
            .ip(&["-o", "link", "show", "dev", &host.port])
            .expect("switch port");
        assert!(port.contains("state UP"), "{}: {port}", host.port);
    }
    let names = [lab.switch().path(), lab.host(1).netns.path()];
    drop(lab);
    for name in names {
        assert!(!name.exists(), "{} left behind", name.display());
    }
}

#[test]
fn linux_bridge_forwards_pings_and_probes() {
    let lab = lab_with_linux_bridge(3);
    lab.ping_pairs(&[(1, 2), (1, 3)])
        .expect("pings across the Linux bridge");

    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let unicast = h1.probe_to(h2.mac);
    let on_h2 = h2.capture(CAPTURE).expect("capture on h2");
    let on_h3 = h3.capture(CAPTURE).expect("capture on h3");
    h1.send(&unicast).expect("send unicast");
    assert_eq!(on_h2.copies_of(&unicast).expect("h2 frames"), 1);
    assert_eq!(on_h3.copies_of(&unicast).expect("h3 frames"), 0);

    let broadcast = h1.probe_to(Mac::BROADCAST);
    let copies: Vec<usize> = lab
        .capture_send(h1, &broadcast, CAPTURE)
        .expect("send broadcast while capturing")
        .into_iter()
        .map(|capture| capture.copies_of(&broadcast).expect("frames"))
        .collect();
    assert_eq!(copies, [0, 1, 1], "broadcast copies seen on h1, h2, h3");
}

#[test]
fn silent_lab_hosts_send_nothing_unprompted() {
    require_root();
    let lab = Lab::silent(2).expect("building the lab");
    for host in lab.hosts() {
        let shown = host
            .netns
            .ip(&["-o", "addr", "show", "dev", "eth0"])
            .expect("ip addr");
        assert!(!shown.contains("inet6"), "h{}: {shown}", host.index);
    }
    // What each switch port receives is what its host sends.
    let captures: Vec<Capture> = lab
        .hosts()
        .iter()
        .map(|host| Capture::start(lab.switch(), &host.port, CAPTURE).expect("capture"))
        .collect();
    for (host, capture) in lab.hosts().iter().zip(captures) {
        let frames = capture.frames().expect("captured frames");
        assert!(frames.is_empty(), "h{} sent {frames:#?}", host.index);
    }
}
