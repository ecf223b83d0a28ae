//! The eBPF object built from vbr-ebpf by build.rs.
use anyhow::{Context as _, anyhow};
use std::os::fd::AsFd as _;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, Map, MapData},
    programs::{RawTracePoint, raw_trace_point::RawTracePointLinkId},
};
use vbr_common::{FLUSH_TRACEPOINT, PROG_FLUSH_WATCH, flow, map_names};

use crate::{fdb::Fdb, ports::Ports};

/// The compiled datapath, embedded in the binary.
pub fn object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vbr"))
}

/// `vbr_flush_watch` of the object, loaded or not.
pub fn flush_watch(ebpf: &mut Ebpf) -> anyhow::Result<&mut RawTracePoint> {
    ebpf.program_mut(PROG_FLUSH_WATCH)
        .ok_or_else(|| anyhow!("the eBPF object has no program {PROG_FLUSH_WATCH}"))?
        .try_into()
        .with_context(|| format!("{PROG_FLUSH_WATCH} is not a raw tracepoint program"))
}

/// Attaches the loaded `vbr_flush_watch` after every NAPI poll (`FLUSH_TRACEPOINT`).
pub fn attach_flush_watch(program: &mut RawTracePoint) -> anyhow::Result<RawTracePointLinkId> {
    program
        .attach(FLUSH_TRACEPOINT)
        .with_context(|| format!("attaching {PROG_FLUSH_WATCH} to {FLUSH_TRACEPOINT}"))
}

/// Loads `vbr_flush_watch` and attaches it after every NAPI poll. The link stays with the
/// program, unless the caller takes it by the returned id.
pub fn watch_flushes(ebpf: &mut Ebpf) -> anyhow::Result<(&mut RawTracePoint, RawTracePointLinkId)> {
    let program = flush_watch(ebpf)?;
    program
        .load()
        .with_context(|| format!("loading {PROG_FLUSH_WATCH}"))?;
    let id = attach_flush_watch(program)?;
    Ok((program, id))
}

/// A loader of the datapath that sizes its maps for this machine: `flow_cache` holds a region
/// for every possible CPU.
pub fn loader() -> anyhow::Result<EbpfLoader<'static>> {
    let mut loader = EbpfLoader::new();
    loader.map_max_entries(map_names::FLOW_CACHE, flow_cache_entries()?);
    Ok(loader)
}

/// Entries of `flow_cache` on this machine (see `vbr_common::flow::flow_cache_entries`).
pub fn flow_cache_entries() -> anyhow::Result<u32> {
    let cpus = aya::util::nr_cpus()
        .map_err(|(path, error)| anyhow!("reading the possible CPUs from {path}: {error}"))?;
    Ok(flow::flow_cache_entries(u32::try_from(cpus)?))
}

/// A fresh instance of the datapath: its own maps, programs not yet loaded.
pub fn load() -> anyhow::Result<Ebpf> {
    loader()?
        .load(object())
        .context("loading the vbr eBPF object")
}

/// The `fdb` map of a loaded object as the agent writes it, through handles of its own: for
/// writers beside the object (tests, the bench), which run the datapath without pins.
pub fn fdb(ebpf: &Ebpf) -> anyhow::Result<Fdb> {
    Ok(Fdb::new(
        HashMap::try_from(shared_map(ebpf, map_names::FDB)?)?,
        Array::try_from(shared_map(ebpf, map_names::FDB_GENERATION)?)?,
    ))
}

/// The `ports` map of a loaded object as the agent writes it; see `fdb`.
pub fn ports(ebpf: &Ebpf) -> anyhow::Result<Ports> {
    Ok(Ports::new(
        HashMap::try_from(shared_map(ebpf, map_names::PORTS)?)?,
        Array::try_from(shared_map(ebpf, map_names::PORT_GENERATION)?)?,
    ))
}

/// Hash or array map `name` of `ebpf`, through a handle of its own.
fn shared_map(ebpf: &Ebpf, name: &str) -> anyhow::Result<Map> {
    let (data, wrap): (_, fn(MapData) -> Map) = match ebpf.map(name) {
        Some(Map::HashMap(data)) => (data, Map::HashMap),
        Some(Map::Array(data)) => (data, Map::Array),
        _ => anyhow::bail!("the eBPF object has no hash or array map {name:?}"),
    };
    let fd = data
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .with_context(|| format!("duplicating the fd of map {name}"))?;
    Ok(wrap(MapData::from_fd(fd)?))
}
