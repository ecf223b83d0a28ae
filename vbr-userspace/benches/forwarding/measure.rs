//! One measurement: the generator runs for a while, the sinks say what arrived.
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};

use crate::{rig::Rig, topology::Iface};

/// How long to generate, and in what steps.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// Exactly this many frames, in one test run: for checks.
    Frames(u32),
    /// About this long, in test runs of about `STEP`: for rates.
    Time(Duration),
}

/// How long the bench's CPU idles before a timed measurement, so that work the previous
/// variant's teardown left behind (RCU callbacks, freed maps, a deleted bridge's FDB) runs
/// before it rather than in it: without it, the first vbr row after the bridge rows measured
/// 8–12% below a row that does more work.
pub const SETTLE: Duration = Duration::from_millis(300);
/// Frames of the untimed warm-up before a timed measurement (caches, learning, NAPI).
const WARM_UP: u32 = 20_000;
/// Aimed length of one test run in a timed measurement: short enough to stop on time.
const STEP: Duration = Duration::from_millis(100);
/// Bounds on the frames of one test run.
const STEP_FRAMES: (u64, u64) = (10_000, 20_000_000);

/// What one measurement saw.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Frames the generator sent.
    pub generated: u64,
    /// Frames each expected receiver got, in order.
    pub received: Vec<u64>,
    /// Frames that reached any other sink.
    pub stray: u64,
    /// Time spent generating (and, on the same CPU, forwarding).
    pub elapsed: Duration,
    /// Share of the time other CPUs spent in softirq, where forwarding would show if it left
    /// the bench's CPU.
    pub softirq_elsewhere: f64,
}

impl Sample {
    /// Frames per second that made it through: the frames the switch took in (a flood's copies
    /// count once), in millions.
    pub fn mpps(&self) -> f64 {
        let copies = self.received.len().max(1) as f64;
        let frames = self.received.iter().sum::<u64>() as f64 / copies;
        frames / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Sends `frame` through the current switch and counts what reaches `receivers`.
pub fn run(
    rig: &Rig,
    frame: &[u8],
    receivers: &[&Iface],
    budget: Budget,
    cpu: usize,
) -> Result<Sample> {
    let mut generated = 0u64;
    let mut elapsed = Duration::ZERO;
    let (before, cpu_before);
    match budget {
        Budget::Frames(count) => {
            before = rig.received()?;
            cpu_before = CpuTimes::read()?;
            elapsed = rig.generate(frame, count)?;
            generated = u64::from(count);
        }
        Budget::Time(target) => {
            std::thread::sleep(SETTLE);
            let warm_up = rig.generate(frame, WARM_UP)?;
            let mut rate = f64::from(WARM_UP) / warm_up.as_secs_f64();
            before = rig.received()?;
            cpu_before = CpuTimes::read()?;
            while elapsed < target {
                let step = ((rate * STEP.as_secs_f64()) as u64).clamp(STEP_FRAMES.0, STEP_FRAMES.1);
                elapsed += rig.generate(frame, step as u32)?;
                generated += step;
                rate = generated as f64 / elapsed.as_secs_f64();
            }
        }
    }
    let cpu_after = CpuTimes::read()?;
    let after = rig.received()?;
    let delta = |ifindex: u32| after[ifindex as usize] - before[ifindex as usize];
    let received: Vec<u64> = receivers.iter().map(|iface| delta(iface.ifindex)).collect();
    let all: u64 = (0..after.len() as u32).map(delta).sum();
    Ok(Sample {
        generated,
        stray: all - received.iter().sum::<u64>(),
        received,
        elapsed,
        softirq_elsewhere: cpu_after.softirq_share_except(&cpu_before, cpu),
    })
}

/// Checks a sample of a `Budget::Frames` run: every receiver got every frame, once, and no
/// other sink got anything.
pub fn check(sample: &Sample, what: &str) -> Result<()> {
    ensure!(
        sample
            .received
            .iter()
            .all(|&count| count == sample.generated)
            && sample.stray == 0,
        "{what}: {} frames sent, receivers got {:?} (each should get them all), others {}",
        sample.generated,
        sample.received,
        sample.stray
    );
    Ok(())
}

/// Per-CPU time from /proc/stat, in USER_HZ ticks: (softirq, total) for each CPU.
struct CpuTimes(Vec<(u64, u64)>);

impl CpuTimes {
    fn read() -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let cpus = stat
            .lines()
            .filter(|line| line.starts_with("cpu") && !line.starts_with("cpu "))
            .map(|line| {
                // cpuN user nice system idle iowait irq softirq steal guest guest_nice
                let ticks: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .map(|field| field.parse().unwrap_or(0))
                    .collect();
                (
                    ticks.get(6).copied().unwrap_or(0),
                    ticks.iter().take(8).sum(),
                )
            })
            .collect();
        Ok(Self(cpus))
    }

    /// Softirq time of every CPU but `cpu` since `earlier`, over their total time.
    fn softirq_share_except(&self, earlier: &Self, cpu: usize) -> f64 {
        let (mut softirq, mut total) = (0, 0);
        for (n, ((s1, t1), (s0, t0))) in self.0.iter().zip(&earlier.0).enumerate() {
            if n != cpu {
                softirq += s1 - s0;
                total += t1 - t0;
            }
        }
        if total == 0 {
            0.0
        } else {
            softirq as f64 / total as f64
        }
    }
}
