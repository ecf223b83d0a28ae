//! One bridge in the kernel: its maps and XDP links pinned under /sys/fs/bpf/vbr/<bridge>/, so
//! forwarding outlives the agent. An agent creates a bridge, or adopts the one a previous agent
//! left, moving its links onto freshly loaded programs (`bpf_link_update`, atomic); then it makes
//! the bridge's ports those of the config. Dropping a `Bridge` leaves it running; `destroy`
//! removes it. The same holds for the fast path beside a Linux bridge (`[[accelerate]]`), whose
//! ports run `vbr_accel` instead (see accelerator.rs).
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, anyhow, bail};
use aya::{
    Ebpf,
    maps::Array,
    maps::{DevMapHash, HashMap, MapData, PerCpuArray, PerCpuValues},
    programs::{
        SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::SchedClassifierLink,
        xdp::XdpLink,
    },
};
use vbr_common::{
    BRIDGE_LEARNED_SLOT, FLOOD_BARE_SLOTS, MAX_PORTS, PROG_ACCEL, PROG_EGRESS, PROG_INGRESS,
    PROG_TC_INGRESS,
    bridge::{BridgeInfo, LinkLocal},
    event::EventKind,
    fdb::{FdbEntry, FdbKey},
    map_names,
    port::{
        POLICY_LOCAL_STACK, PORT_F_ATTACHED, PORT_F_BARE_UNICAST, PORT_F_RESTORE_RXVLAN,
        PORT_F_VLAN_STATS, PVID_NONE, PortInfo, PortMode,
    },
    stats::Counters,
};

use crate::{
    config::{BridgeConfig, BridgeMode, DatapathMode, LinkLocalPolicy, PortConfig, PortFlags},
    ethtool,
    event::Event,
    fdb::Fdb,
    layout, listeners, netdev, paths,
    paths::LinkKind,
    pinned, port_policy,
    ports::Ports,
    veth,
};

/// A configured port with its interface resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub ifname: String,
    pub ifindex: u32,
    pub pvid: u16,
    pub tagged: Vec<u16>,
    pub mode: DatapathMode,
    pub uplink: bool,
    /// `POLICY_*` bits: the port's flags and the bridge's mode.
    pub policy: u16,
    pub max_learned: u32,
    pub flood_rate: u32,
}

impl Port {
    fn new(ifname: String, ifindex: u32, config: &PortConfig, bridge_mode: BridgeMode) -> Self {
        Self {
            ifname,
            ifindex,
            pvid: config.pvid,
            tagged: config.tagged.clone(),
            mode: config.mode,
            uplink: config.uplink,
            policy: port_policy::encode(bridge_mode, config.uplink, &config.flags),
            max_learned: config.flags.max_learned,
            flood_rate: config.flags.flood_rate,
        }
    }

    /// Whether a port attached in `mode` is what the port's config asks for.
    fn runs_in(&self, mode: u8) -> bool {
        let wanted = match self.mode {
            DatapathMode::Auto => return true,
            DatapathMode::Xdp => PortMode::XdpNative,
            DatapathMode::XdpGeneric => PortMode::XdpGeneric,
            DatapathMode::Tc => PortMode::Tc,
        };
        mode == wanted as u8
    }

    /// The port's config (VLANs, flags) applied to `info`, keeping its mode, slot and state.
    fn apply_config(&self, info: &mut PortInfo) {
        let mut fresh = PortInfo::new(PortMode::XdpNative, info.slot);
        fresh.set_pvid(self.pvid);
        for vid in &self.tagged {
            fresh.set_member(*vid, true);
        }
        info.pvid = fresh.pvid;
        info.vlans = fresh.vlans;
        // The listeners' bit follows the port's stacks, not its config.
        info.policy = self.policy | (info.policy & POLICY_LOCAL_STACK);
        info.max_learned = self.max_learned;
        info.flood_rate = self.flood_rate;
    }
}

/// The ports of a bridge's config, resolved against the interfaces that exist now.
#[derive(Debug, Default)]
pub struct Resolved {
    pub ports: Vec<Port>,
    /// Hotplug ports whose interface does not exist (yet).
    pub waiting: Vec<String>,
}

/// Resolves every port of `bridge` (the host port too, when it exists). A missing hotplug port
/// waits; any other missing interface is an error naming bridge and port, unless `lenient`
/// (then it is left out: it vanished, and the agent has been told).
pub fn resolve_ports(bridge: &BridgeConfig, lenient: bool) -> anyhow::Result<Resolved> {
    let mut resolved = Resolved::default();
    for port in &bridge.ports {
        match netdev::ifindex(&port.ifname) {
            Ok(ifindex) => {
                resolved
                    .ports
                    .push(Port::new(port.ifname.clone(), ifindex, port, bridge.mode))
            }
            Err(_) if port.hotplug => resolved.waiting.push(port.ifname.clone()),
            Err(_) if lenient => {}
            Err(error) => {
                return Err(
                    error.context(format!("bridge {:?}, port {:?}", bridge.name, port.ifname))
                );
            }
        }
    }
    if let Some(host) = &bridge.host_port
        && let Ok(ifindex) = netdev::ifindex(&host.port_ifname())
    {
        let config = PortConfig {
            ifname: host.port_ifname(),
            pvid: host.pvid,
            tagged: Vec::new(),
            mode: DatapathMode::Auto,
            hotplug: false,
            uplink: false,
            flags: PortFlags::default(),
        };
        resolved.ports.push(Port::new(
            config.ifname.clone(),
            ifindex,
            &config,
            bridge.mode,
        ));
    }
    Ok(resolved)
}

pub struct Bridge {
    pub name: String,
    ageing_time: Duration,
    /// The bridge-wide settings the datapath reads from the `info` map.
    max_learned: u32,
    link_local: LinkLocal,
    /// Frames are counted per VLAN (`PORT_F_VLAN_STATS` on every port).
    vlan_stats: bool,
    pin_dir: PathBuf,
    /// Ifindex of the Linux bridge this one accelerates; 0 for a vbr bridge.
    accelerates: u32,
    /// This agent's instance of the programs; the maps are the pinned ones.
    ebpf: Ebpf,
    ports: Ports,
    fdb: Fdb,
    /// Events the agent caused (aged, deleted), for `vbr monitor`.
    events: Vec<Event>,
    /// `vbr_flush_watch` is attached: native ports with a TC program may send unicast without
    /// the devmap program (see `vbr_common::batch`).
    watches_flushes: bool,
}

impl Bridge {
    /// Creates bridge `name` or adopts it from its pins, then gives it the ports of `config`.
    /// A bridge created here is removed again if that fails; an adopted one keeps forwarding.
    /// `accelerates` is the ifindex of the Linux bridge it accelerates, 0 for a vbr bridge.
    pub async fn open(
        config: &BridgeConfig,
        accelerates: u32,
        ports: &[Port],
        netlink: &rtnetlink::Handle,
    ) -> anyhow::Result<Self> {
        let name = config.name.as_str();
        let pin_dir = paths::bridge_dir(name);
        let pinned_info = if pin_dir.exists() {
            pinned::info(name)?
        } else {
            None
        };
        let adopting = pinned_info.is_some();
        if let Some(info) = pinned_info {
            layout::check(name)?;
            if (info.accelerates != 0) != (accelerates != 0) {
                bail!(
                    "the pins at {} belong to {}: remove it first (`vbr bridge del {name}`)",
                    pin_dir.display(),
                    if info.accelerates != 0 {
                        "the accelerator of a Linux bridge"
                    } else {
                        "a vbr bridge"
                    }
                );
            }
        } else if pin_dir.exists() {
            tracing::warn!(
                bridge = name,
                "pins of an unfinished start found: starting afresh"
            );
            fs::remove_dir_all(&pin_dir)
                .with_context(|| format!("removing {}", pin_dir.display()))?;
        }
        paths::create_private_dir(&pin_dir)?;
        let mut bridge = match Self::load(config, accelerates, pin_dir) {
            Ok(bridge) => bridge,
            Err(error) if !adopting => {
                remove_pins(name);
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        let result = async {
            if adopting {
                bridge.adopt_ports()?;
            } else {
                bridge.write_info(0, 0, 0)?;
            }
            bridge.set_ports(ports, netlink).await
        }
        .await;
        match result {
            Ok(()) => Ok(bridge),
            Err(error) if !adopting => {
                bridge.destroy();
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Loads the datapath onto the pinned maps (creating and pinning those that do not exist).
    fn load(config: &BridgeConfig, accelerates: u32, pin_dir: PathBuf) -> anyhow::Result<Self> {
        let mut loader = crate::datapath::loader()?;
        for map in map_names::ALL {
            loader.map_pin_path(map, pin_dir.join(map));
        }
        let mut ebpf = loader
            .load(crate::datapath::object())
            .context("loading the vbr eBPF object")?;
        for program in [PROG_INGRESS, PROG_EGRESS, PROG_ACCEL] {
            xdp(&mut ebpf, program)?
                .load()
                .with_context(|| format!("loading program {program} into the kernel (verifier)"))?;
        }
        tc(&mut ebpf)?.load().with_context(|| {
            format!("loading program {PROG_TC_INGRESS} into the kernel (verifier)")
        })?;
        let fdb = Fdb::new(
            HashMap::try_from(take_map(&mut ebpf, map_names::FDB)?).context("opening the fdb")?,
            Array::try_from(take_map(&mut ebpf, map_names::FDB_GENERATION)?)
                .context("opening the fdb generation")?,
        );
        let ports = Ports::new(
            HashMap::try_from(take_map(&mut ebpf, map_names::PORTS)?)
                .context("opening the ports map")?,
            Array::try_from(take_map(&mut ebpf, map_names::PORT_GENERATION)?)
                .context("opening the port generation")?,
        );
        let mut bridge = Self {
            name: config.name.clone(),
            ageing_time: Duration::ZERO,
            max_learned: 0,
            link_local: LinkLocal::Drop,
            vlan_stats: false,
            pin_dir,
            accelerates,
            ebpf,
            ports,
            fdb,
            events: Vec::new(),
            watches_flushes: false,
        };
        bridge.configure(config);
        if !bridge.is_accelerator() {
            match bridge.watch_flushes() {
                Ok(()) => bridge.watches_flushes = true,
                Err(error) => tracing::warn!(
                    bridge = %bridge.name,
                    "unicast keeps the devmap program: {error:#}"
                ),
            }
        }
        Ok(bridge)
    }

    /// Attaches `vbr_flush_watch` after every NAPI poll and pins its link, replacing the one a
    /// previous agent pinned (a tracepoint link cannot be moved onto new programs; for a moment
    /// both run, on the same pinned map). Per-CPU batches need softirqs that nothing preempts:
    /// not on PREEMPT_RT.
    fn watch_flushes(&mut self) -> anyhow::Result<()> {
        if fs::read_to_string("/sys/kernel/realtime").is_ok_and(|rt| rt.trim() == "1") {
            bail!("a PREEMPT_RT kernel");
        }
        let (program, id) = crate::datapath::watch_flushes(&mut self.ebpf)?;
        let link = FdLink::from(program.take_link(id)?);
        let pin = paths::flush_watch_pin(&self.pin_dir);
        paths::create_private_dir(pin.parent().expect("the watch's pin lives in a directory"))?;
        if pin.exists() {
            fs::remove_file(&pin).with_context(|| format!("removing {}", pin.display()))?;
        }
        link.pin(&pin)
            .with_context(|| format!("pinning the link at {}", pin.display()))?;
        Ok(())
    }

    /// Moves every pinned link and devmap entry onto this agent's programs, atomically.
    fn adopt_ports(&mut self) -> anyhow::Result<()> {
        for (ifindex, info) in self.port_infos()? {
            if info.is_attached() {
                self.adopt_links(ifindex)
                    .with_context(|| format!("moving port {ifindex} onto the new programs"))?;
            }
            if !self.is_accelerator() {
                self.set_egress(ifindex)?;
            }
        }
        Ok(())
    }

    fn adopt_links(&mut self, ifindex: u32) -> anyhow::Result<()> {
        let xdp_pin = paths::link_pin(&self.pin_dir, ifindex, LinkKind::Xdp);
        if xdp_pin.exists() {
            let link = XdpLink::try_from(open_link(&xdp_pin)?)
                .with_context(|| format!("{} is not an XDP link", xdp_pin.display()))?;
            let name = self.xdp_program();
            let program = xdp(&mut self.ebpf, name)?;
            let id = program.attach_to_link(link)?;
            // The pin keeps the link; this agent keeps no fd of its own.
            drop(program.take_link(id)?);
        }
        let tc_pin = paths::link_pin(&self.pin_dir, ifindex, LinkKind::Tc);
        if tc_pin.exists() {
            let link = SchedClassifierLink::try_from(open_link(&tc_pin)?)
                .with_context(|| format!("{} is not a TC link", tc_pin.display()))?;
            let program = tc(&mut self.ebpf)?;
            let id = program.attach_to_link(link)?;
            drop(program.take_link(id)?);
        }
        Ok(())
    }

    /// Makes the bridge's ports exactly `ports`: removes the others, adds the missing, updates
    /// the VLANs of the rest.
    pub async fn set_ports(
        &mut self,
        ports: &[Port],
        netlink: &rtnetlink::Handle,
    ) -> anyhow::Result<()> {
        let wanted: BTreeSet<u32> = ports.iter().map(|port| port.ifindex).collect();
        let current = self.port_infos()?;
        for ifindex in current.keys().filter(|ifindex| !wanted.contains(ifindex)) {
            self.remove_port(*ifindex)?;
        }
        for port in ports {
            match current.get(&port.ifindex) {
                Some(info) if info.is_attached() && port.runs_in(info.mode) => {
                    let mut info = *info;
                    port.apply_config(&mut info);
                    self.ports
                        .set(port.ifindex, info)
                        .with_context(|| format!("updating port {}", port.ifname))?;
                }
                stale => {
                    if stale.is_some() {
                        // An agent died while adding it, or its mode changed: undo what was
                        // done, then add it afresh.
                        self.remove_port(port.ifindex)?;
                    }
                    self.add_port(port, netlink).await.with_context(|| {
                        format!("adding port {:?} to bridge {:?}", port.ifname, self.name)
                    })?
                }
            }
        }
        let infos = self.port_infos()?;
        let skb_ports = infos
            .values()
            .filter(|info| info.mode != PortMode::XdpNative as u8)
            .count();
        let slot_end = infos.values().map(|info| u32::from(info.slot) + 1).max();
        let uplink = ports
            .iter()
            .find(|port| port.uplink)
            .map_or(0, |port| port.ifindex);
        self.write_info(skb_ports as u32, uplink, slot_end.unwrap_or(0))?;
        self.set_flood_bare()?;
        self.set_port_flags()
    }

    /// Makes `flood_bare` hold every attached native port while all ports' slots are below
    /// `FLOOD_BARE_SLOTS`, and nothing otherwise. Called once `slots` and the info's `slot_end`
    /// cover every port, as the datapath's check needs; ports leave it in `remove_port`.
    fn set_flood_bare(&mut self) -> anyhow::Result<()> {
        if self.is_accelerator() {
            return Ok(());
        }
        let infos = self.port_infos()?;
        let fits = infos
            .values()
            .all(|info| u32::from(info.slot) < FLOOD_BARE_SLOTS);
        let mut flood_bare: DevMapHash<_> =
            DevMapHash::try_from(self.map_mut(map_names::FLOOD_BARE)?)?;
        let present: BTreeSet<u32> = flood_bare.keys().collect::<Result<_, _>>()?;
        for (ifindex, info) in &infos {
            let wanted = fits && info.is_attached() && info.mode == PortMode::XdpNative as u8;
            if wanted && !present.contains(ifindex) {
                flood_bare
                    .insert(*ifindex, *ifindex, None, 0)
                    .with_context(|| format!("adding port {ifindex} to the flood_bare devmap"))?;
            } else if !wanted && present.contains(ifindex) {
                flood_bare
                    .remove(*ifindex)
                    .with_context(|| format!("removing port {ifindex} from flood_bare"))?;
            }
        }
        Ok(())
    }

    /// Sets the flags the bridge as a whole decides on every port. `PORT_F_BARE_UNICAST` lets the
    /// native ports send unicast without the devmap program when the bridge watches its flushes
    /// and every native port has its TC program: a flood that may not share a batch with such
    /// unicast then takes the skb path from whichever port it comes in (`vbr_common::batch`).
    /// `PORT_F_VLAN_STATS` follows `vlan_stats`.
    fn set_port_flags(&mut self) -> anyhow::Result<()> {
        let infos = self.port_infos()?;
        let is_native =
            |info: &PortInfo| info.is_attached() && info.mode == PortMode::XdpNative as u8;
        let bare = self.watches_flushes
            && infos
                .iter()
                .filter(|(_, info)| is_native(info))
                .all(|(ifindex, _)| {
                    paths::link_pin(&self.pin_dir, *ifindex, LinkKind::Tc).exists()
                });
        for (ifindex, mut info) in infos {
            let mut wanted = 0;
            if bare && is_native(&info) {
                wanted |= PORT_F_BARE_UNICAST;
            }
            if self.vlan_stats {
                wanted |= PORT_F_VLAN_STATS;
            }
            let managed = PORT_F_BARE_UNICAST | PORT_F_VLAN_STATS;
            if info.flags & managed != wanted {
                info.flags = info.flags & !managed | wanted;
                self.ports
                    .set(ifindex, info)
                    .with_context(|| format!("updating port {ifindex}"))?;
            }
        }
        Ok(())
    }

    /// Takes the bridge-wide settings of `config`; they reach the datapath with the next
    /// `set_ports`.
    pub fn configure(&mut self, config: &BridgeConfig) {
        self.ageing_time = Duration::from_secs(config.ageing_time);
        self.max_learned = config.max_learned;
        self.vlan_stats = config.vlan_stats;
        self.link_local = match config.link_local {
            LinkLocalPolicy::Drop => LinkLocal::Drop,
            LinkLocalPolicy::Host => LinkLocal::Host,
            LinkLocalPolicy::Forward => LinkLocal::Forward,
        };
    }

    fn write_info(&self, skb_ports: u32, uplink_ifindex: u32, slot_end: u32) -> anyhow::Result<()> {
        let info = BridgeInfo {
            netns_inode: 0,
            layout_version: 0,
            skb_ports,
            uplink_ifindex,
            max_learned: self.max_learned,
            link_local: self.link_local as u32,
            accelerates: self.accelerates,
            slot_end,
            _pad: 0,
        };
        pinned::write_info(&self.name, info)
    }

    /// Makes `port` a redirect target and a known ingress, then attaches the datapath to it.
    async fn add_port(&mut self, port: &Port, netlink: &rtnetlink::Handle) -> anyhow::Result<()> {
        let slot = self.free_slot()?;
        let mut stats: PerCpuArray<_, Counters> =
            PerCpuArray::try_from(self.map_mut(map_names::PORT_STATS)?)?;
        let zeros = PerCpuValues::try_from(vec![
            Counters::default();
            aya::util::nr_cpus()
                .map_err(|(_, error)| error)
                .context("counting CPUs")?
        ])?;
        stats
            .set(u32::from(slot), zeros, 0)
            .context("clearing the port's counters")?;
        if !self.is_accelerator() {
            self.set_egress(port.ifindex)?;
        }
        Array::try_from(self.map_mut(map_names::SLOTS)?)?
            .set(u32::from(slot), port.ifindex, 0)
            .context("recording the port's slot")?;
        let mut info = PortInfo::new(PortMode::XdpNative, slot);
        port.apply_config(&mut info);
        self.ports
            .set(port.ifindex, info)
            .context("adding to the ports map")?;

        veth::prepare_peer(netlink, port.ifindex).await?;
        let rx_vlan_offload = ethtool::update_flags(&port.ifname, ethtool::FLAG_RXVLAN, 0)?;
        if rx_vlan_offload & ethtool::FLAG_RXVLAN != 0 {
            info.flags |= PORT_F_RESTORE_RXVLAN;
        }
        info.mode = self.attach(port)? as u8;
        info.flags |= PORT_F_ATTACHED;
        self.ports
            .set(port.ifindex, info)
            .context("marking the port attached")?;
        tracing::info!(bridge = %self.name, port = %port.ifname, mode = PortMode::from_u8(info.mode).map_or("?", PortMode::name), "port attached");
        Ok(())
    }

    /// Attaches the datapath as the port's mode says, through pinned bpf_links (XDP: Linux ≥ 5.9;
    /// TC: tcx, Linux ≥ 6.6), and says which path the port's frames take. A native XDP port also
    /// gets the TC program, for the frames it hands to the skb path.
    fn attach(&mut self, port: &Port) -> anyhow::Result<PortMode> {
        if self.is_accelerator() {
            return self.attach_accelerated(port);
        }
        let mode = match port.mode {
            DatapathMode::Auto => match self.attach_xdp(port, XdpMode::Driver) {
                Ok(()) => PortMode::XdpNative,
                Err(error) => {
                    tracing::info!(port = %port.ifname, "no native XDP ({error:#}): using the skb (TC) path");
                    PortMode::Tc
                }
            },
            DatapathMode::Xdp => {
                self.attach_xdp(port, XdpMode::Driver)?;
                PortMode::XdpNative
            }
            DatapathMode::XdpGeneric => {
                self.attach_xdp(port, XdpMode::Skb)?;
                PortMode::XdpGeneric
            }
            DatapathMode::Tc => PortMode::Tc,
        };
        match mode {
            PortMode::Tc => self.attach_tc(port)?,
            // Without it (Linux < 6.6) the port still switches, but cannot reach skb-only ports.
            PortMode::XdpNative => {
                if let Err(error) = self.attach_tc(port) {
                    tracing::warn!(port = %port.ifname, "no TC program beside native XDP: {error:#}");
                }
            }
            // Its floods for listening stacks take the skb path.
            PortMode::XdpGeneric => {
                if let Err(error) = self.attach_tc(port) {
                    tracing::warn!(port = %port.ifname, "no TC program beside generic XDP: {error:#}");
                }
            }
        }
        Ok(mode)
    }

    /// Attaches the fast path to a port of an accelerated Linux bridge: native XDP where the
    /// driver has it, generic XDP otherwise. No TC program: what XDP passes goes to the kernel
    /// bridge, which reaches every kind of port.
    fn attach_accelerated(&mut self, port: &Port) -> anyhow::Result<PortMode> {
        match self.attach_xdp(port, XdpMode::Driver) {
            Ok(()) => Ok(PortMode::XdpNative),
            Err(error) => {
                tracing::info!(port = %port.ifname, "no native XDP ({error:#}): using generic XDP");
                self.attach_xdp(port, XdpMode::Skb)?;
                Ok(PortMode::XdpGeneric)
            }
        }
    }

    /// The XDP program the bridge's ports run.
    fn xdp_program(&self) -> &'static str {
        if self.is_accelerator() {
            PROG_ACCEL
        } else {
            PROG_INGRESS
        }
    }

    pub fn is_accelerator(&self) -> bool {
        self.accelerates != 0
    }

    /// Points the bridge at the Linux bridge `ifindex` it accelerates (it may have been made
    /// anew under the same name); written to the datapath with the next `set_ports`.
    pub fn set_accelerates(&mut self, ifindex: u32) {
        self.accelerates = ifindex;
    }

    fn attach_xdp(&mut self, port: &Port, mode: XdpMode) -> anyhow::Result<()> {
        let name = self.xdp_program();
        let program = xdp(&mut self.ebpf, name)?;
        let id = program
            .attach_to_if_index(port.ifindex, mode)
            .with_context(|| format!("attaching XDP ({mode:?})"))?;
        let link = FdLink::try_from(program.take_link(id)?)
            .context("the kernel attached XDP without a bpf_link (Linux ≥ 5.9 needed)")?;
        self.pin_link(link, port.ifindex, LinkKind::Xdp)
    }

    fn attach_tc(&mut self, port: &Port) -> anyhow::Result<()> {
        let program = tc(&mut self.ebpf)?;
        let id = program
            .attach(&port.ifname, TcAttachType::Ingress)
            .context("attaching the TC ingress program")?;
        let link = FdLink::try_from(program.take_link(id)?)
            .context("the kernel attached TC without a tcx link (Linux ≥ 6.6 needed)")?;
        self.pin_link(link, port.ifindex, LinkKind::Tc)
    }

    fn pin_link(&self, link: FdLink, ifindex: u32, kind: LinkKind) -> anyhow::Result<()> {
        let path = paths::link_pin(&self.pin_dir, ifindex, kind);
        paths::create_private_dir(path.parent().expect("link pins live in a directory"))?;
        link.pin(&path)
            .with_context(|| format!("pinning the link at {}", path.display()))?;
        Ok(())
    }

    /// Takes port `ifindex` out of the bridge: detached, forgotten, its entries flushed, its
    /// rx-vlan-offload restored.
    pub fn remove_port(&mut self, ifindex: u32) -> anyhow::Result<()> {
        let info = self.ports.get(ifindex);
        // Out of the floods finished at ingress first: the datapath decides those from `ports`,
        // so until that forgets the port this costs it at most a copy.
        let _ = DevMapHash::try_from(self.map_mut(map_names::FLOOD_BARE)?)?.remove(ifindex);
        // Then stop taking its frames in, then stop sending frames out to it.
        self.ports.remove(ifindex)?;
        for kind in [LinkKind::Xdp, LinkKind::Tc] {
            let link_pin = paths::link_pin(&self.pin_dir, ifindex, kind);
            if link_pin.exists() {
                fs::remove_file(&link_pin)
                    .with_context(|| format!("removing {}", link_pin.display()))?;
            }
        }
        if let Some(info) = info {
            Array::try_from(self.map_mut(map_names::SLOTS)?)?
                .set(u32::from(info.slot), 0, 0)
                .context("freeing the port's slot")?;
        }
        let _ = DevMapHash::try_from(self.map_mut(map_names::EGRESS)?)?.remove(ifindex);
        let ifname = netdev::name(ifindex).ok();
        if let (Some(info), Some(ifname)) = (info, &ifname)
            && info.flags & PORT_F_RESTORE_RXVLAN != 0
            && let Err(error) =
                ethtool::update_flags(ifname, ethtool::FLAG_RXVLAN, ethtool::FLAG_RXVLAN)
        {
            tracing::warn!("restoring rx-vlan-offload on {ifname}: {error:#}");
        }
        let flushed = self.fdb.flush_port(ifindex)?;
        tracing::info!(bridge = %self.name, port = ifname.as_deref().unwrap_or("?"), ifindex, flushed = flushed.len(), "port removed");
        let name = &self.name;
        self.events.extend(
            flushed
                .into_iter()
                .map(|(key, entry)| Event::new(name, EventKind::Deleted, key, entry.ifindex, 0)),
        );
        Ok(())
    }

    /// Removes the bridge completely: ports detached, offloads restored, pins gone.
    pub fn destroy(mut self) {
        match self.port_infos() {
            Ok(ports) => {
                for ifindex in ports.keys() {
                    if let Err(error) = self.remove_port(*ifindex) {
                        tracing::warn!(bridge = %self.name, "removing port {ifindex}: {error:#}");
                    }
                }
            }
            Err(error) => tracing::warn!(bridge = %self.name, "listing ports: {error:#}"),
        }
        remove_pins(&self.name);
        tracing::info!(bridge = %self.name, "bridge removed");
    }

    /// Removes learned entries not seen for the bridge's ageing time.
    pub fn age(&mut self) -> anyhow::Result<()> {
        if self.ageing_time.is_zero() {
            return Ok(());
        }
        let aged = self.fdb.age(self.ageing_time)?;
        let name = &self.name;
        self.events.extend(
            aged.into_iter()
                .map(|(key, entry)| Event::new(name, EventKind::Aged, key, entry.ifindex, 0)),
        );
        Ok(())
    }

    /// Sets each port's count of learned MACs to what the FDB holds, for the datapath's limits.
    pub fn recount_learned(&mut self) -> anyhow::Result<()> {
        let mut learned: BTreeMap<u32, u64> = BTreeMap::new();
        for (_, entry) in self.fdb.entries()? {
            if !entry.is_static() {
                *learned.entry(entry.ifindex).or_default() += 1;
            }
        }
        let ports = self.port_infos()?;
        let mut counts: Array<_, u64> = Array::try_from(self.map_mut(map_names::PORT_LEARNED)?)?;
        for (ifindex, info) in ports {
            let count = learned.get(&ifindex).copied().unwrap_or(0);
            counts
                .set(u32::from(info.slot), count, 0)
                .context("writing the learned counts")?;
        }
        counts
            .set(BRIDGE_LEARNED_SLOT, learned.values().sum::<u64>(), 0)
            .context("writing the bridge's learned count")
    }

    /// Makes the local entries of every port those of the stacks listening on it (macvlans of
    /// it): static entries that send frames for them up the port's stack, and the port's
    /// `POLICY_LOCAL_STACK` bit, so that its floods reach them too.
    pub async fn sync_listeners(&mut self, netlink: &rtnetlink::Handle) -> anyhow::Result<()> {
        let ports = self.port_infos()?;
        let mut listened =
            listeners::listened_macs(netlink, &ports.keys().copied().collect()).await?;
        let local: Vec<(FdbKey, FdbEntry)> = self
            .fdb
            .entries()?
            .into_iter()
            .filter(|(_, entry)| entry.is_local())
            .collect();
        for (ifindex, mut info) in ports {
            let macs = listened.remove(&ifindex).unwrap_or_default();
            let vid = info.pvid;
            for (key, entry) in &local {
                if entry.ifindex == ifindex && (key.vlan != vid || !macs.contains(&key.mac)) {
                    let _ = self.fdb.delete(key);
                }
            }
            if vid != PVID_NONE {
                for mac in &macs {
                    let key = FdbKey::new(*mac, vid);
                    let present = local.iter().any(|(k, e)| *k == key && e.ifindex == ifindex);
                    if !present {
                        self.fdb.add_local(key, ifindex)?;
                    }
                }
            }
            let wanted = if macs.is_empty() {
                0
            } else {
                POLICY_LOCAL_STACK
            };
            if info.policy & POLICY_LOCAL_STACK != wanted {
                info.policy = (info.policy & !POLICY_LOCAL_STACK) | wanted;
                self.ports
                    .set(ifindex, info)
                    .context("updating the port's listeners bit")?;
            }
        }
        Ok(())
    }

    pub fn fdb(&mut self) -> &mut Fdb {
        &mut self.fdb
    }

    /// Whether the bridge's pins are still there (someone may have removed them by hand).
    pub fn pinned(&self) -> bool {
        self.pin_dir.join(map_names::INFO).exists()
    }

    /// The events this agent caused since the last call.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The ring buffer of the datapath's events, for the agent to read.
    pub fn take_events(&mut self) -> anyhow::Result<aya::maps::RingBuf<MapData>> {
        aya::maps::RingBuf::try_from(take_map(&mut self.ebpf, map_names::EVENTS)?)
            .context("opening the events ring buffer")
    }

    /// Points port `ifindex`'s devmap entry at itself, through this agent's egress program.
    fn set_egress(&mut self, ifindex: u32) -> anyhow::Result<()> {
        let egress = xdp(&mut self.ebpf, PROG_EGRESS)?
            .fd()?
            .try_clone()
            .context("duplicating the egress program's fd")?;
        DevMapHash::try_from(self.map_mut(map_names::EGRESS)?)?
            .insert(ifindex, ifindex, Some(&egress), 0)
            .with_context(|| format!("adding port {ifindex} to the egress devmap"))
    }

    /// Whether interface `ifindex` is one of the bridge's ports.
    pub fn has_port(&mut self, ifindex: u32) -> bool {
        self.ports.get(ifindex).is_some()
    }

    fn port_infos(&mut self) -> anyhow::Result<BTreeMap<u32, PortInfo>> {
        Ok(self.ports.list()?.into_iter().collect())
    }

    /// The lowest counter slot no port uses.
    fn free_slot(&mut self) -> anyhow::Result<u16> {
        let used: BTreeSet<u16> = self.port_infos()?.values().map(|info| info.slot).collect();
        (0..MAX_PORTS as u16)
            .find(|slot| !used.contains(slot))
            .ok_or_else(|| anyhow!("bridge {:?} has {MAX_PORTS} ports already", self.name))
    }

    fn map_mut(&mut self, name: &str) -> anyhow::Result<&mut aya::maps::Map> {
        self.ebpf
            .map_mut(name)
            .ok_or_else(|| anyhow!("the eBPF object has no map {name:?}"))
    }
}

/// Removes every pin of bridge `name`: maps, and links (which detaches them once no process
/// holds them).
fn remove_pins(name: &str) {
    let dir = paths::bridge_dir(name);
    if let Err(error) = fs::remove_dir_all(&dir) {
        tracing::warn!("removing {}: {error}", dir.display());
    }
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<aya::maps::Map> {
    ebpf.take_map(name)
        .ok_or_else(|| anyhow!("the eBPF object has no map {name:?}"))
}

fn open_link(path: &std::path::Path) -> anyhow::Result<FdLink> {
    let link = PinnedLink::from_pin(path)
        .with_context(|| format!("opening pinned link {}", path.display()))?;
    Ok(FdLink::from(link))
}

fn tc(ebpf: &mut Ebpf) -> anyhow::Result<&mut SchedClassifier> {
    ebpf.program_mut(PROG_TC_INGRESS)
        .ok_or_else(|| anyhow!("the eBPF object has no program {PROG_TC_INGRESS}"))?
        .try_into()
        .with_context(|| format!("{PROG_TC_INGRESS} is not a TC program"))
}

fn xdp<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .ok_or_else(|| anyhow!("the eBPF object has no program {name}"))?
        .try_into()
        .with_context(|| format!("{name} is not an XDP program"))
}

/// Removes bridge `name` without an agent: what `vbr bridge del` does when none runs it.
pub fn destroy_pinned(name: &str) -> anyhow::Result<()> {
    let bridge = pinned::PinnedBridge::open(name)?;
    for (ifindex, info) in bridge.port_list()? {
        if info.flags & PORT_F_RESTORE_RXVLAN != 0
            && let Ok(ifname) = netdev::name(ifindex)
        {
            ethtool::update_flags(&ifname, ethtool::FLAG_RXVLAN, ethtool::FLAG_RXVLAN)?;
        }
    }
    drop(bridge);
    let dir = paths::bridge_dir(name);
    if !dir.exists() {
        bail!("no bridge {name:?}");
    }
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
}
