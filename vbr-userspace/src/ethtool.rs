//! The few ethtool settings vbr changes on ports and their veth peers, through the legacy
//! SIOCETHTOOL ioctl (enough to flip single features; no ethtool binary needed).
use std::{io, os::fd::AsRawFd as _, os::fd::FromRawFd as _, os::fd::OwnedFd};

use anyhow::{Context as _, bail};

const ETHTOOL_GFLAGS: u32 = 0x0000_0025;
const ETHTOOL_SFLAGS: u32 = 0x0000_0026;
const ETHTOOL_SGRO: u32 = 0x0000_002c;

/// `ETH_FLAG_TXVLAN`: the stack may hand the device a VLAN tag out of band (tx-vlan-offload).
pub const FLAG_TXVLAN: u32 = 1 << 7;
/// `ETH_FLAG_RXVLAN`: the device may strip a received tag before XDP sees it (rx-vlan-offload).
pub const FLAG_RXVLAN: u32 = 1 << 8;

/// `struct ethtool_value` from linux/ethtool.h.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Turns GRO on or off on interface `ifname` of the calling thread's namespace.
pub fn set_gro(ifname: &str, on: bool) -> anyhow::Result<()> {
    request(ifname, ETHTOOL_SGRO, u32::from(on))
        .with_context(|| format!("setting GRO on {ifname}"))
        .map(drop)
}

/// The `ETH_FLAG_*` bits of `ifname`.
pub fn flags(ifname: &str) -> anyhow::Result<u32> {
    request(ifname, ETHTOOL_GFLAGS, 0)
        .with_context(|| format!("reading the offload flags of {ifname}"))
}

/// Sets the `ETH_FLAG_*` bits in `mask` to those of `value`, leaving the others; returns the flags
/// as they were.
pub fn update_flags(ifname: &str, mask: u32, value: u32) -> anyhow::Result<u32> {
    let old = flags(ifname)?;
    let new = (old & !mask) | (value & mask);
    if new != old {
        request(ifname, ETHTOOL_SFLAGS, new)
            .with_context(|| format!("setting the offload flags of {ifname} to {new:#x}"))?;
    }
    Ok(old)
}

/// One SIOCETHTOOL call carrying an `ethtool_value`; returns the value's data afterwards.
fn request(ifname: &str, cmd: u32, data: u32) -> anyhow::Result<u32> {
    if ifname.len() >= libc::IF_NAMESIZE {
        bail!("interface name {ifname:?} is too long");
    }
    // SAFETY: plain socket creation; ownership passes to OwnedFd at once.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if socket < 0 {
        return Err(io::Error::last_os_error()).context("opening an ioctl socket");
    }
    // SAFETY: `socket` is a fresh descriptor nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(socket) };
    let mut value = EthtoolValue { cmd, data };
    // SAFETY: all-zero is a valid ifreq.
    let mut ifreq: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in ifreq.ifr_name.iter_mut().zip(ifname.bytes()) {
        *slot = byte as libc::c_char;
    }
    ifreq.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    // SAFETY: SIOCETHTOOL with a valid ifreq pointing at a live ethtool_value.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &mut ifreq) } != 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(value.data)
}
