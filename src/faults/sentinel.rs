//! Faults that hit one process of a node only: its sentinel (kill, pause,
//! start, `SENTINEL SIMULATE-FAILURE`, a failover led by it) or its
//! redis-server (`DEBUG SLEEP`, `CLIENT PAUSE`). Each is recorded on the
//! timeline as an action.

use crate::backend::client;
use crate::error::{Error, Result};
use crate::faults::Target;
use crate::model::topology::Node;
use crate::observe::timeline::Kind;
use crate::testbed::Testbed;
use bollard::query_parameters::{InspectContainerOptions, KillContainerOptions};
use futures_util::future::try_join_all;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The `SENTINEL SIMULATE-FAILURE` flags Redis 7 and 8 accept (checked with
/// `SENTINEL SIMULATE-FAILURE HELP` on Redis 8.0.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulateFailure {
    /// Exit(99) right after winning the election for a failover.
    CrashAfterElection,
    /// Exit(99) right after promoting the chosen replica.
    CrashAfterPromotion,
}

impl SimulateFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            SimulateFailure::CrashAfterElection => "crash-after-election",
            SimulateFailure::CrashAfterPromotion => "crash-after-promotion",
        }
    }
}

impl FromStr for SimulateFailure {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "crash-after-election" => Ok(SimulateFailure::CrashAfterElection),
            "crash-after-promotion" => Ok(SimulateFailure::CrashAfterPromotion),
            _ => Err(format!(
                "`{s}`: want crash-after-election or crash-after-promotion"
            )),
        }
    }
}

/// What `CLIENT PAUSE` holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PauseMode {
    /// Every command of every client (replicas excepted).
    #[default]
    All,
    /// Only writes (and commands that may write).
    Write,
}

impl Testbed {
    /// `docker kill` of the nodes' sentinel containers only; redis keeps
    /// serving. Docker does not restart a container killed this way (its
    /// on-failure policy covers crashes only): see [`Testbed::start_sentinel`].
    pub async fn kill_sentinel(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_action("sentinel-kill", list(&nodes));
        for n in &nodes {
            let c = self.names.sentinel(&n.name);
            self.docker
                .kill_container(&c, None::<KillContainerOptions>)
                .await
                .map_err(|e| Error::docker(format!("kill {c}"), e))?;
        }
        Ok(t)
    }

    /// Starts stopped or killed sentinel containers (in their redis
    /// container's namespace, which must be running) and resubscribes.
    pub async fn start_sentinel(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_action("sentinel-start", list(&nodes));
        for n in &nodes {
            let c = self.names.sentinel(&n.name);
            self.docker
                .start_container(&c, None)
                .await
                .map_err(|e| Error::docker(format!("start {c}"), e))?;
            // a fresh process: the topology's timing profile is gone
            self.apply_profile(n).await?;
            self.timeline.subscribe(&n.name, self.sentinel_addr(n));
        }
        Ok(t)
    }

    /// Freezes the nodes' sentinel containers only (cgroup freezer).
    pub async fn pause_sentinel(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_action("sentinel-pause", list(&nodes));
        for n in &nodes {
            let c = self.names.sentinel(&n.name);
            self.docker
                .pause_container(&c)
                .await
                .map_err(|e| Error::docker(format!("pause {c}"), e))?;
        }
        Ok(t)
    }

    /// Thaws frozen sentinel containers.
    pub async fn unpause_sentinel(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_action("sentinel-unpause", list(&nodes));
        for n in &nodes {
            let c = self.names.sentinel(&n.name);
            self.docker
                .unpause_container(&c)
                .await
                .map_err(|e| Error::docker(format!("unpause {c}"), e))?;
        }
        Ok(t)
    }

    /// The state of `n`'s sentinel container: (running, paused, restart
    /// count). Docker counts the restarts its policy made (crashes).
    pub async fn sentinel_container(&self, n: &Node) -> Result<(bool, bool, i64)> {
        let c = self.names.sentinel(&n.name);
        let i = self
            .docker
            .inspect_container(&c, None::<InspectContainerOptions>)
            .await
            .map_err(|e| Error::docker(format!("inspect {c}"), e))?;
        let s = i.state.unwrap_or_default();
        Ok((
            s.running.unwrap_or(false),
            s.paused.unwrap_or(false),
            i.restart_count.unwrap_or(0),
        ))
    }

    /// `SENTINEL SIMULATE-FAILURE <mode>` on the nodes' sentinels: the next
    /// failover they lead crashes them (exit 99) at that point, and Docker's
    /// on-failure policy restarts them. Arm one sentinel and make it the
    /// leader with [`Testbed::failover_via`], or arm all before a fault.
    pub async fn simulate_failure(&self, target: &Target, mode: SimulateFailure) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_action(
            "simulate-failure",
            format!("{}: {}", list(&nodes), mode.as_str()),
        );
        for n in &nodes {
            let cmd = redis::cmd("SENTINEL")
                .arg("SIMULATE-FAILURE")
                .arg(mode.as_str())
                .clone();
            client::query::<String>(self.sentinel_addr(n), None, &cmd).await?;
        }
        Ok(t)
    }

    /// `SENTINEL FAILOVER <master>` on the sentinel of one given node, which
    /// then leads the failover (no election needed for a forced one).
    pub async fn failover_via(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let [n] = nodes.as_slice() else {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(Error::State(format!(
                "the failover's leader must be one node, not {}",
                names.join(",")
            )));
        };
        let m = &self.topology.master_name;
        let t = self.record_action("sentinel-failover", format!("{m} via {}", n.name));
        let cmd = redis::cmd("SENTINEL").arg("FAILOVER").arg(m).clone();
        client::query::<String>(self.sentinel_addr(n), None, &cmd).await?;
        Ok(t)
    }

    /// `DEBUG SLEEP` on the nodes' redis-servers: each blocks for `d` (no
    /// command, no replication, no PING answered). Returns when every node
    /// has answered again; records `debug-sleep-returned` per node. Redis
    /// 7+ refuses DEBUG unless redis.conf has `enable-debug-command yes`
    /// (topology key `redis_conf`).
    pub async fn debug_sleep(&self, target: &Target, d: Duration) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let secs = format!("{:.3}", d.as_secs_f64());
        let t = self.record_action("debug-sleep", format!("{} for {secs} s", list(&nodes)));
        try_join_all(nodes.iter().map(|n| async {
            let addr = self.redis_addr(n);
            let cmd = redis::cmd("DEBUG").arg("SLEEP").arg(&secs).clone();
            let started = Instant::now();
            long_query::<String>(addr, self.password(), &cmd, d + Duration::from_secs(5))
                .await
                .map_err(|e| match e {
                    Error::Redis { error: source, .. }
                        if source.to_string().contains("DEBUG command not allowed") =>
                    {
                        Error::State(format!(
                            "{} refuses DEBUG: {source}\n  hint: put `redis_conf = [\"enable-debug-command yes\"]` in the topology and bring the testbed up again",
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
        let mode = match mode {
            PauseMode::All => "ALL",
            PauseMode::Write => "WRITE",
        };
        let ms = d.as_millis().to_string();
        let t = self.record_action(
            "client-pause",
            format!("{} for {ms} ms ({mode})", list(&nodes)),
        );
        for n in &nodes {
            let cmd = redis::cmd("CLIENT").arg("PAUSE").arg(&ms).arg(mode).clone();
            client::query::<()>(self.redis_addr(n), self.password(), &cmd).await?;
        }
        Ok(t)
    }
}

fn list(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Like [`client::query`] but waits up to `response` for the answer (the
/// polling timeouts there are shorter than any sleep worth testing).
async fn long_query<T: redis::FromRedisValue>(
    addr: std::net::SocketAddrV4,
    password: Option<&str>,
    cmd: &redis::Cmd,
    response: Duration,
) -> Result<T> {
    let c = redis::Client::open(client::url(addr, password))
        .map_err(|e| Error::redis(addr, "client", e))?;
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(client::CONNECT_TIMEOUT))
        .set_response_timeout(Some(response));
    let mut conn = c
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .map_err(|e| Error::redis(addr, "connect", e))?;
    cmd.query_async(&mut conn)
        .await
        .map_err(|e| Error::redis(addr, "DEBUG SLEEP", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_failure_flags() {
        for m in [
            SimulateFailure::CrashAfterElection,
            SimulateFailure::CrashAfterPromotion,
        ] {
            assert_eq!(m.as_str().parse::<SimulateFailure>().unwrap(), m);
        }
        assert!("crash".parse::<SimulateFailure>().is_err());
    }
}
