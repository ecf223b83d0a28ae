//! `cargo xtask bench`: vbr's forwarding benchmark (vbr-userspace/benches/forwarding), as root.
//! The full run writes docs/benchmarks.md and docs/benchmarks.svg; `--quick` only checks that
//! every variant forwards, and is part of `cargo xtask test` so that the bench never rots;
//! `--only TEXT` measures the matching variants and prints their rates, for profiling.

use anyhow::{Context, Result};

use crate::{bootstrap, build, cmd, root};

/// Where the full run writes its results, from the workspace root.
const RESULTS: &str = "docs/benchmarks.md";

/// What a run of the bench does.
pub enum Mode {
    /// Measure everything and write the results.
    Full,
    /// Check that every variant forwards.
    Quick,
    /// Measure the variants whose name contains any of these texts, print their rates, write
    /// nothing.
    Only(Vec<String>),
}

pub fn run(mode: Mode) -> Result<()> {
    root::require("bench")?;
    bootstrap::run()?;
    forwarding(mode)
}

/// Runs the bench; the caller has bootstrapped and checked for root.
pub fn forwarding(mode: Mode) -> Result<()> {
    let mut cargo = build::cargo();
    cargo.args([
        "bench",
        "-p",
        "vbr-userspace",
        "--bench",
        "forwarding",
        "--",
    ]);
    let doing = match mode {
        Mode::Full => {
            cargo
                .arg("--output")
                .arg(build::workspace_root().join(RESULTS));
            "running the forwarding bench"
        }
        Mode::Quick => {
            cargo.arg("--quick");
            "checking that every variant of the forwarding bench forwards"
        }
        Mode::Only(texts) => {
            for text in texts {
                cargo.arg("--only").arg(text);
            }
            "measuring the chosen variants of the forwarding bench"
        }
    };
    cmd::run(&mut cargo).context(doing)
}
