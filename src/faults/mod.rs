//! Faults as verbs on a running testbed, addressed by node name or role, and
//! the waits that follow them (switch, demotion). Each fault is recorded on
//! the timeline as an action.
//!
//! Invariant: a node is one server — its sentinel lives in its redis
//! container's network namespace. Killing or stopping a node's redis
//! container takes that namespace's interface away, so the node's sentinel is
//! cut off too (as when a server dies); starting the node again restarts its
//! sentinel so it joins the new namespace.

mod partition;
mod sentinel;

pub use partition::*;
pub use sentinel::{PauseMode, SimulateFailure};

use crate::backend::client;
use crate::error::{Error, Result};
use crate::model::topology::Node;
use crate::observe::timeline::Kind;
use crate::observe::wait;
use crate::testbed::Testbed;
use bollard::query_parameters::{
    KillContainerOptions, RestartContainerOptions, StopContainerOptions,
};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

/// What a fault is applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A node by name (`node1`).
    Node(String),
    /// Whichever node the sentinels report as master.
    Master,
    /// Every node except the master.
    Replicas,
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "master" => Target::Master,
            "replicas" => Target::Replicas,
            "" => return Err("empty target; use a node name, `master` or `replicas`".into()),
            n => Target::Node(n.to_string()),
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum ContainerOp {
    Kill,
    Stop,
    Start,
    Restart,
    Pause,
    Unpause,
}

impl ContainerOp {
    fn verb(self) -> &'static str {
        match self {
            ContainerOp::Kill => "kill",
            ContainerOp::Stop => "stop",
            ContainerOp::Start => "start",
            ContainerOp::Restart => "restart",
            ContainerOp::Pause => "pause",
            ContainerOp::Unpause => "unpause",
        }
    }
}

impl Testbed {
    /// The nodes `target` names now.
    pub async fn resolve(&self, target: &Target) -> Result<Vec<Node>> {
        match target {
            Target::Node(n) => Ok(vec![self.node(n)?.clone()]),
            Target::Master => Ok(vec![self.current_master().await?]),
            Target::Replicas => {
                let m = self.current_master().await?;
                Ok(self
                    .topology
                    .nodes
                    .iter()
                    .filter(|n| n.name != m.name)
                    .cloned()
                    .collect())
            }
        }
    }

    /// What each reachable sentinel reports as the master's IP.
    pub async fn sentinel_masters(&self) -> BTreeMap<String, Ipv4Addr> {
        let mut out = BTreeMap::new();
        for n in &self.topology.nodes {
            if let Ok(a) =
                client::master_addr(self.sentinel_addr(n), &self.topology.master_name).await
            {
                out.insert(n.name.clone(), *a.ip());
            }
        }
        out
    }

    /// The master most reachable sentinels agree on.
    pub async fn current_master(&self) -> Result<Node> {
        let views = self.sentinel_masters().await;
        let mut votes: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
        for ip in views.values() {
            *votes.entry(*ip).or_default() += 1;
        }
        let best = votes.into_iter().max_by_key(|(_, c)| *c).map(|(ip, _)| ip);
        best.and_then(|ip| self.topology.node_by_ip(ip).cloned())
            .ok_or_else(|| {
                Error::State(format!(
                    "no sentinel reports a known master (views: {views:?})"
                ))
            })
    }

    fn act(&self, verb: &str, nodes: &[Node]) -> f64 {
        let list: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        self.timeline
            .record(Kind::Action, "testbed", verb, list.join(","))
    }

    /// Applies `op` to the redis containers of `target`'s nodes, recorded as
    /// one action; after a start or restart the node's sentinel is restarted
    /// so it joins the new network namespace. Returns the action's time.
    async fn redis_op(&self, target: &Target, op: ContainerOp) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.act(op.verb(), &nodes);
        for n in &nodes {
            self.container_op(&self.names.redis(&n.name), op).await?;
            if matches!(op, ContainerOp::Start | ContainerOp::Restart) {
                self.restart_sentinel(n).await?;
            }
        }
        Ok(t)
    }

    async fn container_op(&self, c: &str, op: ContainerOp) -> Result<()> {
        let d = &self.docker;
        let r = match op {
            ContainerOp::Kill => d.kill_container(c, None::<KillContainerOptions>).await,
            // graceful: SIGTERM, then SIGKILL after 2 s
            ContainerOp::Stop => {
                d.stop_container(
                    c,
                    Some(StopContainerOptions {
                        t: Some(2),
                        ..Default::default()
                    }),
                )
                .await
            }
            ContainerOp::Start => d.start_container(c, None).await,
            ContainerOp::Restart => {
                d.restart_container(
                    c,
                    Some(RestartContainerOptions {
                        t: Some(0),
                        ..Default::default()
                    }),
                )
                .await
            }
            ContainerOp::Pause => d.pause_container(c).await,
            ContainerOp::Unpause => d.unpause_container(c).await,
        };
        r.map_err(|e| Error::docker(format!("{} {c}", op.verb()), e))
    }

    /// `docker kill` of the nodes' redis containers (a server dying).
    pub async fn kill(&self, target: &Target) -> Result<f64> {
        self.redis_op(target, ContainerOp::Kill).await
    }

    /// Graceful stop (SIGTERM, then SIGKILL after 2 s).
    pub async fn stop(&self, target: &Target) -> Result<f64> {
        self.redis_op(target, ContainerOp::Stop).await
    }

    /// Starts stopped/killed nodes: the redis container, then its sentinel.
    pub async fn start(&self, target: &Target) -> Result<f64> {
        self.redis_op(target, ContainerOp::Start).await
    }

    /// Kill and start again at once (a crash and a quick reboot).
    pub async fn restart(&self, target: &Target) -> Result<f64> {
        self.redis_op(target, ContainerOp::Restart).await
    }

    /// Freezes the nodes' redis containers (cgroup freezer): the process
    /// stops, the kernel still answers ARP and holds the VIP.
    pub async fn pause(&self, target: &Target) -> Result<f64> {
        self.redis_op(target, ContainerOp::Pause).await
    }

    /// Thaws frozen nodes.
    pub async fn unpause(&self, target: &Target) -> Result<f64> {
        self.redis_op(target, ContainerOp::Unpause).await
    }

    async fn restart_sentinel(&self, n: &Node) -> Result<()> {
        self.container_op(&self.names.sentinel(&n.name), ContainerOp::Restart)
            .await?;
        self.apply_profile(n).await?;
        self.timeline.subscribe(&n.name, self.sentinel_addr(n));
        Ok(())
    }

    /// Crashes the sentinel process of `node` (SIGKILL from the host): an
    /// unexpected exit, which the sentinel container's `on-failure` restart
    /// policy answers — the seed's supervisor `autorestart=unexpected`.
    /// (`docker kill` counts as a deliberate stop: no restart.)
    pub async fn crash_sentinel(&self, node: &Node) -> Result<f64> {
        let c = self.names.sentinel(&node.name);
        let st = crate::backend::containers::state(&self.docker, &c, &self.names.network)
            .await?
            .filter(|s| s.running && s.pid > 0)
            .ok_or_else(|| Error::State(format!("{c} is not running")))?;
        let t = self.act("sentinel-crash", std::slice::from_ref(node));
        crate::backend::host::run_async("kill", &["-KILL", &st.pid.to_string()]).await?;
        Ok(t)
    }

    /// `SENTINEL FAILOVER <master>` on the first sentinel that accepts it.
    pub async fn failover(&self) -> Result<f64> {
        let t = self.timeline.record(
            Kind::Action,
            "testbed",
            "sentinel-failover",
            &self.topology.master_name,
        );
        let mut last = None;
        for n in &self.topology.nodes {
            let cmd = redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg(&self.topology.master_name)
                .clone();
            match client::query::<String>(self.sentinel_addr(n), None, &cmd).await {
                Ok(_) => return Ok(t),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::State("no sentinel to ask".into())))
    }

    /// Waits until at least `quorum` sentinels report the same master other
    /// than `old` (a sentinel cut off with the old master may still report
    /// it); returns the new master.
    pub async fn wait_for_switch(&self, old: &Node, timeout: Duration) -> Result<Node> {
        let quorum = self.topology.quorum as usize;
        let what = format!(
            "a quorum of live sentinels to report a new master instead of {}",
            old.name
        );
        let ip = wait::until(&what, timeout, wait::POLL, || async {
            let views = self.sentinel_masters().await;
            let mut votes: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
            for ip in views.values().filter(|ip| **ip != old.ip) {
                *votes.entry(*ip).or_default() += 1;
            }
            match votes.into_iter().find(|(_, n)| *n >= quorum) {
                Some((ip, _)) => Ok(ip),
                None => Err(format!("sentinel views: {views:?}")),
            }
        })
        .await?;
        let node = self.topology.node_by_ip(ip).cloned().ok_or_else(|| {
            Error::State(format!(
                "the sentinels elected {ip}, which is no node of the topology"
            ))
        })?;
        self.timeline.record(
            Kind::Observation,
            "testbed",
            "sentinels-switched",
            &node.name,
        );
        Ok(node)
    }

    /// Waits until `node` is a replica of `master` with its link up.
    pub async fn wait_replica_of(
        &self,
        node: &Node,
        master: &Node,
        timeout: Duration,
    ) -> Result<()> {
        let what = format!(
            "{} to replicate {} with master_link_status:up",
            node.name, master.name
        );
        let addr = self.redis_addr(node);
        let pw = self.password().map(str::to_string);
        wait::until(&what, timeout, wait::POLL, || {
            let pw = pw.clone();
            async move {
                let i = client::info(addr, pw.as_deref(), "replication")
                    .await
                    .map_err(|e| e.to_string())?;
                let get = |k: &str| i.get(k).cloned().unwrap_or_default();
                if get("role") == "slave"
                    && get("master_host") == master.ip.to_string()
                    && get("master_link_status") == "up"
                {
                    Ok(())
                } else {
                    Err(format!(
                        "role:{} master_host:{} master_link_status:{}",
                        get("role"),
                        get("master_host"),
                        get("master_link_status")
                    ))
                }
            }
        })
        .await?;
        self.timeline.record(
            Kind::Observation,
            "testbed",
            "replica-linked",
            format!("{} -> {}", node.name, master.name),
        );
        Ok(())
    }
}
