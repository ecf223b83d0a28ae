//! `cargo xtask run`: vbr with the given arguments, or the lab demo.

use std::ffi::OsString;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{bootstrap, build, cmd, lab, root};

pub fn vbr(release: bool, args: &[OsString]) -> Result<()> {
    root::require("run")?;
    bootstrap::run()?;
    let vbr = build::vbr(release)?;
    if args.is_empty() {
        return lab::demo(&vbr).context("running the lab demo");
    }
    Err(cmd::exec(Command::new(&vbr).args(args)))
}
