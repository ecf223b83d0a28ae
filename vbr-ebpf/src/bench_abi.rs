//! What the benchmark rig's programs (`vbr-bench`, built from bench.rs) and the benchmark that
//! drives them (vbr-userspace/benches/forwarding.rs, which includes this file by path) share:
//! program and map names, and the generator's configuration. Plain `no_std` Rust, compiled on
//! both sides.

/// Traffic generator: stamps the frame (see `GeneratorConfig`) and returns XDP_TX, which a
/// live-frames BPF_PROG_TEST_RUN (Linux ≥ 5.18) turns into a transmission out of the interface
/// named by the context's `ingress_ifindex`.
pub const PROG_GENERATE: &str = "bench_generate";
/// The ceiling: redirects every frame to the one port in `MAP_CEILING_TX`, with no lookup at all.
pub const PROG_REDIRECT: &str = "bench_redirect";
/// The sink: counts the frames an interface receives into `MAP_SINK_FRAMES` and drops them.
pub const PROG_SINK: &str = "bench_sink";

/// `GeneratorConfig`, one entry.
pub const MAP_GENERATOR: &str = "bench_generator";
/// Per-CPU count of generated frames: picks each frame's destination.
pub const MAP_SEQUENCE: &str = "bench_sequence";
/// Devmap of one entry (index 0): where `PROG_REDIRECT` sends frames.
pub const MAP_CEILING_TX: &str = "bench_ceiling_tx";
/// Per-CPU frames received, indexed by the receiving interface's ifindex.
pub const MAP_SINK_FRAMES: &str = "bench_sink_frames";

/// Source MAC of every generated frame; the sinks count no others (a bridge coming up sends IGMP
/// reports of its own, for one). Outside the range of `destination`.
pub const SOURCE: [u8; 6] = [0x02, 0xbe, 0x0e, 0x00, 0x00, 0x01];

/// Sinks must have an ifindex below this to be counted.
pub const SINK_SLOTS: u32 = 256;

/// Bytes the generator rewrites at the head of every frame: an Ethernet header with one 802.1Q
/// tag. Enough to undo whatever a switch did to the frame on its last trip: live frames come back
/// to the generator's page pool as the sink left them, and a tag push or pop moves the MAC
/// addresses by 4 bytes in place.
pub const PREFIX_LEN: usize = 18;

/// Value of `MAP_GENERATOR`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// The frame's first `PREFIX_LEN` bytes as they must leave.
    pub prefix: [u8; PREFIX_LEN],
    pub _pad: u16,
    /// With 2 or more, frame n goes to `destination(n % destinations)` instead of the prefix's
    /// destination MAC.
    pub destinations: u32,
}

/// The destination MAC number `index` (below 2^24): a locally administered unicast address.
#[inline(always)]
pub const fn destination(index: u32) -> [u8; 6] {
    let [_, high, middle, low] = index.to_be_bytes();
    [0x02, 0xbe, 0x0d, high, middle, low]
}
