//! A port's flags and its bridge's macvlan-like mode, as the `POLICY_*` bits the datapath reads.
use vbr_common::port::{
    POLICY_BCAST_FLOOD, POLICY_FLOOD, POLICY_HAIRPIN, POLICY_ISOLATED, POLICY_LEARNING,
    POLICY_MCAST_FLOOD, POLICY_PRIVATE, POLICY_UPLINK, POLICY_VIA_UPLINK, PortInfo,
};

use crate::config::{BridgeMode, PortFlags};

/// The `POLICY_*` bits of a port: its flags, and what the bridge's macvlan-like mode makes of
/// an uplink and of the other ports.
pub fn encode(mode: BridgeMode, uplink: bool, flags: &PortFlags) -> u16 {
    let policy = flag_bits(flags)
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |policy, (_, bit)| policy | bit);
    policy
        | match (mode, uplink) {
            (BridgeMode::Bridge, _) => 0,
            (BridgeMode::Private, true) => POLICY_UPLINK | POLICY_PRIVATE,
            (BridgeMode::Private, false) => POLICY_VIA_UPLINK | POLICY_PRIVATE,
            (BridgeMode::Vepa | BridgeMode::Passthru, true) => POLICY_UPLINK,
            (BridgeMode::Vepa | BridgeMode::Passthru, false) => POLICY_VIA_UPLINK,
        }
}

/// Each flag with its `POLICY_*` bit.
fn flag_bits(flags: &PortFlags) -> [(bool, u16); 6] {
    [
        (flags.learning, POLICY_LEARNING),
        (flags.flood, POLICY_FLOOD),
        (flags.bcast_flood, POLICY_BCAST_FLOOD),
        (flags.mcast_flood, POLICY_MCAST_FLOOD),
        (flags.hairpin, POLICY_HAIRPIN),
        (flags.isolated, POLICY_ISOLATED),
    ]
}

/// The flags a port's entry carries.
pub fn decode(info: &PortInfo) -> PortFlags {
    PortFlags {
        learning: info.has(POLICY_LEARNING),
        flood: info.has(POLICY_FLOOD),
        bcast_flood: info.has(POLICY_BCAST_FLOOD),
        mcast_flood: info.has(POLICY_MCAST_FLOOD),
        hairpin: info.has(POLICY_HAIRPIN),
        isolated: info.has(POLICY_ISOLATED),
        max_learned: info.max_learned,
        flood_rate: info.flood_rate,
    }
}

/// Sets the flag bits of `info` to `flags`, keeping the mode's bits.
pub fn set_flags(info: &mut PortInfo, flags: &PortFlags) {
    for (set, bit) in flag_bits(flags) {
        if set {
            info.policy |= bit;
        } else {
            info.policy &= !bit;
        }
    }
    info.max_learned = flags.max_learned;
    info.flood_rate = flags.flood_rate;
}

#[cfg(test)]
mod tests {
    use vbr_common::port::PortMode;

    use super::*;

    #[test]
    fn flags_survive_the_round_trip_and_modes_add_their_bits() {
        let flags = PortFlags {
            learning: false,
            hairpin: true,
            max_learned: 7,
            ..PortFlags::default()
        };
        let mut info = PortInfo::new(PortMode::XdpNative, 0);
        info.policy = encode(BridgeMode::Private, false, &flags);
        info.max_learned = flags.max_learned;
        assert_eq!(decode(&info), flags);
        assert!(info.has(POLICY_VIA_UPLINK) && info.has(POLICY_PRIVATE));
        set_flags(&mut info, &PortFlags::default());
        assert!(info.has(POLICY_LEARNING) && !info.has(POLICY_HAIRPIN));
        assert!(info.has(POLICY_VIA_UPLINK), "the mode's bits stay");
        assert_eq!(
            encode(BridgeMode::Vepa, true, &flags) & POLICY_UPLINK,
            POLICY_UPLINK
        );
        assert_eq!(
            encode(BridgeMode::Bridge, false, &flags) & POLICY_VIA_UPLINK,
            0
        );
    }
}
