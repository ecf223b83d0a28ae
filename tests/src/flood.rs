//! Hostile traffic from a host: raw frames of any shape (runts, truncated headers, forged
//! sources) sent from one AF_PACKET socket, one at a time or as a burst in a tight loop, bounded
//! in count and in time.

use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::frames::{self, Mac};
use crate::netns::Netns;

/// How long a burst waits before retrying a frame the interface had no room for.
const BACKOFF: Duration = Duration::from_micros(50);

/// An AF_PACKET socket bound to one interface of a namespace. The socket keeps the namespace it
/// was made in, so it sends from there whichever thread uses it.
pub struct RawSocket {
    socket: OwnedFd,
    addr: libc::sockaddr_ll,
    ifname: String,
}

/// What a burst sent.
#[derive(Clone, Copy, Debug)]
pub struct Burst {
    /// Frames the kernel took.
    pub sent: usize,
    /// From the first send to the last.
    pub elapsed: Duration,
}

impl RawSocket {
    /// A socket that sends out of `ifname` in `ns` (and receives nothing: protocol 0).
    pub fn open(ns: &Netns, ifname: &str) -> Result<Self> {
        let name = ifname.to_owned();
        let (socket, addr) =
            ns.run_inside(move || Ok((frames::packet_socket(0)?, frames::link_addr(&name, 0)?)))?;
        Ok(Self {
            socket,
            addr,
            ifname: ifname.to_owned(),
        })
    }

    /// Hands `bytes` to the kernel as one frame, exactly as they are (no padding): the kernel's
    /// verdict as it gave it, so that a caller can see it refuse a frame.
    pub fn try_send(&self, bytes: &[u8]) -> std::io::Result<()> {
        // SAFETY: bytes and addr outlive the call, lengths are theirs.
        let sent = unsafe {
            libc::sendto(
                self.socket.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&raw const self.addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if sent as usize != bytes.len() {
            return Err(std::io::Error::other(format!(
                "short write ({sent} of {})",
                bytes.len()
            )));
        }
        Ok(())
    }

    /// Sends `bytes` as one frame, failing with the kernel's reason.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        self.try_send(bytes)
            .with_context(|| format!("sending {} bytes on {}", bytes.len(), self.ifname))
    }

    /// Sends every frame of `frames` in a tight loop, as fast as the socket takes them. A frame
    /// the interface has no room for (ENOBUFS) is retried; the burst fails on any other error or
    /// once `limit` has passed.
    pub fn burst<B: AsRef<[u8]>>(&self, frames: &[B], limit: Duration) -> Result<Burst> {
        let started = Instant::now();
        for (index, frame) in frames.iter().enumerate() {
            loop {
                match self.try_send(frame.as_ref()) {
                    Ok(()) => break,
                    Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => {
                        thread::sleep(BACKOFF);
                    }
                    Err(error) => {
                        return Err(error).with_context(|| {
                            format!(
                                "burst on {}: frame {index} of {}",
                                self.ifname,
                                frames.len()
                            )
                        });
                    }
                }
                if started.elapsed() >= limit {
                    bail!(
                        "burst on {}: only {index} of {} frames sent within {limit:?}",
                        self.ifname,
                        frames.len()
                    );
                }
            }
        }
        Ok(Burst {
            sent: frames.len(),
            elapsed: started.elapsed(),
        })
    }
}

/// The bytes of an Ethernet frame: `dst`, `src`, then `rest` (ethertype, tags and payload) as
/// given, unpadded.
pub fn raw_frame(dst: Mac, src: Mac, rest: &[u8]) -> Vec<u8> {
    [&dst.0[..], &src.0[..], rest].concat()
}

/// A small deterministic generator (xorshift64*) of locally administered unicast MACs: valid
/// sources, as a MAC flooding tool makes them, and never one of a lab's hosts (whose second
/// byte is 0).
pub struct RandomMacs {
    state: u64,
}

impl RandomMacs {
    /// A generator seeded by `seed` (any value; 0 is mapped to another).
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed | 1 << 63,
        }
    }
}

impl Iterator for RandomMacs {
    type Item = Mac;

    fn next(&mut self) -> Option<Mac> {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let bits = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes();
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&bits[..6]);
        // Unicast (group bit clear), locally administered; byte 1 never 0, unlike the hosts'.
        mac[0] = (mac[0] & 0xfc) | 0x02;
        mac[1] |= 0x01;
        Some(Mac(mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_macs_are_valid_distinct_sources() {
        let macs: Vec<Mac> = RandomMacs::new(7).take(20_000).collect();
        for mac in &macs {
            assert_eq!(mac.0[0] & 0x01, 0, "{mac} is multicast");
            assert_eq!(mac.0[0] & 0x02, 0x02, "{mac} is not locally administered");
            assert_ne!(mac.0[1], 0, "{mac} could be a lab host's");
        }
        let distinct: std::collections::HashSet<_> = macs.iter().collect();
        assert_eq!(distinct.len(), macs.len());
    }

    #[test]
    fn raw_frames_are_not_padded() {
        let frame = raw_frame(Mac::BROADCAST, Mac([2, 0, 0, 0, 0, 1]), &[0x81, 0x00]);
        assert_eq!(frame.len(), 14);
        assert_eq!(&frame[12..], &[0x81, 0x00]);
    }
}
