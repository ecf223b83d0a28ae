//! End to end: the forwarding database as the CLI and bpftool show it, learned and static.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vbr_tests::cli::pin_dir;
use vbr_tests::cmd;
use vbr_tests::{Agent, Lab, Mac, vbr_bin};

const CAPTURE: Duration = Duration::from_millis(800);

#[test]
fn fdb_learns_each_host_on_its_own_port() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    lab.ping_pairs(&[(1, 2), (1, 3)])
        .expect("pings through vbr");

    let fdb = agent.cli().fdb_show(&bridge.name).expect("vbr fdb show");
    for host in lab.hosts() {
        let mac = host.mac.to_string();
        let entries: Vec<_> = fdb.iter().filter(|entry| entry.mac == mac).collect();
        assert_eq!(
            entries.len(),
            1,
            "entries for h{} ({mac}): {fdb:#?}",
            host.index
        );
        let entry = entries[0];
        assert_eq!(entry.bridge, bridge.name, "{entry:?}");
        assert_eq!(
            entry.port, host.port,
            "h{} learned on the wrong port: {entry:?}",
            host.index
        );
        assert_eq!(entry.vlan, 1, "{entry:?}");
        assert_eq!(entry.kind, "learned", "{entry:?}");
    }
    let macs: BTreeSet<_> = fdb.iter().map(|entry| entry.mac.clone()).collect();
    let hosts: BTreeSet<_> = lab
        .hosts()
        .iter()
        .map(|host| host.mac.to_string())
        .collect();
    assert_eq!(macs, hosts, "the FDB holds exactly the hosts");
}

#[test]
fn static_fdb_entry_is_added_forwards_and_is_deleted() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let pinned = Mac([0x02, 0, 0, 0, 0xee, 0x01]);

    cli.fdb_add(&bridge.name, pinned, &h3.port)
        .expect("vbr fdb add");
    let fdb = cli.fdb_show(&bridge.name).expect("vbr fdb show");
    let entry = fdb
        .iter()
        .find(|entry| entry.mac == pinned.to_string())
        .unwrap_or_else(|| panic!("static {pinned} missing after fdb add: {fdb:#?}"));
    assert_eq!(entry.kind, "static", "{entry:?}");
    assert_eq!(entry.port, h3.port, "{entry:?}");
    assert_eq!(entry.vlan, 1, "{entry:?}");
    assert_eq!(entry.bridge, bridge.name, "{entry:?}");

    // The datapath uses it: a frame to that MAC goes to h3's port only.
    let probe = h1.probe_to(pinned);
    let (on_h2, on_h3) = (
        h2.capture(CAPTURE).expect("capture"),
        h3.capture(CAPTURE).expect("capture"),
    );
    h1.send(&probe).expect("sending");
    assert_eq!(
        (
            on_h2.copies_of(&probe).expect("h2"),
            on_h3.copies_of(&probe).expect("h3")
        ),
        (0, 1),
        "copies of h1 -> static {pinned} seen on h2, h3"
    );

    cli.fdb_del(&bridge.name, pinned).expect("vbr fdb del");
    let fdb = cli.fdb_show(&bridge.name).expect("vbr fdb show");
    assert!(
        fdb.iter().all(|entry| entry.mac != pinned.to_string()),
        "{pinned} still listed after fdb del: {fdb:#?}"
    );
    // Unknown again: flooded.
    let probe = h1.probe_to(pinned);
    let (on_h2, on_h3) = (
        h2.capture(CAPTURE).expect("capture"),
        h3.capture(CAPTURE).expect("capture"),
    );
    h1.send(&probe).expect("sending");
    assert_eq!(
        (
            on_h2.copies_of(&probe).expect("h2"),
            on_h3.copies_of(&probe).expect("h3")
        ),
        (1, 1),
        "copies of h1 -> deleted {pinned} seen on h2, h3"
    );
}

/// A MAC as bpftool prints a `[u8; 6]`: numbers, or strings of hex ("0x02").
fn mac_of_bpftool(value: &Value) -> Option<Mac> {
    let bytes = value.as_array()?;
    let mut mac = [0u8; 6];
    if bytes.len() != mac.len() {
        return None;
    }
    for (byte, value) in mac.iter_mut().zip(bytes) {
        *byte = match value {
            Value::Number(n) => u8::try_from(n.as_u64()?).ok()?,
            Value::String(s) => u8::from_str_radix(s.trim_start_matches("0x"), 16).ok()?,
            _ => return None,
        };
    }
    Some(Mac(mac))
}

#[test]
fn bpftool_dumps_the_fdb_with_named_fields() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let _agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    lab.ping_pairs(&[(1, 2), (1, 3)])
        .expect("pings through vbr");

    let map = pin_dir(&bridge.name).join("fdb");
    let output = cmd::run_ok(
        Command::new("bpftool")
            .args(["-j", "map", "dump", "pinned"])
            .arg(&map),
        Duration::from_secs(10),
    )
    .expect("bpftool map dump");
    let dump: Vec<Value> = serde_json::from_slice(&output.stdout).expect("bpftool JSON");
    // With BTF, `-j` puts the named view under "formatted" beside the raw bytes.
    let entries: Vec<&Value> = dump
        .iter()
        .map(|entry| entry.get("formatted").unwrap_or(entry))
        .collect();
    for host in lab.hosts() {
        let entry = entries
            .iter()
            .find(|entry| mac_of_bpftool(&entry["key"]["mac"]) == Some(host.mac))
            .unwrap_or_else(|| {
                panic!(
                    "no entry with key.mac = {} for h{} in {}: {dump:#?}",
                    host.mac,
                    host.index,
                    map.display()
                )
            });
        assert_eq!(
            entry["key"]["vlan"], 1,
            "key.vlan of h{}: {entry}",
            host.index
        );
        let ifindex = lab.switch().ifindex(&host.port).expect("port ifindex");
        assert_eq!(
            entry["value"]["ifindex"], ifindex,
            "value.ifindex of h{} (port {}): {entry}",
            host.index, host.port
        );
    }
}
