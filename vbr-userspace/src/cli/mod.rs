//! The command line, in iproute2's `bridge` grammar: `vbr OBJECT COMMAND`, `-j` for JSON.
mod bridge;
mod fdb;
mod monitor;
mod port;
mod stats;
mod table;
mod vlan;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

pub use bridge::BridgeCommand;
pub use fdb::FdbCommand;
pub use port::PortCommand;
pub use vlan::VlanCommand;

/// `vbr --version`: the release and the datapath it carries.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (datapath ",
    env!("VBR_DATAPATH_ID"),
    ", map layout ",
    env!("VBR_MAP_LAYOUT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "vbr",
    version = VERSION,
    about = "An eBPF L2 switch for hypervisor and container hosts"
)]
pub struct Cli {
    /// Print JSON instead of a table.
    #[arg(short = 'j', long = "json", global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent in the foreground (`--config FILE`), or talk to the running one.
    Agent(AgentArgs),
    /// Bridges as a whole.
    Bridge {
        #[command(subcommand)]
        command: BridgeCommand,
    },
    /// Bridge ports.
    Port {
        #[command(subcommand)]
        command: PortCommand,
    },
    /// The forwarding database: which MAC lives behind which port.
    Fdb {
        #[command(subcommand)]
        command: FdbCommand,
    },
    /// 802.1Q VLAN membership of the ports.
    Vlan {
        #[command(subcommand)]
        command: VlanCommand,
    },
    /// Stream FDB events (learned, moved, missed, aged, added, deleted) as they happen.
    Monitor,
    /// Frames and bytes per port and per VLAN, and frames per reason (forwarded, flooded, drops).
    Stats {
        /// Only this bridge.
        #[arg(long)]
        bridge: Option<String>,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub action: Option<AgentAction>,
    /// The TOML config file.
    #[arg(short, long, required = true)]
    pub config: Option<PathBuf>,
    /// Remove every bridge when the agent exits, instead of leaving it forwarding.
    #[arg(long)]
    pub detach_on_exit: bool,
    /// Serve Prometheus metrics over HTTP on this address (e.g. 127.0.0.1:9470).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum AgentAction {
    /// Make the running agent re-read its config and apply the difference.
    Reload,
}

impl Cli {
    /// Runs every command but `agent`, which needs the async runtime.
    pub fn run_inspection(command: Command, json: bool) -> anyhow::Result<()> {
        match command {
            Command::Bridge { command } => bridge::run(command),
            Command::Port { command } => port::run(command, json),
            Command::Fdb { command } => fdb::run(command, json),
            Command::Vlan { command } => vlan::run(command, json),
            Command::Monitor => monitor::run(json),
            Command::Stats { bridge } => stats::run(bridge.as_deref(), json),
            Command::Agent(_) => unreachable!("the agent is started by main"),
        }
    }
}
