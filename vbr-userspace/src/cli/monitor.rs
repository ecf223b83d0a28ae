//! `vbr monitor`: FDB events from the agent, as they happen.
use anyhow::{Context as _, bail};
use vbr::{
    control::{self, Request},
    event::Event,
};

pub fn run(json: bool) -> anyhow::Result<()> {
    let Some(stream) = control::connect()? else {
        bail!("no vbr agent runs in this network namespace: nothing to monitor");
    };
    for line in control::send(stream, &Request::Monitor)? {
        let line = line.context("reading from the vbr agent")?;
        if json {
            println!("{line}");
            continue;
        }
        match serde_json::from_str::<Event>(&line) {
            Ok(event) => println!("{}", event.line()),
            // A refusal (not root) comes as a reply, not an event.
            Err(_) => bail!("the agent says: {line}"),
        }
    }
    Ok(())
}
