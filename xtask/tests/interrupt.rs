//! Interrupting `cargo xtask up`, `repro` and `clients` — as child
//! processes with default signal dispositions — at many points of their
//! runs, chosen from the progress lines they print (not from fixed sleeps),
//! leaves nothing of their testbed: no container (client containers
//! included), network, host link, host
//! address, process or state dir. A SIGKILL leaves only objects that the
//! next `up` of that name removes and that `down --all` would find.
//!
//! The same holds for a scenario interrupted while an impairment's
//! `testbed-netem` daemon runs, and for `cargo xtask soak`.
//!
//! Slots 160-165 of the tests' range (see tests/common in the testbed
//! crate); names `it-*` (with `TESTBED_TEST_PREFIX` in front).

use anyhow::{bail, ensure, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use testbed::model::net::Names;
use testbed::testbed::default_state_root;

#[path = "interrupt/left.rs"]
mod left;
use left::{leftovers, Down};

fn prefix() -> String {
    std::env::var("TESTBED_TEST_PREFIX").unwrap_or_default()
}

/// 198.18.<slot>.0/24 for a base slot in 160..=169, moved as tests/common
/// moves it for a second suite.
fn slot(base: u8) -> u8 {
    let prefixed = !prefix().is_empty();
    let offset: i32 = std::env::var("TESTBED_TEST_SLOT_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if prefixed { -90 } else { 0 });
    (i32::from(base) + offset) as u8
}

/// A topology file for testbed `name` on slot `s`, in a temp folder.
fn topology(name: &str, s: u8) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tb-interrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.toml"));
    let mut text =
        format!("name = \"{name}\"\nsubnet = \"198.18.{s}.0/24\"\nvip = \"198.18.{s}.100\"\n");
    for i in 1..=3 {
        text += &format!("[[nodes]]\nname = \"node{i}\"\nip = \"198.18.{s}.1{i}\"\n");
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1");
    c
}

/// The child's stderr and stdout lines, as they come (progress goes to
/// stderr; soak's fault lines to stdout).
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr is piped");
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(|l| l.ok()) {
            if tx2.send(l).is_err() {
                return;
            }
        }
    });
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(|l| l.ok()) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// Waits (bounded) for the child to end; returns its exit code and the
/// lines it printed after `seen`.
fn finish(
    mut child: Child,
    rx: &mpsc::Receiver<String>,
    limit: Duration,
) -> Result<(i32, Vec<String>)> {
    let start = Instant::now();
    let mut rest = Vec::new();
    loop {
        while let Ok(l) = rx.try_recv() {
            rest.push(l);
        }
        if let Some(st) = child.try_wait()? {
            while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                rest.push(l);
            }
            return Ok((st.code().unwrap_or(128 + 9), rest));
        }
        if start.elapsed() > limit {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
            bail!(
                "the child did not exit within {limit:?} after the signal; it printed: {rest:#?}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `args`, sends `sig` right after the `k`-th line that starts with
/// `marker` (counting from 1), and checks that nothing of `name` is left.
/// Returns whether the signal came before the command had finished.
fn interrupt_at(
    args: &[&str],
    name: &str,
    s: u8,
    marker: &str,
    k: usize,
    sig: i32,
) -> Result<bool> {
    interrupt_checked(args, name, s, marker, k, sig, &|| Ok(()))
}

/// [`interrupt_at`], checking `before` (what must exist when the signal
/// is sent) right before sending it.
fn interrupt_checked(
    args: &[&str],
    name: &str,
    s: u8,
    marker: &str,
    k: usize,
    sig: i32,
    before: &dyn Fn() -> Result<()>,
) -> Result<bool> {
    let mut child = xtask().args(args).spawn().context("spawning xtask")?;
    let rx = lines(&mut child);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let hit = loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(l) => {
                let ours = l.contains(marker);
                seen.push(l);
                if ours && seen.iter().filter(|l| l.contains(marker)).count() == k {
                    break true;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(_) => break false,
        }
    };
    ensure!(
        hit,
        "`{marker}` line {k} never came; the child printed: {seen:#?}"
    );
    if let Err(e) = before() {
        signal(&child, libc::SIGKILL);
        let _ = child.wait();
        let _ = xtask().args(["down", "--name", name]).status();
        bail!("at line {k} of `{marker}`: {e:#}; the child printed: {seen:#?}");
    }
    signal(&child, sig);
    let (code, rest) = finish(child, &rx, Duration::from_secs(90))?;
    let all: Vec<&String> = seen.iter().chain(&rest).collect();
    ensure!(
        code == 130 || code == 0,
        "exit {code} after {sig} at line {k} of `{marker}`: {all:#?}"
    );
    let interrupted = code == 130;
    if interrupted {
        let left = leftovers(name, s)?;
        ensure!(
            left.is_empty(),
            "interrupted after `{}` ({sig}), it left: {left:#?}\nits output: {all:#?}",
            seen.last().map_or("", String::as_str)
        );
    }
    Ok(interrupted)
}

fn require_docker() -> Result<()> {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ensure!(
        ok,
        "these tests interrupt real bring-ups and need a Docker engine: `cargo xtask doctor --fix`"
    );
    Ok(())
}

#[test]
fn ctrl_c_at_any_step_of_up_leaves_nothing() -> Result<()> {
    require_docker()?;
    let name = format!("{}it-up", prefix());
    let s = slot(160);
    let topo = topology(&name, s)?;
    let t = topo.display().to_string();
    let args = ["up", "--no-fix", "--topology", &t];
    let marker = format!("up {name}:");
    let mut interrupted = 0;
    // every progress line of a bring-up but its last ("done"), SIGINT and
    // once SIGTERM: more than eight points, spread over the whole run
    for k in 1..=11 {
        let sig = if k == 6 { libc::SIGTERM } else { libc::SIGINT };
        if interrupt_at(&args, &name, s, &marker, k, sig)? {
            interrupted += 1;
        } else {
            // it had finished: the testbed is up on purpose; remove it
            let st = xtask().args(["down", "--name", &name]).status()?;
            ensure!(st.success());
        }
    }
    ensure!(
        interrupted >= 8,
        "only {interrupted} of 11 signals came before the end"
    );
    Ok(())
}

#[test]
fn ctrl_c_during_a_scenario_leaves_nothing() -> Result<()> {
    require_docker()?;
    let s = slot(161);
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let text = std::fs::read_to_string(fixtures.join("scenarios/kill-master.toml"))?;
    let scenario = format!("{}it-repro", prefix());
    let (file, _cleanup) = own_scenario(&scenario, &text)?;
    let name = format!("rp-{scenario}");
    let f = file.display().to_string();
    let slot_arg = s.to_string();
    let args = ["repro", &f, "--slot", &slot_arg];
    let mut interrupted = 0;
    // during bring-up, then during each step
    let points = [
        (format!("up {name}:"), 2),
        (format!("up {name}:"), 5),
        (format!("up {name}:"), 9),
        (format!("scenario {scenario}:"), 1),
        (format!("scenario {scenario}:"), 2),
        (format!("scenario {scenario}:"), 3),
        (format!("scenario {scenario}:"), 4),
        (format!("scenario {scenario}:"), 5),
        (format!("scenario {scenario}:"), 6),
        (format!("up {name}:"), 11),
    ];
    for (marker, k) in &points {
        if interrupt_at(&args, &name, s, marker, *k, libc::SIGINT)? {
            interrupted += 1;
        }
    }
    ensure!(
        interrupted >= 8,
        "only {interrupted} of {} signals interrupted",
        points.len()
    );
    Ok(())
}

#[test]
fn ctrl_c_during_the_client_matrix_leaves_nothing() -> Result<()> {
    require_docker()?;
    let s = slot(165);
    // the matrix's kill-master scenario under a name of this test's, so its
    // testbed (cm-<scenario>) and its client containers are this test's
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let text = std::fs::read_to_string(fixtures.join("scenarios/clients/kill-master.toml"))?;
    let text = text.replace("topology = \"../../topology.toml\"\n", "");
    let scenario = format!("{}it-clients", prefix());
    let dir = std::env::temp_dir().join(format!("tb-interrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("{scenario}.toml"));
    let topology = fixtures.join("topology.toml").canonicalize()?;
    std::fs::write(
        &file,
        format!(
            "name = \"{scenario}\"\ntopology = \"{}\"\n{text}",
            topology.display()
        ),
    )?;
    let _cleanup = Remove(file.clone());
    let name = format!("cm-{scenario}");
    let f = file.display().to_string();
    let slot_arg = s.to_string();
    // two client programs of two runtimes: their containers must go too
    let args = [
        "clients",
        &f,
        "--client",
        "fred-sentinel,phpredis-vip",
        "--slot",
        &slot_arg,
    ];
    let mut interrupted = 0;
    // during bring-up, with the clients writing, right after the kill
    let points = [
        (format!("up {name}:"), 3),
        (format!("scenario {scenario}:"), 1),
        (format!("scenario {scenario}:"), 3),
    ];
    for (marker, k) in &points {
        if interrupt_at(&args, &name, s, marker, *k, libc::SIGINT)? {
            interrupted += 1;
        }
    }
    ensure!(
        interrupted == points.len(),
        "only {interrupted} of {} signals interrupted",
        points.len()
    );
    Ok(())
}

#[test]
fn a_killed_up_leaves_only_what_the_next_up_and_down_all_find() -> Result<()> {
    require_docker()?;
    let name = format!("{}it-kill9", prefix());
    let s = slot(162);
    let topo = topology(&name, s)?;
    let t = topo.display().to_string();
    let _down = Down(name.clone());
    let mut child = xtask().args(["up", "--no-fix", "--topology", &t]).spawn()?;
    let rx = lines(&mut child);
    let marker = "node2: redis container started";
    let deadline = Instant::now() + Duration::from_secs(120);
    while !rx
        .recv_timeout(Duration::from_secs(1))
        .is_ok_and(|l| l.contains(marker))
    {
        ensure!(Instant::now() < deadline, "no `{marker}` line");
    }
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    let left = leftovers(&name, s)?;
    ensure!(
        !left.is_empty(),
        "a SIGKILL mid-bring-up left nothing to test with"
    );
    // every object is labelled, aliased or named for the testbed: what
    // `down --all` looks for finds each of them
    let rt = tokio::runtime::Runtime::new()?;
    let found = rt.block_on(async {
        let docker = testbed::docker::connect().await?;
        testbed::teardown::leftovers(&docker, None, &default_state_root()).await
    })?;
    // (a host address goes with the shim link it is on)
    for l in left.iter().filter(|l| !l.starts_with("host address")) {
        let what = l.split_whitespace().last().unwrap_or_default();
        ensure!(
            found.iter().any(|f| f.contains(what)),
            "`down --all` would not find {l}: it finds {found:#?}"
        );
    }
    // the next up of that name removes the leftovers and comes up
    let out = xtask()
        .args(["up", "--no-fix", "--topology", &t])
        .stderr(Stdio::piped())
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "the next up failed: {err}");
    ensure!(err.contains("leftovers of an earlier run"), "{err}");
    let st = xtask().args(["down", "--name", &name]).status()?;
    ensure!(st.success());
    let left = leftovers(&name, s)?;
    ensure!(left.is_empty(), "{left:#?}");
    Ok(())
}

/// A scenario file of the test's own (so its testbed, rp-<scenario>, is the
/// test's), in a temp folder removed when the guard drops.
fn own_scenario(scenario: &str, body: &str) -> Result<(PathBuf, Remove)> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let dir = std::env::temp_dir().join(format!("tb-interrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("{scenario}.toml"));
    let topology = fixtures.join("topology.toml").canonicalize()?;
    std::fs::write(
        &file,
        format!(
            "name = \"{scenario}\"\ntopology = \"{}\"\n{body}",
            topology.display()
        ),
    )?;
    Ok((file.clone(), Remove(file)))
}

#[test]
fn ctrl_c_while_an_impairment_daemon_runs_leaves_no_daemon() -> Result<()> {
    require_docker()?;
    let s = slot(163);
    let scenario = format!("{}it-impair", prefix());
    // delay and loss on the master (two daemons' worth of rules on one
    // node), then a long hold: the signal lands while the daemon serves
    let body = r#"description = "an impaired master, held"
[[step]]
action = "delay"
a = ["master"]
b = []
ms = 30
[[step]]
action = "loss"
a = ["node2"]
b = ["node3"]
percent = 5
[[step]]
action = "sleep"
ms = 30000
[[step]]
action = "heal"
"#;
    let (file, _cleanup) = own_scenario(&scenario, body)?;
    let name = format!("rp-{scenario}");
    let f = file.display().to_string();
    let slot_arg = s.to_string();
    let args = ["repro", &f, "--slot", &slot_arg];
    let marker = format!("scenario {scenario}:");
    let mut interrupted = 0;
    // after the delay (line 2: the loss step starts), during the hold
    // (line 3), once with SIGTERM
    // the signal must land while a daemon of this testbed runs
    let daemon_runs = || -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while testbed::faults::impair::all_daemons()
            .iter()
            .all(|(_, t)| *t != name)
        {
            ensure!(
                Instant::now() < deadline,
                "no testbed-netem of {name} ran within 10 s of the delay step"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    };
    for (k, sig) in [(2, libc::SIGINT), (3, libc::SIGINT), (3, libc::SIGTERM)] {
        if interrupt_checked(&args, &name, s, &marker, k, sig, &daemon_runs)? {
            interrupted += 1;
        }
    }
    ensure!(
        interrupted == 3,
        "only {interrupted} of 3 signals interrupted"
    );
    Ok(())
}

#[test]
fn ctrl_c_during_a_soak_leaves_nothing() -> Result<()> {
    require_docker()?;
    let name = format!("{}it-soak", prefix());
    let s = slot(164);
    let slot_arg = s.to_string();
    let args = [
        "soak",
        "--minutes",
        "2",
        "--seed",
        "7",
        "--name",
        &name,
        "--slot",
        &slot_arg,
    ];
    let up = format!("up {name}:");
    // during bring-up, then after the first and the second fault (the
    // next one's apply, hold or repair is in flight)
    let points = [
        (up.as_str(), 3, libc::SIGINT),
        (up.as_str(), 8, libc::SIGTERM),
        ("  #1 ", 1, libc::SIGINT),
        ("  #2 ", 1, libc::SIGINT),
    ];
    let mut interrupted = 0;
    for (marker, k, sig) in points {
        if interrupt_at(&args, &name, s, marker, k, sig)? {
            interrupted += 1;
        }
    }
    ensure!(
        interrupted == 4,
        "only {interrupted} of 4 signals interrupted"
    );
    Ok(())
}

/// Removes a file when dropped.
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(Path::new(&self.0));
    }
}
