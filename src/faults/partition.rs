//! Partitions between nodes (both ways and one way), isolation, `heal`, and
//! the read-back of what is in force.
//!
//! A cut is a netfilter rule in the network namespace of the node that
//! *receives* the traffic, added from the host with the host's `iptables`
//! (`nsenter -t PID -n iptables ...`), so images need no tools. Why netfilter
//! and not the blackhole routes of platform.md:
//! - A blackhole route drops packets in the *sender*, which learns it at once:
//!   `connect()` fails with EINVAL in ~0 ms (measured here). A real partition
//!   is silent: packets leave and vanish, the sender times out. Dropping in
//!   the receiver's INPUT chain gives exactly that.
//! - One-way. A route for b in a drops *every* packet a sends to b, including
//!   a's replies on connections b opened, so TCP fails both ways and a
//!   "one-way" cut is, for Redis (all TCP), a symmetric one. Here a one-way
//!   cut a -> b drops the packets a sends to b's redis and sentinel ports:
//!   every connection a opens to b hangs (old and new ones), while b's
//!   connections to a work, because a's replies on them come *from* a's
//!   service port. That is the asymmetry worth testing: a's sentinel sees b
//!   down while b's sentinel sees a up.
//! - Stateless rules (ports, not conntrack): conntrack picks up connections
//!   that existed before it was enabled mid-stream and may guess their
//!   direction wrong; long-lived sentinel links are exactly those.
//!
//! Invariant: every rule the testbed adds lives in the chain [`CHAIN`] of a
//! node's namespace, jumped to from INPUT, and matches only on the source
//! address of another *node* — never the host's shim (`Topology::shim_ip`),
//! so the host reaches every node whatever is cut. The rules themselves are
//! the only record of what is in force ([`Testbed::partitions`] reads them back),
//! so `heal` works from any process, and a node whose redis container was
//! restarted (a new namespace) simply has no rules.

use super::{Direction, Target, Verb};
use crate::backend::host;
use crate::error::{Error, Result};
use crate::model::topology::Node;
use crate::testbed::Testbed;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// The netfilter chain (table `filter`) that holds every partition rule of
/// a node.
pub const CHAIN: &str = "TESTBED-CUT";

/// What a partition rule in force drops (read back from the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PartitionKind {
    /// Every packet from `from` (one half of a partition both ways).
    All,
    /// The TCP packets `from` sends to `to`'s redis and sentinel ports: the
    /// connections `from` opens (a one-way partition).
    Connections,
}

/// One direction of a partition in force: traffic from `from` to `to` is
/// dropped in `to`'s network namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Partition {
    pub from: String,
    pub to: String,
    pub kind: PartitionKind,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            PartitionKind::All => "all packets",
            PartitionKind::Connections => "connections it opens",
        };
        write!(f, "{} -x-> {} ({what})", self.from, self.to)
    }
}

/// Parses `iptables -S` output into (source address, kind) of the rules in
/// [`CHAIN`]; `None` when the chain does not exist.
pub fn parse_rules(listing: &str) -> Option<Vec<(Ipv4Addr, PartitionKind)>> {
    let exists = listing.lines().any(|l| l.trim() == format!("-N {CHAIN}"));
    if !exists {
        return None;
    }
    let prefix = format!("-A {CHAIN} ");
    let rules = listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&prefix))
        .filter_map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let i = words.iter().position(|w| *w == "-s")?;
            let ip = words.get(i + 1)?.trim_end_matches("/32").parse().ok()?;
            let kind = if words.contains(&"--dports") {
                PartitionKind::Connections
            } else {
                PartitionKind::All
            };
            Some((ip, kind))
        })
        .collect();
    Some(rules)
}

/// The iptables arguments (after `-A|-C CHAIN`) of a rule dropping `from`.
fn rule_args(from: Ipv4Addr, kind: PartitionKind, ports: &str) -> Vec<String> {
    let mut v = vec!["-s".to_string(), format!("{from}/32")];
    if kind == PartitionKind::Connections {
        v.extend(["-p", "tcp", "-m", "multiport", "--dports", ports].map(String::from));
    }
    v.extend(["-j", "DROP"].map(String::from));
    v
}

/// `iptables ARGS` inside the network namespace of `pid`.
pub(crate) async fn iptables(pid: i64, args: &[&str]) -> Result<String> {
    if host::which("iptables").is_none() {
        return Err(Error::Prerequisite {
            what: "`iptables` is not on PATH (partitions are netfilter rules set from the host)"
                .into(),
            hint: "install it: `apt-get install -y iptables` (or `cargo xtask doctor --fix`)"
                .into(),
        });
    }
    // `-w`: wait for the xtables lock (iptables-legacy); nft ignores it.
    let mut full = vec!["-w"];
    full.extend_from_slice(args);
    host::in_netns(pid, "iptables", &full).await
}

/// Makes [`CHAIN`] and its jump from INPUT in the namespace of `pid` if
/// they are missing; returns the rules already in it.
pub(super) async fn ensure_chain(pid: i64) -> Result<Vec<(Ipv4Addr, PartitionKind)>> {
    let listing = iptables(pid, &["-S"]).await?;
    let present = match parse_rules(&listing) {
        Some(r) => r,
        None => {
            iptables(pid, &["-N", CHAIN]).await?;
            Vec::new()
        }
    };
    let jump = format!("-A INPUT -j {CHAIN}");
    if !listing.lines().any(|l| l.trim() == jump) {
        iptables(pid, &["-I", "INPUT", "1", "-j", CHAIN]).await?;
    }
    Ok(present)
}

impl Testbed {
    /// Resolves the two groups of a link fault to nodes. An empty `b` is
    /// every node not in `a`. The groups must be disjoint and non-empty.
    pub async fn resolve_groups(
        &self,
        a: &[Target],
        b: &[Target],
    ) -> Result<(Vec<Node>, Vec<Node>)> {
        let mut left: Vec<Node> = Vec::new();
        for t in a {
            for n in self.resolve(t).await? {
                if !left.contains(&n) {
                    left.push(n);
                }
            }
        }
        let mut right: Vec<Node> = Vec::new();
        if b.is_empty() {
            right.extend(
                self.topology
                    .nodes
                    .iter()
                    .filter(|n| !left.contains(n))
                    .cloned(),
            );
        }
        for t in b {
            for n in self.resolve(t).await? {
                if !right.contains(&n) {
                    right.push(n);
                }
            }
        }
        if let Some(n) = left.iter().find(|n| right.contains(n)) {
            return Err(Error::State(format!(
                "{} is on both sides of the partition",
                n.name
            )));
        }
        if left.is_empty() || right.is_empty() {
            return Err(Error::State(
                "a partition needs at least one node on each side".into(),
            ));
        }
        Ok((left, right))
    }

    /// Cuts group `a` from group `b` (an empty `b` is every other node).
    /// `Both`: nothing passes either way. `OneWay`: a's connections to b
    /// hang, b's connections to a work (see the module docs). Partitions add
    /// up; [`Testbed::heal`] removes them all. Nodes that are down get no
    /// rules (their next namespace would not have them anyway); the recorded
    /// detail says so.
    pub async fn partition(&self, a: &[Target], b: &[Target], dir: Direction) -> Result<f64> {
        let (a, b) = self.resolve_groups(a, b).await?;
        let list = super::node_list;
        let extra = match dir {
            Direction::Both => format!("| {} (both ways)", list(&b)),
            Direction::OneWay => format!("-> {} (one way)", list(&b)),
        };
        self.cut(&a, &b, dir, Verb::Partition, extra).await
    }

    /// Cuts each of `target`'s nodes from every other node, both ways — but
    /// not from the host, so a client on the host still reaches (and writes
    /// to) it: the seed's split-brain situation when the target is the master.
    pub async fn isolate(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let mut first = None;
        for n in &nodes {
            let others: Vec<Node> = self
                .topology
                .nodes
                .iter()
                .filter(|o| o.name != n.name)
                .cloned()
                .collect();
            let extra = format!(
                "from {} (the host still reaches it)",
                super::node_list(&others)
            );
            let a = std::slice::from_ref(n);
            let t = self
                .cut(a, &others, Direction::Both, Verb::Isolate, extra)
                .await?;
            first.get_or_insert(t);
        }
        first.ok_or_else(|| Error::State(format!("isolate: `{target}` names no node")))
    }

    async fn cut(
        &self,
        a: &[Node],
        b: &[Node],
        dir: Direction,
        verb: Verb,
        extra: String,
    ) -> Result<f64> {
        // receiving node -> sources to drop there
        let mut plan: BTreeMap<String, Vec<(Ipv4Addr, PartitionKind)>> = BTreeMap::new();
        for x in a {
            for y in b {
                match dir {
                    Direction::Both => {
                        plan.entry(y.name.clone())
                            .or_default()
                            .push((x.ip, PartitionKind::All));
                        plan.entry(x.name.clone())
                            .or_default()
                            .push((y.ip, PartitionKind::All));
                    }
                    Direction::OneWay => plan
                        .entry(y.name.clone())
                        .or_default()
                        .push((x.ip, PartitionKind::Connections)),
                }
            }
        }
        let mut down = Vec::new();
        let mut pids = Vec::new();
        for to in plan.keys() {
            match self.pid(self.node(to)?).await? {
                0 => down.push(to.clone()),
                pid => pids.push((to.clone(), pid)),
            }
        }
        let extra = if down.is_empty() {
            extra
        } else {
            format!("{extra}; down, so no rules in: {}", down.join(","))
        };
        let t = self.record_verb(verb, a, &extra);
        let ports = format!(
            "{},{}",
            self.topology.redis_port, self.topology.sentinel_port
        );
        for (to, pid) in pids {
            let present = ensure_chain(pid).await?;
            for &(from, kind) in &plan[&to] {
                if present.contains(&(from, kind)) {
                    continue;
                }
                let mut args = vec!["-A".to_string(), CHAIN.to_string()];
                args.extend(rule_args(from, kind, &ports));
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                iptables(pid, &refs).await?;
            }
        }
        Ok(t)
    }

    /// Every partition rule in force, read from the running nodes'
    /// namespaces.
    pub async fn partitions(&self) -> Result<Vec<Partition>> {
        let mut out = Vec::new();
        for n in &self.topology.nodes {
            let pid = self.pid(n).await?;
            if pid == 0 {
                continue;
            }
            let listing = match iptables(pid, &["-S"]).await {
                Ok(l) => l,
                // the node went away between the two calls: nothing in force
                Err(_) if self.pid(n).await? != pid => continue,
                Err(e) => return Err(e),
            };
            for (ip, kind) in parse_rules(&listing).unwrap_or_default() {
                let from = self
                    .topology
                    .node_by_ip(ip)
                    .map_or_else(|| ip.to_string(), |n| n.name.clone());
                out.push(Partition {
                    from,
                    to: n.name.clone(),
                    kind,
                });
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes every partition and every impairment in every running node
    /// (idempotent: nodes without rules, down, or restarted into a new
    /// namespace are skipped). Returns the action's time; the recorded
    /// detail lists what was removed.
    pub async fn heal(&self) -> Result<f64> {
        let before = self.partitions().await?;
        let impaired = self.impairments().await?;
        let clocks = self.clocks().await?;
        let readonly = self.readonly_configs().await?;
        let mut what: Vec<String> = before.iter().map(Partition::to_string).collect();
        what.extend(impaired.iter().map(|i| i.to_string()));
        what.extend(clocks.iter().map(|c| c.to_string()));
        what.extend(
            readonly
                .iter()
                .map(|n| format!("{n} sentinel config read-only")),
        );
        let detail = if what.is_empty() {
            "nothing was cut or impaired".to_string()
        } else {
            what.join("; ")
        };
        let t = self.record_verb(Verb::Heal, &[], &detail);
        self.heal_impairments().await?;
        self.heal_clocks().await?;
        self.heal_configs().await?;
        for n in &self.topology.nodes {
            let pid = self.pid(n).await?;
            if pid == 0 {
                continue;
            }
            let r = async {
                let listing = iptables(pid, &["-S"]).await?;
                if listing
                    .lines()
                    .any(|l| l.trim() == format!("-A INPUT -j {CHAIN}"))
                {
                    iptables(pid, &["-D", "INPUT", "-j", CHAIN]).await?;
                }
                if parse_rules(&listing).is_some() {
                    iptables(pid, &["-F", CHAIN]).await?;
                    iptables(pid, &["-X", CHAIN]).await?;
                }
                Ok::<_, Error>(())
            }
            .await;
            match r {
                Err(_) if self.pid(n).await? != pid => continue,
                r => r?,
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_back_from_iptables_listing() {
        let listing = "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N TESTBED-CUT\n\
             -A INPUT -j TESTBED-CUT\n\
             -A TESTBED-CUT -s 198.18.139.12/32 -j DROP\n\
             -A TESTBED-CUT -s 198.18.139.13/32 -p tcp -m multiport --dports 6379,26379 -j DROP\n";
        assert_eq!(
            parse_rules(listing).unwrap(),
            vec![
                ("198.18.139.12".parse().unwrap(), PartitionKind::All),
                ("198.18.139.13".parse().unwrap(), PartitionKind::Connections)
            ]
        );
        assert_eq!(parse_rules("-P INPUT ACCEPT\n"), None);
        assert_eq!(parse_rules("-N TESTBED-CUT\n"), Some(vec![]));
    }

    #[test]
    fn rule_args_match_what_iptables_lists() {
        // `-A CHAIN` + these args is exactly the line `iptables -S` prints,
        // which is what `parse_rules` reads back.
        let ip = "198.18.0.12".parse().unwrap();
        let line = format!(
            "-A {CHAIN} {}",
            rule_args(ip, PartitionKind::Connections, "6379,26379").join(" ")
        );
        assert_eq!(
            line,
            "-A TESTBED-CUT -s 198.18.0.12/32 -p tcp -m multiport --dports 6379,26379 -j DROP"
        );
        assert_eq!(
            parse_rules(&format!("-N {CHAIN}\n{line}\n")).unwrap(),
            vec![(ip, PartitionKind::Connections)]
        );
        assert_eq!(
            rule_args(ip, PartitionKind::All, "1,2").join(" "),
            "-s 198.18.0.12/32 -j DROP"
        );
    }
}
