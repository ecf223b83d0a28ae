//! `cargo xtask`: bootstraps the eBPF toolchain, then builds, runs, tests or benchmarks vbr.
//! Building the datapath itself is vbr-userspace/build.rs's job (aya-build); xtask only runs things.

mod bench;
mod bootstrap;
mod build;
mod cmd;
mod lab;
mod root;
mod run;
mod test;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    bin_name = "cargo xtask",
    about = "Build, run and test vbr; every task first installs what is missing"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build vbr and its XDP datapath (target/debug/vbr, or target/release/vbr)
    Build {
        /// Optimised build, into target/release/vbr
        #[arg(long)]
        release: bool,
    },
    /// Build vbr and run it as root with ARGS; with no ARGS, run the lab demo
    Run {
        /// Run the optimised build
        #[arg(long)]
        release: bool,
        /// Arguments for vbr, after `--` (e.g. `-- port show -j`)
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Run every test of the workspace as root (unit, datapath test-run and namespace tests),
    /// then check the forwarding bench (`bench --quick`)
    Test {
        /// Arguments for `cargo test`, after `--` (e.g. a test name filter)
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Benchmark vbr's forwarding against the Linux bridge and a bare XDP redirect, as root;
    /// writes docs/benchmarks.md and docs/benchmarks.svg
    Bench {
        /// Only check that every variant forwards (seconds; measures and writes nothing)
        #[arg(long, conflicts_with = "only")]
        quick: bool,
        /// Only measure the 64-byte variants whose name contains TEXT (repeatable: any of them)
        /// and print their rates (profiling, before/after comparisons; writes nothing)
        #[arg(long, value_name = "TEXT")]
        only: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Build { release } => {
            bootstrap::run()?;
            build::vbr(release).map(drop)
        }
        Task::Run { release, args } => run::vbr(release, &args),
        Task::Test { args } => test::workspace(&args),
        Task::Bench { quick, only } => bench::run(if quick {
            bench::Mode::Quick
        } else if only.is_empty() {
            bench::Mode::Full
        } else {
            bench::Mode::Only(only)
        }),
    }
}
