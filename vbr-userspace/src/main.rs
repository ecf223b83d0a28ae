//! `vbr`: the agent and the CLI in one binary.
mod cli;

use std::{io::IsTerminal as _, process::ExitCode};

use anyhow::Context as _;
use clap::Parser as _;
use cli::{AgentAction, AgentArgs, Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vbr: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    // Die quietly on a closed pipe (`vbr fdb show | head`), as other command-line tools do.
    // SAFETY: restoring a default signal disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // Under systemd, journald stamps every line itself.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        logs.without_time().init();
    } else {
        logs.init();
    }
    let Cli { json, command } = Cli::parse();
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!(
            "vbr needs root: its bridges live in pinned eBPF maps and the agent's control socket, \
             both for root only (try sudo)"
        );
    }
    match command {
        Command::Agent(AgentArgs {
            action: Some(AgentAction::Reload),
            ..
        }) => vbr::agent::request_reload(),
        Command::Agent(AgentArgs {
            action: None,
            config,
            detach_on_exit,
            metrics_addr,
        }) => {
            let options = vbr::agent::Options {
                config: config.context("--config FILE is required")?,
                detach_on_exit,
                metrics_addr,
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(vbr::agent::run(options))
        }
        command => Cli::run_inspection(command, json),
    }
}
