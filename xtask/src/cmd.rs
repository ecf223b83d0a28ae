//! Running external commands: echoed (`==> cargo build -p vbr-userspace`) when they change
//! something, silent when they only probe.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Echoes `cmd`, runs it with the terminal's stdio and fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    println!("==> {line}");
    let status = cmd.status().with_context(|| format!("starting `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` silently and returns its stdout; on failure the error carries its stderr.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let line = display(cmd);
    let output = cmd.output().with_context(|| format!("starting `{line}`"))?;
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("reading the output of `{line}`"))
}

/// Echoes `cmd` and replaces this process with it, so that signals (Ctrl-C to a `vbr agent`)
/// reach it directly. Returns only if it could not be started.
pub fn exec(cmd: &mut Command) -> anyhow::Error {
    use std::os::unix::process::CommandExt;

    let line = display(cmd);
    println!("==> {line}");
    anyhow::Error::new(cmd.exec()).context(format!("executing `{line}`"))
}

/// The command as a shell would show it, with the variables it sets in front.
fn display(cmd: &Command) -> String {
    let vars = cmd.get_envs().filter_map(|(name, value)| {
        value.map(|value| format!("{}={}", name.display(), value.display()))
    });
    let words = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|word| word.display().to_string());
    vars.chain(words).collect::<Vec<_>>().join(" ")
}
