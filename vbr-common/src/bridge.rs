//! Facts about a bridge as a whole.

/// Value of the one-entry `info` map, which only userspace reads: pins are global to the host,
/// but ifindexes only mean something in the network namespace the bridge's ports live in.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeInfo {
    /// Inode of the agent's network namespace (`stat /proc/self/ns/net`).
    pub netns_inode: u64,
    /// `MAP_LAYOUT_VERSION` of the vbr that made the pins.
    pub layout_version: u32,
    pub _pad: u32,
}

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data with explicit padding.
unsafe impl aya::Pod for BridgeInfo {}
