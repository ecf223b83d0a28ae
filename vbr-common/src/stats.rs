//! What happened to each frame: one list shared by the datapath's per-CPU counters, logs and tools.

/// Index into the per-CPU `stats` array; each slot counts frames.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Known unicast redirected to its port.
    Forwarded = 0,
    /// Broadcast, multicast or unknown unicast sent to every other port.
    Flooded = 1,
    /// Shorter than an Ethernet header.
    DropMalformed = 2,
    /// Source MAC is multicast or all-zero: never a real sender.
    DropInvalidSource = 3,
    /// Destination lives behind the port the frame came in on.
    DropSamePort = 4,
    /// The devmap refused the redirect (port vanished between lookup and redirect).
    DropRedirect = 5,
    /// Arrived on an interface that is not one of the bridge's ports.
    PassNotPort = 6,
    /// Tagged with a VLAN the port is not a member of, or untagged on a port without PVID.
    DropVlanIngress = 7,
    /// The destination's port is not a member of the frame's VLAN.
    DropVlanEgress = 8,
    /// No room in front of the frame to push a VLAN tag.
    DropNoHeadroom = 9,
    /// Native XDP handed the frame to the skb (TC) path, which reaches ports XDP cannot.
    PassToSkb = 10,
    /// Between two isolated ports.
    DropIsolated = 11,
    /// Between two non-uplink ports of a private bridge.
    DropPrivate = 12,
    /// A link-local frame (01:80:c2:00:00:0x), not forwarded by 802.1D bridges.
    DropLinkLocal = 13,
    /// A link-local frame passed up the stack of its port.
    PassLinkLocal = 14,
    /// A static entry's MAC as source on another port: spoofed.
    DropSpoofed = 15,
    /// Flooding beyond the ingress port's storm-control rate.
    DropStorm = 16,
    /// For a stack listening on the port it came in on (a macvlan of it): passed up.
    PassToStack = 17,
    /// Left to the Linux bridge vbr accelerates: not known unicast between forwarding ports, or
    /// anything the fast path is unsure of.
    PassToBridge = 18,
}

impl Reason {
    pub const COUNT: u32 = 19;

    pub const ALL: [Reason; Self::COUNT as usize] = [
        Self::Forwarded,
        Self::Flooded,
        Self::DropMalformed,
        Self::DropInvalidSource,
        Self::DropSamePort,
        Self::DropRedirect,
        Self::PassNotPort,
        Self::DropVlanIngress,
        Self::DropVlanEgress,
        Self::DropNoHeadroom,
        Self::PassToSkb,
        Self::DropIsolated,
        Self::DropPrivate,
        Self::DropLinkLocal,
        Self::PassLinkLocal,
        Self::DropSpoofed,
        Self::DropStorm,
        Self::PassToStack,
        Self::PassToBridge,
    ];

    /// The name logs, `vbr stats` and the metrics print.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Forwarded => "forwarded",
            Self::Flooded => "flooded",
            Self::DropMalformed => "drop_malformed",
            Self::DropInvalidSource => "drop_invalid_source",
            Self::DropSamePort => "drop_same_port",
            Self::DropRedirect => "drop_redirect",
            Self::PassNotPort => "pass_not_port",
            Self::DropVlanIngress => "drop_vlan_ingress",
            Self::DropVlanEgress => "drop_vlan_egress",
            Self::DropNoHeadroom => "drop_no_headroom",
            Self::PassToSkb => "pass_to_skb",
            Self::DropIsolated => "drop_isolated",
            Self::DropPrivate => "drop_private",
            Self::DropLinkLocal => "drop_link_local",
            Self::PassLinkLocal => "pass_link_local",
            Self::DropSpoofed => "drop_spoofed",
            Self::DropStorm => "drop_storm",
            Self::PassToStack => "pass_to_stack",
            Self::PassToBridge => "pass_to_bridge",
        }
    }
}

/// Frames and bytes through one port or one VLAN: a value of the per-CPU `port_stats` (indexed
/// by `PortInfo::slot`) and `vlan_stats` (indexed by VID) arrays.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize))]
pub struct Counters {
    /// Received (ports: every frame in; VLANs: frames classified into the VLAN).
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Sent, one per copy.
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Received frames that were flooded.
    pub flood_frames: u64,
    pub flood_bytes: u64,
}

impl Counters {
    /// Adds `other` (another CPU's share) into `self`.
    pub fn add(&mut self, other: &Counters) {
        self.rx_frames += other.rx_frames;
        self.rx_bytes += other.rx_bytes;
        self.tx_frames += other.tx_frames;
        self.tx_bytes += other.tx_bytes;
        self.flood_frames += other.flood_frames;
        self.flood_bytes += other.flood_bytes;
    }
}

/// The total of every CPU's share.
impl<'a> core::iter::Sum<&'a Counters> for Counters {
    fn sum<I: Iterator<Item = &'a Counters>>(shares: I) -> Self {
        shares.fold(Counters::default(), |mut total, share| {
            total.add(share);
            total
        })
    }
}

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data without padding.
unsafe impl aya::Pod for Counters {}

/// Storm-control state of one port (the `storm` array, by slot): a token bucket of flooded
/// frames, refilled at the port's `flood_rate`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StormBucket {
    /// Frames the port may still flood, in thousandths (to refill at sub-frame precision).
    pub milli_tokens: u64,
    /// When the bucket was last refilled.
    pub refilled_ns: u64,
}

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data without padding.
unsafe impl aya::Pod for StormBucket {}
