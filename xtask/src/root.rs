//! Running as root: vbr loads XDP programs, and the tests create network namespaces.

use anyhow::{Result, bail};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fails with what to do when `cargo xtask <task>` is not run as root.
pub fn require(task: &str) -> Result<()> {
    if !is_root() {
        bail!(
            "`cargo xtask {task}` must run as root: vbr attaches XDP programs and pins maps, \
             and the tests create network namespaces. Run it again from a root shell."
        );
    }
    Ok(())
}
