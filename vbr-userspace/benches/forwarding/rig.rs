//! The rig's own programs (vbr-ebpf/src/bench.rs): the generator, the sinks and the ceiling.
//! Where the kernel refuses live-frames test runs (EPERM: some do, this workplace's among them),
//! a packet socket sends the generator's frames instead: enough to check that every variant
//! forwards, far too slow to measure any.
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use aya::{
    Ebpf, TestRun as _, TestRunAttrs, TestRunOptions,
    maps::{Array, DevMap, PerCpuArray},
    programs::{ProgramError, Xdp, XdpMode, xdp::XdpLinkId},
};
use vbr_tests::{frames::Injector, xdp::XdpMd};

use crate::{
    bench_abi::{
        self, GeneratorConfig, MAP_CEILING_TX, MAP_GENERATOR, MAP_SINK_FRAMES, PREFIX_LEN,
        PROG_GENERATE, PROG_REDIRECT, PROG_SINK, SINK_SLOTS,
    },
    topology::{Iface, Topology},
};

/// Frames the kernel generates per batch before flushing them (its default).
const LIVE_BATCH: u32 = 64;
/// What the live generator is, for its errors.
const LIVE_GENERATOR: &str = "generating frames (BPF_PROG_TEST_RUN with live frames, Linux ≥ 5.18)";
/// How long the packet socket's sender idles after its frames, so that softirq work the kernel
/// left to ksoftirqd on the bench's CPU gets done before the sinks are read.
const PACKET_SOCKET_SETTLE: Duration = Duration::from_millis(50);

// SAFETY: plain `#[repr(C)]` data with explicit padding.
unsafe impl aya::Pod for GeneratorConfig {}

pub struct Rig {
    ebpf: Ebpf,
    generator: u32,
    /// Where the kernel refuses live frames: sends the frames out of the generator's interface.
    packet_socket: Option<Injector>,
    /// The generator's configuration, for the packet socket to stamp the frames alike.
    traffic: GeneratorConfig,
}

impl Rig {
    /// Loads the programs, attaches a sink to every kN and points the ceiling at p1.
    pub fn load(topology: &Topology) -> Result<Self> {
        let object = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vbr-bench"));
        let mut ebpf = Ebpf::load(object).context("loading the bench's eBPF object")?;
        for name in [PROG_GENERATE, PROG_REDIRECT, PROG_SINK] {
            program(&mut ebpf, name)?
                .load()
                .with_context(|| format!("loading {name}"))?;
        }
        for sink in &topology.sinks {
            anyhow::ensure!(
                sink.ifindex < SINK_SLOTS,
                "sink {} has ifindex {}, past the sink's counters",
                sink.name,
                sink.ifindex
            );
            attach(&mut ebpf, PROG_SINK, sink)?;
        }
        let mut ceiling = DevMap::try_from(map(&mut ebpf, MAP_CEILING_TX)?)?;
        ceiling
            .set(0, topology.ports[0].ifindex, None, 0)
            .context("pointing the ceiling at p1")?;
        let mut rig = Self {
            ebpf,
            generator: topology.generator.ifindex,
            packet_socket: None,
            traffic: GeneratorConfig {
                prefix: [0; PREFIX_LEN],
                _pad: 0,
                destinations: 0,
            },
        };
        // One frame into pa, whose stack drops it while no switch is attached.
        match rig.generate_live(&[0; PREFIX_LEN], 1) {
            Ok(_) => {}
            Err(ProgramError::SyscallError(error))
                if error.io_error.raw_os_error() == Some(libc::EPERM) =>
            {
                println!(
                    "this kernel refuses live-frames test runs: frames come from a packet socket"
                );
                rig.packet_socket = Some(Injector::open()?);
            }
            Err(error) => {
                return Err(error).context(LIVE_GENERATOR);
            }
        }
        Ok(rig)
    }

    /// Whether frames come from live-frames test runs, fast enough to measure forwarding.
    pub fn generates_live_frames(&self) -> bool {
        self.packet_socket.is_none()
    }

    /// From now on the generator sends `frame`, to `destinations` destination MACs in turn when
    /// there are 2 or more.
    pub fn set_traffic(&mut self, frame: &[u8], destinations: u32) -> Result<()> {
        let mut prefix = [0; PREFIX_LEN];
        prefix.copy_from_slice(&frame[..PREFIX_LEN]);
        let config = GeneratorConfig {
            prefix,
            _pad: 0,
            destinations,
        };
        self.traffic = config;
        let mut generator: Array<_, GeneratorConfig> =
            Array::try_from(map(&mut self.ebpf, MAP_GENERATOR)?)?;
        generator
            .set(0, config, 0)
            .context("configuring the generator")
    }

    /// Transmits `count` copies of `frame` out of gen0, from the calling thread's CPU; returns
    /// the time it took.
    pub fn generate(&self, frame: &[u8], count: u32) -> Result<Duration> {
        match &self.packet_socket {
            None => self.generate_live(frame, count).context(LIVE_GENERATOR),
            Some(socket) => self.send(socket, frame, count),
        }
    }

    fn generate_live(&self, frame: &[u8], count: u32) -> Result<Duration, ProgramError> {
        let ctx = XdpMd::arriving_on(self.generator, frame.len());
        let program: &Xdp = self
            .ebpf
            .program(PROG_GENERATE)
            .expect("the generator is loaded")
            .try_into()?;
        let start = Instant::now();
        program.test_run(TestRunOptions {
            data_in: Some(frame),
            ctx_in: Some(ctx.as_bytes()),
            repeat: count,
            attrs: TestRunAttrs::new().xdp_live_frames(LIVE_BATCH),
            ..Default::default()
        })?;
        Ok(start.elapsed())
    }

    /// What `bench_generate` does, from userspace: each frame stamped with the prefix and the
    /// next destination, sent out of gen0.
    fn send(&self, socket: &Injector, frame: &[u8], count: u32) -> Result<Duration> {
        let mut frame = frame.to_vec();
        frame[..PREFIX_LEN].copy_from_slice(&self.traffic.prefix);
        let destinations = self.traffic.destinations;
        let start = Instant::now();
        for sequence in 0..count {
            if destinations > 1 {
                frame[..6].copy_from_slice(&bench_abi::destination(sequence % destinations));
            }
            socket
                .send(self.generator, &frame)
                .context("sending the generator's frames out of gen0")?;
        }
        std::thread::sleep(PACKET_SOCKET_SETTLE);
        Ok(start.elapsed())
    }

    /// Frames received so far by each interface, indexed by ifindex, summed over CPUs.
    pub fn received(&self) -> Result<Vec<u64>> {
        let counts: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.ebpf
                .map(MAP_SINK_FRAMES)
                .ok_or_else(|| anyhow!("no map {MAP_SINK_FRAMES}"))?,
        )?;
        (0..SINK_SLOTS)
            .map(|slot| Ok(counts.get(&slot, 0)?.iter().sum()))
            .collect()
    }

    /// Attaches the sink to `iface` (the generator-only baseline counts on pa).
    pub fn attach_sink(&mut self, iface: &Iface) -> Result<XdpLinkId> {
        attach(&mut self.ebpf, PROG_SINK, iface)
    }

    pub fn detach_sink(&mut self, link: XdpLinkId) -> Result<()> {
        program(&mut self.ebpf, PROG_SINK)?.detach(link)?;
        Ok(())
    }

    /// Attaches the bare redirect (pa → p1) to `iface`.
    pub fn attach_ceiling(&mut self, iface: &Iface) -> Result<XdpLinkId> {
        attach(&mut self.ebpf, PROG_REDIRECT, iface)
    }

    pub fn detach_ceiling(&mut self, link: XdpLinkId) -> Result<()> {
        program(&mut self.ebpf, PROG_REDIRECT)?.detach(link)?;
        Ok(())
    }

    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    Ok(ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("no program {name}"))?
        .try_into()?)
}

fn map<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut aya::maps::Map> {
    ebpf.map_mut(name).ok_or_else(|| anyhow!("no map {name}"))
}

/// Attaches program `name` natively (XDP in the veth driver) to `iface`.
fn attach(ebpf: &mut Ebpf, name: &str, iface: &Iface) -> Result<XdpLinkId> {
    program(ebpf, name)?
        .attach_to_if_index(iface.ifindex, XdpMode::Driver)
        .with_context(|| format!("attaching {name} to {}", iface.name))
}
