//! Running external commands (ip, ping, bpftool, vbr) with a bound on their run time.

use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How often a running child is polled for its exit.
const POLL: Duration = Duration::from_millis(20);

/// Runs `cmd` to completion with stdout and stderr captured, killing it if it outlives `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let shown = show(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{shown}`"))?;
    // The pipes are drained on their own threads so that a chatty child cannot block on a full pipe
    // while we poll it.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for `{shown}`"))?
        {
            break status;
        }
        if Instant::now() >= deadline {
            // Our own child, killed by its handle (its pid), never by name.
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{shown}` still running after {timeout:?}: killed");
        }
        thread::sleep(POLL);
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Like [`run`], but a non-zero exit is an error carrying the command's stderr.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let shown = show(cmd);
    let output = run(cmd, timeout)?;
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

/// The command line as a shell would show it, for messages.
pub fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads `pipe` to its end on a thread of its own; the thread returns what it read.
pub(crate) fn drain<R: std::io::Read + Send + 'static>(
    pipe: Option<R>,
) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}
