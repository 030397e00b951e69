//! The impairment daemons' lifecycle: where `testbed-netem` is found, its
//! start (own session, bound to a node's NFQUEUE, seeded per node), reload
//! (SIGHUP, confirmed by its log), stop (SIGTERM releases every held
//! packet), and finding every daemon on the machine by its command line
//! (`--testbed NAME`), which is how `down --all` and the tests see them.

use super::plan;
use crate::backend::host;
use crate::error::{Error, Result};
use crate::observe::wait;
use crate::testbed::Testbed;
use std::path::PathBuf;
use std::time::Duration;

/// The `testbed-netem` program: `$TESTBED_NETEM`, else beside the running
/// executable (or one folder up: test binaries live in `target/*/deps`),
/// else on PATH.
pub fn netem_program() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TESTBED_NETEM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Prerequisite {
                what: format!("TESTBED_NETEM={} is not a file", p.display()),
                hint: "build it with `cargo build -p testbed --bin testbed-netem`".into(),
            })
        };
    }
    let exe = std::env::current_exe().ok();
    let near = exe.iter().flat_map(|e| {
        let dir = e.parent().map(PathBuf::from);
        [dir.clone(), dir.and_then(|d| d.parent().map(PathBuf::from))]
    });
    near.flatten()
        .map(|d| d.join("testbed-netem"))
        .find(|p| p.is_file())
        .or_else(|| host::which("testbed-netem"))
        .ok_or_else(|| Error::Prerequisite {
            what: "the impairment daemon `testbed-netem` was not found (beside this program, or on PATH)".into(),
            hint: "build it with `cargo build -p testbed --bin testbed-netem` (`cargo xtask` does it for you), or set TESTBED_NETEM".into(),
        })
}

impl Testbed {
    pub(super) fn daemon_pid_path(&self, node: &str) -> PathBuf {
        self.impair_dir().join(format!("{node}.pid"))
    }

    pub(super) fn daemon_log_path(&self, node: &str) -> PathBuf {
        self.impair_dir().join(format!("{node}.log"))
    }

    /// The pid of `node`'s daemon, if it runs.
    pub(super) fn daemon(&self, node: &str) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.daemon_pid_path(node))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_our_daemon(pid, &self.topology.name).then_some(pid)
    }

    pub(super) async fn start_daemon(&self, node: &str, netns_pid: i64) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let prog = netem_program()?;
        let n = self.node(node)?;
        let seed = daemon_seed(self.seed, &n.name);
        let (rules, pidf, log) = (
            self.rules_path(node),
            self.daemon_pid_path(node),
            self.daemon_log_path(node),
        );
        let args: Vec<String> = [
            "--netns-pid",
            &netns_pid.to_string(),
            "--queue",
            &plan::QUEUE.to_string(),
            "--rules",
            &rules.display().to_string(),
            "--seed",
            &seed.to_string(),
            "--testbed",
            &self.topology.name,
            "--node",
            node,
            "--pid-file",
            &pidf.display().to_string(),
            "--log",
            &log.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        tracing::debug!(program = %prog.display(), ?args, "starting the impairment daemon");
        let mut child = std::process::Command::new(&prog)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // its own session: neither a Ctrl-C at the terminal nor the end of
            // this process stops it; heal, down and its node's end do
            .process_group(0)
            .spawn()
            .map_err(|e| {
                Error::command(prog.display().to_string(), format!("cannot start: {e}"))
            })?;
        let what = format!("the impairment daemon of {node} to bind its queue");
        let r = wait::until(&what, Duration::from_secs(10), wait::POLL, || {
            let exited = child.try_wait().ok().flatten();
            let up = self.daemon(node).is_some();
            let log = log.clone();
            async move {
                match (up, exited) {
                    (true, _) => Ok(()),
                    (false, Some(st)) => Err(format!(
                        "it exited ({st}); its log: {}",
                        crate::workload::external::tail(
                            &std::fs::read_to_string(&log).unwrap_or_default(),
                            5
                        )
                    )),
                    (false, None) => Err("no pid file yet".into()),
                }
            }
        })
        .await;
        // reap it when it ends, in this process's lifetime
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        r
    }

    /// SIGHUP, then waits for the daemon's log to show the reload.
    pub(super) async fn reload(&self, node: &str, dpid: u32) -> Result<()> {
        let log = self.daemon_log_path(node);
        let count = |t: &str| t.matches(" reload").count();
        let before = count(&std::fs::read_to_string(&log).unwrap_or_default());
        host::run_async("kill", &["-HUP", &dpid.to_string()]).await?;
        let what = format!("the impairment daemon of {node} to reload its rules");
        wait::until(
            &what,
            Duration::from_secs(5),
            Duration::from_millis(10),
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let r = if count(&text) > before {
                    if text
                        .lines()
                        .last()
                        .is_some_and(|l| l.contains("reload failed"))
                    {
                        Ok(Err(text.lines().last().unwrap_or_default().to_string()))
                    } else {
                        Ok(Ok(()))
                    }
                } else {
                    Err("no reload in its log yet".to_string())
                };
                async move { r }
            },
        )
        .await?
        .map_err(Error::State)
    }

    /// Stops `node`'s daemon (SIGTERM: it releases every packet it holds)
    /// and removes its rules file.
    pub(super) async fn stop_daemon(&self, node: &str) -> Result<()> {
        if let Some(pid) = self.daemon(node) {
            host::run_async("kill", &["-TERM", &pid.to_string()]).await?;
            let what = format!("the impairment daemon of {node} to exit");
            wait::until(
                &what,
                Duration::from_secs(5),
                Duration::from_millis(10),
                || {
                    let alive = is_our_daemon(pid, &self.topology.name);
                    async move {
                        if alive {
                            Err("still running".to_string())
                        } else {
                            Ok(())
                        }
                    }
                },
            )
            .await?;
        }
        for p in [self.rules_path(node), self.daemon_pid_path(node)] {
            match tokio::fs::remove_file(&p).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(p, e)),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether `pid` is a `testbed-netem` of testbed `name` (`None` name: of
/// any testbed).
pub fn is_our_daemon(pid: u32, name: &str) -> bool {
    daemon_testbed(pid).is_some_and(|t| t == name)
}

/// The testbed a `testbed-netem` process serves, from its command line.
pub fn daemon_testbed(pid: u32) -> Option<String> {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmd
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let prog = args.first()?;
    if !prog.ends_with("testbed-netem") {
        return None;
    }
    let i = args.iter().position(|a| a == "--testbed")?;
    args.get(i + 1).cloned()
}

/// Every running `testbed-netem` on the machine: (pid, testbed).
pub fn all_daemons() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| daemon_testbed(pid).map(|t| (pid, t)))
        .collect()
}

/// A node's daemon seed: the testbed's seed mixed with the node's name, so
/// each daemon draws its own stream and a run with the same seed repeats.
fn daemon_seed(seed: u64, node: &str) -> u64 {
    node.bytes().fold(seed ^ 0x9e37_79b9_7f4a_7c15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_gets_its_own_reproducible_seed() {
        assert_eq!(daemon_seed(7, "node1"), daemon_seed(7, "node1"));
        assert_ne!(daemon_seed(7, "node1"), daemon_seed(7, "node2"));
        assert_ne!(daemon_seed(7, "node1"), daemon_seed(8, "node1"));
    }

    #[test]
    fn a_process_that_is_no_daemon_is_not_taken_for_one() {
        assert!(!is_our_daemon(std::process::id(), "anything"));
        assert!(daemon_testbed(std::process::id()).is_none());
    }
}
