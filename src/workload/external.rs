//! An external client: any command (a redis-py script, a Go or Java
//! program...) that writes through its own client library while a scenario
//! runs and prints one JSON line per operation, so other client libraries are
//! tested by the same checker as the built-in workload.
//!
//! The protocol (README "External clients"): the command gets the testbed's
//! addresses in `TESTBED_*` variables, writes key `<TESTBED_KEY_PREFIX><id>`,
//! prints `{"id","invoke_ms","complete_ms","outcome"[,"error"]}` per write
//! with times in ms since `TESTBED_T0_UNIX_MS` (the timeline's origin), and
//! stops at SIGTERM.
//!
//! Invariants: the child never outlives the run (SIGTERM when the steps end,
//! SIGKILL after [`GRACE`], and `kill_on_drop` for an aborted run); its
//! keys never collide with the built-in workload's (`wl:<name>:<id>` vs
//! `wl:<id>`).

use crate::error::{Error, Result};
use crate::observe::timeline::Kind;
use crate::testbed::Testbed;
use crate::workload::checker;
use crate::workload::{self, Op};
use serde::Serialize;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::task::JoinHandle;

/// How long a client gets to exit after SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long a client gets to print its first operation.
pub const FIRST_OP: Duration = Duration::from_secs(15);

/// What to run (from a scenario's `[external_client]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExternalSpec {
    /// The process name in the history and in key names.
    pub name: String,
    /// argv; a first word with a `/` is relative to `dir`.
    pub command: Vec<String>,
    /// The working directory: the scenario file's folder.
    pub dir: PathBuf,
    pub rate: u32,
    pub timeout_ms: u64,
}

impl ExternalSpec {
    /// The prefix of every key the client writes.
    pub fn key_prefix(&self) -> String {
        key_prefix(&self.name)
    }

    /// The program to run, resolved; an error says what is missing.
    pub fn program(&self) -> Result<PathBuf> {
        let first = self.command.first().map(String::as_str).unwrap_or("");
        let found = if first.contains('/') {
            Some(self.dir.join(first)).filter(|p| p.is_file())
        } else {
            crate::backend::host::which(first)
        };
        found.ok_or_else(|| Error::Prerequisite {
            what: format!(
                "external client `{}`: program `{first}` not found ({})",
                self.name,
                if first.contains('/') {
                    format!("relative to {}", self.dir.display())
                } else {
                    "on PATH".to_string()
                }
            ),
            hint: "install it, or fix `external_client.command` in the scenario file".into(),
        })
    }
}

/// The key prefix of client `name`.
pub fn key_prefix(name: &str) -> String {
    format!("wl:{name}:")
}

/// What the client did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExternalRun {
    pub name: String,
    pub command: Vec<String>,
    /// How it ended: `exit status 0`, `killed after SIGTERM grace`, ...
    pub exit: String,
    /// Set when it exited before it was told to stop (timeline ms, status).
    pub exited_early: Option<String>,
    /// Its stderr (the bundle keeps it as a log).
    pub stderr: String,
    pub history: Vec<Op>,
    /// A line of stdout that was not an operation record.
    pub parse_error: Option<String>,
    /// Reading its stdout failed before the end: the history is cut short.
    pub read_error: Option<String>,
}

/// A running external client.
pub struct ExternalClient {
    spec: ExternalSpec,
    child: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// The reader's error, if stdout could not be read to its end.
    stdout: JoinHandle<Option<String>>,
    stderr: JoinHandle<String>,
}

impl ExternalClient {
    /// Starts the command and waits until it printed its first operation.
    /// A client that exits first is an error carrying its stderr.
    pub async fn start(tb: &Testbed, spec: &ExternalSpec) -> Result<ExternalClient> {
        let program = spec.program()?;
        let t = &tb.topology;
        let sentinels: Vec<String> = t
            .nodes
            .iter()
            .map(|n| tb.sentinel_addr(n).to_string())
            .collect();
        let nodes: Vec<String> = t
            .nodes
            .iter()
            .map(|n| tb.redis_addr(n).to_string())
            .collect();
        let since_origin = tb.timeline.origin().elapsed();
        let t0 = SystemTime::now()
            .checked_sub(since_origin)
            .and_then(|o| o.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&spec.command[1..])
            .current_dir(&spec.dir)
            .env("TESTBED_VIP", tb.vip_addr().to_string())
            .env("TESTBED_SENTINELS", sentinels.join(","))
            .env("TESTBED_NODES", nodes.join(","))
            .env("TESTBED_MASTER_NAME", &t.master_name)
            .env("TESTBED_PASSWORD", tb.password().unwrap_or(""))
            .env("TESTBED_KEY_PREFIX", spec.key_prefix())
            .env("TESTBED_RATE", spec.rate.to_string())
            .env("TESTBED_TIMEOUT_MS", spec.timeout_ms.to_string())
            .env("TESTBED_T0_UNIX_MS", format!("{t0:.3}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // stopped by the run (SIGTERM, then SIGKILL), not by a Ctrl-C
            // aimed at the terminal
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| Error::Command {
            command: spec.command.join(" "),
            detail: format!("cannot start the external client: {e}"),
        })?;
        tb.timeline.record(
            Kind::Action,
            "testbed",
            "external-client-start",
            format!("{}: {}", spec.name, spec.command.join(" ")),
        );
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let out = child.stdout.take().expect("stdout is piped");
        let l2 = lines.clone();
        let stdout = tokio::spawn(async move {
            let mut r = BufReader::new(out).lines();
            loop {
                match r.next_line().await {
                    Ok(Some(l)) => l2.lock().expect("not poisoned").push(l),
                    Ok(None) => return None,
                    Err(e) => return Some(e.to_string()),
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr is piped");
        let stderr = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        });
        let mut c = ExternalClient {
            spec: spec.clone(),
            child,
            lines,
            stdout,
            stderr,
        };
        let first = crate::observe::wait::until(
            &format!("external client `{}` to print its first write", spec.name),
            FIRST_OP,
            crate::observe::wait::POLL,
            || {
                let n = c.lines.lock().expect("not poisoned").len();
                let exited = c.child.try_wait().ok().flatten();
                async move {
                    match (n, exited) {
                        (n, _) if n > 0 => Ok(Ok(())),
                        (_, Some(status)) => Ok(Err(status)),
                        _ => Err("no operation printed yet".to_string()),
                    }
                }
            },
        )
        .await;
        match first {
            Ok(Ok(())) => Ok(c),
            Ok(Err(status)) => {
                let stderr = (&mut c.stderr).await.unwrap_or_default();
                Err(Error::Command {
                    command: spec.command.join(" "),
                    detail: format!(
                        "the external client exited ({status}) before its first write; stderr:\n{}",
                        tail(&stderr, 20)
                    ),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// See [`recovered_after`], on what the client printed so far.
    pub fn recovered_after(&self, since_ms: f64) -> Option<f64> {
        recovered_after(&self.lines.lock().expect("not poisoned"), since_ms)
    }

    /// Tells the client to stop (SIGTERM; SIGKILL after [`GRACE`]) and reads
    /// its history.
    pub async fn stop(mut self, tb: &Testbed) -> ExternalRun {
        let early = self.child.try_wait().ok().flatten();
        let exit = match early {
            Some(status) => status.to_string(),
            None => {
                if let Some(pid) = self.child.id() {
                    // SAFETY: kill(2) on our own child's pid, which has not
                    // been reaped (try_wait said it runs).
                    unsafe {
                        libc::kill(pid as libc::pid_t, libc::SIGTERM);
                    }
                }
                match tokio::time::timeout(GRACE, self.child.wait()).await {
                    Ok(Ok(status)) => status.to_string(),
                    Ok(Err(e)) => format!("wait failed: {e}"),
                    Err(_) => {
                        let _ = self.child.kill().await;
                        format!("killed: still running {} s after SIGTERM", GRACE.as_secs())
                    }
                }
            }
        };
        tb.timeline.record(
            Kind::Action,
            "testbed",
            "external-client-stop",
            format!("{}: {exit}", self.spec.name),
        );
        let read_error = match (&mut self.stdout).await {
            Ok(e) => e,
            Err(e) => Some(format!("the stdout reader failed: {e}")),
        };
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        let text = self.lines.lock().expect("not poisoned").join("\n");
        let (history, parse_error) = match workload::parse_external(&self.spec.name, &text) {
            Ok(h) => (h, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let exited_early = early.map(|s| {
            let last = history.last().map_or(0.0, |o| o.complete_ms);
            format!("{s} after its write at {last:.0} ms")
        });
        ExternalRun {
            name: self.spec.name.clone(),
            command: self.spec.command.clone(),
            exit,
            exited_early,
            stderr,
            history,
            parse_error,
            read_error,
        }
    }
}

/// When a client recovered from the outage that followed `since_ms` (the
/// first fault), from the JSON lines it printed so far: the checker's
/// [`checker::recovered_after`], so the `external-recovered` wait and the
/// measured recovery agree. `None` while it has not failed yet or not
/// recovered yet (a write started just after the fault may still have
/// reached the old master before the fault acted).
pub fn recovered_after(lines: &[String], since_ms: f64) -> Option<f64> {
    let ops = workload::parse_external("external", &lines.join("\n")).ok()?;
    checker::recovered_after(&checker::unavailable(&ops), since_ms)
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u64, t: f64, outcome: &str) -> String {
        format!(
            r#"{{"id":{id},"invoke_ms":{t},"complete_ms":{},"outcome":"{outcome}"}}"#,
            t + 1.0
        )
    }

    #[test]
    fn recovery_needs_a_failure_after_the_fault_then_an_ack() {
        // write 2 started after the fault but before it acted
        let mut l = vec![
            line(1, 90.0, "ok"),
            line(2, 101.0, "ok"),
            line(3, 120.0, "error"),
        ];
        assert_eq!(recovered_after(&l, 100.0), None);
        l.push(line(4, 140.0, "unknown"));
        assert_eq!(recovered_after(&l, 100.0), None);
        l.push(line(5, 60_000.0, "ok"));
        assert_eq!(recovered_after(&l, 100.0), Some(60_001.0));
        // no failure at all: not (yet) a recovery
        assert_eq!(recovered_after(&l[..2], 0.0), None);
    }

    #[test]
    fn no_external_key_is_a_key_of_the_built_in_workload() {
        use std::collections::HashSet;
        let builtin: HashSet<String> = (1..=3000).map(crate::workload::key).collect();
        // names that look like ids, or like the built-in prefix, included
        for name in ["redis-py", "x", "1", "12", "wl", "_"] {
            let p = key_prefix(name);
            assert!(p.starts_with("wl:") && p.ends_with(':'), "{p}");
            for id in 1..=3000u64 {
                let k = format!("{p}{id}");
                assert!(!builtin.contains(&k), "{name}'s key {k} is a built-in key");
            }
        }
        // and two clients never share keys
        assert_ne!(
            format!("{}1", key_prefix("a")),
            format!("{}1", key_prefix("a:"))
        );
    }
}
