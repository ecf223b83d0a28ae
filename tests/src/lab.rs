//! A throwaway switch lab: one switch namespace whose ports are veth pairs to N host namespaces.
//!
//! ```text
//!   <prefix>h1: eth0 ──veth── <prefix>p1 ┐
//!   <prefix>h2: eth0 ──veth── <prefix>p2 ├ <prefix>sw (vbr runs here)
//!   <prefix>h3: eth0 ──veth── <prefix>p3 ┘
//! ```
//!
//! Every name carries a prefix unique to the lab (`vt<pid in hex>t<n>`), so labs of parallel tests
//! never meet, and everything lives inside namespaces the lab deletes when it drops, but for the
//! pins of its bridges in bpffs, which it removes then if an agent left them.

use std::cell::Cell;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::cli;
use crate::cmd;
use crate::config::{Bridge, BridgePort, config_toml};
use crate::frames::{self, Capture, Frame, Mac};
use crate::netns::Netns;

/// Interface name of every host's end of its veth.
pub const HOST_IFNAME: &str = "eth0";
/// Linux's IFNAMSIZ less the NUL.
const IFNAME_MAX: usize = 15;
/// Bound on one ping run (on top of ping's own -c/-W).
const PING_DEADLINE_S: u32 = 5;
/// How often a running ping stream is polled for its exit.
const PING_POLL: Duration = Duration::from_millis(50);

/// One host: a namespace holding `eth0`, whose peer is a port of the switch.
#[derive(Debug)]
pub struct Host {
    pub index: usize,
    pub netns: Netns,
    pub mac: Mac,
    pub ip: Ipv4Addr,
    /// The switch-side end of this host's veth.
    pub port: String,
}

/// What a ping run printed and whether it got its replies.
#[derive(Debug)]
pub struct Ping {
    pub success: bool,
    pub output: String,
}

impl Ping {
    /// ping's closing statistics ("3 packets transmitted, 3 received, …" and the rtt line).
    pub fn summary(&self) -> String {
        let lines: Vec<&str> = self.output.lines().collect();
        match lines
            .iter()
            .position(|line| line.contains("ping statistics"))
        {
            Some(at) => lines[at + 1..].join("\n"),
            None => self.output.trim().to_owned(),
        }
    }
}

/// A long ping run in the background (see [`Host::ping_stream`]), killed if dropped unfinished.
pub struct PingStream {
    child: Option<Child>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    what: String,
}

/// The closing statistics of a ping run.
#[derive(Debug, PartialEq, Eq)]
pub struct PingSummary {
    pub transmitted: u32,
    pub received: u32,
    /// Everything ping printed, for failure messages.
    pub output: String,
}

impl PingStream {
    /// Waits (up to `timeout`) for ping to finish and returns its statistics.
    pub fn finish(mut self, timeout: Duration) -> Result<PingSummary> {
        let mut child = self.child.take().context("ping stream already finished")?;
        let deadline = Instant::now() + timeout;
        while child
            .try_wait()
            .with_context(|| format!("waiting for {}", self.what))?
            .is_none()
        {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} still running after {timeout:?}: killed", self.what);
            }
            thread::sleep(PING_POLL);
        }
        let read = |pipe: Option<JoinHandle<Vec<u8>>>| {
            pipe.and_then(|pipe| pipe.join().ok())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default()
        };
        let output = read(self.stdout.take()) + &read(self.stderr.take());
        let (transmitted, received) = parse_ping_statistics(&output)
            .with_context(|| format!("no statistics from {}:\n{output}", self.what))?;
        Ok(PingSummary {
            transmitted,
            received,
            output,
        })
    }
}

impl Drop for PingStream {
    fn drop(&mut self) {
        // Our own child, killed by its handle, never by name.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The packets transmitted and received in ping's statistics line ("1000 packets transmitted,
/// 998 received, +2 errors, 0.2% packet loss, time 10990ms").
fn parse_ping_statistics(output: &str) -> Option<(u32, u32)> {
    let line = output
        .lines()
        .find(|line| line.contains("packets transmitted"))?;
    let mut fields = line.split(", ");
    let count = |field: Option<&str>, label: &str| -> Option<u32> {
        field?.strip_suffix(label)?.trim().parse().ok()
    };
    let transmitted = count(fields.next(), "packets transmitted")?;
    let received = count(fields.next(), "received")?;
    Some((transmitted, received))
}

impl Host {
    /// Starts pinging `target` in the background: `count` echo requests `interval` apart, each
    /// given a second for its reply (`ping -q -c COUNT -i INTERVAL -W 1`). Intervals under 200 ms
    /// need root.
    pub fn ping_stream(
        &self,
        target: Ipv4Addr,
        count: u32,
        interval: Duration,
    ) -> Result<PingStream> {
        let mut command = self.netns.exec("ping");
        command
            .args(["-n", "-q", "-W", "1", "-c", &count.to_string(), "-i"])
            .arg(format!("{:.3}", interval.as_secs_f64()))
            .arg(target.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = format!("`{}`", cmd::show(&command));
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        Ok(PingStream {
            stdout: Some(cmd::drain(child.stdout.take())),
            stderr: Some(cmd::drain(child.stderr.take())),
            child: Some(child),
            what,
        })
    }

    /// Pings `target` three times (`ping -c 3 -W 1 -i 0.2`, at most 5 s in all).
    pub fn ping(&self, target: Ipv4Addr) -> Result<Ping> {
        let deadline = PING_DEADLINE_S.to_string();
        let target = target.to_string();
        let output = cmd::run(
            self.netns.exec("ping").args([
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

    /// Sends `frame` out of this host's `eth0`.
    pub fn send(&self, frame: &Frame) -> Result<()> {
        frames::send(&self.netns, HOST_IFNAME, frame)
            .with_context(|| format!("sending from h{}", self.index))
    }

    /// Starts capturing what this host's `eth0` receives for `duration`.
    pub fn capture(&self, duration: Duration) -> Result<Capture> {
        Capture::start(&self.netns, HOST_IFNAME, duration)
            .with_context(|| format!("capturing on h{}", self.index))
    }

    /// A probe frame from this host to `dst`.
    pub fn probe_to(&self, dst: Mac) -> Frame {
        Frame::probe(dst, self.mac)
    }
}

/// The lab: switch namespace, hosts, and a scratch folder for configs and logs.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    id: u8,
    // Hosts go before the switch: fields drop in order, and either side's deletion takes the veth
    // pairs with it.
    hosts: Vec<Host>,
    switch: Netns,
    dir: tempfile::TempDir,
    files: Cell<u32>,
    bridges: Cell<u32>,
}

/// What the hosts of a lab say on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chatter {
    /// What Linux does by default: IPv6 neighbour discovery, MLD reports, router solicitations.
    Ipv6,
    /// Nothing.
    None,
}

impl Lab {
    /// Builds a lab with `hosts` hosts (1 to 9). Host i has MAC 02:00:00:00:<lab id>:i and
    /// address 10.77.<lab id>.i/24, where the lab id is [`Lab::id`].
    pub fn new(hosts: usize) -> Result<Self> {
        Self::build(hosts, Chatter::Ipv6)
    }

    /// A lab whose hosts never send a frame unprompted: IPv6 is off on their `eth0` from the
    /// start (no neighbour discovery, MLD or router solicitation), and IPv4 has nothing to say
    /// until a test pings. Only the test's own frames cross the switch, so counters and ageing
    /// can be checked exactly.
    pub fn silent(hosts: usize) -> Result<Self> {
        Self::build(hosts, Chatter::None)
    }

    fn build(hosts: usize, chatter: Chatter) -> Result<Self> {
        ensure!(
            (1..=9).contains(&hosts),
            "a lab has 1 to 9 hosts, not {hosts}"
        );
        static LABS: AtomicU32 = AtomicU32::new(0);
        let sequence = LABS.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("vt{:x}t{sequence}", std::process::id());
        ensure!(
            prefix.len() + 2 <= IFNAME_MAX,
            "lab prefix {prefix} too long for interface names"
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .context("creating the lab's scratch folder")?;
        let switch = Netns::new(&format!("{prefix}sw"))?;
        let mut lab = Self {
            prefix,
            // Wrapping is fine: the id only has to differ between labs alive at once.
            id: sequence as u8,
            hosts: Vec::with_capacity(hosts),
            switch,
            dir,
            files: Cell::new(0),
            bridges: Cell::new(0),
        };
        // A host added is owned by the lab at once, so a failure halfway still cleans up all.
        for index in 1..=hosts {
            let host = lab.add_host(index, chatter)?;
            lab.hosts.push(host);
        }
        Ok(lab)
    }

    fn add_host(&self, index: usize, chatter: Chatter) -> Result<Host> {
        let netns = Netns::new(&format!("{}h{index}", self.prefix))?;
        if chatter == Chatter::None {
            // Before eth0 exists: it takes the namespace's defaults when it is registered, so
            // it never sends so much as a router solicitation.
            cmd::run_ok(
                netns
                    .exec("sysctl")
                    .args(["-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"]),
                Duration::from_secs(10),
            )
            .with_context(|| format!("turning IPv6 off in h{index}"))?;
        }
        let id = self.id();
        let mac = Mac([0x02, 0, 0, 0, id, index as u8]);
        let ip = Ipv4Addr::new(10, 77, id, index as u8);
        let port = format!("{}p{index}", self.prefix);
        // Both ends are made where they live: nothing ever appears in the root namespace.
        self.switch
            .ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                HOST_IFNAME,
                "address",
                &mac.to_string(),
                "netns",
                netns.name(),
            ])
            .with_context(|| format!("creating veth {port} for h{index}"))?;
        let host = Host {
            index,
            netns,
            mac,
            ip,
            port,
        };
        host.netns
            .ip(&["addr", "add", &format!("{ip}/24"), "dev", HOST_IFNAME])?;
        host.netns.ip(&["link", "set", HOST_IFNAME, "up"])?;
        self.switch.ip(&["link", "set", &host.port, "up"])?;
        Ok(host)
    }

    /// The lab's number, unique within the process (modulo 256): the MACs' and subnet's 5th/3rd byte.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// The prefix of every name in the lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The switch namespace, where the ports, the agent and the CLI live.
    pub fn switch(&self) -> &Netns {
        &self.switch
    }

    /// Host `index` (1-based, as in its name).
    pub fn host(&self, index: usize) -> &Host {
        assert!(
            (1..=self.hosts.len()).contains(&index),
            "lab {} has hosts 1..={}, not h{index}",
            self.prefix,
            self.hosts.len()
        );
        &self.hosts[index - 1]
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// A bridge with a name unique to this lab, holding the ports of `hosts` (1-based) in that
    /// order, each with the default VLANs.
    pub fn bridge(&self, hosts: &[usize]) -> Bridge {
        let sequence = self.bridges.get();
        self.bridges.set(sequence + 1);
        Bridge {
            name: self.bridge_name(sequence),
            ageing_time: None,
            ports: hosts
                .iter()
                .map(|&i| BridgePort::new(&self.host(i).port))
                .collect(),
            mode: None,
            host_port: None,
            max_learned: None,
            link_local: None,
            vlan_stats: false,
        }
    }

    fn bridge_name(&self, sequence: u32) -> String {
        format!("{}b{sequence}", self.prefix)
    }

    /// Writes `contents` to a fresh file in the lab's scratch folder.
    pub fn write_file(&self, stem: &str, contents: &str) -> Result<PathBuf> {
        let path = self.scratch_path(stem);
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// A fresh path in the lab's scratch folder.
    pub fn scratch_path(&self, stem: &str) -> PathBuf {
        let sequence = self.files.get();
        self.files.set(sequence + 1);
        self.dir.path().join(format!("{sequence}-{stem}"))
    }

    /// Writes the agent's config for `bridges`.
    pub fn write_config(&self, bridges: &[Bridge]) -> Result<PathBuf> {
        self.write_file("vbr.toml", &config_toml(bridges))
    }

    /// Starts a capture of `window` on every host, sends `frame` from `sender` once they listen,
    /// and returns the captures (index 0 is h1) to be read. The sender's own transmission is not
    /// captured.
    pub fn capture_send(
        &self,
        sender: &Host,
        frame: &Frame,
        window: Duration,
    ) -> Result<Vec<Capture>> {
        let captures = self
            .hosts
            .iter()
            .map(|host| host.capture(window))
            .collect::<Result<Vec<_>>>()?;
        sender.send(frame)?;
        Ok(captures)
    }

    /// Checks that every host can ping every other one listed, failing with ping's transcript.
    pub fn ping_pairs(&self, pairs: &[(usize, usize)]) -> Result<()> {
        for &(from, to) in pairs {
            let ping = self.host(from).ping(self.host(to).ip)?;
            if !ping.success {
                bail!("h{from} -> h{to} ping failed:\n{}", ping.output);
            }
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Agents stop before the lab (they borrow it); one that was killed, or left its bridges
        // forwarding on purpose, may leave pins. Their names are the lab's own, so they are ours
        // to remove; removing a link's pin detaches it once no process holds it.
        for sequence in 0..self.bridges.get() {
            let pins = cli::pin_dir(&self.bridge_name(sequence));
            if pins.exists() {
                eprintln!("warning: {} left behind; removing it", pins.display());
                if let Err(error) = fs::remove_dir_all(&pins) {
                    eprintln!("warning: removing {}: {error}", pins.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_statistics_are_parsed() {
        let output = "PING 10.77.0.2 (10.77.0.2) 56(84) bytes of data.\n\n\
                      --- 10.77.0.2 ping statistics ---\n\
                      1000 packets transmitted, 998 received, +2 errors, 0.2% packet loss, time 10990ms\n\
                      rtt min/avg/max/mdev = 0.030/0.061/0.332/0.020 ms\n";
        assert_eq!(parse_ping_statistics(output), Some((1000, 998)));
        assert_eq!(
            parse_ping_statistics("1 packets transmitted, 1 received, 0% packet loss"),
            Some((1, 1))
        );
        assert_eq!(
            parse_ping_statistics("ping: connect: Network is unreachable"),
            None
        );
    }
}
