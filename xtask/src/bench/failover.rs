//! One failover run on a fresh testbed of containers: up, a sentinel-aware
//! client writing, `docker kill` of the master, every live sentinel's
//! `+switch-master`, the VIP answering as the new master (probed every
//! 25 ms; the VIP oracle confirms it afterwards), the client recovered, down.
//! Also the client loop and the sample type the loopback runs share.

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testbed::faults::Target;
use testbed::phases::Phases;
use testbed::timeline::{Event, Kind, Timeline};
use testbed::{Testbed, Topology, UpOptions};

/// One failover, measured.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverSample {
    /// The setting's key (`c7.0-2000`, `lo-2000`, ...).
    pub setting: String,
    /// Index of the run within its setting (runs with the same index of two
    /// settings ran one right after the other: a pair).
    pub index: usize,
    /// ms from the fault; `None` where the phase did not happen (or the run failed).
    pub phases: Option<Phases>,
    /// Bring-up to healthy before the fault.
    pub up_ms: Option<f64>,
    /// The wait between the client's first acknowledged write and the kill
    /// ([`kill_delay`]).
    pub kill_delay_ms: f64,
    /// Fault -> the VIP oracle held (coarser than `vip_answering_ms`: it
    /// polls every node and sentinel, and the dead node's sentinel costs a
    /// connect timeout per round).
    pub vip_oracle_ms: Option<f64>,
    /// `-failover-abort-not-elected` events (split votes) after the fault.
    pub failed_elections: usize,
    pub new_master: Option<String>,
    pub client_writes: usize,
    pub client_failed: usize,
    pub error: Option<String>,
}

impl FailoverSample {
    pub fn failed(setting: &str, index: usize, e: &anyhow::Error) -> FailoverSample {
        FailoverSample {
            setting: setting.to_string(),
            index,
            phases: None,
            up_ms: None,
            kill_delay_ms: kill_delay(index).as_secs_f64() * 1000.0,
            vip_oracle_ms: None,
            failed_elections: 0,
            new_master: None,
            client_writes: 0,
            client_failed: 0,
            error: Some(format!("{e:#}")),
        }
    }
}

/// One write of the client loop, on the timeline's clock.
#[derive(Debug, Clone)]
pub struct ClientOp {
    pub complete_ms: f64,
    pub ok: bool,
}

/// A sentinel-aware client writing one key every 20 ms (like the failover
/// suite's `sentinel_client_follows_failover`): after an error it drops the
/// connection and asks the sentinels again.
pub struct ClientLoop {
    ops: Arc<Mutex<Vec<ClientOp>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ClientLoop {
    pub fn start(mut sc: redis::sentinel::SentinelClient, tl: Timeline) -> ClientLoop {
        let ops: Arc<Mutex<Vec<ClientOp>>> = Arc::default();
        let stop: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (ops2, stop2) = (ops.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut conn: Option<redis::aio::MultiplexedConnection> = None;
            let mut i = 0u64;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                // 2 s: a new connection may first spend TCP_USER_TIMEOUT
                // (500 ms) on the dead node's sentinel, then as much on the
                // old master before the sentinels have switched
                let r = tokio::time::timeout(Duration::from_secs(2), async {
                    if conn.is_none() {
                        conn = Some(sc.get_async_connection().await?);
                    }
                    let c = conn.as_mut().expect("just set");
                    redis::cmd("SET")
                        .arg(format!("bench:{i}"))
                        .arg(i)
                        .query_async::<()>(c)
                        .await
                })
                .await;
                let ok = matches!(r, Ok(Ok(())));
                if !ok {
                    conn = None;
                }
                let op = ClientOp {
                    complete_ms: tl.now_ms(),
                    ok,
                };
                ops2.lock().expect("ops lock").push(op);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        ClientLoop { ops, stop, task }
    }

    fn ops(&self) -> Vec<ClientOp> {
        self.ops.lock().expect("ops lock").clone()
    }

    /// Waits for a first acknowledged write (the client works before the fault).
    pub async fn wait_first_ok(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while !self.ops().iter().any(|o| o.ok) {
            if start.elapsed() > timeout {
                bail!("the sentinel-aware client wrote nothing within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Waits until the client has failed after `t0` and written again;
    /// returns the acknowledgement time of that write (`None` on timeout).
    pub async fn wait_recovered(&self, t0: f64, timeout: Duration) -> Option<f64> {
        let start = Instant::now();
        loop {
            if let Some(t) = recovered(&self.ops(), t0) {
                return Some(t);
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the loop; returns (writes, failed writes).
    pub async fn stop(self) -> (usize, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // a write in flight ends within its 2 s bound
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
        let ops = self.ops.lock().expect("ops lock");
        (ops.len(), ops.iter().filter(|o| !o.ok).count())
    }
}

/// The acknowledgement time of the first write that succeeded after the
/// first write that failed at or after `t0`.
pub fn recovered(ops: &[ClientOp], t0: f64) -> Option<f64> {
    let first_fail = ops.iter().position(|o| !o.ok && o.complete_ms >= t0)?;
    ops[first_fail..]
        .iter()
        .find(|o| o.ok)
        .map(|o| o.complete_ms)
}

/// (start, end, role, run_id) of each VIP probe that answered.
type VipAnswers = Arc<Mutex<Vec<(f64, f64, String, String)>>>;

/// A new connection to the VIP every 25 ms: `INFO server replication`.
struct VipProbe {
    answers: VipAnswers,
    task: tokio::task::JoinHandle<()>,
}

impl VipProbe {
    fn start(vip: SocketAddrV4, password: Option<String>, tl: Timeline) -> VipProbe {
        let answers: VipAnswers = Arc::default();
        let a2 = answers.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(25));
            loop {
                tick.tick().await;
                let (tl, a, pw) = (tl.clone(), a2.clone(), password.clone());
                tokio::spawn(async move {
                    let start = tl.now_ms();
                    let cmd = redis::cmd("INFO").arg("server").arg("replication").clone();
                    let r = tokio::time::timeout(
                        Duration::from_millis(600),
                        testbed::client::query::<String>(vip, pw.as_deref(), &cmd),
                    )
                    .await;
                    if let Ok(Ok(text)) = r {
                        let i = testbed::client::parse_info(&text);
                        let get = |k: &str| i.get(k).cloned().unwrap_or_default();
                        let end = tl.now_ms();
                        a.lock().expect("answers lock").push((
                            start,
                            end,
                            get("role"),
                            get("run_id"),
                        ));
                    }
                });
            }
        });
        VipProbe { answers, task }
    }

    /// The end of the first probe started at or after `t0` that `run_id`
    /// answered as master.
    fn first(&self, t0: f64, run_id: &str) -> Option<f64> {
        self.answers
            .lock()
            .expect("answers lock")
            .iter()
            .filter(|(s, _, role, id)| *s >= t0 && role == "master" && id == run_id)
            .map(|(_, e, _, _)| *e)
            .min_by(f64::total_cmp)
    }

    async fn wait(&self, t0: f64, run_id: &str, timeout: Duration) -> Option<f64> {
        let start = Instant::now();
        loop {
            if let Some(t) = self.first(t0, run_id) {
                return Some(t);
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for VipProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The wait before the kill of run `index`: (index × golden ratio) mod 1
/// of a second. Sentinel pings every second, and when the kill falls in that
/// cycle moves `+sdown` by up to a second; a fixed sequence from the end of
/// bring-up to the kill would always hit the same point of it. This spreads
/// the runs of a setting evenly over the cycle (the way a real failure falls
/// at random), and the runs with the same index of two settings get the
/// same wait.
pub fn kill_delay(index: usize) -> Duration {
    Duration::from_secs_f64((index as f64 * 0.618_033_988_749_895).fract())
}

pub fn up_options() -> UpOptions {
    UpOptions {
        health_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

/// What a sentinel publishes when it finds no replica it may promote.
pub const NO_GOOD_REPLICA: &str = "-failover-abort-no-good-slave";

/// Waits until every sentinel in `live` published `+switch-master` at or
/// after `t0`; returns the new master's IP from the first one. Fails at once
/// on [`NO_GOOD_REPLICA`] (the retry would come 2 x failover-timeout later).
pub async fn wait_switch(
    tl: &Timeline,
    live: &[String],
    t0: f64,
    timeout: Duration,
) -> Result<std::net::Ipv4Addr> {
    let ev = tl
        .wait_for(
            "every live sentinel to publish +switch-master",
            timeout,
            |ev| {
                ev.iter().any(|e| e.t_ms >= t0 && e.name == NO_GOOD_REPLICA)
                    || live.iter().all(|n| {
                        ev.iter()
                            .any(|e| e.t_ms >= t0 && e.name == "+switch-master" && &e.source == n)
                    })
            },
        )
        .await?;
    if let Some(e) = ev
        .iter()
        .find(|e| e.t_ms >= t0 && e.name == NO_GOOD_REPLICA)
    {
        bail!(
            "{NO_GOOD_REPLICA} from {} at +{:.0} ms: the failover was aborted (Sentinel retries only after 2 x failover-timeout)",
            e.source,
            e.t_ms - t0
        );
    }
    let e = ev
        .iter()
        .find(|e| e.t_ms >= t0 && e.name == "+switch-master")
        .expect("the wait saw one");
    // `<master-name> <old-ip> <old-port> <new-ip> <new-port>`
    let ip = e.detail.split_whitespace().nth(3).unwrap_or_default();
    ip.parse()
        .map_err(|_| anyhow!("+switch-master without a new address: `{}`", e.detail))
}

/// How long a switch may take: a split vote makes Sentinel wait 2 x the
/// failover timeout before the next election.
pub fn switch_timeout(failover_timeout_ms: u64, down_after_ms: u64) -> Duration {
    Duration::from_millis(failover_timeout_ms * 3 + down_after_ms)
}

/// `SENTINEL DEBUG <param> <value>...` on every sentinel (none: nothing).
pub async fn sentinel_debug(sentinels: &[SocketAddrV4], params: &[(String, u32)]) -> Result<()> {
    if params.is_empty() {
        return Ok(());
    }
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("DEBUG");
    for (k, v) in params {
        cmd.arg(k).arg(*v);
    }
    for a in sentinels {
        testbed::client::query::<()>(*a, None, &cmd).await?;
    }
    Ok(())
}

/// A fresh testbed of `t`, `debug` set on its sentinels, one failover,
/// down. Never leaves the testbed.
pub async fn container_run(
    t: &Topology,
    debug: &[(String, u32)],
    setting: &str,
    index: usize,
) -> FailoverSample {
    let tb = match Testbed::up(t.clone(), up_options()).await {
        Ok(tb) => tb,
        Err(e) => return FailoverSample::failed(setting, index, &anyhow!(e).context("up")),
    };
    let sentinels: Vec<SocketAddrV4> = t.nodes.iter().map(|n| tb.sentinel_addr(n)).collect();
    let r = match sentinel_debug(&sentinels, debug).await {
        Ok(()) => drive(&tb, setting, index).await,
        Err(e) => Err(e),
    };
    let down = tb.down().await;
    match (r, down) {
        (Ok(s), Ok(_)) => s,
        (Err(e), _) => FailoverSample::failed(setting, index, &e),
        (Ok(_), Err(e)) => FailoverSample::failed(setting, index, &anyhow!(e).context("down")),
    }
}

async fn drive(tb: &Testbed, setting: &str, index: usize) -> Result<FailoverSample> {
    let t = &tb.topology;
    let master = t.initial_master().clone();
    let live: Vec<String> = t
        .nodes
        .iter()
        .filter(|n| n.name != master.name)
        .map(|n| n.name.clone())
        .collect();
    let client = ClientLoop::start(testbed::workload::sentinel_client(tb)?, tb.timeline.clone());
    client.wait_first_ok(Duration::from_secs(5)).await?;
    tokio::time::sleep(kill_delay(index)).await;
    let probe = VipProbe::start(
        tb.vip_addr(),
        tb.password().map(str::to_string),
        tb.timeline.clone(),
    );
    let t0 = tb.kill(&Target::Node(master.name.clone())).await?;
    let new_ip = wait_switch(
        &tb.timeline,
        &live,
        t0,
        switch_timeout(t.failover_timeout_ms, t.down_after_ms),
    )
    .await?;
    let new = t
        .node_by_ip(new_ip)
        .cloned()
        .with_context(|| format!("the sentinels promoted {new_ip}, no node of the testbed"))?;
    let run_id = testbed::client::info(tb.redis_addr(&new), tb.password(), "server")
        .await?
        .get("run_id")
        .cloned()
        .unwrap_or_default();
    let bound = Duration::from_secs(10);
    let vip_ms = probe.wait(t0, &run_id, bound).await;
    drop(probe);
    let (rec, oracle) = tokio::join!(
        client.wait_recovered(t0, bound),
        tb.wait_vip_on(&new, bound)
    );
    let (writes, failed) = client.stop().await;
    let oracle = oracle?;
    let mut events: Vec<Event> = tb
        .timeline
        .events()
        .into_iter()
        .map(|mut e| {
            if e.kind == Kind::Observation && e.name == "vip-answering" {
                e.name = "vip-oracle".into();
            }
            e
        })
        .collect();
    push_observation(&mut events, "vip-answering", vip_ms, &new.name);
    push_observation(
        &mut events,
        "client-recovered",
        rec,
        "sentinel-aware client",
    );
    let phases = testbed::phases::phases(
        &format!("{setting}#{index}"),
        &t.image,
        t.down_after_ms,
        &events,
        t0,
    );
    Ok(FailoverSample {
        setting: setting.to_string(),
        index,
        phases: Some(phases),
        up_ms: Some(tb.up_ms),
        kill_delay_ms: kill_delay(index).as_secs_f64() * 1000.0,
        vip_oracle_ms: Some(oracle - t0),
        failed_elections: count(&events, "-failover-abort-not-elected", t0),
        new_master: Some(new.name.clone()),
        client_writes: writes,
        client_failed: failed,
        error: None,
    })
}

pub fn push_observation(events: &mut Vec<Event>, name: &str, at: Option<f64>, detail: &str) {
    if let Some(t_ms) = at {
        events.push(Event {
            t_ms,
            kind: Kind::Observation,
            source: "bench".into(),
            name: name.into(),
            detail: detail.into(),
        });
        events.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    }
}

pub fn count(events: &[Event], name: &str, t0: f64) -> usize {
    events
        .iter()
        .filter(|e| e.t_ms >= t0 && e.name == name)
        .count()
}
