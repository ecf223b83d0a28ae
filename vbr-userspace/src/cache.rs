//! The writers' side of the datapath's per-CPU caches (`vbr_common::cache`): after every change
//! of a cached map, its generation takes a fresh reading of CLOCK_MONOTONIC, a value no writer
//! gave it before, and every cached copy of the map is stale.
use std::borrow::BorrowMut;

use anyhow::Context as _;
use aya::maps::{Array, MapData};

use crate::fdb::monotonic_now_ns;

/// A cached map's generation (`fdb_generation`, `port_generation`).
pub struct Generation<T = MapData> {
    map: Array<T, u64>,
    name: &'static str,
}

impl<T: BorrowMut<MapData>> Generation<T> {
    /// The generation map `name`.
    pub fn new(map: Array<T, u64>, name: &'static str) -> Self {
        Self { map, name }
    }

    /// Makes every cached copy of the map stale, after a change of it.
    pub fn replace(&mut self) -> anyhow::Result<()> {
        self.map
            .set(0, monotonic_now_ns(), 0)
            .with_context(|| format!("writing {}", self.name))
    }
}
