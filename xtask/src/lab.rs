//! `cargo xtask run` without arguments: a throwaway lab of three hosts around vbr, for an operator
//! to watch — pings crossing the switch, its ports and FDB — until Ctrl-C or a bounded time. The
//! lab is made and torn down by vbr-tests' guards, on success, error and Ctrl-C alike.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vbr_tests::{Agent, Lab, interrupt};

const HOSTS: usize = 3;
/// Pairs of hosts (1-based) pinged through the switch.
const PINGS: [(usize, usize); 3] = [(1, 2), (1, 3), (2, 3)];
/// How long the demo runs after the pings, unless VBR_DEMO_SECS says otherwise.
const DEFAULT_SECS: u64 = 60;
const SECS_ENV: &str = "VBR_DEMO_SECS";
const FDB_EVERY: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(100);

pub fn demo(vbr: &Path) -> Result<()> {
    let secs = run_time()?;
    interrupt::install().context("handling Ctrl-C")?;

    step(&format!(
        "building a lab: a switch namespace and {HOSTS} hosts"
    ));
    let lab = Lab::new(HOSTS).context("building the lab")?;
    println!("  switch namespace: {}", lab.switch().name());
    for host in lab.hosts() {
        println!(
            "  h{}: namespace {}, eth0 {} {}/24  <->  switch port {}",
            host.index,
            host.netns.name(),
            host.mac,
            host.ip,
            host.port
        );
    }
    if interrupted() {
        return Ok(());
    }

    let bridge = lab.bridge(&[1, 2, 3]);
    step(&format!(
        "starting `vbr agent` in {} with bridge {}",
        lab.switch().name(),
        bridge.name
    ));
    let agent =
        Agent::start(&lab, vbr, std::slice::from_ref(&bridge)).context("starting the agent")?;
    let cli = agent.cli();
    let show = |object: &str| -> Result<()> {
        step(&format!("vbr {object} show"));
        print!("{}", cli.run(&[object, "show", "--bridge", &bridge.name])?);
        Ok(())
    };
    show("port")?;

    for (from, to) in PINGS {
        let (source, target) = (lab.host(from), lab.host(to));
        step(&format!("ping h{from} -> h{to} ({})", target.ip));
        let ping = source.ping(target.ip)?;
        if interrupted() {
            return Ok(());
        }
        println!("{}", indent(&ping.summary()));
        if !ping.success {
            bail!(
                "ping h{from} -> h{to} did not cross vbr:\n{}\n{}",
                ping.output,
                agent.logs()
            );
        }
    }
    show("fdb")?;

    step(&format!(
        "vbr is switching; the FDB every {}s for {secs}s (Ctrl-C to stop sooner, {SECS_ENV} to change)",
        FDB_EVERY.as_secs()
    ));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut next_show = Instant::now() + FDB_EVERY;
    while Instant::now() < deadline {
        if interrupted() {
            return Ok(());
        }
        if Instant::now() >= next_show {
            show("fdb")?;
            next_show += FDB_EVERY;
        }
        thread::sleep(TICK);
    }

    step("tearing down: stopping the agent, deleting the namespaces");
    let exit = agent.stop().context("stopping the agent")?;
    if !exit.status.success() {
        bail!("the agent exited with {}:\n{}", exit.status, exit.stderr);
    }
    drop(lab);
    println!("done");
    Ok(())
}

/// The demo's run time: VBR_DEMO_SECS, or [`DEFAULT_SECS`].
fn run_time() -> Result<u64> {
    match std::env::var(SECS_ENV) {
        Ok(secs) => secs
            .trim()
            .parse()
            .with_context(|| format!("{SECS_ENV}={secs:?} is not a number of seconds")),
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_SECS),
        Err(error) => Err(error).with_context(|| format!("reading {SECS_ENV}")),
    }
}

/// Whether Ctrl-C (or SIGTERM) arrived; says so, as the guards are about to tear the lab down.
fn interrupted() -> bool {
    let raised = interrupt::raised();
    if raised {
        step("interrupted: tearing down the agent and the namespaces");
    }
    raised
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
