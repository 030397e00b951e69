//! What a run produced and how it is judged: the measurements (derived from
//! the timeline, the checker's reports and the VIP samples, purely), the
//! verdict of each expectation. A measure that could not be taken is listed
//! in `Measurements::unmeasured` and fails its expectation with the reason —
//! never a reassuring default.

use super::endstate::NodeEnd;
use super::{Bound, Expectation, Holder, Measure};
use crate::backend::image::ImageInfo;
use crate::model::topology::{Node, Topology};
use crate::model::verb::{Role, Verb};
use crate::observe::timeline::{Event, Kind};
use crate::observe::vip::ScriptCall;
use crate::workload::checker;
use crate::workload::external::ExternalRun;
use crate::workload::Op;
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// From the last heal/start/restart/resume to `+convert-to-slave`.
    pub old_master_demoted_ms: Option<f64>,
    pub client_recovered_ms: Option<f64>,
    pub lost_acknowledged_writes: usize,
    pub refused_writes: usize,
    /// The longest span of acknowledged writes that were lost.
    pub loss_window_ms: f64,
    /// Measures that could not be taken (by `[expect]` key, or `script_calls`
    /// / `snapshots` / `logs`) and why: their values above are not to be
    /// trusted, and an expectation on them fails.
    pub unmeasured: BTreeMap<String, String>,
    // issue 11
    /// Steps that failed.
    pub step_errors: usize,
    /// The node the first failover promoted (from its `+switch-master`).
    pub promoted_node: Option<String>,
    /// Sentinel events from the first fault on: channel -> node -> count.
    pub events: BTreeMap<String, BTreeMap<String, usize>>,
    /// The built-in workload's refused writes by error kind.
    pub refused_by_kind: BTreeMap<String, usize>,
    /// Each node at the end (INFO, its sentinel, its sentinel container).
    pub end: BTreeMap<String, NodeEnd>,
    /// Reconfig script runs per node and role (`leader`, `observer`).
    pub script_calls: BTreeMap<String, BTreeMap<String, usize>>,
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
    /// Acknowledged after the first `+switch-master`, and lost: written to
    /// a master the sentinels had already replaced
    /// ([`checker::to_demoted_master`]).
    pub wrote_to_demoted_master: usize,
}

impl ClientMeasurements {
    pub fn of(check: &checker::Report, fault: Option<f64>) -> ClientMeasurements {
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
            // set where the switch time is known (`with_switch`)
            wrote_to_demoted_master: 0,
        }
    }

    /// Adds what depends on the first `+switch-master` (timeline ms).
    pub fn with_switch(
        mut self,
        history: &[Op],
        check: &checker::Report,
        switch_ms: Option<f64>,
    ) -> Self {
        self.wrote_to_demoted_master = checker::to_demoted_master(history, &check.lost, switch_ms);
        self
    }
}

/// The first `+switch-master` at or after `since_ms`.
pub fn first_switch(events: &[Event], since_ms: f64) -> Option<f64> {
    events
        .iter()
        .find(|e| e.name == "+switch-master" && e.t_ms >= since_ms)
        .map(|e| e.t_ms)
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
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Verdict {
    pub expectation: String,
    pub measured: String,
    pub pass: bool,
}

/// Everything one run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The run's seed (see `run::fault_offset_ms`); `None` outside repro.
    pub seed: Option<u64>,
    /// How long the seed delayed the first fault.
    pub fault_offset_ms: Option<u64>,
    pub scenario: String,
    /// The behaviour the scenario's sources report (its `description`).
    #[serde(default)]
    pub description: String,
    /// Where it is reported (`owner/repo#N`, ...).
    #[serde(default)]
    pub sources: Vec<String>,
    /// The scenario file's text, as run (for reports).
    pub scenario_text: String,
    pub testbed: String,
    pub topology: Topology,
    pub image: Option<ImageInfo>,
    pub server_version: Option<String>,
    pub measurements: Measurements,
    pub verdicts: Vec<Verdict>,
    pub step_errors: Vec<String>,
    pub check: checker::Report,
    pub history: Vec<Op>,
    /// The scenario's `[external_client]`, when it has one.
    pub external: Option<ExternalResult>,
    /// The scenario's `[[clients]]`, each checked on its own (one that
    /// crashed or never started is here too, with why).
    pub clients: Vec<ExternalResult>,
    pub timeline: Vec<Event>,
    pub script_calls: Vec<ScriptCall>,
    /// node -> command -> raw reply text.
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

    /// The run's folder in a bundle: `run-<seed>` (so shards of one plan
    /// never clash), or `run-<i>` (1-based) for a run without a seed.
    pub fn dir_name(&self, index: usize) -> String {
        match self.seed {
            Some(s) => format!("run-{s}"),
            None => format!("run-{}", index + 1),
        }
    }
}

/// What the VIP sampler saw over the run.
#[derive(Debug, Clone, Default)]
pub struct VipSamples {
    pub holders_max: usize,
    pub duplicate_ms: f64,
    pub taken: usize,
    /// Samples that could not be taken: (count, first error).
    pub failed: Option<(usize, String)>,
}

/// Everything the measurements are derived from.
pub struct MeasureInput<'a> {
    pub events: &'a [Event],
    pub check: &'a checker::Report,
    pub fault_ms: Option<f64>,
    /// The last action that brought something back (heal, start, ...).
    pub reconnect_ms: Option<f64>,
    pub old: &'a Node,
    pub final_master: Option<&'a Node>,
    pub vip: &'a VipSamples,
    /// The VIP holders at the end, or why they could not be read.
    pub final_holders: std::result::Result<Vec<String>, String>,
    /// The topology's nodes (to name a promoted address).
    pub nodes: &'a [Node],
    /// Where the scenario's steps started (events are counted from the
    /// first fault, or from here when there is none).
    pub steps_start_ms: f64,
}

/// Derives the measurements (pure).
pub fn measure(i: MeasureInput) -> Measurements {
    let f = i.fault_ms.unwrap_or(0.0);
    let switches: Vec<&Event> = i
        .events
        .iter()
        .filter(|e| e.name == "+switch-master" && e.t_ms >= f)
        .collect();
    let mut pairs: Vec<&str> = switches.iter().map(|e| e.detail.as_str()).collect();
    pairs.sort();
    pairs.dedup();
    let demoted = i.reconnect_ms.and_then(|r| {
        i.events
            .iter()
            .find(|e| {
                e.name == "+convert-to-slave"
                    && e.t_ms >= r
                    && e.detail.contains(&format!(" {} ", i.old.ip))
            })
            .map(|e| e.t_ms - r)
    });
    let client = ClientMeasurements::of(i.check, i.fault_ms);
    let promoted_node = switches.first().and_then(|e| {
        // `<name> <old-ip> <old-port> <new-ip> <new-port>`
        let ip = e.detail.split_whitespace().nth(3)?;
        let n = i.nodes.iter().find(|n| n.ip.to_string() == ip);
        Some(n.map_or_else(|| ip.to_string(), |n| n.name.clone()))
    });
    let since = i.fault_ms.unwrap_or(i.steps_start_ms);
    let mut events: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for e in i
        .events
        .iter()
        .filter(|e| e.kind == Kind::Sentinel && e.t_ms >= since)
    {
        *events
            .entry(e.name.clone())
            .or_default()
            .entry(e.source.clone())
            .or_default() += 1;
    }
    let mut unmeasured = BTreeMap::new();
    if let Some((n, first)) = &i.vip.failed {
        let why = format!(
            "{n} of {} VIP samples could not be taken (first: {first})",
            i.vip.taken + n
        );
        unmeasured.insert(Measure::VipHoldersMax.key().to_string(), why.clone());
        unmeasured.insert(Measure::DuplicateVipMs.key().to_string(), why);
    }
    let final_vip_holders = match i.final_holders {
        Ok(h) => h,
        Err(e) => {
            let why = format!("the VIP holders at the end could not be read: {e}");
            unmeasured.insert(Measure::VipHolder.key().to_string(), why);
            Vec::new()
        }
    };
    Measurements {
        fault_ms: i.fault_ms,
        promoted_ms: switches.first().map(|e| e.t_ms - f),
        failovers: pairs.len(),
        old_master: i.old.name.clone(),
        final_master: i.final_master.map(|n| n.name.clone()),
        vip_holders_max: i.vip.holders_max,
        duplicate_vip_ms: i.vip.duplicate_ms,
        final_vip_holders,
        old_master_demoted_ms: demoted,
        client_recovered_ms: client.client_recovered_ms,
        lost_acknowledged_writes: client.lost_acknowledged_writes,
        refused_writes: client.refused_writes,
        loss_window_ms: client.loss_window_ms,
        unmeasured,
        step_errors: 0,
        promoted_node,
        events,
        refused_by_kind: i.check.errors.clone(),
        end: BTreeMap::new(),
        script_calls: BTreeMap::new(),
    }
}

/// The first fault and the last reconnect among the recorded actions, by
/// the verb table (`Role::Fault`, `Verb::brings_back`).
pub fn fault_and_reconnect(events: &[Event], since_ms: f64) -> (Option<f64>, Option<f64>) {
    let actions = events
        .iter()
        .filter(|e| e.kind == Kind::Action && e.t_ms >= since_ms)
        .filter_map(|e| {
            Verb::from_name(&e.name).map(|v| (v, e.t_ms, Role::of_recorded(v, &e.detail)))
        });
    let (mut fault, mut reconnect) = (None, None);
    for (v, t, role) in actions {
        if role == Role::Fault && fault.is_none() {
            fault = Some(t);
        }
        if v.brings_back() || (role == Role::Repair && v.scenario_only()) {
            reconnect = Some(t);
        }
    }
    (fault, reconnect)
}

/// The implicit expectation of a scenario with an external client: it
/// wrote for the whole scenario and printed only operation records.
pub fn external_ran(x: &ExternalResult) -> Verdict {
    let r = &x.run;
    let problem = match (&r.exited_early, &r.parse_error, &r.read_error) {
        (Some(e), _, _) => Some(format!(
            "exited early ({e}); stderr: {}",
            crate::workload::external::tail(&r.stderr, 3)
        )),
        (None, Some(p), _) => Some(p.clone()),
        (None, None, Some(e)) => Some(format!("its output could not be read to the end: {e}")),
        // it ignored SIGTERM: its write in flight has no record
        (None, None, None) if r.exit.starts_with("killed") => Some(r.exit.clone()),
        (None, None, None) => None,
    };
    Verdict {
        expectation: format!("external client \"{}\" wrote until stopped", r.name),
        measured: problem
            .clone()
            .unwrap_or_else(|| format!("{} writes, {}", r.history.len(), r.exit)),
        pass: problem.is_none(),
    }
}

/// Judges one expectation.
pub fn verdict(
    e: &Expectation,
    m: &Measurements,
    external: Option<&ExternalResult>,
    old: &str,
) -> Verdict {
    if !e.external {
        if let Some(why) = m.unmeasured.get(&e.path()) {
            return Verdict {
                expectation: e.source.clone(),
                measured: format!("could not measure: {why}"),
                pass: false,
            };
        }
    }
    if e.external {
        if let Some(why) = m.unmeasured.get(&format!("external.{}", e.path())) {
            return Verdict {
                expectation: e.source.clone(),
                measured: format!("could not measure: {why}"),
                pass: false,
            };
        }
        let c = external.map(|x| &x.measurements);
        let measured = c.and_then(|c| match e.measure {
            Measure::LostAcknowledgedWrites => Some(c.lost_acknowledged_writes as f64),
            Measure::ClientRecoveredWithinMs => c.client_recovered_ms,
            Measure::RefusedWrites => Some(c.refused_writes as f64),
            Measure::LossWindowMs => Some(c.loss_window_ms),
            Measure::RefusedWritesOf => external.map(|x| {
                let kind = e.args.first().map_or("", String::as_str);
                x.check.errors.get(kind).copied().unwrap_or(0) as f64
            }),
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
        Measure::VipHolder => return holder_verdict(e, m, old),
        Measure::StepErrors => Some(m.step_errors as f64),
        Measure::PromotedNode | Measure::FinalMaster => return super::judge::node(e, m, old),
        Measure::Events
        | Measure::RefusedWritesOf
        | Measure::Info
        | Measure::SentinelField
        | Measure::SentinelRestarts
        | Measure::SentinelRunning
        | Measure::ScriptCalls => return super::judge::dotted(e, m),
    };
    compare(e, measured)
}

fn holder_verdict(e: &Expectation, m: &Measurements, old: &str) -> Verdict {
    let Bound::Holder(h) = &e.bound else {
        unreachable!("the parser gives vip_holder a holder bound");
    };
    let want = match h {
        Holder::NewMaster => m.final_master.clone().filter(|n| n != old),
        Holder::OldMaster => Some(old.to_string()),
        Holder::None => None,
        Holder::Node(n) => Some(n.clone()),
    };
    let got = &m.final_vip_holders;
    let pass = match (h, &want) {
        (_, Some(w)) => got == std::slice::from_ref(w),
        (Holder::None, None) => got.is_empty(),
        // new-master, but the final master is the old one or unknown
        (_, None) => false,
    };
    Verdict {
        expectation: e.source.clone(),
        measured: format!(
            "VIP on [{}], final master {}",
            got.join(", "),
            m.final_master.as_deref().unwrap_or("unknown")
        ),
        pass,
    }
}

pub(super) fn compare(e: &Expectation, measured: Option<f64>) -> Verdict {
    let Bound::Number(bound) = e.bound else {
        unreachable!("the parser gives numeric measures a number");
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Cmp;

    fn expect(measure: Measure, op: Cmp, bound: Bound) -> Expectation {
        Expectation {
            measure,
            op,
            bound,
            source: format!("{} ...", measure.key()),
            external: false,
            args: Vec::new(),
        }
    }

    #[test]
    fn an_unmeasured_value_fails_with_its_reason() {
        let mut m = Measurements {
            vip_holders_max: 1,
            ..Default::default()
        };
        let e = expect(Measure::VipHoldersMax, Cmp::Le, Bound::Number(1.0));
        assert!(verdict(&e, &m, None, "node1").pass);
        m.unmeasured
            .insert("vip_holders_max".into(), "2 of 9 samples failed".into());
        let v = verdict(&e, &m, None, "node1");
        assert!(!v.pass);
        assert!(v.measured.contains("could not measure: 2 of 9"), "{v:?}");
    }

    #[test]
    fn no_holder_is_not_a_pass_when_reading_failed() {
        let node = Node {
            name: "node1".into(),
            ip: "198.18.0.11".parse().unwrap(),
            replica_priority: None,
        };
        let check = checker::Report::default();
        let vip = VipSamples::default();
        let m = measure(MeasureInput {
            events: &[],
            check: &check,
            fault_ms: Some(0.0),
            reconnect_ms: None,
            old: &node,
            final_master: None,
            vip: &vip,
            final_holders: Err("nsenter failed".into()),
            nodes: std::slice::from_ref(&node),
            steps_start_ms: 0.0,
        });
        let e = expect(Measure::VipHolder, Cmp::Eq, Bound::Holder(Holder::None));
        let v = verdict(&e, &m, None, "node1");
        assert!(!v.pass && v.measured.contains("nsenter failed"), "{v:?}");
        // new-master with no known final master is a failure, not a pass
        let e = expect(
            Measure::VipHolder,
            Cmp::Eq,
            Bound::Holder(Holder::NewMaster),
        );
        let ok = Measurements::default();
        assert!(!verdict(&e, &ok, None, "node1").pass);
    }

    #[test]
    fn the_first_fault_and_the_last_reconnect_come_from_the_verb_table() {
        let ev = |t: f64, name: &str| Event {
            t_ms: t,
            kind: Kind::Action,
            source: "testbed".into(),
            name: name.into(),
            detail: String::new(),
        };
        let events = [
            ev(1.0, "sleep"),
            ev(2.0, "isolate"),
            ev(3.0, "kill"),
            ev(4.0, "heal"),
            ev(5.0, "start"),
            ev(6.0, "external-client-stop"),
        ];
        assert_eq!(fault_and_reconnect(&events, 0.0), (Some(2.0), Some(5.0)));
        assert_eq!(fault_and_reconnect(&events[..1], 0.0), (None, None));
    }
}
