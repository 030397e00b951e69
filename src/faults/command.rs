//! `command` and `sentinel-command`: one command sent to the nodes'
//! redis-servers or sentinels as a scenario step (`CONFIG SET`, `DEBUG
//! POPULATE`, `REPLICAOF`, `SENTINEL SET`, ...). The action is recorded
//! before the command is sent, with the role the step gave it; each node's
//! answer is recorded as a `command-reply` observation.

use super::{Target, Verb};
use crate::backend::client;
use crate::error::{Error, Result};
use crate::model::action::CommandSpec;
use crate::model::topology::Node;
use crate::observe::timeline::Kind;
use crate::testbed::Testbed;
use std::net::SocketAddrV4;
use std::time::Duration;

/// Answers longer than this are cut in the timeline's detail.
const REPLY_CHARS: usize = 160;

impl Testbed {
    /// Sends `c` to the redis-server of every node `target` names, in
    /// order; the first error answer (or failure to connect) is the step's
    /// error.
    pub async fn command(&self, target: &Target, c: &CommandSpec) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_command(Verb::Command, &nodes, c);
        for n in &nodes {
            let addr = self.redis_addr(n);
            self.send_recorded(n, addr, self.password(), c).await?;
        }
        Ok(t)
    }

    /// Sends `c` to the sentinel of every node `target` names.
    pub async fn sentinel_command(&self, target: &Target, c: &CommandSpec) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let t = self.record_command(Verb::SentinelCommand, &nodes, c);
        for n in &nodes {
            self.send_recorded(n, self.sentinel_addr(n), None, c)
                .await?;
        }
        Ok(t)
    }

    fn record_command(&self, verb: Verb, nodes: &[Node], c: &CommandSpec) -> f64 {
        let extra = format!("{}{}", c.args.join(" "), CommandSpec::marker(c.role));
        self.record_verb(verb, nodes, &extra)
    }

    async fn send_recorded(
        &self,
        n: &Node,
        addr: SocketAddrV4,
        password: Option<&str>,
        c: &CommandSpec,
    ) -> Result<()> {
        let mut cmd = redis::cmd(&c.args[0]);
        for a in &c.args[1..] {
            cmd.arg(a);
        }
        let wait = Duration::from_millis(c.timeout_ms);
        let r = client::query_waiting::<redis::Value>(addr, password, &cmd, wait).await;
        let text = match &r {
            Ok(v) => reply_text(v),
            Err(Error::Redis { error, .. }) => format!("(error) {error}"),
            Err(e) => format!("(failed) {e}"),
        };
        self.timeline.record(
            Kind::Observation,
            "testbed",
            "command-reply",
            format!("{}: {}", n.name, cut(&text, REPLY_CHARS)),
        );
        r.map(drop)
    }
}

/// A reply as redis-cli would print it, on one line.
pub fn reply_text(v: &redis::Value) -> String {
    use redis::Value as V;
    match v {
        V::Nil => "(nil)".into(),
        V::Int(i) => i.to_string(),
        V::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        V::SimpleString(s) => s.clone(),
        V::Okay => "OK".into(),
        V::Array(items) | V::Set(items) => {
            let parts: Vec<String> = items.iter().map(reply_text).collect();
            format!("[{}]", parts.join(", "))
        }
        V::Map(pairs) => {
            let parts: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", reply_text(k), reply_text(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        V::Double(d) => d.to_string(),
        V::Boolean(b) => b.to_string(),
        V::ServerError(e) => format!("(error) {e:?}"),
        other => format!("{other:?}"),
    }
}

fn cut(s: &str, max: usize) -> String {
    let one_line = s.replace(['\r', '\n'], " ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_like_redis_cli_on_one_line() {
        use redis::Value as V;
        assert_eq!(reply_text(&V::Okay), "OK");
        let v = V::Array(vec![V::BulkString(b"198.18.0.12".to_vec()), V::Int(6379)]);
        assert_eq!(reply_text(&v), "[198.18.0.12, 6379]");
        assert_eq!(reply_text(&V::Nil), "(nil)");
        assert_eq!(cut("ab\ncd", 3), "ab …");
        assert_eq!(cut("abc", 3), "abc");
    }
}
