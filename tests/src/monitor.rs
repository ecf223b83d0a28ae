//! `vbr monitor -j` as a child process of the test, its events collected as they come and the
//! process killed when its guard drops.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::{Cli, Event};
use crate::cmd;
use crate::frames::Mac;

/// How long [`Monitor::wait_listening`] waits for each fresh entry's event.
const LISTEN_POLL: Duration = Duration::from_millis(200);

/// A running `vbr monitor -j`.
pub struct Monitor {
    child: Child,
    lines: Receiver<(Instant, String)>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// Every event read so far, with when it was read.
    seen: Vec<(Instant, Event)>,
}

impl Monitor {
    /// Starts `vbr monitor -j` in the CLI's namespace. It only sees events from the moment the
    /// agent accepts it: wait for an event the test causes before relying on it.
    pub fn start(cli: &Cli) -> Result<Self> {
        let mut command = cli.command(&["monitor", "-j"]);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting `{}`", cmd::show(&command)))?;
        let stdout = child.stdout.take().context("monitor's stdout")?;
        let stderr = Some(cmd::drain(child.stderr.take()));
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || read_lines(stdout, sender));
        Ok(Self {
            child,
            lines,
            stderr,
            seen: Vec::new(),
        })
    }

    /// Waits until the monitor listens: the agent only relays events to a monitor from the
    /// moment it accepted it, so static entries (fresh MACs `02:00:00:ed:<tag>:<n>` behind
    /// `port`) are added until one's "added" event shows up; returns that MAC.
    pub fn wait_listening(
        &mut self,
        cli: &Cli,
        bridge: &str,
        port: &str,
        tag: u8,
        timeout: Duration,
    ) -> Result<Mac> {
        let deadline = Instant::now() + timeout;
        for attempt in 1..=u8::MAX {
            let mac = Mac([0x02, 0, 0, 0xed, tag, attempt]);
            cli.fdb_add(bridge, mac, port)?;
            let added = self.wait_for("added", LISTEN_POLL, |event| {
                event.event == "added" && event.mac == mac.to_string()
            });
            if added.is_ok() {
                return Ok(mac);
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        bail!(
            "vbr monitor saw no event {timeout:?} after it started: {:#?}",
            self.events()
        )
    }

    /// The first event (seen before or arriving within `timeout`) that `wanted` accepts, and
    /// when it was read. `what` names it for the failure message.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&Event) -> bool,
    ) -> Result<(Instant, Event)> {
        if let Some(found) = self.seen.iter().find(|(_, event)| wanted(event)) {
            return Ok(found.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let event: Event = serde_json::from_str(&line)
                        .with_context(|| format!("`vbr monitor -j` printed {line:?}"))?;
                    self.seen.push((at, event.clone()));
                    if wanted(&event) {
                        return Ok((at, event));
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!(
                    "no {what} event within {timeout:?}; events seen: {:#?}",
                    self.events()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    let stderr = self
                        .stderr
                        .take()
                        .and_then(|stderr| stderr.join().ok())
                        .unwrap_or_default();
                    bail!(
                        "`vbr monitor -j` ended while waiting for a {what} event: {}; events seen: {:#?}",
                        String::from_utf8_lossy(&stderr).trim(),
                        self.events()
                    );
                }
            }
        }
    }

    /// Every event read so far, in order.
    pub fn events(&self) -> Vec<&Event> {
        self.seen.iter().map(|(_, event)| event).collect()
    }
}

fn read_lines(stdout: ChildStdout, sender: mpsc::Sender<(Instant, String)>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        if sender.send((Instant::now(), line)).is_err() {
            return;
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // Our own child, killed by its handle, never by name; its stdout then closes and the
        // reading thread ends.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
