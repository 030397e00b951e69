//! What a report needs from the testbed before it goes: each node's INFO
//! replication, ROLE and its sentinel's view, the configs as rendered and as
//! the run left them, every container's log. Whatever cannot be read is
//! said so in its place and in `unmeasured`.

use crate::backend::client;
use crate::model::render;
use crate::observe::normalize::Redactor;
use crate::testbed::Testbed;
use std::collections::BTreeMap;

/// Per node, per command, the raw answer; plus the server version.
pub type Snapshots = BTreeMap<String, BTreeMap<String, String>>;

pub async fn snapshots(tb: &Testbed) -> (Snapshots, Option<String>) {
    let mut out = BTreeMap::new();
    let mut version = None;
    let names = tb.topology.nodes.iter().fold(Redactor::new(), |r, n| {
        r.name(n.ip, format!("{} ({})", n.name, n.ip))
    });
    let no_answer = |e: crate::Error| format!("(no answer: {e})");
    for n in &tb.topology.nodes {
        let mut m = BTreeMap::new();
        let (addr, pw) = (tb.redis_addr(n), tb.password());
        let info = redis::cmd("INFO").arg("replication").clone();
        let r = client::query::<String>(addr, pw, &info).await;
        m.insert("INFO replication".into(), r.unwrap_or_else(no_answer));
        if let Ok(i) = client::info(addr, pw, "server").await {
            // Valkey also reports redis_version (its compatibility level)
            version = version.or(i.get("valkey_version").or(i.get("redis_version")).cloned());
        }
        let role = client::query::<redis::Value>(addr, pw, &redis::cmd("ROLE")).await;
        m.insert(
            "ROLE".into(),
            role.map(|v| names.role(&v)).unwrap_or_else(no_answer),
        );
        let sm = client::sentinel_master(tb.sentinel_addr(n), &tb.topology.master_name).await;
        m.insert(
            "SENTINEL MASTER".into(),
            sm.map(|m| m.iter().map(|(k, v)| format!("{k}: {v}\n")).collect())
                .unwrap_or_else(no_answer),
        );
        out.insert(n.name.clone(), m);
    }
    (out, version)
}

/// The configs as rendered, and as the run left them (Sentinel rewrites its
/// own; a failover rewrites the replicas'). An unreadable file is an error
/// in `problems`.
pub async fn configs(tb: &Testbed, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for n in &tb.topology.nodes {
        out.insert(
            format!("{}/redis.conf (rendered)", n.name),
            render::redis_conf(&tb.topology, n),
        );
        out.insert(
            format!("{}/sentinel.conf (rendered)", n.name),
            render::sentinel_conf(&tb.topology, n),
        );
        for (f, dir) in [("redis.conf", "redis"), ("sentinel.conf", "sentinel")] {
            let p = tb.state_dir.join(&n.name).join(dir).join(f);
            match tokio::fs::read_to_string(&p).await {
                Ok(t) => {
                    out.insert(format!("{}/{f} (as left by the run)", n.name), t);
                }
                Err(e) => problems.push(format!("{}: {e}", p.display())),
            }
        }
    }
    out
}

/// Every container's log; a stream that breaks off says so at its end and
/// in `problems`.
pub async fn logs(tb: &Testbed, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    use bollard::query_parameters::LogsOptions;
    use futures_util::StreamExt;
    let mut out = BTreeMap::new();
    for n in &tb.topology.nodes {
        for c in [tb.names.redis(&n.name), tb.names.sentinel(&n.name)] {
            let opts = LogsOptions {
                stdout: true,
                stderr: true,
                tail: "all".into(),
                ..Default::default()
            };
            let mut s = tb.docker.logs(&c, Some(opts));
            let mut text = String::new();
            while let Some(item) = s.next().await {
                match item {
                    Ok(l) => text += &l.to_string(),
                    Err(e) => {
                        text += &format!("\n(the log stream broke off here: {e})\n");
                        problems.push(format!("log of {c}: {e}"));
                        break;
                    }
                }
            }
            out.insert(c, text);
        }
    }
    out
}
