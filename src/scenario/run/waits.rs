//! The `wait` steps of a scenario: a switch, the old master demoted, the
//! testbed healthy, no switch for a while, the external client's recovery,
//! a named node as master, a sentinel event.

use super::result;
use crate::error::{Error, Result};
use crate::model::action::Until;
use crate::model::topology::Node;
use crate::observe::timeline::Kind;
use crate::testbed::Testbed;
use crate::workload::external::ExternalClient;
use std::time::Duration;

/// The arguments of `wait until = "master"` / `"event"`.
pub(super) struct WaitOn<'a> {
    pub(super) target: Option<&'a crate::model::target::Target>,
    pub(super) event: Option<&'a str>,
}

pub(super) async fn wait(
    tb: &Testbed,
    until: Until,
    timeout: Duration,
    old: &Node,
    ext: Option<&ExternalClient>,
    steps_start: f64,
    on: WaitOn<'_>,
) -> Result<()> {
    match until {
        Until::Master => {
            let target = on.target.ok_or_else(|| {
                Error::State("wait until master: the parser gives it a target".into())
            })?;
            let node = tb
                .resolve_one(crate::model::verb::Verb::Wait, target)
                .await?;
            tb.wait_for_master(&node, timeout).await
        }
        Until::Event => {
            let event = on.event.unwrap_or_default().to_string();
            let from = tb.timeline.now_ms();
            let node = match on.target {
                Some(t) => Some(
                    tb.resolve_one(crate::model::verb::Verb::Wait, t)
                        .await?
                        .name,
                ),
                None => None,
            };
            let what = match &node {
                Some(n) => format!("{n}'s sentinel to publish {event}"),
                None => format!("a sentinel to publish {event}"),
            };
            tb.timeline
                .wait_for(&what, timeout, |ev| {
                    ev.iter().any(|e| {
                        e.t_ms >= from
                            && e.kind == Kind::Sentinel
                            && e.name == event
                            && node.as_ref().is_none_or(|n| &e.source == n)
                    })
                })
                .await
                .map(drop)
        }
        Until::Switch => tb.wait_for_switch(old, timeout).await.map(drop),
        Until::Demoted => {
            let new = tb.current_master().await?;
            tb.wait_replica_of(old, &new, timeout).await
        }
        Until::Healthy => {
            let m = tb.current_master().await?;
            tb.wait_healthy(&m, timeout).await
        }
        Until::NoSwitch => {
            // the whole timeout is observation; a switch fails the step
            let from = tb.timeline.now_ms();
            let r = tb
                .timeline
                .wait_for("no switch", timeout, |ev| {
                    ev.iter()
                        .any(|e| e.t_ms >= from && e.name == "+switch-master")
                })
                .await;
            match r {
                Ok(_) => Err(Error::State(
                    "a failover happened while none was expected".into(),
                )),
                Err(_) => Ok(()),
            }
        }
        Until::ExternalRecovered => {
            let ext =
                ext.ok_or_else(|| Error::State("the scenario has no external client".into()))?;
            let events = tb.timeline.events();
            let since = result::fault_and_reconnect(&events, steps_start)
                .0
                .unwrap_or(steps_start);
            crate::observe::wait::until(
                "the external client to write again after the fault",
                timeout,
                crate::observe::wait::POLL,
                || {
                    let r = ext.recovered_after(since).map(drop).ok_or_else(|| {
                        "no write failed and then one acknowledged since the fault".to_string()
                    });
                    async move { r }
                },
            )
            .await
            .map(drop)
        }
    }
}
