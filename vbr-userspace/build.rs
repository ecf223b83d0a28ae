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
    .context("building the eBPF datapath (run `cargo xtask build` to install its toolchain)")
}
