//! Who is master, as the sentinels see it, and the waits that follow a
//! fault: a quorum of sentinels switching, an old master rejoining as a
//! replica.

use crate::backend::client;
use crate::error::{Error, Result};
use crate::model::topology::Node;
use crate::observe::timeline::Kind;
use crate::observe::wait;
use crate::testbed::Testbed;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

impl Testbed {
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

    /// The master most reachable sentinels agree on (what the target
    /// `master` means).
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

    /// Waits until at least `quorum` live sentinels name `node` as master
    /// (`wait until = "master"`: the node need not be new).
    pub async fn wait_for_master(&self, node: &Node, timeout: Duration) -> Result<()> {
        let quorum = self.topology.quorum as usize;
        let what = format!("a quorum of live sentinels to name {} as master", node.name);
        wait::until(&what, timeout, wait::POLL, || async {
            let views = self.sentinel_masters().await;
            let n = views.values().filter(|ip| **ip == node.ip).count();
            if n >= quorum {
                Ok(())
            } else {
                Err(format!("sentinel views: {views:?}"))
            }
        })
        .await?;
        self.timeline.record(
            Kind::Observation,
            "testbed",
            "sentinels-name-master",
            &node.name,
        );
        Ok(())
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
