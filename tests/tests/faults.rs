//! End to end: the faults a hypervisor host throws at the agent (README, "Running the agent on a
//! hypervisor host", Faults) — killed while applying its config, a port deleted under traffic,
//! pins removed by hand, a config truncated mid-write — and who may touch a bridge at all.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use vbr_tests::agent::{Options, READY_TIMEOUT};
use vbr_tests::cli::pin_dir;
use vbr_tests::config::config_toml;
use vbr_tests::{Agent, Bridge, Cli, Lab, cmd, netns, vbr_bin};

const POLL: Duration = Duration::from_millis(50);
/// How long a condition the agent brings about may take.
const SETTLE: Duration = Duration::from_secs(5);
/// Pins removed by hand are noticed within a second (the agent checks every second); rebuilding
/// takes a little more.
const REBUILT_WITHIN: Duration = Duration::from_secs(2);

/// The names in `bridge`'s `links/` pin folder (`<ifindex>` for XDP, `<ifindex>-tc` for TC);
/// empty if there is none.
fn links(bridge: &str) -> BTreeSet<String> {
    fs::read_dir(pin_dir(bridge).join("links"))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The links `bridge`'s ports should have, from what `vbr port show` says of them: native XDP
/// ports have an XDP link and a TC one (for the frames they hand to the skb path), generic XDP
/// ports an XDP link, TC ports a TC link.
fn expected_links(cli: &Cli, bridge: &Bridge) -> BTreeSet<String> {
    cli.port_show(&bridge.name)
        .expect("vbr port show")
        .iter()
        .flat_map(|port| {
            let (xdp, tc) = match port.mode.as_str() {
                "xdp-native" => (true, true),
                "xdp-generic" => (true, false),
                _ => (false, true),
            };
            let ifindex = port.ifindex;
            [
                xdp.then(|| ifindex.to_string()),
                tc.then(|| format!("{ifindex}-tc")),
            ]
        })
        .flatten()
        .collect()
}

/// The ports `vbr port show` lists for `bridge`, with whether each is attached.
fn ports_shown(cli: &Cli, bridge: &str) -> Vec<(String, bool)> {
    cli.port_show(bridge)
        .expect("vbr port show")
        .into_iter()
        .map(|port| (port.ifname, port.attached))
        .collect()
}

/// `bridge`'s ports, each attached, as `vbr port show` lists them.
fn all_attached(bridge: &Bridge) -> Vec<(String, bool)> {
    bridge
        .ports
        .iter()
        .map(|port| (port.ifname.clone(), true))
        .collect()
}

/// When a test kills an agent that is applying its config.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// Right after spawning it.
    Spawned,
    /// This long after spawning it.
    After(Duration),
    /// As soon as the bridge's pin folder exists.
    PinsAppear,
    /// As soon as this many links are pinned.
    Links(usize),
}

/// What an agent killed at some point left of `bridge`, for the test's output.
fn remains(bridge: &str) -> String {
    let pins = pin_dir(bridge);
    format!(
        "pin folder {}, info map {}, {} links",
        if pins.exists() { "present" } else { "absent" },
        if pins.join("info").exists() {
            "present"
        } else {
            "absent"
        },
        links(bridge).len()
    )
}

#[test]
fn an_agent_killed_while_applying_its_config_is_followed_by_one_that_converges() {
    const KILLS: [KillAt; 6] = [
        KillAt::Spawned,
        KillAt::After(Duration::from_millis(20)),
        KillAt::PinsAppear,
        KillAt::After(Duration::from_millis(60)),
        KillAt::Links(3),
        KillAt::Links(10),
    ];
    const KEPT: usize = 7;
    let vbr = vbr_bin();
    let lab = Lab::silent(9).expect("building the lab");
    let all: Vec<usize> = (1..=9).collect();
    let full = lab.bridge(&all);
    let name = full.name.clone();
    let config = lab
        .write_config(std::slice::from_ref(&full))
        .expect("writing the config");

    let mut killed = String::new();
    for kill_at in KILLS {
        let mut agent = Agent::spawn(
            &lab,
            &vbr,
            &config,
            std::slice::from_ref(&full),
            &Options::keep_bridges(),
        )
        .expect("spawning the agent");
        let spawned = Instant::now();
        let reached = match kill_at {
            KillAt::Spawned => true,
            KillAt::After(delay) => {
                thread::sleep(delay);
                true
            }
            KillAt::PinsAppear => {
                vbr_tests::poll_until(READY_TIMEOUT, Duration::from_millis(1), || {
                    pin_dir(&name).exists()
                })
            }
            KillAt::Links(count) => {
                vbr_tests::poll_until(READY_TIMEOUT, Duration::from_millis(1), || {
                    links(&name).len() >= count
                })
            }
        };
        let running = agent.is_running().expect("polling the agent");
        let exit = agent.kill().expect("killing the agent");
        let summary = format!(
            "killed at {kill_at:?} ({}), {:?} after spawning, {}: left {}",
            if reached { "reached" } else { "not reached" },
            spawned.elapsed(),
            if running {
                "while running".to_owned()
            } else {
                format!("but it had exited: {}", exit.status)
            },
            remains(&name)
        );
        eprintln!("{summary}");
        killed += &format!("--- {summary}\n{}", exit.stderr);
        assert!(
            running || exit.status.success(),
            "the agent failed on its own before it was killed ({}):\n{}",
            exit.status,
            exit.stderr
        );
        assert!(
            !running || exit.status.signal() == Some(libc::SIGKILL),
            "the agent did not die of SIGKILL: {}",
            exit.status
        );
    }

    // A normal agent, with two ports fewer: it converges to its config, the killed agents'
    // ports and links included.
    let kept = Bridge {
        ports: full.ports[..KEPT].to_vec(),
        ..full.clone()
    };
    let config = lab
        .write_config(std::slice::from_ref(&kept))
        .expect("writing the config");
    let agent = Agent::start_with(
        &lab,
        &vbr,
        &config,
        std::slice::from_ref(&kept),
        &Options::default(),
    )
    .expect("starting an agent after the killed ones");
    let cli = agent.cli();
    assert_eq!(
        ports_shown(cli, &name),
        all_attached(&kept),
        "ports after the killed agents; their logs:\n{killed}"
    );
    assert_eq!(
        links(&name),
        expected_links(cli, &kept),
        "pinned links after the killed agents (ports: {:#?}); their logs:\n{killed}",
        cli.port_show(&name)
    );
    for host in &lab.hosts()[KEPT..] {
        assert!(
            !lab.switch().has_xdp(&host.port).expect("ip link"),
            "XDP program left on {}, which the config no longer lists",
            host.port
        );
    }
    lab.ping_pairs(&[(1, 2), (3, 4), (5, 6), (7, 1)])
        .expect("pings after the killed agents");
    let exit = agent.stop().expect("stopping the agent");
    assert!(exit.status.success(), "{}\n{}", exit.status, exit.stderr);
    assert!(
        exit.leftover_pins.is_empty(),
        "pins left: {:?}",
        exit.leftover_pins
    );
}

#[test]
fn a_port_deleted_under_traffic_is_taken_out_of_its_bridge() {
    const PINGS: u32 = 300;
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let bridge = lab.bridge(&[1, 2, 3]);
    let mut agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli().clone();
    lab.ping_pairs(&[(1, 2), (3, 1)])
        .expect("pings before the deletion");
    let ifindex = lab.switch().ifindex(&h3.port).expect("h3's port");
    let stream = h1
        .ping_stream(h2.ip, PINGS, Duration::from_millis(10))
        .expect("starting h1's pings to h2");

    thread::sleep(Duration::from_secs(1));
    lab.switch()
        .ip(&["link", "del", &h3.port])
        .expect("deleting h3's port");
    let remaining = all_attached(&Bridge {
        ports: bridge.ports[..2].to_vec(),
        ..bridge.clone()
    });
    assert!(
        vbr_tests::poll_until(SETTLE, POLL, || ports_shown(&cli, &bridge.name)
            == remaining),
        "ports {SETTLE:?} after h3's was deleted: {:#?}\n{}",
        cli.port_show(&bridge.name),
        agent.logs()
    );
    let stale: Vec<String> = links(&bridge.name)
        .into_iter()
        .filter(|link| link.split('-').next() == Some(&ifindex.to_string()))
        .collect();
    assert!(
        stale.is_empty(),
        "links left of the deleted port: {stale:?}"
    );
    assert!(
        agent.is_running().expect("polling the agent"),
        "the agent died when a port vanished:\n{}",
        agent.logs()
    );
    let logs = agent.logs();
    assert!(
        logs.lines()
            .any(|line| line.contains("port vanished") && line.contains(&h3.port)),
        "the agent's log does not say that {} vanished:\n{logs}",
        h3.port
    );

    let summary = stream
        .finish(Duration::from_secs(30))
        .expect("h1's pings to h2");
    eprintln!(
        "h1 -> h2 while h3's port was deleted: {} sent, {} answered",
        summary.transmitted, summary.received
    );
    assert_eq!(
        (summary.transmitted, summary.received),
        (PINGS, PINGS),
        "pings lost between h1 and h2 while h3's port was deleted:\n{}",
        summary.output
    );
    lab.ping_pairs(&[(2, 1)])
        .expect("h2 -> h1 after the deletion");
}

#[test]
fn pins_removed_by_hand_are_noticed_and_the_bridge_rebuilt() {
    let vbr = vbr_bin();
    let lab = Lab::new(3).expect("building the lab");
    let bridge = lab.bridge(&[1, 2, 3]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    lab.ping_pairs(&[(1, 2)]).expect("pings before");
    let expected = expected_links(cli, &bridge);

    let pins = pin_dir(&bridge.name);
    fs::remove_dir_all(&pins).expect("removing the bridge's pins");
    let removed = Instant::now();
    let rebuilt = vbr_tests::poll_until(REBUILT_WITHIN * 2, POLL, || {
        pins.join("info").exists()
            && links(&bridge.name) == expected
            && cli
                .port_show(&bridge.name)
                .is_ok_and(|ports| ports.len() == 3 && ports.iter().all(|port| port.attached))
    });
    let took = removed.elapsed();
    eprintln!("pins removed by hand: bridge rebuilt after {took:?}");
    assert!(
        rebuilt,
        "bridge not rebuilt {:?} after its pins were removed: pins {:?}, links {:?}, ports {:#?}\n{}",
        REBUILT_WITHIN * 2,
        fs::read_dir(&pins).map(|dir| dir.count()),
        links(&bridge.name),
        cli.port_show(&bridge.name),
        agent.logs()
    );
    assert!(
        took <= REBUILT_WITHIN,
        "bridge rebuilt only {took:?} after its pins were removed (expected within {REBUILT_WITHIN:?})"
    );
    let logs = agent.logs();
    assert!(
        logs.lines()
            .any(|line| line.contains("removed by hand") && line.contains(&bridge.name)),
        "the agent's log does not say that it rebuilt {}:\n{logs}",
        bridge.name
    );
    lab.ping_pairs(&[(1, 2), (2, 3), (3, 1)])
        .expect("pings after the rebuild");
}

#[test]
fn a_config_truncated_mid_write_is_refused_by_reload() {
    let vbr = vbr_bin();
    let lab = Lab::new(2).expect("building the lab");
    let bridge = lab.bridge(&[1, 2]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();
    let path = agent.config();
    let full = config_toml(std::slice::from_ref(&bridge));
    let ports = cli.port_show(&bridge.name).expect("vbr port show");

    // Cut inside the second port's name: an unterminated string.
    let second = full
        .rfind(&bridge.ports[1].ifname)
        .expect("the second port in the config");
    let truncated = &full[..second + 3];
    fs::write(path, truncated).expect("truncating the config");
    let output = cli
        .output(&["agent", "reload"])
        .expect("running vbr agent reload");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("reload of a truncated config: {}", stderr.trim());
    assert!(
        !output.status.success(),
        "reload accepted a truncated config:\n{truncated}"
    );
    let shown = path.display().to_string();
    assert!(
        stderr.contains(&shown),
        "the refusal does not name {shown}:\n{stderr}"
    );
    assert!(
        stderr.contains("line") && stderr.contains("column"),
        "the refusal does not say where the file breaks off:\n{stderr}"
    );
    assert_eq!(
        cli.port_show(&bridge.name).expect("vbr port show"),
        ports,
        "ports changed by a refused reload"
    );
    lab.ping_pairs(&[(1, 2)])
        .expect("h1 -> h2 after the refused reload");

    // Cut before anything was written (a shell's `>` truncates first): no bridge at all.
    fs::write(path, "").expect("emptying the config");
    let output = cli
        .output(&["agent", "reload"])
        .expect("running vbr agent reload");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("reload of an empty config: {}", stderr.trim());
    assert!(!output.status.success(), "reload accepted an empty config");
    assert!(
        stderr.contains("no bridge"),
        "the refusal of an empty config does not say why:\n{stderr}"
    );
    assert_eq!(
        cli.port_show(&bridge.name).expect("vbr port show"),
        ports,
        "ports changed by a refused reload of an empty config"
    );

    // Written whole again, the same file reloads.
    fs::write(path, &full).expect("restoring the config");
    cli.reload().expect("reload of the restored config");
    lab.ping_pairs(&[(2, 1)])
        .expect("h2 -> h1 after the restored config");
}

/// The uid and gid of `nobody`.
fn nobody() -> (libc::uid_t, libc::gid_t) {
    let name = CString::new("nobody").expect("a C string");
    // SAFETY: getpwnam with a valid C string; the fields are read at once, before another call.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!entry.is_null(), "no user nobody on this machine");
    // SAFETY: entry is non-null and points at getpwnam's static buffer.
    unsafe { ((*entry).pw_uid, (*entry).pw_gid) }
}

/// Mode bits of everything under `dir` that are not root-only (0700 folders, 0600 files) or not
/// owned by root, as "path: mode uid".
fn not_root_only(dir: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).expect("stat a pin");
        let mode = meta.permissions().mode() & 0o7777;
        let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
        if mode != wanted || meta.uid() != 0 {
            wrong.push(format!("{}: {mode:o} uid {}", path.display(), meta.uid()));
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&path).expect("list a pin folder") {
                stack.push(entry.expect("a pin").path());
            }
        }
    }
    wrong
}

/// Runs `vbr ARGS` in the switch namespace as `nobody`.
fn vbr_as_nobody(vbr: &Path, lab: &Lab, args: &[&str]) -> std::process::Output {
    let (uid, gid) = nobody();
    let netns = File::open(lab.switch().path()).expect("opening the switch namespace");
    let fd = netns.as_raw_fd();
    let mut command = Command::new(vbr);
    command.args(args);
    // SAFETY: between fork and exec the closure only makes raw system calls, which are
    // async-signal-safe; the child has a single thread, so setresuid changes all of it.
    unsafe {
        command.pre_exec(move || {
            let check = |result: libc::c_int| {
                if result == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            check(libc::setns(fd, libc::CLONE_NEWNET))?;
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setresgid(gid, gid, gid))?;
            check(libc::setresuid(uid, uid, uid))
        });
    }
    let output = cmd::run(&mut command, Duration::from_secs(10)).expect("running vbr as nobody");
    drop(netns);
    output
}

/// Sends one control request (a JSON line) to the agent of the lab's switch namespace from a
/// thread running as `nobody` (a thread's credentials are its own to the kernel, and the agent
/// reads its peer's from the socket), and returns the reply line, or what the agent did instead.
fn request_as_nobody(lab: &Lab, request: &str) -> String {
    let (uid, gid) = nobody();
    let netns = lab.switch().path();
    let request = request.to_owned();
    thread::spawn(move || -> String {
        netns::enter(&netns).expect("entering the switch namespace");
        // SAFETY: raw system calls, which unlike libc's wrappers change only this thread's
        // credentials; the thread ends with this function.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()),
                0
            );
            assert_eq!(libc::syscall(libc::SYS_setresgid, gid, gid, gid), 0);
            assert_eq!(libc::syscall(libc::SYS_setresuid, uid, uid, uid), 0);
        }
        let address = SocketAddr::from_abstract_name(b"vbr-agent").expect("the agent's address");
        let mut stream = match UnixStream::connect_addr(&address) {
            Ok(stream) => stream,
            Err(error) => return format!("connection refused: {error}"),
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a read timeout");
        if let Err(error) = stream.write_all(format!("{request}\n").as_bytes()) {
            return format!("request refused: {error}");
        }
        let mut reply = String::new();
        match BufReader::new(stream).read_line(&mut reply) {
            Ok(_) => reply,
            Err(error) => format!("no reply: {error}"),
        }
    })
    .join()
    .expect("the nobody thread")
}

#[test]
fn pins_are_root_only_and_so_is_the_agent() {
    let vbr = vbr_bin();
    let lab = Lab::new(2).expect("building the lab");
    let bridge = lab.bridge(&[1, 2]);
    let agent =
        Agent::start(&lab, &vbr, std::slice::from_ref(&bridge)).expect("starting the agent");
    let cli = agent.cli();

    let pins = pin_dir(&bridge.name);
    let wrong = not_root_only(&pins);
    assert!(
        wrong.is_empty(),
        "pins under {} not root-only (0700 folders, 0600 files):\n{}",
        pins.display(),
        wrong.join("\n")
    );

    for args in [
        &["port", "show"][..],
        &["fdb", "show", "-j"],
        &["agent", "reload"],
        &["bridge", "del", &bridge.name],
    ] {
        let output = vbr_as_nobody(&vbr, &lab, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "`vbr {}` succeeded as nobody: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            stderr.contains("needs root"),
            "`vbr {}` as nobody does not say it needs root:\n{stderr}",
            args.join(" ")
        );
    }

    // Past the CLI, straight to the control socket.
    for request in [
        format!(r#"{{"request":"bridge_del","name":"{}"}}"#, bridge.name),
        r#"{"request":"monitor"}"#.to_owned(),
        r#"{"request":"reload"}"#.to_owned(),
    ] {
        let reply = request_as_nobody(&lab, &request);
        eprintln!("{request} as nobody: {}", reply.trim());
        let refused = serde_json::from_str::<serde_json::Value>(&reply).is_ok_and(|reply| {
            reply["ok"] == false && reply["error"].as_str().is_some_and(|e| e.contains("root"))
        });
        assert!(
            refused,
            "the agent did not refuse {request} from nobody: {reply:?}"
        );
    }
    assert_eq!(
        ports_shown(cli, &bridge.name),
        all_attached(&bridge),
        "ports after nobody's requests"
    );
    assert!(pins.join("info").exists(), "the bridge's pins are gone");
    lab.ping_pairs(&[(1, 2)])
        .expect("h1 -> h2 after nobody's requests");
}
