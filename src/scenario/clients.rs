//! A scenario's `[[clients]]`: every client under test started at once
//! (containers of the client image on the segment, each at its own address,
//! or host commands), stopped at once, and each checked on its own against
//! the final master — the same checker for all.
//!
//! Invariants: a client that fails to start or exits early is a result
//! with why (`ExternalRun::never_started`, `exited_early`), never a missing
//! one and never the end of the run; only an interruption ends it, after
//! every client was stopped; every client is stopped (and a container
//! removed) before the results are read.

use super::result::{ClientMeasurements, ExternalResult};
use crate::error::{Error, Result};
use crate::model::topology::Node;
use crate::observe::timeline::Kind;
use crate::testbed::Testbed;
use crate::workload::checker;
use crate::workload::external::{ClientEnv, ExternalClient, ExternalRun, ExternalSpec, Placement};
use futures_util::future::join_all;

/// The clients that run, and those that never started (with why).
pub struct Started {
    pub running: Vec<ExternalClient>,
    pub failed: Vec<ExternalRun>,
}

/// Launches every client at once, then waits until each printed its first
/// write. Container clients get the client addresses after the first (the
/// first is the `[external_client]`'s).
pub async fn start_all(tb: &Testbed, specs: &[ExternalSpec]) -> Result<Started> {
    let mut started = Started {
        running: Vec::new(),
        failed: Vec::new(),
    };
    if specs.is_empty() {
        return Ok(started);
    }
    let ips =
        crate::model::clients::client_ips(&tb.topology, specs.len() + 1).map_err(Error::State)?;
    let env = ClientEnv::of(tb);
    let planned: Vec<String> = specs
        .iter()
        .zip(&ips[1..])
        .map(|(s, ip)| match s.image {
            Some(_) => format!("{} at {ip}", s.name),
            None => format!("{} on the host", s.name),
        })
        .collect();
    tb.timeline.record(
        Kind::Action,
        "testbed",
        "clients-start",
        format!("{} clients: {}", specs.len(), planned.join(", ")),
    );
    let launched = join_all(specs.iter().zip(&ips[1..]).map(|(s, ip)| {
        let place = s.image.as_ref().map(|_| Placement::on(tb, *ip));
        let env = env.clone();
        async move { (s, ExternalClient::launch(&env, s, place).await) }
    }))
    .await;
    let mut running = Vec::new();
    for (spec, r) in launched {
        match r {
            Ok(c) => running.push(c),
            Err(e) => started.failed.push(never_started(spec, e.to_string())),
        }
    }
    let waited = join_all(running.iter_mut().map(|c| c.first_write())).await;
    let mut interrupted = None;
    for (c, w) in running.into_iter().zip(waited) {
        match w {
            Ok(()) => started.running.push(c),
            Err(e @ Error::Interrupted { .. }) => {
                interrupted.get_or_insert(e);
                started.failed.push(c.stop_quietly().await);
            }
            Err(e) => {
                let mut run = c.stop_quietly().await;
                run.never_started = Some(e.to_string());
                started.failed.push(run);
            }
        }
    }
    if let Some(e) = interrupted {
        stop_all(tb, started.running).await;
        return Err(e);
    }
    Ok(started)
}

fn never_started(spec: &ExternalSpec, why: String) -> ExternalRun {
    ExternalRun {
        name: spec.name.clone(),
        command: spec.command.clone(),
        exit: "not started".into(),
        never_started: Some(why),
        ..Default::default()
    }
}

/// Stops every client at once (SIGTERM, SIGKILL after the grace).
pub async fn stop_all(tb: &Testbed, running: Vec<ExternalClient>) -> Vec<ExternalRun> {
    if running.is_empty() {
        return Vec::new();
    }
    let runs = join_all(running.into_iter().map(|c| c.stop_quietly())).await;
    let exits: Vec<String> = runs
        .iter()
        .map(|r| format!("{}: {}", r.name, r.exit))
        .collect();
    tb.timeline
        .record(Kind::Action, "testbed", "clients-stop", exits.join("; "));
    runs
}

/// Checks each client's writes against the final master: lost, unknown,
/// refused, applied twice (`INCR` values above 1, for protocol v2 clients),
/// and written to a demoted master (after `switch_ms`).
pub async fn judge(
    tb: &Testbed,
    final_master: Option<&Node>,
    runs: Vec<ExternalRun>,
    fault_ms: Option<f64>,
    switch_ms: Option<f64>,
) -> Result<Vec<ExternalResult>> {
    let mut out = Vec::new();
    for run in runs {
        let values = match final_master {
            Some(m) if !run.history.is_empty() => {
                let prefix = crate::workload::external::key_prefix(&run.name);
                let ids = run.history.iter().map(|o| o.id);
                crate::workload::read_values(tb.redis_addr(m), tb.password(), &prefix, ids).await?
            }
            _ => Default::default(),
        };
        let mut check = checker::check_counts(&run.history, &values);
        if !run.counts_writes() {
            // a client that does not say its writes are INCR: presence only
            check.applied_twice.clear();
        }
        let measurements =
            ClientMeasurements::of(&check, fault_ms).with_switch(&run.history, &check, switch_ms);
        out.push(ExternalResult {
            run,
            check,
            measurements,
        });
    }
    Ok(out)
}
