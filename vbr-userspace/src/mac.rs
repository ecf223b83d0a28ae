//! MAC addresses as operators write them: `aa:bb:cc:dd:ee:ff`.
use std::{fmt, str::FromStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Group bit: broadcast and multicast.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a MAC address (expected six hex bytes like 02:00:00:00:00:01)")]
pub struct ParseMacError(String);

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseMacError(text.to_owned());
        let mut bytes = [0u8; 6];
        let mut parts = text.split([':', '-']);
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(error)?;
            if part.is_empty() || part.len() > 2 {
                return Err(error());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| error())?;
        }
        if parts.next().is_some() {
            return Err(error());
        }
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lowercase() {
        let mac: MacAddr = "02:AB:cd:00:0:ff".parse().unwrap();
        assert_eq!(mac.0, [0x02, 0xab, 0xcd, 0x00, 0x00, 0xff]);
        assert_eq!(mac.to_string(), "02:ab:cd:00:00:ff");
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "02:00:00:00:00:zz",
            "020:0:0:0:0:0",
        ] {
            assert!(text.parse::<MacAddr>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn classifies_group_and_zero() {
        assert!(
            "ff:ff:ff:ff:ff:ff"
                .parse::<MacAddr>()
                .unwrap()
                .is_multicast()
        );
        assert!(
            "01:00:5e:00:00:01"
                .parse::<MacAddr>()
                .unwrap()
                .is_multicast()
        );
        assert!(
            !"02:00:00:00:00:01"
                .parse::<MacAddr>()
                .unwrap()
                .is_multicast()
        );
        assert!("00:00:00:00:00:00".parse::<MacAddr>().unwrap().is_zero());
    }
}
