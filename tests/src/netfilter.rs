//! br_netfilter's switches: whether bridged frames traverse arptables, ip6tables and iptables.
//! They are per network namespace (Linux ≥ 5.3), read and written through the calling thread's.
use anyhow::{Context, Result};

const SYSCTLS: [&str; 3] = [
    "/proc/sys/net/bridge/bridge-nf-call-arptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
];

/// Turns every switch of the calling thread's namespace on or off.
pub fn set(on: bool) -> Result<()> {
    for path in SYSCTLS {
        std::fs::write(path, if on { "1" } else { "0" })
            .with_context(|| format!("writing {path} (is br_netfilter there?)"))?;
    }
    Ok(())
}

/// The switches of the calling thread's namespace, as `path=value`.
pub fn read() -> Result<Vec<String>> {
    SYSCTLS
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|value| format!("{path}={}", value.trim()))
                .with_context(|| format!("reading {path}"))
        })
        .collect()
}
