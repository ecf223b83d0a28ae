//! The results as Markdown (docs/benchmarks.md) with the plot next to it.
use std::fmt::Write as _;
use std::path::Path as FsPath;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use vbr_common::PROG_EGRESS;
use vbr_tests::cmd;

use crate::{
    cost::{PathCost, ProgramSize},
    frames::WIRE_SIZES,
    measure::{self, Sample},
    plot,
    variant::{FAN_OUTS, FDB_SIZES, Path, Switch, Traffic, Variant, fdb_label},
    vbr_switch::Memory,
};

/// The command that regenerates the results.
pub const COMMAND: &str = "cargo xtask bench";

/// All measurements of one variant at one frame size.
pub struct Measured {
    pub variant: Variant,
    pub wire_size: usize,
    pub samples: Vec<Sample>,
}

impl Measured {
    fn rates(&self) -> Vec<f64> {
        self.samples.iter().map(Sample::mpps).collect()
    }

    pub fn mpps(&self) -> f64 {
        median(&self.rates())
    }

    fn min_max(&self) -> (f64, f64) {
        let rates = self.rates();
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        (min, max)
    }

    /// Nanoseconds of the one CPU per frame taken in, for the whole chain: generator, veths,
    /// switch, sinks.
    pub fn ns_per_frame(&self) -> f64 {
        1e3 / self.mpps()
    }
}

pub struct Results {
    pub measured: Vec<Measured>,
    pub costs: Vec<PathCost>,
    /// Test-run cost of the ceiling's program, for reference.
    pub ceiling_test_run_ns: f64,
    /// (FDB entries, FDB capacity, memory) of each vbr instance.
    pub memory: Vec<(u32, u32, Memory)>,
    pub sizes: Vec<ProgramSize>,
    pub cpu: usize,
    pub rounds: usize,
    pub measure_time: Duration,
}

impl Results {
    /// The measurement of `switch` on `path` with traffic to all the FDB's entries.
    pub fn get(&self, switch: Switch, path: Path, wire_size: usize) -> Result<&Measured> {
        self.find(switch, path, Traffic::AllEntries, wire_size)
    }

    fn find(
        &self,
        switch: Switch,
        path: Path,
        traffic: Traffic,
        wire_size: usize,
    ) -> Result<&Measured> {
        self.measured
            .iter()
            .find(|m| {
                m.variant
                    == Variant {
                        switch,
                        path,
                        traffic,
                        vlan_stats: false,
                    }
                    && m.wire_size == wire_size
            })
            .ok_or_else(|| anyhow!("no measurement of {switch:?} {path:?} at {wire_size} B"))
    }

    /// Worst share of time other CPUs spent in softirq during any measurement.
    fn softirq_elsewhere(&self) -> f64 {
        self.measured
            .iter()
            .flat_map(|m| &m.samples)
            .map(|sample| sample.softirq_elsewhere)
            .fold(0.0, f64::max)
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

const CEILING: Switch = Switch::Ceiling;
const BRIDGE: Switch = Switch::LinuxBridge { netfilter: false };
const BRIDGE_NF: Switch = Switch::LinuxBridge { netfilter: true };
const SMALL: usize = WIRE_SIZES[0];

fn vbr(fdb: u32) -> Switch {
    Switch::Vbr { fdb }
}

/// One goal of issue #6: what was measured against what was asked.
struct Goal {
    what: &'static str,
    measured: String,
    holds: bool,
}

fn goals(results: &Results) -> Result<Vec<Goal>> {
    let (small, large) = (FDB_SIZES[0], FDB_SIZES[FDB_SIZES.len() - 1]);
    let unicast = results.get(vbr(small), Path::Unicast, SMALL)?;
    let ceiling = results.get(CEILING, Path::Unicast, SMALL)?;
    let bridge = results.get(BRIDGE, Path::Unicast, SMALL)?;
    let mut goals = vec![
        ratio_goal(
            "known unicast ≥ 85% of the bare redirect",
            unicast.mpps() / ceiling.mpps(),
            0.85,
        ),
        ratio_goal(
            "known unicast ≥ 3× the Linux bridge (netfilter off)",
            unicast.mpps() / bridge.mpps(),
            3.0,
        ),
    ];
    for (what, path) in [
        (
            "tag push costs ≤ 10% more than untagged",
            Path::AccessToTrunk,
        ),
        (
            "tag pop costs ≤ 10% more than untagged",
            Path::TrunkToAccess,
        ),
    ] {
        let tagged = results.get(vbr(small), path, SMALL)?;
        goals.push(cost_goal(
            what,
            tagged.ns_per_frame() / unicast.ns_per_frame(),
        ));
    }
    // The same 1k destinations in a 1M-entry table: what the table's size costs.
    let big = results.find(vbr(large), Path::Unicast, Traffic::WorkingSet, SMALL)?;
    goals.push(cost_goal(
        "1M FDB entries cost ≤ 10% more than 1k (traffic to 1k destinations in both)",
        big.ns_per_frame() / unicast.ns_per_frame(),
    ));
    let (hot_small, hot_large) = (
        results.find(vbr(small), Path::Unicast, Traffic::One, SMALL)?,
        results.find(vbr(large), Path::Unicast, Traffic::One, SMALL)?,
    );
    goals.push(cost_goal(
        "1M FDB entries cost ≤ 10% more than 1k (traffic to one destination)",
        hot_large.ns_per_frame() / hot_small.ns_per_frame(),
    ));
    // A working set a thousand times larger: memory-bound, for the record.
    let everything = results.get(vbr(large), Path::Unicast, SMALL)?;
    goals.push(cost_goal(
        "1M FDB entries cost ≤ 10% more than 1k (traffic to every entry of each: 1000× the working set)",
        everything.ns_per_frame() / unicast.ns_per_frame(),
    ));
    let flood = results.get(vbr(small), Path::Flood(8), SMALL)?;
    let bridge_flood = results.get(BRIDGE, Path::Flood(8), SMALL)?;
    goals.push(ratio_goal(
        "broadcast to 8 ports ≥ 2× the Linux bridge's (netfilter off)",
        flood.mpps() / bridge_flood.mpps(),
        2.0,
    ));
    let cost = results
        .costs
        .iter()
        .find(|cost| cost.variant.switch == vbr(small) && cost.variant.path == Path::Unicast)
        .and_then(|cost| cost.test_run_ns)
        .ok_or_else(|| anyhow!("no test-run cost of known unicast"))?;
    goals.push(Goal {
        what: "program cost of known unicast ≤ 60 ns/frame",
        measured: format!("{cost:.1} ns"),
        holds: cost <= 60.0,
    });
    Ok(goals)
}

fn ratio_goal(what: &'static str, ratio: f64, at_least: f64) -> Goal {
    Goal {
        what,
        measured: if at_least < 1.0 {
            format!("{:.1}%", ratio * 100.0)
        } else {
            format!("{ratio:.2}×")
        },
        holds: ratio >= at_least,
    }
}

fn cost_goal(what: &'static str, ratio: f64) -> Goal {
    Goal {
        what,
        measured: format!("{:+.1}% ns/frame", (ratio - 1.0) * 100.0),
        holds: ratio <= 1.10,
    }
}

/// Writes the Markdown to `path` and the plot next to it.
pub fn write(path: &FsPath, results: &Results) -> Result<()> {
    let svg_name = "benchmarks.svg";
    let folder = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no folder", path.display()))?;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let svg_path = folder.join(svg_name);
    std::fs::write(&svg_path, plot::svg(results)?)
        .with_context(|| format!("writing {}", svg_path.display()))?;
    std::fs::write(path, markdown(results, svg_name)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn markdown(results: &Results, svg_name: &str) -> Result<String> {
    let mut md = String::new();
    let machine = Machine::read()?;
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Generated by `{COMMAND}` on {} (Linux {}, {} × {}, {} GiB).\n",
        machine.date, machine.kernel, machine.cpus, machine.cpu_model, machine.memory_gib
    )?;
    writeln!(
        md,
        "![Mpps against FDB size and flood fan-out]({svg_name})\n"
    )?;
    method(&mut md, results)?;
    writeln!(md, "## Goals (64-byte frames, one forwarding core)\n")?;
    writeln!(md, "| goal | measured | holds |\n|---|---|---|")?;
    for goal in goals(results)? {
        let holds = if goal.holds { "yes" } else { "**no**" };
        writeln!(md, "| {} | {} | {holds} |", goal.what, goal.measured)?;
    }
    writeln!(md)?;
    for wire_size in WIRE_SIZES {
        rate_table(&mut md, results, wire_size)?;
    }
    cost_table(&mut md, results)?;
    size_table(&mut md, results)?;
    memory_table(&mut md, results)?;
    Ok(md)
}

fn method(md: &mut String, results: &Results) -> Result<()> {
    writeln!(md, "## How it is measured\n")?;
    writeln!(
        md,
        "- One network namespace of veths: `gen0`–`pa`, and `pN`–`kN` for N = 1..8. The switch \
         under test (the Linux bridge, a bare XDP redirect, vbr, or the Linux bridge with vbr's \
         fast path beside it) joins `pa` and the `pN`."
    )?;
    writeln!(
        md,
        "- The generator is an XDP program returning XDP_TX, run by BPF_PROG_TEST_RUN in \
         live-frames mode with `gen0` as ingress: each frame leaves `gen0` for `pa`. It rewrites \
         the head of each frame (live frames return as the sink left them) and spreads unicast \
         over the FDB's destinations, one after the other (the Linux bridge and the baselines: \
         {} destinations; rows that say so send to fewer). Frames are IPv4/UDP; sizes count the FCS, which a veth does not carry.",
        crate::variant::BASELINE_DESTINATIONS
    )?;
    writeln!(
        md,
        "- Frames are counted where they arrive: an XDP program on each `kN` counts into a \
         per-CPU array and drops. Rates count frames taken in by the switch (a flood's copies \
         count once) per second of generation."
    )?;
    writeln!(
        md,
        "- Everything runs on CPU {}: the bench pins its thread there, the test run transmits \
         from it, and the veths' NAPI polls (where XDP runs) are raised on the same CPU. Other \
         CPUs spent at most {:.1}% of their time in softirq during any measurement. \
         So ns/frame is 1000 / Mpps of that one core, for the whole chain (generator, veths, \
         switch, sink); \"switch ns\" subtracts the chain without a switch (generator alone).",
        results.cpu,
        results.softirq_elsewhere() * 100.0
    )?;
    writeln!(
        md,
        "- {} rounds; each round measures every variant for {:.1} s, in the same order, so \
         that drift spreads over all variants alike; before each measurement the CPU idles for \
         {:.1} s, so that what the previous variant's teardown left to do (RCU callbacks, freed \
         maps, a deleted bridge) does not fall into it. Rates are the median of the rounds, with \
         min–max. vbr's datapath is loaded from the vbr library with its FDB filled beforehand \
         (static entries), not through the agent; so is the accelerated bridge's fast path, with \
         the bridge's entries mirrored into it. vbr's FDB map keeps vbr's capacity (65536) when \
         that is enough and is sized to the next power of two otherwise. Each of vbr's instances \
         attaches its flush watch (a raw tracepoint program after every NAPI poll of the host, \
         as the agent attaches one per bridge) only while its own variants run: the other \
         switches do not pay for it.",
        results.rounds,
        results.measure_time.as_secs_f64(),
        measure::SETTLE.as_secs_f64()
    )?;
    writeln!(
        md,
        "- The bridge's netfilter switches (`bridge-nf-call-{{arp,ip,ip6}}tables`) are per \
         namespace: only the bench's namespace is touched. Bridge VLAN filtering is absent \
         from this kernel, so the bridge has no VLAN rows.\n"
    )?;
    Ok(())
}

fn rate_table(md: &mut String, results: &Results, wire_size: usize) -> Result<()> {
    let generator = results.get(Switch::Generator, Path::Unicast, wire_size)?;
    let ceiling = results.get(CEILING, Path::Unicast, wire_size)?;
    writeln!(md, "## Forwarding rate, {wire_size}-byte frames\n")?;
    writeln!(
        md,
        "| variant | Mpps | min–max | ns/frame | switch ns | vs ceiling | vs Linux bridge |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|")?;
    for measured in results.measured.iter().filter(|m| m.wire_size == wire_size) {
        let (min, max) = measured.min_max();
        let bridge_path = match measured.variant.path {
            Path::Flood(n) => Path::Flood(n),
            _ => Path::Unicast,
        };
        let bridge = results.get(BRIDGE, bridge_path, wire_size)?;
        writeln!(
            md,
            "| {} | {:.3} | {:.3}–{:.3} | {:.0} | {:.0} | {:.0}% | {:.2}× |",
            measured.variant,
            measured.mpps(),
            min,
            max,
            measured.ns_per_frame(),
            measured.ns_per_frame() - generator.ns_per_frame(),
            measured.mpps() / ceiling.mpps() * 100.0,
            measured.mpps() / bridge.mpps()
        )?;
    }
    writeln!(
        md,
        "\n\"vs Linux bridge\" compares with the bridge (netfilter off) on the same traffic: \
         known unicast for unicast rows, the same fan-out for floods.\n"
    )?;
    Ok(())
}

fn cost_table(md: &mut String, results: &Results) -> Result<()> {
    writeln!(md, "## Program cost (64-byte frames)\n")?;
    writeln!(
        md,
        "`test run`: BPF_PROG_TEST_RUN of `vbr_ingress` alone, 1,000,000 runs on one frame \
         (no live frames: the redirect is decided, not carried out; median of 3). The kernel \
         does not restore the frame between runs, so paths that push or pop a tag (and floods \
         of untagged frames, which push one) cannot be measured this way. `live`: the kernel's \
         run-time statistics (BPF_ENABLE_STATS) over live traffic through the bench, for every \
         path; they include reading the clock around each run.\n"
    )?;
    writeln!(
        md,
        "| path | test run, ns | live, ns | live `{PROG_EGRESS}`, ns per frame sent |\n|---|---:|---:|---:|"
    )?;
    for cost in &results.costs {
        let test_run = cost
            .test_run_ns
            .map_or("–".to_owned(), |ns| format!("{ns:.1}"));
        let egress = cost
            .live_egress_ns
            .map_or("–".to_owned(), |ns| format!("{ns:.1}"));
        writeln!(
            md,
            "| {} | {test_run} | {:.1} | {egress} |",
            cost.variant, cost.live_ns
        )?;
    }
    writeln!(
        md,
        "\nFor reference, the same test run of the ceiling's program (`bench_redirect`: one \
         devmap redirect and nothing else) costs {:.1} ns.\n",
        results.ceiling_test_run_ns
    )?;
    Ok(())
}

fn size_table(md: &mut String, results: &Results) -> Result<()> {
    writeln!(md, "## Program sizes\n")?;
    writeln!(
        md,
        "As loaded: instructions after the verifier's rewrites (what `bpftool prog dump xlated` \
         lists), JIT-compiled bytes, and instructions the verifier walked over all paths.\n"
    )?;
    writeln!(
        md,
        "| program | xlated insns | jited bytes | verified insns |\n|---|---:|---:|---:|"
    )?;
    for size in &results.sizes {
        writeln!(
            md,
            "| `{}` | {} | {} | {} |",
            size.name,
            size.xlated_insns,
            size.jited_bytes,
            size.verified_insns
                .map_or("–".to_owned(), |n| n.to_string())
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn memory_table(md: &mut String, results: &Results) -> Result<()> {
    writeln!(md, "## Memory\n")?;
    writeln!(
        md,
        "Bytes the kernel charges for the maps of one bridge (fdinfo `memlock`, as `bpftool map \
         show` prints it). Hash maps are preallocated: the FDB costs its capacity, however full.\n"
    )?;
    writeln!(
        md,
        "| FDB entries | FDB capacity | `fdb` map | all maps |\n|---:|---:|---:|---:|"
    )?;
    for (entries, capacity, memory) in &results.memory {
        writeln!(
            md,
            "| {} | {capacity} | {} | {} |",
            fdb_label(*entries),
            mib(memory.fdb),
            mib(memory.all_maps)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The machine the results come from.
struct Machine {
    date: String,
    kernel: String,
    cpus: usize,
    cpu_model: String,
    memory_gib: u64,
}

impl Machine {
    fn read() -> Result<Self> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").context("reading /proc/cpuinfo")?;
        let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
        let field = |text: &str, name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, value)| value.trim().to_owned())
                .ok_or_else(|| anyhow!("no {name:?} line"))
        };
        let memory_kib: u64 = field(&meminfo, "MemTotal")?
            .trim_end_matches(" kB")
            .parse()
            .context("parsing MemTotal")?;
        let date = cmd::run_ok(
            Command::new("date").args(["-u", "+%Y-%m-%d"]),
            Duration::from_secs(5),
        )?;
        Ok(Self {
            date: String::from_utf8_lossy(&date.stdout).trim().to_owned(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .context("reading the kernel release")?
                .trim()
                .to_owned(),
            // Not available_parallelism: the bench's thread is pinned to one CPU.
            // SAFETY: sysconf has no preconditions.
            cpus: unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize,
            cpu_model: field(&cpuinfo, "model name")?,
            memory_gib: (memory_kib + (1 << 19)) >> 20,
        })
    }
}

/// A plotted line: its label and one rate per category.
pub type Series = (String, Vec<f64>);

/// For the plot: the rates of vbr's unicast paths against FDB size, and of floods against
/// fan-out, at 64 bytes.
pub fn series(results: &Results) -> Result<(Vec<Series>, Vec<Series>)> {
    let mut by_fdb = Vec::new();
    for path in [
        Path::Unicast,
        Path::AccessToTrunk,
        Path::TrunkToAccess,
        Path::TrunkToTrunk,
    ] {
        let rates = FDB_SIZES
            .iter()
            .map(|&fdb| Ok(results.get(vbr(fdb), path, SMALL)?.mpps()))
            .collect::<Result<Vec<f64>>>()?;
        by_fdb.push((format!("vbr: {}", path.label()), rates));
    }
    let mut by_fan_out = Vec::new();
    for fdb in FDB_SIZES {
        let rates = FAN_OUTS
            .iter()
            .map(|&n| Ok(results.get(vbr(fdb), Path::Flood(n), SMALL)?.mpps()))
            .collect::<Result<Vec<f64>>>()?;
        by_fan_out.push((format!("vbr, {} FDB", fdb_label(fdb)), rates));
    }
    for (switch, label) in [
        (BRIDGE, "Linux bridge"),
        (BRIDGE_NF, "Linux bridge + netfilter"),
    ] {
        let rates = FAN_OUTS
            .iter()
            .map(|&n| Ok(results.get(switch, Path::Flood(n), SMALL)?.mpps()))
            .collect::<Result<Vec<f64>>>()?;
        by_fan_out.push((label.to_owned(), rates));
    }
    Ok((by_fdb, by_fan_out))
}

/// Horizontal references for the FDB plot: the ceiling and the bridges, at 64 bytes.
pub fn references(results: &Results) -> Result<Vec<(String, f64)>> {
    Ok(vec![
        (
            "bare XDP redirect".to_owned(),
            results.get(CEILING, Path::Unicast, SMALL)?.mpps(),
        ),
        (
            "Linux bridge".to_owned(),
            results.get(BRIDGE, Path::Unicast, SMALL)?.mpps(),
        ),
        (
            "Linux bridge + netfilter".to_owned(),
            results.get(BRIDGE_NF, Path::Unicast, SMALL)?.mpps(),
        ),
    ])
}
