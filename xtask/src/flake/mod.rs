//! `cargo xtask flake`: README's test command again and again, and what it
//! adds up to — how many runs passed, what failed and what it said, which
//! binaries and tests are slowest. Writes target/testbed/flake/<UTC>/:
//! `run-NN.log` (everything the run printed, a timestamp per line),
//! `flake.md`, `flake.json`, rewritten after every run.
//!
//! Invariants: a run is `cargo test --workspace --no-fail-fast` (the same
//! pass/fail as README's `cargo test --workspace`, but every binary runs, so
//! one run shows every failure and every time) in its own process group, with
//! `TESTBED_TEST_PREFIX` set when `--prefix` is given, so two `flake`s run
//! side by side on separate testbed names and slots. Ctrl-C or SIGTERM is
//! passed to that group — each test binary then removes its own testbeds —
//! and the command waits for the group's leader to exit before it returns
//! `Interrupted`; the interrupted run is kept as such and counted neither as
//! passed nor as failed. `--join` only reads logs: it runs nothing.

pub mod markdown;
pub mod parse;

use crate::flags::FlakeArgs;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use testbed::progress::Progress;
use tokio::io::{AsyncBufReadExt, BufReader};

const COMMAND: &str = "cargo test --workspace";

pub async fn run(args: &FlakeArgs, state_root: &Path) -> Result<()> {
    if !args.join.is_empty() {
        return join(&args.join, args.out.as_deref(), state_root);
    }
    let prefix = args.prefix.clone().unwrap_or_default();
    check_prefix(&prefix)?;
    testbed::testbed::interrupt::install();
    let started = SystemTime::now();
    let dir = args.out.clone().unwrap_or_else(|| {
        state_root.join("flake").join(format!(
            "{}{}",
            testbed::report::utc_compact(started),
            suffix(&prefix)
        ))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let commit = commit();
    let threads = test_threads();
    let progress = Progress::new("flake");
    progress.step(format!(
        "{} runs of `{COMMAND}`{} (threads {threads}, commit {commit}); logs in {}",
        args.runs,
        if prefix.is_empty() {
            String::new()
        } else {
            format!(" with TESTBED_TEST_PREFIX={prefix}")
        },
        dir.display()
    ));
    let mut runs = Vec::new();
    let mut outcome = Ok(());
    for i in 1..=args.runs {
        if let Err(e) = testbed::testbed::interrupt::check("between two runs of the test command") {
            outcome = Err(e.into());
            break;
        }
        let log = dir.join(format!("run-{i:02}.log"));
        let header = format!(
            "# flake run={i} prefix={prefix} threads={threads} commit={commit} started={}",
            testbed::report::utc_iso(SystemTime::now())
        );
        let ran = one_run(&log, &header, &prefix).await;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let r = parse::parse(&text);
        let verdict = if r.unfinished() {
            "interrupted or unfinished".to_string()
        } else if r.passed() {
            "passed".to_string()
        } else {
            let failed: Vec<String> = r
                .failed()
                .map(|t| format!("{} {}", t.binary, t.name))
                .collect();
            format!("FAILED (exit {:?}): {}", r.exit, failed.join(", "))
        };
        progress.step(format!(
            "run {i}/{}: {verdict} in {:.0} s",
            args.runs,
            r.elapsed_s.unwrap_or(0.0)
        ));
        runs.push(r);
        write_summary(&dir, &runs)?;
        if let Err(e) = ran {
            outcome = Err(e);
            break;
        }
    }
    let t = markdown::totals(&runs);
    progress.done(format!(
        "{} of {} runs passed, {} failed, {} interrupted; {}",
        t.passed,
        t.runs,
        t.failed,
        t.interrupted,
        dir.join("flake.md").display()
    ));
    outcome
}

/// `-fl` for prefix `fl-`: the folder says which stream it is.
fn suffix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("-{}", prefix.trim_end_matches('-'))
    }
}

/// A prefix keeps the tests' testbed names valid (lowercase letters,
/// digits, `-`; the longest test name leaves room for 4).
fn check_prefix(p: &str) -> Result<()> {
    if p.len() > 4
        || !p
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!(
            "--prefix {p:?}: use at most 4 lowercase letters, digits or '-' (e.g. fl-): \
             it goes in front of every test's testbed name"
        );
    }
    Ok(())
}

/// libtest's thread count: `RUST_TEST_THREADS`, else the CPUs.
fn test_threads() -> usize {
    std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The checked-out commit (`+dirty` when the tree has changes).
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(crate::paths::root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}+dirty")
    } else {
        head
    }
}

/// One run of the test command, its output into `log`; `Err(Interrupted)`
/// after passing a signal on and waiting for the run to end.
async fn one_run(log: &Path, header: &str, prefix: &str) -> Result<()> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let out = Arc::new(Mutex::new(std::io::BufWriter::new(file)));
    writeln!(out.lock().expect("log lock"), "{header}")?;
    let start = Instant::now();
    let mut cmd =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .current_dir(crate::paths::root())
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    undo_cargo_run(&mut cmd);
    if prefix.is_empty() {
        cmd.env_remove("TESTBED_TEST_PREFIX");
    } else {
        cmd.env("TESTBED_TEST_PREFIX", prefix);
    }
    let mut child = cmd.spawn().context("starting `cargo test --workspace`")?;
    let pid = child
        .id()
        .context("the test command exited before it could be watched")? as i32;
    let copy = |stream: Box<dyn tokio::io::AsyncRead + Unpin + Send>, tag: char| {
        let out = out.clone();
        tokio::spawn(async move {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            while matches!(r.read_until(b'\n', &mut buf).await, Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches(['\n', '\r']);
                let t = start.elapsed().as_secs_f64();
                let _ = writeln!(out.lock().expect("log lock"), "{t:>10.3} {tag} {text}");
                buf.clear();
            }
        })
    };
    let watch = stall_watch(out.clone(), start);
    let o = copy(Box::new(child.stdout.take().expect("piped")), 'o');
    let e = copy(Box::new(child.stderr.take().expect("piped")), 'e');
    let mut interrupted = None;
    let status = tokio::select! {
        s = child.wait() => s?,
        _ = testbed::testbed::interrupt::cancelled() => {
            let sig = match testbed::testbed::interrupt::interrupted() {
                Some("SIGTERM") => libc::SIGTERM,
                _ => libc::SIGINT,
            };
            // SAFETY: a signal to the process group this command made
            unsafe { libc::killpg(pid, sig) };
            interrupted = Some(sig);
            child.wait().await?
        }
    };
    let _ = o.await;
    let _ = e.await;
    watch.stop();
    let mut w = out.lock().expect("log lock");
    let elapsed = start.elapsed().as_secs_f64();
    match (interrupted, status.code()) {
        (Some(_), _) => writeln!(w, "# end interrupted=true elapsed={elapsed:.1}")?,
        (None, Some(c)) => writeln!(w, "# end exit={c} interrupted=false elapsed={elapsed:.1}")?,
        (None, None) => writeln!(
            w,
            "# end exit=-1 interrupted=false elapsed={elapsed:.1} signal=true"
        )?,
    }
    w.flush()?;
    drop(w);
    if interrupted.is_some() {
        testbed::testbed::interrupt::check("a run of the test command")?;
    }
    Ok(())
}

/// The variables `cargo run` gave this command (`cargo xtask` is `cargo
/// run -p xtask`): the xtask package's own `CARGO_PKG_*`, manifest and crate
/// names, and its library paths in front of `LD_LIBRARY_PATH`. Left in, the
/// nested `cargo test` sees another environment than README's command in a
/// shell and rebuilds the crates whose build scripts watch them (ring,
/// rustls, bollard, the workspace: a minute per run).
fn undo_cargo_run(cmd: &mut tokio::process::Command) {
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        let set_by_run = k.starts_with("CARGO_PKG_")
            || matches!(
                k,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "OUT_DIR"
            );
        if set_by_run {
            cmd.env_remove(k);
        }
    }
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| crate::paths::root().join("target"));
        let kept: Vec<PathBuf> = std::env::split_paths(&paths)
            .filter(|p| {
                !p.starts_with(&target) && !p.components().any(|c| c.as_os_str() == "rustlib")
            })
            .filter(|p| !p.ends_with("lib") || !p.to_string_lossy().contains("/toolchains/"))
            .collect();
        if kept.is_empty() {
            cmd.env_remove("LD_LIBRARY_PATH");
        } else if let Ok(joined) = std::env::join_paths(kept) {
            cmd.env("LD_LIBRARY_PATH", joined);
        }
    }
}

/// A sleep of this long that takes over [`STALL`] by either clock is a stall
/// of the whole machine (a VM paused or snapshotted, a starved scheduler, a
/// stepped wall clock): Sentinel enters TILT for 30 s when its 100 ms timer
/// sees more than 2 s pass, so such a stall can fail a test on its own.
const TICK: std::time::Duration = std::time::Duration::from_millis(100);
const STALL: f64 = 1.5;

/// Stops the watcher thread when told (or dropped).
struct StallWatch(Arc<std::sync::atomic::AtomicBool>);

impl StallWatch {
    fn stop(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for StallWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `# stall t=S mono=M wall=W` into the log for every tick that took
/// over [`STALL`] seconds by the monotonic or the wall clock (measured by
/// this process, outside the tests).
fn stall_watch(out: Arc<Mutex<std::io::BufWriter<std::fs::File>>>, start: Instant) -> StallWatch {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let (mut mono, mut wall) = (Instant::now(), SystemTime::now());
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(TICK);
            let (m, w) = (Instant::now(), SystemTime::now());
            let dm = m.duration_since(mono).as_secs_f64();
            let dw = match w.duration_since(wall) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            };
            if dm > STALL || !(0.0..=STALL).contains(&dw) {
                let t = start.elapsed().as_secs_f64();
                let _ = writeln!(
                    out.lock().expect("log lock"),
                    "# stall t={t:.3} mono={dm:.3} wall={dw:.3}"
                );
            }
            (mono, wall) = (m, w);
        }
    });
    StallWatch(stop)
}

fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} CPUs, Linux {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel.trim()
    )
}

fn write_summary(dir: &Path, runs: &[parse::Run]) -> Result<()> {
    let meta = markdown::Meta {
        command: COMMAND.into(),
        machine: machine(),
        made_utc: testbed::report::utc_iso(SystemTime::now()),
    };
    std::fs::write(dir.join("flake.md"), markdown::render(runs, &meta))?;
    let json = serde_json::json!({
        "meta": meta,
        "totals": markdown::totals(runs),
        "slowest": markdown::slowest(runs, 10),
        "runs": runs,
    });
    std::fs::write(dir.join("flake.json"), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

/// Reads the logs of earlier `flake` folders (e.g. two streams run side by
/// side) into one table, runs in the order they started.
fn join(dirs: &[PathBuf], out: Option<&Path>, state_root: &Path) -> Result<()> {
    let mut runs = Vec::new();
    for d in dirs {
        let d = crate::paths::resolve(d);
        let entries = std::fs::read_dir(&d).with_context(|| {
            format!(
                "--join {}: not a folder `cargo xtask flake` wrote",
                d.display()
            )
        })?;
        let mut logs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        if logs.is_empty() {
            bail!(
                "--join {}: no run-NN.log in it (made by `cargo xtask flake`)",
                d.display()
            );
        }
        logs.sort();
        for l in logs {
            let text =
                std::fs::read_to_string(&l).with_context(|| format!("reading {}", l.display()))?;
            runs.push(parse::parse(&text));
        }
    }
    runs.sort_by(|a, b| a.started_utc.cmp(&b.started_utc));
    let dir = out.map(Path::to_path_buf).unwrap_or_else(|| {
        state_root.join("flake").join(format!(
            "joined-{}",
            testbed::report::utc_compact(SystemTime::now())
        ))
    });
    std::fs::create_dir_all(&dir)?;
    write_summary(&dir, &runs)?;
    let t = markdown::totals(&runs);
    println!(
        "{} runs: {} passed, {} failed, {} interrupted, longest streak {}; {}",
        t.runs,
        t.passed,
        t.failed,
        t.interrupted,
        t.longest_streak,
        dir.join("flake.md").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_must_keep_test_names_valid() {
        assert!(check_prefix("").is_ok() && check_prefix("fl-").is_ok());
        let e = check_prefix("FL_").unwrap_err().to_string();
        assert!(
            e.contains("--prefix \"FL_\"") && e.contains("e.g. fl-"),
            "{e}"
        );
        assert!(check_prefix("toolong-").is_err());
        assert_eq!(suffix("fl-"), "-fl");
    }
}
