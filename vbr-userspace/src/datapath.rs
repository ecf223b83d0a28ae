//! The eBPF object built from vbr-ebpf by build.rs.
use anyhow::{Context as _, anyhow};
use aya::{
    Ebpf,
    programs::{RawTracePoint, raw_trace_point::RawTracePointLinkId},
};
use vbr_common::{FLUSH_TRACEPOINT, PROG_FLUSH_WATCH};

/// The compiled datapath, embedded in the binary.
pub fn object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vbr"))
}

/// Loads `vbr_flush_watch` and attaches it after every NAPI poll (`FLUSH_TRACEPOINT`). The link
/// stays with the program, unless the caller takes it by the returned id.
pub fn watch_flushes(ebpf: &mut Ebpf) -> anyhow::Result<(&mut RawTracePoint, RawTracePointLinkId)> {
    let program: &mut RawTracePoint = ebpf
        .program_mut(PROG_FLUSH_WATCH)
        .ok_or_else(|| anyhow!("the eBPF object has no program {PROG_FLUSH_WATCH}"))?
        .try_into()
        .with_context(|| format!("{PROG_FLUSH_WATCH} is not a raw tracepoint program"))?;
    program
        .load()
        .with_context(|| format!("loading {PROG_FLUSH_WATCH}"))?;
    let id = program
        .attach(FLUSH_TRACEPOINT)
        .with_context(|| format!("attaching {PROG_FLUSH_WATCH} to {FLUSH_TRACEPOINT}"))?;
    Ok((program, id))
}

/// A fresh instance of the datapath: its own maps, programs not yet loaded.
pub fn load() -> anyhow::Result<Ebpf> {
    Ebpf::load(object()).context("loading the vbr eBPF object")
}
