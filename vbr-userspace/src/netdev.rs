//! Network interfaces by name and index, in the calling thread's network namespace.
use std::ffi::{CStr, CString};

use anyhow::{Context as _, bail};

/// The ifindex of interface `name`.
pub fn ifindex(name: &str) -> anyhow::Result<u32> {
    let c_name =
        CString::new(name).with_context(|| format!("interface name {name:?} has a NUL byte"))?;
    // SAFETY: `c_name` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        bail!(
            "no interface named {name:?} in this network namespace: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(index)
}

/// The name of interface `ifindex`.
pub fn name(ifindex: u32) -> anyhow::Result<String> {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as if_indextoname requires.
    let name = unsafe { libc::if_indextoname(ifindex, buffer.as_mut_ptr()) };
    if name.is_null() {
        bail!(
            "no interface with index {ifindex}: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(buffer.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}
