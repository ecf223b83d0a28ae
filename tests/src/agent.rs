//! The vbr agent as a child process of the test, stopped (SIGTERM, then SIGKILL) when its guard
//! drops.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::{self, Cli};
use crate::lab::{Bridge, Lab};

/// How long an agent may take to attach every port.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an agent may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

/// How an agent ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub stderr: String,
    /// From the start of the wait (or of the stop) to the exit.
    pub elapsed: Duration,
    /// Pin folders of the agent's bridges still present after it exited (the guard then removes
    /// them).
    pub leftover_pins: Vec<PathBuf>,
}

/// A running `vbr agent`, in the lab's switch namespace.
pub struct Agent<'lab> {
    lab: &'lab Lab,
    child: Option<Child>,
    bridges: Vec<Bridge>,
    stdout: PathBuf,
    stderr: PathBuf,
    cli: Cli,
}

impl<'lab> Agent<'lab> {
    /// Writes a config for `bridges`, starts the agent on it and waits until every port of every
    /// bridge is attached (bounded by [`READY_TIMEOUT`]).
    pub fn start(lab: &'lab Lab, vbr: &Path, bridges: &[Bridge]) -> Result<Self> {
        let config = lab.write_config(bridges)?;
        let mut agent = Self::spawn(lab, vbr, &config, bridges)?;
        agent.wait_ready()?;
        Ok(agent)
    }

    /// Starts the agent on `config` without waiting for it. `bridges` names the bridges whose pins
    /// the guard removes if the agent leaves them behind.
    pub fn spawn(lab: &'lab Lab, vbr: &Path, config: &Path, bridges: &[Bridge]) -> Result<Self> {
        let stdout = lab.scratch_path("agent.stdout");
        let stderr = lab.scratch_path("agent.stderr");
        let cli = Cli::new(vbr, lab.switch().name());
        let mut command = cli.command(&["agent", "--config"]);
        command
            .arg(config)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).context("creating the agent's stdout log")?)
            .stderr(File::create(&stderr).context("creating the agent's stderr log")?)
            // Its own process group: a Ctrl-C at the terminal reaches us, and we stop the agent.
            .process_group(0);
        // nsenter execs vbr (no --fork), so the child's pid is the agent's.
        let child = command
            .spawn()
            .with_context(|| format!("starting `{}`", crate::cmd::show(&command)))?;
        Ok(Self {
            lab,
            child: Some(child),
            bridges: bridges.to_vec(),
            stdout,
            stderr,
            cli,
        })
    }

    /// The CLI, run in the agent's namespace.
    pub fn cli(&self) -> &Cli {
        &self.cli
    }

    /// The agent's stdout and stderr so far, for failure messages.
    pub fn logs(&self) -> String {
        let read = |path: &Path| fs::read_to_string(path).unwrap_or_default();
        format!(
            "--- agent stdout ---\n{}--- agent stderr ---\n{}",
            read(&self.stdout),
            read(&self.stderr)
        )
    }

    /// Waits until `vbr port show` lists every configured port as attached.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait()? {
                bail!(
                    "agent in {} exited ({status}) before attaching its ports\n{}",
                    self.lab.switch().name(),
                    self.logs()
                );
            }
            let missing = self.unattached_ports();
            match &missing {
                Ok(missing) if missing.is_empty() => return Ok(()),
                _ if Instant::now() >= deadline => bail!(
                    "agent in {} not ready after {READY_TIMEOUT:?}: {}\n{}",
                    self.lab.switch().name(),
                    match missing {
                        Ok(missing) => format!("ports not attached: {missing:?}"),
                        Err(error) => format!("{error:#}"),
                    },
                    self.logs()
                ),
                _ => thread::sleep(POLL),
            }
        }
    }

    /// Configured ports that `vbr port show` does not list as attached.
    fn unattached_ports(&self) -> Result<Vec<String>> {
        let mut missing = Vec::new();
        for bridge in &self.bridges {
            let shown = self.cli.port_show(&bridge.name)?;
            for port in &bridge.ports {
                let attached = shown
                    .iter()
                    .any(|p| p.bridge == bridge.name && &p.ifname == port && p.attached);
                if !attached {
                    missing.push(format!("{}/{port}", bridge.name));
                }
            }
        }
        Ok(missing)
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match &mut self.child {
            Some(child) => child.try_wait().context("polling the agent"),
            None => bail!("agent already stopped"),
        }
    }

    /// Waits up to `timeout` for an agent expected to refuse its config to exit. If it keeps
    /// running, it is stopped and this fails.
    pub fn wait_exit(mut self, timeout: Duration) -> Result<Exit> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait()? {
                self.child = None;
                return Ok(self.exit(status, started));
            }
            if started.elapsed() >= timeout {
                bail!(
                    "agent still running {timeout:?} after start (expected it to exit)\n{}",
                    self.logs()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Sends SIGTERM and waits (bounded) for the agent to exit; returns how it exited.
    pub fn stop(mut self) -> Result<Exit> {
        let started = Instant::now();
        let status = self.terminate()?;
        Ok(self.exit(status, started))
    }

    fn exit(&self, status: ExitStatus, started: Instant) -> Exit {
        Exit {
            status,
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
            elapsed: started.elapsed(),
            leftover_pins: self.leftover_pins(),
        }
    }

    fn leftover_pins(&self) -> Vec<PathBuf> {
        self.bridges
            .iter()
            .map(|bridge| cli::pin_dir(&bridge.name))
            .filter(|pins| pins.exists())
            .collect()
    }

    fn terminate(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("agent already stopped");
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().context("waiting for the agent")? {
                return Ok(status);
            }
            thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "agent (pid {pid}) ignored SIGTERM for {STOP_TIMEOUT:?}: killed\n{}",
            self.logs()
        )
    }
}

impl Drop for Agent<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "agent in {} during the failed test:\n{}",
                self.lab.switch().name(),
                self.logs()
            );
        }
        if self.child.is_some()
            && let Err(error) = self.terminate()
        {
            eprintln!("warning: stopping the agent: {error:#}");
        }
        // A killed agent cannot unpin; the pins carry our unique bridge names, so they are ours.
        for pins in self.leftover_pins() {
            eprintln!("warning: agent left {} behind; removing it", pins.display());
            let _ = fs::remove_dir_all(&pins);
        }
    }
}
