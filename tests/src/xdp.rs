//! Contexts for running XDP programs through BPF_PROG_TEST_RUN.

/// `struct xdp_md` as BPF_PROG_TEST_RUN takes it for a context.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpMd {
    pub data: u32,
    pub data_end: u32,
    pub data_meta: u32,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

impl XdpMd {
    /// A frame of `len` bytes arriving on `ingress_ifindex` (of the caller's network namespace).
    /// In a live-frames run, XDP_TX sends it out of that interface.
    pub fn arriving_on(ingress_ifindex: u32, len: usize) -> Self {
        Self {
            data_end: u32::try_from(len).expect("a frame is shorter than 4 GiB"),
            ingress_ifindex,
            ..Self::default()
        }
    }

    /// The context as `TestRunOptions::ctx_in` takes it.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: a #[repr(C)] struct of u32 fields has no padding; the slice borrows `self`.
        unsafe {
            std::slice::from_raw_parts((self as *const Self).cast(), std::mem::size_of::<Self>())
        }
    }
}
