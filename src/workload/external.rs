//! An external client: any command (a redis-py script, a Go or Java
//! program...) that writes through its own client library while a scenario
//! runs and prints one JSON line per operation, so other client libraries are
//! tested by the same checker as the built-in workload. It runs as a process
//! on the host, or as a container of the client image on the testbed's
//! segment with its own address (`workload::container`).
//!
//! The protocol (README "External clients"): the command gets the testbed's
//! addresses in `TESTBED_*` variables, writes key `<TESTBED_KEY_PREFIX><id>`,
//! prints `{"id","invoke_ms","complete_ms","outcome"[,"error"]}` per write
//! with times in ms since `TESTBED_T0_UNIX_MS` (the timeline's origin), and
//! stops at SIGTERM.
//!
//! Invariants: the child never outlives the run (SIGTERM when the steps end,
//! SIGKILL after [`GRACE`], and `kill_on_drop` — or, for a container, its
//! removal on drop and the testbed's labels — for an aborted run); its
//! keys never collide with the built-in workload's (`wl:<name>:<id>` vs
//! `wl:<id>`).

use crate::error::{Error, Result};
use crate::observe::timeline::Kind;
use crate::testbed::Testbed;
use crate::workload;
use crate::workload::checker;
use crate::workload::container;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::task::JoinHandle;

mod spec;
pub use spec::*;

/// How long a client gets to exit after SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long a client gets to print its first operation.
pub const FIRST_OP: Duration = Duration::from_secs(15);

enum Proc {
    Host {
        child: tokio::process::Child,
        /// The reader's error, if stdout could not be read to its end.
        stdout: JoinHandle<Option<String>>,
        stderr: JoinHandle<()>,
    },
    Container(container::Running),
}

/// A running external client.
pub struct ExternalClient {
    spec: ExternalSpec,
    proc: Proc,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    address: Option<String>,
}

impl ExternalClient {
    /// Starts the client on `tb` (a container at the first client address
    /// when the spec names an image) and waits until it printed its first
    /// operation. A client that exits first is an error carrying its stderr.
    pub async fn start(tb: &Testbed, spec: &ExternalSpec) -> Result<ExternalClient> {
        let place = match &spec.image {
            Some(_) => {
                let ip =
                    crate::model::clients::client_ips(&tb.topology, 1).map_err(Error::State)?[0];
                Some(Placement::on(tb, ip))
            }
            None => None,
        };
        let mut c = Self::launch(&ClientEnv::of(tb), spec, place).await?;
        tb.timeline.record(
            Kind::Action,
            "testbed",
            "external-client-start",
            c.describe(),
        );
        match c.first_write().await {
            Ok(()) => Ok(c),
            Err(Error::Interrupted { signal, during }) => {
                c.stop_quietly().await;
                Err(Error::Interrupted { signal, during })
            }
            Err(e) => {
                let run = c.stop_quietly().await;
                Err(Error::Command {
                    command: spec.command.join(" "),
                    detail: format!("{e}; stderr:\n{}", tail(&run.stderr, 20)),
                })
            }
        }
    }

    /// Starts the client (a host process, or a container at `place`) and
    /// returns at once; [`ExternalClient::first_write`] waits for it.
    pub async fn launch(
        env: &ClientEnv,
        spec: &ExternalSpec,
        place: Option<Placement>,
    ) -> Result<ExternalClient> {
        let program = spec.program()?;
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr: Arc<Mutex<String>> = Arc::default();
        let vars = env.vars(spec);
        let (proc, address) = match (&spec.image, place) {
            (Some(image), Some(p)) => {
                let running = container::start(
                    container::Launch {
                        docker: &p.docker,
                        testbed: &p.testbed,
                        container: p.container(&spec.name),
                        image,
                        network: &p.network,
                        ip: p.ip,
                        cmd: spec.command.clone(),
                        env: vars,
                        client: &spec.command[0],
                    },
                    lines.clone(),
                    stderr.clone(),
                )
                .await?;
                (Proc::Container(running), Some(p.ip.to_string()))
            }
            (Some(_), None) => {
                return Err(Error::State(format!(
                    "client `{}` runs in a container but was given no address",
                    spec.name
                )))
            }
            (None, _) => (Self::spawn(spec, &program, vars, &lines, &stderr)?, None),
        };
        Ok(ExternalClient {
            spec: spec.clone(),
            proc,
            lines,
            stderr,
            address,
        })
    }

    fn spawn(
        spec: &ExternalSpec,
        program: &std::path::Path,
        vars: Vec<(String, String)>,
        lines: &Arc<Mutex<Vec<String>>>,
        stderr: &Arc<Mutex<String>>,
    ) -> Result<Proc> {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&spec.command[1..])
            .current_dir(&spec.dir)
            .envs(vars)
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
        let e2 = stderr.clone();
        let stderr = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                e2.lock()
                    .expect("not poisoned")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(Proc::Host {
            child,
            stdout,
            stderr,
        })
    }

    /// `name: command` (and the container's address).
    pub fn describe(&self) -> String {
        match &self.address {
            Some(a) => format!(
                "{}: {} in a container at {a}",
                self.spec.name,
                self.spec.command.join(" ")
            ),
            None => format!("{}: {}", self.spec.name, self.spec.command.join(" ")),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether it has ended (a process that exited, a container whose
    /// output ended).
    fn finished(&mut self) -> bool {
        match &mut self.proc {
            Proc::Host { child, .. } => child.try_wait().ok().flatten().is_some(),
            Proc::Container(r) => r.output_ended(),
        }
    }

    /// Waits until it printed its first operation (a meta line is not one),
    /// for [`FIRST_OP`]; an error if it ended first.
    pub async fn first_write(&mut self) -> Result<()> {
        let lines = self.lines.clone();
        let name = self.spec.name.clone();
        let ended = crate::observe::wait::until(
            &format!("external client `{name}` to print its first write"),
            FIRST_OP,
            crate::observe::wait::POLL,
            || {
                let writes = {
                    let l = lines.lock().expect("not poisoned");
                    l.iter().filter(|l| meta_of(l).is_none()).count()
                };
                let done = self.finished();
                async move {
                    match (writes, done) {
                        (n, _) if n > 0 => Ok(false),
                        (_, true) => Ok(true),
                        _ => Err("no operation printed yet".to_string()),
                    }
                }
            },
        )
        .await?;
        if ended {
            return Err(Error::State(format!(
                "the external client `{name}` exited before its first write"
            )));
        }
        Ok(())
    }

    /// The write records it printed so far (the meta line is not one).
    pub fn records(&self) -> usize {
        let l = self.lines.lock().expect("not poisoned");
        l.iter().filter(|l| meta_of(l).is_none()).count()
    }

    /// See [`recovered_after`], on what the client printed so far.
    pub fn recovered_after(&self, since_ms: f64) -> Option<f64> {
        recovered_after(&self.lines.lock().expect("not poisoned"), since_ms)
    }

    /// Stops it without recording anything on a timeline (a client that
    /// never started, an interrupted run).
    pub async fn stop_quietly(self) -> ExternalRun {
        self.finish(None).await
    }

    /// Tells the client to stop (SIGTERM; SIGKILL after [`GRACE`]) and reads
    /// its history.
    pub async fn stop(self, tb: &Testbed) -> ExternalRun {
        self.finish(Some(tb)).await
    }

    async fn finish(mut self, tb: Option<&Testbed>) -> ExternalRun {
        let early = self.finished();
        let (exit, exit_code, read_error) = match self.proc {
            Proc::Host {
                mut child,
                stdout,
                stderr,
            } => {
                let (exit, code) = stop_child(&mut child).await;
                let read_error = match stdout.await {
                    Ok(e) => e,
                    Err(e) => Some(format!("the stdout reader failed: {e}")),
                };
                let _ = stderr.await;
                (exit, code, read_error)
            }
            Proc::Container(r) => {
                let e = r.stop(GRACE).await;
                (e.exit, e.exit_code, e.read_error)
            }
        };
        if let Some(tb) = tb {
            tb.timeline.record(
                Kind::Action,
                "testbed",
                "external-client-stop",
                format!("{}: {exit}", self.spec.name),
            );
        }
        let stderr = std::mem::take(&mut *self.stderr.lock().expect("not poisoned"));
        let lines = std::mem::take(&mut *self.lines.lock().expect("not poisoned"));
        let meta = lines.first().and_then(|l| meta_of(l));
        let (history, parse_error) =
            match workload::parse_external(&self.spec.name, &lines.join("\n")) {
                Ok(h) => (h, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
        let exited_early = early.then(|| {
            let last = history.last().map_or(0.0, |o| o.complete_ms);
            format!("{exit} after its write at {last:.0} ms")
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
            meta,
            exit_code,
            address: self.address.clone(),
            never_started: None,
        }
    }
}

/// SIGTERM, then SIGKILL after [`GRACE`]: how it ended and its exit code.
async fn stop_child(child: &mut tokio::process::Child) -> (String, Option<i64>) {
    if let Some(status) = child.try_wait().ok().flatten() {
        return (status.to_string(), status.code().map(i64::from));
    }
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped
        // (try_wait said it runs).
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(GRACE, child.wait()).await {
        Ok(Ok(status)) => (status.to_string(), status.code().map(i64::from)),
        Ok(Err(e)) => (format!("wait failed: {e}"), None),
        Err(_) => {
            let _ = child.kill().await;
            (
                format!("killed: still running {} s after SIGTERM", GRACE.as_secs()),
                None,
            )
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
