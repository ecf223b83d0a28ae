//! The agent's configuration file (TOML).
//!
//! ```toml
//! [[bridge]]
//! name = "br0"          # pins under /sys/fs/bpf/vbr/br0/
//! ageing_time = 300     # seconds; 0 = never
//!
//! [[bridge.port]]
//! ifname = "sw-h1"
//! ```
use std::{collections::HashSet, path::Path};

use serde::Deserialize;

/// Learned entries older than this many seconds are removed, as the Linux bridge's default.
pub const DEFAULT_AGEING_TIME: u64 = 300;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "bridge", default)]
    pub bridges: Vec<BridgeConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    pub name: String,
    #[serde(default = "default_ageing_time")]
    pub ageing_time: u64,
    #[serde(rename = "port", default)]
    pub ports: Vec<PortConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    pub ifname: String,
}

fn default_ageing_time() -> u64 {
    DEFAULT_AGEING_TIME
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("the config defines no bridge (add a [[bridge]] table)")]
    NoBridge,
    #[error(
        "bridge name {0:?} is invalid: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    BridgeName(String),
    #[error("bridge {0:?} is defined twice")]
    DuplicateBridge(String),
    #[error("bridge {0:?} has no port (add a [[bridge.port]] table)")]
    NoPort(String),
    #[error("port {ifname:?} is listed twice (in bridge {first:?} and in bridge {second:?})")]
    DuplicatePort {
        ifname: String,
        first: String,
        second: String,
    },
    #[error("port name {0:?} is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)")]
    PortName(String),
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|error| match error {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates a config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: String::new(),
            message: error.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what can be checked without looking at the system.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.bridges.is_empty() {
            return Err(ConfigError::NoBridge);
        }
        let mut bridge_names = HashSet::new();
        let mut port_owner: Vec<(&str, &str)> = Vec::new();
        for bridge in &self.bridges {
            if !valid_bridge_name(&bridge.name) {
                return Err(ConfigError::BridgeName(bridge.name.clone()));
            }
            if !bridge_names.insert(bridge.name.as_str()) {
                return Err(ConfigError::DuplicateBridge(bridge.name.clone()));
            }
            if bridge.ports.is_empty() {
                return Err(ConfigError::NoPort(bridge.name.clone()));
            }
            for port in &bridge.ports {
                if !valid_ifname(&port.ifname) {
                    return Err(ConfigError::PortName(port.ifname.clone()));
                }
                if let Some((_, first)) = port_owner.iter().find(|(name, _)| *name == port.ifname) {
                    return Err(ConfigError::DuplicatePort {
                        ifname: port.ifname.clone(),
                        first: (*first).to_owned(),
                        second: bridge.name.clone(),
                    });
                }
                port_owner.push((&port.ifname, &bridge.name));
            }
        }
        Ok(())
    }
}

/// A bridge name becomes a directory under /sys/fs/bpf/vbr.
fn valid_bridge_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The kernel's rules for interface names (dev_valid_name).
fn valid_ifname(name: &str) -> bool {
    (1..libc::IF_NAMESIZE).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_bridges_with_defaults() {
        let config = Config::parse(
            r#"
            [[bridge]]
            name = "br0"
            [[bridge.port]]
            ifname = "sw-h1"
            [[bridge.port]]
            ifname = "sw-h2"

            [[bridge]]
            name = "br1"
            ageing_time = 0
            [[bridge.port]]
            ifname = "sw-h3"
            "#,
        )
        .unwrap();
        assert_eq!(config.bridges.len(), 2);
        assert_eq!(config.bridges[0].ageing_time, DEFAULT_AGEING_TIME);
        assert_eq!(config.bridges[0].ports[1].ifname, "sw-h2");
        assert_eq!(config.bridges[1].ageing_time, 0);
    }

    fn error_of(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn rejects_duplicate_port_naming_it() {
        let message = error_of(
            r#"
            [[bridge]]
            name = "a"
            [[bridge.port]]
            ifname = "p1"
            [[bridge]]
            name = "b"
            [[bridge.port]]
            ifname = "p1"
            "#,
        );
        assert!(
            message.contains("\"p1\"") && message.contains("twice"),
            "{message}"
        );
    }

    #[test]
    fn rejects_unparsable_and_unknown_fields() {
        assert!(error_of("[[bridge]\nname=").contains("not valid"));
        let message =
            error_of("[[bridge]]\nname = \"a\"\ncolour = 1\n[[bridge.port]]\nifname = \"p\"\n");
        assert!(message.contains("colour"), "{message}");
    }

    #[test]
    fn rejects_bad_names_and_empty_bridges() {
        assert!(error_of("").contains("no bridge"));
        assert!(
            error_of("[[bridge]]\nname = \"../x\"\n[[bridge.port]]\nifname = \"p\"\n")
                .contains("../x")
        );
        assert!(error_of("[[bridge]]\nname = \"a\"\n").contains("no port"));
        let long = "[[bridge]]\nname = \"a\"\n[[bridge.port]]\nifname = \"sixteen-chars-xx\"\n";
        assert!(error_of(long).contains("sixteen-chars-xx"));
        let twice = "[[bridge]]\nname = \"a\"\n[[bridge.port]]\nifname = \"p\"\n[[bridge]]\nname = \"a\"\n[[bridge.port]]\nifname = \"q\"\n";
        assert!(error_of(twice).contains("defined twice"));
    }
}
