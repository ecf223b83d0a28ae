//! Bridge ports: the `ports` map, keyed by ifindex.
use crate::{cache::CacheStamp, vlan::VID_MAX};

/// Words of the VLAN membership bitmap: one bit per VID 0..=4095.
pub const VLAN_BITMAP_WORDS: usize = 64;

/// `pvid` of a port that admits no untagged frames (a pure trunk).
pub const PVID_NONE: u16 = 0;

/// Value of the `ports` map. A frame arriving on an ifindex absent from the map is not the
/// bridge's business and is passed to the stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// VLAN that untagged and priority-tagged frames entering the port join, and that leaves the
    /// port untagged; `PVID_NONE` for none.
    pub pvid: u16,
    /// A `PortMode` value.
    pub mode: u8,
    /// `PORT_F_*` bits.
    pub flags: u8,
    /// Index of the port's counters in the `port_stats` array, below `MAX_PORTS`.
    pub slot: u16,
    /// `POLICY_*` bits: what the port's frames may do (the Linux bridge's port flags, and the
    /// bridge's macvlan-like mode as it applies to this port).
    pub policy: u16,
    /// Learned MACs the port may hold; 0 for no limit.
    pub max_learned: u32,
    /// Flooded frames per second the port may send into the bridge (storm control); 0 for no
    /// limit.
    pub flood_rate: u32,
    /// VLANs the port is a member of (the PVID included), bit `vid % 64` of word `vid / 64`:
    /// one lookup answers both ingress filtering and egress policy.
    pub vlans: [u64; VLAN_BITMAP_WORDS],
}

/// Set by the agent once the port's program is attached.
pub const PORT_F_ATTACHED: u8 = 1 << 0;
/// vbr turned the port's rx-vlan-offload off; whoever removes the port turns it back on.
pub const PORT_F_RESTORE_RXVLAN: u8 = 1 << 1;
/// The port's native XDP unicast may skip the devmap program and its floods may take the skb path
/// (see `batch`): the bridge watches XDP flushes and every native port has its TC program.
pub const PORT_F_BARE_UNICAST: u8 = 1 << 2;
/// The bridge counts frames per VLAN (`vlan_stats` in its config): set by the agent on every port
/// of such a bridge. Off by default, as the Linux bridge's `vlan_stats_enabled`, because the two
/// VLAN counter updates are a measurable part of a known unicast's cost.
pub const PORT_F_VLAN_STATS: u8 = 1 << 3;

/// Source MACs seen on the port are learned.
pub const POLICY_LEARNING: u16 = 1 << 0;
/// Unknown unicast is flooded to the port.
pub const POLICY_FLOOD: u16 = 1 << 1;
/// Broadcast is flooded to the port.
pub const POLICY_BCAST_FLOOD: u16 = 1 << 2;
/// Multicast is flooded to the port.
pub const POLICY_MCAST_FLOOD: u16 = 1 << 3;
/// A frame may leave by the port it came in on (reflective relay).
pub const POLICY_HAIRPIN: u16 = 1 << 4;
/// Frames from this port never reach another isolated port.
pub const POLICY_ISOLATED: u16 = 1 << 5;
/// The bridge's uplink (private, vepa and passthru modes).
pub const POLICY_UPLINK: u16 = 1 << 6;
/// Everything the port sends goes out the uplink (vepa, private and passthru modes).
pub const POLICY_VIA_UPLINK: u16 = 1 << 7;
/// Private mode: frames between non-uplink ports are dropped, even hairpinned by the uplink's
/// far side.
pub const POLICY_PRIVATE: u16 = 1 << 8;

/// Stacks listen on the port itself (macvlans of it): floods that arrive on it go up its stack
/// too, so the datapath takes them on the skb path, which can both flood and pass.
pub const POLICY_LOCAL_STACK: u16 = 1 << 9;

/// A port of an accelerated Linux bridge that forwards (STP state forwarding, up, not locked):
/// the fast path carries its known unicast. Without it every frame goes to the kernel bridge.
pub const POLICY_ACCEL_FORWARDING: u16 = 1 << 10;
/// A port of an accelerated Linux bridge with VLAN filtering on: its frames are classified by
/// the port's PVID and member VLANs, as vbr's own ports are.
pub const POLICY_ACCEL_VLAN: u16 = 1 << 11;

/// The Linux bridge's defaults: learn, flood everything.
pub const POLICY_DEFAULT: u16 =
    POLICY_LEARNING | POLICY_FLOOD | POLICY_BCAST_FLOOD | POLICY_MCAST_FLOOD;

/// How the port's frames reach the datapath.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortMode {
    XdpNative = 0,
    XdpGeneric = 1,
    Tc = 2,
}

impl PortMode {
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::XdpNative),
            1 => Some(Self::XdpGeneric),
            2 => Some(Self::Tc),
            _ => None,
        }
    }

    /// The name `vbr port show` prints.
    pub const fn name(self) -> &'static str {
        match self {
            Self::XdpNative => "xdp-native",
            Self::XdpGeneric => "xdp-generic",
            Self::Tc => "tc",
        }
    }
}

impl PortInfo {
    /// A port in no VLAN at all.
    pub const fn new(mode: PortMode, slot: u16) -> Self {
        Self {
            pvid: PVID_NONE,
            mode: mode as u8,
            flags: 0,
            slot,
            policy: POLICY_DEFAULT,
            max_learned: 0,
            flood_rate: 0,
            vlans: [0; VLAN_BITMAP_WORDS],
        }
    }

    pub const fn is_attached(&self) -> bool {
        self.flags & PORT_F_ATTACHED != 0
    }

    /// Whether the port's frames are counted per VLAN (`PORT_F_VLAN_STATS`).
    #[inline(always)]
    pub const fn counts_vlans(&self) -> bool {
        self.flags & PORT_F_VLAN_STATS != 0
    }

    /// `vid` if the port's frames are counted per VLAN, else `None`.
    #[inline(always)]
    pub const fn counted_vlan(&self, vid: u16) -> Option<u16> {
        if self.counts_vlans() { Some(vid) } else { None }
    }

    #[inline(always)]
    pub const fn has(&self, policy: u16) -> bool {
        self.policy & policy != 0
    }

    #[inline(always)]
    pub const fn is_member(&self, vid: u16) -> bool {
        let word = (vid as usize >> 6) & (VLAN_BITMAP_WORDS - 1);
        self.vlans[word] & (1 << (vid & 63)) != 0
    }

    /// Adds (or removes) membership of `vid`; VIDs outside 1–4094 are ignored.
    pub fn set_member(&mut self, vid: u16, member: bool) {
        if vid == 0 || vid > VID_MAX {
            return;
        }
        let bit = 1 << (vid & 63);
        let word = &mut self.vlans[vid as usize >> 6];
        if member {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    /// Makes `vid` the PVID (a member, untagged on egress); `PVID_NONE` clears it. The former
    /// PVID stops being a member.
    pub fn set_pvid(&mut self, vid: u16) {
        self.set_member(self.pvid, false);
        self.pvid = vid;
        self.set_member(vid, true);
    }

    /// Member VLANs that leave the port tagged: all but the PVID, ascending.
    pub fn tagged(&self) -> impl Iterator<Item = u16> + '_ {
        (1..=VID_MAX).filter(move |vid| *vid != self.pvid && self.is_member(*vid))
    }
}

/// Slots of each CPU's `port_cache` (a power of two), by ifindex: the ports a CPU's frames come
/// in and go out by, so that a frame reads them there rather than hashing into `ports` twice.
pub const PORT_CACHE_SLOTS: u32 = 64;

/// One slot of a CPU's `port_cache`: a copy of what the `ports` map held for `ifindex` (see
/// `crate::cache`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortCacheSlot {
    pub info: PortInfo,
    /// Under which `port_generation`, and when, the slot was filled.
    pub stamp: CacheStamp,
    pub ifindex: u32,
    /// Keeps the layout free of implicit padding.
    pub padding: u32,
}

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data with explicit padding.
unsafe impl aya::Pod for PortInfo {}
#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data with explicit padding.
unsafe impl aya::Pod for PortCacheSlot {}
