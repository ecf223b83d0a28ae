//! Types shared by the datapath (vbr-ebpf) and userspace (vbr-userspace).
//!
//! Everything that crosses the kernel boundary is defined here once: `#[repr(C)]`, `Copy`,
//! explicit padding, no `bool`. With the `user` feature the types are `aya::Pod`.
#![no_std]

pub mod batch;
pub mod bridge;
pub mod cache;
pub mod event;
pub mod fdb;
pub mod flow;
pub mod port;
pub mod stats;
pub mod vlan;

/// Names of the maps in the eBPF object; each is pinned under `/sys/fs/bpf/vbr/<bridge>/<name>`.
pub mod map_names {
    pub const FDB: &str = "fdb";
    pub const PORTS: &str = "ports";
    pub const EGRESS: &str = "egress";
    pub const STATS: &str = "stats";
    pub const PORT_STATS: &str = "port_stats";
    pub const VLAN_STATS: &str = "vlan_stats";
    pub const EVENTS: &str = "events";
    pub const EVENT_BUDGET: &str = "event_budget";
    pub const INFO: &str = "info";
    pub const SLOTS: &str = "slots";
    pub const PORT_LEARNED: &str = "port_learned";
    pub const STORM: &str = "storm";
    pub const XDP_BATCH: &str = "xdp_batch";
    pub const FDB_CACHE: &str = "fdb_cache";
    pub const FDB_GENERATION: &str = "fdb_generation";
    pub const PORT_CACHE: &str = "port_cache";
    pub const PORT_GENERATION: &str = "port_generation";
    pub const FLOOD_BARE: &str = "flood_bare";
    pub const FLOW_CACHE: &str = "flow_cache";

    /// Every map, in the order the agent checks and pins them.
    pub const ALL: [&str; 19] = [
        FDB,
        PORTS,
        EGRESS,
        STATS,
        PORT_STATS,
        VLAN_STATS,
        EVENTS,
        EVENT_BUDGET,
        INFO,
        SLOTS,
        PORT_LEARNED,
        STORM,
        XDP_BATCH,
        FDB_CACHE,
        FDB_GENERATION,
        PORT_CACHE,
        PORT_GENERATION,
        FLOOD_BARE,
        FLOW_CACHE,
    ];
}

/// Name of the XDP program attached to every port.
pub const PROG_INGRESS: &str = "vbr_ingress";

/// Name of the devmap program every frame redirected to a port runs: it finishes flooded copies
/// (the port's VLAN policy and flags) and lets unicast frames, finished at ingress, pass.
pub const PROG_EGRESS: &str = "vbr_egress";

/// Name of the XDP program attached to the ports of a Linux bridge vbr accelerates: known
/// unicast in XDP, everything else to the kernel bridge.
pub const PROG_ACCEL: &str = "vbr_accel";

/// Name of the raw tracepoint program on `FLUSH_TRACEPOINT`: it tells the datapath that the
/// frames this CPU queued for XDP redirects have left (see `batch`).
pub const PROG_FLUSH_WATCH: &str = "vbr_flush_watch";

/// The tracepoint after every NAPI poll, whose driver flushed the CPU's XDP redirects at its
/// end. A tap's and a test run's frames are flushed outside NAPI: their batch ends with the CPU's
/// next poll, so floods may take the skb path for longer than needed, never wrongly.
pub const FLUSH_TRACEPOINT: &str = "napi_poll";

/// Name of the TC (clsact ingress) program: the skb path, for ports XDP cannot serve and for
/// frames native XDP hands over.
pub const PROG_TC_INGRESS: &str = "vbr_tc_ingress";

/// The PVID of a port whose config names none, as the Linux bridge's default_pvid.
pub const DEFAULT_VLAN: u16 = 1;

/// Version of the pinned maps' layout: a pinned bridge with another version is refused rather
/// than misread. Bump it whenever a shared type or a map's definition changes.
pub const MAP_LAYOUT_VERSION: u32 = 15;

/// Maximum number of ports in one bridge (sizes the `ports`, `egress` and `port_stats` maps).
/// A flood walks every bucket of the `egress` devmap (devmap.c, dev_map_enqueue_multi), so this
/// bounds the cost of each flood: at 1024 the walk cost more than the copies themselves.
pub const MAX_PORTS: u32 = 256;

/// The skb path floods to the ports in the first this many counter slots: a bounded loop.
pub const MAX_SKB_FLOOD_PORTS: u32 = 64;

/// A flood every port takes alike is finished at ingress and sent through the program-less
/// `flood_bare` devmap (this many entries) when every port holds a counter slot below this: the
/// check walks those slots, and the kernel the devmap's buckets, on every such flood.
pub const FLOOD_BARE_SLOTS: u32 = 32;

/// Maximum number of FDB entries in one bridge.
pub const MAX_FDB_ENTRIES: u32 = 65536;

/// Learned MACs a bridge holds by default: the rest of the FDB is kept for static entries.
pub const DEFAULT_BRIDGE_MAX_LEARNED: u32 = MAX_FDB_ENTRIES - 4096;

/// Learned MACs a port holds by default: a guest flooding random source MACs fills its own
/// share, not the bridge.
pub const DEFAULT_PORT_MAX_LEARNED: u32 = 4096;

/// Index of the bridge's total in the `port_learned` array, after every port's slot.
pub const BRIDGE_LEARNED_SLOT: u32 = MAX_PORTS;
