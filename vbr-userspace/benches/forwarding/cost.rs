//! What vbr's programs cost by themselves, apart from the veths and redirects around them.
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, ensure};
use aya::{
    Ebpf, TestRun as _, TestRunOptions,
    programs::{Program, ProgramInfo, Xdp},
    sys::Stats,
};
use vbr_common::{PROG_EGRESS, PROG_INGRESS, stats::Reason};
use vbr_tests::xdp::XdpMd;

use crate::{
    bench_abi::{PROG_REDIRECT, destination},
    measure::{self, Budget},
    rig::Rig,
    topology::Topology,
    variant::{Path, Variant},
    vbr_switch::VbrSwitch,
};

const XDP_REDIRECT: u32 = 4;

/// Runs of one plain test run.
const REPEAT: u32 = 1_000_000;
/// Plain test runs per path; the median is kept.
const TEST_RUNS: usize = 3;
/// How long the live traffic runs while the kernel keeps run-time statistics.
const STATS_TIME: Duration = Duration::from_millis(300);

/// Cost of `vbr_ingress` on one path, in ns per frame.
#[derive(Clone, Debug)]
pub struct PathCost {
    pub variant: Variant,
    /// From BPF_PROG_TEST_RUN with `REPEAT` runs on one frame; `None` where the path changes the
    /// frame's length, which a repeated test run does not undo (run 2 would see run 1's output).
    pub test_run_ns: Option<f64>,
    /// From the kernel's run-time statistics (`kernel.bpf_stats_enabled`) over live traffic.
    pub live_ns: f64,
    /// The same for the egress devmap program, per frame it sends out (each flood copy, and each
    /// unicast frame if the datapath runs it there too); `None` if it did not run.
    pub live_egress_ns: Option<f64>,
}

/// Whether vbr leaves the frame's length unchanged on this path (no tag pushed or popped, and a
/// flood of an untagged frame pushes one).
fn keeps_length(path: Path) -> bool {
    matches!(path, Path::Unicast | Path::TrunkToTrunk)
}

/// `vbr_ingress`'s cost on the frame of `variant`, by plain test runs (no live frames: the
/// redirect is decided, not carried out). Checks that every run took the path.
pub fn test_run(switch: &VbrSwitch, variant: &Variant, ingress: u32) -> Result<f64> {
    let frame = variant.frame(crate::frames::WIRE_SIZES[0]);
    let program = xdp(switch.ebpf(), PROG_INGRESS)?;
    let reason = expected_reason(variant.path);
    let mut costs = Vec::with_capacity(TEST_RUNS);
    for _ in 0..TEST_RUNS {
        let before = switch.count(reason)?;
        costs.push(mean_ns(program, &frame, ingress).with_context(|| format!("{variant}"))?);
        let took = switch.count(reason)? - before;
        ensure!(
            took == u64::from(REPEAT),
            "{variant}: {took} of {REPEAT} test runs counted as {reason:?}"
        );
    }
    Ok(crate::report::median(&costs))
}

/// The ceiling's program (`bench_redirect`) in the same test run, for reference.
pub fn ceiling(rig: &Rig, ingress: u32) -> Result<f64> {
    let frame = crate::frames::udp(destination(0), None, crate::frames::WIRE_SIZES[0]);
    let program = xdp(rig.ebpf(), PROG_REDIRECT)?;
    let costs = (0..TEST_RUNS)
        .map(|_| mean_ns(program, &frame, ingress))
        .collect::<Result<Vec<f64>>>()?;
    Ok(crate::report::median(&costs))
}

/// Mean time of one of `REPEAT` plain test runs of `program` on `frame`.
fn mean_ns(program: &Xdp, frame: &[u8], ingress: u32) -> Result<f64> {
    let ctx = XdpMd::arriving_on(ingress, frame.len());
    let mut out = vec![0; frame.len() + 64];
    let result = program
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(ctx.as_bytes()),
            repeat: REPEAT,
            ..Default::default()
        })
        .context("BPF_PROG_TEST_RUN")?;
    ensure!(
        result.return_value == XDP_REDIRECT,
        "the program returned {} rather than XDP_REDIRECT",
        result.return_value
    );
    // The kernel reports the mean time of one run, in whole nanoseconds.
    Ok(result.duration.as_nanos() as f64)
}

/// The program cost of every vbr path at the smallest and largest FDB.
pub fn paths(
    topology: &Topology,
    rig: &mut Rig,
    vbr: &mut [VbrSwitch],
    variants: &[Variant],
) -> Result<Vec<PathCost>> {
    let mut costs = Vec::new();
    for variant in variants {
        let frame = variant.frame(crate::frames::WIRE_SIZES[0]);
        let receivers = variant.receivers(topology);
        let cost = variant.run(topology, rig, vbr, |rig, switch| {
            let switch = switch.ok_or_else(|| anyhow!("{variant} is not vbr"))?;
            let test_run_ns = keeps_length(variant.path)
                .then(|| test_run(switch, variant, topology.ingress.ifindex))
                .transpose()?;
            rig.set_traffic(&frame, variant.destinations())?;
            let ingress = xdp(switch.ebpf(), PROG_INGRESS)?;
            let egress = xdp(switch.ebpf(), PROG_EGRESS)?;
            let stats = aya::sys::enable_stats(Stats::RunTime)
                .context("enabling the kernel's BPF run-time statistics")?;
            let (ingress_before, egress_before) = (ingress.info()?, egress.info()?);
            measure::run(
                rig,
                &frame,
                &receivers,
                Budget::Time(STATS_TIME),
                topology.cpu,
            )?;
            let (ingress_after, egress_after) = (ingress.info()?, egress.info()?);
            // Closing the descriptor turns the statistics off again (unless someone else holds one).
            drop(stats);
            Ok(PathCost {
                variant: *variant,
                test_run_ns,
                live_ns: per_run(&ingress_before, &ingress_after)
                    .ok_or_else(|| anyhow!("{variant}: {PROG_INGRESS} did not run"))?,
                live_egress_ns: per_run(&egress_before, &egress_after),
            })
        })?;
        costs.push(cost);
    }
    Ok(costs)
}

/// Mean run time between two looks at a program; `None` if it did not run in between.
fn per_run(before: &ProgramInfo, after: &ProgramInfo) -> Option<f64> {
    let runs = after.run_count() - before.run_count();
    (runs > 0).then(|| (after.run_time() - before.run_time()).as_nanos() as f64 / runs as f64)
}

fn expected_reason(path: Path) -> Reason {
    match path {
        Path::Flood(_) => Reason::Flooded,
        _ => Reason::Forwarded,
    }
}

/// Size of one loaded program.
#[derive(Clone, Debug)]
pub struct ProgramSize {
    pub name: String,
    /// Instructions after the verifier's rewrites (`bpftool prog dump xlated`), 8 bytes each.
    pub xlated_insns: u32,
    pub jited_bytes: u32,
    /// Instructions the verifier walked, over all paths.
    pub verified_insns: Option<u32>,
}

/// Sizes of every XDP program in `ebpf`, by name.
pub fn sizes(ebpf: &Ebpf) -> Result<Vec<ProgramSize>> {
    let mut sizes = Vec::new();
    for (name, program) in ebpf.programs() {
        let Program::Xdp(program) = program else {
            continue;
        };
        let info = program.info()?;
        sizes.push(ProgramSize {
            name: name.to_owned(),
            xlated_insns: info.size_translated().unwrap_or(0) / 8,
            jited_bytes: info.size_jitted(),
            verified_insns: info.verified_instruction_count(),
        });
    }
    sizes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(sizes)
}

fn xdp<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a Xdp> {
    Ok(ebpf
        .program(name)
        .ok_or_else(|| anyhow!("no program {name}"))?
        .try_into()?)
}
