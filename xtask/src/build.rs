//! Building vbr. Building vbr-userspace is enough: its build.rs builds the eBPF crate with the
//! nightly toolchain (aya-build) and embeds the object.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;

/// The workspace root: xtask sits one level below it.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask's manifest folder is inside the workspace")
}

/// `cargo`, run from the workspace root whatever folder `cargo xtask` was started in.
pub fn cargo() -> Command {
    let mut cargo = Command::new("cargo");
    cargo.current_dir(workspace_root());
    cargo
}

/// Builds vbr and returns the absolute path of the binary.
pub fn vbr(release: bool) -> Result<PathBuf> {
    let mut cargo = cargo();
    cargo.args(["build", "-p", "vbr-userspace"]);
    if release {
        cargo.arg("--release");
    }
    cmd::run(&mut cargo).context("building vbr and its eBPF datapath")?;
    let profile = if release { "release" } else { "debug" };
    let binary = target_dir().join(profile).join("vbr");
    fs::canonicalize(&binary)
        .with_context(|| format!("finding the built binary at {}", binary.display()))
}

/// Cargo's target folder; CARGO_TARGET_DIR is relative to cargo's working folder, the root.
fn target_dir() -> PathBuf {
    let root = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}
