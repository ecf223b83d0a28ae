//! The kernel's view of a bridge's BPF objects, through bpftool: which ports its devmaps hold,
//! which programs they and its flush watch run, and whether a program is still loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cli::pin_dir;
use crate::cmd;

const BPFTOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// The programs `bridge`'s devmaps run on the frames they redirect: for each pinned devmap (by
/// name) and port (ifindex) whose entry carries a program, that program's id. A devmap value
/// reads back as `struct bpf_devmap_val { u32 ifindex; u32 prog_id; }`, id 0 for none.
pub fn devmap_programs(bridge: &str) -> Result<BTreeMap<(String, u32), u32>> {
    let dir = pin_dir(bridge);
    let mut programs = BTreeMap::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if !path.is_file() {
            continue;
        }
        let shown: Value = bpftool(&["map", "show", "pinned"], &path)?;
        if !shown["type"]
            .as_str()
            .is_some_and(|kind| kind.starts_with("devmap"))
        {
            continue;
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let entries: Vec<Value> = bpftool(&["map", "dump", "pinned"], &path)?;
        for entry in &entries {
            let (Some(ifindex), Some(program)) =
                (le_u32(&entry["key"], 0), le_u32(&entry["value"], 4))
            else {
                bail!("unexpected entry in {}: {entry}", path.display());
            };
            if program != 0 {
                programs.insert((name.clone(), ifindex), program);
            }
        }
    }
    Ok(programs)
}

/// The ports (ifindexes) `bridge`'s pinned devmap `map` redirects to.
pub fn devmap_ports(bridge: &str, map: &str) -> Result<BTreeSet<u32>> {
    let path = pin_dir(bridge).join(map);
    let entries: Vec<Value> = bpftool(&["map", "dump", "pinned"], &path)?;
    entries
        .iter()
        .map(|entry| {
            le_u32(&entry["key"], 0)
                .with_context(|| format!("unexpected entry in {}: {entry}", path.display()))
        })
        .collect()
}

/// The program `bridge`'s flush watch (`tracing/flush_watch`, a pinned raw tracepoint link)
/// runs.
pub fn flush_watch_program(bridge: &str) -> Result<u32> {
    let path = pin_dir(bridge).join("tracing").join("flush_watch");
    let link: Value = bpftool(&["link", "show", "pinned"], &path)?;
    link["prog_id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .with_context(|| format!("no program id in the link at {}: {link}", path.display()))
}

/// `bpftool -j ARGS PATH`, its JSON output parsed.
fn bpftool<T: DeserializeOwned>(args: &[&str], path: &Path) -> Result<T> {
    let output = cmd::run_ok(
        Command::new("bpftool").arg("-j").args(args).arg(path),
        BPFTOOL_TIMEOUT,
    )?;
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("parsing `bpftool {} {}`", args.join(" "), path.display()))
}

/// Whether a program with this id is loaded in the kernel.
pub fn program_loaded(id: u32) -> Result<bool> {
    let output = cmd::run(
        Command::new("bpftool").args(["prog", "show", "id", &id.to_string()]),
        BPFTOOL_TIMEOUT,
    )?;
    if output.status.success() {
        return Ok(true);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No such file or directory") {
        return Ok(false);
    }
    bail!("bpftool prog show id {id}: {}", stderr.trim())
}

/// The little-endian u32 at byte `at` of a value bpftool prints as an array of hex strings.
fn le_u32(bytes: &Value, at: usize) -> Option<u32> {
    let bytes = bytes.as_array()?.get(at..at + 4)?;
    let mut word = [0u8; 4];
    for (byte, value) in word.iter_mut().zip(bytes) {
        *byte = u8::from_str_radix(value.as_str()?.trim_start_matches("0x"), 16).ok()?;
    }
    Some(u32::from_le_bytes(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devmap_values_are_read_as_little_endian_words() {
        let value = serde_json::json!([
            "0x03", "0x00", "0x00", "0x00", "0x5e", "0x05", "0x00", "0x00"
        ]);
        assert_eq!(le_u32(&value, 0), Some(3));
        assert_eq!(le_u32(&value, 4), Some(0x055e));
        assert_eq!(le_u32(&value, 6), None);
    }
}
