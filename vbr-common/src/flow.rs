//! The per-CPU cache of known-unicast decisions (`flow_cache`), as Open vSwitch's exact-match
//! cache keeps flows: what ingress decided for a frame, keyed by the frame's header bytes and
//! its ingress port, so that the next frames of the flow skip classification, learning, the FDB
//! and the ports. A slot depends on `fdb` and `ports` only, so it is trusted while both their
//! generations are the ones it was filled under (see `crate::cache`), and for at most
//! `FLOW_TTL_JIFFIES`, which also brings a busy source back to learning at least once a second.

/// Slots of each CPU's `flow_cache` (a power of two): 64 bytes each, 256 KiB per CPU.
pub const FLOW_CACHE_SLOTS: u32 = 4096;

/// Entries of a `flow_cache` for `cpus` possible CPUs: one region of `FLOW_CACHE_SLOTS` each.
pub const fn flow_cache_entries(cpus: u32) -> u32 {
    cpus * FLOW_CACHE_SLOTS
}

/// The `flow_cache` entry of CPU `cpu`'s slot `slot`.
///
/// The cache is a plain array cut into CPU regions rather than a per-CPU array: reaching a
/// per-CPU value first loads its pointer from the map, a cache miss of its own for a random
/// slot (see docs/performance.md), while an array's value is at a fixed offset. Only CPU
/// `cpu`'s programs touch its region.
#[inline(always)]
pub const fn flow_cache_index(cpu: u32, slot: u32) -> u32 {
    cpu * FLOW_CACHE_SLOTS + slot
}

/// A slot is trusted at most this many jiffies: 0.1 s to 1 s for HZ from 1000 to 100. Jiffies,
/// not the clock the other caches use, because the verifier inlines `bpf_jiffies64` into one
/// load, while reading the clock is a helper call on every frame.
pub const FLOW_TTL_JIFFIES: u64 = 100;

/// Everything in a frame that ingress decides a known unicast by: the MAC addresses, the
/// ethertype and, behind an 802.1Q tag, its TCI and the inner ethertype; and the ingress port.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// The destination and source MAC addresses as the frame carries them (network order).
    pub macs: [u16; 6],
    pub ingress: u32,
    /// The ethertype (host order).
    pub ether_type: u16,
    /// The 802.1Q tag's TCI (host order), if `ether_type` is 802.1Q; else 0.
    pub tci: u16,
    /// The ethertype behind the 802.1Q tag, if any; else 0.
    pub inner_ether_type: u16,
    /// Keeps the layout free of implicit padding.
    pub padding: u16,
}

impl FlowKey {
    /// The key as three words: compared and hashed word by word (a derived comparison of the
    /// struct may compile to a byte-wise `memcmp` call in BPF).
    #[inline(always)]
    pub const fn words(&self) -> [u64; 3] {
        // SAFETY: 24 bytes of plain integers without implicit padding, aligned to 8.
        unsafe { core::mem::transmute::<Self, [u64; 3]>(*self) }
    }

    /// This key's slot in a CPU's region of `flow_cache`.
    #[inline(always)]
    pub const fn cache_slot(&self) -> u32 {
        let [a, b, c] = self.words();
        let mixed = (a ^ b.rotate_left(21) ^ c.rotate_left(42)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 52) as u32 & (FLOW_CACHE_SLOTS - 1)
    }

    #[inline(always)]
    pub const fn same(&self, other: &Self) -> bool {
        let ([a, b, c], [x, y, z]) = (self.words(), other.words());
        a == x && b == y && c == z
    }
}

/// One slot of a CPU's `flow_cache`: how ingress sent the frames of `key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowCacheSlot {
    pub key: FlowKey,
    /// The port the frames go to.
    pub egress: u32,
    /// The frames' VLAN.
    pub vid: u16,
    /// The counter slots of the ingress and egress ports.
    pub rx_slot: u16,
    pub tx_slot: u16,
    /// 1 if the frames leave with an 802.1Q tag.
    pub tagged: u8,
    /// 1 if the ingress port's unicast may skip the devmap program (`PORT_F_BARE_UNICAST`).
    pub bare_unicast: u8,
    /// 1 if the frames are counted per VLAN (`PORT_F_VLAN_STATS`).
    pub vlan_stats: u8,
    /// Keeps the layout free of implicit padding.
    pub padding: [u8; 3],
    /// The `fdb_generation` and `port_generation` the slot was filled under.
    pub fdb_generation: u64,
    pub port_generation: u64,
    /// When the slot was filled, in jiffies.
    pub filled_jiffies: u64,
}

impl FlowCacheSlot {
    /// Whether the slot may be trusted at `jiffies` under these generations of `fdb` and
    /// `ports`.
    #[inline(always)]
    pub const fn is_current(
        &self,
        fdb_generation: u64,
        port_generation: u64,
        jiffies: u64,
    ) -> bool {
        self.fdb_generation == fdb_generation
            && self.port_generation == port_generation
            && jiffies.wrapping_sub(self.filled_jiffies) < FLOW_TTL_JIFFIES
    }
}

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data with explicit padding.
unsafe impl aya::Pod for FlowCacheSlot {}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: FlowKey = FlowKey {
        macs: [0x0200, 0, 1, 0x0200, 0, 2],
        ingress: 7,
        ether_type: 0x0800,
        tci: 0,
        inner_ether_type: 0,
        padding: 0,
    };

    #[test]
    fn a_slot_is_current_under_both_generations_for_less_than_the_ttl() {
        let slot = FlowCacheSlot {
            key: KEY,
            egress: 3,
            vid: 1,
            rx_slot: 0,
            tx_slot: 1,
            tagged: 0,
            bare_unicast: 1,
            vlan_stats: 0,
            padding: [0; 3],
            fdb_generation: 7,
            port_generation: 9,
            filled_jiffies: 1_000,
        };
        assert!(slot.is_current(7, 9, 1_000));
        assert!(slot.is_current(7, 9, 1_000 + FLOW_TTL_JIFFIES - 1));
        assert!(!slot.is_current(7, 9, 1_000 + FLOW_TTL_JIFFIES), "too old");
        assert!(!slot.is_current(8, 9, 1_000), "the FDB changed");
        assert!(!slot.is_current(7, 10, 1_000), "the ports changed");
    }

    #[test]
    fn cpu_regions_of_the_flow_cache_follow_each_other_without_overlap() {
        assert_eq!(flow_cache_index(0, 0), 0);
        assert_eq!(
            flow_cache_index(1, 0),
            flow_cache_index(0, FLOW_CACHE_SLOTS - 1) + 1
        );
        assert_eq!(
            flow_cache_index(3, FLOW_CACHE_SLOTS - 1),
            flow_cache_entries(4) - 1,
            "the last CPU's last slot is the last entry"
        );
    }

    #[test]
    fn keys_are_24_bytes_and_slots_64() {
        assert_eq!(size_of::<FlowKey>(), 24);
        assert_eq!(size_of::<FlowCacheSlot>(), 64);
    }

    #[test]
    fn every_field_of_the_key_tells_keys_apart() {
        let changes: [fn(&mut FlowKey); 6] = [
            |key| key.macs[0] ^= 1,
            |key| key.macs[5] ^= 1,
            |key| key.ingress += 1,
            |key| key.ether_type = 0x8100,
            |key| key.tci = 10,
            |key| key.inner_ether_type = 0x0800,
        ];
        assert!(KEY.same(&KEY));
        for change in changes {
            let mut other = KEY;
            change(&mut other);
            assert!(!KEY.same(&other), "{other:?}");
        }
    }

    #[test]
    fn slots_spread_over_the_whole_cache() {
        let mut seen = [false; FLOW_CACHE_SLOTS as usize];
        for n in 0..4 * FLOW_CACHE_SLOTS {
            let key = FlowKey {
                macs: [0x0200, (n >> 16) as u16, n as u16, 0x0200, 0, 1],
                ..KEY
            };
            seen[key.cache_slot() as usize] = true;
        }
        let used = seen.iter().filter(|used| **used).count();
        assert!(
            used > FLOW_CACHE_SLOTS as usize * 9 / 10,
            "{used} slots used"
        );
    }
}
