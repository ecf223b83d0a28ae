//! The bench's network: one namespace of its own, holding veth pairs only.
//!
//! ```text
//!   gen0 ──veth── pa ┐            the generator transmits out of gen0; pa is the switch's ingress
//!                    ├ switch     (Linux bridge, bare redirect or vbr, one at a time)
//!   k1   ──veth── p1 ┤            p1..p8 are its other ports; each sink kN counts what pN sends
//!   …                │
//!   k8   ──veth── p8 ┘
//! ```
//!
//! The calling thread moves into the namespace for good (ifindexes, XDP attachments and test runs
//! all resolve in the caller's namespace) and pins itself to one CPU, where the generator's test
//! run and, through the veths' NAPI polls raised by it, all forwarding then happen.
use anyhow::{Context as _, Result, bail};
use vbr_tests::{Netns, netns};

/// Ports besides the ingress: enough for the widest flood.
pub const PORTS: usize = 8;

/// One interface of the namespace.
#[derive(Clone, Debug)]
pub struct Iface {
    pub name: String,
    pub ifindex: u32,
}

pub struct Topology {
    pub netns: Netns,
    /// Where the generator transmits.
    pub generator: Iface,
    /// The switch port facing the generator.
    pub ingress: Iface,
    /// p1..p8, the switch's other ports.
    pub ports: Vec<Iface>,
    /// k1..k8, the far ends of p1..p8.
    pub sinks: Vec<Iface>,
    /// The CPU everything runs on.
    pub cpu: usize,
}

impl Topology {
    /// Builds the namespace and its veths, moves the calling thread into it and pins it to the
    /// last CPU.
    pub fn build() -> Result<Self> {
        let netns = Netns::new(&format!("vbench{:x}", std::process::id()))?;
        netns::enter(&netns.path())?;
        let cpu = pin_to_last_cpu()?;
        // No IPv6 on the veths: no neighbour discovery or MLD chatter for the sinks to count.
        netns::ipv6_off()?;
        let pair = |near: &str, far: &str| -> Result<(Iface, Iface)> {
            netns.ip(&["link", "add", near, "type", "veth", "peer", "name", far])?;
            for name in [near, far] {
                netns.ip(&["link", "set", name, "up"])?;
            }
            Ok((iface(near)?, iface(far)?))
        };
        // Sinks first: their ifindexes stay small, as the sink's counter array wants.
        let (mut ports, mut sinks) = (Vec::new(), Vec::new());
        for n in 1..=PORTS {
            let (sink, port) = pair(&format!("k{n}"), &format!("p{n}"))?;
            sinks.push(sink);
            ports.push(port);
        }
        let (generator, ingress) = pair("gen0", "pa")?;
        // XDP_REDIRECT into a veth only delivers when its peer runs NAPI (an XDP program or GRO,
        // Linux ≥ 5.13); otherwise the frames vanish. The sinks also get an XDP program, and pa
        // one whenever an XDP switch runs, but the Linux bridge leaves pa without.
        for receiver in std::iter::once(&ingress).chain(&sinks) {
            vbr::ethtool::set_gro(&receiver.name, true)?;
        }
        Ok(Self {
            netns,
            generator,
            ingress,
            ports,
            sinks,
            cpu,
        })
    }

    /// The first `n` ports, the members of a flood to `n`.
    pub fn ports(&self, n: usize) -> &[Iface] {
        &self.ports[..n]
    }
}

fn iface(name: &str) -> Result<Iface> {
    Ok(Iface {
        name: name.to_owned(),
        ifindex: vbr::netdev::ifindex(name)?,
    })
}

/// Pins the calling thread to the highest-numbered CPU it may run on; returns that CPU.
fn pin_to_last_cpu() -> Result<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for the calling thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Err(std::io::Error::last_os_error()).context("reading the CPU affinity");
    }
    let Some(cpu) = (0..libc::CPU_SETSIZE as usize)
        .rev()
        .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
    else {
        bail!("the process may run on no CPU");
    };
    vbr_tests::pin_to_cpu(cpu).with_context(|| format!("pinning the bench to CPU {cpu}"))?;
    Ok(cpu)
}
