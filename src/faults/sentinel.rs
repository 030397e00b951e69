//! Faults of a node's sentinel alone (redis keeps serving): killed by
//! Docker, crashed (SIGKILL of the process, which the container's on-failure
//! restart policy answers), frozen, thawed or started again, armed with
//! `SENTINEL SIMULATE-FAILURE`; and `SENTINEL FAILOVER`.

use super::{SimulateFailure, Target, Verb};
use crate::backend::client;
use crate::backend::containers::{self, Op};
use crate::error::{Error, Result};
use crate::model::topology::Node;
use crate::testbed::Testbed;

/// What Docker says of a node's sentinel container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentinelContainer {
    pub running: bool,
    pub paused: bool,
    /// Restarts made by the on-failure policy (crashes).
    pub restarts: i64,
}

impl Testbed {
    /// `docker kill` of the nodes' sentinel containers only. Docker does not
    /// restart a container killed this way (its on-failure policy covers
    /// crashes only): see [`Testbed::sentinel_resume`].
    pub async fn sentinel_kill(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_verb(Verb::SentinelKill, &nodes, "");
        for n in &nodes {
            containers::apply(&self.docker, &self.names.sentinel(&n.name), Op::Kill).await?;
        }
        Ok(t)
    }

    /// Crashes the sentinel processes (SIGKILL from the host): an unexpected
    /// exit, which the container's `on-failure` policy answers — the seed's
    /// supervisor `autorestart=unexpected`.
    pub async fn sentinel_crash(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let mut pids = Vec::new();
        for n in &nodes {
            let c = self.names.sentinel(&n.name);
            let st = containers::state(&self.docker, &c, &self.names.network)
                .await?
                .filter(|s| s.running && s.pid > 0)
                .ok_or_else(|| Error::State(format!("{c} is not running: nothing to crash")))?;
            pids.push(st.pid.to_string());
        }
        let t = self.record_verb(Verb::SentinelCrash, &nodes, "");
        for pid in pids {
            crate::backend::host::run_async("kill", &["-KILL", &pid]).await?;
        }
        Ok(t)
    }

    /// Freezes the nodes' sentinel containers only (cgroup freezer).
    pub async fn sentinel_pause(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_verb(Verb::SentinelPause, &nodes, "");
        for n in &nodes {
            containers::apply(&self.docker, &self.names.sentinel(&n.name), Op::Pause).await?;
        }
        Ok(t)
    }

    /// Thaws a frozen sentinel, or starts a killed one (in its redis
    /// container's namespace, which must be running), whichever each node's
    /// needs; a running one is left alone and the detail says so.
    pub async fn sentinel_resume(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let mut plan = Vec::new();
        for n in &nodes {
            plan.push((n, self.sentinel_container(n).await?));
        }
        let running: Vec<&str> = plan
            .iter()
            .filter(|(_, s)| s.running && !s.paused)
            .map(|(n, _)| n.name.as_str())
            .collect();
        let extra = if running.is_empty() {
            String::new()
        } else {
            format!("(already running: {})", running.join(","))
        };
        let t = self.record_verb(Verb::SentinelResume, &nodes, &extra);
        for (n, s) in plan {
            let c = self.names.sentinel(&n.name);
            if s.paused {
                containers::apply(&self.docker, &c, Op::Unpause).await?;
            } else if !s.running {
                containers::apply(&self.docker, &c, Op::Start).await?;
                // a fresh process: the topology's timing profile is gone
                self.apply_profile(n).await?;
                self.timeline.subscribe(&n.name, self.sentinel_addr(n));
            }
        }
        Ok(t)
    }

    /// The state of `n`'s sentinel container.
    pub async fn sentinel_container(&self, n: &Node) -> Result<SentinelContainer> {
        let c = self.names.sentinel(&n.name);
        let s = containers::state(&self.docker, &c, &self.names.network)
            .await?
            .ok_or_else(|| Error::State(format!("{c} does not exist")))?;
        Ok(SentinelContainer {
            running: s.running,
            paused: s.paused,
            restarts: s.restart_count,
        })
    }

    /// `SENTINEL SIMULATE-FAILURE <mode>` on the nodes' sentinels: the next
    /// failover they lead crashes them (exit 99) at that point, and Docker's
    /// on-failure policy restarts them. Arm one sentinel and make it the
    /// leader with `failover(Some(node))`, or arm all before a fault.
    pub async fn simulate_failure(&self, target: &Target, mode: SimulateFailure) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_verb(Verb::SimulateFailure, &nodes, mode.as_str());
        for n in &nodes {
            let cmd = redis::cmd("SENTINEL")
                .arg("SIMULATE-FAILURE")
                .arg(mode.as_str())
                .clone();
            client::query::<String>(self.sentinel_addr(n), None, &cmd).await?;
        }
        Ok(t)
    }

    /// `SENTINEL FAILOVER <master>`: on the sentinel of `via`, which then
    /// leads the failover (no election for a forced one), or on the first
    /// sentinel that accepts it.
    pub async fn failover(&self, via: Option<&Target>) -> Result<f64> {
        self.failover_with(via, false).await
    }

    /// [`Testbed::failover`], or with `coordinated` `SENTINEL FAILOVER
    /// <master> COORDINATED` (Valkey >= 9.0: an election, then the primary
    /// hands over with `FAILOVER TO`; older servers refuse the argument).
    pub async fn failover_with(&self, via: Option<&Target>, coordinated: bool) -> Result<f64> {
        let m = self.topology.master_name.clone();
        let mut cmd = redis::cmd("SENTINEL").arg("FAILOVER").arg(&m).clone();
        let mut detail = m.clone();
        if coordinated {
            cmd.arg("COORDINATED");
            detail += " COORDINATED";
        }
        if let Some(via) = via {
            let n = self.resolve_one(Verb::Failover, via).await?;
            let t = self.record_verb(Verb::Failover, std::slice::from_ref(&n), &detail);
            client::query::<String>(self.sentinel_addr(&n), None, &cmd).await?;
            return Ok(t);
        }
        let t = self.record_verb(Verb::Failover, &[], &detail);
        let mut refused = Vec::new();
        for n in &self.topology.nodes {
            match client::query::<String>(self.sentinel_addr(n), None, &cmd).await {
                Ok(_) => return Ok(t),
                Err(e) => refused.push(format!("{}: {e}", n.name)),
            }
        }
        Err(Error::State(format!(
            "no sentinel accepted SENTINEL FAILOVER {detail}: {}",
            refused.join("; ")
        )))
    }
}
