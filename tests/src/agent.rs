//! The vbr agent as a child process of the test, stopped (SIGTERM, then SIGKILL) when its guard
//! drops.
//!
//! An agent leaves its bridges forwarding when it stops, for the next agent to adopt; tests run it
//! with `--detach-on-exit` unless they say otherwise ([`Options::keep_bridges`]), so that stopping
//! it removes everything. Pins a stopped agent left behind are the lab's to remove
//! ([`Lab`]'s drop), never the guard's: a second agent on the same bridges must not take the first
//! one's pins away.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::{self, Cli};
use crate::config::Bridge;
use crate::lab::Lab;

/// How long an agent may take to bring up (or adopt) every bridge.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// A bad config is refused at once; this bounds "at once" generously for a loaded machine.
pub const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// Pin folders of the agent's bridges still present after it exited.
    pub leftover_pins: Vec<PathBuf>,
}

/// How the agent is run.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--detach-on-exit`: the agent removes its bridges when it exits. On by default, so that a
    /// test leaves nothing behind.
    pub detach_on_exit: bool,
    /// `--metrics-addr`: where it serves Prometheus text, in the switch namespace.
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            detach_on_exit: true,
            metrics_addr: None,
        }
    }
}

impl Options {
    /// An agent as an operator runs it: its bridges keep forwarding after it exits, for the next
    /// agent to adopt. The test then ends with an agent run with the defaults, or `vbr bridge del`.
    pub fn keep_bridges() -> Self {
        Self {
            detach_on_exit: false,
            ..Self::default()
        }
    }
}

/// A running `vbr agent`, in the lab's switch namespace.
pub struct Agent<'lab> {
    lab: &'lab Lab,
    child: Option<Child>,
    bridges: Vec<Bridge>,
    config: PathBuf,
    /// Where the agent reports readiness (sd_notify's NOTIFY_SOCKET, as under systemd).
    notify: UnixDatagram,
    stdout: PathBuf,
    stderr: PathBuf,
    cli: Cli,
}

impl<'lab> Agent<'lab> {
    /// Writes a config for `bridges`, starts the agent on it with the default [`Options`] and
    /// waits until it is ready (see [`Agent::start_with`]).
    pub fn start(lab: &'lab Lab, vbr: &Path, bridges: &[Bridge]) -> Result<Self> {
        let config = lab.write_config(bridges)?;
        Self::start_with(lab, vbr, &config, bridges, &Options::default())
    }

    /// Starts the agent on `config`, which holds `bridges`, and waits (bounded by
    /// [`READY_TIMEOUT`]) until it says it is ready and lists every port of `bridges` as
    /// attached. The config may be one an earlier agent of the lab ran: this one then adopts the
    /// bridges it left.
    pub fn start_with(
        lab: &'lab Lab,
        vbr: &Path,
        config: &Path,
        bridges: &[Bridge],
        options: &Options,
    ) -> Result<Self> {
        let mut agent = Self::spawn(lab, vbr, config, bridges, options)?;
        agent.wait_ready()?;
        Ok(agent)
    }

    /// Starts the agent on `config` without waiting for it. `bridges` are the bridges the config
    /// holds, whose ports [`Agent::start_with`] waits for and whose pins [`Exit`] reports.
    pub fn spawn(
        lab: &'lab Lab,
        vbr: &Path,
        config: &Path,
        bridges: &[Bridge],
        options: &Options,
    ) -> Result<Self> {
        let stdout = lab.scratch_path("agent.stdout");
        let stderr = lab.scratch_path("agent.stderr");
        let notify_path = lab.scratch_path("agent.notify");
        let notify = UnixDatagram::bind(&notify_path)
            .with_context(|| format!("binding {}", notify_path.display()))?;
        notify
            .set_read_timeout(Some(POLL))
            .context("setting the notify socket's timeout")?;
        let cli = Cli::new(vbr, lab.switch().name());
        let mut command = cli.command(&["agent", "--config"]);
        command.arg(config);
        if options.detach_on_exit {
            command.arg("--detach-on-exit");
        }
        if let Some(address) = options.metrics_addr {
            command.arg("--metrics-addr").arg(address.to_string());
        }
        command
            // nsenter changes only the network namespace: the path means the same to the agent.
            .env("NOTIFY_SOCKET", &notify_path)
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
            config: config.to_owned(),
            notify,
            stdout,
            stderr,
            cli,
        })
    }

    /// The CLI, run in the agent's namespace.
    pub fn cli(&self) -> &Cli {
        &self.cli
    }

    /// The config file the agent runs (and re-reads on reload).
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Sends SIGHUP: the agent re-reads its config.
    pub fn hangup(&self) -> Result<()> {
        let child = self.child.as_ref().context("agent already stopped")?;
        // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
        if unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) } != 0 {
            bail!("SIGHUP to the agent: {}", std::io::Error::last_os_error());
        }
        Ok(())
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

    /// Waits for the agent's READY=1 (sent once every bridge is up), then checks that
    /// `vbr port show` lists every configured port as attached.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut message = [0u8; 512];
        loop {
            if let Some(status) = self.try_wait()? {
                bail!(
                    "agent in {} exited ({status}) before it was ready\n{}",
                    self.lab.switch().name(),
                    self.logs()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "agent in {} not ready (no READY=1) after {READY_TIMEOUT:?}\n{}",
                    self.lab.switch().name(),
                    self.logs()
                );
            }
            match self.notify.recv(&mut message) {
                Ok(len) => {
                    let states = String::from_utf8_lossy(&message[..len]);
                    if states.lines().any(|state| state == "READY=1") {
                        break;
                    }
                }
                // The socket has a receive timeout, so any signal (a cgroup freeze included)
                // ends the wait with EINTR instead of restarting it: wait again.
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(error) => return Err(error).context("reading the agent's notify socket"),
            }
        }
        let missing = self.unattached_ports()?;
        if !missing.is_empty() {
            bail!(
                "agent in {} ready, but ports not attached: {missing:?}\n{}",
                self.lab.switch().name(),
                self.logs()
            );
        }
        Ok(())
    }

    /// Configured ports that `vbr port show` does not list as attached.
    fn unattached_ports(&self) -> Result<Vec<String>> {
        let mut missing = Vec::new();
        for bridge in &self.bridges {
            let shown = self.cli.port_show(&bridge.name)?;
            for port in &bridge.ports {
                let attached = shown
                    .iter()
                    .any(|p| p.bridge == bridge.name && p.ifname == port.ifname && p.attached);
                if !attached {
                    missing.push(format!("{}/{}", bridge.name, port.ifname));
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

    /// Waits up to `timeout` for an agent expected to refuse to run to exit. If it keeps running,
    /// it is stopped and this fails.
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

    /// Whether the agent is still running (it has not exited, crashed or been killed).
    pub fn is_running(&mut self) -> Result<bool> {
        Ok(self.try_wait()?.is_none())
    }

    /// Kills the agent with SIGKILL, as a crash or the OOM killer would: it gets no chance to
    /// clean up. Returns how it ended (normally killed by the signal, or already exited).
    pub fn kill(mut self) -> Result<Exit> {
        let started = Instant::now();
        let mut child = self.child.take().context("agent already stopped")?;
        // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        let status = child.wait().context("reaping the killed agent")?;
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

/// Starts the agent on `config` (text) and checks that it refuses it: it exits non-zero within
/// [`REFUSAL_TIMEOUT`], its stderr names every one of `names`, and it leaves no pins for `bridge`
/// and no XDP program on the lab's ports. Panics otherwise, for tests.
pub fn assert_refused(lab: &Lab, vbr: &Path, bridge: &Bridge, config: &str, names: &[&str]) {
    let path = lab
        .write_file("bad.toml", config)
        .expect("writing the config");
    let agent = Agent::spawn(
        lab,
        vbr,
        &path,
        std::slice::from_ref(bridge),
        &Options::default(),
    )
    .expect("spawning the agent");
    let exit = agent
        .wait_exit(REFUSAL_TIMEOUT)
        .expect("the agent to refuse its config");
    assert!(
        !exit.status.success(),
        "agent accepted:\n{config}\nstderr:\n{}",
        exit.stderr
    );
    for name in names {
        assert!(
            exit.stderr.contains(name),
            "stderr does not name {name:?}:\n{}",
            exit.stderr
        );
    }
    assert!(
        exit.leftover_pins.is_empty(),
        "pins left: {:?}",
        exit.leftover_pins
    );
    assert!(!cli::pin_dir(&bridge.name).exists());
    for host in lab.hosts() {
        assert!(
            !lab.switch().has_xdp(&host.port).expect("ip link"),
            "XDP program left on {} by a refused config",
            host.port
        );
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
    }
}
