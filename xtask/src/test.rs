//! `cargo xtask test`: every test of the workspace, as root, against a freshly built vbr, then
//! the forwarding bench in its quick mode, so that the bench never rots.

use std::ffi::OsString;

use anyhow::{Context, Result};

use crate::{bench, bootstrap, build, cmd, root};

pub fn workspace(args: &[OsString]) -> Result<()> {
    root::require("test")?;
    bootstrap::run()?;
    let vbr = build::vbr(false)?;
    // vbr-ebpf is excluded: it is a no_main program for bpfel-unknown-none that cannot link for
    // the host; vbr-userspace's BPF_PROG_TEST_RUN tests exercise it as built by build.rs.
    // --no-fail-fast: one failing test binary must not hide the results of the others.
    let tests = cmd::run(
        build::cargo()
            .args([
                "test",
                "--workspace",
                "--exclude",
                "vbr-ebpf",
                "--no-fail-fast",
            ])
            .args(args)
            .env("VBR_BIN", &vbr),
    )
    .context("running the workspace's tests");
    // Run even when a test failed: its verdict is independent and worth having.
    let bench = bench::forwarding(bench::Mode::Quick);
    tests.and(bench)
}
