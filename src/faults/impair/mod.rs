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

mod daemon;
pub mod netem;
mod plan;
mod shape;

pub use daemon::{all_daemons, daemon_testbed, is_our_daemon, netem_program};
pub use plan::{End, Impaired, Impairment};

use super::{Direction, Target, Verb};
use crate::error::{Error, Result};
use crate::model::render::paths;
use crate::testbed::Testbed;
use netem::rules::{self as nrules, Rule, RuleFile};
use plan::{Hook, Placement};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The chain (from INPUT) that steers impaired peers' packets to the daemon.
pub const CHAIN_IN: &str = "TESTBED-IMPAIR";
/// The chain (from OUTPUT) for packets to the host.
pub const CHAIN_OUT: &str = "TESTBED-IMPAIR-OUT";

impl Testbed {
    fn impair_dir(&self) -> PathBuf {
        self.state_dir.join("impair")
    }

    fn rules_path(&self, node: &str) -> PathBuf {
        self.impair_dir().join(format!("{node}.json"))
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
}

fn verb_of(what: &Impairment) -> Verb {
    match what {
        Impairment::Delay { .. } => Verb::Delay,
        Impairment::Loss { .. } => Verb::Loss,
        Impairment::Rate { .. } => Verb::Rate,
        Impairment::Flap { .. } => Verb::Flap,
    }
}
