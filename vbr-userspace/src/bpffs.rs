//! The bpffs that holds vbr's pins.
use std::{ffi::CString, fs};

use anyhow::Context as _;

use crate::paths::BPFFS;

/// Mounts bpffs at /sys/fs/bpf unless it is there already, as systemd does at boot.
pub fn ensure_mounted() -> anyhow::Result<()> {
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    let mounted = mounts.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some(BPFFS) && fields.next() == Some("bpf")
    });
    if mounted {
        return Ok(());
    }
    tracing::info!("mounting bpffs at {BPFFS}");
    let target = CString::new(BPFFS).expect("constant path has no NUL");
    let kind = CString::new("bpf").expect("constant has no NUL");
    // SAFETY: all pointers are valid NUL-terminated strings; no mount data.
    let rc = unsafe {
        libc::mount(
            kind.as_ptr(),
            target.as_ptr(),
            kind.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("mounting bpffs at {BPFFS}"));
    }
    Ok(())
}
