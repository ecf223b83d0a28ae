//! Ports of every kind for a lab's switch namespace, beyond the lab's veth hosts: a VM's tap (the
//! test holds its fd and plays the VM), an uplink to an external namespace (a plain host, or a
//! Linux bridge in reflective-relay mode standing for the external switch), and a macvlan on it.
//!
//! ```text
//!   <prefix>sw: <prefix>v (tap) ── fd held by the test (the "VM")
//!   <prefix>sw: <prefix>u ──veth── <prefix>x: eth0            (a plain external host), or
//!   <prefix>sw: <prefix>u ──veth── <prefix>x: eth0 ⊂ br0      (hairpin on; the host is br0)
//!   <prefix>sw: <prefix>m (macvlan on <prefix>u)
//! ```
//!
//! Everything is made inside namespaces the lab or the fixture owns, under names that carry the
//! lab's prefix, and goes with them: a tap when its fd closes, a veth pair with either namespace.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::mem::zeroed;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::cmd;
use crate::frames::{Frame, Mac};
use crate::lab::{Lab, Ping};
use crate::netns::Netns;

/// The clone device of the tun/tap driver.
const TUN_DEVICE: &str = "/dev/net/tun";
/// Largest frame read from a tap.
const TAP_SNAPLEN: usize = 65_536;
/// A tap read keeps at most this many frames, so that a flood cannot exhaust memory.
const TAP_MAX_FRAMES: usize = 10_000;
/// The external namespace's interface toward the switch.
pub const EXTERNAL_IFNAME: &str = "eth0";
/// The Linux bridge standing for the external switch, in the external namespace.
pub const EXTERNAL_BRIDGE: &str = "br0";
/// The external host's address in the lab's subnet: 10.77.<lab id>.EXTERNAL_HOST_OCTET.
const EXTERNAL_HOST_OCTET: u8 = 100;
/// The 6th byte of the external host's MAC (02:00:00:00:<lab id>:..): clear of the lab's hosts.
const EXTERNAL_MAC_OCTET: u8 = 0x40;
/// Bound on one ping run (on top of ping's own -c/-W).
const PING_DEADLINE_S: u32 = 5;
/// Bound on one sysctl or bridge run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A tap interface in a namespace, made with TUNSETIFF and owned through its fd: the test is the
/// VM. Frames written to it are what the VM sends; frames read from it are what reaches the VM.
/// The tap is not persistent: it vanishes when the fd closes (on drop).
#[derive(Debug)]
pub struct Tap {
    ifname: String,
    fd: Arc<OwnedFd>,
}

impl Tap {
    /// Creates tap `ifname` (IFF_TAP | IFF_NO_PI: raw Ethernet frames, no packet information
    /// header) in `netns` and brings it up.
    pub fn create(netns: &Netns, ifname: &str) -> Result<Self> {
        let name = CString::new(ifname).context("tap name")?;
        ensure!(
            name.as_bytes().len() < libc::IFNAMSIZ,
            "tap name {ifname} too long"
        );
        // TUNSETIFF makes the interface in the namespace of the calling thread; the fd then works
        // from any thread.
        let fd = netns
            .run_inside(move || {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(TUN_DEVICE)
                    .with_context(|| format!("opening {TUN_DEVICE}"))?;
                // SAFETY: all-zero is a valid ifreq.
                let mut request: libc::ifreq = unsafe { zeroed() };
                for (to, from) in request.ifr_name.iter_mut().zip(name.as_bytes()) {
                    *to = *from as libc::c_char;
                }
                request.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
                // SAFETY: TUNSETIFF reads and writes one ifreq, which outlives the call.
                if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut request) } != 0
                {
                    bail!("TUNSETIFF: {}", std::io::Error::last_os_error());
                }
                Ok(OwnedFd::from(file))
            })
            .with_context(|| format!("creating tap {ifname} in {}", netns.name()))?;
        let tap = Self {
            ifname: ifname.to_owned(),
            fd: Arc::new(fd),
        };
        netns.ip(&["link", "set", ifname, "up"])?;
        Ok(tap)
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Writes `frame` into the tap: the VM sends it.
    pub fn send(&self, frame: &Frame) -> Result<()> {
        let bytes = frame.to_bytes();
        // SAFETY: bytes outlives the call; the length is its own.
        let written =
            unsafe { libc::write(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if written < 0 {
            bail!(
                "writing a frame into tap {}: {}",
                self.ifname,
                std::io::Error::last_os_error()
            );
        }
        ensure!(
            written as usize == bytes.len(),
            "short write into tap {} ({written} of {})",
            self.ifname,
            bytes.len()
        );
        Ok(())
    }

    /// Reads what reaches the VM for `duration` from now, on a thread of its own. Frames queued
    /// earlier are read too: tell probes apart by their payload.
    pub fn capture(&self, duration: Duration) -> TapCapture {
        let fd = Arc::clone(&self.fd);
        let ifname = self.ifname.clone();
        TapCapture {
            ifname: self.ifname.clone(),
            thread: thread::spawn(move || read_frames(&fd, &ifname, duration)),
        }
    }
}

/// Frames read from a tap during a bounded time (see [`Tap::capture`]).
pub struct TapCapture {
    ifname: String,
    thread: JoinHandle<Result<Vec<Frame>>>,
}

impl TapCapture {
    /// Waits for the read to end and returns the frames, in order.
    pub fn frames(self) -> Result<Vec<Frame>> {
        self.thread
            .join()
            .map_err(|_| anyhow!("reading thread of tap {} panicked", self.ifname))?
    }
}

fn read_frames(fd: &OwnedFd, ifname: &str, duration: Duration) -> Result<Vec<Frame>> {
    let deadline = Instant::now() + duration;
    let mut frames = Vec::new();
    let mut buffer = vec![0u8; TAP_SNAPLEN];
    while frames.len() < TAP_MAX_FRAMES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&raw mut poll, 1, millis) } {
            0 => continue,
            n if n < 0 => {
                let error = std::io::Error::last_os_error();
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error).with_context(|| format!("polling tap {ifname}"));
            }
            _ => {}
        }
        // SAFETY: buffer outlives the call; the length is its own.
        let len = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if len < 0 {
            let error = std::io::Error::last_os_error();
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) {
                continue;
            }
            return Err(error).with_context(|| format!("reading tap {ifname}"));
        }
        if let Some(frame) = Frame::parse(&buffer[..len as usize]) {
            frames.push(frame);
        }
    }
    Ok(frames)
}

/// What stands at the far end of an [`External`] uplink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FarSide {
    /// A host: the address is on the veth's end itself.
    Host,
    /// An external switch in reflective-relay mode: a Linux bridge with the veth's end as a
    /// hairpin port, the host's address on the bridge.
    HairpinSwitch,
}

/// An uplink: a veth pair from the lab's switch namespace to a namespace of its own standing for
/// the world outside the hypervisor, with a host there (address 10.77.<lab id>.100/24).
/// IPv6 is off in that namespace, so it says nothing unprompted.
#[derive(Debug)]
pub struct External {
    pub netns: Netns,
    /// The switch-side end of the veth pair.
    pub port: String,
    /// The external host's MAC and address.
    pub mac: Mac,
    pub ip: Ipv4Addr,
    far_side: FarSide,
}

impl External {
    /// Builds the external namespace `<prefix>x` and the uplink `<prefix>u` to it from `lab`'s
    /// switch namespace.
    pub fn new(lab: &Lab, far_side: FarSide) -> Result<Self> {
        let netns = Netns::new(&format!("{}x", lab.prefix()))?;
        cmd::run_ok(
            netns
                .exec("sysctl")
                .args(["-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"]),
            COMMAND_TIMEOUT,
        )
        .context("turning IPv6 off in the external namespace")?;
        let mac = Mac([0x02, 0, 0, 0, lab.id(), EXTERNAL_MAC_OCTET]);
        let ip = Ipv4Addr::new(10, 77, lab.id(), EXTERNAL_HOST_OCTET);
        let port = format!("{}u", lab.prefix());
        // The host's MAC is the veth end's when the host sits on it; with a switch, the bridge
        // (the host) takes it and the veth end, which never sends, gets the next one.
        let wire_mac = match far_side {
            FarSide::Host => mac,
            FarSide::HairpinSwitch => Mac([0x02, 0, 0, 0, lab.id(), EXTERNAL_MAC_OCTET + 1]),
        };
        lab.switch()
            .ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                EXTERNAL_IFNAME,
                "address",
                &wire_mac.to_string(),
                "netns",
                netns.name(),
            ])
            .with_context(|| format!("creating the uplink {port}"))?;
        let external = Self {
            netns,
            port,
            mac,
            ip,
            far_side,
        };
        let host_ifname = external.host_ifname();
        if far_side == FarSide::HairpinSwitch {
            let ns = &external.netns;
            ns.ip(&[
                "link",
                "add",
                EXTERNAL_BRIDGE,
                "address",
                &mac.to_string(),
                "type",
                "bridge",
            ])?;
            ns.ip(&["link", "set", EXTERNAL_IFNAME, "master", EXTERNAL_BRIDGE])?;
            ns.ip(&[
                "link",
                "set",
                "dev",
                EXTERNAL_IFNAME,
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ])?;
        }
        external
            .netns
            .ip(&["addr", "add", &format!("{ip}/24"), "dev", host_ifname])?;
        for ifname in [EXTERNAL_IFNAME, host_ifname] {
            external.netns.ip(&["link", "set", ifname, "up"])?;
        }
        lab.switch().ip(&["link", "set", &external.port, "up"])?;
        Ok(external)
    }

    /// The interface holding the external host's address: the veth's end, or the bridge.
    pub fn host_ifname(&self) -> &'static str {
        match self.far_side {
            FarSide::Host => EXTERNAL_IFNAME,
            FarSide::HairpinSwitch => EXTERNAL_BRIDGE,
        }
    }

    /// Whether the external switch of a [`FarSide::HairpinSwitch`] has learned `mac` (on its
    /// only port, the uplink's end).
    pub fn switch_knows(&self, mac: Mac) -> Result<bool> {
        let output = cmd::run_ok(
            Command::new("bridge").args([
                "-n",
                self.netns.name(),
                "fdb",
                "show",
                "br",
                EXTERNAL_BRIDGE,
            ]),
            COMMAND_TIMEOUT,
        )?;
        let mac = mac.to_string();
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| line.starts_with(&mac) && line.contains(EXTERNAL_IFNAME)))
    }
}

/// Adds a macvlan `ifname` in `mode` (bridge, private, vepa, passthru) on `lower`, in `netns`,
/// and brings it up.
pub fn add_macvlan(netns: &Netns, ifname: &str, lower: &str, mode: &str) -> Result<()> {
    netns
        .ip(&[
            "link", "add", ifname, "link", lower, "type", "macvlan", "mode", mode,
        ])
        .with_context(|| format!("creating macvlan {ifname} on {lower}"))?;
    netns.ip(&["link", "set", ifname, "up"])?;
    Ok(())
}

/// Pings `target` from `netns` three times (`ping -c 3 -W 1 -i 0.2`, at most 5 s in all), as
/// [`crate::Host::ping`] does from a lab host.
pub fn ping(netns: &Netns, target: Ipv4Addr) -> Result<Ping> {
    let deadline = PING_DEADLINE_S.to_string();
    let target = target.to_string();
    let output = cmd::run(
        netns.exec("ping").args([
            "-n", "-c", "3", "-W", "1", "-i", "0.2", "-w", &deadline, &target,
        ]),
        Duration::from_secs(u64::from(PING_DEADLINE_S) + 5),
    )?;
    Ok(Ping {
        success: output.status.success(),
        output: String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    })
}

/// Polls `probe` every 50 ms until it returns a value or `timeout` passes; `what` names the
/// awaited condition in the error, with the last thing `probe` reported.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => String::from("not yet"),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{what}: not within {timeout:?} (last: {last})");
        }
        thread::sleep(Duration::from_millis(50));
    }
}
