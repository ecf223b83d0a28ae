//! `cargo xtask bench`: vbr's forwarding rate against the Linux bridge and a bare XDP redirect,
//! on veths in a namespace of the bench's own, with an in-kernel generator (live-frames
//! BPF_PROG_TEST_RUN) and sinks counting in XDP; what each of vbr's programs costs by itself;
//! and what its maps take in memory. Every variant is measured once per round, rounds
//! interleaved, so that drift of the machine spreads over all of them alike. On a kernel that
//! refuses live-frames test runs only `--quick` runs, its frames sent from a packet socket.
//!
//! `--quick` only checks that every variant forwards every frame where it should (a test, not a
//! measurement); otherwise the results go to `--output` (Markdown) and a plot next to it (SVG).
//! Needs root.

// The names of the rig's programs and maps and the generator's configuration, shared with
// vbr-ebpf's bench.rs: one definition compiled on both sides.
mod accelerated;
#[allow(dead_code, reason = "shared with the eBPF side, which uses the rest")]
#[path = "../../../vbr-ebpf/src/bench_abi.rs"]
mod bench_abi;
mod cost;
mod frames;
mod linux_bridge;
mod measure;
mod plot;
mod report;
mod rig;
mod topology;
mod variant;
mod vbr_switch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use clap::Parser;
use vbr_common::stats::Reason;
use vbr_tests::interrupt;

use crate::{
    linux_bridge::HostNetfilter,
    measure::{Budget, Sample},
    report::{Measured, Results},
    rig::Rig,
    topology::Topology,
    variant::{FDB_SIZES, Path, Switch, Traffic, Variant},
    vbr_switch::VbrSwitch,
};

/// Rounds of a full run: each variant's rate is the median of this many measurements.
const ROUNDS: usize = 5;
/// Length of one measurement.
const MEASURE_TIME: Duration = Duration::from_millis(600);
/// Frames each variant sends in `--quick` mode.
const QUICK_FRAMES: u32 = 10_000;

#[derive(Parser)]
#[command(about = "vbr's forwarding benchmark (run it with `cargo xtask bench`)")]
struct Args {
    /// Only check that every variant forwards; measure nothing, write nothing
    #[arg(long)]
    quick: bool,
    /// Where the results go (Markdown; the plot lands next to it as an SVG)
    #[arg(long, required_unless_present_any = ["quick", "only"])]
    output: Option<PathBuf>,
    /// Only measure the 64-byte variants whose name contains this text (repeatable: any of
    /// them) and print their rates (for profiling and before/after comparisons); writes nothing
    #[arg(long, conflicts_with_all = ["quick", "output"])]
    only: Vec<String>,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    vbr_tests::require_root();
    interrupt::install()?;
    let started = Instant::now();
    let host = HostNetfilter::snapshot()?;
    let topology = Topology::build().context("building the bench's namespace")?;
    println!(
        "namespace {}, generator and forwarding on CPU {}",
        topology.netns.name(),
        topology.cpu
    );
    let mut rig = Rig::load(&topology)?;
    ensure!(
        args.quick || rig.generates_live_frames(),
        "this kernel refuses live-frames test runs (BPF_F_TEST_XDP_LIVE_FRAMES: EPERM), the \
         generator that loads a switch to its limit; a packet socket is far too slow to measure \
         with, so only `--quick` runs here"
    );
    let mut vbr = Vec::new();
    for entries in FDB_SIZES {
        let loading = Instant::now();
        vbr.push(VbrSwitch::load(entries, &topology.ports[0])?);
        println!(
            "vbr with {entries} FDB entries loaded in {:.1?}",
            loading.elapsed()
        );
    }
    let variants = Variant::all();
    if args.quick {
        quick(&topology, &mut rig, &mut vbr, &variants)?;
    } else if !args.only.is_empty() {
        let chosen: Vec<Variant> = variants
            .into_iter()
            .filter(|variant| {
                let name = variant.to_string();
                args.only.iter().any(|text| name.contains(text.as_str()))
            })
            .collect();
        ensure!(
            !chosen.is_empty(),
            "no variant's name contains any of {:?}",
            args.only
        );
        compare(&topology, &mut rig, &mut vbr, &chosen)?;
    } else {
        let output = args.output.context("--output is required")?;
        let results = full(&topology, &mut rig, &mut vbr, &variants)?;
        report::write(&output, &results).context("writing the results")?;
        println!("results written to {}", output.display());
    }
    drop(vbr);
    drop(rig);
    drop(topology);
    host.check_unchanged()?;
    println!("done in {:.0?}", started.elapsed());
    Ok(())
}

/// Sends a fixed number of frames through every variant and checks where they arrived.
fn quick(
    topology: &Topology,
    rig: &mut Rig,
    vbr: &mut [VbrSwitch],
    variants: &[Variant],
) -> Result<()> {
    let wire_size = frames::WIRE_SIZES[0];
    for variant in variants {
        stop_if_interrupted()?;
        let frame = variant.frame(wire_size);
        let receivers = variant.receivers(topology);
        let sample = variant.run(topology, rig, vbr, |rig, switch| {
            rig.set_traffic(&frame, variant.destinations())?;
            let reason = match variant.path {
                Path::Flood(_) => Reason::Flooded,
                _ => Reason::Forwarded,
            };
            let counted = |switch: Option<&VbrSwitch>| switch.map(|s| s.count(reason)).transpose();
            let before = counted(switch)?;
            let budget = Budget::Frames(QUICK_FRAMES);
            let sample = measure::run(rig, &frame, &receivers, budget, topology.cpu)?;
            // Where vbr forwards, it must also have counted every frame under the right reason.
            if let (Some(before), Some(after)) = (before, counted(switch)?) {
                ensure!(
                    after - before == u64::from(QUICK_FRAMES),
                    "{variant}: vbr counted {} of {QUICK_FRAMES} frames as {reason:?}",
                    after - before
                );
            }
            Ok(sample)
        })?;
        measure::check(&sample, &variant.to_string())?;
        println!("ok: {variant}: {:?} of {QUICK_FRAMES}", sample.received);
    }
    Ok(())
}

/// Measures every variant at every frame size, `ROUNDS` times interleaved, then what the
/// programs cost and what the maps take.
fn full(
    topology: &Topology,
    rig: &mut Rig,
    vbr: &mut [VbrSwitch],
    variants: &[Variant],
) -> Result<Results> {
    let mut measured: Vec<Measured> = frames::WIRE_SIZES
        .iter()
        .flat_map(|&wire_size| {
            variants.iter().map(move |&variant| Measured {
                variant,
                wire_size,
                samples: Vec::new(),
            })
        })
        .collect();
    for round in 1..=ROUNDS {
        for entry in &mut measured {
            stop_if_interrupted()?;
            let sample = measure_one(
                topology,
                rig,
                vbr,
                &entry.variant,
                entry.wire_size,
                Budget::Time(MEASURE_TIME),
            )?;
            println!(
                "round {round}/{ROUNDS}, {} B, {}: {:.3} Mpps",
                entry.wire_size,
                entry.variant,
                sample.mpps()
            );
            entry.samples.push(sample);
        }
    }
    let cost_variants: Vec<Variant> = variants
        .iter()
        .filter(|variant| {
            matches!(variant.switch, Switch::Vbr { fdb } if fdb == FDB_SIZES[0] || fdb == FDB_SIZES[FDB_SIZES.len() - 1])
                && variant.traffic == Traffic::AllEntries
                && !matches!(variant.path, Path::Flood(n) if n != 8)
        })
        .copied()
        .collect();
    stop_if_interrupted()?;
    let costs = cost::paths(topology, rig, vbr, &cost_variants)?;
    let ceiling_test_run_ns = cost::ceiling(rig, topology.ingress.ifindex)?;
    let memory = vbr
        .iter()
        .map(|switch| Ok((switch.entries, switch.capacity, switch.memory()?)))
        .collect::<Result<_>>()?;
    let mut sizes = cost::sizes(vbr[0].ebpf())?;
    sizes.extend(cost::sizes(rig.ebpf())?);
    Ok(Results {
        measured,
        costs,
        ceiling_test_run_ns,
        memory,
        sizes,
        cpu: topology.cpu,
        rounds: ROUNDS,
        measure_time: MEASURE_TIME,
    })
}

/// Measures `variants` (64-byte frames) `ROUNDS` times interleaved and prints each one's median.
fn compare(
    topology: &Topology,
    rig: &mut Rig,
    vbr: &mut [VbrSwitch],
    variants: &[Variant],
) -> Result<()> {
    let wire_size = frames::WIRE_SIZES[0];
    let mut rates = vec![Vec::new(); variants.len()];
    for _ in 0..ROUNDS {
        for (variant, rates) in variants.iter().zip(&mut rates) {
            stop_if_interrupted()?;
            let budget = Budget::Time(MEASURE_TIME);
            let sample = measure_one(topology, rig, vbr, variant, wire_size, budget)?;
            rates.push(sample.mpps());
        }
    }
    let medians: Vec<f64> = rates.iter().map(|rates| report::median(rates)).collect();
    // Rates drift between runs; their ratio to the ceiling measured alongside holds.
    let ceiling = variants
        .iter()
        .zip(&medians)
        .find(|(variant, _)| variant.switch == Switch::Ceiling)
        .map(|(_, mpps)| *mpps);
    for (variant, mpps) in variants.iter().zip(&medians) {
        let of_ceiling = ceiling
            .map(|ceiling| format!(", {:.1}% of the ceiling", mpps / ceiling * 100.0))
            .unwrap_or_default();
        println!(
            "{variant}: {mpps:.3} Mpps, {:.0} ns/frame{of_ceiling}",
            1000.0 / mpps
        );
    }
    Ok(())
}

fn measure_one(
    topology: &Topology,
    rig: &mut Rig,
    vbr: &mut [VbrSwitch],
    variant: &Variant,
    wire_size: usize,
    budget: Budget,
) -> Result<Sample> {
    let frame = variant.frame(wire_size);
    let receivers = variant.receivers(topology);
    variant
        .run(topology, rig, vbr, |rig, _| {
            rig.set_traffic(&frame, variant.destinations())?;
            measure::run(rig, &frame, &receivers, budget, topology.cpu)
        })
        .with_context(|| format!("{variant}, {wire_size}-byte frames"))
}

fn stop_if_interrupted() -> Result<()> {
    if interrupt::raised() {
        bail!("interrupted");
    }
    Ok(())
}
