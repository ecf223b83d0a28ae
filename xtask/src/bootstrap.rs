//! Makes a fresh machine able to build, run and test vbr: the nightly toolchain with rust-src,
//! a bpf-linker linked against that nightly's own LLVM, the Debian tools the tests drive, and
//! bpffs. Idempotent and silent when everything is in place; one line per thing it installs.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cmd, root};

const BPF_LINKER_VERSION: &str = "0.13.0";

/// LLVM majors bpf-linker 0.13.0 has a cargo feature for (`llvm-21` … `llvm-23`).
const BPF_LINKER_LLVM_MAJORS: &[&str] = &["21", "22", "23"];

/// Where the symlinks to the nightly's libLLVM live, below $HOME: bpf-linker links against
/// `libLLVM.so` there and finds the versioned name there at run time (its RUNPATH).
const LLVM_PREFIX: &str = ".local/share/vbr/llvm";

/// The Debian packages the tests and the lab demo use, and what for.
const PACKAGES: &[(&str, &str)] = &[
    ("bpftool", "the tests inspect vbr's pinned maps with it"),
    (
        "iproute2",
        "`ip` builds the tests' namespaces and veth pairs",
    ),
    (
        "iputils-ping",
        "the end-to-end tests ping across the switch",
    ),
    ("tcpdump", "the tests capture frames with it"),
    (
        "ethtool",
        "the tests read and set interface offloads with it",
    ),
    (
        "util-linux",
        "`nsenter` runs vbr in a test namespace while keeping the host's bpffs",
    ),
];

const BPFFS: &str = "/sys/fs/bpf";

pub fn run() -> Result<()> {
    nightly()?;
    bpf_linker()?;
    packages()?;
    bpffs()
}

fn nightly() -> Result<()> {
    let toolchains = cmd::capture(Command::new("rustup").args(["toolchain", "list"]))
        .context("listing the rustup toolchains (install rustup from https://rustup.rs)")?;
    if !has_nightly(&toolchains) {
        println!(
            "installing the nightly toolchain with rust-src: the eBPF crate targets \
             bpfel-unknown-none, which has no prebuilt core and needs -Z build-std=core"
        );
        return cmd::run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "-c",
            "rust-src",
            // A fresh rustup would otherwise replace itself while installing the toolchain.
            "--no-self-update",
        ]))
        .context("installing the nightly toolchain; check that static.rust-lang.org is reachable");
    }
    let components = cmd::capture(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .context("listing the components of the nightly toolchain")?;
    if !components
        .lines()
        .any(|component| component.trim() == "rust-src")
    {
        println!("adding rust-src to nightly: -Z build-std=core compiles core from it for eBPF");
        cmd::run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))
        .context("adding rust-src to the nightly toolchain")?;
    }
    Ok(())
}

/// Whether `rustup toolchain list` shows the floating `nightly` (not only dated ones).
fn has_nightly(toolchains: &str) -> bool {
    toolchains
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|name| name.strip_prefix("nightly-"))
        .any(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn bpf_linker() -> Result<()> {
    if bpf_linker_runs() {
        return Ok(());
    }
    let sysroot = cmd::capture(
        Command::new("rustup").args(["run", "nightly", "rustc", "--print", "sysroot"]),
    )
    .context("asking the nightly rustc for its sysroot")?;
    let lib = Path::new(sysroot.trim()).join("lib");
    let so = nightly_libllvm(&lib)?;
    let major = llvm_major(&so)
        .with_context(|| format!("reading the LLVM version from {}", lib.join(&so).display()))?;
    if !BPF_LINKER_LLVM_MAJORS.contains(&major) {
        bail!(
            "the nightly toolchain ships LLVM {major} ({so}), but bpf-linker {BPF_LINKER_VERSION} \
             supports only LLVM {}: pin an older nightly or move xtask to a newer bpf-linker",
            BPF_LINKER_LLVM_MAJORS.join(", ")
        );
    }

    let prefix = home()?.join(LLVM_PREFIX);
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("creating {}", prefix_lib.display()))?;
    // libLLVM.so for `-lLLVM` at link time; the versioned name for the RUNPATH at run time, so
    // that bpf-linker runs without the toolchain's lib folder on LD_LIBRARY_PATH.
    for name in ["libLLVM.so", so.as_str()] {
        replace_symlink(&lib.join(&so), &prefix_lib.join(name))?;
    }

    println!(
        "installing bpf-linker {BPF_LINKER_VERSION} against the nightly's LLVM {major}: it links \
         the eBPF crate's LLVM {major} bitcode (a few minutes)"
    );
    cmd::run(
        Command::new("cargo")
            .env("LLVM_PREFIX", &prefix)
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--locked", "--force", "--no-default-features", "--features"])
            .arg(format!("llvm-{major}")),
    )
    .context(
        "building bpf-linker; its build needs a C compiler (apt-get install build-essential)",
    )?;
    if !bpf_linker_runs() {
        bail!(
            "bpf-linker {BPF_LINKER_VERSION} was installed, but `bpf-linker --version` does not \
             print `bpf-linker {BPF_LINKER_VERSION}`: put ~/.cargo/bin first on PATH"
        );
    }
    Ok(())
}

/// Whether `bpf-linker` is the wanted version and its libLLVM loads. LD_LIBRARY_PATH is cleared
/// so that the check does not pass only thanks to a toolchain folder rustup happened to add.
fn bpf_linker_runs() -> bool {
    cmd::capture(
        Command::new("bpf-linker")
            .arg("--version")
            .env_remove("LD_LIBRARY_PATH"),
    )
    .is_ok_and(|version| is_wanted_bpf_linker(&version))
}

fn is_wanted_bpf_linker(version: &str) -> bool {
    version.trim() == format!("bpf-linker {BPF_LINKER_VERSION}")
}

/// The file name of the toolchain's shared LLVM, e.g. `libLLVM.so.22.1-rust-1.97.0-nightly`.
fn nightly_libllvm(lib: &Path) -> Result<String> {
    let entries = fs::read_dir(lib).with_context(|| format!("listing {}", lib.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", lib.display()))?;
        if let Some(name) = entry.file_name().to_str()
            && llvm_major(name).is_ok()
        {
            return Ok(name.to_owned());
        }
    }
    bail!(
        "no libLLVM.so.*-rust-* in {}: reinstall the nightly toolchain \
         (rustup toolchain uninstall nightly, then cargo xtask build)",
        lib.display()
    )
}

/// The LLVM major of `libLLVM.so.<major>.<minor>-rust-<rust version>`.
fn llvm_major(file_name: &str) -> Result<&str> {
    let (version, _) = file_name
        .strip_prefix("libLLVM.so.")
        .and_then(|rest| rest.split_once("-rust-"))
        .with_context(|| format!("{file_name} is not named libLLVM.so.<version>-rust-<rust>"))?;
    let major = version.split('.').next().unwrap_or(version);
    if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{file_name} has no numeric LLVM major version");
    }
    Ok(major)
}

/// `ln -sf target link`.
fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    if link.symlink_metadata().is_ok() {
        fs::remove_file(link).with_context(|| format!("removing the old {}", link.display()))?;
    }
    symlink(target, link)
        .with_context(|| format!("linking {} to {}", link.display(), target.display()))
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set; xtask keeps bpf-linker's LLVM symlinks below it")
}

fn packages() -> Result<()> {
    let mut missing = Vec::new();
    for &(package, why) in PACKAGES {
        if !package_installed(package)? {
            missing.push((package, why));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|&(package, _)| package).collect();
    if !root::is_root() {
        bail!(
            "missing Debian packages: {list}. Install them as root:\n    \
             apt-get update && apt-get install -y {list}",
            list = names.join(" ")
        );
    }
    for (package, why) in &missing {
        println!("installing {package}: {why}");
    }
    cmd::run(apt_get().arg("update")).context("refreshing the apt package lists")?;
    cmd::run(apt_get().args(["install", "-y"]).args(&names))
        .with_context(|| format!("installing the Debian packages {}", names.join(" ")))
}

fn package_installed(package: &str) -> Result<bool> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .context("running dpkg-query (the bootstrap knows Debian and Ubuntu only)")?;
    // dpkg-query fails for a package it has never heard of: that is "not installed" too.
    Ok(output.status.success() && dpkg_says_installed(&String::from_utf8_lossy(&output.stdout)))
}

/// `${Status}` is "want flag state", e.g. "install ok installed" or "hold ok installed".
fn dpkg_says_installed(status: &str) -> bool {
    status.split_whitespace().nth(2) == Some("installed")
}

fn apt_get() -> Command {
    let mut apt_get = Command::new("apt-get");
    apt_get.env("DEBIAN_FRONTEND", "noninteractive");
    apt_get
}

fn bpffs() -> Result<()> {
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    if bpffs_mounted(&mounts) {
        return Ok(());
    }
    if !root::is_root() {
        bail!("bpffs is not mounted on {BPFFS}. Mount it as root:\n    mount -t bpf bpf {BPFFS}");
    }
    println!("mounting bpffs on {BPFFS}: vbr pins its maps there");
    cmd::run(Command::new("mount").args(["-t", "bpf", "bpf", BPFFS]))
        .with_context(|| format!("mounting bpffs on {BPFFS}"))
}

fn bpffs_mounted(mounts: &str) -> bool {
    mounts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let mount_point = fields.nth(1);
        let fs_type = fields.next();
        mount_point == Some(BPFFS) && fs_type == Some("bpf")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_floating_nightly() {
        let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-x86_64-unknown-linux-gnu\n\
                    1.95.0-x86_64-unknown-linux-gnu\n";
        assert!(has_nightly(list));
    }

    #[test]
    fn dated_nightlies_are_not_nightly() {
        let list = "stable-x86_64-unknown-linux-gnu (default)\n\
                    nightly-2026-05-19-x86_64-unknown-linux-gnu\n";
        assert!(!has_nightly(list));
        assert!(!has_nightly("no installed toolchains\n"));
    }

    #[test]
    fn accepts_only_bpf_linker_0_13_0() {
        assert!(is_wanted_bpf_linker("bpf-linker 0.13.0\n"));
        assert!(!is_wanted_bpf_linker("bpf-linker 0.9.13\n"));
        assert!(!is_wanted_bpf_linker("bpf-linker 0.13.01\n"));
        assert!(!is_wanted_bpf_linker(""));
    }

    #[test]
    fn reads_the_llvm_major_from_the_toolchain_library() {
        assert_eq!(
            llvm_major("libLLVM.so.22.1-rust-1.97.0-nightly").ok(),
            Some("22")
        );
        assert_eq!(
            llvm_major("libLLVM.so.23-rust-1.99.0-nightly").ok(),
            Some("23")
        );
        assert!(llvm_major("libLLVM-22-rust-1.97.0-nightly.so").is_err());
        assert!(llvm_major("libLLVM.so").is_err());
        assert!(llvm_major("libLLVM.so.x.1-rust-1.97.0-nightly").is_err());
    }

    #[test]
    fn picks_the_versioned_libllvm_among_the_toolchain_libraries() {
        let lib = std::env::temp_dir().join(format!("xtask-libllvm-{}", std::process::id()));
        fs::create_dir_all(&lib).unwrap();
        for name in [
            "libLLVM-22-rust-1.97.0-nightly.so",
            "librustc_driver-b5a965480ee51f9a.so",
            "libLLVM.so.22.1-rust-1.97.0-nightly",
        ] {
            fs::write(lib.join(name), b"").unwrap();
        }
        let found = nightly_libllvm(&lib);
        fs::remove_dir_all(&lib).unwrap();
        assert_eq!(found.unwrap(), "libLLVM.so.22.1-rust-1.97.0-nightly");
    }

    #[test]
    fn replaces_an_existing_symlink() {
        let dir = std::env::temp_dir().join(format!("xtask-symlink-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let link = dir.join("libLLVM.so");
        replace_symlink(Path::new("/nonexistent/old"), &link).unwrap();
        replace_symlink(Path::new("/nonexistent/new"), &link).unwrap();
        let target = fs::read_link(&link);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(target.unwrap(), Path::new("/nonexistent/new"));
    }

    #[test]
    fn reads_dpkg_status() {
        assert!(dpkg_says_installed("install ok installed"));
        assert!(dpkg_says_installed("hold ok installed"));
        assert!(!dpkg_says_installed("deinstall ok config-files"));
        assert!(!dpkg_says_installed("unknown ok not-installed"));
        assert!(!dpkg_says_installed(""));
    }

    #[test]
    fn recognises_a_bpffs_mount() {
        let mounted = "sysfs /sys sysfs rw,nosuid 0 0\nbpf /sys/fs/bpf bpf rw,relatime 0 0\n";
        assert!(bpffs_mounted(mounted));
        let elsewhere = "sysfs /sys sysfs rw 0 0\nbpf /run/bpf bpf rw 0 0\n";
        assert!(!bpffs_mounted(elsewhere));
        let not_bpf = "tmpfs /sys/fs/bpf tmpfs rw 0 0\n";
        assert!(!bpffs_mounted(not_bpf));
    }
}
