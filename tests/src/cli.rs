//! The `vbr` command line, run in the switch namespace, with its JSON output parsed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cmd;
use crate::frames::Mac;
use crate::netns;

/// Where the agent pins each bridge's maps: `<PIN_ROOT>/<bridge>/`.
pub const PIN_ROOT: &str = "/sys/fs/bpf/vbr";
/// Bound on one CLI invocation.
const CLI_TIMEOUT: Duration = Duration::from_secs(10);

/// The pin folder of `bridge`.
pub fn pin_dir(bridge: &str) -> PathBuf {
    Path::new(PIN_ROOT).join(bridge)
}

/// One entry of `vbr port show -j`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Port {
    pub bridge: String,
    pub ifname: String,
    pub ifindex: u32,
    pub mode: String,
    pub pvid: u16,
    pub tagged: Vec<u16>,
    pub attached: bool,
}

/// One entry of `vbr fdb show -j`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct FdbEntry {
    pub bridge: String,
    pub mac: String,
    pub vlan: u16,
    pub port: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub age_s: u64,
}

/// `vbr` run inside a network namespace (through nsenter, so it sees the host's bpffs).
#[derive(Clone, Debug)]
pub struct Cli {
    vbr: PathBuf,
    netns: PathBuf,
}

impl Cli {
    /// The CLI at `vbr`, run in the namespace named `netns`.
    pub fn new(vbr: &Path, netns: &str) -> Self {
        Self {
            vbr: vbr.to_owned(),
            netns: netns::path_of(netns),
        }
    }

    /// `vbr ARGS` ready to run in the namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.netns.display()))
            .arg(&self.vbr)
            .args(args);
        command
    }

    /// Runs `vbr ARGS` and returns its stdout, failing on a non-zero exit.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let output = cmd::run_ok(&mut self.command(args), CLI_TIMEOUT)?;
        String::from_utf8(output.stdout).with_context(|| format!("vbr {}: stdout", args.join(" ")))
    }

    /// Runs `vbr ARGS` and parses its stdout as JSON.
    pub fn json<T: DeserializeOwned>(&self, args: &[&str]) -> Result<T> {
        let stdout = self.run(args)?;
        serde_json::from_str(&stdout)
            .with_context(|| format!("vbr {}: parsing JSON output {stdout:?}", args.join(" ")))
    }

    /// `vbr port show -j --bridge BRIDGE`
    pub fn port_show(&self, bridge: &str) -> Result<Vec<Port>> {
        self.json(&["port", "show", "-j", "--bridge", bridge])
    }

    /// `vbr fdb show -j --bridge BRIDGE`
    pub fn fdb_show(&self, bridge: &str) -> Result<Vec<FdbEntry>> {
        self.json(&["fdb", "show", "-j", "--bridge", bridge])
    }

    /// `vbr fdb add MAC --port PORT --bridge BRIDGE`
    pub fn fdb_add(&self, bridge: &str, mac: Mac, port: &str) -> Result<()> {
        let mac = mac.to_string();
        self.run(&["fdb", "add", &mac, "--port", port, "--bridge", bridge])
            .map(drop)
    }

    /// `vbr fdb del MAC --bridge BRIDGE`
    pub fn fdb_del(&self, bridge: &str, mac: Mac) -> Result<()> {
        let mac = mac.to_string();
        self.run(&["fdb", "del", &mac, "--bridge", bridge])
            .map(drop)
    }
}
