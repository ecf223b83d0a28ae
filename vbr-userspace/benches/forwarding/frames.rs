//! The frames the generator sends: IPv4/UDP (so that br_netfilter, when on, has work to do), of a
//! given length on the wire, untagged or with an 802.1Q tag.
use vbr_common::vlan::ETH_P_8021Q;

use crate::bench_abi::SOURCE;

pub const BROADCAST: [u8; 6] = [0xff; 6];

/// Frame lengths as on a wire, FCS included (RFC 2544's convention); a veth carries no FCS.
pub const WIRE_SIZES: [usize; 2] = [64, 1500];
const FCS_LEN: usize = 4;

const ETH_P_IP: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
const IPV4_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
/// The discard port.
const UDP_PORT: u16 = 9;
const SOURCE_IP: [u8; 4] = [10, 66, 0, 1];
const DESTINATION_IP: [u8; 4] = [10, 66, 0, 2];

/// An IPv4/UDP frame to `dst`, tagged with `vid` if given, `wire_size` bytes long with its FCS.
pub fn udp(dst: [u8; 6], vid: Option<u16>, wire_size: usize) -> Vec<u8> {
    let len = wire_size - FCS_LEN;
    let mut frame = Vec::with_capacity(len);
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&SOURCE);
    if let Some(vid) = vid {
        frame.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
        frame.extend_from_slice(&vid.to_be_bytes());
    }
    frame.extend_from_slice(&ETH_P_IP.to_be_bytes());
    let ip_len = len - frame.len();
    debug_assert!(ip_len >= IPV4_HLEN + UDP_HLEN);
    let mut ip = [0u8; IPV4_HLEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    ip[12..16].copy_from_slice(&SOURCE_IP);
    ip[16..20].copy_from_slice(&DESTINATION_IP);
    let checksum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&UDP_PORT.to_be_bytes());
    frame.extend_from_slice(&UDP_PORT.to_be_bytes());
    frame.extend_from_slice(&((ip_len - IPV4_HLEN) as u16).to_be_bytes());
    // A zero UDP checksum means none (RFC 768).
    frame.extend_from_slice(&[0, 0]);
    frame.resize(len, 0);
    frame
}

/// The one's-complement sum of RFC 791 over a header whose checksum field is zero.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
