//! A throwaway switch lab: one switch namespace whose ports are veth pairs to N host namespaces.
//!
//! ```text
//!   <prefix>h1: eth0 ──veth── <prefix>p1 ┐
//!   <prefix>h2: eth0 ──veth── <prefix>p2 ├ <prefix>sw (vbr runs here)
//!   <prefix>h3: eth0 ──veth── <prefix>p3 ┘
//! ```
//!
//! Every name carries a prefix unique to the lab (`vt<pid in hex>t<n>`), so labs of parallel tests
//! never meet, and everything lives inside namespaces the lab deletes when it drops.

use std::cell::Cell;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::cmd;
use crate::frames::{self, Capture, Frame, Mac};
use crate::netns::Netns;

/// Interface name of every host's end of its veth.
pub const HOST_IFNAME: &str = "eth0";
/// Linux's IFNAMSIZ less the NUL.
const IFNAME_MAX: usize = 15;
/// Bound on one ping run (on top of ping's own -c/-W).
const PING_DEADLINE_S: u32 = 5;

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

impl Host {
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

/// A bridge of the agent's config: a name unique to the lab and the switch ports it holds.
#[derive(Clone, Debug)]
pub struct Bridge {
    pub name: String,
    pub ports: Vec<String>,
}

/// The agent's config (TOML) for `bridges`.
pub fn config_toml(bridges: &[Bridge]) -> String {
    let mut toml = String::new();
    for bridge in bridges {
        toml += &format!("[[bridge]]\nname = \"{}\"\n", bridge.name);
        for port in &bridge.ports {
            toml += &format!("\n[[bridge.port]]\nifname = \"{port}\"\n");
        }
        toml += "\n";
    }
    toml
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

impl Lab {
    /// Builds a lab with `hosts` hosts (1 to 9). Host i has MAC 02:00:00:00:<lab id>:i and
    /// address 10.77.<lab id>.i/24, where the lab id is [`Lab::id`].
    pub fn new(hosts: usize) -> Result<Self> {
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
            let host = lab.add_host(index)?;
            lab.hosts.push(host);
        }
        Ok(lab)
    }

    fn add_host(&self, index: usize) -> Result<Host> {
        let netns = Netns::new(&format!("{}h{index}", self.prefix))?;
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

    /// A bridge with a name unique to this lab, holding the ports of `hosts` (1-based).
    pub fn bridge(&self, hosts: &[usize]) -> Bridge {
        let sequence = self.bridges.get();
        self.bridges.set(sequence + 1);
        Bridge {
            name: format!("{}b{sequence}", self.prefix),
            ports: hosts.iter().map(|&i| self.host(i).port.clone()).collect(),
        }
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
