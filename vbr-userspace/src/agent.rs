//! `vbr agent`: brings up every bridge of the config, ages learned entries, and tears all down
//! on SIGTERM or SIGINT.
use std::{path::Path, time::Duration};

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    bpffs,
    bridge::{self, RunningBridge},
    config::Config,
    pinned::PinnedBridge,
};

/// How often learned entries are checked for age.
const AGEING_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    // Resolve every interface before touching the kernel: a bad config changes nothing.
    let plans = config
        .bridges
        .iter()
        .map(|bridge| Ok((bridge, bridge::resolve_ports(bridge)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    bpffs::ensure_mounted()?;
    let (connection, netlink, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
    tokio::spawn(connection);

    let mut bridges = Vec::new();
    for (bridge, ports) in &plans {
        // On error, dropping `bridges` undoes those already started.
        let running = RunningBridge::start(&bridge.name, ports, &netlink)
            .await
            .with_context(|| format!("starting bridge {:?}", bridge.name))?;
        let fdb = PinnedBridge::open(&bridge.name)?.fdb;
        bridges.push((running, fdb, Duration::from_secs(bridge.ageing_time)));
    }
    tracing::info!(bridges = bridges.len(), "vbr agent ready");

    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut ageing = tokio::time::interval(AGEING_INTERVAL);
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = ageing.tick() => {
                for (running, fdb, ageing_time) in &mut bridges {
                    if ageing_time.is_zero() {
                        continue;
                    }
                    match fdb.age(*ageing_time) {
                        Ok(0) => {}
                        Ok(aged) => tracing::debug!(bridge = %running.name, aged, "aged fdb entries"),
                        Err(error) => tracing::warn!(bridge = %running.name, "ageing: {error:#}"),
                    }
                }
            }
        }
    }
    tracing::info!("stopping: detaching ports and removing pins");
    drop(bridges);
    Ok(())
}
