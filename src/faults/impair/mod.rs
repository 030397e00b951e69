//! Degraded links: delay (with jitter), loss, bandwidth caps and flapping
//! between groups of nodes and the host, on real packets between real
//! containers. There is no `sch_netem` on this kind of host, so:
//!
//! - delay, jitter, loss and flapping are served by `testbed-netem` (the
//!   daemon in `netem/`), one per impaired node, bound to an NFQUEUE inside
//!   that node's namespace; iptables rules in the chains `TESTBED-IMPAIR`
//!   (from INPUT) and `TESTBED-IMPAIR-OUT` (from OUTPUT) steer the impaired
//!   peers' packets to it with `--queue-bypass` (no daemon: traffic flows);
//!   every random choice comes from one seeded generator per daemon, its seed
//!   derived from the testbed's and recorded;
//! - bandwidth caps are htb classes in the kernel (`shape.rs`).
//!
//! `plan.rs` decides, purely, where each impairment is served. The daemons'
//! rule files (`<state dir>/impair/<node>.json`), the steering rules and the
//! htb classes are the record of what is in force: `impairments` reads them
//! back from any process, `heal` removes them all. A daemon lives and dies
//! with its node (it exits when the node's redis container process does) and
//! with its testbed (`down` kills it by its pid file, `down --all` by its
//! command line).

pub mod netem;
mod plan;
mod shape;

pub use plan::{End, Impaired, Impairment};

use super::{Direction, Target, Verb};
use crate::backend::host;
use crate::error::{Error, Result};
use crate::model::render::paths;
use crate::observe::wait;
use crate::testbed::Testbed;
use netem::rules::{self as nrules, Rule, RuleFile};
use plan::{Hook, Placement};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The chain (from INPUT) that steers impaired peers' packets to the daemon.
pub const CHAIN_IN: &str = "TESTBED-IMPAIR";
/// The chain (from OUTPUT) for packets to the host.
pub const CHAIN_OUT: &str = "TESTBED-IMPAIR-OUT";

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
    fn impair_dir(&self) -> PathBuf {
        self.state_dir.join("impair")
    }

    fn rules_path(&self, node: &str) -> PathBuf {
        self.impair_dir().join(format!("{node}.json"))
    }

    fn daemon_pid_path(&self, node: &str) -> PathBuf {
        self.impair_dir().join(format!("{node}.pid"))
    }

    fn daemon_log_path(&self, node: &str) -> PathBuf {
        self.impair_dir().join(format!("{node}.log"))
    }

    /// Delays every packet between the groups by `ms` ± uniform `jitter_ms`
    /// (both ways: the round trip grows by 2 × ms).
    pub async fn delay(
        &self,
        a: &[Target],
        b: &[Target],
        ms: u64,
        jitter_ms: u64,
        dir: Direction,
    ) -> Result<f64> {
        self.impair(a, b, Impairment::Delay { ms, jitter_ms }, dir)
            .await
    }

    /// Drops each packet between the groups with probability `percent` %.
    pub async fn loss(
        &self,
        a: &[Target],
        b: &[Target],
        percent: f64,
        dir: Direction,
    ) -> Result<f64> {
        self.impair(a, b, Impairment::Loss { percent }, dir).await
    }

    /// Caps the bandwidth between the groups at `kbit` kbit/s.
    pub async fn rate(&self, a: &[Target], b: &[Target], kbit: u64, dir: Direction) -> Result<f64> {
        self.impair(a, b, Impairment::Rate { kbit }, dir).await
    }

    /// Cuts and heals the link on a schedule (up `up_ms`, down `down_ms`)
    /// until `heal`.
    pub async fn flap(
        &self,
        a: &[Target],
        b: &[Target],
        up_ms: u64,
        down_ms: u64,
        dir: Direction,
    ) -> Result<f64> {
        self.impair(a, b, Impairment::Flap { up_ms, down_ms }, dir)
            .await
    }

    /// Impairs every link between group `a` and group `b` (node names,
    /// `master`, `replicas`, `host`; an empty `b` is every other node), both
    /// ways or only a → b. A new impairment replaces one of the same kind on
    /// the same link. Everything is checked before anything is applied (bad
    /// parameters, a node that is down); if applying fails half-way, what
    /// this call changed is undone.
    pub async fn impair(
        &self,
        a: &[Target],
        b: &[Target],
        what: Impairment,
        dir: Direction,
    ) -> Result<f64> {
        let verb = verb_of(&what);
        what.validate()
            .map_err(|m| Error::State(format!("`{verb}`: {m}")))?;
        let (left, right) = self.resolve_ends(a, b).await?;
        let mut links = Vec::new();
        for x in &left {
            for y in &right {
                links.push(Impaired {
                    from: x.clone(),
                    to: y.clone(),
                    what,
                });
                if dir == Direction::Both {
                    links.push(Impaired {
                        from: y.clone(),
                        to: x.clone(),
                        what,
                    });
                }
            }
        }
        let t = &self.topology;
        let places: Vec<Placement> = links
            .iter()
            .map(|l| plan::place(t, l).map_err(Error::State))
            .collect::<Result<_>>()?;
        // every namespace involved must exist now
        let mut pids: BTreeMap<String, i64> = BTreeMap::new();
        for p in &places {
            let node = match p {
                Placement::Queue { node, .. } => Some(node.clone()),
                Placement::Shape {
                    on: End::Node(n), ..
                } => Some(n.clone()),
                Placement::Shape { on: End::Host, .. } => None,
            };
            if let Some(n) = node {
                let pid = self.pid(self.node(&n)?).await?;
                if pid == 0 {
                    return Err(Error::State(format!(
                        "`{verb}`: {n} is down — its impairments live in its network namespace; start it first"
                    )));
                }
                pids.insert(n, pid);
            }
        }
        if places.iter().any(|p| matches!(p, Placement::Queue { .. })) {
            netem_program()?;
        }
        let names = |v: &[End]| v.iter().map(End::to_string).collect::<Vec<_>>().join(",");
        let way = match dir {
            Direction::Both => "both ways",
            Direction::OneWay => "one way",
        };
        let detail = format!(
            "{} -> {} ({what}, {way}, seed {:#x})",
            names(&left),
            names(&right),
            self.seed
        );
        let t_ms = self.timeline.record(
            crate::observe::timeline::Kind::Action,
            "testbed",
            verb.name(),
            detail,
        );
        let before = self.snapshot(pids.keys()).await?;
        if let Err(e) = self.apply_places(&places, &pids).await {
            return Err(match self.restore(before, &pids).await {
                Ok(()) => e,
                Err(undo) => Error::State(format!(
                    "{e}; undoing the half-applied `{verb}` failed too: {undo}\n  hint: `cargo xtask heal --name {}`",
                    self.topology.name
                )),
            });
        }
        Ok(t_ms)
    }

    /// The ends one group names (nodes, the host).
    async fn ends(&self, ts: &[Target]) -> Result<Vec<End>> {
        let mut out: Vec<End> = Vec::new();
        for t in ts {
            let more = match t {
                Target::Host => vec![End::Host],
                t => self
                    .resolve(t)
                    .await?
                    .into_iter()
                    .map(|n| End::Node(n.name))
                    .collect(),
            };
            for e in more {
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// The ends of two groups; `host` is allowed on one side.
    async fn resolve_ends(&self, a: &[Target], b: &[Target]) -> Result<(Vec<End>, Vec<End>)> {
        let left = self.ends(a).await?;
        let mut right = self.ends(b).await?;
        if b.is_empty() {
            right = self
                .topology
                .nodes
                .iter()
                .map(|n| End::Node(n.name.clone()))
                .filter(|e| !left.contains(e))
                .collect();
        }
        if let Some(e) = left.iter().find(|e| right.contains(e)) {
            return Err(Error::State(format!("{e} is on both sides of the link")));
        }
        if left.is_empty() || right.is_empty() {
            return Err(Error::State(
                "an impaired link needs at least one end on each side".into(),
            ));
        }
        Ok((left, right))
    }

    async fn apply_places(&self, places: &[Placement], pids: &BTreeMap<String, i64>) -> Result<()> {
        let mut by_node: BTreeMap<&str, Vec<Rule>> = BTreeMap::new();
        for p in places {
            match p {
                Placement::Queue { node, rule, .. } => {
                    by_node.entry(node.as_str()).or_default().push(rule.clone());
                }
                Placement::Shape { on, dst, kbit } => {
                    shape::set_rate(
                        &self.shape_dev(on, pids)?,
                        self.topology.subnet,
                        *dst,
                        *kbit,
                    )
                    .await?;
                }
            }
        }
        for (node, new) in by_node {
            let mut rules = self.rules_of(node).await?.rules;
            for r in new {
                rules = plan::merged(&rules, r);
            }
            self.install(node, pids[node], RuleFile { rules }).await?;
        }
        Ok(())
    }

    fn shape_dev(&self, on: &End, pids: &BTreeMap<String, i64>) -> Result<shape::Dev> {
        Ok(match on {
            End::Host => shape::Dev::Shim(self.names.shim.clone()),
            End::Node(n) => shape::Dev::Node {
                pid: *pids
                    .get(n)
                    .ok_or_else(|| Error::State(format!("no namespace of {n}")))?,
                ifname: paths::INTERFACE,
            },
        })
    }

    /// The rules file of `node`'s daemon (empty when it has none).
    async fn rules_of(&self, node: &str) -> Result<RuleFile> {
        let p = self.rules_path(node);
        match tokio::fs::read_to_string(&p).await {
            Ok(text) => {
                nrules::parse(&text).map_err(|e| Error::State(format!("{}: {e}", p.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RuleFile::default()),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// Makes `file` the rules of `node`'s daemon: written, the daemon started
    /// or told to reload (and seen to), the steering rules to match.
    async fn install(&self, node: &str, pid: i64, file: RuleFile) -> Result<()> {
        let dir = self.impair_dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::io(&dir, e))?;
        let path = self.rules_path(node);
        nrules::write_atomically(&path, &file).map_err(|e| Error::io(&path, e))?;
        match self.daemon(node) {
            Some(dpid) => self.reload(node, dpid).await?,
            None => self.start_daemon(node, pid).await?,
        }
        self.steer(pid, &plan::hooks(&file.rules)).await
    }

    /// The pid of `node`'s daemon, if it runs.
    fn daemon(&self, node: &str) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.daemon_pid_path(node))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        is_our_daemon(pid, &self.topology.name).then_some(pid)
    }

    async fn start_daemon(&self, node: &str, netns_pid: i64) -> Result<()> {
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
    async fn reload(&self, node: &str, dpid: u32) -> Result<()> {
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

    /// Makes `node`'s steering rules exactly `hooks` (chains created or
    /// emptied as needed).
    async fn steer(&self, pid: i64, hooks: &[Hook]) -> Result<()> {
        use super::partition::iptables;
        let queue = plan::QUEUE.to_string();
        let listing = iptables(pid, &["-S"]).await?;
        for (chain, hook) in [(CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")] {
            let exists = listing.lines().any(|l| l.trim() == format!("-N {chain}"));
            if !exists {
                iptables(pid, &["-N", chain]).await?;
            }
            if !listing
                .lines()
                .any(|l| l.trim() == format!("-A {hook} -j {chain}"))
            {
                // appended: partitions (inserted first) drop before anything is queued
                iptables(pid, &["-A", hook, "-j", chain]).await?;
            }
            iptables(pid, &["-F", chain]).await?;
        }
        for h in hooks {
            let (chain, flag, ip) = match h {
                Hook::From(ip) => (CHAIN_IN, "-s", ip),
                Hook::To(ip) => (CHAIN_OUT, "-d", ip),
            };
            let ip = format!("{ip}/32");
            iptables(
                pid,
                &[
                    "-A",
                    chain,
                    flag,
                    &ip,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    &queue,
                    "--queue-bypass",
                ],
            )
            .await?;
        }
        Ok(())
    }

    /// The rules files of `nodes` now (to undo a half-applied change).
    async fn snapshot(
        &self,
        nodes: impl Iterator<Item = &String>,
    ) -> Result<Vec<(String, RuleFile)>> {
        let mut out = Vec::new();
        for n in nodes {
            out.push((n.clone(), self.rules_of(n).await?));
        }
        Ok(out)
    }

    async fn restore(
        &self,
        before: Vec<(String, RuleFile)>,
        pids: &BTreeMap<String, i64>,
    ) -> Result<()> {
        for (node, file) in before {
            if file.rules.is_empty() {
                self.stop_daemon(&node).await?;
                self.steer(pids[&node], &[]).await?;
            } else {
                self.install(&node, pids[&node], file).await?;
            }
        }
        Ok(())
    }

    /// Every impairment in force, read back from the daemons' rule files
    /// (only where the daemon runs), and from the htb classes.
    pub async fn impairments(&self) -> Result<Vec<Impaired>> {
        let t = &self.topology;
        let mut out = Vec::new();
        for n in &t.nodes {
            let pid = self.pid(n).await?;
            if pid == 0 {
                continue;
            }
            if self.daemon(&n.name).is_some() {
                for r in self.rules_of(&n.name).await?.rules {
                    out.extend(plan::from_rule(t, &n.name, &r));
                }
            }
            let dev = shape::Dev::Node {
                pid,
                ifname: paths::INTERFACE,
            };
            for (dst, kbit) in shape::rates(&dev, t.subnet).await? {
                if let Some(to) = plan::end_of(t, dst) {
                    out.push(Impaired {
                        from: End::Node(n.name.clone()),
                        to,
                        what: Impairment::Rate { kbit },
                    });
                }
            }
        }
        for (dst, kbit) in
            shape::rates(&shape::Dev::Shim(self.names.shim.clone()), t.subnet).await?
        {
            if let Some(to) = plan::end_of(t, dst) {
                out.push(Impaired {
                    from: End::Host,
                    to,
                    what: Impairment::Rate { kbit },
                });
            }
        }
        out.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
        Ok(out)
    }

    /// Removes every impairment: daemons stopped (they release what they
    /// hold), steering rules and htb classes removed. Returns what was in
    /// force. Part of [`Testbed::heal`].
    pub(crate) async fn heal_impairments(&self) -> Result<Vec<Impaired>> {
        let before = self.impairments().await?;
        for n in &self.topology.nodes {
            self.stop_daemon(&n.name).await?;
            let pid = self.pid(n).await?;
            if pid == 0 {
                continue;
            }
            let listing = super::partition::iptables(pid, &["-S"]).await?;
            for (chain, hook) in [(CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")] {
                if listing
                    .lines()
                    .any(|l| l.trim() == format!("-A {hook} -j {chain}"))
                {
                    super::partition::iptables(pid, &["-D", hook, "-j", chain]).await?;
                }
                if listing.lines().any(|l| l.trim() == format!("-N {chain}")) {
                    super::partition::iptables(pid, &["-F", chain]).await?;
                    super::partition::iptables(pid, &["-X", chain]).await?;
                }
            }
            shape::clear(&shape::Dev::Node {
                pid,
                ifname: paths::INTERFACE,
            })
            .await?;
        }
        shape::clear(&shape::Dev::Shim(self.names.shim.clone())).await?;
        Ok(before)
    }

    /// Stops `node`'s daemon (SIGTERM: it releases every packet it holds)
    /// and removes its rules file.
    async fn stop_daemon(&self, node: &str) -> Result<()> {
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

fn verb_of(what: &Impairment) -> Verb {
    match what {
        Impairment::Delay { .. } => Verb::Delay,
        Impairment::Loss { .. } => Verb::Loss,
        Impairment::Rate { .. } => Verb::Rate,
        Impairment::Flap { .. } => Verb::Flap,
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
