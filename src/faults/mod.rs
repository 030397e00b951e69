//! Faults as verbs on a running testbed, one file per kind of fault:
//!
//! - `process`: a node's redis container (kill, stop, start, restart,
//!   pause, resume);
//! - `sentinel`: a node's sentinel only (kill, crash, pause, resume,
//!   `SIMULATE-FAILURE`) and `SENTINEL FAILOVER`;
//! - `server`: a node's redis-server only (`DEBUG SLEEP`, `CLIENT PAUSE`);
//! - `partition`: cuts between nodes (partition, isolate, heal, and the
//!   read-back of what is in force);
//! - `command`: one command sent to the servers or the sentinels as a
//!   scenario step (`command`, `sentinel-command`).
//! - `impair/`: degraded links — delay, loss, rate, flap (a userspace
//!   daemon on an NFQUEUE, and htb in the kernel);
//! - `clock`: clock jumps of one process (the testbed's clock shim);
//! - `disk`: a sentinel's config folder made read-only.
//! - `blackhole`: the client containers' packets to the nodes' sentinels
//!   dropped (`sentinel-blackhole`), in the same netfilter chain.
//!
//! The verbs, their names and what ends each are the table of
//! [`crate::model::verb`]; [`Testbed::apply`] carries out an [`Action`] (a
//! scenario step or a CLI command). Each fault records one timeline action
//! named after its verb, whose detail starts with the nodes it hit
//! (`node1,node2 ...`), and returns the action's time.
//!
//! Invariant: a node is one server — its sentinel lives in its redis
//! container's network namespace. Killing or stopping a node's redis
//! container takes that namespace's interface away, so the node's sentinel is
//! cut off too (as when a server dies); starting the node again restarts its
//! sentinel so it joins the new namespace.

mod blackhole;
pub mod clock;
mod command;
mod disk;
pub mod impair;
mod partition;
mod process;
mod sentinel;
mod server;

pub use crate::model::action::{Action, PauseMode, Process, SimulateFailure};
pub use crate::model::target::{parse_groups, Direction, Target};
pub use crate::model::verb::Verb;
pub use command::reply_text;
pub use impair::{End, Impaired, Impairment};
pub use partition::{Partition, PartitionKind, CHAIN};

use crate::error::{Error, Result};
use crate::model::topology::Node;
use crate::observe::timeline::Kind;
use crate::testbed::Testbed;
use std::time::Duration;

impl Testbed {
    /// Carries out a fault or repair action; returns the time of the action
    /// it recorded. Scenario control (`sleep`, `wait`) is the runner's.
    pub async fn apply(&self, a: &Action) -> Result<f64> {
        match a {
            Action::Kill { target } => self.kill(target).await,
            Action::Stop { target } => self.stop(target).await,
            Action::Start { target } => self.start(target).await,
            Action::Restart { target } => self.restart(target).await,
            Action::Pause { target } => self.pause(target).await,
            Action::Resume { target } => self.resume(target).await,
            Action::Isolate { target } => self.isolate(target).await,
            Action::Partition { a, b, direction } => self.partition(a, b, *direction).await,
            Action::Heal => self.heal().await,
            Action::Failover { via, coordinated } => {
                self.failover_with(via.as_ref(), *coordinated).await
            }
            Action::SentinelKill { target } => self.sentinel_kill(target).await,
            Action::SentinelCrash { target } => self.sentinel_crash(target).await,
            Action::SentinelPause { target } => self.sentinel_pause(target).await,
            Action::SentinelResume { target } => self.sentinel_resume(target).await,
            Action::SentinelBlackhole { target } => self.sentinel_blackhole(target).await,
            Action::SimulateFailure { target, mode } => self.simulate_failure(target, *mode).await,
            Action::DebugSleep { target, ms } => {
                self.debug_sleep(target, Duration::from_millis(*ms)).await
            }
            Action::ClientPause { target, ms, mode } => {
                self.client_pause(target, Duration::from_millis(*ms), *mode)
                    .await
            }
            Action::Command { target, command } => self.command(target, command).await,
            Action::SentinelCommand { target, command } => {
                self.sentinel_command(target, command).await
            }
            Action::Delay {
                a,
                b,
                ms,
                jitter_ms,
                direction,
            } => self.delay(a, b, *ms, *jitter_ms, *direction).await,
            Action::Loss {
                a,
                b,
                percent,
                direction,
            } => self.loss(a, b, *percent, *direction).await,
            Action::Rate {
                a,
                b,
                kbit,
                direction,
            } => self.rate(a, b, *kbit, *direction).await,
            Action::Flap {
                a,
                b,
                up_ms,
                down_ms,
                direction,
            } => self.flap(a, b, *up_ms, *down_ms, *direction).await,
            Action::ClockJump {
                target,
                process,
                seconds,
            } => self.clock_jump(target, *process, *seconds).await,
            Action::ConfigReadonly { target } => self.config_readonly(target).await,
            Action::Sleep { .. } | Action::Wait { .. } => Err(Error::State(format!(
                "`{}` is a scenario step, not a fault",
                a.verb()
            ))),
        }
    }

    /// The nodes `target` names now (`master` and `replicas` are asked of
    /// the sentinels at this moment).
    pub async fn resolve(&self, target: &Target) -> Result<Vec<Node>> {
        match target {
            Target::Node(n) => Ok(vec![self.node(n)?.clone()]),
            Target::InitialMaster => Ok(vec![self.topology.initial_master().clone()]),
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
            Target::Host => Err(Error::State(
                "`host` is not a node: only link impairments take it".into(),
            )),
        }
    }

    /// Exactly one node (a verb aimed at one node).
    pub(crate) async fn resolve_one(&self, verb: Verb, target: &Target) -> Result<Node> {
        let nodes = self.resolve(target).await?;
        match nodes.as_slice() {
            [n] => Ok(n.clone()),
            _ => Err(Error::State(format!(
                "`{verb}` is aimed at one node; `{target}` names {}",
                node_list(&nodes)
            ))),
        }
    }

    /// Records the action of `verb` on `nodes` (`extra` follows the node
    /// list) — the one recorder every fault uses.
    pub(crate) fn record_verb(&self, verb: Verb, nodes: &[Node], extra: &str) -> f64 {
        let mut detail = node_list(nodes);
        if !extra.is_empty() {
            if !detail.is_empty() {
                detail.push(' ');
            }
            detail.push_str(extra);
        }
        self.timeline
            .record(Kind::Action, "testbed", verb.name(), detail)
    }
}

/// `node1,node2`.
pub(crate) fn node_list(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
