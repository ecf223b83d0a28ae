//! Raw Ethernet frames over AF_PACKET: crafting probe frames, sending them out of an interface in
//! a namespace, and capturing what an interface receives for a bounded time.

use std::ffi::CString;
use std::fmt;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};

use crate::netns::{self, Netns};

/// IEEE 802 "local experimental" EtherType: no stack on the hosts reacts to it, so a probe is only
/// ever seen, never answered.
pub const ETHERTYPE_PROBE: u16 = 0x88b5;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// The datapath's private flood mark (a TPID): reserved inside the bridge, it never leaves it.
pub const ETHERTYPE_FLOOD_MARK: u16 = 0x88b6;
/// Where the priority code point and drop eligible indicator sit in an 802.1Q TCI; the VLAN id
/// takes the low 12 bits.
const TCI_PCP_SHIFT: u16 = 13;
const TCI_DEI_SHIFT: u16 = 12;
const TCI_VID_MASK: u16 = 0x0fff;
const ETH_HEADER_LEN: usize = 14;
const VLAN_HEADER_LEN: usize = 4;
/// Shortest Ethernet payload; probes are padded to it so that nothing on the way pads them.
const ETH_MIN_PAYLOAD: usize = 46;
/// Opens every probe's payload so that captures can tell probes from the hosts' own chatter.
const PROBE_MARKER: &[u8] = b"vbr-probe";
/// Captures keep at most this many frames, so that a flood cannot exhaust memory.
const CAPTURE_MAX_FRAMES: usize = 10_000;
/// Largest frame read from a capture socket.
const CAPTURE_SNAPLEN: usize = 65_536;

/// An Ethernet (MAC) address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for Mac {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts
                .next()
                .ok_or_else(|| anyhow!("MAC {text:?}: too short"))?;
            *byte = u8::from_str_radix(part, 16).with_context(|| format!("MAC {text:?}"))?;
        }
        if parts.next().is_some() {
            bail!("MAC {text:?}: too long");
        }
        Ok(Mac(bytes))
    }
}

/// An 802.1Q tag control information: priority code point (0-7), drop eligible indicator (0-1),
/// VLAN id (0 for a priority tag).
pub fn tci(pcp: u16, dei: u16, vid: u16) -> u16 {
    (pcp & 0x7) << TCI_PCP_SHIFT | (dei & 0x1) << TCI_DEI_SHIFT | vid & TCI_VID_MASK
}

/// An Ethernet frame, with its 802.1Q tag (if any) as a field.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Frame {
    pub dst: Mac,
    pub src: Mac,
    /// Tag control information (PCP, DEI, VID) of an 802.1Q tag.
    pub vlan_tci: Option<u16>,
    pub ethertype: u16,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A probe from `src` to `dst`: EtherType [`ETHERTYPE_PROBE`] and a payload unique to this
    /// probe, so that a capture finds exactly its copies.
    pub fn probe(dst: Mac, src: Mac) -> Self {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        let mut payload = PROBE_MARKER.to_vec();
        payload.extend_from_slice(&std::process::id().to_be_bytes());
        payload.extend_from_slice(&SEQUENCE.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        payload.extend_from_slice(&nanos.to_be_bytes());
        payload.resize(ETH_MIN_PAYLOAD, 0);
        Self {
            dst,
            src,
            vlan_tci: None,
            ethertype: ETHERTYPE_PROBE,
            payload,
        }
    }

    /// The same frame carrying an 802.1Q tag with VLAN id `vid` (priority 0).
    pub fn tagged(self, vid: u16) -> Self {
        self.with_tci(tci(0, 0, vid))
    }

    /// The same frame carrying an 802.1Q tag with the full `tci` (see [`tci`]).
    pub fn with_tci(self, tci: u16) -> Self {
        Self {
            vlan_tci: Some(tci),
            ..self
        }
    }

    /// Whether this frame is `probe` as a VLAN-aware switch may deliver it: equal but for the
    /// 802.1Q tag, which may have been pushed, popped or kept.
    pub fn is_copy_of(&self, probe: &Frame) -> bool {
        Self {
            vlan_tci: probe.vlan_tci,
            ..self.clone()
        } == *probe
    }

    /// The frame as it goes on the wire (without FCS).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(ETH_HEADER_LEN + VLAN_HEADER_LEN + self.payload.len());
        bytes.extend_from_slice(&self.dst.0);
        bytes.extend_from_slice(&self.src.0);
        if let Some(tci) = self.vlan_tci {
            bytes.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            bytes.extend_from_slice(&tci.to_be_bytes());
        }
        bytes.extend_from_slice(&self.ethertype.to_be_bytes());
        bytes.extend_from_slice(&self.payload);
        bytes
    }

    /// Parses a frame as read from the wire; `None` if it is too short to be one.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let be16 = |at: usize| Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
        let dst = Mac(bytes.get(0..6)?.try_into().ok()?);
        let src = Mac(bytes.get(6..12)?.try_into().ok()?);
        let (vlan_tci, ethertype, payload_at) = match be16(12)? {
            ETHERTYPE_VLAN => (Some(be16(14)?), be16(16)?, ETH_HEADER_LEN + VLAN_HEADER_LEN),
            ethertype => (None, ethertype, ETH_HEADER_LEN),
        };
        Some(Self {
            dst,
            src,
            vlan_tci,
            ethertype,
            payload: bytes.get(payload_at..)?.to_vec(),
        })
    }
}

/// Sends `frame` once out of interface `ifname` of namespace `ns`.
pub fn send(ns: &Netns, ifname: &str, frame: &Frame) -> Result<()> {
    let ifname = ifname.to_owned();
    let bytes = frame.to_bytes();
    ns.run_inside(move || {
        let ifindex = link_addr(&ifname, 0)?.sll_ifindex as u32;
        Injector::open()?
            .send(ifindex, &bytes)
            .with_context(|| format!("sending on {ifname}"))
    })
}

/// A raw socket of the calling thread's namespace that sends whole frames, bytes as given, out
/// of any of its interfaces.
pub struct Injector(OwnedFd);

impl Injector {
    pub fn open() -> Result<Self> {
        // Protocol 0: this socket only sends and never queues received frames.
        packet_socket(0).map(Self)
    }

    /// Sends `bytes` once out of the interface with index `ifindex`.
    pub fn send(&self, ifindex: u32, bytes: &[u8]) -> Result<()> {
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: bytes and addr outlive the call, lengths are theirs.
        let sent = unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            bail!(
                "sending on ifindex {ifindex}: {}",
                std::io::Error::last_os_error()
            );
        }
        if sent as usize != bytes.len() {
            bail!(
                "sending on ifindex {ifindex}: short write ({sent} of {})",
                bytes.len()
            );
        }
        Ok(())
    }
}

/// Frames received by one interface during a bounded time, captured on a thread of its own.
pub struct Capture {
    ifname: String,
    thread: JoinHandle<Result<Vec<Frame>>>,
}

impl Capture {
    /// Starts capturing what `ifname` in `ns` receives, for `duration` from now. Returns once the
    /// socket is bound, so that every frame sent afterwards is seen. Frames the interface sends
    /// (PACKET_OUTGOING) are left out.
    pub fn start(ns: &Netns, ifname: &str, duration: Duration) -> Result<Self> {
        let path = ns.path();
        let name = ifname.to_owned();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || capture(path, name, duration, ready_tx));
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                ifname: ifname.to_owned(),
                thread,
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(thread
                .join()
                .map_err(|_| anyhow!("capture thread on {ifname} panicked"))?
                .err()
                .unwrap_or_else(|| anyhow!("capture on {ifname} ended before starting"))),
        }
    }

    /// Waits for the capture to end and returns what it received, in order.
    pub fn frames(self) -> Result<Vec<Frame>> {
        self.thread
            .join()
            .map_err(|_| anyhow!("capture thread on {} panicked", self.ifname))?
    }

    /// Waits for the capture to end and returns the copies of `probe` it received.
    pub fn copies_of(self, probe: &Frame) -> Result<usize> {
        Ok(self
            .frames()?
            .iter()
            .filter(|frame| *frame == probe)
            .count())
    }

    /// Waits for the capture to end and returns the 802.1Q tag (TCI, `None` when untagged) of each
    /// copy of `probe` it received, tagged or not, in order of arrival.
    pub fn tags_of(self, probe: &Frame) -> Result<Vec<Option<u16>>> {
        Ok(self
            .frames()?
            .into_iter()
            .filter(|frame| frame.is_copy_of(probe))
            .map(|frame| frame.vlan_tci)
            .collect())
    }
}

fn capture(
    ns: PathBuf,
    ifname: String,
    duration: Duration,
    ready: std::sync::mpsc::Sender<Result<()>>,
) -> Result<Vec<Frame>> {
    let socket = (|| {
        netns::enter(&ns)?;
        let socket = packet_socket(0)?;
        set_option(&socket, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)
            .context("enabling PACKET_AUXDATA")?;
        // Binding with ETH_P_ALL and the ifindex is what starts delivery, so the socket never sees
        // another interface's frames.
        let addr = link_addr(&ifname, libc::ETH_P_ALL as u16)?;
        // SAFETY: addr is a valid sockaddr_ll of the given length.
        let bound = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound != 0 {
            bail!(
                "binding capture to {ifname}: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(socket)
    })();
    let socket = match socket {
        Ok(socket) => {
            let _ = ready.send(Ok(()));
            socket
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            return Ok(Vec::new());
        }
    };
    let deadline = Instant::now() + duration;
    let mut frames = Vec::new();
    let mut buffer = vec![0u8; CAPTURE_SNAPLEN];
    while frames.len() < CAPTURE_MAX_FRAMES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if !readable(&socket, left)? {
            continue;
        }
        if let Some(bytes) =
            receive(&socket, &mut buffer, 0).with_context(|| format!("capturing on {ifname}"))?
            && let Some(frame) = Frame::parse(&bytes)
        {
            frames.push(frame);
        }
    }
    Ok(frames)
}

/// Waits up to `timeout` for `socket` to become readable.
fn readable(socket: &OwnedFd, timeout: Duration) -> Result<bool> {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    match unsafe { libc::poll(&raw mut poll, 1, millis) } {
        n if n < 0 => {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error).context("poll on capture socket")
            }
        }
        n => Ok(n > 0),
    }
}

/// Reads one frame from an AF_PACKET socket with PACKET_AUXDATA on, with `recvmsg` `flags`;
/// `None` for a frame the interface sent rather than received. A VLAN tag the kernel moved out
/// of band is put back, so the frame reads as it was on the wire.
pub fn receive(
    socket: &OwnedFd,
    buffer: &mut [u8],
    flags: libc::c_int,
) -> std::io::Result<Option<Vec<u8>>> {
    // SAFETY: all-zero is a valid sockaddr_ll and msghdr.
    let mut from: libc::sockaddr_ll = unsafe { zeroed() };
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut from).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: msg points at buffers that live across the call.
    let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut msg, flags) };
    if len < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if from.sll_pkttype == libc::PACKET_OUTGOING {
        return Ok(None);
    }
    let mut bytes = buffer[..len as usize].to_vec();
    if let Some(aux) = auxdata(&msg)
        && aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0
        && bytes.len() >= 12
    {
        let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
            aux.tp_vlan_tpid
        } else {
            ETHERTYPE_VLAN
        };
        let tag = [tpid.to_be_bytes(), aux.tp_vlan_tci.to_be_bytes()].concat();
        bytes.splice(12..12, tag);
    }
    Ok(Some(bytes))
}

/// The PACKET_AUXDATA control message of a received frame.
fn auxdata(msg: &libc::msghdr) -> Option<libc::tpacket_auxdata> {
    // SAFETY: msg was filled by recvmsg; the CMSG_* walk stays within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_PACKET && (*cmsg).cmsg_type == libc::PACKET_AUXDATA {
                return Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg).cast::<libc::tpacket_auxdata>(),
                ));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

pub(crate) fn packet_socket(protocol: u16) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::c_int::from(protocol.to_be()),
        )
    };
    if fd < 0 {
        bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A link-layer address for interface `ifname` of the calling thread's namespace.
pub(crate) fn link_addr(ifname: &str, protocol: u16) -> Result<libc::sockaddr_ll> {
    let name = CString::new(ifname).context("interface name")?;
    // SAFETY: name is a valid C string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        bail!("interface {ifname}: {}", std::io::Error::last_os_error());
    }
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex as libc::c_int;
    Ok(addr)
}

fn set_option(
    socket: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> Result<()> {
    // SAFETY: value is a c_int of the given size.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set != 0 {
        bail!("{}", std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_through_text() {
        let mac: Mac = "02:00:00:00:0a:ff".parse().expect("valid MAC");
        assert_eq!(mac, Mac([2, 0, 0, 0, 0x0a, 0xff]));
        assert_eq!(mac.to_string(), "02:00:00:00:0a:ff");
        assert!("02:00:00:00:0a".parse::<Mac>().is_err());
        assert!("02:00:00:00:0a:ff:01".parse::<Mac>().is_err());
    }

    #[test]
    fn frame_round_trips_through_bytes() {
        let probe = Frame::probe(Mac::BROADCAST, Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(probe.to_bytes().len(), ETH_HEADER_LEN + ETH_MIN_PAYLOAD);
        assert_eq!(Frame::parse(&probe.to_bytes()), Some(probe.clone()));
        let tagged = probe.tagged(10);
        assert_eq!(&tagged.to_bytes()[12..16], &[0x81, 0x00, 0x00, 0x0a]);
        assert_eq!(Frame::parse(&tagged.to_bytes()), Some(tagged));
    }

    #[test]
    fn tci_packs_priority_drop_eligibility_and_vid() {
        assert_eq!(tci(5, 1, 20), 0xb014);
        assert_eq!(tci(7, 0, 0), 0xe000);
        assert_eq!(tci(0, 0, 4094), 0x0ffe);
        let probe = Frame::probe(Mac::BROADCAST, Mac([2, 0, 0, 0, 0, 1]));
        let tagged = probe.clone().with_tci(tci(5, 1, 20));
        assert_eq!(&tagged.to_bytes()[12..16], &[0x81, 0x00, 0xb0, 0x14]);
        assert!(tagged.is_copy_of(&probe) && probe.is_copy_of(&tagged));
        let other = Frame::probe(Mac::BROADCAST, Mac([2, 0, 0, 0, 0, 1]));
        assert!(!other.is_copy_of(&probe));
    }

    #[test]
    fn probes_are_unique() {
        let src = Mac([2, 0, 0, 0, 0, 1]);
        assert_ne!(
            Frame::probe(Mac::BROADCAST, src),
            Frame::probe(Mac::BROADCAST, src)
        );
    }
}
