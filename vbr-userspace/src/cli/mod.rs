//! The command line, in iproute2's `bridge` grammar: `vbr OBJECT COMMAND`, `-j` for JSON.
mod fdb;
mod port;
mod table;
mod vlan;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use fdb::FdbCommand;
pub use port::PortCommand;
pub use vlan::VlanCommand;

#[derive(Debug, Parser)]
#[command(
    name = "vbr",
    version,
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
    /// Run the agent in the foreground: load, pin and attach every bridge of the config.
    Agent {
        /// The TOML config file.
        #[arg(short, long)]
        config: PathBuf,
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
}

impl Cli {
    /// Runs every command but `agent`, which needs the async runtime.
    pub fn run_inspection(command: Command, json: bool) -> anyhow::Result<()> {
        match command {
            Command::Port { command } => port::run(command, json),
            Command::Fdb { command } => fdb::run(command, json),
            Command::Vlan { command } => vlan::run(command, json),
            Command::Agent { .. } => unreachable!("the agent is started by main"),
        }
    }
}
