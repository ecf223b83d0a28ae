//! A flag raised by SIGINT or SIGTERM, so that a long-running lab (the demo) can stop its loop and
//! let its guards tear everything down instead of dying mid-way.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

static RAISED: AtomicBool = AtomicBool::new(false);

extern "C" fn raise(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    RAISED.store(true, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to the flag read by [`raised`].
pub fn install() -> Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only touches an atomic is valid.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = raise as *const () as libc::sighandler_t;
            libc::sigemptyset(&raw mut action.sa_mask);
            libc::sigaction(signal, &raw const action, std::ptr::null_mut())
        };
        if installed != 0 {
            bail!(
                "installing the handler for signal {signal}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn raised() -> bool {
    RAISED.load(Ordering::SeqCst)
}
