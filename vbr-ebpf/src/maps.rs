//! The bridge's maps. Userspace pins each under /sys/fs/bpf/vbr/<bridge>/<name>; the names are
//! shared with it through `vbr_common::map_names`.
use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    btf_maps::{Array, DevMapHash, HashMap, PerCpuArray, RingBuf},
    macros::btf_map,
};
use vbr_common::{
    FLOOD_BARE_SLOTS, MAX_FDB_ENTRIES, MAX_PORTS,
    bridge::BridgeInfo,
    event::{EVENTS_RING_BYTES, EventBudget, FdbEvent},
    fdb::{FDB_CACHE_SLOTS, FdbCacheSlot, FdbEntry, FdbKey},
    flow::{FLOW_CACHE_SLOTS, FlowCacheSlot},
    port::{PORT_CACHE_SLOTS, PortCacheSlot, PortInfo, VLAN_BITMAP_WORDS},
    stats::{Counters, Reason, StormBucket},
};

/// (MAC, VLAN) → port.
#[btf_map(name = "fdb")]
pub static FDB: HashMap<FdbKey, FdbEntry, { MAX_FDB_ENTRIES as usize }> = HashMap::new();

/// Per CPU, destinations looked up recently (see `FdbCacheSlot`), by `FdbKey::cache_slot`.
#[btf_map(name = "fdb_cache")]
pub static FDB_CACHE: PerCpuArray<FdbCacheSlot, { FDB_CACHE_SLOTS as usize }> = PerCpuArray::new();

/// 0 → a value every writer of `fdb` that moves or removes an entry replaces with a new one (the
/// writer's CLOCK_MONOTONIC, which no writer repeats): cached destinations of another value are
/// stale.
#[btf_map(name = "fdb_generation")]
pub static FDB_GENERATION: Array<u64, 1> = Array::new();

/// Per CPU, how known unicast flows were sent (see `FlowCacheSlot`): each CPU's region, by
/// `FlowKey::cache_slot` (see `vbr_common::flow::flow_cache_index`). Sized here for one CPU;
/// userspace gives it `flow_cache_entries` of every possible CPU when loading. Mappable only
/// because that makes the kernel start the values on a page, so that no 64-byte slot straddles
/// two cache lines.
#[btf_map(name = "flow_cache")]
pub static FLOW_CACHE: Array<
    FlowCacheSlot,
    { FLOW_CACHE_SLOTS as usize },
    { BPF_F_MMAPABLE as usize },
> = Array::new();

/// ifindex → port configuration; membership in this map makes an interface a bridge port.
#[btf_map(name = "ports")]
pub static PORTS: HashMap<u32, PortInfo, { MAX_PORTS as usize }> = HashMap::new();

/// Per CPU, copies of ports frames came in or went out by recently (see `PortCacheSlot`), by
/// ifindex modulo `PORT_CACHE_SLOTS`.
#[btf_map(name = "port_cache")]
pub static PORT_CACHE: PerCpuArray<PortCacheSlot, { PORT_CACHE_SLOTS as usize }> =
    PerCpuArray::new();

/// 0 → a value every writer of `ports` replaces with a new one (the writer's CLOCK_MONOTONIC):
/// cached ports of another value are stale.
#[btf_map(name = "port_generation")]
pub static PORT_GENERATION: Array<u64, 1> = Array::new();

/// ifindex → ifindex of every port, each with `vbr_egress` attached: the target of floods, and
/// of unicast whenever it may not skip the program. The kernel batches the frames for a device
/// per CPU and runs the program of the batch's first frame on all of them (devmap.c,
/// bq_enqueue), so a flood never shares a batch with unicast sent without it (see `batch`).
#[btf_map(name = "egress")]
pub static EGRESS: DevMapHash<{ MAX_PORTS as usize }> = DevMapHash::new();

/// ifindex → ifindex of every native port, without programs, while all ports hold counter slots
/// below `FLOOD_BARE_SLOTS`: floods every port takes alike are finished at ingress and go here,
/// sparing each copy the devmap program (see `forward::finished_flood`). A port enters it only
/// once `slots` and `BridgeInfo::slot_end` cover it, and leaves it first.
#[btf_map(name = "flood_bare")]
pub static FLOOD_BARE: DevMapHash<{ FLOOD_BARE_SLOTS as usize }> = DevMapHash::new();

/// Frames counted per `Reason`, per CPU.
#[btf_map(name = "stats")]
pub static STATS: PerCpuArray<u64, { Reason::COUNT as usize }> = PerCpuArray::new();

/// Per-port frames and bytes, indexed by `PortInfo::slot`.
#[btf_map(name = "port_stats")]
pub static PORT_STATS: PerCpuArray<Counters, { MAX_PORTS as usize }> = PerCpuArray::new();

/// Per-VLAN frames and bytes, indexed by VID.
#[btf_map(name = "vlan_stats")]
pub static VLAN_STATS: PerCpuArray<Counters, { VLAN_BITMAP_WORDS * 64 }> = PerCpuArray::new();

/// Learned, moved and missed MACs, for the agent.
#[btf_map(name = "events")]
pub static EVENTS: RingBuf<FdbEvent, { EVENTS_RING_BYTES as usize }> = RingBuf::new();

/// Per-CPU rate limit of `EVENTS`.
#[btf_map(name = "event_budget")]
pub static EVENT_BUDGET: PerCpuArray<EventBudget, 1> = PerCpuArray::new();

/// Facts about the bridge: for userspace, and the bridge-wide settings the datapath reads.
#[btf_map(name = "info")]
pub static INFO: Array<BridgeInfo, 1> = Array::new();

/// Learned MACs per port, indexed by `PortInfo::slot`, and the bridge's total at
/// `BRIDGE_LEARNED_SLOT`: the datapath counts up, the agent recounts.
#[btf_map(name = "port_learned")]
pub static PORT_LEARNED: Array<u64, { MAX_PORTS as usize + 1 }> = Array::new();

/// Storm-control token buckets, indexed by `PortInfo::slot`.
#[btf_map(name = "storm")]
pub static STORM: Array<StormBucket, { MAX_PORTS as usize }> = Array::new();

/// Per CPU, a `vbr_common::batch` state: what this CPU redirected since its last XDP flush.
#[btf_map(name = "xdp_batch")]
pub static XDP_BATCH: PerCpuArray<u32, 1> = PerCpuArray::new();

/// Counter slot → ifindex of the port holding it (0: free): the ports the skb path floods to.
#[btf_map(name = "slots")]
pub static SLOTS: Array<u32, { MAX_PORTS as usize }> = Array::new();
