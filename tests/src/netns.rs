//! Network namespaces made for a test, deleted when their guard drops.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::cmd;

/// Where iproute2 keeps the handles of named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Bound on one `ip` invocation.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// The first `ip netns add` of a boot turns /run/netns into a shared mount; two doing it at once can
/// trip over each other, so namespaces of one process are made and deleted one at a time.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// A named network namespace (`ip netns add`), deleted with everything inside it on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` with its loopback up.
    pub fn new(name: &str) -> Result<Self> {
        {
            let _lock = NETNS_LOCK
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            cmd::run_ok(Command::new("ip").args(["netns", "add", name]), IP_TIMEOUT)
                .with_context(|| format!("creating network namespace {name}"))?;
        }
        let netns = Self {
            name: name.to_owned(),
        };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// A namespace with a name unique to this process (`<prefix><pid>n<count>`), entered by the
    /// calling thread, which must be one made for the purpose (a test's own thread is).
    pub fn entered(prefix: &str) -> Result<Self> {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let netns = Self::new(&format!("{prefix}{:x}n{count}", std::process::id()))?;
        enter(&netns.path())?;
        Ok(netns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's handle, for `nsenter --net=` and `setns`.
    pub fn path(&self) -> PathBuf {
        path_of(&self.name)
    }

    /// Runs `ip -n <ns> ARGS`, failing on a non-zero exit.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let output = cmd::run_ok(
            Command::new("ip").arg("-n").arg(&self.name).args(args),
            IP_TIMEOUT,
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `ip -d -j link show dev IFNAME` as JSON: the link's details, including "ifindex" and, when a
    /// program is attached, "xdp".
    pub fn link(&self, ifname: &str) -> Result<serde_json::Value> {
        let shown = self.ip(&["-d", "-j", "link", "show", "dev", ifname])?;
        let mut links: Vec<serde_json::Value> = serde_json::from_str(&shown)
            .with_context(|| format!("parsing `ip -j link show dev {ifname}` in {}", self.name))?;
        match links.len() {
            1 => Ok(links.remove(0)),
            n => bail!(
                "`ip link show dev {ifname}` in {} listed {n} links",
                self.name
            ),
        }
    }

    /// The ifindex of `ifname` in this namespace.
    pub fn ifindex(&self, ifname: &str) -> Result<u32> {
        let link = self.link(ifname)?;
        link["ifindex"]
            .as_u64()
            .and_then(|index| u32::try_from(index).ok())
            .ok_or_else(|| anyhow!("no ifindex for {ifname} in {}: {link}", self.name))
    }

    /// Whether an XDP program (native or generic) is attached to `ifname`.
    pub fn has_xdp(&self, ifname: &str) -> Result<bool> {
        Ok(self.link(ifname)?.get("xdp").is_some())
    }

    /// The id of the XDP program attached to `ifname`, if any. Each load of a program gets a
    /// fresh id, so a change tells that another program instance took over the interface.
    pub fn xdp_prog_id(&self, ifname: &str) -> Result<Option<u32>> {
        let link = self.link(ifname)?;
        let Some(xdp) = link.get("xdp") else {
            return Ok(None);
        };
        xdp["prog"]["id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .map(Some)
            .ok_or_else(|| {
                anyhow!(
                    "no program id in the XDP of {ifname} in {}: {xdp}",
                    self.name
                )
            })
    }

    /// A command that runs `program` inside the namespace via `ip netns exec`. Fine for host-side
    /// tools (ping, sysctl); not for vbr, which needs the root mount namespace: see [`crate::cli::Cli`].
    pub fn exec(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `f` on a fresh thread that has joined this namespace, leaving the caller's thread where
    /// it was.
    pub fn run_inside<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let path = self.path();
        thread::spawn(move || {
            enter(&path)?;
            f()
        })
        .join()
        .map_err(|_| anyhow!("thread inside namespace {} panicked", self.name))?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _lock = NETNS_LOCK
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Err(error) = cmd::run_ok(
            Command::new("ip").args(["netns", "del", &self.name]),
            IP_TIMEOUT,
        ) {
            eprintln!(
                "warning: deleting network namespace {}: {error:#}",
                self.name
            );
        }
    }
}

/// The handle of the named namespace `name`.
pub fn path_of(name: &str) -> PathBuf {
    PathBuf::from(NETNS_RUN_DIR).join(name)
}

/// Turns IPv6 off on the interfaces the calling thread's namespace has or makes from now on, so
/// that no neighbour discovery or MLD frame leaves them: for threads that entered a namespace of
/// their own (/proc/sys/net follows the namespace of the thread that opens it).
pub fn ipv6_off() -> Result<()> {
    for conf in ["all", "default"] {
        let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
        std::fs::write(&path, "1").with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}

/// Moves the calling thread into the network namespace whose handle is `path`. Only for threads
/// made for the purpose: the thread stays there.
pub fn enter(path: &std::path::Path) -> Result<()> {
    let handle =
        File::open(path).with_context(|| format!("opening namespace handle {}", path.display()))?;
    // SAFETY: setns on a valid namespace fd; it affects only the calling thread.
    if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!(
            "setns into {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
