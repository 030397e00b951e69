//! A small Jepsen-style write workload: clients write unique keys at a set
//! rate through a chosen path (the VIP, a sentinel-aware client, a fixed
//! node, or an external command) and record every operation with its invoke
//! and complete time and its outcome.
//!
//! Invariant: every operation gets a unique id, and an operation whose outcome
//! is not known (a timeout) is recorded as `Unknown`, never as failed.

pub mod checker;
pub mod container;
pub mod external;

use crate::backend::client;
use crate::observe::timeline::Timeline;
use crate::testbed::Testbed;
use serde::{Deserialize, Serialize};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How the client reaches the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientPath {
    /// A plain connection to the VIP (what the first seed's clients do).
    Vip,
    /// redis-rs's sentinel client: resolve the master through the sentinels,
    /// re-resolve after an error (what the second seed's redis-py does).
    Sentinel,
    /// A fixed node, by name (a scenario's `master` is resolved to the
    /// initial master's name when the file is read).
    Node(String),
}

/// The outcome of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged by a server.
    Ok,
    /// Refused: the write certainly did not happen (READONLY, NOREPLICAS,
    /// connection refused, ...). `kind` is the error's first word.
    Error { kind: String, message: String },
    /// No answer in time: it may or may not have happened.
    Unknown,
}

/// One operation of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub process: String,
    /// Timeline ms.
    pub invoke_ms: f64,
    pub complete_ms: f64,
    pub outcome: Outcome,
}

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadSpec {
    pub path: ClientPath,
    /// Writes per second (per client).
    pub rate: u32,
    /// An operation without an answer after this long is `Unknown`.
    pub timeout_ms: u64,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            path: ClientPath::Vip,
            rate: 50,
            timeout_ms: 500,
        }
    }
}

/// The prefix of the built-in workload's keys (an external client's are
/// `wl:<name>:`, see [`crate::workload::external::key_prefix`]).
pub const KEY_PREFIX: &str = "wl:";

/// The key an operation of the built-in workload writes.
pub fn key(id: u64) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// A running workload. Dropping it stops its writer at once (an error
/// between `start` and `stop` must not leave a writer behind that writes
/// into the next run's keyspace).
pub struct Workload {
    stop: Arc<AtomicBool>,
    /// The invoke time (timeline ms, f64 bits) of the last acknowledged write.
    last_ok: Arc<std::sync::atomic::AtomicU64>,
    task: Option<JoinHandle<Vec<Op>>>,
}

impl Workload {
    /// Starts writing now.
    pub fn start(tb: &Testbed, spec: &WorkloadSpec) -> crate::Result<Workload> {
        let target = Target::new(tb, &spec.path)?;
        Ok(Self::spawn(target, spec, tb.timeline.clone()))
    }

    /// Starts writing to a fixed address (no testbed needed).
    pub fn start_at(
        addr: SocketAddrV4,
        password: Option<&str>,
        spec: &WorkloadSpec,
        timeline: Timeline,
    ) -> Workload {
        let target = Target::Fixed(addr, password.map(str::to_string));
        Self::spawn(target, spec, timeline)
    }

    fn spawn(target: Target, spec: &WorkloadSpec, timeline: Timeline) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let last_ok = Arc::new(std::sync::atomic::AtomicU64::new((-1.0f64).to_bits()));
        let task = tokio::spawn(run(
            target,
            spec.clone(),
            timeline,
            stop.clone(),
            last_ok.clone(),
        ));
        Workload {
            stop,
            last_ok,
            task: Some(task),
        }
    }

    /// Waits until a write invoked at or after `t_ms` (timeline ms) has been
    /// acknowledged: the client has recovered. Bounded by `timeout`.
    pub async fn wait_acknowledged_after(&self, t_ms: f64, timeout: Duration) -> crate::Result<()> {
        let start = std::time::Instant::now();
        loop {
            if f64::from_bits(self.last_ok.load(Ordering::Relaxed)) >= t_ms {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(crate::Error::State(format!(
                    "no write invoked after {t_ms:.0} ms was acknowledged within {timeout:?}"
                )));
            }
            crate::testbed::interrupt::sleep(
                Duration::from_millis(20),
                "waiting for an acknowledged write",
            )
            .await?;
        }
    }

    /// Stops and returns the history.
    pub async fn stop(mut self) -> crate::Result<Vec<Op>> {
        self.stop.store(true, Ordering::Relaxed);
        let task = self.task.take().expect("only stop and drop take the task");
        task.await
            .map_err(|e| crate::Error::State(format!("the workload task failed: {e}")))
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

enum Target {
    Fixed(SocketAddrV4, Option<String>),
    Sentinel(Box<redis::sentinel::SentinelClient>),
}

impl Target {
    fn new(tb: &Testbed, path: &ClientPath) -> crate::Result<Target> {
        let pw = tb.password().map(str::to_string);
        Ok(match path {
            ClientPath::Vip => Target::Fixed(tb.vip_addr(), pw),
            ClientPath::Node(n) => Target::Fixed(tb.redis_addr(tb.node(n)?), pw),
            ClientPath::Sentinel => Target::Sentinel(Box::new(sentinel_client(tb)?)),
        })
    }
}

/// A sentinel-aware client for the testbed (sentinels in node order, each
/// socket bounded at 500 ms: see [`client::sentinel_client`]).
pub fn sentinel_client(tb: &Testbed) -> crate::Result<redis::sentinel::SentinelClient> {
    let t = &tb.topology;
    let sentinels: Vec<SocketAddrV4> = t.nodes.iter().map(|n| tb.sentinel_addr(n)).collect();
    client::sentinel_client(
        &sentinels,
        &t.master_name,
        tb.password(),
        Duration::from_millis(500),
    )
}

async fn run(
    mut target: Target,
    spec: WorkloadSpec,
    tl: Timeline,
    stop: Arc<AtomicBool>,
    last_ok: Arc<std::sync::atomic::AtomicU64>,
) -> Vec<Op> {
    let period = Duration::from_secs_f64(1.0 / f64::from(spec.rate.max(1)));
    let timeout = Duration::from_millis(spec.timeout_ms);
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut ops = Vec::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut id = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        id += 1;
        let invoke_ms = tl.now_ms();
        // Until the command is sent, a failure means it certainly did not
        // happen (no connection, no master known): refused, not unknown.
        let mut sent = false;
        let result = tokio::time::timeout(timeout, async {
            if conn.is_none() {
                conn = Some(match &mut target {
                    Target::Fixed(addr, pw) => client::connect(*addr, pw.as_deref())
                        .await
                        .map_err(redis_error_of)?,
                    Target::Sentinel(sc) => sc.get_async_connection().await?,
                });
            }
            let c = conn.as_mut().expect("just set");
            sent = true;
            redis::cmd("SET")
                .arg(key(id))
                .arg(id)
                .query_async::<()>(c)
                .await
        })
        .await;
        let outcome = match result {
            Ok(Ok(())) => Outcome::Ok,
            Ok(Err(e)) if !sent => {
                conn = None;
                not_sent(&e)
            }
            Ok(Err(e)) => {
                conn = None;
                classify(&e)
            }
            Err(_) if !sent => {
                conn = None;
                Outcome::Error {
                    kind: "CONNECT-TIMEOUT".into(),
                    message: format!("no connection within {} ms", spec.timeout_ms),
                }
            }
            Err(_) => {
                conn = None;
                Outcome::Unknown
            }
        };
        if outcome == Outcome::Ok {
            last_ok.store(invoke_ms.to_bits(), Ordering::Relaxed);
        }
        ops.push(Op {
            id,
            process: "client".into(),
            invoke_ms,
            complete_ms: tl.now_ms(),
            outcome,
        });
    }
    ops
}

fn redis_error_of(e: crate::Error) -> redis::RedisError {
    match e {
        crate::Error::Redis { error, .. } => error,
        other => redis::RedisError::from(std::io::Error::other(other.to_string())),
    }
}

/// An error before the command was sent: the write did not happen.
fn not_sent(e: &redis::RedisError) -> Outcome {
    let kind = match e.code() {
        Some(c) => c.to_string(),
        None if e.is_connection_refusal() => "CONNREFUSED".into(),
        None => "CONNECT".into(),
    };
    Outcome::Error {
        kind,
        message: e.to_string(),
    }
}

/// Sorts an error into refused (the write did not happen) or unknown.
fn classify(e: &redis::RedisError) -> Outcome {
    if e.is_timeout() {
        return Outcome::Unknown;
    }
    // A connection dropped mid-request may have delivered the write.
    if e.is_connection_dropped() && !e.is_connection_refusal() {
        return Outcome::Unknown;
    }
    let kind = e.code().map(str::to_string).unwrap_or_else(|| {
        if e.is_connection_refusal() {
            "CONNREFUSED".into()
        } else {
            "IO".into()
        }
    });
    Outcome::Error {
        kind,
        message: e.to_string(),
    }
}

/// Reads an external client's history: one JSON object per line with
/// `id`, `invoke_ms`, `complete_ms`, `outcome` ("ok" | "error" | "unknown")
/// and an optional `error`. Lets any client library be tested the same way.
/// Protocol v2 clients (`fixtures/clients/<language>/`) print a first line
/// `{"meta": {...}}` (library, version, settings) before their writes: it is
/// skipped here (see [`external::meta_of`]).
pub fn parse_external(process: &str, text: &str) -> crate::Result<Vec<Op>> {
    #[derive(Deserialize)]
    struct Line {
        id: u64,
        invoke_ms: f64,
        complete_ms: f64,
        outcome: String,
        #[serde(default)]
        error: Option<String>,
    }
    let mut ops = Vec::new();
    for (i, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        if i == 0 && external::meta_of(l).is_some() {
            continue;
        }
        let v: Line = serde_json::from_str(l).map_err(|e| crate::Error::Input {
            at: format!("{process}: line {}:{}", i + 1, e.column()),
            message: format!("not an operation record: {e}"),
            hint: Some("print one JSON object per line: {\"id\":1,\"invoke_ms\":..,\"complete_ms\":..,\"outcome\":\"ok\"}".into()),
        })?;
        let outcome = match v.outcome.as_str() {
            "ok" => Outcome::Ok,
            "unknown" | "timeout" => Outcome::Unknown,
            _ => {
                let message = v.error.unwrap_or_default();
                let kind = message
                    .split_whitespace()
                    .next()
                    .unwrap_or("ERR")
                    .to_string();
                Outcome::Error { kind, message }
            }
        };
        ops.push(Op {
            id: v.id,
            process: process.to_string(),
            invoke_ms: v.invoke_ms,
            complete_ms: v.complete_ms,
            outcome,
        });
    }
    Ok(ops)
}

/// Which of `ids` (keys `<prefix><id>`) exist on `addr` (the final master),
/// read in batches.
pub async fn read_present(
    addr: SocketAddrV4,
    password: Option<&str>,
    prefix: &str,
    ids: impl IntoIterator<Item = u64>,
) -> crate::Result<std::collections::HashSet<u64>> {
    // present = has a value: the keys of what `read_values` reads
    Ok(read_values(addr, password, prefix, ids)
        .await?
        .into_keys()
        .collect())
}

/// What each of `ids` (keys `<prefix><id>`) holds on `addr` (the final
/// master) as an integer; absent keys are left out, and a value that is not
/// an integer reads as 1 (it is there once). Read in batches.
pub async fn read_values(
    addr: SocketAddrV4,
    password: Option<&str>,
    prefix: &str,
    ids: impl IntoIterator<Item = u64>,
) -> crate::Result<std::collections::BTreeMap<u64, i64>> {
    let ids: Vec<u64> = ids.into_iter().collect();
    let mut c = client::connect(addr, password).await?;
    let mut out = std::collections::BTreeMap::new();
    for chunk in ids.chunks(500) {
        let mut cmd = redis::cmd("MGET");
        for id in chunk {
            cmd.arg(format!("{prefix}{id}"));
        }
        let vals: Vec<Option<String>> = cmd
            .query_async(&mut c)
            .await
            .map_err(|e| crate::Error::redis(addr, "MGET", e))?;
        for (id, v) in chunk.iter().zip(vals) {
            if let Some(v) = v {
                out.insert(*id, v.trim().parse().unwrap_or(1));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fake server that counts the commands it gets and acknowledges
    /// each with +OK.
    async fn counting_server() -> (SocketAddrV4, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let std::net::SocketAddr::V4(addr) = l.local_addr().unwrap() else {
            unreachable!()
        };
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let n = n2.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(k) = s.read(&mut buf).await {
                        if k == 0 {
                            return;
                        }
                        // one reply per command (each starts with `*`)
                        for _ in buf[..k].iter().filter(|b| **b == b'*') {
                            n.fetch_add(1, Ordering::SeqCst);
                            if s.write_all(b"+OK\r\n").await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, n)
    }

    #[test]
    fn a_v2_meta_line_is_skipped_only_first() {
        let meta = r#"{"meta":{"client":"x","library":"y","version":"1"}}"#;
        let op =
            r#"{"id":1,"invoke_ms":1.5,"complete_ms":2.0,"outcome":"error","error":"READONLY no"}"#;
        let ops = parse_external("x", &format!("{meta}\n{op}\n")).unwrap();
        assert_eq!(ops.len(), 1);
        assert!(matches!(&ops[0].outcome, Outcome::Error { kind, .. } if kind == "READONLY"));
        assert!(parse_external("x", &format!("{op}\n{meta}\n")).is_err());
    }

    #[tokio::test]
    async fn a_dropped_workload_stops_writing() {
        let (addr, n) = counting_server().await;
        let spec = WorkloadSpec {
            rate: 200,
            ..Default::default()
        };
        let wl = Workload::start_at(addr, None, &spec, Timeline::new());
        crate::observe::wait::until(
            "the workload to write",
            Duration::from_secs(5),
            Duration::from_millis(5),
            || {
                let k = n.load(Ordering::SeqCst);
                async move {
                    if k > 5 {
                        Ok(())
                    } else {
                        Err(format!("{k} commands"))
                    }
                }
            },
        )
        .await
        .unwrap();
        drop(wl);
        let after_drop = n.load(Ordering::SeqCst);
        // 200 writes/s: 100 ms is 20 writes if it were still running
        tokio::time::sleep(Duration::from_millis(100)).await;
        let later = n.load(Ordering::SeqCst);
        assert!(
            later <= after_drop + 1,
            "{after_drop} then {later}: it writes on"
        );
    }
}
