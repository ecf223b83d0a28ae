//! Datapath tests: the real XDP program, loaded into this kernel and fed frames through
//! BPF_PROG_TEST_RUN. Verdicts, FDB effects and counters come from plain test runs; where a frame
//! goes comes from live-frames test runs (Linux ≥ 5.18), which really transmit it, caught on the
//! far ends of veth ports.
//!
//! Each test moves its thread into a fresh, anonymous network namespace (`unshare`), so the veths
//! it creates vanish with the thread, on success, failure or panic alike.
use std::{
    io,
    mem::{self, MaybeUninit},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    process::Command,
    time::{Duration, Instant},
};

use aya::{
    Ebpf, TestRun as _, TestRunAttrs, TestRunOptions,
    maps::{DevMapHash, HashMap, MapData, PerCpuArray},
    programs::Xdp,
};
use vbr_common::{
    DEFAULT_VLAN, PROG_INGRESS,
    fdb::{FDB_F_STATIC, FdbEntry, FdbKey},
    map_names,
    port::{PORT_F_ATTACHED, PortInfo, PortMode},
    stats::Reason,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

/// IEEE local experimental ethertype: no stack on the far ends answers or emits it.
const ETHERTYPE_TEST: u16 = 0x88b5;

const BROADCAST: [u8; 6] = [0xff; 6];
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x02];
const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0xcc, 0x03];

/// `struct xdp_md` as BPF_PROG_TEST_RUN takes it for a context.
#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// One veth pair: `port` is the switch side, `far` is where a host would sit.
struct Veth {
    port: u32,
    far: u32,
    far_name: String,
}

/// The datapath loaded with three veth ports in this thread's own network namespace.
struct Bridge {
    ebpf: Ebpf,
    ports: [Veth; 3],
}

impl Bridge {
    fn new() -> Self {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "datapath tests load eBPF programs and need root: run them with `cargo xtask test`"
        );
        // SAFETY: affects only this test's thread, which ends with the test.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            io::Error::last_os_error()
        );
        let ports = [1, 2, 3].map(|i| {
            let (port, far) = (format!("port{i}"), format!("far{i}"));
            run(&[
                "ip", "link", "add", &port, "type", "veth", "peer", "name", &far,
            ]);
            run(&["ip", "link", "set", &port, "up"]);
            run(&["ip", "link", "set", &far, "up"]);
            // Redirects into `port` only arrive on `far` if `far` runs NAPI.
            run(&["ethtool", "-K", &far, "gro", "on"]);
            Veth {
                port: ifindex(&port),
                far: ifindex(&far),
                far_name: far,
            }
        });
        let mut ebpf = Ebpf::load(vbr::datapath::object()).expect("loading the eBPF object");
        program(&mut ebpf)
            .load()
            .expect("the verifier accepts vbr_ingress");
        let mut bridge = Self { ebpf, ports };
        let ifindexes: Vec<u32> = bridge.ports.iter().map(|veth| veth.port).collect();
        let mut egress =
            DevMapHash::try_from(bridge.ebpf.map_mut(map_names::EGRESS).unwrap()).unwrap();
        for ifindex in &ifindexes {
            egress
                .insert(*ifindex, *ifindex, None, 0)
                .expect("devmap insert");
        }
        let mut infos: HashMap<_, u32, PortInfo> =
            HashMap::try_from(bridge.ebpf.map_mut(map_names::PORTS).unwrap()).unwrap();
        for ifindex in &ifindexes {
            let info = PortInfo {
                pvid: DEFAULT_VLAN,
                mode: PortMode::XdpNative as u8,
                flags: PORT_F_ATTACHED,
            };
            infos.insert(*ifindex, info, 0).expect("ports insert");
        }
        bridge
    }

    fn port(&self, n: usize) -> u32 {
        self.ports[n].port
    }

    /// Runs the program once on `frame` arriving at `ingress`; returns the verdict and the
    /// frame as the program left it.
    fn run(&self, ingress: u32, frame: &[u8]) -> (u32, Vec<u8>) {
        let ctx = xdp_md(ingress, frame.len());
        let mut out = vec![0u8; frame.len() + 256];
        let result = program_ref(&self.ebpf)
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(as_bytes(&ctx)),
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    /// Runs the program on `frame` arriving at `ingress` in live-frames mode, so that redirects
    /// really happen, and returns which ports' far ends received it.
    fn deliver(&self, ingress: u32, frame: &[u8]) -> Vec<usize> {
        let sockets: Vec<OwnedFd> = self
            .ports
            .iter()
            .map(|veth| capture_socket(veth.far))
            .collect();
        let ctx = xdp_md(ingress, frame.len());
        program_ref(&self.ebpf)
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(as_bytes(&ctx)),
                repeat: 1,
                attrs: TestRunAttrs::new().xdp_live_frames(1),
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN with live frames");
        let mut received = Vec::new();
        for (n, socket) in sockets.iter().enumerate() {
            if receive_frame(socket, frame, Duration::from_millis(300)) {
                received.push(n);
            }
        }
        received
    }

    fn fdb(&self) -> HashMap<&MapData, FdbKey, FdbEntry> {
        HashMap::try_from(self.ebpf.map(map_names::FDB).unwrap()).unwrap()
    }

    fn fdb_entry(&self, mac: [u8; 6]) -> Option<FdbEntry> {
        self.fdb().get(&FdbKey::new(mac, DEFAULT_VLAN), 0).ok()
    }

    fn add_static(&mut self, mac: [u8; 6], ifindex: u32) {
        let mut fdb: HashMap<_, FdbKey, FdbEntry> =
            HashMap::try_from(self.ebpf.map_mut(map_names::FDB).unwrap()).unwrap();
        let entry = FdbEntry {
            ifindex,
            flags: FDB_F_STATIC,
            last_seen_ns: 0,
        };
        fdb.insert(FdbKey::new(mac, DEFAULT_VLAN), entry, 0)
            .unwrap();
    }

    /// Frames counted under `reason`, summed over CPUs.
    fn count(&self, reason: Reason) -> u64 {
        let stats: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map(map_names::STATS).unwrap()).unwrap();
        stats.get(&(reason as u32), 0).unwrap().iter().sum()
    }
}

fn program(ebpf: &mut Ebpf) -> &mut Xdp {
    ebpf.program_mut(PROG_INGRESS).unwrap().try_into().unwrap()
}

fn program_ref(ebpf: &Ebpf) -> &Xdp {
    ebpf.program(PROG_INGRESS).unwrap().try_into().unwrap()
}

fn xdp_md(ingress: u32, len: usize) -> XdpMd {
    XdpMd {
        data_end: len as u32,
        ingress_ifindex: ingress,
        ..Default::default()
    }
}

fn as_bytes<T>(value: &T) -> &[u8] {
    // SAFETY: reading the bytes of a plain #[repr(C)] value without padding.
    unsafe { std::slice::from_raw_parts((value as *const T).cast(), mem::size_of::<T>()) }
}

/// An Ethernet frame of 60 bytes with a payload that marks it as this test's.
fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(60);
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ETHERTYPE_TEST.to_be_bytes());
    frame.extend_from_slice(b"vbr datapath test");
    frame.resize(60, 0);
    frame
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|error| panic!("running {args:?}: {error}"));
    assert!(status.success(), "{args:?} failed: {status}");
}

fn ifindex(name: &str) -> u32 {
    vbr::netdev::ifindex(name).unwrap_or_else(|error| panic!("{error:#}"))
}

/// A raw socket that sees every frame `ifindex` receives.
fn capture_socket(ifindex: u32) -> OwnedFd {
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket creation; ownership passes to OwnedFd.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol as i32,
        )
    };
    assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` was just created and is owned by nobody else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zero is a valid sockaddr_ll; the fields set make it a bind address.
    let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol;
    address.sll_ifindex = ifindex as i32;
    // SAFETY: binding a valid sockaddr_ll of the stated size.
    let rc = unsafe {
        libc::bind(
            fd,
            (&address as *const libc::sockaddr_ll).cast(),
            mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(
        rc,
        0,
        "binding AF_PACKET socket: {}",
        io::Error::last_os_error()
    );
    socket
}

/// Whether `socket` receives `expected` (byte for byte) within `timeout`; other frames are skipped.
fn receive_frame(socket: &OwnedFd, expected: &[u8], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buffer = [MaybeUninit::<u8>::uninit(); 2048];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let mut poll = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, left.as_millis().max(1) as i32) };
        if ready <= 0 {
            return false;
        }
        // SAFETY: receiving into a buffer of the stated length.
        let len = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if len < 0 {
            continue;
        }
        // SAFETY: the kernel initialised the first `len` bytes.
        let received =
            unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), len as usize) };
        if received == expected {
            return true;
        }
    }
    false
}

#[test]
fn learning_writes_the_source_on_its_port() {
    let bridge = Bridge::new();
    let (verdict, out) = bridge.run(bridge.port(0), &frame(MAC_B, MAC_A));
    assert_eq!(verdict, XDP_REDIRECT, "unknown unicast is flooded");
    assert_eq!(out, frame(MAC_B, MAC_A), "the frame leaves unchanged");
    let entry = bridge.fdb_entry(MAC_A).expect("source learned");
    assert_eq!(entry.ifindex, bridge.port(0));
    assert!(!entry.is_static());
    assert!(entry.last_seen_ns > 0);
    assert_eq!(bridge.count(Reason::Flooded), 1);
}

#[test]
fn learning_leaves_a_fresh_unchanged_entry_alone_and_follows_a_move() {
    let bridge = Bridge::new();
    bridge.run(bridge.port(0), &frame(MAC_B, MAC_A));
    let first = bridge.fdb_entry(MAC_A).unwrap();
    bridge.run(bridge.port(0), &frame(MAC_B, MAC_A));
    assert_eq!(
        bridge.fdb_entry(MAC_A).unwrap(),
        first,
        "no rewrite within the refresh step"
    );
    bridge.run(bridge.port(1), &frame(MAC_B, MAC_A));
    assert_eq!(
        bridge.fdb_entry(MAC_A).unwrap().ifindex,
        bridge.port(1),
        "the MAC moved"
    );
}

#[test]
fn static_entries_are_not_moved_by_learning() {
    let mut bridge = Bridge::new();
    let home = bridge.port(2);
    bridge.add_static(MAC_A, home);
    bridge.run(bridge.port(0), &frame(MAC_B, MAC_A));
    let entry = bridge.fdb_entry(MAC_A).unwrap();
    assert_eq!(entry.ifindex, home);
    assert!(entry.is_static());
}

#[test]
fn invalid_sources_are_dropped_and_never_learned() {
    let bridge = Bridge::new();
    let multicast = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
    for source in [multicast, BROADCAST, [0; 6]] {
        let (verdict, _) = bridge.run(bridge.port(0), &frame(MAC_B, source));
        assert_eq!(verdict, XDP_DROP, "source {source:02x?}");
        assert!(
            bridge.fdb_entry(source).is_none(),
            "source {source:02x?} learned"
        );
    }
    assert_eq!(bridge.count(Reason::DropInvalidSource), 3);
    assert_eq!(bridge.fdb().keys().count(), 0);
}

#[test]
fn destination_on_the_ingress_port_is_dropped() {
    let bridge = Bridge::new();
    bridge.run(bridge.port(0), &frame(MAC_B, MAC_A));
    bridge.run(bridge.port(0), &frame(MAC_A, MAC_C));
    let (verdict, _) = bridge.run(bridge.port(0), &frame(MAC_A, MAC_C));
    assert_eq!(verdict, XDP_DROP);
    assert_eq!(bridge.count(Reason::DropSamePort), 2);
}

#[test]
fn frames_on_foreign_interfaces_pass_to_the_stack() {
    let bridge = Bridge::new();
    let foreign = bridge.ports[0].far;
    let (verdict, _) = bridge.run(foreign, &frame(MAC_B, MAC_A));
    assert_eq!(verdict, XDP_PASS);
    assert!(bridge.fdb_entry(MAC_A).is_none());
    assert_eq!(bridge.count(Reason::PassNotPort), 1);
}

#[test]
fn known_unicast_goes_to_its_port_only() {
    let bridge = Bridge::new();
    // B speaks from port 1, so the bridge learns where B lives.
    bridge.run(bridge.port(1), &frame(MAC_A, MAC_B));
    let (verdict, _) = bridge.run(bridge.port(0), &frame(MAC_B, MAC_A));
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(bridge.count(Reason::Forwarded), 1);
    let receivers = bridge.deliver(bridge.port(0), &frame(MAC_B, MAC_A));
    assert_eq!(
        receivers,
        vec![1],
        "only {}'s side receives it",
        bridge.ports[1].far_name
    );
}

#[test]
fn broadcast_and_unknown_unicast_flood_to_every_other_port() {
    let bridge = Bridge::new();
    for destination in [BROADCAST, MAC_C] {
        let receivers = bridge.deliver(bridge.port(0), &frame(destination, MAC_A));
        assert_eq!(
            receivers,
            vec![1, 2],
            "destination {destination:02x?}: never back to the sender"
        );
    }
    assert_eq!(bridge.count(Reason::Flooded), 2);
}
