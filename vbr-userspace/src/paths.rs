//! Every filesystem path vbr uses.
use std::path::PathBuf;

/// Where the kernel's bpffs is mounted (systemd mounts it there at boot).
pub const BPFFS: &str = "/sys/fs/bpf";

/// Root of vbr's pins: one directory per bridge.
pub const PIN_ROOT: &str = "/sys/fs/bpf/vbr";

/// `/sys/fs/bpf/vbr/<bridge>`.
pub fn bridge_dir(bridge: &str) -> PathBuf {
    PathBuf::from(PIN_ROOT).join(bridge)
}

/// `/sys/fs/bpf/vbr/<bridge>/<map>`.
pub fn map_pin(bridge: &str, map: &str) -> PathBuf {
    bridge_dir(bridge).join(map)
}
