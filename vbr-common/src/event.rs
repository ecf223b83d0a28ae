//! FDB events: the datapath reports learned, moved and missed MACs on the `events` ring buffer;
//! the agent adds the ones it causes and streams them all to `vbr monitor`.

/// One event, as the datapath writes it to the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbEvent {
    /// An `EventKind` value.
    pub kind: u8,
    pub _pad: u8,
    pub vlan: u16,
    pub mac: [u8; 6],
    pub _pad2: u16,
    /// The port the MAC is on now (for `Missed`: the port the frame came in on).
    pub ifindex: u32,
    /// For `Moved`: the port it was on before.
    pub old_ifindex: u32,
}

#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A new source MAC was learned.
    Learned = 0,
    /// A known MAC showed up on another port.
    Moved = 1,
    /// A unicast destination was unknown: the frame was flooded.
    Missed = 2,
    /// The agent aged a learned entry out.
    Aged = 3,
    /// An operator added a static entry.
    Added = 4,
    /// An operator (or a port's removal) deleted an entry.
    Deleted = 5,
    /// A MAC that had just moved showed up on yet another port: held where it is.
    Flapping = 6,
}

impl EventKind {
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Learned),
            1 => Some(Self::Moved),
            2 => Some(Self::Missed),
            3 => Some(Self::Aged),
            4 => Some(Self::Added),
            5 => Some(Self::Deleted),
            6 => Some(Self::Flapping),
            _ => None,
        }
    }

    /// The name `vbr monitor` prints.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Learned => "learned",
            Self::Moved => "moved",
            Self::Missed => "missed",
            Self::Aged => "aged",
            Self::Added => "added",
            Self::Deleted => "deleted",
            Self::Flapping => "flapping",
        }
    }
}

impl FdbEvent {
    pub const fn new(
        kind: EventKind,
        mac: [u8; 6],
        vlan: u16,
        ifindex: u32,
        old_ifindex: u32,
    ) -> Self {
        Self {
            kind: kind as u8,
            _pad: 0,
            vlan,
            mac,
            _pad2: 0,
            ifindex,
            old_ifindex,
        }
    }
}

/// Per-CPU state of the datapath's event rate limit.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventBudget {
    /// Start of the current window (`bpf_ktime_get_coarse_ns`).
    pub window_start_ns: u64,
    /// Events sent in the current window.
    pub sent: u32,
    /// Events suppressed since the map was created.
    pub suppressed: u32,
}

/// Each CPU sends at most `EVENTS_PER_WINDOW` events per `EVENT_WINDOW_NS`: a MAC flood
/// cannot drown the agent.
pub const EVENT_WINDOW_NS: u64 = 100_000_000;
pub const EVENTS_PER_WINDOW: u32 = 256;

/// Size of the `events` ring buffer in bytes (a power of two, a multiple of the page size).
pub const EVENTS_RING_BYTES: u32 = 256 * 1024;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `#[repr(C)]` data with explicit padding.
    unsafe impl aya::Pod for super::FdbEvent {}
    unsafe impl aya::Pod for super::EventBudget {}
}
