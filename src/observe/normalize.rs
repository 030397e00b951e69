//! Normalising what nodes and sentinels report (`INFO replication`, `ROLE`,
//! `SENTINEL MASTER`) so a snapshot changes only when behaviour changes:
//! stable field order, names instead of IPs, and run-specific values
//! (replication ids, offsets, lags, run ids, epochs, timings) redacted to
//! placeholders, in the spirit of nextest's `Redactor`.

use std::collections::BTreeMap;

/// Maps addresses to names (e.g. `198.18.4.12` -> `new-master`).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    names: BTreeMap<String, String>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Shows `ip` as `name`.
    pub fn name(mut self, ip: impl ToString, name: impl Into<String>) -> Redactor {
        self.names.insert(ip.to_string(), name.into());
        self
    }

    fn ip(&self, ip: &str) -> String {
        self.names
            .get(ip)
            .cloned()
            .unwrap_or_else(|| format!("[unknown {ip}]"))
    }

    /// Normalised `INFO replication`.
    pub fn info_replication(&self, info: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in info {
            let v = v.as_str();
            let nv = match k.as_str() {
                k if is_replica_line(k) => {
                    let f = fields(v);
                    let name = self.ip(f.get("ip").copied().unwrap_or("?"));
                    let val = format!(
                        "port={} state={}",
                        f.get("port").copied().unwrap_or("?"),
                        f.get("state").copied().unwrap_or("?")
                    );
                    out.insert(format!("replica[{name}]"), val);
                    continue;
                }
                "master_host" => self.ip(v),
                "master_replid" | "master_replid2" => replid(v),
                "second_repl_offset" if v == "-1" => v.to_string(),
                "master_last_io_seconds_ago" => "[seconds]".into(),
                "master_sync_total_bytes"
                | "master_sync_read_bytes"
                | "master_sync_left_bytes"
                | "master_sync_perc"
                | "master_sync_last_io_seconds_ago"
                | "repl_backlog_histlen" => "[amount]".into(),
                k if k.ends_with("_offset") => "[offset]".into(),
                k if k.contains("_buffer_") => "[amount]".into(),
                _ => v.to_string(),
            };
            out.insert(k.clone(), nv);
        }
        out
    }

    /// Normalised `ROLE` reply, as lines.
    pub fn role(&self, role: &redis::Value) -> String {
        let items = match role {
            redis::Value::Array(v) => v,
            other => return format!("[unexpected {other:?}]"),
        };
        let s = |v: &redis::Value| match v {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            redis::Value::SimpleString(s) => s.clone(),
            redis::Value::Int(i) => i.to_string(),
            other => format!("{other:?}"),
        };
        match items.first().map(s).as_deref() {
            Some("master") => {
                let mut replicas: Vec<String> = match items.get(2) {
                    Some(redis::Value::Array(rs)) => rs
                        .iter()
                        .map(|r| match r {
                            redis::Value::Array(f) if f.len() >= 2 => {
                                format!(
                                    "replica {}:{} offset=[offset]",
                                    self.ip(&s(&f[0])),
                                    s(&f[1])
                                )
                            }
                            other => format!("replica [unexpected {other:?}]"),
                        })
                        .collect(),
                    _ => vec![],
                };
                replicas.sort();
                std::iter::once("master offset=[offset]".to_string())
                    .chain(replicas)
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            Some("slave") if items.len() >= 4 => format!(
                "slave of {}:{} state={} offset=[offset]",
                self.ip(&s(&items[1])),
                s(&items[2]),
                s(&items[3])
            ),
            Some("sentinel") => "sentinel".into(),
            _ => format!("[unexpected {items:?}]"),
        }
    }

    /// Normalised `SENTINEL MASTER`: the fields that describe behaviour.
    pub fn sentinel_master(&self, m: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        const KEEP: &[&str] = &[
            "name",
            "ip",
            "port",
            "flags",
            "role-reported",
            "num-slaves",
            "num-other-sentinels",
            "quorum",
            "down-after-milliseconds",
            "failover-timeout",
            "parallel-syncs",
            "config-epoch",
        ];
        KEEP.iter()
            .filter_map(|k| {
                let v = m.get(*k)?;
                let v = match *k {
                    "ip" => self.ip(v),
                    "config-epoch" => "[epoch]".into(),
                    _ => v.clone(),
                };
                Some((k.to_string(), v))
            })
            .collect()
    }
}

fn is_replica_line(k: &str) -> bool {
    k.strip_prefix("slave")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn fields(v: &str) -> BTreeMap<&str, &str> {
    v.split(',').filter_map(|kv| kv.split_once('=')).collect()
}

fn replid(v: &str) -> String {
    if v.chars().all(|c| c == '0') {
        "[zero]".into()
    } else {
        "[replid]".into()
    }
}

/// The server line of an `INFO server` answer, for per-line snapshots:
/// `valkey-8.1` (Valkey also reports `redis_version`, its compatibility
/// level, so `valkey_version` wins) or `redis-8.0`.
pub fn server_line(info_server: &BTreeMap<String, String>) -> Option<String> {
    let (product, v) = match info_server.get("valkey_version") {
        Some(v) => ("valkey", v),
        None => ("redis", info_server.get("redis_version")?),
    };
    let mut parts = v.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    Some(format!("{product}-{major}.{minor}"))
}

/// A map as `key: value` lines (stable order), for snapshots.
pub fn lines(m: &BTreeMap<String, String>) -> String {
    m.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_name_the_product_and_its_minor_version() {
        let info = |t: &str| crate::backend::client::parse_info(t);
        assert_eq!(
            server_line(&info("redis_version:8.0.2\nredis_mode:standalone\n")).as_deref(),
            Some("redis-8.0")
        );
        assert_eq!(
            server_line(&info(
                "redis_version:7.2.4\nserver_name:valkey\nvalkey_version:9.1.2\n"
            ))
            .as_deref(),
            Some("valkey-9.1")
        );
        assert_eq!(server_line(&info("redis_version:7\n")), None);
        assert_eq!(server_line(&info("uptime_in_seconds:3\n")), None);
    }

    #[test]
    fn info_replication_is_stable_across_runs() {
        let r = Redactor::new()
            .name("198.18.0.12", "node2")
            .name("198.18.0.13", "node3");
        let a = crate::backend::client::parse_info(
            "role:master\nconnected_slaves:2\nslave1:ip=198.18.0.13,port=6379,state=online,offset=99,lag=1\nslave0:ip=198.18.0.12,port=6379,state=online,offset=98,lag=0\nmaster_replid:abc123\nmaster_replid2:0000\nmaster_repl_offset:98\nsecond_repl_offset:-1\nrepl_backlog_histlen:98\n",
        );
        let b = crate::backend::client::parse_info(
            "role:master\nconnected_slaves:2\nslave0:ip=198.18.0.13,port=6379,state=online,offset=7,lag=0\nslave1:ip=198.18.0.12,port=6379,state=online,offset=7,lag=0\nmaster_replid:fff\nmaster_replid2:0000\nmaster_repl_offset:7\nsecond_repl_offset:-1\nrepl_backlog_histlen:7\n",
        );
        assert_eq!(r.info_replication(&a), r.info_replication(&b));
        let out = lines(&r.info_replication(&a));
        assert!(
            out.contains("replica[node2]: port=6379 state=online\n"),
            "{out}"
        );
        assert!(out.contains("master_replid2: [zero]\n"), "{out}");
        assert!(out.contains("second_repl_offset: -1\n"), "{out}");
    }
}
