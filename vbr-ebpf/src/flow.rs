//! This CPU's cached decisions for known unicast (`flow_cache`, see `vbr_common::flow`): a frame
//! of a flow ingress already sent, while nothing it was decided by changed, is sent the same way
//! without classification, learning, the FDB or the ports.
use aya_ebpf::{
    helpers::{bpf_get_smp_processor_id, bpf_jiffies64},
    programs::XdpContext,
};
use vbr_common::{
    flow::{FlowCacheSlot, FlowKey, flow_cache_index},
    port::PortInfo,
    vlan::ETH_P_8021Q,
};

use crate::{
    maps::{FDB_GENERATION, FLOW_CACHE, PORT_GENERATION},
    parse::{self, is_multicast},
    vlan,
};

/// A frame's flow: its key, this CPU's slot for it, and the generations of `fdb` and `ports`
/// read before anything the frame looks up, so that a decision filled in is never newer than
/// the stamp it carries.
pub struct Flow {
    key: FlowKey,
    slot: *mut FlowCacheSlot,
    fdb_generation: u64,
    port_generation: u64,
    jiffies: u64,
}

impl Flow {
    /// The flow of the frame that came in on `ingress`; `None` for a frame the cache never holds:
    /// a multicast destination (a flood), or a frame too short to be decided on.
    #[inline(always)]
    pub fn of(ctx: &XdpContext, ingress: u32) -> Option<Self> {
        let eth = parse::eth_header(ctx).ok()?;
        if is_multicast(&eth.dst_addr) {
            return None;
        }
        let ether_type = u16::from_be(eth.ether_type);
        let (tci, inner_ether_type) = if ether_type == ETH_P_8021Q {
            (parse::vlan_tci(ctx).ok()?, parse::inner_ether_type(ctx)?)
        } else {
            (0, 0)
        };
        let key = FlowKey {
            macs: vlan::read_macs(ctx, 0).ok()?,
            ingress,
            ether_type,
            tci,
            inner_ether_type,
            padding: 0,
        };
        Some(Self {
            slot: FLOW_CACHE.get_ptr_mut(flow_cache_index(
                // SAFETY: no preconditions. The verifier inlines it on x86-64 (see the
                // program's `bpftool prog dump xlated`).
                unsafe { bpf_get_smp_processor_id() },
                key.cache_slot(),
            ))?,
            key,
            fdb_generation: FDB_GENERATION.get(0).copied().unwrap_or(0),
            port_generation: PORT_GENERATION.get(0).copied().unwrap_or(0),
            // SAFETY: no preconditions.
            jiffies: unsafe { bpf_jiffies64() },
        })
    }

    /// How the flow's frames were sent, while that still holds.
    #[inline(always)]
    pub fn cached(&self) -> Option<&FlowCacheSlot> {
        // SAFETY: per-CPU slot, only this CPU's programs touch it, one at a time.
        let slot = unsafe { &*self.slot };
        (slot.key.same(&self.key)
            && slot.is_current(self.fdb_generation, self.port_generation, self.jiffies))
        .then_some(slot)
    }

    /// Records that the frame, in VLAN `vid`, went from port `from` to port `to` (`egress`),
    /// skipping the devmap program if `bare_unicast`. Only a slot that is stale is written: a
    /// working set larger than the cache then costs a read of the slot, not a write on every
    /// frame.
    #[inline(always)]
    pub fn fill(&self, egress: u32, vid: u16, from: &PortInfo, to: &PortInfo, bare_unicast: bool) {
        // SAFETY: as in `cached`.
        let slot = unsafe { &mut *self.slot };
        if slot.is_current(self.fdb_generation, self.port_generation, self.jiffies) {
            return;
        }
        *slot = FlowCacheSlot {
            key: self.key,
            egress,
            vid,
            rx_slot: from.slot,
            tx_slot: to.slot,
            tagged: u8::from(vid != to.pvid),
            bare_unicast: u8::from(bare_unicast),
            vlan_stats: u8::from(from.counts_vlans()),
            padding: [0; 3],
            fdb_generation: self.fdb_generation,
            port_generation: self.port_generation,
            filled_jiffies: self.jiffies,
        };
    }
}
