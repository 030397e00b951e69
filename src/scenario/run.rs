//! Running a scenario on a fresh testbed: workload, steps, a VIP sampler,
//! then measurements, the checker, expectations, and everything a report
//! needs (snapshots, configs, logs) collected before the testbed goes.
//!
//! Invariant: a run always ends with the testbed removed, and a step that
//! fails (a wait that times out) is recorded in the result rather than
//! aborting it: a scenario that does not fail over is a finding, not a crash.

use crate::backend::client;
use crate::backend::image::{self, ImageInfo};
use crate::error::Result;
use crate::faults::Target;
use crate::faults::{Direction, PauseMode, SimulateFailure};
use crate::model::net::Subnet;
use crate::model::render;
use crate::observe::timeline::{Event, Kind};
use crate::observe::vip::ScriptCall;
use crate::scenario::{Action, Measure, Scenario};
use crate::testbed::{Testbed, UpOptions};
use crate::workload::checker;
use crate::workload::external::{ExternalClient, ExternalRun};
use crate::workload::{self, Op, Workload};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Where to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub testbed_name: String,
    pub subnet: Subnet,
    pub image: Option<String>,
    pub up: UpOptions,
}

/// What was measured (ms are from the first fault unless said otherwise).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measurements {
    pub fault_ms: Option<f64>,
    pub promoted_ms: Option<f64>,
    pub failovers: usize,
    pub old_master: String,
    pub final_master: Option<String>,
    pub vip_holders_max: usize,
    pub duplicate_vip_ms: f64,
    pub final_vip_holders: Vec<String>,
    /// From the last heal/start/restart/unpause to `+convert-to-slave`.
    pub old_master_demoted_ms: Option<f64>,
    pub client_recovered_ms: Option<f64>,
    pub lost_acknowledged_writes: usize,
    pub refused_writes: usize,
    /// The longest span of acknowledged writes that were lost.
    pub loss_window_ms: f64,
}

/// What one client's writes showed (the built-in workload's are also
/// flattened into [`Measurements`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientMeasurements {
    /// From the first fault to the end of the unavailability window it
    /// opened.
    pub client_recovered_ms: Option<f64>,
    pub lost_acknowledged_writes: usize,
    pub refused_writes: usize,
    /// The longest span of acknowledged writes that were lost.
    pub loss_window_ms: f64,
}

impl ClientMeasurements {
    fn of(check: &checker::Report, fault: Option<f64>) -> ClientMeasurements {
        ClientMeasurements {
            // an outage still open at the end is not a recovery
            client_recovered_ms: fault
                .and_then(|f| checker::recovered_after(&check.unavailable, f).map(|e| e - f)),
            lost_acknowledged_writes: check.lost.len(),
            refused_writes: check.errors.values().sum(),
            loss_window_ms: check
                .loss_windows
                .iter()
                .map(|w| w.len_ms())
                .fold(0.0, f64::max),
        }
    }
}

/// The external client's run, checked like the built-in workload.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalResult {
    #[serde(flatten)]
    pub run: ExternalRun,
    pub check: checker::Report,
    pub measurements: ClientMeasurements,
}

/// One expectation's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub expectation: String,
    pub measured: String,
    pub pass: bool,
}

/// Everything one run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub scenario: String,
    /// The scenario file's text, as run (for reports).
    pub scenario_text: String,
    pub testbed: String,
    pub topology: crate::Topology,
    pub image: Option<ImageInfo>,
    pub server_version: Option<String>,
    pub measurements: Measurements,
    pub verdicts: Vec<Verdict>,
    pub step_errors: Vec<String>,
    pub check: checker::Report,
    pub history: Vec<Op>,
    /// The scenario's `[external_client]`, when it has one.
    pub external: Option<ExternalResult>,
    pub timeline: Vec<Event>,
    pub script_calls: Vec<ScriptCall>,
    /// node -> command -> normalised-free raw reply text.
    pub snapshots: BTreeMap<String, BTreeMap<String, String>>,
    /// `node/redis.conf (rendered)` etc. -> text.
    pub configs: BTreeMap<String, String>,
    /// container -> log text.
    pub logs: BTreeMap<String, String>,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.pass)
    }
}

/// Runs `s` once on a fresh testbed.
pub async fn run(s: &Scenario, opts: &RunOptions) -> Result<RunResult> {
    // a missing client program is found before anything is created
    if let Some(x) = &s.external {
        x.program()?;
    }
    let mut topo = s.topology.relocated(&opts.testbed_name, opts.subnet)?;
    if let Some(img) = &opts.image {
        topo.image = img.clone();
    }
    let docker = crate::backend::docker::connect().await?;
    crate::testbed::teardown::down(&docker, Some(&topo.name), &opts.up.state_root).await?;
    let tb = Testbed::up(topo, opts.up.clone()).await?;
    let old = tb.topology.initial_master().clone();

    let wl = match &s.workload {
        Some(w) => Some(Workload::start(&tb, w)?),
        None => None,
    };
    let ext = match &s.external {
        Some(x) => Some(ExternalClient::start(&tb, x).await?),
        None => None,
    };
    let stop = AtomicBool::new(false);
    let mut holders_max = 0usize;
    let mut dup_ms = 0.0;
    let sampler = async {
        let mut since: Option<f64> = None;
        loop {
            let done = stop.load(Ordering::Relaxed);
            if let Ok(h) = tb.vip_holders().await {
                let now = tb.timeline.now_ms();
                holders_max = holders_max.max(h.len());
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
                        dup_ms += now - t;
                        since = None;
                        tb.timeline
                            .record(Kind::Observation, "testbed", "vip-single", h.join(","));
                    }
                    _ => {}
                }
            }
            if done {
                if let Some(t) = since {
                    dup_ms += tb.timeline.now_ms() - t;
                }
                break;
            }
            // the sampling period of the VIP holders
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let steps = async {
        let r = run_steps(&tb, s, &old, ext.as_ref()).await;
        stop.store(true, Ordering::Relaxed);
        r
    };
    let ((step_errors, fault_ms, reconnect_ms), ()) = tokio::join!(steps, sampler);

    let history = match wl {
        Some(w) => w.stop().await?,
        None => Vec::new(),
    };
    let ext_run = match ext {
        Some(x) => Some(x.stop(&tb).await),
        None => None,
    };
    let final_master = tb.current_master().await.ok();
    let fm = final_master.as_ref();
    let check = checker::check(
        &history,
        &present(&tb, fm, workload::KEY_PREFIX, &history).await?,
    );
    let external = match ext_run {
        Some(run) => {
            let prefix = crate::workload::external::key_prefix(&run.name);
            let check = checker::check(
                &run.history,
                &present(&tb, fm, &prefix, &run.history).await?,
            );
            let measurements = ClientMeasurements::of(&check, fault_ms);
            Some(ExternalResult {
                run,
                check,
                measurements,
            })
        }
        None => None,
    };
    let events = tb.timeline.events();
    let measurements = measure(
        &tb,
        &events,
        &check,
        fault_ms,
        reconnect_ms,
        &old,
        final_master.as_ref(),
        holders_max,
        dup_ms,
    )
    .await;
    let mut verdicts: Vec<Verdict> = s
        .expect
        .iter()
        .map(|e| verdict(e, &measurements, external.as_ref(), &old.name))
        .collect();
    if let Some(x) = &external {
        verdicts.push(external_ran(x));
    }
    let image = image::inspect(&tb.docker, &tb.topology.image)
        .await
        .ok()
        .flatten();
    let (snapshots, server_version) = snapshots(&tb).await;
    let result = RunResult {
        scenario: s.name.clone(),
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
        timeline: events,
        script_calls: tb.script_calls().unwrap_or_default(),
        snapshots,
        configs: configs(&tb),
        logs: logs(&tb).await,
    };
    tb.down().await?;
    Ok(result)
}

/// Which writes of `history` (keys `<prefix><id>`) the final master has.
async fn present(
    tb: &Testbed,
    final_master: Option<&crate::model::topology::Node>,
    prefix: &str,
    history: &[Op],
) -> Result<std::collections::HashSet<u64>> {
    match final_master {
        Some(m) if !history.is_empty() => {
            let ids = history.iter().map(|o| o.id);
            workload::read_present(tb.redis_addr(m), tb.password(), prefix, ids).await
        }
        _ => Ok(Default::default()),
    }
}

fn target(t: &str) -> Target {
    t.parse().unwrap_or(Target::Master)
}

/// Runs the steps; returns (errors, first fault time, last reconnect time).
async fn run_steps(
    tb: &Testbed,
    s: &Scenario,
    old: &crate::model::topology::Node,
    ext: Option<&ExternalClient>,
) -> (Vec<String>, Option<f64>, Option<f64>) {
    let start = tb.timeline.now_ms();
    let mut errors = Vec::new();
    let mut fault = None;
    let mut reconnect = None;
    for (i, step) in s.steps.iter().enumerate() {
        if let Some(at) = step.at_ms {
            let wait = start + at as f64 - tb.timeline.now_ms();
            if wait > 0.0 {
                // the step is scheduled at a fixed time of the scenario
                tokio::time::sleep(Duration::from_secs_f64(wait / 1000.0)).await;
            }
        }
        let is_fault = !matches!(
            step.action,
            Action::Sleep { .. }
                | Action::Wait { .. }
                | Action::Heal
                | Action::Start { .. }
                | Action::Unpause { .. }
                | Action::UnpauseSentinel { .. }
        );
        let before = tb.timeline.now_ms();
        let r = match &step.action {
            Action::Wait { until, timeout_ms } if until == "external-recovered" => {
                let timeout = Duration::from_millis(*timeout_ms);
                external_recovered(ext, fault.unwrap_or(0.0), timeout).await
            }
            a => apply(tb, a, old).await,
        };
        // the time the fault verb recorded its action (before docker acted)
        let now = tb
            .timeline
            .events()
            .iter()
            .find(|e| e.kind == Kind::Action && e.t_ms >= before)
            .map_or(before, |e| e.t_ms);
        if is_fault && fault.is_none() {
            fault = Some(now);
        }
        if matches!(
            step.action,
            Action::Heal | Action::Start { .. } | Action::Restart { .. } | Action::Unpause { .. }
        ) {
            reconnect = Some(now);
        }
        if let Err(e) = r {
            errors.push(format!("step {} ({:?}): {e}", i + 1, step.action));
        }
    }
    (errors, fault, reconnect)
}

async fn apply(tb: &Testbed, a: &Action, old: &crate::model::topology::Node) -> Result<()> {
    let node = |t: &str| -> Result<String> {
        Ok(match t {
            "master" => old.name.clone(),
            n => tb.node(n)?.name.clone(),
        })
    };
    match a {
        Action::Kill { target: t } => tb.kill(&target(t)).await.map(drop),
        Action::Stop { target: t } => tb.stop(&target(t)).await.map(drop),
        Action::Start { target: t } => tb.start(&Target::Node(node(t)?)).await.map(drop),
        Action::Restart { target: t } => tb.restart(&target(t)).await.map(drop),
        Action::Pause { target: t } => tb.pause(&target(t)).await.map(drop),
        Action::Unpause { target: t } => tb.unpause(&Target::Node(node(t)?)).await.map(drop),
        Action::Failover => tb.failover().await.map(drop),
        Action::Isolate { target: t } => tb.isolate(&Target::Node(node(t)?)).await.map(drop),
        Action::Partition { a, b, one_way } => {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let b: Vec<&str> = b.iter().map(String::as_str).collect();
            let dir = if *one_way {
                Direction::OneWay
            } else {
                Direction::Both
            };
            tb.partition(&a, &b, dir).await.map(drop)
        }
        Action::Heal => tb.heal().await.map(drop),
        Action::KillSentinel { target: t } => {
            tb.kill_sentinel(&Target::Node(node(t)?)).await.map(drop)
        }
        Action::CrashSentinel { target: t } => {
            tb.crash_sentinel(tb.node(&node(t)?)?).await.map(drop)
        }
        Action::PauseSentinel { target: t } => {
            tb.pause_sentinel(&Target::Node(node(t)?)).await.map(drop)
        }
        Action::UnpauseSentinel { target: t } => {
            tb.unpause_sentinel(&Target::Node(node(t)?)).await.map(drop)
        }
        Action::SimulateFailure { target: t, mode } => {
            let mode: SimulateFailure = mode.parse().map_err(crate::Error::State)?;
            tb.simulate_failure(&Target::Node(node(t)?), mode)
                .await
                .map(drop)
        }
        Action::DebugSleep { target: t, ms } => tb
            .debug_sleep(&Target::Node(node(t)?), Duration::from_millis(*ms))
            .await
            .map(drop),
        Action::ClientPause { target: t, ms } => tb
            .client_pause(
                &Target::Node(node(t)?),
                Duration::from_millis(*ms),
                PauseMode::All,
            )
            .await
            .map(drop),
        Action::Sleep { ms } => {
            tb.timeline
                .record(Kind::Action, "testbed", "observe", format!("{ms} ms"));
            // observation time is the scenario itself
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            Ok(())
        }
        Action::Wait { until, timeout_ms } => {
            wait(tb, until, Duration::from_millis(*timeout_ms), old).await
        }
    }
}

/// Waits until the external client recovered from the outage that followed
/// `since_ms` (the first fault): a failed write, then an acknowledged one.
async fn external_recovered(
    ext: Option<&ExternalClient>,
    since_ms: f64,
    timeout: Duration,
) -> Result<()> {
    let ext =
        ext.ok_or_else(|| crate::Error::State("the scenario has no external client".into()))?;
    crate::observe::wait::until(
        "the external client to write again after the fault",
        timeout,
        crate::observe::wait::POLL,
        || {
            let r = ext.recovered_after(since_ms).map(drop).ok_or_else(|| {
                "no write failed and then one acknowledged since the fault".to_string()
            });
            async move { r }
        },
    )
    .await?;
    Ok(())
}

async fn wait(
    tb: &Testbed,
    until: &str,
    timeout: Duration,
    old: &crate::model::topology::Node,
) -> Result<()> {
    match until {
        "switch" => tb.wait_for_switch(old, timeout).await.map(drop),
        "demoted" => {
            let new = tb.current_master().await?;
            tb.wait_replica_of(old, &new, timeout).await
        }
        "healthy" => {
            let m = tb.current_master().await?;
            tb.wait_healthy(&m, timeout).await
        }
        _ => {
            // no-switch: the whole timeout is observation; a switch fails it
            let from = tb.timeline.now_ms();
            let r = tb
                .timeline
                .wait_for("no switch", timeout, |ev| {
                    ev.iter()
                        .any(|e| e.t_ms >= from && e.name == "+switch-master")
                })
                .await;
            match r {
                Ok(_) => Err(crate::Error::State(
                    "a failover happened while none was expected".into(),
                )),
                Err(_) => Ok(()),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    tb: &Testbed,
    ev: &[Event],
    check: &checker::Report,
    fault: Option<f64>,
    reconnect: Option<f64>,
    old: &crate::model::topology::Node,
    final_master: Option<&crate::model::topology::Node>,
    holders_max: usize,
    dup_ms: f64,
) -> Measurements {
    let f = fault.unwrap_or(0.0);
    let switches: Vec<&Event> = ev
        .iter()
        .filter(|e| e.name == "+switch-master" && e.t_ms >= f)
        .collect();
    let mut pairs: Vec<String> = switches.iter().map(|e| e.detail.clone()).collect();
    pairs.sort();
    pairs.dedup();
    let demoted = reconnect.and_then(|r| {
        ev.iter()
            .find(|e| {
                e.name == "+convert-to-slave"
                    && e.t_ms >= r
                    && e.detail.contains(&format!(" {} ", old.ip))
            })
            .map(|e| e.t_ms - r)
    });
    let client = ClientMeasurements::of(check, fault);
    Measurements {
        fault_ms: fault,
        promoted_ms: switches.first().map(|e| e.t_ms - f),
        failovers: pairs.len(),
        old_master: old.name.clone(),
        final_master: final_master.map(|n| n.name.clone()),
        vip_holders_max: holders_max,
        duplicate_vip_ms: dup_ms,
        final_vip_holders: tb.vip_holders().await.unwrap_or_default(),
        old_master_demoted_ms: demoted,
        client_recovered_ms: client.client_recovered_ms,
        lost_acknowledged_writes: client.lost_acknowledged_writes,
        refused_writes: client.refused_writes,
        loss_window_ms: client.loss_window_ms,
    }
}

/// The implicit expectation of a scenario with an external client: it
/// wrote for the whole scenario and printed only operation records.
fn external_ran(x: &ExternalResult) -> Verdict {
    let r = &x.run;
    let problem = match (&r.exited_early, &r.parse_error) {
        (Some(e), _) => Some(format!(
            "exited early ({e}); stderr: {}",
            crate::workload::external::tail(&r.stderr, 3)
        )),
        (None, Some(p)) => Some(p.clone()),
        // it ignored SIGTERM: its write in flight has no record
        (None, None) if r.exit.starts_with("killed") => Some(r.exit.clone()),
        (None, None) => None,
    };
    Verdict {
        expectation: format!("external client \"{}\" wrote until stopped", r.name),
        measured: problem
            .clone()
            .unwrap_or_else(|| format!("{} writes, {}", r.history.len(), r.exit)),
        pass: problem.is_none(),
    }
}

fn verdict(
    e: &crate::scenario::Expectation,
    m: &Measurements,
    external: Option<&ExternalResult>,
    old: &str,
) -> Verdict {
    if e.external {
        let c = external.map(|x| &x.measurements);
        let measured = c.and_then(|c| match e.measure {
            Measure::LostAcknowledgedWrites => Some(c.lost_acknowledged_writes as f64),
            Measure::ClientRecoveredWithinMs => c.client_recovered_ms,
            Measure::RefusedWrites => Some(c.refused_writes as f64),
            Measure::LossWindowMs => Some(c.loss_window_ms),
            _ => None,
        });
        return compare(e, measured);
    }
    let measured: Option<f64> = match e.measure {
        Measure::PromotedWithinMs => m.promoted_ms,
        Measure::Failovers => Some(m.failovers as f64),
        Measure::LostAcknowledgedWrites => Some(m.lost_acknowledged_writes as f64),
        Measure::VipHoldersMax => Some(m.vip_holders_max as f64),
        Measure::OldMasterDemotedWithinMs => m.old_master_demoted_ms,
        Measure::ClientRecoveredWithinMs => m.client_recovered_ms,
        Measure::DuplicateVipMs => Some(m.duplicate_vip_ms),
        Measure::RefusedWrites => Some(m.refused_writes as f64),
        Measure::LossWindowMs => Some(m.loss_window_ms),
        Measure::VipHolder => {
            let want = match e.value.as_str() {
                "new-master" => m.final_master.clone().filter(|n| n != old),
                "old-master" => Some(old.to_string()),
                "none" => None,
                n => Some(n.to_string()),
            };
            let got = m.final_vip_holders.clone();
            let pass = match &want {
                Some(w) => got == [w.clone()],
                None => got.is_empty(),
            };
            return Verdict {
                expectation: e.source.clone(),
                measured: format!(
                    "VIP on [{}], final master {}",
                    got.join(", "),
                    m.final_master.as_deref().unwrap_or("unknown")
                ),
                pass,
            };
        }
    };
    compare(e, measured)
}

fn compare(e: &crate::scenario::Expectation, measured: Option<f64>) -> Verdict {
    let bound: f64 = e.value.parse().unwrap_or(f64::NAN);
    match measured {
        Some(v) => Verdict {
            expectation: e.source.clone(),
            measured: format!("{v:.0}"),
            pass: e.op.holds(v, bound),
        },
        None => Verdict {
            expectation: e.source.clone(),
            measured: "did not happen".into(),
            pass: false,
        },
    }
}

async fn snapshots(tb: &Testbed) -> (BTreeMap<String, BTreeMap<String, String>>, Option<String>) {
    let mut out = BTreeMap::new();
    let mut version = None;
    let names = tb
        .topology
        .nodes
        .iter()
        .fold(crate::observe::normalize::Redactor::new(), |r, n| {
            r.name(n.ip, format!("{} ({})", n.name, n.ip))
        });
    for n in &tb.topology.nodes {
        let mut m = BTreeMap::new();
        for (name, cmd) in [
            (
                "INFO replication",
                redis::cmd("INFO").arg("replication").clone(),
            ),
            ("INFO server", redis::cmd("INFO").arg("server").clone()),
        ] {
            let r = client::query::<String>(tb.redis_addr(n), tb.password(), &cmd).await;
            if name == "INFO server" {
                if let Ok(t) = &r {
                    let i = client::parse_info(t);
                    // Valkey also reports redis_version (its compatibility level)
                    version =
                        version.or(i.get("valkey_version").or(i.get("redis_version")).cloned());
                }
                continue;
            }
            m.insert(
                name.to_string(),
                r.unwrap_or_else(|e| format!("(no answer: {e})")),
            );
        }
        let role =
            client::query::<redis::Value>(tb.redis_addr(n), tb.password(), &redis::cmd("ROLE"))
                .await;
        m.insert(
            "ROLE".into(),
            role.map(|v| names.role(&v))
                .unwrap_or_else(|e| format!("(no answer: {e})")),
        );
        let sm = client::sentinel_master(tb.sentinel_addr(n), &tb.topology.master_name).await;
        m.insert(
            "SENTINEL MASTER".into(),
            sm.map(|m| m.iter().map(|(k, v)| format!("{k}: {v}\n")).collect())
                .unwrap_or_else(|e| format!("(no answer: {e})")),
        );
        out.insert(n.name.clone(), m);
    }
    (out, version)
}

fn configs(tb: &Testbed) -> BTreeMap<String, String> {
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
            if let Ok(t) = std::fs::read_to_string(&p) {
                out.insert(format!("{}/{f} (as left by the run)", n.name), t);
            }
        }
    }
    out
}

async fn logs(tb: &Testbed) -> BTreeMap<String, String> {
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
            while let Some(Ok(l)) = s.next().await {
                text += &l.to_string();
            }
            out.insert(c, text);
        }
    }
    out
}
