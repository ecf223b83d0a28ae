//! Privileged fixtures for vbr's end-to-end tests and lab demo: network namespaces, a veth lab
//! around a switch namespace, the agent and CLI run inside it, and raw Ethernet frames.
//!
//! Everything is made under names unique to the test process and removed by guards on drop, on
//! success, failure and panic alike. Needs root.

pub mod agent;
pub mod bpf;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod devices;
pub mod flood;
pub mod frames;
pub mod interrupt;
pub mod lab;
pub mod monitor;
pub mod netfilter;
pub mod netns;
pub mod station;
pub mod xdp;

use std::path::PathBuf;

pub use agent::Agent;
pub use cli::Cli;
pub use config::{Bridge, BridgePort};
pub use frames::{Capture, Frame, Mac};
pub use lab::{Host, Lab};
pub use monitor::Monitor;
pub use netns::Netns;

/// Environment variable naming the vbr binary under test (`cargo xtask test` sets it).
pub const VBR_BIN_ENV: &str = "VBR_BIN";

/// Moves the calling thread to `cpu`, and only there.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the call only touches this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Polls `done` every `poll` until it holds or `timeout` passes; whether it held.
pub fn poll_until(
    timeout: std::time::Duration,
    poll: std::time::Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(poll);
    }
}

/// Panics (the test fails, never skips) unless the process is root.
pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "vbr end-to-end tests need root (euid is {euid}): run them with `cargo xtask test`"
    );
}

/// The vbr binary under test. Panics (the test fails, never skips) when the variable is unset, the
/// file is missing, or the process is not root.
pub fn vbr_bin() -> PathBuf {
    require_root();
    let path = std::env::var_os(VBR_BIN_ENV).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{VBR_BIN_ENV} is not set: run the tests with `cargo xtask test`, or set it to the vbr binary")
    });
    assert!(
        path.is_file(),
        "{VBR_BIN_ENV}={} is not a file: build vbr first",
        path.display()
    );
    path
}
