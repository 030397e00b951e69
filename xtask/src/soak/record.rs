//! What a soak found, and the accounting of its writes: every acknowledged
//! write is on the final master or was lost inside the span of a fault
//! (from [`SLACK_MS`] before the fault was applied until the testbed was
//! healthy again). A write lost anywhere else is *unexplained* and fails
//! the soak. Pure.

use super::schedule::Planned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use testbed::checker::{self, Window};
use testbed::workload::Op;

/// How long before a fault a write may be acknowledged and still be lost
/// by it: replication is asynchronous, so the master may ack a write it
/// has not yet sent when it dies (a replica's lag is well under this).
pub const SLACK_MS: f64 = 1_000.0;

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    #[serde(flatten)]
    pub planned: Planned,
    pub verb: String,
    /// The fault's actions with their targets resolved (`kill node2`).
    pub applied: Vec<String>,
    pub master_before: String,
    pub master_after: Option<String>,
    /// Timeline ms.
    pub applied_ms: f64,
    pub repaired_ms: f64,
    /// When the testbed was healthy with one VIP holder again.
    pub recovered_ms: Option<f64>,
    /// The fallback repair (heal, start, resume everything) was needed.
    pub forced: bool,
    pub errors: Vec<String>,
    /// Acknowledged writes lost in this fault's span.
    pub lost: usize,
    /// Time without a successful write inside the fault's span (ms).
    pub unavailable_ms: f64,
}

impl FaultRecord {
    /// Whether the master changed.
    pub fn failed_over(&self) -> bool {
        self.master_after
            .as_ref()
            .is_some_and(|m| *m != self.master_before)
    }

    /// The span a lost write is blamed on (open to `end_ms` when it never
    /// recovered).
    fn span(&self, end_ms: f64) -> (f64, f64) {
        (
            self.applied_ms - SLACK_MS,
            self.recovered_ms.unwrap_or(end_ms),
        )
    }
}

/// The accounting of the writes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Accounting {
    pub operations: usize,
    pub acknowledged: usize,
    pub present: usize,
    pub lost: usize,
    /// Lost acknowledged writes outside every fault's span (ids).
    pub unexplained: Vec<u64>,
    pub unknown_landed: usize,
    pub unknown_missing: usize,
    pub refused_but_present: usize,
    pub duplicated: usize,
    pub errors: BTreeMap<String, usize>,
    pub loss_windows: Vec<Window>,
    pub longest_unavailable_ms: f64,
}

/// Blames each lost write on the fault whose span holds it, fills in each
/// fault's `lost` and `unavailable_ms`, and returns the accounting.
pub fn account(
    faults: &mut [FaultRecord],
    history: &[Op],
    check: &checker::Report,
    end_ms: f64,
) -> Accounting {
    let by_id: HashMap<u64, &Op> = history.iter().map(|o| (o.id, o)).collect();
    let mut unexplained = Vec::new();
    for id in &check.lost {
        let Some(op) = by_id.get(id) else {
            unexplained.push(*id);
            continue;
        };
        let blamed = faults.iter_mut().find(|f| {
            let (s, e) = f.span(end_ms);
            op.complete_ms >= s && op.invoke_ms <= e
        });
        match blamed {
            Some(f) => f.lost += 1,
            None => unexplained.push(*id),
        }
    }
    for f in faults.iter_mut() {
        let (s, e) = (f.applied_ms, f.recovered_ms.unwrap_or(end_ms));
        f.unavailable_ms = check
            .unavailable
            .iter()
            .map(|w| (w.end_ms.min(e) - w.start_ms.max(s)).max(0.0))
            .sum();
    }
    Accounting {
        operations: check.operations,
        acknowledged: check.acknowledged,
        present: check.acknowledged - check.lost.len(),
        lost: check.lost.len(),
        unexplained,
        unknown_landed: check.unknown_landed.len(),
        unknown_missing: check.unknown_missing.len(),
        refused_but_present: check.refused_but_present.len(),
        duplicated: check.duplicated.len(),
        errors: check.errors.clone(),
        loss_windows: check.loss_windows.clone(),
        longest_unavailable_ms: check
            .unavailable
            .iter()
            .map(Window::len_ms)
            .fold(0.0, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::schedule::{Fault, Hold};
    use std::collections::HashSet;
    use testbed::workload::Outcome;

    fn op(id: u64, at: f64, ok: bool) -> Op {
        Op {
            id,
            process: "w".into(),
            invoke_ms: at,
            complete_ms: at + 2.0,
            outcome: if ok {
                Outcome::Ok
            } else {
                Outcome::Error {
                    kind: "READONLY".into(),
                    message: String::new(),
                }
            },
        }
    }

    fn fault(applied: f64, recovered: Option<f64>) -> FaultRecord {
        FaultRecord {
            planned: Planned {
                index: 0,
                fault: Fault::KillMaster,
                hold: Hold::UntilSwitch(1),
                settle_ms: 0,
            },
            verb: "kill".into(),
            applied: vec![],
            master_before: "node1".into(),
            master_after: Some("node2".into()),
            applied_ms: applied,
            repaired_ms: applied,
            recovered_ms: recovered,
            forced: false,
            errors: vec![],
            lost: 0,
            unavailable_ms: 0.0,
        }
    }

    #[test]
    fn losses_inside_a_fault_are_blamed_on_it_and_others_are_unexplained() {
        // writes every 100 ms from 0 to 10 s; 4000-6000 is a fault
        let history: Vec<Op> = (0..100)
            .map(|i| op(i, i as f64 * 100.0, !(45..50).contains(&i)))
            .collect();
        // lost: 35 (3500, within the slack), 40 (inside), 80 (after recovery)
        let present: HashSet<u64> = (0..100).filter(|i| ![35, 40, 80].contains(i)).collect();
        let check = checker::check(&history, &present);
        let mut faults = vec![fault(4_000.0, Some(6_000.0))];
        let a = account(&mut faults, &history, &check, 10_000.0);
        assert_eq!(a.lost, 3);
        assert_eq!(faults[0].lost, 2);
        assert_eq!(a.unexplained, vec![80]);
        assert!(
            faults[0].unavailable_ms >= 500.0,
            "{}",
            faults[0].unavailable_ms
        );
        assert!(faults[0].failed_over());
    }

    #[test]
    fn a_fault_that_never_recovered_holds_everything_after_it() {
        let history: Vec<Op> = (0..10).map(|i| op(i, i as f64 * 100.0, true)).collect();
        let present: HashSet<u64> = (0..5).collect();
        let check = checker::check(&history, &present);
        let mut faults = vec![fault(450.0, None)];
        let a = account(&mut faults, &history, &check, 1_000.0);
        assert!(a.unexplained.is_empty());
        assert_eq!(faults[0].lost, 5);
    }
}
