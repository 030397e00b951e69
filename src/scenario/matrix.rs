//! The client matrix: each scenario run with every selected client writing
//! at the same time on one testbed (the same failover for all), repeated;
//! one row per client × scenario × run, and per client × scenario the
//! median and range of the recovery over the runs (`cargo xtask clients`).
//!
//! Invariants: every selected client has a row in every completed run —
//! one that crashed or never started is a row "crashed (exit N: last stderr
//! line)"; a row's counts are the checker's, who judges every client the
//! same way; rows are derived purely from the runs (`rows`, `summaries`).

use super::result::ExternalResult;
use super::run::{RunOptions, RunResult};
use super::Scenario;
use crate::error::Result;
use crate::model::clients::ClientProgram;
use crate::model::net::Subnet;
use crate::workload::external::ExternalSpec;
use crate::workload::{Op, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;

/// How to run the matrix.
#[derive(Debug, Clone)]
pub struct MatrixOptions {
    pub clients: Vec<&'static ClientProgram>,
    pub repeat: u32,
    /// Testbeds are `<prefix><scenario>`, on 198.18.<slot>.0/24 with slot
    /// `first_slot + (scenario index % slots)`.
    pub name_prefix: String,
    pub first_slot: u8,
    pub slots: u8,
    /// Each client's `TESTBED_RATE` and `TESTBED_TIMEOUT_MS`.
    pub rate: u32,
    pub timeout_ms: u64,
    pub image: Option<String>,
    pub up: crate::testbed::UpOptions,
}

impl Default for MatrixOptions {
    fn default() -> Self {
        MatrixOptions {
            clients: crate::model::clients::CLIENTS.iter().collect(),
            repeat: 1,
            name_prefix: "cm-".into(),
            first_slot: 210,
            slots: 10,
            rate: 50,
            timeout_ms: 1000,
            image: None,
            up: Default::default(),
        }
    }
}

/// One run of one scenario, or why it did not complete.
#[derive(Debug, Clone, Serialize)]
pub struct MatrixRun {
    pub scenario: String,
    /// 1-based.
    pub run: u32,
    pub testbed: String,
    #[serde(skip)]
    pub result: Option<RunResult>,
    /// The run did not complete (bring-up failed, ...).
    pub error: Option<String>,
}

/// `scenario` with `clients` as its `[[clients]]` (each writing `INCR
/// wl:<name>:<id>` at `rate`), whatever the file listed.
pub fn with_clients(
    scenario: &Scenario,
    clients: &[&ClientProgram],
    rate: u32,
    timeout_ms: u64,
) -> Scenario {
    let mut s = scenario.clone();
    s.clients = clients
        .iter()
        .map(|c| ExternalSpec::in_container(c.name, c.name, rate, timeout_ms))
        .collect();
    s
}

/// The testbed name of a scenario: `<prefix><scenario>`, at most 24
/// characters of `a-z0-9-`.
pub fn testbed_name(prefix: &str, scenario: &str) -> String {
    let mut n = prefix.to_string();
    for c in scenario.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && n.ends_with('-')) {
            n.push(c);
        }
    }
    n.truncate(24);
    n.trim_end_matches('-').to_string()
}

/// Runs every scenario `repeat` times with every client. A run that does
/// not complete is recorded and the matrix goes on; an interruption ends
/// it (every testbed of the run removed).
pub async fn run(
    scenarios: &[Scenario],
    opts: &MatrixOptions,
    mut on_run: impl FnMut(&MatrixRun),
) -> Result<Vec<MatrixRun>> {
    let mut out = Vec::new();
    for (i, sc) in scenarios.iter().enumerate() {
        let s = with_clients(sc, &opts.clients, opts.rate, opts.timeout_ms);
        let slot = opts.first_slot + (i as u8 % opts.slots.max(1));
        let ropts = RunOptions {
            testbed_name: testbed_name(&opts.name_prefix, &s.name),
            subnet: Subnet::test_slot(slot),
            image: opts.image.clone(),
            up: opts.up.clone(),
            seed: None,
        };
        for r in 1..=opts.repeat {
            let (result, error) = match super::run::run(&s, &ropts).await {
                Ok(res) => (Some(res), None),
                Err(e @ crate::Error::Interrupted { .. }) => return Err(e),
                Err(e) => (None, Some(e.to_string())),
            };
            let m = MatrixRun {
                scenario: s.name.clone(),
                run: r,
                testbed: ropts.testbed_name.clone(),
                result,
                error,
            };
            on_run(&m);
            out.push(m);
        }
    }
    Ok(out)
}

/// One client in one run of one scenario: the stable `matrix.json` row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub client: String,
    pub library: String,
    /// As the library reported it at run time (its meta line).
    pub version: String,
    pub language: String,
    pub discovery: String,
    pub scenario: String,
    pub run: u32,
    /// Fault → completion of the first acknowledged write after the first
    /// failure (or after the first write slower than its timeout); `null`
    /// when it did not recover, had no outage, or crashed.
    pub recovered_ms: Option<f64>,
    /// It failed after the fault and had no acknowledged write again before
    /// it was stopped, this long after the fault.
    pub did_not_recover_within_ms: Option<f64>,
    pub acknowledged: usize,
    /// Acknowledged writes present on the final master.
    pub acknowledged_present: usize,
    pub lost_acknowledged: usize,
    /// Writes that happened more than once (an `INCR` value above 1, or an
    /// id written twice).
    pub duplicates: usize,
    pub unknown: usize,
    pub unknown_landed: usize,
    /// Refused writes by error kind.
    pub refused: BTreeMap<String, usize>,
    pub longest_unavailable_ms: f64,
    /// The longest time after the fault without an acknowledgement
    /// completing (a write that blocks inside the library included).
    pub longest_ack_gap_ms: f64,
    /// It had writes acknowledged by a master the sentinels had already
    /// replaced (after the first `+switch-master`), which were then lost.
    pub wrote_to_demoted_master: bool,
    pub writes_to_demoted_master: usize,
    /// `crashed (exit N: last stderr line)`, when it did not write until
    /// told to stop.
    pub crashed: Option<String>,
    /// Its container's address on the segment.
    pub address: Option<String>,
}

/// The rows of every completed run, clients in the order given; a write
/// acknowledged only after more than `slow_ms` (the clients' timeout)
/// counts as the outage it was.
pub fn rows(runs: &[MatrixRun], clients: &[&ClientProgram], slow_ms: f64) -> Vec<Row> {
    let mut out = Vec::new();
    for m in runs {
        let Some(r) = &m.result else { continue };
        for c in clients {
            match r.clients.iter().find(|x| x.run.name == c.name) {
                Some(x) => out.push(row(c, m, r, x, slow_ms)),
                // not even a launch attempt is recorded: still a row
                None => out.push(Row {
                    crashed: Some("crashed (exit ?: no result recorded)".into()),
                    ..blank(c, m)
                }),
            }
        }
    }
    out
}

fn blank(c: &ClientProgram, m: &MatrixRun) -> Row {
    Row {
        client: c.name.to_string(),
        library: c.library.to_string(),
        version: String::new(),
        language: c.language.to_string(),
        discovery: c.discovery.as_str().to_string(),
        scenario: m.scenario.clone(),
        run: m.run,
        recovered_ms: None,
        did_not_recover_within_ms: None,
        acknowledged: 0,
        acknowledged_present: 0,
        lost_acknowledged: 0,
        duplicates: 0,
        unknown: 0,
        unknown_landed: 0,
        refused: BTreeMap::new(),
        longest_unavailable_ms: 0.0,
        longest_ack_gap_ms: 0.0,
        wrote_to_demoted_master: false,
        writes_to_demoted_master: 0,
        crashed: None,
        address: None,
    }
}

fn row(c: &ClientProgram, m: &MatrixRun, r: &RunResult, x: &ExternalResult, slow_ms: f64) -> Row {
    let check = &x.check;
    let fault = r.measurements.fault_ms;
    let meta = x.run.meta.as_ref();
    let version = meta
        .and_then(|m| m.get("version"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let lost: std::collections::HashSet<u64> = check.lost.iter().copied().collect();
    let present = x
        .run
        .history
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && !lost.contains(&o.id))
        .count();
    let (recovered_ms, did_not_recover_within_ms) = match fault {
        Some(f) => recovery(&x.run.history, &check.unavailable, f, slow_ms),
        None => (None, None),
    };
    let crashed = x.run.crash();
    Row {
        version,
        recovered_ms: recovered_ms.filter(|_| crashed.is_none()),
        did_not_recover_within_ms: did_not_recover_within_ms.filter(|_| crashed.is_none()),
        acknowledged: check.acknowledged,
        acknowledged_present: present,
        lost_acknowledged: check.lost.len(),
        duplicates: check.duplicates().len(),
        unknown: check.unknown_landed.len() + check.unknown_missing.len(),
        unknown_landed: check.unknown_landed.len(),
        refused: check.errors.clone(),
        longest_unavailable_ms: check.longest_unavailable_ms(),
        longest_ack_gap_ms: fault.map_or(0.0, |f| longest_ack_gap(&x.run.history, f)),
        wrote_to_demoted_master: x.measurements.wrote_to_demoted_master > 0,
        writes_to_demoted_master: x.measurements.wrote_to_demoted_master,
        crashed,
        address: x.run.address.clone(),
        ..blank(c, m)
    }
}

/// (recovered, did not recover within) from the fault at `fault_ms`: the end
/// of the first unavailability window ending after the fault; without one,
/// the completion of the first write slower than `slow_ms` after the fault;
/// a window still open at the end is "did not recover within" the time to
/// the last record.
pub fn recovery(
    history: &[Op],
    unavailable: &[crate::workload::checker::Window],
    fault_ms: f64,
    slow_ms: f64,
) -> (Option<f64>, Option<f64>) {
    if let Some(w) = unavailable.iter().find(|w| w.end_ms >= fault_ms) {
        return if w.ongoing {
            (None, Some(w.end_ms - fault_ms))
        } else {
            (Some(w.end_ms - fault_ms), None)
        };
    }
    let slow = history.iter().find(|o| {
        o.complete_ms >= fault_ms
            && o.outcome == Outcome::Ok
            && o.complete_ms - o.invoke_ms > slow_ms
    });
    (slow.map(|o| o.complete_ms - fault_ms), None)
}

/// The longest span after `fault_ms` without an acknowledged write
/// completing, up to the last record (an open gap counts to there).
pub fn longest_ack_gap(history: &[Op], fault_ms: f64) -> f64 {
    let mut acks: Vec<f64> = history
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .map(|o| o.complete_ms)
        .collect();
    acks.sort_by(f64::total_cmp);
    let end = history
        .iter()
        .map(|o| o.complete_ms)
        .fold(fault_ms, f64::max);
    let mut last = acks
        .iter()
        .copied()
        .rfind(|t| *t <= fault_ms)
        .unwrap_or(fault_ms);
    let mut longest: f64 = 0.0;
    for t in acks.into_iter().filter(|t| *t > fault_ms) {
        longest = longest.max(t - last);
        last = t;
    }
    longest.max(end - last)
}

/// Per client × scenario over the runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub client: String,
    pub scenario: String,
    pub runs: usize,
    pub recovered_runs: usize,
    pub recovered_median_ms: Option<f64>,
    pub recovered_min_ms: Option<f64>,
    pub recovered_max_ms: Option<f64>,
    /// Runs in which it failed after the fault and never wrote again.
    pub did_not_recover: usize,
    pub crashed: usize,
    pub lost_acknowledged: usize,
    pub duplicates: usize,
    pub wrote_to_demoted_master_runs: usize,
}

/// The summaries, in the rows' order of first appearance.
pub fn summaries(rows: &[Row]) -> Vec<Summary> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in rows {
        let k = (r.scenario.clone(), r.client.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(scenario, client)| {
            let mine: Vec<&Row> = rows
                .iter()
                .filter(|r| r.scenario == scenario && r.client == client)
                .collect();
            let mut rec: Vec<f64> = mine.iter().filter_map(|r| r.recovered_ms).collect();
            rec.sort_by(f64::total_cmp);
            Summary {
                runs: mine.len(),
                recovered_runs: rec.len(),
                recovered_median_ms: median(&rec),
                recovered_min_ms: rec.first().copied(),
                recovered_max_ms: rec.last().copied(),
                did_not_recover: mine
                    .iter()
                    .filter(|r| r.did_not_recover_within_ms.is_some())
                    .count(),
                crashed: mine.iter().filter(|r| r.crashed.is_some()).count(),
                lost_acknowledged: mine.iter().map(|r| r.lost_acknowledged).sum(),
                duplicates: mine.iter().map(|r| r.duplicates).sum(),
                wrote_to_demoted_master_runs: mine
                    .iter()
                    .filter(|r| r.wrote_to_demoted_master)
                    .count(),
                client,
                scenario,
            }
        })
        .collect()
}

/// The median of sorted values.
fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests;
