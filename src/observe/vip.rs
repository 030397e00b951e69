//! The VIP oracle and the reconfig script's call log.
//!
//! The oracle holds for a node when all of these hold at once: the VIP is
//! configured on exactly that node's interface (every running node's network
//! namespace is inspected from the host), the sentinels report that node as
//! master, the host's neighbour entry for the VIP carries the MAC of that
//! node's interface (read in its namespace, not derived from its IP),
//! and a new connection to the VIP answers `role:master` with its run id.

use crate::backend::links;
use crate::error::{Error, Result};
use crate::model::net::mac_for;
use crate::model::topology::Node;
use crate::observe::timeline::Kind;
use crate::observe::{health, wait};
use crate::testbed::Testbed;
use serde::Serialize;
use std::time::Duration;

/// One run of the reconfig script, as logged by the wrapper.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScriptCall {
    /// The node whose sentinel ran it.
    pub node: String,
    /// Start and end on the timeline's clock (ms).
    pub start_ms: f64,
    pub end_ms: f64,
    pub exit_code: i32,
    /// The arguments: master-name role state from-ip from-port to-ip to-port.
    pub args: Vec<String>,
}

impl Testbed {
    /// Whether `n`'s interface carries the VIP (`None`: not running).
    pub async fn holds_vip(&self, n: &Node) -> Result<Option<bool>> {
        let pid = self.pid(n).await?;
        if pid == 0 {
            return Ok(None);
        }
        let dev = crate::model::render::paths::INTERFACE;
        let out =
            crate::backend::host::in_netns(pid, "ip", &["-o", "-4", "addr", "show", "dev", dev])
                .await?;
        let vip = format!(" {}/", self.topology.vip);
        Ok(Some(out.contains(&vip)))
    }

    /// Names of the running nodes whose interface carries the VIP.
    pub async fn vip_holders(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for n in &self.topology.nodes {
            if self.holds_vip(n).await? == Some(true) {
                out.push(n.name.clone());
            }
        }
        Ok(out)
    }

    /// Checks the oracle once; `Err` lists each part that does not hold.
    pub async fn vip_oracle(&self, expected: &Node) -> std::result::Result<(), String> {
        let mut problems = Vec::new();
        match self.vip_holders().await {
            Ok(h) if h == [expected.name.clone()] => {}
            Ok(h) => problems.push(format!(
                "VIP holders are {h:?}, want exactly [{}]",
                expected.name
            )),
            Err(e) => problems.push(format!("cannot inspect VIP holders: {e}")),
        }
        let views = self.sentinel_masters().await;
        if views.is_empty() || views.values().any(|ip| *ip != expected.ip) {
            problems.push(format!(
                "sentinels report {views:?}, want {} everywhere",
                expected.ip
            ));
        }
        // the MAC its interface has (what it answers ARP with), which is the
        // one the testbed asked for unless the engine or Compose program
        // gave it another (see compose::cli::macs)
        let want_mac = match self.mac(expected).await {
            Ok(Some(m)) => m,
            _ => mac_for(expected.ip),
        };
        match links::neighbour_mac(self.topology.vip, &self.names.shim).await {
            Ok(Some(m)) if m.eq_ignore_ascii_case(&want_mac) => {}
            Ok(other) => problems.push(format!(
                "host neighbour entry for the VIP is {other:?}, want {want_mac}"
            )),
            Err(e) => problems.push(format!("cannot read the neighbour table: {e}")),
        }
        if let Err(e) = health::vip_answers_as(&self.topology, expected).await {
            problems.push(e);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Waits until the oracle holds for `expected`; records `vip-answering`.
    pub async fn wait_vip_on(&self, expected: &Node, timeout: Duration) -> Result<f64> {
        let what = format!("the VIP to move to {}", expected.name);
        wait::until(&what, timeout, wait::POLL, || self.vip_oracle(expected)).await?;
        Ok(self.timeline.record(
            Kind::Observation,
            "testbed",
            "vip-answering",
            &expected.name,
        ))
    }

    /// Waits until the logged calls satisfy `pred`; returns them.
    pub async fn wait_script_calls(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[ScriptCall]) -> bool,
    ) -> Result<Vec<ScriptCall>> {
        wait::until(what, timeout, wait::POLL, || async {
            let calls = self.script_calls().map_err(|e| e.to_string())?;
            if pred(&calls) {
                Ok(calls)
            } else {
                Err(format!(
                    "script calls so far: {:?}",
                    calls.iter().map(|c| (&c.node, &c.args)).collect::<Vec<_>>()
                ))
            }
        })
        .await
    }

    /// Every logged run of the reconfig script, in start order.
    pub fn script_calls(&self) -> Result<Vec<ScriptCall>> {
        let mut calls = Vec::new();
        for n in &self.topology.nodes {
            let p = self.state_dir.join(&n.name).join("log/reconfig.log");
            let text = match std::fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&p, e)),
            };
            for line in text.lines() {
                calls.push(
                    parse_call(line, |u| self.timeline.ms_from_uptime(u)).ok_or_else(|| {
                        Error::State(format!("{}: unparsable line `{line}`", p.display()))
                    })?,
                );
            }
        }
        calls.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
        Ok(calls)
    }
}

/// Parses `<start> <end> <node> <rc> <args...>` (uptime seconds).
pub fn parse_call(line: &str, to_ms: impl Fn(f64) -> f64) -> Option<ScriptCall> {
    let mut it = line.split_whitespace();
    let start: f64 = it.next()?.parse().ok()?;
    let end: f64 = it.next()?.parse().ok()?;
    let node = it.next()?.to_string();
    let exit_code = it.next()?.parse().ok()?;
    Some(ScriptCall {
        node,
        start_ms: to_ms(start),
        end_ms: to_ms(end),
        exit_code,
        args: it.map(str::to_string).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_lines_parse() {
        let c = parse_call(
            "1312.23 1314.24 node2 0 mymaster leader start 198.18.0.11 6379 198.18.0.12 6379",
            |u| u * 1000.0,
        )
        .unwrap();
        assert_eq!(c.node, "node2");
        assert_eq!(c.args.len(), 7);
        assert_eq!(c.args[1], "leader");
        assert!((c.end_ms - c.start_ms - 2010.0).abs() < 1.0);
        assert!(parse_call("garbage", |u| u).is_none());
    }
}
