//! The Linux bridge as the baseline, built in the bench's namespace around the same ports.
use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, ensure};
use vbr_tests::{Netns, cmd, netfilter, netns};

use crate::{bench_abi::destination, topology::Iface};

const NAME: &str = "vbench-br";
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// A bridge over the given ports, deleted on drop.
pub struct LinuxBridge<'a> {
    netns: &'a Netns,
}

impl<'a> LinuxBridge<'a> {
    /// Bridges `ingress` and `ports`; `destinations` static FDB entries
    /// (`destination(0..destinations)`) point at the first of `ports`. `netfilter` says whether
    /// bridged frames go through netfilter (br_netfilter is built into this kernel).
    pub fn new(
        netns: &'a Netns,
        ingress: &Iface,
        ports: &[Iface],
        destinations: u32,
        netfilter: bool,
    ) -> Result<Self> {
        // Per namespace: only the bench's is touched.
        netfilter::set(netfilter)?;
        netns.ip(&["link", "add", NAME, "type", "bridge"])?;
        let bridge = Self { netns };
        for port in std::iter::once(ingress).chain(ports) {
            netns.ip(&["link", "set", &port.name, "master", NAME])?;
        }
        netns.ip(&["link", "set", NAME, "up"])?;
        if let Some(port) = ports.first() {
            bridge.add_static(port, destinations)?;
        }
        Ok(bridge)
    }

    /// Adds the static entries through one `bridge -batch` run.
    fn add_static(&self, port: &Iface, destinations: u32) -> Result<()> {
        let batch: String = (0..destinations)
            .map(|index| {
                let [a, b, c, d, e, f] = destination(index);
                format!(
                    "fdb add {a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x} dev {} master static\n",
                    port.name
                )
            })
            .collect();
        let path = std::env::temp_dir().join(format!("vbench-{}.batch", std::process::id()));
        std::fs::write(&path, batch).with_context(|| format!("writing {}", path.display()))?;
        let added = cmd::run_ok(
            Command::new("bridge")
                .args(["-n", self.netns.name(), "-batch"])
                .arg(&path),
            BATCH_TIMEOUT,
        );
        let removed =
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()));
        added.context("filling the Linux bridge's FDB")?;
        removed
    }
}

impl Drop for LinuxBridge<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.netns.ip(&["link", "del", NAME]) {
            eprintln!("warning: deleting the Linux bridge: {error:#}");
        }
    }
}

/// br_netfilter's switches of the namespace the bench started in, read before the bench moves
/// elsewhere, to prove afterwards that it left them alone.
pub struct HostNetfilter {
    namespace: File,
    values: Vec<String>,
}

impl HostNetfilter {
    /// Reads the switches of the calling thread's namespace and keeps a handle on it.
    pub fn snapshot() -> Result<Self> {
        let namespace = File::open("/proc/thread-self/ns/net")
            .context("opening the bench's starting network namespace")?;
        Ok(Self {
            namespace,
            values: netfilter::read()?,
        })
    }

    /// Fails if the switches of the starting namespace changed since the snapshot.
    pub fn check_unchanged(&self) -> Result<()> {
        let handle = PathBuf::from(format!("/proc/self/fd/{}", self.namespace.as_raw_fd()));
        let now = std::thread::spawn(move || {
            netns::enter(&handle)?;
            netfilter::read()
        })
        .join()
        .map_err(|_| anyhow!("reading the host's br_netfilter switches panicked"))??;
        ensure!(
            now == self.values,
            "the host's br_netfilter switches changed: {:?} became {now:?}",
            self.values
        );
        Ok(())
    }
}
