//! Faults of a node's redis-server alone: `DEBUG SLEEP` (it answers nothing
//! for a while) and `CLIENT PAUSE` (it holds its clients' commands, or only
//! the writes, back).

use super::{PauseMode, Target, Verb};
use crate::backend::client;
use crate::error::{Error, Result};
use crate::observe::timeline::Kind;
use crate::testbed::Testbed;
use futures_util::future::try_join_all;
use std::time::{Duration, Instant};

impl Testbed {
    /// `DEBUG SLEEP` on the nodes' redis-servers: each blocks for `d` (no
    /// command, no replication, no PING answered). Returns when every node
    /// has answered again; records `debug-sleep-returned` per node. Redis
    /// 7+ refuses DEBUG unless redis.conf has `enable-debug-command yes`
    /// (topology key `redis_conf`).
    pub async fn debug_sleep(&self, target: &Target, d: Duration) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let secs = format!("{:.3}", d.as_secs_f64());
        let t = self.record_verb(Verb::DebugSleep, &nodes, &format!("for {secs} s"));
        try_join_all(nodes.iter().map(|n| async {
            let addr = self.redis_addr(n);
            let cmd = redis::cmd("DEBUG").arg("SLEEP").arg(&secs).clone();
            let started = Instant::now();
            let answer = d + Duration::from_secs(5);
            client::query_waiting::<String>(addr, self.password(), &cmd, answer)
                .await
                .map_err(|e| match e {
                    Error::Redis { error, .. }
                        if error.to_string().contains("DEBUG command not allowed") =>
                    {
                        Error::State(format!(
                            "{} refuses DEBUG: {error}\n  hint: put `redis_conf = [\"enable-debug-command yes\"]` in the topology and bring the testbed up again",
                            n.name
                        ))
                    }
                    e => e,
                })?;
            self.timeline.record(
                Kind::Observation,
                "testbed",
                "debug-sleep-returned",
                format!("{} after {:.0} ms", n.name, started.elapsed().as_secs_f64() * 1000.0),
            );
            Ok::<_, Error>(())
        }))
        .await?;
        Ok(t)
    }

    /// `CLIENT PAUSE <ms> ALL|WRITE` on the nodes' redis-servers: returns at
    /// once; the node holds its clients' commands back for `d`.
    pub async fn client_pause(&self, target: &Target, d: Duration, mode: PauseMode) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let ms = d.as_millis().to_string();
        let extra = format!("for {ms} ms ({})", mode.as_arg());
        let t = self.record_verb(Verb::ClientPause, &nodes, &extra);
        for n in &nodes {
            let cmd = redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(&ms)
                .arg(mode.as_arg())
                .clone();
            client::query::<()>(self.redis_addr(n), self.password(), &cmd).await?;
        }
        Ok(t)
    }
}
