//! Every filesystem path vbr uses.
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Where the kernel's bpffs is mounted (systemd mounts it there at boot).
pub const BPFFS: &str = "/sys/fs/bpf";

/// Root of vbr's pins: one directory per bridge.
pub const PIN_ROOT: &str = "/sys/fs/bpf/vbr";

/// Creates `dir` and its missing parents readable and writable by root only: the pins inside
/// are the bridges' whole state.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// `/sys/fs/bpf/vbr/<bridge>`.
pub fn bridge_dir(bridge: &str) -> PathBuf {
    PathBuf::from(PIN_ROOT).join(bridge)
}

/// `/sys/fs/bpf/vbr/<bridge>/<map>`.
pub fn map_pin(bridge: &str, map: &str) -> PathBuf {
    bridge_dir(bridge).join(map)
}

/// `<bridge dir>/tracing/flush_watch`: the pinned link of the bridge's `vbr_flush_watch`, apart
/// from the maps and the ports' links.
pub fn flush_watch_pin(bridge_dir: &Path) -> PathBuf {
    bridge_dir.join("tracing").join("flush_watch")
}

/// Which of a port's programs a link attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Xdp,
    Tc,
}

/// `<bridge dir>/links/<ifindex>` (XDP) or `<ifindex>-tc`: the pinned links of a port.
pub fn link_pin(bridge_dir: &Path, ifindex: u32, kind: LinkKind) -> PathBuf {
    let name = match kind {
        LinkKind::Xdp => ifindex.to_string(),
        LinkKind::Tc => format!("{ifindex}-tc"),
    };
    bridge_dir.join("links").join(name)
}
