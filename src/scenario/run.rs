//! Running a scenario on a fresh testbed: workload, external client, the
//! `[[clients]]` (`scenario::clients`), steps and a VIP sampler side by
//! side, then the checker, the measurements, the
//! verdicts, and the evidence a report needs, collected before the testbed
//! goes.
//!
//! Invariants: a run always ends with the testbed removed (the testbed and
//! the workload remove themselves when dropped, whatever fails on the way);
//! a step that fails (a wait that times out) is recorded in the result
//! rather than aborting it: a scenario that does not fail over is a
//! finding, not a crash.

pub use super::result::{ClientMeasurements, ExternalResult, Measurements, RunResult, Verdict};

use super::result::{self, MeasureInput, VipSamples};
use super::{endstate, evidence};
use super::{Scenario, Step};
use crate::backend::image;
use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use crate::model::action::Action;
use crate::model::net::Subnet;
use crate::model::topology::Node;
use crate::model::verb::Role;
use crate::observe::timeline::Kind;
use crate::scenario::Measure;
use crate::testbed::interrupt;
use crate::testbed::{Testbed, UpOptions};
use crate::workload::checker;
use crate::workload::external::ExternalClient;
use crate::workload::{self, Op, Workload};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Where to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub testbed_name: String,
    pub subnet: Subnet,
    pub image: Option<String>,
    pub up: UpOptions,
    /// The run's seed (its number among the repeats, from 1): it delays
    /// the first fault by [`fault_offset_ms`] so that repeats sample every
    /// phase of Sentinel's 1 s ping and INFO cycles. `None`: no delay.
    pub seed: Option<u64>,
}

/// The delay of the first fault for `seed`, in 0..1000 ms: the fractional
/// part of seed × the golden ratio, so consecutive seeds spread evenly over
/// Sentinel's 1 s cycle and any set of seeds gives the same delays wherever
/// (and in whichever shard) it runs.
pub fn fault_offset_ms(seed: u64) -> u64 {
    let golden = 0.618_033_988_749_895_f64;
    ((seed as f64 * golden).fract() * 1000.0).floor() as u64
}

/// How often the VIP holders are sampled.
const VIP_SAMPLE: Duration = Duration::from_millis(100);

/// Runs `s` once on a fresh testbed.
pub async fn run(s: &Scenario, opts: &RunOptions) -> Result<RunResult> {
    // a missing client program is found before anything is created
    for x in s.external.iter().chain(&s.clients) {
        x.program()?;
    }
    ensure_client_image(s).await?;
    let mut topo = s.topology.relocated(&opts.testbed_name, opts.subnet)?;
    if let Some(img) = &opts.image {
        topo.image = img.clone();
    }
    let mut up = opts.up.clone();
    // a leftover of an interrupted run of this scenario goes first
    up.replace_existing = true;
    let tb = Testbed::up(topo, up).await?;
    let old = tb.topology.initial_master().clone();

    let wl = s
        .workload
        .as_ref()
        .map(|w| Workload::start(&tb, w))
        .transpose()?;
    let ext = match &s.external {
        Some(x) => Some(ExternalClient::start(&tb, x).await?),
        None => None,
    };
    let started = super::clients::start_all(&tb, &s.clients).await?;
    let steps_start = tb.timeline.now_ms();
    let stop = AtomicBool::new(false);
    let progress = Progress::new(&format!("scenario {}", s.name));
    let steps = async {
        let offset = opts.seed.map(fault_offset_ms);
        let r = run_steps(&tb, &s.steps, &old, ext.as_ref(), &progress, offset).await;
        stop.store(true, Ordering::Relaxed);
        r
    };
    let (step_errors, vip) = tokio::join!(steps, sample_vip(&tb, &stop));
    let step_errors = step_errors?;
    interrupt::check("the end of the steps")?;
    progress.detail("checking the writes against the final master");

    let history = match wl {
        Some(w) => w.stop().await?,
        None => Vec::new(),
    };
    let ext_run = match ext {
        Some(x) => Some(x.stop(&tb).await),
        None => None,
    };
    let mut client_runs = started.failed;
    client_runs.extend(super::clients::stop_all(&tb, started.running).await);
    // in the scenario's order
    client_runs.sort_by_key(|r| s.clients.iter().position(|c| c.name == r.name));
    let final_master = tb.current_master().await.ok();
    let fm = final_master.as_ref();
    // what the final master holds decides what was lost: when it cannot be
    // read, the loss is unmeasured (never "everything was lost")
    let mut unread: Vec<(String, String)> = Vec::new();
    let (ids, why) = present(&tb, fm, workload::KEY_PREFIX, &history).await;
    if let Some(why) = why {
        for k in [Measure::LostAcknowledgedWrites, Measure::LossWindowMs] {
            unread.push((k.key().to_string(), why.clone()));
        }
    }
    let check = checker::check(&history, &ids);
    let events = tb.timeline.events();
    let (fault_ms, reconnect_ms) = result::fault_and_reconnect(&events, steps_start);
    let switch_ms = result::first_switch(&events, fault_ms.unwrap_or(steps_start));
    let clients = super::clients::judge(&tb, fm, client_runs, fault_ms, switch_ms).await?;
    // the external client is judged as every client is
    let external =
        super::clients::judge(&tb, fm, ext_run.into_iter().collect(), fault_ms, switch_ms)
            .await?
            .pop();
    let mut measurements = result::measure(MeasureInput {
        events: &events,
        check: &check,
        fault_ms,
        reconnect_ms,
        old: &old,
        final_master: fm,
        vip: &vip,
        final_holders: tb.vip_holders().await.map_err(|e| e.to_string()),
        nodes: &tb.topology.nodes,
        steps_start_ms: steps_start,
    });
    measurements.step_errors = step_errors.len();
    measurements.unmeasured.extend(unread);
    measurements.end = endstate::collect(&tb).await;
    interrupt::check("collecting the evidence")?;
    progress.detail("collecting snapshots, configs and logs");
    let image = image::inspect(&tb.docker, &tb.topology.image)
        .await
        .ok()
        .flatten();
    let (snapshots, server_version) = evidence::snapshots(&tb).await;
    let script_calls = tb.script_calls().unwrap_or_else(|e| {
        measurements
            .unmeasured
            .insert("script_calls".into(), e.to_string());
        Vec::new()
    });
    for c in &script_calls {
        let role = c.args.get(1).cloned().unwrap_or_default();
        *measurements
            .script_calls
            .entry(c.node.clone())
            .or_default()
            .entry(role)
            .or_default() += 1;
    }
    let mut problems = Vec::new();
    let configs = evidence::configs(&tb, &mut problems).await;
    let logs = evidence::logs(&tb, &mut problems).await;
    if !problems.is_empty() {
        measurements
            .unmeasured
            .insert("evidence".into(), problems.join("; "));
    }
    // judged once every measure is in (the script log included)
    let mut verdicts: Vec<Verdict> = s
        .expect
        .iter()
        .map(|e| result::verdict(e, &measurements, external.as_ref(), &old.name))
        .collect();
    for x in external.iter().chain(&clients) {
        verdicts.push(result::external_ran(x));
    }
    let result = RunResult {
        seed: opts.seed,
        fault_offset_ms: opts.seed.map(fault_offset_ms),
        scenario: s.name.clone(),
        description: s.description.clone(),
        sources: s.sources.iter().map(|x| x.text()).collect(),
        scenario_text: s.text.clone(),
        testbed: tb.topology.name.clone(),
        topology: tb.topology.clone(),
        image,
        server_version,
        measurements,
        verdicts,
        step_errors,
        check,
        history,
        external,
        clients,
        timeline: events,
        script_calls,
        snapshots,
        configs,
        logs,
    };
    tb.down().await?;
    Ok(result)
}

/// Builds the client image when a client of the scenario runs in a
/// container and the image is missing or stale (as `up` builds the server
/// image).
async fn ensure_client_image(s: &Scenario) -> Result<()> {
    if !s
        .external
        .iter()
        .chain(&s.clients)
        .any(|c| c.image.is_some())
    {
        return Ok(());
    }
    let docker = crate::backend::docker::connect().await?;
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::backend::client_image::ensure(
        &docker,
        workspace,
        &crate::backend::client_image::cache_dir(),
    )
    .await
    .map(drop)
}

/// Which writes of `history` (keys `<prefix><id>`) the final master has,
/// or why that could not be read (no master agreed on, or it did not
/// answer: a master killed and never replaced).
async fn present(
    tb: &Testbed,
    final_master: Option<&Node>,
    prefix: &str,
    history: &[Op],
) -> (HashSet<u64>, Option<String>) {
    if history.is_empty() {
        return (HashSet::new(), None);
    }
    let Some(m) = final_master else {
        let why = "no final master was agreed on, so what was kept is unknown".to_string();
        return (HashSet::new(), Some(why));
    };
    let ids = history.iter().map(|o| o.id);
    match workload::read_present(tb.redis_addr(m), tb.password(), prefix, ids).await {
        Ok(p) => (p, None),
        Err(e) => (
            HashSet::new(),
            Some(format!(
                "the final master {} could not be read: {e}",
                m.name
            )),
        ),
    }
}

/// Samples the VIP holders every [`VIP_SAMPLE`] until `stop`, recording on
/// the timeline when a second holder appears and when it goes.
async fn sample_vip(tb: &Testbed, stop: &AtomicBool) -> VipSamples {
    let mut out = VipSamples::default();
    let mut since: Option<f64> = None;
    loop {
        let done = stop.load(Ordering::Relaxed);
        match tb.vip_holders().await {
            Ok(h) => {
                out.taken += 1;
                let now = tb.timeline.now_ms();
                out.holders_max = out.holders_max.max(h.len());
                match (h.len() > 1, since) {
                    (true, None) => {
                        since = Some(now);
                        tb.timeline.record(
                            Kind::Observation,
                            "testbed",
                            "vip-duplicate",
                            h.join(","),
                        );
                    }
                    (false, Some(t)) => {
                        out.duplicate_ms += now - t;
                        since = None;
                        tb.timeline
                            .record(Kind::Observation, "testbed", "vip-single", h.join(","));
                    }
                    _ => {}
                }
            }
            Err(e) => {
                let failed = out.failed.get_or_insert((0, e.to_string()));
                failed.0 += 1;
            }
        }
        if done {
            if let Some(t) = since {
                out.duplicate_ms += tb.timeline.now_ms() - t;
            }
            return out;
        }
        // the sampling period of the VIP holders (an interruption ends it:
        // the steps have stopped then too)
        if interrupt::sleep(VIP_SAMPLE, "sampling the VIP")
            .await
            .is_err()
        {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs the steps in order; returns the errors of those that failed (an
/// interruption is the only error that ends the run).
async fn run_steps(
    tb: &Testbed,
    steps: &[Step],
    old: &Node,
    ext: Option<&ExternalClient>,
    progress: &Progress,
    mut fault_offset_ms: Option<u64>,
) -> Result<Vec<String>> {
    let start = tb.timeline.now_ms();
    let mut errors = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let during = format!(
            "step {} (line {}, {})",
            i + 1,
            step.line,
            describe(&step.action)
        );
        interrupt::check(&during)?;
        progress.detail(&during);
        if let Some(at) = step.at_ms {
            let wait = start + at as f64 - tb.timeline.now_ms();
            if wait > 0.0 {
                // the step is scheduled at a fixed time of the scenario
                interrupt::sleep(Duration::from_secs_f64(wait / 1000.0), &during).await?;
            }
        }
        if step.action.role() == Role::Fault {
            if let Some(ms) = fault_offset_ms.take() {
                // the seed's offset of the first fault in Sentinel's cycle
                tb.timeline.record(
                    Kind::Observation,
                    "testbed",
                    "seed-offset",
                    format!("first fault delayed {ms} ms"),
                );
                interrupt::sleep(Duration::from_millis(ms), &during).await?;
            }
        }
        let r = match &step.action {
            Action::Sleep { ms } => {
                tb.timeline.record(
                    Kind::Action,
                    "testbed",
                    step.action.verb().name(),
                    format!("{ms} ms"),
                );
                // observation time is the scenario itself
                interrupt::sleep(Duration::from_millis(*ms), &during).await
            }
            Action::Wait {
                until,
                timeout_ms,
                target,
                event,
            } => {
                let timeout = Duration::from_millis(*timeout_ms);
                let on = WaitOn {
                    target: target.as_ref(),
                    event: event.as_deref(),
                };
                wait(tb, *until, timeout, old, ext, start, on).await
            }
            a => tb.apply(a).await.map(drop),
        };
        match expected(tb, step.expect_error.as_deref(), r) {
            // an interruption ends the run; every other failure is a finding
            Err(e @ Error::Interrupted { .. }) => return Err(e),
            Err(e) => errors.push(format!("{during}: {e}")),
            Ok(()) => {}
        }
    }
    Ok(errors)
}

/// A step's outcome against its `expect_error`: the error it must get is
/// its success (recorded as an `expected-error` observation); success, or
/// another error, is its failure.
fn expected(tb: &Testbed, want: Option<&str>, r: Result<()>) -> Result<()> {
    match (want, r) {
        (_, Err(e @ Error::Interrupted { .. })) => Err(e),
        (None, r) => r,
        (Some(w), Ok(())) => Err(Error::State(format!(
            "expected an error containing `{w}`, but the step succeeded"
        ))),
        (Some(w), Err(e)) => {
            let text = e.to_string();
            if text.contains(w) {
                tb.timeline
                    .record(Kind::Observation, "testbed", "expected-error", text);
                Ok(())
            } else {
                Err(Error::State(format!(
                    "expected an error containing `{w}`, got: {text}"
                )))
            }
        }
    }
}

/// `kill master`, `partition node1 | node2,node3`, `wait switch`...
fn describe(a: &Action) -> String {
    let targets: Vec<String> = a.targets().iter().map(|t| t.to_string()).collect();
    match a {
        Action::Wait { until, .. } => format!("wait {until}"),
        _ if targets.is_empty() => a.verb().name().to_string(),
        _ => format!("{} {}", a.verb(), targets.join(",")),
    }
}

mod waits;
use waits::{wait, WaitOn};
