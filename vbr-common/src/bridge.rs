//! Facts about a bridge as a whole.

/// Value of the one-entry `info` map. Pins are global to the host, but ifindexes only mean
/// something in the network namespace the bridge's ports live in: userspace checks that here.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeInfo {
    /// Inode of the agent's network namespace (`stat /proc/self/ns/net`).
    pub netns_inode: u64,
    /// `MAP_LAYOUT_VERSION` of the vbr that made the pins.
    pub layout_version: u32,
    /// Ports the native XDP path cannot redirect to (TC and generic XDP ports). While there are
    /// any, floods from native XDP ports take the skb path, which reaches every kind of port.
    pub skb_ports: u32,
    /// The uplink's ifindex in private, vepa and passthru modes; 0 otherwise.
    pub uplink_ifindex: u32,
    /// Learned MACs the whole bridge may hold (the rest of the FDB stays for static entries).
    pub max_learned: u32,
    /// A `LinkLocal` value: what happens to 01:80:c2:00:00:0x frames (STP, LACP, LLDP...).
    pub link_local: u32,
    /// Ifindex of the Linux bridge this one accelerates (`[[accelerate]]`); 0 for a vbr bridge.
    pub accelerates: u32,
    /// One past the highest counter slot a port holds: loops over the `slots` map stop there.
    pub slot_end: u32,
    pub _pad: u32,
}

/// What the bridge does with link-local frames (01:80:c2:00:00:00–0f), which 802.1D bridges
/// never forward.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLocal {
    Drop = 0,
    /// Up the stack of the port they arrived on (for lldpd, an STP daemon...).
    Host = 1,
    /// Flooded like other multicast.
    Forward = 2,
}

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data with explicit padding.
unsafe impl aya::Pod for BridgeInfo {}
