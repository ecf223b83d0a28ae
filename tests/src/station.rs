//! Endpoints of a bridge whatever port they sit behind — a lab host, a VM's tap, the external
//! host behind an uplink, the switch namespace's own stack behind the host port — seen the same
//! way: each sends raw frames, captures what reaches it, and pings if it has an IP stack.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::devices::{self, Tap, TapCapture};
use crate::frames::{self, Capture, Frame, Mac};
use crate::lab::{HOST_IFNAME, Host, Ping};
use crate::netns::Netns;

/// Where a station's frames enter and leave.
#[derive(Debug)]
enum Wire<'a> {
    /// An interface in a namespace whose stack is the station.
    Interface { netns: &'a Netns, ifname: String },
    /// A tap whose fd the test holds: the station is the VM.
    Tap(&'a Tap),
}

/// One endpoint of a bridge.
#[derive(Debug)]
pub struct Station<'a> {
    /// For messages: "h1", "vm", "external"...
    pub name: String,
    /// The source of its frames.
    pub mac: Mac,
    /// Its address, if it has an IP stack.
    pub ip: Option<Ipv4Addr>,
    wire: Wire<'a>,
}

/// What one station received during a capture.
pub enum Listening {
    Socket(Capture),
    Tap(TapCapture),
}

impl Listening {
    /// Waits for the capture to end and returns what it received.
    pub fn frames(self) -> Result<Vec<Frame>> {
        match self {
            Self::Socket(capture) => capture.frames(),
            Self::Tap(capture) => capture.frames(),
        }
    }
}

impl<'a> Station<'a> {
    /// A lab host, named `h<index>`.
    pub fn host(host: &'a Host) -> Self {
        Self::interface(
            &format!("h{}", host.index),
            &host.netns,
            HOST_IFNAME,
            host.mac,
            Some(host.ip),
        )
    }

    /// The stack of `netns` behind its interface `ifname`.
    pub fn interface(
        name: &str,
        netns: &'a Netns,
        ifname: &str,
        mac: Mac,
        ip: Option<Ipv4Addr>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            mac,
            ip,
            wire: Wire::Interface {
                netns,
                ifname: ifname.to_owned(),
            },
        }
    }

    /// A VM behind `tap`, sending from `mac`; it has no IP stack.
    pub fn tap(name: &str, tap: &'a Tap, mac: Mac) -> Self {
        Self {
            name: name.to_owned(),
            mac,
            ip: None,
            wire: Wire::Tap(tap),
        }
    }

    /// A probe from this station to `dst`.
    pub fn probe_to(&self, dst: Mac) -> Frame {
        Frame::probe(dst, self.mac)
    }

    /// Sends `frame` from this station.
    pub fn send(&self, frame: &Frame) -> Result<()> {
        match &self.wire {
            Wire::Interface { netns, ifname } => frames::send(netns, ifname, frame),
            Wire::Tap(tap) => tap.send(frame),
        }
        .with_context(|| format!("sending from {}", self.name))
    }

    /// Starts capturing what reaches this station for `duration`; its own frames are left out.
    pub fn capture(&self, duration: Duration) -> Result<Listening> {
        match &self.wire {
            Wire::Interface { netns, ifname } => Capture::start(netns, ifname, duration)
                .map(Listening::Socket)
                .with_context(|| format!("capturing on {}", self.name)),
            Wire::Tap(tap) => Ok(Listening::Tap(tap.capture(duration))),
        }
    }

    /// Pings `target` from this station's stack.
    pub fn ping(&self, target: Ipv4Addr) -> Result<Ping> {
        match &self.wire {
            Wire::Interface { netns, .. } if self.ip.is_some() => devices::ping(netns, target),
            _ => bail!("{} has no IP stack to ping from", self.name),
        }
    }
}

/// Sends every `(sender, frame)` of `sends` (the sender an index into `stations`) while every
/// station captures for `window`; returns, for each frame, the copies each station received
/// (rows follow `sends`, columns `stations`). A sender's own transmission is not counted.
pub fn copies_seen(
    stations: &[Station],
    sends: &[(usize, Frame)],
    window: Duration,
) -> Result<Vec<Vec<usize>>> {
    let captures = stations
        .iter()
        .map(|station| station.capture(window))
        .collect::<Result<Vec<_>>>()?;
    for (sender, frame) in sends {
        stations[*sender].send(frame)?;
    }
    let received = captures
        .into_iter()
        .map(Listening::frames)
        .collect::<Result<Vec<_>>>()?;
    Ok(sends
        .iter()
        .map(|(_, frame)| {
            received
                .iter()
                .map(|frames| frames.iter().filter(|seen| *seen == frame).count())
                .collect()
        })
        .collect())
}

/// A matrix of copies as a table, one row per label and one column per station, for messages.
pub fn table(stations: &[Station], labels: &[String], rows: &[Vec<usize>]) -> String {
    let width = labels.iter().map(String::len).max().unwrap_or(0);
    let mut text = format!("{:width$}", "");
    for station in stations {
        let _ = write!(text, " {:>9}", station.name);
    }
    for (label, row) in labels.iter().zip(rows) {
        let _ = write!(text, "\n{label:width$}");
        for copies in row {
            let _ = write!(text, " {copies:>9}");
        }
    }
    text
}

/// One frame of a round and who should receive it: `copies[i]` copies at `stations[i]`.
#[derive(Clone, Debug)]
pub struct Expect {
    /// Names the frame in messages: "g1 -> g2", "h3 -> broadcast"...
    pub label: String,
    /// The sender, an index into the stations.
    pub from: usize,
    pub frame: Frame,
    pub copies: Vec<usize>,
}

impl Expect {
    /// A probe from station `from` to `dst`, expected `copies` times at each station.
    pub fn probe(stations: &[Station], from: usize, dst: Mac, copies: &[usize]) -> Self {
        let to = stations
            .iter()
            .find(|station| station.mac == dst)
            .map_or_else(
                || {
                    if dst == Mac::BROADCAST {
                        "broadcast".to_owned()
                    } else {
                        dst.to_string()
                    }
                },
                |station| station.name.clone(),
            );
        Self {
            label: format!("{} -> {to}", stations[from].name),
            from,
            frame: stations[from].probe_to(dst),
            copies: copies.to_vec(),
        }
    }
}

/// Sends every frame of `round` while every station captures for `window`, and panics with both
/// tables unless each frame reached exactly the stations it was expected at, as often. `what`
/// names the round.
pub fn assert_round(what: &str, stations: &[Station], round: &[Expect], window: Duration) {
    let sends: Vec<(usize, Frame)> = round
        .iter()
        .map(|expect| (expect.from, expect.frame.clone()))
        .collect();
    let seen =
        copies_seen(stations, &sends, window).unwrap_or_else(|error| panic!("{what}: {error:#}"));
    let expected: Vec<Vec<usize>> = round.iter().map(|expect| expect.copies.clone()).collect();
    let labels: Vec<String> = round.iter().map(|expect| expect.label.clone()).collect();
    assert!(
        seen == expected,
        "{what}: copies each station received\n{}\nexpected\n{}",
        table(stations, &labels, &seen),
        table(stations, &labels, &expected)
    );
}
