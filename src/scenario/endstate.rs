//! Each node as the run left it, read before the testbed goes: the INFO
//! fields `info.<node>.<field>` may name (and DBSIZE), its sentinel's view
//! (`SENTINEL MASTER`, the master it names, INFO sentinel) and its sentinel
//! container (restarts, running). What cannot be read is said per node, so
//! an expectation on it fails with the reason instead of a default.

use super::{INFO_FIELDS, SENTINEL_FIELDS};
use crate::backend::client;
use crate::testbed::Testbed;
use serde::Serialize;
use std::collections::BTreeMap;

/// One node at the end of a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct NodeEnd {
    /// INFO fields (those of [`INFO_FIELDS`]) and `dbsize`.
    pub info: BTreeMap<String, String>,
    /// SENTINEL MASTER's fields, `master` (the node it names as master) and
    /// INFO sentinel's (those of [`SENTINEL_FIELDS`]).
    pub sentinel: BTreeMap<String, String>,
    /// Restarts of the sentinel container by its on-failure policy.
    pub sentinel_restarts: Option<i64>,
    /// Whether the sentinel container runs (and is not frozen).
    pub sentinel_running: Option<bool>,
    /// What could not be read, by part (`info`, `sentinel`, `container`).
    pub problems: BTreeMap<String, String>,
}

/// Reads every node (a node that is down answers within the polling
/// timeouts and is recorded as unreadable).
pub async fn collect(tb: &Testbed) -> BTreeMap<String, NodeEnd> {
    let mut out = BTreeMap::new();
    let m = &tb.topology.master_name;
    for n in &tb.topology.nodes {
        let mut e = NodeEnd::default();
        let (addr, pw) = (tb.redis_addr(n), tb.password());
        match client::query::<String>(addr, pw, &redis::cmd("INFO")).await {
            Ok(text) => {
                let all = client::parse_info(&text);
                e.info = keep(&all, INFO_FIELDS);
                match client::query::<i64>(addr, pw, &redis::cmd("DBSIZE")).await {
                    Ok(k) => {
                        e.info.insert("dbsize".into(), k.to_string());
                    }
                    Err(err) => {
                        e.problems.insert("dbsize".into(), err.to_string());
                    }
                }
            }
            Err(err) => {
                e.problems.insert("info".into(), err.to_string());
            }
        }
        let s = tb.sentinel_addr(n);
        match client::sentinel_master(s, m).await {
            Ok(fields) => {
                e.sentinel = keep(&fields, SENTINEL_FIELDS);
                if let Ok(a) = client::master_addr(s, m).await {
                    let named = tb.topology.node_by_ip(*a.ip());
                    let name = named.map_or_else(|| a.ip().to_string(), |n| n.name.clone());
                    e.sentinel.insert("master".into(), name);
                }
                if let Ok(i) = client::info(s, None, "sentinel").await {
                    e.sentinel.extend(keep(&i, SENTINEL_FIELDS));
                }
            }
            Err(err) => {
                e.problems.insert("sentinel".into(), err.to_string());
            }
        }
        match tb.sentinel_container(n).await {
            Ok(c) => {
                e.sentinel_restarts = Some(c.restarts);
                e.sentinel_running = Some(c.running && !c.paused);
            }
            Err(err) => {
                e.problems.insert("container".into(), err.to_string());
            }
        }
        out.insert(n.name.clone(), e);
    }
    out
}

fn keep(all: &BTreeMap<String, String>, wanted: &[&str]) -> BTreeMap<String, String> {
    all.iter()
        .filter(|(k, _)| wanted.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
