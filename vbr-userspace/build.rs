//! Builds the datapath (vbr-ebpf) for bpfel-unknown-none with the nightly toolchain; the object
//! lands in OUT_DIR/vbr and is embedded by `datapath::object()`.
use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("reading the workspace metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|package| package.name.as_str() == "vbr-ebpf")
        .ok_or_else(|| anyhow!("vbr-ebpf is not in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("vbr-ebpf's manifest has no parent directory"))?;
    aya_build::build_ebpf(
        [Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        Toolchain::default(),
    )
    .context("building the eBPF datapath (run `cargo xtask build` to install its toolchain)")?;
    emit_versions()
}

/// `vbr --version` names the datapath it embeds (a hash of the object) and the map layout.
fn emit_versions() -> anyhow::Result<()> {
    let out_dir = std::env::var("OUT_DIR").context("OUT_DIR is not set")?;
    let object = std::fs::read(std::path::Path::new(&out_dir).join("vbr"))
        .context("reading the built datapath")?;
    // FNV-1a: enough to tell two builds apart.
    let id = object.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    println!("cargo:rustc-env=VBR_DATAPATH_ID={:012x}", id >> 16);
    let common = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vbr-common/src/lib.rs"
    ))
    .context("reading vbr-common")?;
    let layout = common
        .lines()
        .find_map(|line| line.strip_prefix("pub const MAP_LAYOUT_VERSION: u32 = "))
        .and_then(|rest| rest.strip_suffix(';'))
        .context("vbr-common defines no MAP_LAYOUT_VERSION")?;
    println!("cargo:rustc-env=VBR_MAP_LAYOUT={layout}");
    Ok(())
}
