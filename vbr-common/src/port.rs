//! Bridge ports: the `ports` map, keyed by ifindex.

/// Value of the `ports` map. A frame arriving on an ifindex absent from the map is not the
/// bridge's business and is passed to the stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// VLAN that untagged frames entering the port join.
    pub pvid: u16,
    /// A `PortMode` value.
    pub mode: u8,
    /// `PORT_F_*` bits.
    pub flags: u8,
}

/// Set by the agent once the port's program is attached.
pub const PORT_F_ATTACHED: u8 = 1 << 0;

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
    pub const fn is_attached(&self) -> bool {
        self.flags & PORT_F_ATTACHED != 0
    }
}

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data without padding holes.
unsafe impl aya::Pod for PortInfo {}
