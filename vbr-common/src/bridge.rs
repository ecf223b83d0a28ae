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
    pub _pad: u32,
}

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data with explicit padding.
unsafe impl aya::Pod for BridgeInfo {}
