//! One bridge brought to life: its datapath loaded, its maps pinned and filled, its ports attached.
//! Dropping a `RunningBridge` removes its pins and detaches its programs.
use std::{fs, path::PathBuf};

use anyhow::{Context as _, anyhow, bail};
use aya::{
    Ebpf,
    maps::{DevMapHash, HashMap},
    programs::{Xdp, XdpMode},
};
use vbr_common::{
    PROG_FLOOD_EGRESS, PROG_INGRESS, map_names,
    port::{PORT_F_ATTACHED, PortInfo, PortMode},
};

use crate::{config::BridgeConfig, ethtool, netdev, paths, pinned, veth};

/// A configured port with its interface resolved.
#[derive(Debug, Clone)]
pub struct Port {
    pub ifname: String,
    pub ifindex: u32,
    pub pvid: u16,
    pub tagged: Vec<u16>,
}

impl Port {
    /// The port's entry in the `ports` map.
    fn info(&self, mode: PortMode) -> PortInfo {
        let mut info = PortInfo::new(mode);
        info.set_pvid(self.pvid);
        for vid in &self.tagged {
            info.set_member(*vid, true);
        }
        info
    }
}

/// Resolves every port of `bridge`; an unknown interface is an error naming bridge and port.
pub fn resolve_ports(bridge: &BridgeConfig) -> anyhow::Result<Vec<Port>> {
    bridge
        .ports
        .iter()
        .map(|port| {
            let ifindex = netdev::ifindex(&port.ifname)
                .with_context(|| format!("bridge {:?}, port {:?}", bridge.name, port.ifname))?;
            Ok(Port {
                ifname: port.ifname.clone(),
                ifindex,
                pvid: port.pvid,
                tagged: port.tagged.clone(),
            })
        })
        .collect()
}

pub struct RunningBridge {
    pub name: String,
    pin_dir: PathBuf,
    /// Ports whose rx-vlan-offload vbr turned off, to turn back on when it leaves.
    rx_vlan_offload_restore: Vec<String>,
    /// Holds the program and its links: dropping it detaches every port.
    ebpf: Ebpf,
}

impl RunningBridge {
    /// Loads the datapath for `name`, pins its maps and attaches it to `ports`. On error nothing
    /// is left behind: what was pinned or attached is undone.
    pub async fn start(
        name: &str,
        ports: &[Port],
        netlink: &rtnetlink::Handle,
    ) -> anyhow::Result<Self> {
        let pin_dir = paths::bridge_dir(name);
        if pin_dir.exists() {
            bail!(
                "bridge {name:?} already has pins at {}: another vbr agent runs it, or one died \
                 without cleaning up (remove that directory to start afresh)",
                pin_dir.display()
            );
        }
        let mut ebpf = crate::datapath::load()?;
        for name in [PROG_INGRESS, PROG_FLOOD_EGRESS] {
            program(&mut ebpf, name)?
                .load()
                .with_context(|| format!("loading program {name} into the kernel (verifier)"))?;
        }
        fs::create_dir_all(&pin_dir).with_context(|| format!("creating {}", pin_dir.display()))?;
        let mut bridge = Self {
            name: name.to_owned(),
            pin_dir,
            rx_vlan_offload_restore: Vec::new(),
            ebpf,
        };
        bridge.pin_maps()?;
        pinned::write_info(name)?;
        bridge.add_ports(ports)?;
        for port in ports {
            bridge
                .attach(port, netlink)
                .await
                .with_context(|| format!("attaching bridge {name:?} to port {:?}", port.ifname))?;
        }
        Ok(bridge)
    }

    fn pin_maps(&mut self) -> anyhow::Result<()> {
        for name in [
            map_names::FDB,
            map_names::PORTS,
            map_names::EGRESS,
            map_names::FLOOD,
            map_names::STATS,
            map_names::INFO,
        ] {
            let path = self.pin_dir.join(name);
            self.ebpf
                .map(name)
                .ok_or_else(|| anyhow!("the eBPF object has no map {name:?}"))?
                .pin(&path)
                .with_context(|| format!("pinning map {name} at {}", path.display()))?;
        }
        Ok(())
    }

    /// Makes every port a redirect target and a known ingress before any program runs.
    fn add_ports(&mut self, ports: &[Port]) -> anyhow::Result<()> {
        let flood_egress = program(&mut self.ebpf, PROG_FLOOD_EGRESS)?
            .fd()
            .context("reading the flood egress program's fd")?
            .try_clone()
            .context("duplicating the flood egress program's fd")?;
        for (map, egress_program) in [
            (map_names::EGRESS, None),
            (map_names::FLOOD, Some(&flood_egress)),
        ] {
            let mut devmap = DevMapHash::try_from(self.map_mut(map)?)
                .with_context(|| format!("opening the {map} devmap"))?;
            for port in ports {
                devmap
                    .insert(port.ifindex, port.ifindex, egress_program, 0)
                    .with_context(|| format!("adding {} to the {map} devmap", port.ifname))?;
            }
        }
        let mut infos: HashMap<_, u32, PortInfo> =
            HashMap::try_from(self.map_mut(map_names::PORTS)?).context("opening the ports map")?;
        for port in ports {
            infos
                .insert(port.ifindex, port.info(PortMode::XdpNative), 0)
                .with_context(|| format!("adding {} to the ports map", port.ifname))?;
        }
        Ok(())
    }

    /// Attaches natively where the driver can, generically otherwise, and records which.
    async fn attach(&mut self, port: &Port, netlink: &rtnetlink::Handle) -> anyhow::Result<()> {
        veth::prepare_peer(netlink, port.ifindex).await?;
        self.disable_rx_vlan_offload(port)?;
        let xdp = program(&mut self.ebpf, PROG_INGRESS)?;
        let mode = match xdp.attach_to_if_index(port.ifindex, XdpMode::Driver) {
            Ok(_) => PortMode::XdpNative,
            Err(native) => {
                tracing::info!(port = %port.ifname, "native XDP refused ({native}), using generic XDP");
                xdp.attach_to_if_index(port.ifindex, XdpMode::Skb)
                    .context("attaching XDP (native and generic both refused)")?;
                PortMode::XdpGeneric
            }
        };
        let mut infos: HashMap<_, u32, PortInfo> =
            HashMap::try_from(self.map_mut(map_names::PORTS)?).context("opening the ports map")?;
        let mut info = port.info(mode);
        info.flags |= PORT_F_ATTACHED;
        infos
            .insert(port.ifindex, info, 0)
            .context("marking the port attached")?;
        tracing::info!(bridge = %self.name, port = %port.ifname, mode = mode.name(), "port attached");
        Ok(())
    }

    /// A NIC with rx-vlan-offload strips tags before XDP runs, hiding the VLAN: turn it off while
    /// vbr owns the port.
    fn disable_rx_vlan_offload(&mut self, port: &Port) -> anyhow::Result<()> {
        let old = ethtool::update_flags(&port.ifname, ethtool::FLAG_RXVLAN, 0)?;
        if old & ethtool::FLAG_RXVLAN != 0 {
            self.rx_vlan_offload_restore.push(port.ifname.clone());
        }
        Ok(())
    }

    fn map_mut(&mut self, name: &str) -> anyhow::Result<&mut aya::maps::Map> {
        self.ebpf
            .map_mut(name)
            .ok_or_else(|| anyhow!("the eBPF object has no map {name:?}"))
    }
}

impl Drop for RunningBridge {
    fn drop(&mut self) {
        for ifname in &self.rx_vlan_offload_restore {
            let restored =
                ethtool::update_flags(ifname, ethtool::FLAG_RXVLAN, ethtool::FLAG_RXVLAN);
            if let Err(error) = restored {
                tracing::warn!("restoring rx-vlan-offload on {ifname}: {error:#}");
            }
        }
        if let Err(error) = fs::remove_dir_all(&self.pin_dir) {
            tracing::warn!("removing {}: {error}", self.pin_dir.display());
        }
    }
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .ok_or_else(|| anyhow!("the eBPF object has no program {name}"))?
        .try_into()
        .with_context(|| format!("{name} is not an XDP program"))
}
