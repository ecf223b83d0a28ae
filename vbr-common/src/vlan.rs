//! 802.1Q: a 4-byte tag after the source MAC (TPID, then PCP 3 bits, DEI 1 bit, VID 12 bits).

/// TPID of an 802.1Q (customer) tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad (service, QinQ outer) tag: vbr treats such frames as untagged payload.
pub const ETH_P_8021AD: u16 = 0x88a8;
/// TPID of the tag a flooded frame carries between ingress and each port's egress program (an
/// IEEE local experimental ethertype): it tells a flood copy from a unicast frame, which
/// ingress finishes itself. Frames arriving with it are dropped; it never leaves the bridge.
pub const ETH_P_VBR_FLOOD: u16 = 0x88b6;
/// Length of one tag.
pub const VLAN_HLEN: usize = 4;
/// VID bits of the TCI.
pub const VLAN_VID_MASK: u16 = 0x0fff;
/// Highest usable VID; 0 means "priority tag only" and 4095 is reserved.
pub const VID_MAX: u16 = 4094;
