//! Faults of a whole node: its redis container killed, stopped, started,
//! restarted, frozen or thawed. The node's sentinel shares that container's
//! network namespace, so it loses the network with it; after a start or
//! restart the sentinel is restarted too, to join the new namespace.

use super::{Target, Verb};
use crate::backend::containers::{self, Op};
use crate::error::Result;
use crate::model::topology::Node;
use crate::testbed::Testbed;

impl Testbed {
    /// Applies `op` to the redis containers of `target`'s nodes, recorded as
    /// one action of `verb`.
    async fn node_op(&self, verb: Verb, target: &Target, op: Op) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_verb(verb, &nodes, "");
        for n in &nodes {
            containers::apply(&self.docker, &self.names.redis(&n.name), op).await?;
            if matches!(op, Op::Start | Op::Restart) {
                self.restart_sentinel(n).await?;
            }
        }
        Ok(t)
    }

    /// `docker kill` of the nodes' redis containers (a server dying).
    pub async fn kill(&self, target: &Target) -> Result<f64> {
        self.node_op(Verb::Kill, target, Op::Kill).await
    }

    /// Graceful stop (SIGTERM, then SIGKILL after 2 s).
    pub async fn stop(&self, target: &Target) -> Result<f64> {
        self.node_op(Verb::Stop, target, Op::Stop).await
    }

    /// Starts stopped or killed nodes: the redis container, then its sentinel.
    pub async fn start(&self, target: &Target) -> Result<f64> {
        self.node_op(Verb::Start, target, Op::Start).await
    }

    /// Kill and start again at once (a crash and a quick reboot).
    pub async fn restart(&self, target: &Target) -> Result<f64> {
        self.node_op(Verb::Restart, target, Op::Restart).await
    }

    /// Freezes the nodes' redis containers (cgroup freezer): the process
    /// stops, the kernel still answers ARP and holds the VIP.
    pub async fn pause(&self, target: &Target) -> Result<f64> {
        self.node_op(Verb::Pause, target, Op::Pause).await
    }

    /// Thaws frozen nodes.
    pub async fn resume(&self, target: &Target) -> Result<f64> {
        self.node_op(Verb::Resume, target, Op::Unpause).await
    }

    /// Restarts `n`'s sentinel container (it must join its redis
    /// container's new namespace), applies the profile and resubscribes.
    pub(crate) async fn restart_sentinel(&self, n: &Node) -> Result<()> {
        containers::apply(&self.docker, &self.names.sentinel(&n.name), Op::Restart).await?;
        self.apply_profile(n).await?;
        self.timeline.subscribe(&n.name, self.sentinel_addr(n));
        Ok(())
    }
}
