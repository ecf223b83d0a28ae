//! vbr's userspace: the agent that loads and runs the datapath, and the CLI that inspects it.

pub mod accelerator;
pub mod agent;
pub mod bpffs;
pub mod bridge;
pub mod cache;
pub mod config;
pub mod control;
pub mod datapath;
pub mod ethtool;
pub mod event;
pub mod fdb;
pub mod host_port;
pub mod kernel_bridge;
pub mod layout;
pub mod link_watch;
pub mod listeners;
pub mod mac;
pub mod netdev;
pub mod notify;
pub mod paths;
pub mod pinned;
pub mod port_policy;
pub mod ports;
pub mod stats;
pub mod veth;
