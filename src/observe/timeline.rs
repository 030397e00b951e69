//! The event timeline: every sentinel's pub/sub events (all channels), the
//! testbed's own actions (faults) and observations (VIP answering, client
//! recovered), each with a monotonic timestamp in ms.
//!
//! Invariant: timestamps come from one `Instant` (the timeline's origin), so
//! events from different sentinels and the testbed's own records compare.

use futures_util::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Published by a sentinel (`+sdown`, `+switch-master`, ...).
    Sentinel,
    /// Something the testbed did (a fault: kill, pause, ...).
    Action,
    /// Something the testbed saw (VIP answering, client recovered, ...).
    Observation,
}

/// One entry.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// ms since the timeline's origin.
    pub t_ms: f64,
    pub kind: Kind,
    /// The node whose sentinel published it, or `testbed`.
    pub source: String,
    /// The channel (`+sdown`) or the action/observation name (`kill`).
    pub name: String,
    pub detail: String,
}

struct Shared {
    origin: Instant,
    /// /proc/uptime (s) at `origin`: maps the reconfig script's timestamps.
    uptime_at_origin: f64,
    events: Mutex<Vec<Event>>,
    /// Bumped on every new event so waiters wake up.
    changed: watch::Sender<usize>,
}

/// A cheaply clonable handle on the timeline.
#[derive(Clone)]
pub struct Timeline {
    shared: Arc<Shared>,
    subscribers: Arc<Mutex<BTreeMap<String, JoinHandle<()>>>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            shared: Arc::new(Shared {
                origin: Instant::now(),
                uptime_at_origin: uptime_s().unwrap_or(0.0),
                events: Mutex::new(Vec::new()),
                changed: watch::channel(0).0,
            }),
            subscribers: Arc::default(),
        }
    }

    /// ms since the origin, now.
    pub fn now_ms(&self) -> f64 {
        self.shared.origin.elapsed().as_secs_f64() * 1000.0
    }

    /// Converts a `/proc/uptime` reading (the clock the reconfig script
    /// logs with; containers share the host's kernel) to timeline ms.
    pub fn ms_from_uptime(&self, uptime_s: f64) -> f64 {
        (uptime_s - self.shared.uptime_at_origin) * 1000.0
    }

    /// The origin as an `Instant`.
    pub fn origin(&self) -> Instant {
        self.shared.origin
    }

    /// Appends an event stamped now.
    pub fn record(&self, kind: Kind, source: &str, name: &str, detail: impl Into<String>) -> f64 {
        let t_ms = self.now_ms();
        self.push(Event {
            t_ms,
            kind,
            source: source.to_string(),
            name: name.to_string(),
            detail: detail.into(),
        });
        t_ms
    }

    /// Appends an event with a given time (e.g. an observation timed earlier).
    pub fn push(&self, e: Event) {
        let mut ev = self.shared.events.lock().expect("timeline lock");
        ev.push(e);
        let n = ev.len();
        drop(ev);
        self.shared.changed.send_replace(n);
    }

    /// A copy of every event so far, in time order.
    pub fn events(&self) -> Vec<Event> {
        let mut v = self.shared.events.lock().expect("timeline lock").clone();
        v.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        v
    }

    /// Events named `name` at or after `since_ms`.
    pub fn find(&self, name: &str, since_ms: f64) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.name == name && e.t_ms >= since_ms)
            .collect()
    }

    /// Waits until `pred` holds over the events, or `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[Event]) -> bool,
    ) -> crate::Result<Vec<Event>> {
        let mut rx = self.shared.changed.subscribe();
        let start = Instant::now();
        loop {
            let ev = self.events();
            if pred(&ev) {
                return Ok(ev);
            }
            crate::testbed::interrupt::check(&format!("waiting for {what}"))?;
            let left = timeout.saturating_sub(start.elapsed());
            let woke = tokio::select! {
                r = tokio::time::timeout(left, rx.changed()) => r.is_ok(),
                _ = crate::testbed::interrupt::cancelled() => true,
            };
            if left.is_zero() || !woke {
                let names: Vec<String> = ev
                    .iter()
                    .filter(|e| e.kind == Kind::Sentinel)
                    .map(|e| format!("{}@{}", e.name, e.source))
                    .collect();
                return Err(crate::Error::Timeout {
                    what: what.to_string(),
                    elapsed_ms: start.elapsed().as_millis(),
                    missing: format!("the events so far were: {}", names.join(", ")),
                });
            }
        }
    }

    /// (Re)subscribes to the sentinel of `node` at `addr` on every channel.
    /// Called at bring-up and whenever a node's sentinel is restarted: a TCP
    /// connection into a netns that went away never reports an error.
    pub fn subscribe(&self, node: &str, addr: SocketAddrV4) {
        let tl = self.clone();
        let node_name = node.to_string();
        let task = tokio::spawn(async move {
            loop {
                match subscribe_once(&tl, &node_name, addr).await {
                    Ok(()) => tracing::debug!(node = %node_name, "sentinel pub/sub closed"),
                    Err(e) => tracing::debug!(node = %node_name, "sentinel pub/sub: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        if let Some(old) = self
            .subscribers
            .lock()
            .expect("subscribers lock")
            .insert(node.to_string(), task)
        {
            old.abort();
        }
    }

    /// Stops every subscription.
    pub fn stop(&self) {
        for (_, t) in std::mem::take(&mut *self.subscribers.lock().expect("subscribers lock")) {
            t.abort();
        }
    }

    /// The events as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.events()).expect("events serialise")
    }

    /// A readable table; times relative to `zero_ms` (e.g. the fault).
    pub fn render(&self, zero_ms: f64) -> String {
        render_table(&self.events(), zero_ms)
    }
}

/// The host's /proc/uptime in seconds (10 ms resolution).
pub fn uptime_s() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

async fn subscribe_once(tl: &Timeline, node: &str, addr: SocketAddrV4) -> redis::RedisResult<()> {
    let client = redis::Client::open(crate::backend::client::connection_info(addr, None))?;
    let mut ps = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
        })??;
    ps.psubscribe("*").await?;
    let mut stream = ps.on_message();
    while let Some(msg) = stream.next().await {
        let channel = msg.get_channel_name().to_string();
        let payload: String = msg.get_payload().unwrap_or_default();
        tl.record(Kind::Sentinel, node, &channel, payload);
    }
    Ok(())
}

/// Renders events as an aligned table.
pub fn render_table(events: &[Event], zero_ms: f64) -> String {
    let mut s = format!(
        "{:>10}  {:<11}  {:<8}  {:<22}  {}\n",
        "t (ms)", "kind", "source", "event", "detail"
    );
    for e in events {
        let kind = match e.kind {
            Kind::Sentinel => "sentinel",
            Kind::Action => "ACTION",
            Kind::Observation => "observation",
        };
        s += &format!(
            "{:>10.0}  {:<11}  {:<8}  {:<22}  {}\n",
            e.t_ms - zero_ms,
            kind,
            e.source,
            e.name,
            e.detail
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_on_new_events() {
        let tl = Timeline::new();
        let t2 = tl.clone();
        tokio::spawn(async move {
            t2.record(
                Kind::Sentinel,
                "node2",
                "+sdown",
                "master mymaster 1.2.3.4 6379",
            );
        });
        let ev = tl
            .wait_for("+sdown", Duration::from_secs(5), |ev| {
                ev.iter().any(|e| e.name == "+sdown")
            })
            .await
            .unwrap();
        assert_eq!(ev[0].source, "node2");
        let e = tl
            .wait_for("+odown", Duration::from_millis(50), |ev| {
                ev.iter().any(|e| e.name == "+odown")
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("+sdown@node2"), "{e}");
    }

    #[test]
    fn table_is_relative_to_zero() {
        let ev = vec![Event {
            t_ms: 1500.0,
            kind: Kind::Action,
            source: "testbed".into(),
            name: "kill".into(),
            detail: "node1".into(),
        }];
        let t = render_table(&ev, 1000.0);
        assert!(
            t.lines()
                .nth(1)
                .unwrap()
                .trim_start()
                .starts_with("500  ACTION"),
            "{t}"
        );
    }
}
