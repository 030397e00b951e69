//! The checker: given a history of writes and the set of keys present on the
//! final master, which acknowledged writes were lost, which unknown writes
//! landed, and when clients could not write. Pure.

use crate::workload::{Op, Outcome};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// What the checker found.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Report {
    pub operations: usize,
    pub acknowledged: usize,
    /// Acknowledged writes missing from the final state (ids).
    pub lost: Vec<u64>,
    /// Unknown-outcome writes that are in the final state / that are not.
    pub unknown_landed: Vec<u64>,
    pub unknown_missing: Vec<u64>,
    /// Refused writes found in the final state (a server said no, then did it).
    pub refused_but_present: Vec<u64>,
    /// Ids that appear more than once in the history.
    pub duplicated: Vec<u64>,
    /// Writes applied more than once: an `INCR` whose key holds more than 1
    /// at the end (a retry or an offline queue sent it again). Only for
    /// clients whose writes are `INCR` (see [`check_counts`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub applied_twice: Vec<u64>,
    /// Refused writes by error kind (READONLY, NOREPLICAS, ...).
    pub errors: BTreeMap<String, usize>,
    /// Spans (timeline ms) in which no write got through: from the first
    /// failed or timed-out write to the completion of the next acknowledged
    /// one (a write that blocks for a minute and then succeeds is part of
    /// the outage).
    pub unavailable: Vec<Window>,
    /// Spans in which writes were acknowledged and later lost.
    pub loss_windows: Vec<Window>,
}

/// A span of timeline ms.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Window {
    pub start_ms: f64,
    pub end_ms: f64,
    /// Still open when the history ended (`end_ms` is then the last
    /// operation's completion, not a recovery).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ongoing: bool,
}

impl Window {
    pub fn len_ms(&self) -> f64 {
        self.end_ms - self.start_ms
    }
}

/// Checks `history` against the ids present at the end.
pub fn check(history: &[Op], present: &HashSet<u64>) -> Report {
    let mut r = Report {
        operations: history.len(),
        ..Default::default()
    };
    let mut seen = HashSet::new();
    let mut ops: Vec<&Op> = history.iter().collect();
    ops.sort_by(|a, b| a.invoke_ms.total_cmp(&b.invoke_ms));
    for op in &ops {
        if !seen.insert(op.id) && !r.duplicated.contains(&op.id) {
            r.duplicated.push(op.id);
        }
        let here = present.contains(&op.id);
        match &op.outcome {
            Outcome::Ok => {
                r.acknowledged += 1;
                if !here {
                    r.lost.push(op.id);
                }
            }
            Outcome::Unknown if here => r.unknown_landed.push(op.id),
            Outcome::Unknown => r.unknown_missing.push(op.id),
            Outcome::Error { kind, .. } => {
                *r.errors.entry(kind.clone()).or_default() += 1;
                if here {
                    r.refused_but_present.push(op.id);
                }
            }
        }
    }
    r.unavailable = outages(&ops);
    r.loss_windows = loss_windows(&ops, present);
    r
}

/// [`check`] for a client whose writes are `INCR <key>`: `values` holds what
/// each key of the history reads at the end (missing keys are absent), so
/// a write applied twice shows as a value above 1.
pub fn check_counts(history: &[Op], values: &BTreeMap<u64, i64>) -> Report {
    let present: HashSet<u64> = values.keys().copied().collect();
    let mut r = check(history, &present);
    r.applied_twice = values
        .iter()
        .filter(|(_, v)| **v > 1)
        .map(|(id, _)| *id)
        .collect();
    r
}

impl Report {
    /// Every write that happened more than once: ids written twice by the
    /// client, and writes the library applied twice.
    pub fn duplicates(&self) -> Vec<u64> {
        let mut d: Vec<u64> = self
            .duplicated
            .iter()
            .chain(&self.applied_twice)
            .copied()
            .collect();
        d.sort_unstable();
        d.dedup();
        d
    }
}

/// Acknowledged writes that completed after `switch_ms` (the first
/// `+switch-master`) and are missing at the end: a master the sentinels had
/// already replaced took them, and lost them when it was demoted.
pub fn to_demoted_master(history: &[Op], lost: &[u64], switch_ms: Option<f64>) -> usize {
    let Some(t) = switch_ms else { return 0 };
    let lost: HashSet<u64> = lost.iter().copied().collect();
    history
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && o.complete_ms > t && lost.contains(&o.id))
        .count()
}

/// The unavailability windows of `history` (see [`Report::unavailable`]).
pub fn unavailable(history: &[Op]) -> Vec<Window> {
    let mut ops: Vec<&Op> = history.iter().collect();
    ops.sort_by(|a, b| a.invoke_ms.total_cmp(&b.invoke_ms));
    outages(&ops)
}

/// When the client recovered from the outage that followed `since_ms` (the
/// first fault): the end of the first unavailability window that ends at or
/// after it. `None` while that window is still open (or none opened).
pub fn recovered_after(unavailable: &[Window], since_ms: f64) -> Option<f64> {
    unavailable
        .iter()
        .find(|w| w.end_ms >= since_ms)
        .filter(|w| !w.ongoing)
        .map(|w| w.end_ms)
}

/// `ops` sorted by invoke time.
fn outages(ops: &[&Op]) -> Vec<Window> {
    windows(
        ops,
        |o| o.outcome != Outcome::Ok,
        |o| o.outcome == Outcome::Ok,
    )
}

/// Maximal spans of consecutive operations matching `inside`, closed at the
/// completion of the first operation matching `ends` (operations matching
/// neither are skipped).
fn windows(ops: &[&Op], inside: impl Fn(&Op) -> bool, ends: impl Fn(&Op) -> bool) -> Vec<Window> {
    let mut out = Vec::new();
    let mut open: Option<f64> = None;
    for op in ops {
        match open {
            None if inside(op) => open = Some(op.invoke_ms),
            Some(start) if ends(op) => {
                out.push(Window {
                    start_ms: start,
                    end_ms: op.complete_ms,
                    ongoing: false,
                });
                open = None;
            }
            _ => {}
        }
    }
    if let (Some(start), Some(last)) = (open, ops.last()) {
        out.push(Window {
            start_ms: start,
            end_ms: last.complete_ms,
            ongoing: true,
        });
    }
    out
}

/// Spans from the first to the last of consecutive acknowledged-then-lost
/// writes (refused or unknown writes in between do not end a span; an
/// acknowledged write that survived does).
fn loss_windows(ops: &[&Op], present: &HashSet<u64>) -> Vec<Window> {
    let mut out = Vec::new();
    let mut open: Option<Window> = None;
    for op in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        match (present.contains(&op.id), &mut open) {
            (false, Some(w)) => w.end_ms = op.complete_ms,
            (false, None) => {
                open = Some(Window {
                    start_ms: op.invoke_ms,
                    end_ms: op.complete_ms,
                    ongoing: false,
                })
            }
            (true, Some(w)) => {
                out.push(*w);
                open = None;
            }
            (true, None) => {}
        }
    }
    out.extend(open);
    out
}

impl Report {
    /// The longest unavailability window (ms), 0 if none.
    pub fn longest_unavailable_ms(&self) -> f64 {
        self.unavailable
            .iter()
            .map(Window::len_ms)
            .fold(0.0, f64::max)
    }

    /// A short human summary.
    pub fn summary(&self) -> String {
        format!(
            "{} ops, {} acknowledged, {} acknowledged lost, {} unknown ({} landed), {} refused {:?}, longest unavailability {:.0} ms",
            self.operations,
            self.acknowledged,
            self.lost.len(),
            self.unknown_landed.len() + self.unknown_missing.len(),
            self.unknown_landed.len(),
            self.errors.values().sum::<usize>(),
            self.errors,
            self.longest_unavailable_ms()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, t: f64, outcome: Outcome) -> Op {
        Op {
            id,
            process: "c".into(),
            invoke_ms: t,
            complete_ms: t + 1.0,
            outcome,
        }
    }

    fn err(kind: &str) -> Outcome {
        Outcome::Error {
            kind: kind.into(),
            message: kind.into(),
        }
    }

    #[test]
    fn acknowledged_writes_missing_at_the_end_are_lost() {
        let h = vec![
            op(1, 0.0, Outcome::Ok),
            op(2, 10.0, Outcome::Ok),
            op(3, 20.0, Outcome::Ok),
            op(4, 30.0, Outcome::Ok),
        ];
        let present: HashSet<u64> = [1, 4].into();
        let r = check(&h, &present);
        assert_eq!(r.lost, vec![2, 3]);
        assert_eq!(r.acknowledged, 4);
        assert_eq!(
            r.loss_windows,
            vec![Window {
                start_ms: 10.0,
                end_ms: 21.0,
                ongoing: false,
            }]
        );
    }

    #[test]
    fn unknown_writes_are_sorted_by_whether_they_landed() {
        let h = vec![
            op(1, 0.0, Outcome::Unknown),
            op(2, 1.0, Outcome::Unknown),
            op(3, 2.0, Outcome::Ok),
        ];
        let r = check(&h, &[1, 3].into());
        assert_eq!(r.unknown_landed, vec![1]);
        assert_eq!(r.unknown_missing, vec![2]);
        assert!(r.lost.is_empty());
        assert_eq!(
            r.unavailable,
            vec![Window {
                start_ms: 0.0,
                end_ms: 3.0,
                ongoing: false,
            }]
        );
    }

    #[test]
    fn duplicated_ids_and_refused_writes_that_landed_are_reported() {
        let h = vec![
            op(1, 0.0, Outcome::Ok),
            op(1, 1.0, Outcome::Ok),
            op(2, 2.0, err("READONLY")),
            op(3, 3.0, err("NOREPLICAS")),
        ];
        let r = check(&h, &[1, 2].into());
        assert_eq!(r.duplicated, vec![1]);
        assert_eq!(r.refused_but_present, vec![2]);
        assert_eq!(r.errors.get("READONLY"), Some(&1));
        assert_eq!(r.errors.get("NOREPLICAS"), Some(&1));
        // an outage still open at the end of the history ends with it and
        // says so: it is not a recovery
        assert_eq!(
            r.unavailable,
            vec![Window {
                start_ms: 2.0,
                end_ms: 4.0,
                ongoing: true,
            }]
        );
    }

    #[test]
    fn a_loss_window_ends_at_the_last_lost_write_even_if_refusals_follow() {
        let h = vec![
            op(1, 0.0, Outcome::Ok),
            op(2, 10.0, Outcome::Ok),
            op(3, 20.0, err("NOREPLICAS")),
            op(4, 30.0, err("READONLY")),
        ];
        let r = check(&h, &[].into());
        assert_eq!(
            r.loss_windows,
            vec![Window {
                start_ms: 0.0,
                end_ms: 11.0,
                ongoing: false,
            }]
        );
    }

    #[test]
    fn a_value_above_one_is_a_write_applied_twice() {
        let h = vec![
            op(1, 0.0, Outcome::Ok),
            op(2, 10.0, Outcome::Unknown),
            op(3, 20.0, Outcome::Ok),
        ];
        // 2 was sent twice by a retry and landed twice; 3 is lost
        let values: BTreeMap<u64, i64> = [(1, 1), (2, 2)].into();
        let r = check_counts(&h, &values);
        assert_eq!(r.applied_twice, vec![2]);
        assert_eq!(r.unknown_landed, vec![2]);
        assert_eq!(r.lost, vec![3]);
        assert_eq!(r.duplicates(), vec![2]);
        // presence alone hides it
        assert!(check(&h, &[1, 2].into()).applied_twice.is_empty());
    }

    #[test]
    fn lost_writes_acknowledged_after_the_switch_went_to_a_demoted_master() {
        let h: Vec<Op> = (1..=6)
            .map(|i| op(i, i as f64 * 10.0, Outcome::Ok))
            .collect();
        // 2..=5 lost; the switch came at 35: 4 and 5 were acknowledged after it
        let lost = [2, 3, 4, 5];
        assert_eq!(to_demoted_master(&h, &lost, Some(35.0)), 2);
        assert_eq!(to_demoted_master(&h, &lost, None), 0);
        assert_eq!(to_demoted_master(&h, &[], Some(0.0)), 0);
    }

    #[test]
    fn a_clean_history_has_nothing_to_report() {
        let h: Vec<Op> = (0..10).map(|i| op(i, i as f64, Outcome::Ok)).collect();
        let r = check(&h, &(0..10).collect());
        assert!(r.lost.is_empty() && r.unavailable.is_empty() && r.duplicated.is_empty());
        assert_eq!(r.longest_unavailable_ms(), 0.0);
    }
}
