//! `vbr agent`: brings every bridge of the config up (or adopts it from its pins), and the fast
//! path beside every Linux bridge it accelerates, then serves: ages learned entries, follows the
//! accelerated bridges, relays FDB events to monitors, reloads the config on SIGHUP or
//! `vbr agent reload`, serves metrics. On SIGTERM or SIGINT it leaves the bridges forwarding,
//! unless told to remove them (`--detach-on-exit`).
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader, unix::AsyncFd},
    net::{TcpListener, UnixListener, UnixStream},
    signal::unix::{SignalKind, signal},
    sync::{broadcast, mpsc, oneshot},
    task::JoinHandle,
};
use vbr_common::event::FdbEvent;

use crate::{
    accelerator::Accelerator,
    bpffs,
    bridge::{self, Bridge},
    config::{BridgeConfig, Config, HostPortConfig},
    control::{self, Reply, Request, WaitingPort},
    event::Event,
    host_port, kernel_bridge,
    link_watch::{self, LinkChange},
    notify,
    pinned::PinnedBridge,
    stats,
};

/// How often learned entries are checked for age.
const AGEING_INTERVAL: Duration = Duration::from_secs(1);

/// After a change of a Linux bridge, how long to wait for the changes that come with it (a port
/// joining brings its addresses and VLANs) before following them all at once.
const KERNEL_BRIDGE_SETTLE: Duration = Duration::from_millis(20);

/// Events kept for a monitor that reads slowly, before it starts losing them.
const MONITOR_BACKLOG: usize = 4096;

pub struct Options {
    pub config: PathBuf,
    /// Remove every bridge on exit instead of leaving it forwarding.
    pub detach_on_exit: bool,
    /// Serve Prometheus metrics here.
    pub metrics_addr: Option<SocketAddr>,
}

/// A request from a control connection, with where to send the reply.
type Command = (Request, oneshot::Sender<Reply>);

struct Agent {
    config_path: PathBuf,
    /// The config in force: what hotplug and host ports are checked against.
    config: Config,
    bridges: BTreeMap<String, Bridge>,
    /// The fast path beside each Linux bridge of the config's `[[accelerate]]`.
    accelerators: BTreeMap<String, Accelerator>,
    /// Hotplug ports of each bridge whose interface does not exist yet.
    waiting: BTreeMap<String, BTreeSet<String>>,
    /// The task reading each bridge's event ring buffer.
    readers: BTreeMap<String, JoinHandle<()>>,
    netlink: rtnetlink::Handle,
    events: broadcast::Sender<Event>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let config = Config::load(&options.config)?;
    bpffs::ensure_mounted()?;
    let listener = listen()?;
    let (connection, netlink, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
    tokio::spawn(connection);
    let (events, _) = broadcast::channel(MONITOR_BACKLOG);
    let mut link_changes = link_watch::watch()?;
    let mut kernel_bridge_changes = kernel_bridge::watch()?;
    let mut agent = Agent {
        config_path: options.config.clone(),
        config: Config::default(),
        bridges: BTreeMap::new(),
        accelerators: BTreeMap::new(),
        waiting: BTreeMap::new(),
        readers: BTreeMap::new(),
        netlink,
        events,
    };
    agent.apply(config).await?;
    if let Some(address) = options.metrics_addr {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("listening for metrics on {address}"))?;
        tokio::spawn(serve_metrics(listener));
    }
    tracing::info!(
        bridges = agent.bridges.len(),
        accelerated = agent.accelerators.len(),
        "vbr agent ready"
    );
    notify::notify("READY=1");

    let (commands, mut command_rx) = mpsc::channel::<Command>(16);
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut ageing = tokio::time::interval(AGEING_INTERVAL);
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
                if let Err(error) = agent.reload().await {
                    tracing::error!("reload refused: {error:#}");
                }
            }
            _ = ageing.tick() => {
                agent.age();
                agent.rebuild_unpinned().await;
                agent.sync_listeners().await;
                agent.tend_accelerators().await;
            }
            Some(()) = kernel_bridge_changes.recv() => {
                tokio::time::sleep(KERNEL_BRIDGE_SETTLE).await;
                while kernel_bridge_changes.try_recv().is_ok() {}
                agent.sync_accelerators().await;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_client(stream, commands.clone(), agent.events.subscribe()));
                }
                Err(error) => tracing::warn!("control socket: {error}"),
            },
            Some((request, reply)) = command_rx.recv() => {
                let _ = reply.send(agent.handle(request).await);
            }
            Some(change) = link_changes.recv() => agent.link_changed(change).await,
        }
    }
    notify::notify("STOPPING=1");
    if options.detach_on_exit {
        tracing::info!("stopping: removing every bridge");
        for name in agent.bridges.keys().cloned().collect::<Vec<_>>() {
            let host = host_port_of(&agent.config, &name);
            agent.remove_bridge(&name, host).await;
        }
        for accelerator in std::mem::take(&mut agent.accelerators).into_values() {
            accelerator.destroy();
        }
    } else {
        tracing::info!("stopping: the bridges keep forwarding");
    }
    Ok(())
}

/// Binds the control socket; a second agent in this network namespace is refused.
fn listen() -> anyhow::Result<UnixListener> {
    let listener = std::os::unix::net::UnixListener::bind_addr(&control::address()?).context(
        "binding the control socket: is another vbr agent running in this network namespace?",
    )?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener).context("registering the control socket")
}

impl Agent {
    /// Makes the running bridges those of `config`. Every interface is resolved before anything
    /// changes, so a bad config changes nothing; bridges created here are removed again if a
    /// later one fails.
    async fn apply(&mut self, config: Config) -> anyhow::Result<()> {
        for bridge in &config.bridges {
            bridge::resolve_ports(bridge, false)?;
        }
        for accelerated in &config.accelerators {
            kernel_bridge::snapshot(&self.netlink, &accelerated.bridge).await?;
        }
        let wanted: BTreeSet<&str> = config.bridges.iter().map(|b| b.name.as_str()).collect();
        let doomed: Vec<String> = self
            .bridges
            .keys()
            .filter(|name| !wanted.contains(name.as_str()))
            .cloned()
            .collect();
        for name in doomed {
            let host = host_port_of(&self.config, &name);
            self.remove_bridge(&name, host).await;
        }
        let mut created = Vec::new();
        for bridge in &config.bridges {
            let fresh = !self.bridges.contains_key(&bridge.name);
            if let Err(error) = self.bring_up(bridge).await {
                if fresh {
                    created.push(bridge.name.clone());
                }
                for name in created {
                    let host = host_port_of(&config, &name);
                    self.remove_bridge(&name, host).await;
                }
                return Err(error.context(format!("bridge {:?}", bridge.name)));
            }
            if fresh {
                created.push(bridge.name.clone());
            }
        }
        self.apply_accelerators(&config).await?;
        self.drop_stale_host_ports(&config).await;
        self.config = config;
        self.sync_listeners().await;
        self.publish_agent_events();
        Ok(())
    }

    /// Makes the accelerated Linux bridges those of `config`; accelerators started here are
    /// stopped again if a later one fails.
    async fn apply_accelerators(&mut self, config: &Config) -> anyhow::Result<()> {
        let doomed: Vec<String> = self
            .accelerators
            .keys()
            .filter(|name| !config.accelerators.iter().any(|a| &a.bridge == *name))
            .cloned()
            .collect();
        for name in doomed {
            if let Some(accelerator) = self.accelerators.remove(&name) {
                accelerator.destroy();
            }
        }
        let mut started = Vec::new();
        for wanted in &config.accelerators {
            let result = match self.accelerators.get_mut(&wanted.bridge) {
                Some(accelerator) => {
                    accelerator.configure(wanted);
                    accelerator.sync(&self.netlink).await
                }
                None => Accelerator::open(wanted, &self.netlink)
                    .await
                    .map(|accelerator| {
                        started.push(wanted.bridge.clone());
                        self.accelerators.insert(wanted.bridge.clone(), accelerator);
                    }),
            };
            if let Err(error) = result {
                for name in started {
                    if let Some(accelerator) = self.accelerators.remove(&name) {
                        accelerator.destroy();
                    }
                }
                return Err(error.context(format!("accelerating {:?}", wanted.bridge)));
            }
        }
        Ok(())
    }

    /// Follows every accelerated Linux bridge after a change rtnetlink told of.
    async fn sync_accelerators(&mut self) {
        for accelerator in self.accelerators.values_mut() {
            if let Err(error) = accelerator.sync(&self.netlink).await {
                tracing::warn!(bridge = %accelerator.name(), "following the Linux bridge: {error:#}");
            }
        }
    }

    /// Every second: rebuilds an accelerator whose pins were removed by hand, follows the Linux
    /// bridges (no event tells of every change, e.g. of an entry's port state), and refreshes
    /// the kernel's entries of the traffic the fast path carries.
    async fn tend_accelerators(&mut self) {
        let lost: Vec<String> = self
            .accelerators
            .iter()
            .filter(|(_, accelerator)| !accelerator.pinned())
            .map(|(name, _)| name.clone())
            .collect();
        for name in lost {
            tracing::error!(bridge = %name, "the accelerator's pins were removed by hand: rebuilding it");
            self.accelerators.remove(&name);
            let Some(config) = self.config.accelerators.iter().find(|a| a.bridge == name) else {
                continue;
            };
            match Accelerator::open(config, &self.netlink).await {
                Ok(accelerator) => {
                    self.accelerators.insert(name, accelerator);
                }
                Err(error) => tracing::error!(bridge = %name, "rebuilding: {error:#}"),
            }
        }
        for accelerator in self.accelerators.values_mut() {
            let result = async {
                accelerator.sync(&self.netlink).await?;
                accelerator.refresh_kernel(&self.netlink).await
            }
            .await;
            if let Err(error) = result {
                tracing::warn!(bridge = %accelerator.name(), "{error:#}");
            }
        }
    }

    /// Creates, adopts or updates one bridge so that it matches `config`.
    async fn bring_up(&mut self, config: &BridgeConfig) -> anyhow::Result<()> {
        if let Some(host) = &config.host_port {
            host_port::ensure(&self.netlink, host).await?;
        }
        let resolved = bridge::resolve_ports(config, false)?;
        match self.bridges.get_mut(&config.name) {
            Some(bridge) => {
                bridge.configure(config);
                bridge.set_ports(&resolved.ports, &self.netlink).await?;
            }
            None => {
                self.bridges.insert(
                    config.name.clone(),
                    Bridge::open(config, 0, &resolved.ports, &self.netlink).await?,
                );
                let events = self
                    .bridges
                    .get_mut(&config.name)
                    .expect("just inserted")
                    .take_events()?;
                self.readers.insert(
                    config.name.clone(),
                    tokio::spawn(relay_events(
                        config.name.clone(),
                        events,
                        self.events.clone(),
                    )),
                );
            }
        }
        self.waiting
            .insert(config.name.clone(), resolved.waiting.into_iter().collect());
        Ok(())
    }

    /// Deletes the host ports of kept bridges that `config` no longer gives one.
    async fn drop_stale_host_ports(&mut self, config: &Config) {
        for old in &self.config.bridges {
            let Some(host) = &old.host_port else { continue };
            let kept = config.bridges.iter().any(|new| {
                new.host_port
                    .as_ref()
                    .is_some_and(|new| new.ifname == host.ifname)
            });
            if !kept && let Err(error) = host_port::remove(&self.netlink, host).await {
                tracing::warn!("{error:#}");
            }
        }
    }

    async fn reload(&mut self) -> anyhow::Result<()> {
        let config = Config::load(&self.config_path)?;
        self.apply(config).await?;
        tracing::info!(path = %self.config_path.display(), "config reloaded");
        Ok(())
    }

    async fn handle(&mut self, request: Request) -> Reply {
        let result = match request {
            Request::Reload => self.reload().await,
            Request::BridgeDel { name } => {
                if self.bridges.contains_key(&name) {
                    let host = host_port_of(&self.config, &name);
                    self.remove_bridge(&name, host).await;
                    Ok(())
                } else if let Some(accelerator) = self.accelerators.remove(&name) {
                    accelerator.destroy();
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("this agent runs no bridge {name:?}"))
                }
            }
            Request::Notify { event } => {
                let _ = self.events.send(event);
                Ok(())
            }
            Request::Waiting => {
                let mut reply = Reply::from_result(Ok(()));
                reply.waiting = self
                    .waiting
                    .iter()
                    .flat_map(|(bridge, ports)| {
                        ports.iter().map(|ifname| WaitingPort {
                            bridge: bridge.clone(),
                            ifname: ifname.clone(),
                        })
                    })
                    .collect();
                return reply;
            }
            Request::Monitor => Err(anyhow::anyhow!(
                "monitor is served by the connection itself"
            )),
        };
        Reply::from_result(result)
    }

    /// An interface appeared or vanished: attach a hotplug port that was waiting for it, or take
    /// a vanished port out of its bridge.
    async fn link_changed(&mut self, change: LinkChange) {
        match change {
            LinkChange::Present { name, .. } => {
                let Some(bridge) = self
                    .waiting
                    .iter()
                    .find(|(_, ports)| ports.contains(&name))
                    .map(|(bridge, _)| bridge.clone())
                else {
                    return;
                };
                let Some(config) = self
                    .config
                    .bridges
                    .iter()
                    .find(|b| b.name == bridge)
                    .cloned()
                else {
                    return;
                };
                tracing::info!(bridge = %bridge, port = %name, "hotplug port appeared");
                if let Err(error) = self.refresh(&config).await {
                    tracing::error!(bridge = %bridge, port = %name, "attaching: {error:#}");
                }
            }
            LinkChange::Gone { ifindex, name } => {
                for (bridge_name, bridge) in &mut self.bridges {
                    if !bridge.has_port(ifindex) {
                        continue;
                    }
                    if let Err(error) = bridge.remove_port(ifindex) {
                        tracing::error!(bridge = %bridge_name, port = %name, "removing: {error:#}");
                    }
                    let hotplug = self
                        .config
                        .bridges
                        .iter()
                        .filter(|b| &b.name == bridge_name)
                        .flat_map(|b| &b.ports)
                        .any(|port| port.ifname == name && port.hotplug);
                    if hotplug {
                        tracing::info!(bridge = %bridge_name, port = %name, "hotplug port vanished: waiting for it");
                        self.waiting
                            .entry(bridge_name.clone())
                            .or_default()
                            .insert(name.clone());
                    } else {
                        tracing::warn!(bridge = %bridge_name, port = %name, "port vanished: it is no longer switched");
                    }
                }
                self.publish_agent_events();
            }
        }
    }

    /// Gives a running bridge the ports of `config` that exist now.
    async fn refresh(&mut self, config: &BridgeConfig) -> anyhow::Result<()> {
        let resolved = bridge::resolve_ports(config, true)?;
        if let Some(bridge) = self.bridges.get_mut(&config.name) {
            bridge.set_ports(&resolved.ports, &self.netlink).await?;
        }
        self.waiting
            .insert(config.name.clone(), resolved.waiting.into_iter().collect());
        self.publish_agent_events();
        Ok(())
    }

    /// Removes bridge `name` completely, with its host port.
    async fn remove_bridge(&mut self, name: &str, host: Option<HostPortConfig>) {
        if let Some(reader) = self.readers.remove(name) {
            reader.abort();
        }
        self.waiting.remove(name);
        if let Some(bridge) = self.bridges.remove(name) {
            bridge.destroy();
        }
        if let Some(host) = host
            && let Err(error) = host_port::remove(&self.netlink, &host).await
        {
            tracing::warn!("{error:#}");
        }
    }

    fn age(&mut self) {
        for bridge in self.bridges.values_mut() {
            if let Err(error) = bridge.age().and_then(|()| bridge.recount_learned()) {
                tracing::warn!(bridge = %bridge.name, "ageing: {error:#}");
            }
        }
        self.publish_agent_events();
    }

    /// Follows the stacks that listen on the ports (macvlans of them): no event tells when one
    /// comes up in another namespace, so this runs with the ageing, every second.
    async fn sync_listeners(&mut self) {
        for bridge in self.bridges.values_mut() {
            if let Err(error) = bridge.sync_listeners(&self.netlink).await {
                tracing::warn!(bridge = %bridge.name, "following the ports' listeners: {error:#}");
            }
        }
    }

    /// Rebuilds the bridges whose pins someone removed by hand: removing them detached their
    /// ports (the pins held the links), and what the maps held is gone with the old programs.
    async fn rebuild_unpinned(&mut self) {
        let lost: Vec<String> = self
            .bridges
            .iter()
            .filter(|(_, bridge)| !bridge.pinned())
            .map(|(name, _)| name.clone())
            .collect();
        for name in lost {
            tracing::error!(bridge = %name, "its pins were removed by hand: rebuilding it (learned entries are lost)");
            if let Some(reader) = self.readers.remove(&name) {
                reader.abort();
            }
            self.bridges.remove(&name);
            let Some(config) = self.config.bridges.iter().find(|b| b.name == name).cloned() else {
                continue;
            };
            if let Err(error) = self.bring_up(&config).await {
                tracing::error!(bridge = %name, "rebuilding: {error:#}");
            }
        }
    }

    fn publish_agent_events(&mut self) {
        for bridge in self.bridges.values_mut() {
            for event in bridge.drain_events() {
                tracing::debug!("{}", event.line());
                let _ = self.events.send(event);
            }
        }
    }
}

/// The host port `config` gives bridge `name`, if any.
fn host_port_of(config: &Config, name: &str) -> Option<HostPortConfig> {
    config
        .bridges
        .iter()
        .find(|bridge| bridge.name == name)
        .and_then(|bridge| bridge.host_port.clone())
}

/// Reads the datapath's events of bridge `name` and passes them on to monitors.
async fn relay_events(
    name: String,
    ring: aya::maps::RingBuf<aya::maps::MapData>,
    events: broadcast::Sender<Event>,
) {
    // SAFETY: the ring buffer owns its map fd for as long as the AsyncFd holds it.
    let mut ring = match unsafe { AsyncFd::register(ring) } {
        Ok(ring) => ring,
        Err(error) => {
            tracing::error!(bridge = %name, "watching the events ring buffer: {error}");
            return;
        }
    };
    loop {
        let mut ready = match ring.readable_mut().await {
            Ok(ready) => ready,
            Err(error) => {
                tracing::error!(bridge = %name, "waiting for events: {error}");
                return;
            }
        };
        while let Some(item) = ready.get_inner_mut().next() {
            if item.len() < size_of::<FdbEvent>() {
                continue;
            }
            // SAFETY: the datapath writes whole FdbEvents; read_unaligned copes with alignment.
            let raw = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<FdbEvent>()) };
            if let Some(event) = Event::from_datapath(&name, &raw) {
                let _ = events.send(event);
            }
        }
        ready.clear_ready();
    }
}

/// One control connection: only root may talk to the agent.
async fn serve_client(
    stream: UnixStream,
    commands: mpsc::Sender<Command>,
    mut events: broadcast::Receiver<Event>,
) {
    let root = stream.peer_cred().is_ok_and(|cred| cred.uid() == 0);
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    if BufReader::new(reader).read_line(&mut line).await.is_err() {
        return;
    }
    let reply = if !root {
        Reply::from_result(Err(anyhow::anyhow!("only root may control the vbr agent")))
    } else {
        match serde_json::from_str::<Request>(&line) {
            Ok(Request::Monitor) => {
                while let Ok(event) = next_event(&mut events).await {
                    let mut line = serde_json::to_string(&event).unwrap_or_default();
                    line.push('\n');
                    if writer.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
                return;
            }
            Ok(request) => {
                let (reply_tx, reply_rx) = oneshot::channel();
                if commands.send((request, reply_tx)).await.is_err() {
                    return;
                }
                match reply_rx.await {
                    Ok(reply) => reply,
                    Err(_) => return,
                }
            }
            Err(error) => Reply::from_result(Err(anyhow::anyhow!("bad request: {error}"))),
        }
    };
    let mut text = serde_json::to_string(&reply).unwrap_or_default();
    text.push('\n');
    let _ = writer.write_all(text.as_bytes()).await;
}

/// The next event for a monitor; a monitor that fell behind skips what it missed.
async fn next_event(events: &mut broadcast::Receiver<Event>) -> Result<Event, ()> {
    loop {
        match events.recv().await {
            Ok(event) => return Ok(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "a monitor fell behind");
            }
            Err(broadcast::error::RecvError::Closed) => return Err(()),
        }
    }
}

/// Serves the counters of every bridge of this namespace as Prometheus text, to any request.
async fn serve_metrics(listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            if read_request_head(&mut stream).await.is_err() {
                return;
            }
            let body = match metrics_text() {
                Ok(body) => body,
                Err(error) => format!("# error: {error:#}\n"),
            };
            let response = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// Reads an HTTP request up to its blank line (a client may send it in pieces); any request gets
/// the metrics.
async fn read_request_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(())
}

fn metrics_text() -> anyhow::Result<String> {
    let bridges = PinnedBridge::select(None)?
        .iter()
        .map(stats::collect)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(stats::prometheus(&bridges))
}

/// Asks the agent of this network namespace to reload its config.
pub fn request_reload() -> anyhow::Result<()> {
    if !control::expect_ok(&Request::Reload)? {
        bail!("no vbr agent runs in this network namespace");
    }
    Ok(())
}
