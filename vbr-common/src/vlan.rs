//! 802.1Q: a 4-byte tag after the source MAC (TPID, then PCP 3 bits, DEI 1 bit, VID 12 bits).

/// TPID of an 802.1Q (customer) tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad (service, QinQ outer) tag: vbr treats such frames as untagged payload.
pub const ETH_P_8021AD: u16 = 0x88a8;
/// Length of one tag.
pub const VLAN_HLEN: usize = 4;
/// VID bits of the TCI.
pub const VLAN_VID_MASK: u16 = 0x0fff;
/// Highest usable VID; 0 means "priority tag only" and 4095 is reserved.
pub const VID_MAX: u16 = 4094;
