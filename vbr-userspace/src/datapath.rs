//! The eBPF object built from vbr-ebpf by build.rs.
use anyhow::Context as _;
use aya::Ebpf;

/// The compiled datapath, embedded in the binary.
pub fn object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vbr"))
}

/// A fresh instance of the datapath: its own maps, programs not yet loaded.
pub fn load() -> anyhow::Result<Ebpf> {
    Ebpf::load(object()).context("loading the vbr eBPF object")
}
