//! The agent's control socket: `vbr agent reload`, `vbr monitor`, `vbr bridge del` and the
//! CLI's notices reach the agent through it. It is an abstract unix socket, which the kernel
//! scopes to a network namespace: one agent per namespace, found by the CLI run beside it.
use std::{
    io::{BufRead as _, BufReader, ErrorKind, Write as _},
    os::unix::net::UnixStream,
    os::{linux::net::SocketAddrExt as _, unix::net::SocketAddr},
};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::event::Event;

/// Abstract socket name (no file: access is checked by peer credentials instead).
const SOCKET_NAME: &[u8] = b"vbr-agent";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Re-read the config and apply the difference.
    Reload,
    /// Stream every FDB event from now on.
    Monitor,
    /// Remove a bridge completely.
    BridgeDel { name: String },
    /// Something the CLI did that monitors should see.
    Notify { event: Event },
    /// The hotplug ports waiting for their interface.
    Waiting,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<WaitingPort>,
}

/// A hotplug port whose interface does not exist (yet).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitingPort {
    pub bridge: String,
    pub ifname: String,
}

impl Reply {
    pub fn from_result(result: anyhow::Result<()>) -> Self {
        match result {
            Ok(()) => Self {
                ok: true,
                ..Self::default()
            },
            Err(error) => Self {
                ok: false,
                error: Some(format!("{error:#}")),
                ..Self::default()
            },
        }
    }
}

/// The address the agent listens on.
pub fn address() -> anyhow::Result<SocketAddr> {
    SocketAddr::from_abstract_name(SOCKET_NAME).context("making the control socket address")
}

/// A connection to the agent of this network namespace, or `None` if none runs.
pub fn connect() -> anyhow::Result<Option<UnixStream>> {
    match UnixStream::connect_addr(&address()?) {
        Ok(stream) => Ok(Some(stream)),
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::NotFound
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(error).context("connecting to the vbr agent"),
    }
}

/// Sends `request` to the agent and waits for its reply; `None` if no agent runs here.
pub fn request(request: &Request) -> anyhow::Result<Option<Reply>> {
    let Some(stream) = connect()? else {
        return Ok(None);
    };
    let mut lines = send(stream, request)?;
    let line = lines
        .next()
        .context("the agent closed the connection without replying")??;
    Ok(Some(
        serde_json::from_str(&line).context("reading the agent's reply")?,
    ))
}

/// Sends `request` on `stream` and returns the lines that come back.
pub fn send(
    mut stream: UnixStream,
    request: &Request,
) -> anyhow::Result<impl Iterator<Item = std::io::Result<String>>> {
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .context("writing to the vbr agent")?;
    Ok(BufReader::new(stream).lines())
}

/// Sends `request` and fails unless the agent replies ok; `Ok(false)` if no agent runs here.
pub fn expect_ok(request: &Request) -> anyhow::Result<bool> {
    match self::request(request)? {
        None => Ok(false),
        Some(Reply { ok: true, .. }) => Ok(true),
        Some(Reply { error, .. }) => {
            bail!("{}", error.unwrap_or_else(|| "the agent refused".into()))
        }
    }
}
