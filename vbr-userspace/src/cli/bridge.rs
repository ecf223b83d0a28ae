//! `vbr bridge del`.
use clap::Subcommand;
use vbr::{
    bridge,
    control::{self, Request},
};

#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// Remove a bridge completely: ports detached, learned state and pins gone.
    Del {
        /// The bridge.
        name: String,
    },
}

pub fn run(command: BridgeCommand) -> anyhow::Result<()> {
    let BridgeCommand::Del { name } = command;
    // The agent holds the bridge's programs: it removes the bridge if it runs it.
    let request = Request::BridgeDel { name: name.clone() };
    match control::request(&request)? {
        Some(reply) if reply.ok => Ok(()),
        // No agent, or one that does not run this bridge (left by an earlier agent).
        _ => bridge::destroy_pinned(&name),
    }
}
