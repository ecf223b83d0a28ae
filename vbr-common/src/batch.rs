//! What a CPU's XDP redirects since its last flush were, in the `xdp_batch` map.
//!
//! The kernel queues redirected frames per egress device and CPU until the flush at the end of
//! the NAPI poll, and runs the devmap program of a queue's *first* frame on every frame of the
//! queue (devmap.c, bq_enqueue). Unicast leaves finished from ingress and may skip `vbr_egress`
//! (sent with a plain `bpf_redirect`), and so may a flood every port takes alike, finished at
//! ingress (sent through the program-less `flood_bare` devmap); other flood copies need it. So
//! within one flush a CPU either sends finished frames without the program or floods through the
//! devmap, never both: a flood that needs the program and comes after such frames takes the skb
//! path instead, and finished frames after it keep the program.

/// Nothing redirected since the last flush.
pub const BATCH_CLEAN: u32 = 0;
/// Finished frames left without the devmap program: floods that need it take the skb path until
/// the flush.
pub const BATCH_BARE_UNICAST: u32 = 1;
/// A flood went through the devmap: finished frames keep the program until the flush.
pub const BATCH_FLOODED: u32 = 2;
