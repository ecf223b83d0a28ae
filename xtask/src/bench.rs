//! `cargo xtask bench`: vbr's forwarding benchmark (vbr-userspace/benches/forwarding), as root.
//! The full run writes docs/benchmarks.md and docs/benchmarks.svg; `--quick` only checks that
//! every variant forwards, and is part of `cargo xtask test` so that the bench never rots.

use anyhow::{Context, Result};

use crate::{bootstrap, build, cmd, root};

/// Where the full run writes its results, from the workspace root.
const RESULTS: &str = "docs/benchmarks.md";

pub fn run(quick: bool) -> Result<()> {
    root::require("bench")?;
    bootstrap::run()?;
    forwarding(quick)
}

/// Runs the bench; the caller has bootstrapped and checked for root.
pub fn forwarding(quick: bool) -> Result<()> {
    let mut cargo = build::cargo();
    cargo.args([
        "bench",
        "-p",
        "vbr-userspace",
        "--bench",
        "forwarding",
        "--",
    ]);
    if quick {
        cargo.arg("--quick");
    } else {
        cargo
            .arg("--output")
            .arg(build::workspace_root().join(RESULTS));
    }
    cmd::run(&mut cargo).context(if quick {
        "checking that every variant of the forwarding bench forwards"
    } else {
        "running the forwarding bench"
    })
}
