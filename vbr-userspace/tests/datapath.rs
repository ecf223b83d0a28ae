//! Datapath tests: the real XDP programs, loaded into this kernel. Verdicts, output bytes, FDB
//! effects and counters come from plain BPF_PROG_TEST_RUN runs; where frames go comes from real
//! frames, sent from a veth port's far end into the program attached to the port, and caught on
//! the far ends of the others (through the egress program too). Not from live-frames test runs:
//! some kernels refuse those (EPERM), this workplace's among them.
//!
//! Each test builds its ports in a network namespace of its own and moves its thread there:
//! test runs name their ingress by ifindex, which the kernel resolves in the caller's namespace.
use std::time::Duration;

use aya::{
    Ebpf, TestRun as _, TestRunOptions,
    maps::{Array, DevMapHash, HashMap, MapData, PerCpuArray, PerCpuValues},
    programs::{Xdp, XdpMode, xdp::XdpLinkId},
};
use vbr::{cache::Generation, datapath, fdb::Fdb, ports::Ports};
use vbr_common::{
    DEFAULT_VLAN, PROG_ACCEL, PROG_EGRESS, PROG_INGRESS,
    batch::{BATCH_BARE_UNICAST, BATCH_CLEAN, BATCH_FLOODED},
    bridge::{BridgeInfo, LinkLocal},
    cache::CacheStamp,
    fdb::{FDB_F_LOCAL, FDB_F_MIRRORED, FDB_F_STATIC, FdbCacheSlot, FdbEntry, FdbKey},
    flow::{FLOW_CACHE_SLOTS, FlowCacheSlot, flow_cache_index},
    map_names,
    port::{
        POLICY_ACCEL_FORWARDING, POLICY_ACCEL_VLAN, POLICY_BCAST_FLOOD, POLICY_FLOOD,
        POLICY_HAIRPIN, POLICY_ISOLATED, POLICY_LEARNING, POLICY_LOCAL_STACK, PORT_F_ATTACHED,
        PORT_F_BARE_UNICAST, PORT_F_VLAN_STATS, PVID_NONE, PortInfo, PortMode,
    },
    stats::{Counters, Reason},
    vlan::ETH_P_8021AD,
};
use vbr_tests::frames::tci;
use vbr_tests::{Capture, Frame, Mac, Netns, xdp::XdpMd};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

const MAC_A: Mac = Mac([0x02, 0, 0, 0, 0xaa, 0x01]);
const MAC_B: Mac = Mac([0x02, 0, 0, 0, 0xbb, 0x02]);
const MAC_C: Mac = Mac([0x02, 0, 0, 0, 0xcc, 0x03]);

/// How long a live delivery is waited for on each far end.
const CAPTURE_TIME: Duration = Duration::from_millis(300);

/// A port's VLANs: its PVID (`PVID_NONE` for none) and its tagged VLANs.
struct Vlans(u16, &'static [u16]);

/// Three ports in VLAN 1 untagged, as a bridge without VLAN config.
const PLAIN: [Vlans; 3] = [Vlans(1, &[]), Vlans(1, &[]), Vlans(1, &[])];

/// Two access ports in VLAN 10, one in VLAN 20, one trunk carrying both, no PVID.
const ACCESS10_A: usize = 0;
const ACCESS10_B: usize = 1;
const ACCESS20: usize = 2;
const TRUNK: usize = 3;
const VLAN_LAB: [Vlans; 4] = [
    Vlans(10, &[]),
    Vlans(10, &[]),
    Vlans(20, &[]),
    Vlans(PVID_NONE, &[10, 20]),
];

/// One veth pair: `port` is the switch side, `far` where a host would sit.
struct Veth {
    port: u32,
    far: u32,
    far_name: String,
}

/// The datapath loaded with veth ports in a namespace of the test's own.
struct Bridge {
    ebpf: Ebpf,
    ports: Vec<Veth>,
    netns: Netns,
    /// The XDP program frames enter: vbr's ingress, or the accelerator's.
    entry: &'static str,
    /// `entry` attached to each port, for frames sent from the far ends.
    entry_links: Vec<XdpLinkId>,
}

impl Bridge {
    fn new() -> Self {
        Self::with_ports(&PLAIN)
    }

    fn with_ports(vlans: &[Vlans]) -> Self {
        vbr_tests::require_root();
        let netns = Netns::entered("vd").expect("creating and entering the test's namespace");
        // No IPv6 on the veths: the attached programs see nothing but the tests' frames.
        vbr_tests::netns::ipv6_off().expect("disabling IPv6 in the test's namespace");
        let ports = (1..=vlans.len())
            .map(|i| {
                let (port, far) = (format!("port{i}"), format!("far{i}"));
                let ip = |args: &[&str]| netns.ip(args).unwrap_or_else(|error| panic!("{error:#}"));
                ip(&["link", "add", &port, "type", "veth", "peer", "name", &far]);
                ip(&["link", "set", &port, "up"]);
                ip(&["link", "set", &far, "up"]);
                Veth {
                    port: ifindex(&port),
                    far: ifindex(&far),
                    far_name: far,
                }
            })
            .collect();
        let mut ebpf = datapath::load().unwrap_or_else(|error| panic!("{error:#}"));
        for name in [PROG_INGRESS, PROG_EGRESS] {
            program(&mut ebpf, name)
                .load()
                .unwrap_or_else(|error| panic!("the verifier rejects {name}: {error:?}"));
        }
        let egress = program(&mut ebpf, PROG_EGRESS)
            .fd()
            .unwrap()
            .try_clone()
            .unwrap();
        let mut bridge = Self {
            ebpf,
            ports,
            netns,
            entry: PROG_INGRESS,
            entry_links: Vec::new(),
        };
        bridge.attach_entry(PROG_INGRESS);
        // Redirects into a port only arrive on its far end if that end runs NAPI: the agent's job.
        for veth in &bridge.ports {
            let (netns, far) = (bridge.netns.name(), &veth.far_name);
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", netns, "ethtool", "-K", far, "gro", "on"])
                .status()
                .expect("running ethtool");
            assert!(status.success(), "ethtool -K {far} gro on: {status}");
        }
        let ifindexes: Vec<u32> = bridge.ports.iter().map(|veth| veth.port).collect();
        let mut devmap =
            DevMapHash::try_from(bridge.ebpf.map_mut(map_names::EGRESS).unwrap()).unwrap();
        for ifindex in &ifindexes {
            devmap
                .insert(*ifindex, *ifindex, Some(&egress), 0)
                .expect("devmap insert");
        }
        let mut ports = bridge.ports_writer();
        let mut slots: Array<_, u32> =
            Array::try_from(bridge.ebpf.map_mut(map_names::SLOTS).unwrap()).unwrap();
        for (slot, (ifindex, Vlans(pvid, tagged))) in ifindexes.iter().zip(vlans).enumerate() {
            let mut info = PortInfo::new(PortMode::XdpNative, slot as u16);
            info.flags = PORT_F_ATTACHED;
            info.set_pvid(*pvid);
            tagged.iter().for_each(|vid| info.set_member(*vid, true));
            ports.set(*ifindex, info).expect("ports insert");
            slots.set(slot as u32, *ifindex, 0).expect("slots set");
        }
        // As the agent does once the slots cover every port: floods all ports take alike may be
        // finished at ingress (for ports that may skip the devmap program, see `watch_flushes`).
        bridge.set_info(|info| info.slot_end = ifindexes.len() as u32);
        let mut flood_bare =
            DevMapHash::try_from(bridge.ebpf.map_mut(map_names::FLOOD_BARE).unwrap()).unwrap();
        for ifindex in &ifindexes {
            flood_bare
                .insert(*ifindex, *ifindex, None, 0)
                .expect("flood_bare insert");
        }
        bridge
    }

    /// The fast path beside a Linux bridge: `vbr_accel` on every port, each forwarding, with
    /// VLAN filtering when `vlans` are given (their FDB keys then carry VIDs; without, VID 0).
    fn accelerator(vlans: Option<&[Vlans]>) -> Self {
        let mut bridge = Self::with_ports(vlans.unwrap_or(&PLAIN));
        program(&mut bridge.ebpf, PROG_ACCEL)
            .load()
            .unwrap_or_else(|error| panic!("the verifier rejects {PROG_ACCEL}: {error:?}"));
        bridge.attach_entry(PROG_ACCEL);
        for n in 0..bridge.ports.len() {
            bridge.set_port(n, |info| {
                info.policy |= POLICY_ACCEL_FORWARDING;
                if vlans.is_some() {
                    info.policy |= POLICY_ACCEL_VLAN;
                }
            });
        }
        bridge
    }

    /// Makes program `name` the one frames enter: attached natively to every port instead of
    /// the last.
    fn attach_entry(&mut self, name: &'static str) {
        for link in std::mem::take(&mut self.entry_links) {
            program(&mut self.ebpf, self.entry)
                .detach(link)
                .expect("detaching the entry program");
        }
        self.entry = name;
        for (n, veth) in self.ports.iter().enumerate() {
            let link = program(&mut self.ebpf, name)
                .attach_to_if_index(veth.port, XdpMode::Driver)
                .unwrap_or_else(|error| panic!("attaching {name} to port {n}: {error:?}"));
            self.entry_links.push(link);
        }
    }

    fn port(&self, n: usize) -> u32 {
        self.ports[n].port
    }

    /// Runs the ingress program once on `frame` arriving at port `n`; returns the verdict and
    /// the frame as the program left it.
    fn run(&self, n: usize, frame: &Frame) -> (u32, Frame) {
        let (verdict, bytes) = self.run_on(self.port(n), &frame.to_bytes());
        (
            verdict,
            Frame::parse(&bytes).expect("the program left a whole frame"),
        )
    }

    fn run_on(&self, ingress: u32, bytes: &[u8]) -> (u32, Vec<u8>) {
        let ctx = XdpMd::arriving_on(ingress, bytes.len());
        let mut out = vec![0u8; bytes.len() + 256];
        let result = entry_program(&self.ebpf, self.entry)
            .test_run(TestRunOptions {
                data_in: Some(bytes),
                data_out: Some(&mut out),
                ctx_in: Some(ctx.as_bytes()),
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    /// Sends `frame` from port `n`'s far end, so that it arrives on the port through its entry
    /// program and redirects really happen, and returns what each port's far end received of it.
    /// The frame is sent from the calling thread's CPU, where the port's NAPI then runs it.
    fn deliver(&self, n: usize, frame: &Frame) -> Vec<Vec<Frame>> {
        let captures: Vec<Capture> = self
            .ports
            .iter()
            .map(|veth| Capture::start(&self.netns, &veth.far_name, CAPTURE_TIME).expect("capture"))
            .collect();
        vbr_tests::frames::send(&self.netns, &self.ports[n].far_name, frame)
            .unwrap_or_else(|error| panic!("{error:#}"));
        captures
            .into_iter()
            .map(|capture| {
                let frames = capture.frames().expect("capture");
                frames
                    .into_iter()
                    .filter(|seen| seen.payload == frame.payload)
                    .collect()
            })
            .collect()
    }

    fn fdb(&self) -> HashMap<&MapData, FdbKey, FdbEntry> {
        HashMap::try_from(self.ebpf.map(map_names::FDB).unwrap()).unwrap()
    }

    fn fdb_entry(&self, mac: Mac, vid: u16) -> Option<FdbEntry> {
        self.fdb().get(&FdbKey::new(mac.0, vid), 0).ok()
    }

    fn add_static(&mut self, mac: Mac, vid: u16, port: usize) {
        self.add_entry(mac, vid, port, FDB_F_STATIC);
    }

    /// Mirrors a Linux bridge's entry: `mac` in `vid` behind port `n`.
    fn mirror(&mut self, mac: Mac, vid: u16, n: usize) {
        self.add_entry(mac, vid, n, FDB_F_MIRRORED);
    }

    /// Writes an entry the datapath never learned: `mac` in `vid` behind port `n`, with `flags`.
    fn add_entry(&mut self, mac: Mac, vid: u16, n: usize, flags: u32) {
        let ifindex = self.port(n);
        let mut fdb: HashMap<_, FdbKey, FdbEntry> =
            HashMap::try_from(self.ebpf.map_mut(map_names::FDB).unwrap()).unwrap();
        let entry = FdbEntry {
            ifindex,
            flags,
            last_seen_ns: 0,
            moved_ns: 0,
        };
        fdb.insert(FdbKey::new(mac.0, vid), entry, 0).unwrap();
        self.fdb_changed();
    }

    /// Makes the datapath's cached destinations stale, as every writer of the FDB does.
    fn fdb_changed(&mut self) {
        let name = map_names::FDB_GENERATION;
        Generation::new(
            Array::try_from(self.ebpf.map_mut(name).unwrap()).unwrap(),
            name,
        )
        .replace()
        .unwrap();
    }

    /// The FDB as the agent and the CLI write it, through the library.
    fn fdb_writer(&self) -> Fdb {
        datapath::fdb(&self.ebpf).unwrap()
    }

    /// The ports map as the agent and the CLI write it, through the library.
    fn ports_writer(&self) -> Ports {
        datapath::ports(&self.ebpf).unwrap()
    }

    /// Changes port `n`'s entry in the ports map.
    fn set_port(&mut self, n: usize, change: impl FnOnce(&mut PortInfo)) {
        let ifindex = self.port(n);
        let mut ports = self.ports_writer();
        let mut info = ports.get(ifindex).unwrap();
        change(&mut info);
        ports.set(ifindex, info).unwrap();
    }

    /// Changes the bridge-wide settings in the info map.
    fn set_info(&mut self, change: impl FnOnce(&mut BridgeInfo)) {
        let mut infos: Array<_, BridgeInfo> =
            Array::try_from(self.ebpf.map_mut(map_names::INFO).unwrap()).unwrap();
        let mut info = infos.get(&0, 0).unwrap();
        change(&mut info);
        infos.set(0, info, 0).unwrap();
    }

    /// Attaches `vbr_flush_watch` and lets every port's unicast skip the devmap program, as the
    /// agent does for native ports with a TC program.
    fn watch_flushes(&mut self) {
        datapath::watch_flushes(&mut self.ebpf).unwrap_or_else(|error| panic!("{error:#}"));
        for n in 0..self.ports.len() {
            self.set_port(n, |info| info.flags |= PORT_F_BARE_UNICAST);
        }
    }

    /// Frames port `n` sent, summed over CPUs.
    fn port_tx(&self, n: usize) -> u64 {
        let stats: PerCpuArray<_, Counters> =
            PerCpuArray::try_from(self.ebpf.map(map_names::PORT_STATS).unwrap()).unwrap();
        let info = self.ports_writer().get(self.port(n)).unwrap();
        stats
            .get(&u32::from(info.slot), 0)
            .unwrap()
            .iter()
            .map(|counters| counters.tx_frames)
            .sum()
    }

    /// The counters of VLAN `vid`, summed over CPUs.
    fn vlan_counters(&self, vid: u16) -> Counters {
        let stats: PerCpuArray<_, Counters> =
            PerCpuArray::try_from(self.ebpf.map(map_names::VLAN_STATS).unwrap()).unwrap();
        stats.get(&u32::from(vid), 0).unwrap().iter().sum()
    }

    /// CPU `cpu`'s `flow_cache` slots filled for frames that came in on port `n`.
    fn cached_flows(&self, cpu: usize, n: usize) -> Vec<FlowCacheSlot> {
        let cache: Array<_, FlowCacheSlot> =
            Array::try_from(self.ebpf.map(map_names::FLOW_CACHE).unwrap()).unwrap();
        (0..FLOW_CACHE_SLOTS)
            .map(|slot| cache.get(&flow_cache_index(cpu as u32, slot), 0).unwrap())
            .filter(|slot| slot.key.ingress == self.port(n))
            .collect()
    }

    /// The batch state of CPU `cpu` (`vbr_common::batch`).
    fn batch_state(&self, cpu: usize) -> u32 {
        let states: PerCpuArray<_, u32> =
            PerCpuArray::try_from(self.ebpf.map(map_names::XDP_BATCH).unwrap()).unwrap();
        states.get(&0, 0).unwrap()[cpu]
    }

    /// Frames counted under `reason`, summed over CPUs.
    fn count(&self, reason: Reason) -> u64 {
        let stats: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map(map_names::STATS).unwrap()).unwrap();
        stats.get(&(reason as u32), 0).unwrap().iter().sum()
    }
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> &'a mut Xdp {
    ebpf.program_mut(name).unwrap().try_into().unwrap()
}

fn entry_program<'a>(ebpf: &'a Ebpf, name: &str) -> &'a Xdp {
    ebpf.program(name).unwrap().try_into().unwrap()
}

fn ifindex(name: &str) -> u32 {
    vbr::netdev::ifindex(name).unwrap_or_else(|error| panic!("{error:#}"))
}

/// A probe frame (test ethertype, unique payload).
fn probe(dst: Mac, src: Mac) -> Frame {
    Frame::probe(dst, src)
}

/// Which ports received exactly one copy; panics on duplicates.
fn receivers(deliveries: &[Vec<Frame>]) -> Vec<usize> {
    deliveries
        .iter()
        .enumerate()
        .filter_map(|(port, copies)| {
            assert!(
                copies.len() <= 1,
                "port {port} received {} copies",
                copies.len()
            );
            (copies.len() == 1).then_some(port)
        })
        .collect()
}

#[test]
fn learning_writes_the_source_on_its_port() {
    let bridge = Bridge::new();
    let frame = probe(MAC_B, MAC_A);
    let (verdict, _) = bridge.run(0, &frame);
    assert_eq!(verdict, XDP_REDIRECT, "unknown unicast is flooded");
    let entry = bridge
        .fdb_entry(MAC_A, DEFAULT_VLAN)
        .expect("source learned");
    assert_eq!(entry.ifindex, bridge.port(0));
    assert!(!entry.is_static());
    assert!(entry.last_seen_ns > 0);
    assert_eq!(bridge.count(Reason::Flooded), 1);
}

#[test]
fn learning_leaves_a_fresh_unchanged_entry_alone_and_follows_a_move() {
    let bridge = Bridge::new();
    bridge.run(0, &probe(MAC_B, MAC_A));
    let first = bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap();
    bridge.run(0, &probe(MAC_B, MAC_A));
    assert_eq!(
        bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap(),
        first,
        "no rewrite within the refresh step"
    );
    bridge.run(1, &probe(MAC_B, MAC_A));
    assert_eq!(
        bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap().ifindex,
        bridge.port(1),
        "the MAC moved"
    );
}

/// A source this CPU's `fdb_cache` places on its port does not reach the FDB map (no lookup, no
/// refresh) while the slot is current; once the slot is stale, learning reads and refreshes the
/// entry again.
#[test]
fn a_cached_source_skips_the_map_until_its_slot_is_stale() {
    vbr_tests::pin_to_cpu(0).expect("pinning the test to one CPU");
    let mut bridge = Bridge::new();
    let from_a = probe(MAC_B, MAC_A);
    bridge.run(0, &from_a);
    bridge.run(0, &from_a);
    // Ages the entry behind the cache's back, as an edit with bpftool would.
    let key = FdbKey::new(MAC_A.0, DEFAULT_VLAN);
    let aged = FdbEntry {
        last_seen_ns: 0,
        ..bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap()
    };
    let mut fdb: HashMap<_, FdbKey, FdbEntry> =
        HashMap::try_from(bridge.ebpf.map_mut(map_names::FDB).unwrap()).unwrap();
    fdb.insert(key, aged, 0).unwrap();

    bridge.run(0, &from_a);
    assert_eq!(
        bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap(),
        aged,
        "the cached source was not looked up"
    );
    bridge.fdb_changed();
    bridge.run(0, &from_a);
    assert!(
        bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap().last_seen_ns > 0,
        "a stale slot: the entry is refreshed"
    );
}

/// A destination lookup caches a MAC without saying when it last sent: learning must still reach
/// the map for it, or a server that only ever answers would age out while it talks.
#[test]
fn a_source_cached_by_a_lookup_is_still_refreshed() {
    vbr_tests::pin_to_cpu(0).expect("pinning the test to one CPU");
    let mut bridge = Bridge::new();
    bridge.run(0, &probe(MAC_B, MAC_A));
    let aged = FdbEntry {
        last_seen_ns: 0,
        ..bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap()
    };
    let mut fdb: HashMap<_, FdbKey, FdbEntry> =
        HashMap::try_from(bridge.ebpf.map_mut(map_names::FDB).unwrap()).unwrap();
    fdb.insert(FdbKey::new(MAC_A.0, DEFAULT_VLAN), aged, 0)
        .unwrap();

    let (verdict, _) = bridge.run(1, &probe(MAC_A, MAC_B));
    assert_eq!(verdict, XDP_REDIRECT, "A is looked up, and cached");
    bridge.run(0, &probe(MAC_B, MAC_A));
    assert!(
        bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap().last_seen_ns > 0,
        "A's entry is refreshed"
    );
}

#[test]
fn a_static_mac_as_source_on_another_port_is_spoofed() {
    let mut bridge = Bridge::new();
    bridge.add_static(MAC_A, DEFAULT_VLAN, 2);
    let (verdict, _) = bridge.run(0, &probe(MAC_B, MAC_A));
    assert_eq!(verdict, XDP_DROP);
    assert_eq!(bridge.count(Reason::DropSpoofed), 1);
    let entry = bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap();
    assert_eq!(entry.ifindex, bridge.port(2), "a static entry never moves");
    assert!(entry.is_static());
    let (verdict, _) = bridge.run(2, &probe(MAC_B, MAC_A));
    assert_eq!(verdict, XDP_REDIRECT, "from its own port it is fine");
}

#[test]
fn a_port_without_learning_learns_nothing_but_still_forwards() {
    let mut bridge = Bridge::new();
    bridge.set_port(0, |info| info.policy &= !POLICY_LEARNING);
    let (verdict, _) = bridge.run(0, &probe(MAC_B, MAC_A));
    assert_eq!(verdict, XDP_REDIRECT);
    assert!(bridge.fdb_entry(MAC_A, DEFAULT_VLAN).is_none());
}

#[test]
fn a_flapping_mac_is_held_on_its_new_port() {
    let bridge = Bridge::new();
    bridge.run(0, &probe(MAC_B, MAC_A));
    bridge.run(1, &probe(MAC_B, MAC_A));
    assert_eq!(
        bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap().ifindex,
        bridge.port(1)
    );
    bridge.run(2, &probe(MAC_B, MAC_A));
    let entry = bridge.fdb_entry(MAC_A, DEFAULT_VLAN).unwrap();
    assert_eq!(
        entry.ifindex,
        bridge.port(1),
        "moved twice within a second: held"
    );
    assert_ne!(entry.moved_ns, 0);
}

#[test]
fn learned_macs_stop_at_the_port_and_bridge_limits() {
    let mut bridge = Bridge::new();
    bridge.set_port(0, |info| info.max_learned = 2);
    let sources = [1u8, 2, 3].map(|n| Mac([0x02, 0, 0, 0, 0x11, n]));
    for source in sources {
        let (verdict, _) = bridge.run(0, &probe(MAC_B, source));
        assert_eq!(
            verdict, XDP_REDIRECT,
            "frames beyond the limit are still forwarded"
        );
    }
    assert_eq!(bridge.fdb().keys().count(), 2, "port limit");
    bridge.set_info(|info| info.max_learned = 3);
    for n in [4u8, 5] {
        bridge.run(1, &probe(MAC_B, Mac([0x02, 0, 0, 0, 0x22, n])));
    }
    assert_eq!(bridge.fdb().keys().count(), 3, "bridge limit");
}

#[test]
fn link_local_frames_follow_the_bridge_policy() {
    let mut bridge = Bridge::new();
    let lldp = Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]);
    let (verdict, _) = bridge.run(0, &probe(lldp, MAC_A));
    assert_eq!(verdict, XDP_DROP, "dropped by default");
    assert_eq!(bridge.count(Reason::DropLinkLocal), 1);
    bridge.set_info(|info| info.link_local = LinkLocal::Host as u32);
    assert_eq!(bridge.run(0, &probe(lldp, MAC_A)).0, XDP_PASS);
    bridge.set_info(|info| info.link_local = LinkLocal::Forward as u32);
    assert_eq!(bridge.run(0, &probe(lldp, MAC_A)).0, XDP_REDIRECT);
    let beyond = Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x10]);
    bridge.set_info(|info| info.link_local = LinkLocal::Drop as u32);
    assert_eq!(
        bridge.run(0, &probe(beyond, MAC_A)).0,
        XDP_REDIRECT,
        "not link-local"
    );
}

#[test]
fn storm_control_caps_the_floods_of_a_port() {
    let mut bridge = Bridge::new();
    bridge.set_port(0, |info| info.flood_rate = 5);
    let verdicts: Vec<u32> = (0..10)
        .map(|_| bridge.run(0, &probe(Mac::BROADCAST, MAC_A)).0)
        .collect();
    let flooded = verdicts.iter().filter(|v| **v == XDP_REDIRECT).count();
    assert!((5..=6).contains(&flooded), "{verdicts:?}");
    assert_eq!(bridge.count(Reason::DropStorm) as usize, 10 - flooded);
    let (verdict, _) = bridge.run(1, &probe(Mac::BROADCAST, MAC_B));
    assert_eq!(verdict, XDP_REDIRECT, "other ports are not limited");
}

#[test]
fn isolated_ports_only_reach_non_isolated_ones() {
    let mut bridge = Bridge::new();
    bridge.set_port(0, |info| info.policy |= POLICY_ISOLATED);
    bridge.set_port(1, |info| info.policy |= POLICY_ISOLATED);
    bridge.run(1, &probe(MAC_A, MAC_B));
    bridge.run(2, &probe(MAC_A, MAC_C));
    assert_eq!(bridge.run(0, &probe(MAC_B, MAC_A)).0, XDP_DROP);
    assert_eq!(bridge.count(Reason::DropIsolated), 1);
    assert_eq!(bridge.run(0, &probe(MAC_C, MAC_A)).0, XDP_REDIRECT);
    let broadcast = probe(Mac::BROADCAST, MAC_A);
    assert_eq!(receivers(&bridge.deliver(0, &broadcast)), vec![2]);
}

#[test]
fn hairpin_lets_frames_leave_by_their_ingress_port() {
    let mut bridge = Bridge::new();
    bridge.set_port(0, |info| info.policy |= POLICY_HAIRPIN);
    bridge.run(0, &probe(MAC_A, MAC_B));
    let frame = probe(MAC_B, MAC_A);
    assert_eq!(bridge.run(0, &frame).0, XDP_REDIRECT);
    assert_eq!(receivers(&bridge.deliver(0, &frame)), vec![0]);
    let broadcast = probe(Mac::BROADCAST, MAC_C);
    assert_eq!(receivers(&bridge.deliver(0, &broadcast)), vec![0, 1, 2]);
}

#[test]
fn flood_flags_choose_which_floods_a_port_takes() {
    let mut bridge = Bridge::new();
    bridge.set_port(2, |info| info.policy &= !POLICY_BCAST_FLOOD);
    bridge.set_port(1, |info| info.policy &= !POLICY_FLOOD);
    let broadcast = probe(Mac::BROADCAST, MAC_A);
    assert_eq!(receivers(&bridge.deliver(0, &broadcast)), vec![1]);
    let unknown = probe(MAC_C, MAC_A);
    assert_eq!(receivers(&bridge.deliver(0, &unknown)), vec![2]);
    let multicast = probe(Mac([0x01, 0x00, 0x5e, 0, 0, 9]), MAC_A);
    assert_eq!(receivers(&bridge.deliver(0, &multicast)), vec![1, 2]);
}

#[test]
fn invalid_sources_are_dropped_and_never_learned() {
    let bridge = Bridge::new();
    let multicast = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
    for source in [multicast, Mac::BROADCAST, Mac([0; 6])] {
        let (verdict, _) = bridge.run(0, &probe(MAC_B, source));
        assert_eq!(verdict, XDP_DROP, "source {source}");
    }
    assert_eq!(bridge.count(Reason::DropInvalidSource), 3);
    assert_eq!(bridge.fdb().keys().count(), 0, "nothing learned");
}

#[test]
fn destination_on_the_ingress_port_is_dropped() {
    let bridge = Bridge::new();
    bridge.run(0, &probe(MAC_B, MAC_A));
    let (verdict, _) = bridge.run(0, &probe(MAC_A, MAC_C));
    assert_eq!(verdict, XDP_DROP);
    assert_eq!(bridge.count(Reason::DropSamePort), 1);
}

#[test]
fn frames_on_foreign_interfaces_pass_to_the_stack() {
    let bridge = Bridge::new();
    let (verdict, _) = bridge.run_on(bridge.ports[0].far, &probe(MAC_B, MAC_A).to_bytes());
    assert_eq!(verdict, XDP_PASS);
    assert!(bridge.fdb_entry(MAC_A, DEFAULT_VLAN).is_none());
    assert_eq!(bridge.count(Reason::PassNotPort), 1);
}

#[test]
fn known_unicast_goes_to_its_port_only() {
    let bridge = Bridge::new();
    // B speaks from port 1, so the bridge learns where B lives.
    bridge.run(1, &probe(MAC_A, MAC_B));
    let frame = probe(MAC_B, MAC_A);
    let (verdict, out) = bridge.run(0, &frame);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(
        out, frame,
        "an untagged frame between access ports of one VLAN is unchanged"
    );
    assert_eq!(bridge.count(Reason::Forwarded), 1);
    let delivered = bridge.deliver(0, &frame);
    assert_eq!(
        receivers(&delivered),
        vec![1],
        "only {}'s side receives it",
        bridge.ports[1].far_name
    );
    assert_eq!(delivered[1][0], frame);
}

#[test]
fn broadcast_and_unknown_unicast_flood_to_every_other_port() {
    let bridge = Bridge::new();
    for destination in [Mac::BROADCAST, MAC_C] {
        let frame = probe(destination, MAC_A);
        let delivered = bridge.deliver(0, &frame);
        assert_eq!(
            receivers(&delivered),
            vec![1, 2],
            "to {destination}: never back to the sender"
        );
        assert!(
            delivered[1..].iter().all(|copies| copies[0] == frame),
            "copies leave untagged"
        );
    }
    assert_eq!(bridge.count(Reason::Flooded), 2);
}

/// Destinations are cached per CPU (`fdb_cache`): a move the datapath learns and a deletion the
/// agent or the CLI writes both make the cached destination stale at once.
#[test]
fn cached_destinations_follow_moves_and_deletions() {
    const CPU: usize = 0;
    vbr_tests::pin_to_cpu(CPU).expect("pinning the test to one CPU");
    let bridge = Bridge::new();
    let to_b = probe(MAC_B, MAC_A);
    let cached_b = || {
        let key = FdbKey::new(MAC_B.0, DEFAULT_VLAN);
        let cache: PerCpuArray<_, FdbCacheSlot> =
            PerCpuArray::try_from(bridge.ebpf.map(map_names::FDB_CACHE).unwrap()).unwrap();
        let slot = cache.get(&key.cache_slot(), 0).unwrap()[CPU];
        (slot.key == key).then_some(slot.ifindex)
    };

    bridge.deliver(1, &probe(MAC_A, MAC_B));
    assert_eq!(receivers(&bridge.deliver(0, &to_b)), vec![1]);
    assert_eq!(
        cached_b(),
        Some(bridge.port(1)),
        "the lookup filled the cache"
    );
    assert_eq!(receivers(&bridge.deliver(0, &to_b)), vec![1]);

    bridge.deliver(2, &probe(MAC_A, MAC_B));
    assert_eq!(
        receivers(&bridge.deliver(0, &to_b)),
        vec![2],
        "B moved to port 2"
    );
    assert_eq!(cached_b(), Some(bridge.port(2)));

    bridge
        .fdb_writer()
        .delete(&FdbKey::new(MAC_B.0, DEFAULT_VLAN))
        .expect("deleting B");
    assert_eq!(
        receivers(&bridge.deliver(0, &to_b)),
        vec![1, 2],
        "B is unknown again: flooded"
    );
}

/// The frames of a known unicast flow, once its source is settled, are sent as its first was
/// (`flow_cache`) without the FDB: a move made behind every cache's back goes unseen until the
/// FDB's generation changes. Counters count them as ever.
#[test]
fn known_unicast_flows_are_sent_from_the_flow_cache_until_the_fdb_changes() {
    const CPU: usize = 0;
    vbr_tests::pin_to_cpu(CPU).expect("pinning the test to one CPU");
    let mut bridge = Bridge::new();
    let to_b = probe(MAC_B, MAC_A);
    bridge.deliver(1, &probe(MAC_A, MAC_B));
    // The first frame learns A (not settled yet); the second is the flow's first cached one.
    assert_eq!(receivers(&bridge.deliver(0, &to_b)), vec![1]);
    assert_eq!(receivers(&bridge.deliver(0, &to_b)), vec![1]);

    // B "moves" to port 2 in the map alone, and this CPU forgets B's cached destination.
    let key = FdbKey::new(MAC_B.0, DEFAULT_VLAN);
    let moved = FdbEntry {
        ifindex: bridge.port(2),
        ..bridge.fdb_entry(MAC_B, DEFAULT_VLAN).unwrap()
    };
    let mut fdb: HashMap<_, FdbKey, FdbEntry> =
        HashMap::try_from(bridge.ebpf.map_mut(map_names::FDB).unwrap()).unwrap();
    fdb.insert(key, moved, 0).unwrap();
    let mut cache: PerCpuArray<_, FdbCacheSlot> =
        PerCpuArray::try_from(bridge.ebpf.map_mut(map_names::FDB_CACHE).unwrap()).unwrap();
    let nr_cpus = aya::util::nr_cpus().unwrap();
    let empty = FdbCacheSlot {
        key: FdbKey::new([0; 6], 0),
        ifindex: 0,
        flags: 0,
        stamp: CacheStamp {
            generation: 0,
            filled_ns: 0,
        },
    };
    let forgotten = PerCpuValues::try_from(vec![empty; nr_cpus]).unwrap();
    cache.set(key.cache_slot(), forgotten, 0).unwrap();

    let sent = bridge.port_tx(1);
    assert_eq!(
        receivers(&bridge.deliver(0, &to_b)),
        vec![1],
        "the flow cache sends it where B was"
    );
    assert_eq!(
        bridge.port_tx(1),
        sent + 1,
        "counted on the port it left by"
    );
    bridge.fdb_changed();
    assert_eq!(
        receivers(&bridge.deliver(0, &to_b)),
        vec![2],
        "a new FDB generation: the move is seen"
    );
}

/// Frames are counted per VLAN only on a bridge that asks for it (`vlan_stats`: the agent sets
/// `PORT_F_VLAN_STATS` on every port), on the full path and from the flow cache alike; ports count
/// either way.
#[test]
fn vlans_are_counted_only_where_the_bridge_asks() {
    const CPU: usize = 0;
    vbr_tests::pin_to_cpu(CPU).expect("pinning the test to one CPU");
    let mut bridge = Bridge::new();
    let to_b = probe(MAC_B, MAC_A);
    bridge.deliver(1, &probe(MAC_A, MAC_B));
    bridge.deliver(0, &to_b);
    // Both MACs learned: the first frame goes the full path and fills the flow's slot, the
    // second is sent from it.
    let unicast_twice = |bridge: &Bridge, vlan_stats: u8| {
        for _ in 0..2 {
            assert_eq!(receivers(&bridge.deliver(0, &to_b)), vec![1]);
        }
        let cached = bridge.cached_flows(CPU, 0);
        assert!(
            cached
                .iter()
                .any(|slot| slot.egress == bridge.port(1) && slot.vlan_stats == vlan_stats),
            "the flow is cached with vlan_stats {vlan_stats}: {cached:?}"
        );
    };
    let before = (bridge.port_tx(1), bridge.vlan_counters(DEFAULT_VLAN));
    unicast_twice(&bridge, 0);
    assert_eq!(bridge.port_tx(1), before.0 + 2, "ports count either way");
    assert_eq!(
        bridge.vlan_counters(DEFAULT_VLAN),
        before.1,
        "no VLAN counted unless asked for"
    );

    for n in 0..bridge.ports.len() {
        bridge.set_port(n, |info| info.flags |= PORT_F_VLAN_STATS);
    }
    let before = bridge.vlan_counters(DEFAULT_VLAN);
    unicast_twice(&bridge, 1);
    let counted = bridge.vlan_counters(DEFAULT_VLAN);
    assert_eq!(
        (
            counted.rx_frames - before.rx_frames,
            counted.tx_frames - before.tx_frames
        ),
        (2, 2),
        "both frames counted in and out of the VLAN"
    );
}

/// `flow_cache` is one array with a region per CPU: a flow sent on the last online CPU is cached
/// in that CPU's region and in no other (with one CPU, there is no other region to look at).
#[test]
fn flows_are_cached_in_the_region_of_the_cpu_that_sent_them() {
    let online = aya::util::online_cpus().expect("reading the online CPUs");
    let cpu = *online.last().expect("some CPU is online") as usize;
    vbr_tests::pin_to_cpu(cpu).expect("pinning the test to the last online CPU");
    let bridge = Bridge::new();
    let to_b = probe(MAC_B, MAC_A);
    bridge.deliver(1, &probe(MAC_A, MAC_B));
    bridge.deliver(0, &to_b);
    assert_eq!(receivers(&bridge.deliver(0, &to_b)), vec![1]);
    let nr_cpus = aya::util::nr_cpus().expect("counting the possible CPUs");
    for region in 0..nr_cpus {
        let holds_flow = bridge
            .cached_flows(region, 0)
            .iter()
            .any(|slot| slot.egress == bridge.port(1));
        assert_eq!(
            holds_flow,
            region == cpu,
            "CPU {region}'s region holding the flow sent on CPU {cpu}"
        );
    }
}

/// Ports are copied per CPU (`port_cache`): a frame reads the copy while `port_generation` is
/// unchanged, and every change through the library (the agent, the CLI) replaces it at once.
#[test]
fn cached_ports_follow_every_change_through_the_library() {
    vbr_tests::pin_to_cpu(0).expect("pinning the test to one CPU");
    let mut bridge = Bridge::new();
    bridge.add_static(MAC_B, DEFAULT_VLAN, 1);
    let to_b = probe(MAC_B, MAC_A);
    assert_eq!(bridge.run(0, &to_b).0, XDP_REDIRECT);

    // Takes port 1 out of the VLAN behind the cache's back, as an edit with bpftool would.
    let target = bridge.port(1);
    let mut left = bridge.ports_writer().get(target).unwrap();
    left.set_member(DEFAULT_VLAN, false);
    let mut ports: HashMap<_, u32, PortInfo> =
        HashMap::try_from(bridge.ebpf.map_mut(map_names::PORTS).unwrap()).unwrap();
    ports.insert(target, left, 0).unwrap();
    assert_eq!(
        bridge.run(0, &to_b).0,
        XDP_REDIRECT,
        "the frame read the copy"
    );

    bridge.ports_writer().set(target, left).unwrap();
    assert_eq!(
        bridge.run(0, &to_b).0,
        XDP_DROP,
        "the library's write made the copy stale"
    );
    assert_eq!(bridge.count(Reason::DropVlanEgress), 1);
    bridge.set_port(1, |info| info.set_member(DEFAULT_VLAN, true));
    assert_eq!(bridge.run(0, &to_b).0, XDP_REDIRECT);
    bridge.set_port(0, |info| info.set_pvid(PVID_NONE));
    assert_eq!(bridge.run(0, &to_b).0, XDP_DROP);
    assert_eq!(
        bridge.count(Reason::DropVlanIngress),
        1,
        "the ingress port's copy follows too"
    );
}

/// Within one flush a CPU sends unicast without the devmap program or floods through it, never
/// both (`vbr_common::batch`). Plain test runs queue and flush nothing, so the state they leave
/// shows each decision; a live run's frames reach the far ends through their NAPI polls on this
/// CPU, after which `vbr_flush_watch` starts a new batch.
/// Port 2 takes VLAN 1 tagged, the others untagged: floods need each port's devmap program.
const MIXED_TAGGING: [Vlans; 3] = [Vlans(1, &[]), Vlans(1, &[]), Vlans(PVID_NONE, &[1])];

#[test]
fn unicast_without_the_devmap_program_and_floods_never_share_a_flush() {
    const CPU: usize = 0;
    vbr_tests::pin_to_cpu(CPU).expect("pinning the test to one CPU");
    let mut bridge = Bridge::with_ports(&MIXED_TAGGING);
    bridge.watch_flushes();
    bridge.add_static(MAC_B, DEFAULT_VLAN, 1);
    let unicast = probe(MAC_B, MAC_A);
    let broadcast = probe(Mac::BROADCAST, MAC_A);
    let copies = |delivered: &[Vec<Frame>]| {
        assert_eq!(receivers(delivered), vec![1, 2]);
        assert_eq!(delivered[1][0], broadcast, "untagged in its PVID");
        assert_eq!(
            delivered[2][0],
            broadcast.clone().with_tci(tci(0, 0, 1)),
            "tagged on the trunk"
        );
    };

    let delivered = bridge.deliver(0, &unicast);
    assert_eq!(receivers(&delivered), vec![1]);
    assert_eq!(delivered[1][0], unicast, "arrives as it was sent");
    assert_eq!(bridge.batch_state(CPU), BATCH_CLEAN, "the flush ended it");

    assert_eq!(bridge.run(0, &unicast).0, XDP_REDIRECT);
    assert_eq!(bridge.batch_state(CPU), BATCH_BARE_UNICAST);
    assert_eq!(
        bridge.run(0, &broadcast).0,
        XDP_PASS,
        "a flood that needs the devmap program, after program-less unicast, takes the skb path"
    );
    assert_eq!(bridge.count(Reason::PassToSkb), 1);
    assert_eq!(bridge.batch_state(CPU), BATCH_BARE_UNICAST);
    bridge.deliver(0, &unicast);
    assert_eq!(
        bridge.batch_state(CPU),
        BATCH_CLEAN,
        "the poll ended the batch"
    );

    copies(&bridge.deliver(0, &broadcast));
    assert_eq!(
        bridge.batch_state(CPU),
        BATCH_CLEAN,
        "a new batch floods in XDP"
    );

    assert_eq!(bridge.run(0, &broadcast).0, XDP_REDIRECT);
    assert_eq!(bridge.batch_state(CPU), BATCH_FLOODED);
    assert_eq!(bridge.run(0, &unicast).0, XDP_REDIRECT);
    assert_eq!(
        bridge.batch_state(CPU),
        BATCH_FLOODED,
        "unicast after a flood keeps the devmap program"
    );
    assert_eq!(bridge.count(Reason::PassToSkb), 1);
}

/// A flood every other port takes alike leaves finished from ingress, through the
/// program-less `flood_bare` devmap, like unicast without the program; each port still counts
/// its copy. Where one port would treat its copy otherwise, each copy takes its port's program.
#[test]
fn floods_every_port_takes_alike_leave_finished_from_ingress() {
    const CPU: usize = 0;
    vbr_tests::pin_to_cpu(CPU).expect("pinning the test to one CPU");
    // All three in VLAN 10 untagged; the frames come in tagged on port 0, a member too.
    let mut bridge = Bridge::with_ports(&[Vlans(10, &[]), Vlans(10, &[]), Vlans(10, &[])]);
    bridge.watch_flushes();
    let untagged = probe(Mac::BROADCAST, MAC_A);
    let tagged = untagged.clone().with_tci(tci(5, 0, 10));
    bridge.deliver(0, &probe(MAC_C, MAC_B)); // a poll: the batch starts clean

    let (verdict, out) = bridge.run(0, &tagged);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out, untagged, "popped at ingress, no flood mark");
    assert_eq!(
        bridge.batch_state(CPU),
        BATCH_BARE_UNICAST,
        "finished frames left without the devmap program"
    );
    let tx_before = [1, 2].map(|n| bridge.port_tx(n));
    let delivered = bridge.deliver(0, &tagged);
    assert_eq!(receivers(&delivered), vec![1, 2]);
    assert!(delivered[1..].iter().all(|copies| copies[0] == untagged));
    assert_eq!(
        [1, 2].map(|n| bridge.port_tx(n) - tx_before[n - 1]),
        [1, 1],
        "each copy counted on its port"
    );

    // Port 2 stops taking broadcasts: its copy would be dropped, so floods are marked again.
    bridge.set_port(2, |info| info.policy &= !POLICY_BCAST_FLOOD);
    bridge.deliver(0, &probe(MAC_C, MAC_B));
    let (verdict, out) = bridge.run(0, &tagged);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_ne!(out, untagged, "marked for the ports' devmap programs");
    assert_eq!(bridge.batch_state(CPU), BATCH_FLOODED);
    let delivered = bridge.deliver(0, &tagged);
    assert_eq!(receivers(&delivered), vec![1]);
    assert_eq!(delivered[1][0], untagged);
}

#[test]
fn access_to_trunk_pushes_the_tag() {
    let bridge = Bridge::with_ports(&VLAN_LAB);
    bridge.run(TRUNK, &probe(MAC_A, MAC_B).with_tci(tci(0, 0, 10)));
    let frame = probe(MAC_B, MAC_A);
    let (verdict, out) = bridge.run(ACCESS10_A, &frame);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out, frame.with_tci(tci(0, 0, 10)));
}

#[test]
fn trunk_to_access_pops_the_tag() {
    let bridge = Bridge::with_ports(&VLAN_LAB);
    bridge.run(ACCESS20, &probe(MAC_A, MAC_B));
    let frame = probe(MAC_B, MAC_A);
    let (verdict, out) = bridge.run(TRUNK, &frame.clone().with_tci(tci(5, 1, 20)));
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out, frame);
    let delivered = bridge.deliver(TRUNK, &frame.clone().with_tci(tci(5, 1, 20)));
    assert_eq!(receivers(&delivered), vec![ACCESS20]);
    assert_eq!(delivered[ACCESS20][0], frame, "arrives untagged");
}

#[test]
fn trunk_to_trunk_keeps_the_tag_with_pcp_and_dei() {
    let bridge = Bridge::with_ports(&[Vlans(PVID_NONE, &[20, 30]), Vlans(PVID_NONE, &[20])]);
    bridge.run(1, &probe(MAC_A, MAC_B).with_tci(tci(0, 0, 20)));
    let frame = probe(MAC_B, MAC_A).with_tci(tci(5, 1, 20));
    let (verdict, out) = bridge.run(0, &frame);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out, frame);
    let delivered = bridge.deliver(0, &frame);
    assert_eq!(receivers(&delivered), vec![1]);
    assert_eq!(delivered[1][0], frame, "PCP and DEI survive end to end");
}

#[test]
fn tagged_frames_of_a_foreign_vlan_are_dropped_and_not_learned() {
    let bridge = Bridge::with_ports(&VLAN_LAB);
    for (port, vid) in [(TRUNK, 30), (ACCESS10_A, 20), (ACCESS10_A, 4095)] {
        let (verdict, _) = bridge.run(port, &probe(MAC_B, MAC_A).with_tci(tci(0, 0, vid)));
        assert_eq!(verdict, XDP_DROP, "VLAN {vid} on port {port}");
    }
    assert_eq!(bridge.count(Reason::DropVlanIngress), 3);
    assert_eq!(
        bridge.fdb().keys().count(),
        0,
        "learning happens only after ingress filtering"
    );
}

#[test]
fn untagged_frames_are_dropped_on_a_port_without_pvid() {
    let bridge = Bridge::with_ports(&VLAN_LAB);
    let (verdict, _) = bridge.run(TRUNK, &probe(MAC_B, MAC_A));
    assert_eq!(verdict, XDP_DROP);
    let (verdict, _) = bridge.run(TRUNK, &probe(MAC_B, MAC_A).with_tci(tci(3, 0, 0)));
    assert_eq!(verdict, XDP_DROP, "priority-tagged counts as untagged");
    assert_eq!(bridge.count(Reason::DropVlanIngress), 2);
}

#[test]
fn priority_tagged_frames_join_the_pvid_and_keep_their_pcp() {
    let bridge = Bridge::with_ports(&VLAN_LAB);
    bridge.run(TRUNK, &probe(MAC_A, MAC_B).with_tci(tci(0, 0, 10)));
    bridge.run(ACCESS10_B, &probe(MAC_A, MAC_C));
    let to_trunk = probe(MAC_B, MAC_A).with_tci(tci(6, 0, 0));
    let (verdict, out) = bridge.run(ACCESS10_A, &to_trunk);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out, to_trunk.with_tci(tci(6, 0, 10)), "VID set, PCP kept");
    assert_eq!(
        bridge.fdb_entry(MAC_A, 10).unwrap().ifindex,
        bridge.port(ACCESS10_A)
    );
    let to_access = probe(MAC_C, MAC_A).with_tci(tci(6, 0, 0));
    let (verdict, out) = bridge.run(ACCESS10_A, &to_access);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(
        out,
        Frame {
            vlan_tci: None,
            ..to_access
        },
        "leaves the PVID port untagged"
    );
}

#[test]
fn an_8021ad_frame_joins_the_pvid_with_its_s_tag_intact() {
    let bridge = Bridge::with_ports(&VLAN_LAB);
    bridge.run(TRUNK, &probe(MAC_A, MAC_B).with_tci(tci(0, 0, 10)));
    bridge.run(ACCESS10_B, &probe(MAC_A, MAC_C));
    let inner = probe(MAC_B, MAC_A);
    let mut payload = tci(0, 0, 300).to_be_bytes().to_vec();
    payload.extend_from_slice(&inner.ethertype.to_be_bytes());
    payload.extend_from_slice(&inner.payload);
    let qinq = Frame {
        ethertype: ETH_P_8021AD,
        payload,
        ..inner
    };
    let (verdict, out) = bridge.run(ACCESS10_A, &qinq);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(
        out,
        qinq.clone().with_tci(tci(0, 0, 10)),
        "C-tag pushed outside the S-tag"
    );
    let to_access = Frame { dst: MAC_C, ..qinq };
    let (verdict, out) = bridge.run(ACCESS10_A, &to_access);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out, to_access, "unchanged between access ports of the PVID");
}

#[test]
fn unicast_to_a_port_outside_the_vlan_is_dropped() {
    let mut bridge = Bridge::with_ports(&VLAN_LAB);
    bridge.add_static(MAC_B, 10, ACCESS20);
    let (verdict, _) = bridge.run(ACCESS10_A, &probe(MAC_B, MAC_A));
    assert_eq!(verdict, XDP_DROP);
    assert_eq!(bridge.count(Reason::DropVlanEgress), 1);
}

#[test]
fn one_mac_learned_in_two_vlans_is_two_entries() {
    let bridge = Bridge::with_ports(&VLAN_LAB);
    bridge.run(ACCESS10_A, &probe(MAC_B, MAC_A));
    bridge.run(TRUNK, &probe(MAC_B, MAC_A).with_tci(tci(0, 0, 20)));
    assert_eq!(
        bridge.fdb_entry(MAC_A, 10).unwrap().ifindex,
        bridge.port(ACCESS10_A)
    );
    assert_eq!(
        bridge.fdb_entry(MAC_A, 20).unwrap().ifindex,
        bridge.port(TRUNK)
    );
    assert_eq!(bridge.fdb().keys().count(), 2);
}

#[test]
fn floods_stay_inside_their_vlan_tagged_per_port() {
    let bridge = Bridge::with_ports(&VLAN_LAB);
    let frame = probe(Mac::BROADCAST, MAC_A);
    let delivered = bridge.deliver(ACCESS10_A, &frame);
    assert_eq!(
        receivers(&delivered),
        vec![ACCESS10_B, TRUNK],
        "never to VLAN 20, never back"
    );
    assert_eq!(
        delivered[ACCESS10_B][0], frame,
        "untagged on the other access port"
    );
    assert_eq!(
        delivered[TRUNK][0],
        frame.with_tci(tci(0, 0, 10)),
        "tagged 10 on the trunk"
    );

    let from_trunk = probe(MAC_C, MAC_B).with_tci(tci(4, 0, 20));
    let delivered = bridge.deliver(TRUNK, &from_trunk);
    assert_eq!(
        receivers(&delivered),
        vec![ACCESS20],
        "unknown unicast in VLAN 20"
    );
    assert_eq!(
        delivered[ACCESS20][0],
        Frame {
            vlan_tci: None,
            ..from_trunk
        }
    );
}

#[test]
fn frames_for_a_stack_listening_on_their_port_go_up_it() {
    let mut bridge = Bridge::new();
    bridge.add_entry(MAC_C, DEFAULT_VLAN, 0, FDB_F_STATIC | FDB_F_LOCAL);
    let (verdict, _) = bridge.run(0, &probe(MAC_C, MAC_A));
    assert_eq!(
        verdict, XDP_PASS,
        "a macvlan of port 0 gets it from port 0's stack"
    );
    assert_eq!(bridge.count(Reason::PassToStack), 1);
    let (verdict, _) = bridge.run(1, &probe(MAC_C, MAC_B));
    assert_eq!(
        verdict, XDP_REDIRECT,
        "from elsewhere it goes out of port 0"
    );
    bridge.set_port(0, |info| info.policy |= POLICY_LOCAL_STACK);
    let (verdict, _) = bridge.run(0, &probe(Mac::BROADCAST, MAC_A));
    assert_eq!(
        verdict, XDP_PASS,
        "floods take the skb path, which also passes them up"
    );
    assert_eq!(bridge.count(Reason::PassToSkb), 1);
}

// The fast path beside a Linux bridge (`vbr_accel`).

#[test]
fn the_accelerator_redirects_known_unicast_and_stamps_its_source() {
    let mut bridge = Bridge::accelerator(None);
    bridge.mirror(MAC_A, 0, 0);
    bridge.mirror(MAC_B, 0, 1);
    let frame = probe(MAC_B, MAC_A).with_tci(tci(3, 0, 42));
    let (verdict, out) = bridge.run(0, &frame);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(
        out, frame,
        "without VLAN filtering a tag is payload, kept as it is"
    );
    assert_eq!(bridge.count(Reason::Forwarded), 1);
    assert_ne!(
        bridge.fdb_entry(MAC_A, 0).unwrap().last_seen_ns,
        0,
        "source stamped"
    );
    assert_eq!(bridge.fdb_entry(MAC_B, 0).unwrap().last_seen_ns, 0);
    assert_eq!(receivers(&bridge.deliver(0, &frame)), vec![1]);
}

#[test]
fn the_accelerator_leaves_everything_else_to_the_kernel_bridge_untouched() {
    let mut bridge = Bridge::accelerator(None);
    bridge.mirror(MAC_A, 0, 0);
    bridge.mirror(MAC_B, 0, 1);
    bridge.mirror(MAC_C, 0, 2);
    let unknown = Mac([0x02, 0, 0, 0, 0xee, 0x09]);
    let passed = [
        probe(Mac::BROADCAST, MAC_A),
        probe(Mac([0x01, 0x00, 0x5e, 0, 0, 0xfb]), MAC_A),
        probe(unknown, MAC_A),
        // An unknown source is the kernel's to learn.
        probe(MAC_B, unknown),
        // Hairpin is the kernel's call.
        probe(MAC_A, MAC_A),
    ];
    for frame in &passed {
        let (verdict, out) = bridge.run(0, frame);
        assert_eq!((verdict, &out), (XDP_PASS, frame), "{frame:?}");
    }
    assert_eq!(bridge.count(Reason::PassToBridge), passed.len() as u64);

    // Ports the kernel does not forward on, and isolated pairs, stay on the kernel's path.
    bridge.set_port(2, |info| info.policy &= !POLICY_ACCEL_FORWARDING);
    assert_eq!(bridge.run(0, &probe(MAC_C, MAC_A)).0, XDP_PASS);
    assert_eq!(bridge.run(2, &probe(MAC_A, MAC_C)).0, XDP_PASS);
    bridge.set_port(0, |info| info.policy |= POLICY_ISOLATED);
    bridge.set_port(1, |info| info.policy |= POLICY_ISOLATED);
    assert_eq!(bridge.run(0, &probe(MAC_B, MAC_A)).0, XDP_PASS);
    assert_eq!(bridge.count(Reason::Forwarded), 0);
}

#[test]
fn a_source_seen_on_another_port_drops_its_mirror_until_the_kernel_relearns_it() {
    let mut bridge = Bridge::accelerator(None);
    bridge.mirror(MAC_A, 0, 0);
    bridge.mirror(MAC_B, 0, 1);
    // A moved to port 2: its frames go to the kernel, and frames for it too until the agent
    // mirrors where the kernel learned it.
    assert_eq!(bridge.run(2, &probe(MAC_B, MAC_A)).0, XDP_PASS);
    assert_eq!(bridge.fdb_entry(MAC_A, 0), None);
    assert_eq!(bridge.run(1, &probe(MAC_A, MAC_B)).0, XDP_PASS);
}

#[test]
fn with_vlan_filtering_the_accelerator_tags_as_the_kernel_bridge() {
    let mut bridge = Bridge::accelerator(Some(&VLAN_LAB));
    bridge.mirror(MAC_A, 10, ACCESS10_A);
    bridge.mirror(MAC_B, 10, TRUNK);
    bridge.mirror(MAC_C, 20, ACCESS20);
    let untagged = probe(MAC_B, MAC_A);
    let (verdict, out) = bridge.run(ACCESS10_A, &untagged);
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(
        out,
        untagged.clone().with_tci(tci(0, 0, 10)),
        "pushed for the trunk"
    );
    let frame = probe(MAC_A, MAC_B);
    let (verdict, out) = bridge.run(TRUNK, &frame.clone().with_tci(tci(5, 1, 10)));
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out, frame, "popped for the access port");
    // VLAN 20 does not reach VLAN 10's port; a foreign VLAN is the kernel's to drop.
    bridge.mirror(MAC_C, 10, ACCESS20);
    assert_eq!(bridge.run(ACCESS10_A, &probe(MAC_C, MAC_A)).0, XDP_PASS);
    let foreign = probe(MAC_A, MAC_B).with_tci(tci(0, 0, 30));
    assert_eq!(bridge.run(TRUNK, &foreign), (XDP_PASS, foreign));
}
