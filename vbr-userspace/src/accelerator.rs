//! `[[accelerate]]`: vbr beside an existing Linux bridge. The kernel bridge stays the control
//! plane and the slow path; the agent follows it over rtnetlink (kernel_bridge.rs) and mirrors
//! its ports (flags, STP state, VLANs) and its FDB into a vbr bridge of the same name, whose
//! ports run `vbr_accel`: known unicast between forwarding ports in XDP, the rest passed up.
//!
//! Ageing: the kernel must not age out a MAC whose frames the fast path now carries, or every
//! flow would fall back to flooding once per ageing time. The fast path stamps the mirrored entry
//! of each source it forwards for, and the agent refreshes the kernel's entry (NTF_USE, as if a
//! frame had crossed the bridge) when the stamp moved. Refreshing keeps the kernel in charge:
//! its entries stay dynamic, move and age as they always did once traffic stops — unlike
//! extern_learn, which would hand ageing to vbr and leave entries behind if vbr went away.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use vbr_common::{
    fdb::FdbKey,
    port::{POLICY_ACCEL_FORWARDING, POLICY_ACCEL_VLAN, PVID_NONE},
    vlan::ETH_P_8021Q,
};

use crate::{
    bridge::{Bridge, Port},
    config::{
        AccelerateConfig, BridgeConfig, BridgeMode, DatapathMode, LinkLocalPolicy, PortFlags,
    },
    kernel_bridge::{self, KernelBridge, KernelPort},
    port_policy,
};

/// The kernel's entries are refreshed at most this often, and at least four times per kernel
/// ageing time.
const MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

pub struct Accelerator {
    config: AccelerateConfig,
    bridge: Bridge,
    /// The kernel bridge as last read.
    kernel: KernelBridge,
    /// Per mirrored entry: the fast path's stamp when the kernel's entry was last refreshed, and
    /// when that was.
    refreshed: HashMap<FdbKey, (u64, Instant)>,
    /// The kernel bridge could not be read at the last `sync` (deleted, or not yet made again).
    vanished: bool,
}

impl Accelerator {
    /// Starts accelerating the Linux bridge `config.bridge` (or adopts the fast path a previous
    /// agent left on it).
    pub async fn open(
        config: &AccelerateConfig,
        netlink: &rtnetlink::Handle,
    ) -> anyhow::Result<Self> {
        let kernel = kernel_bridge::snapshot(netlink, &config.bridge).await?;
        let ports = ports_of(&kernel, config);
        let bridge = Bridge::open(&bridge_config(config), kernel.ifindex, &ports, netlink)
            .await
            .with_context(|| format!("accelerating Linux bridge {:?}", config.bridge))?;
        let mut accelerator = Self {
            config: config.clone(),
            bridge,
            kernel,
            refreshed: HashMap::new(),
            vanished: false,
        };
        accelerator.mirror_fdb()?;
        tracing::info!(bridge = %config.bridge, ports = ports.len(), "accelerating the Linux bridge");
        Ok(accelerator)
    }

    pub fn name(&self) -> &str {
        &self.config.bridge
    }

    /// Takes a changed config (the netfilter switch) into account at the next `sync`.
    pub fn configure(&mut self, config: &AccelerateConfig) {
        self.config = config.clone();
    }

    /// Reads the kernel bridge again and makes the fast path match it: ports, flags, VLANs, FDB.
    /// While the kernel bridge cannot be read the fast path holds no port, and waits for it.
    pub async fn sync(&mut self, netlink: &rtnetlink::Handle) -> anyhow::Result<()> {
        self.kernel = match kernel_bridge::snapshot(netlink, &self.config.bridge).await {
            Ok(kernel) => kernel,
            Err(error) => {
                if !self.vanished {
                    tracing::warn!(bridge = %self.config.bridge, "the Linux bridge is gone, waiting for it: {error:#}");
                    self.vanished = true;
                }
                return self.bridge.set_ports(&[], netlink).await;
            }
        };
        if std::mem::take(&mut self.vanished) {
            tracing::info!(bridge = %self.config.bridge, "the Linux bridge is back");
        }
        self.bridge.set_accelerates(self.kernel.ifindex);
        let ports = ports_of(&self.kernel, &self.config);
        self.bridge.set_ports(&ports, netlink).await?;
        self.mirror_fdb()
    }

    /// Makes the mirrored FDB the kernel's: entries on member ports, not the host's own
    /// addresses (frames for those go up the stack, so the fast path never knows them). An entry
    /// that moved is rewritten, which clears its stamp.
    fn mirror_fdb(&mut self) -> anyhow::Result<()> {
        let wanted: HashMap<FdbKey, u32> = self
            .kernel
            .fdb
            .iter()
            .filter(|entry| {
                !entry.local
                    && self
                        .kernel
                        .ports
                        .iter()
                        .any(|port| port.ifindex == entry.ifindex)
            })
            .map(|entry| (FdbKey::new(entry.mac, entry.vid), entry.ifindex))
            .collect();
        let fdb = self.bridge.fdb();
        let current: HashMap<FdbKey, u32> = fdb
            .entries()?
            .into_iter()
            .map(|(key, entry)| (key, entry.ifindex))
            .collect();
        for key in current.keys().filter(|key| !wanted.contains_key(key)) {
            // The fast path may have dropped it already (a source seen on another port).
            let _ = fdb.delete(key);
        }
        for (key, ifindex) in &wanted {
            if current.get(key) != Some(ifindex) {
                fdb.mirror(*key, *ifindex)?;
            }
        }
        self.refreshed.retain(|key, _| wanted.contains_key(key));
        Ok(())
    }

    /// Refreshes the kernel's entries of the sources the fast path forwarded for since their
    /// last refresh. Run right after `sync`, so that an entry the kernel moved meanwhile is not
    /// refreshed on its old port (which would move it back): `sync` rewrote it, clearing its
    /// stamp.
    pub async fn refresh_kernel(&mut self, netlink: &rtnetlink::Handle) -> anyhow::Result<()> {
        if self.vanished || self.kernel.ageing_time.is_zero() {
            return Ok(());
        }
        let interval =
            (self.kernel.ageing_time / 4).clamp(MIN_REFRESH_INTERVAL, MAX_REFRESH_INTERVAL);
        let now = Instant::now();
        // The kernel refreshes on learning ports only; NTF_USE would not ask.
        let learning: Vec<u32> = self
            .kernel
            .ports
            .iter()
            .filter(|port| port.learning)
            .map(|port| port.ifindex)
            .collect();
        let ageing: Vec<(FdbKey, u32)> = self
            .kernel
            .fdb
            .iter()
            .filter(|entry| !entry.local && !entry.is_static && learning.contains(&entry.ifindex))
            .map(|entry| (FdbKey::new(entry.mac, entry.vid), entry.ifindex))
            .collect();
        let stamps: HashMap<FdbKey, (u32, u64)> = self
            .bridge
            .fdb()
            .entries()?
            .into_iter()
            .map(|(key, entry)| (key, (entry.ifindex, entry.last_seen_ns)))
            .collect();
        for (key, ifindex) in ageing {
            let Some(&(mirrored_ifindex, stamp)) = stamps.get(&key) else {
                continue;
            };
            let (refreshed_stamp, refreshed_at) = self
                .refreshed
                .get(&key)
                .copied()
                .unwrap_or((0, now - interval));
            if mirrored_ifindex != ifindex
                || stamp <= refreshed_stamp
                || now.duration_since(refreshed_at) < interval
            {
                continue;
            }
            kernel_bridge::refresh(netlink, ifindex, key.mac, key.vlan)
                .await
                .with_context(|| format!("refreshing the kernel's entry of {:02x?}", key.mac))?;
            self.refreshed.insert(key, (stamp, now));
        }
        Ok(())
    }

    /// Whether the fast path's pins are still there (someone may have removed them by hand).
    pub fn pinned(&self) -> bool {
        self.bridge.pinned()
    }

    /// Stops accelerating: the ports' programs detached, their offloads restored, the pins gone.
    /// The kernel bridge is left as it was; it carries everything again.
    pub fn destroy(self) {
        tracing::info!(bridge = %self.config.bridge, "no longer accelerating the Linux bridge");
        self.bridge.destroy();
    }
}

/// The vbr bridge that holds the fast path: the kernel bridge's name, no ageing (the kernel ages,
/// the agent mirrors), no learning limits.
fn bridge_config(config: &AccelerateConfig) -> BridgeConfig {
    BridgeConfig {
        name: config.bridge.clone(),
        ageing_time: 0,
        ports: Vec::new(),
        host_port: None,
        mode: BridgeMode::Bridge,
        max_learned: 0,
        link_local: LinkLocalPolicy::Drop,
        vlan_stats: false,
    }
}

/// Every member of the kernel bridge as a port of the fast path. A port takes the fast path only
/// while the kernel bridge forwards on it, and not at all while the bridge hands frames to
/// netfilter (unless told to bypass it) or tags with 802.1ad.
fn ports_of(kernel: &KernelBridge, config: &AccelerateConfig) -> Vec<Port> {
    let accelerated = (!kernel.netfilter || config.bypass_netfilter)
        && (!kernel.vlan_filtering || kernel.vlan_protocol == ETH_P_8021Q);
    kernel
        .ports
        .iter()
        .map(|port| {
            let (pvid, tagged) = vlans_of(kernel, port);
            let flags = PortFlags {
                learning: port.learning,
                hairpin: port.hairpin,
                isolated: port.isolated,
                max_learned: 0,
                ..PortFlags::default()
            };
            let mut policy = port_policy::encode(BridgeMode::Bridge, false, &flags);
            if accelerated && port.forwarding() {
                policy |= POLICY_ACCEL_FORWARDING;
            }
            if kernel.vlan_filtering {
                policy |= POLICY_ACCEL_VLAN;
            }
            Port {
                ifname: port.name.clone(),
                ifindex: port.ifindex,
                pvid,
                tagged,
                mode: DatapathMode::Auto,
                uplink: false,
                policy,
                max_learned: 0,
                flood_rate: 0,
            }
        })
        .collect()
}

/// The port's VLANs as the fast path holds them: the PVID when it also leaves untagged, and
/// every other VLAN that leaves tagged. A VLAN the kernel treats otherwise (untagged but not the
/// PVID, or a PVID that leaves tagged) is left out, so its frames go to the kernel bridge.
fn vlans_of(kernel: &KernelBridge, port: &KernelPort) -> (u16, Vec<u16>) {
    if !kernel.vlan_filtering {
        return (PVID_NONE, Vec::new());
    }
    let pvid = port
        .pvid
        .filter(|pvid| port.vlans.contains(&(*pvid, true)))
        .unwrap_or(PVID_NONE);
    let tagged = port
        .vlans
        .iter()
        .filter(|(_, untagged)| !untagged)
        .map(|(vid, _)| *vid)
        .collect();
    (pvid, tagged)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vbr_common::port::{POLICY_ISOLATED, POLICY_LEARNING};

    use super::*;

    /// `BR_STATE_FORWARDING`.
    const FORWARDING: u8 = 3;

    fn port(ifindex: u32, vlans: &[(u16, bool)], pvid: Option<u16>) -> KernelPort {
        KernelPort {
            ifindex,
            name: format!("p{ifindex}"),
            state: FORWARDING,
            learning: true,
            hairpin: false,
            isolated: false,
            locked: false,
            up: true,
            pvid,
            vlans: vlans.to_vec(),
        }
    }

    fn kernel(ports: Vec<KernelPort>, vlan_filtering: bool) -> KernelBridge {
        KernelBridge {
            ifindex: 1,
            name: "br0".into(),
            ageing_time: Duration::from_secs(300),
            vlan_filtering,
            vlan_protocol: ETH_P_8021Q,
            netfilter: false,
            ports,
            fdb: Vec::new(),
        }
    }

    fn config(bypass_netfilter: bool) -> AccelerateConfig {
        AccelerateConfig {
            bridge: "br0".into(),
            bypass_netfilter,
        }
    }

    #[test]
    fn only_forwarding_ports_take_the_fast_path_and_flags_follow_the_kernel() {
        let mut blocking = port(3, &[], None);
        blocking.state = 1;
        let mut isolated = port(4, &[], None);
        isolated.isolated = true;
        isolated.learning = false;
        let ports = ports_of(
            &kernel(vec![port(2, &[], None), blocking, isolated], false),
            &config(false),
        );
        let accelerated: Vec<bool> = ports
            .iter()
            .map(|port| port.policy & POLICY_ACCEL_FORWARDING != 0)
            .collect();
        assert_eq!(accelerated, [true, false, true]);
        assert_eq!(
            ports[2].policy & (POLICY_ISOLATED | POLICY_LEARNING),
            POLICY_ISOLATED
        );
        assert!(
            ports
                .iter()
                .all(|port| port.policy & POLICY_ACCEL_VLAN == 0)
        );
        assert!(
            ports
                .iter()
                .all(|port| port.pvid == PVID_NONE && port.tagged.is_empty())
        );
    }

    #[test]
    fn netfilter_and_802_1ad_keep_every_port_on_the_kernel_path() {
        let mut bridge = kernel(vec![port(2, &[], None)], false);
        bridge.netfilter = true;
        assert_eq!(
            ports_of(&bridge, &config(false))[0].policy & POLICY_ACCEL_FORWARDING,
            0
        );
        assert_ne!(
            ports_of(&bridge, &config(true))[0].policy & POLICY_ACCEL_FORWARDING,
            0
        );
        let mut qinq = kernel(vec![port(2, &[(10, true)], Some(10))], true);
        qinq.vlan_protocol = 0x88a8;
        assert_eq!(
            ports_of(&qinq, &config(false))[0].policy & POLICY_ACCEL_FORWARDING,
            0
        );
    }

    #[test]
    fn vlans_the_kernel_tags_otherwise_than_vbr_are_left_to_it() {
        let bridge = kernel(
            vec![
                // Access port: PVID 10 untagged; 20 tagged; 30 untagged but not the PVID.
                port(2, &[(10, true), (20, false), (30, true)], Some(10)),
                // A PVID that leaves tagged: untagged frames stay on the kernel's path.
                port(3, &[(10, false), (20, false)], Some(10)),
            ],
            true,
        );
        let ports = ports_of(&bridge, &config(false));
        assert_eq!((ports[0].pvid, ports[0].tagged.as_slice()), (10, &[20][..]));
        assert_eq!(
            (ports[1].pvid, ports[1].tagged.as_slice()),
            (PVID_NONE, &[10, 20][..])
        );
        assert!(
            ports
                .iter()
                .all(|port| port.policy & POLICY_ACCEL_VLAN != 0)
        );
    }
}
