//! What a CPU's XDP redirects since its last flush were, in the `xdp_batch` map.
//!
//! The kernel queues redirected frames per egress device and CPU until the flush at the end of
//! the NAPI poll, and runs the devmap program of a queue's *first* frame on every frame of the
//! queue (devmap.c, bq_enqueue). Unicast leaves finished from ingress and may skip `vbr_egress`
//! (sent with a plain `bpf_redirect`); flood copies need it. So within one flush a CPU either
//! sends unicast without the program or floods through the devmap, never both: a flood that comes
//! after such unicast takes the skb path instead, and unicast after a flood keeps the program.

/// Nothing redirected since the last flush.
pub const BATCH_CLEAN: u32 = 0;
/// Unicast left without the devmap program: floods take the skb path until the flush.
pub const BATCH_BARE_UNICAST: u32 = 1;
/// A flood went through the devmap: unicast keeps the program until the flush.
pub const BATCH_FLOODED: u32 = 2;
