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
}

impl Reason {
    pub const COUNT: u32 = 10;
}
