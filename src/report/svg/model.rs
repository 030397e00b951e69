//! What the picture shows, derived from a run: fault windows, marks for key
//! events, lanes of operations, windows with the VIP on several nodes.

use super::{ACTION, LOST, OBSERVATION, OK, REFUSED, SENTINEL, UNKNOWN};
use crate::model::verb::{Role, Verb};
use crate::observe::timeline::{Event, Kind};
use crate::scenario::run::RunResult;
use crate::workload::{Op, Outcome};
use std::collections::BTreeMap;

/// Sentinel events worth a mark (on the master where that matters).
fn key_sentinel_event(e: &Event) -> bool {
    match e.name.as_str() {
        "+sdown" | "-sdown" => e.detail.starts_with("master "),
        "+odown" | "+elected-leader" | "+promoted-slave" | "+switch-master"
        | "+convert-to-slave" | "+tilt" | "-tilt" => true,
        _ => false,
    }
}

/// A fault window: from a fault action to the action that undoes it (or the
/// end of the picture).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    pub start_ms: f64,
    pub end_ms: f64,
    pub label: String,
}

/// The nodes an action names: its detail's first word, comma-separated.
fn action_nodes(detail: &str) -> Vec<&str> {
    detail
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches(':')
        .split(',')
        .filter(|s| !s.is_empty())
        .collect()
}

/// A duration in an action's detail: `for 1.500 s` or `for 500 ms`.
fn action_duration_ms(detail: &str) -> Option<f64> {
    let rest = detail.split(" for ").nth(1)?;
    let mut it = rest.split_whitespace();
    let v: f64 = it.next()?.parse().ok()?;
    match it.next()? {
        "s" => Some(v * 1000.0),
        "ms" => Some(v),
        _ => None,
    }
}

/// Pairs fault actions with the actions that end them, by the verb table:
/// a verb's window runs until one of its `ended_by` verbs acts on one of its
/// nodes (`heal` ends every partition), lasts the duration it was given
/// (`timed`), or runs to the end of the picture. A verb that ends by itself
/// (a crash the restart policy answers, a restart) has no window.
pub fn fault_windows(events: &[Event], end_ms: f64) -> Vec<FaultWindow> {
    let actions: Vec<(&Event, Verb)> = events
        .iter()
        .filter(|e| e.kind == Kind::Action)
        .filter_map(|e| Verb::from_name(&e.name).map(|v| (e, v)))
        .collect();
    let mut out = Vec::new();
    for (i, (a, verb)) in actions.iter().enumerate() {
        let info = verb.info();
        if info.role != Role::Fault {
            continue;
        }
        let label = format!("{} {}", a.name, a.detail);
        if info.timed {
            if let Some(d) = action_duration_ms(&a.detail) {
                out.push(FaultWindow {
                    start_ms: a.t_ms,
                    end_ms: (a.t_ms + d).min(end_ms),
                    label,
                });
            }
            continue;
        }
        if info.ended_by.is_empty() {
            continue;
        }
        let nodes = action_nodes(&a.detail);
        let closer = actions[i + 1..].iter().find(|(c, cv)| {
            info.ended_by.contains(cv)
                && (c.name == Verb::Heal.name()
                    || action_nodes(&c.detail).iter().any(|n| nodes.contains(n)))
        });
        out.push(FaultWindow {
            start_ms: a.t_ms,
            end_ms: closer.map_or(end_ms, |(c, _)| c.t_ms),
            label,
        });
    }
    out
}

/// A mark on the time axis: one or more events of the same name close together.
pub(super) struct Mark {
    pub(super) times: Vec<f64>,
    pub(super) label: String,
    pub(super) color: &'static str,
}

/// The node name for an IP in an event's detail, or the IP.
fn node_of(run: &RunResult, ip: &str) -> String {
    ip.parse()
        .ok()
        .and_then(|ip| run.topology.node_by_ip(ip))
        .map_or_else(|| ip.to_string(), |n| n.name.clone())
}

fn mark_label(run: &RunResult, e: &Event) -> String {
    let f: Vec<&str> = e.detail.split_whitespace().collect();
    match (e.kind, e.name.as_str()) {
        // +switch-master <name> <old-ip> <old-port> <new-ip> <new-port>
        (Kind::Sentinel, "+switch-master") if f.len() >= 4 => {
            format!("+switch-master → {}", node_of(run, f[3]))
        }
        // <type> <name> <ip> <port> @ ...
        (Kind::Sentinel, "+promoted-slave" | "+convert-to-slave") if f.len() >= 3 => {
            format!("{} {}", e.name, node_of(run, f[2]))
        }
        (Kind::Sentinel, _) => e.name.clone(),
        (_, "vip-duplicate" | "vip-single") => format!("{} {}", e.name, e.detail),
        // a heal ends every cut; its detail lists them all
        (Kind::Action, "heal") => e.name.clone(),
        (_, _) => {
            // the gist: up to a parenthesis or a list of cuts, kept short
            let gist = e.detail.split([';', '(']).next().unwrap_or("").trim();
            let short = if gist.chars().count() > 24 {
                gist.chars().take(23).collect::<String>() + "…"
            } else {
                gist.to_string()
            };
            format!("{} {short}", e.name).trim_end().to_string()
        }
    }
}

/// Key events grouped: the same label within 2 s is one mark (e.g. `+sdown`
/// from each sentinel).
pub(super) fn marks(run: &RunResult, from: f64, to: f64) -> Vec<Mark> {
    let mut out: Vec<Mark> = Vec::new();
    for e in run
        .timeline
        .iter()
        .filter(|e| e.t_ms >= from && e.t_ms <= to)
    {
        let color = match e.kind {
            Kind::Sentinel if key_sentinel_event(e) => SENTINEL,
            Kind::Action if e.name != Verb::Sleep.name() => ACTION,
            Kind::Observation if e.name != "healthy" => OBSERVATION,
            _ => continue,
        };
        let label = mark_label(run, e);
        if let Some(m) = out
            .iter_mut()
            .rev()
            .find(|m| m.label == label && e.t_ms - m.times[0] <= 2000.0)
        {
            m.times.push(e.t_ms);
            continue;
        }
        out.push(Mark {
            times: vec![e.t_ms],
            label,
            color,
        });
    }
    out
}

/// One lane of operations.
pub(super) struct Lane {
    pub(super) label: String,
    pub(super) color: &'static str,
    /// (start, end) in timeline ms.
    pub(super) spans: Vec<(f64, f64)>,
}

/// The operation lanes: the built-in workload's, then the external
/// client's (labelled with its name).
pub(super) fn lanes(run: &RunResult) -> Vec<Lane> {
    let mut out = if run.history.is_empty() && run.external.is_some() {
        Vec::new()
    } else {
        client_lanes("", &run.history, &run.check.lost)
    };
    if let Some(x) = &run.external {
        out.extend(client_lanes(
            &format!("{}: ", x.run.name),
            &x.run.history,
            &x.check.lost,
        ));
    }
    out
}

fn client_lanes(prefix: &str, history: &[Op], lost: &[u64]) -> Vec<Lane> {
    if history.is_empty() && !prefix.is_empty() {
        return Vec::new();
    }
    let lost: std::collections::HashSet<u64> = lost.iter().copied().collect();
    let mut ok = Vec::new();
    let mut lost_spans = Vec::new();
    let mut unknown = Vec::new();
    let mut refused: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for op in history {
        let span = (op.invoke_ms, op.complete_ms.max(op.invoke_ms));
        match &op.outcome {
            Outcome::Ok if lost.contains(&op.id) => lost_spans.push(span),
            Outcome::Ok => ok.push(span),
            Outcome::Unknown => unknown.push(span),
            Outcome::Error { kind, .. } => refused.entry(kind.clone()).or_default().push(span),
        }
    }
    let mut out = vec![Lane {
        label: format!("{prefix}ok ({})", ok.len()),
        color: OK,
        spans: ok,
    }];
    if !lost_spans.is_empty() {
        out.push(Lane {
            label: format!("{prefix}acknowledged, lost ({})", lost_spans.len()),
            color: LOST,
            spans: lost_spans,
        });
    }
    if !unknown.is_empty() {
        out.push(Lane {
            label: format!("{prefix}unknown/timeout ({})", unknown.len()),
            color: UNKNOWN,
            spans: unknown,
        });
    }
    for (kind, spans) in refused {
        out.push(Lane {
            label: format!("{prefix}refused {kind} ({})", spans.len()),
            color: REFUSED,
            spans,
        });
    }
    out
}

/// Windows in which the VIP was on more than one node (from the sampler's
/// `vip-duplicate` / `vip-single` observations).
pub(super) fn duplicate_vip_windows(run: &RunResult, end_ms: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut open = None;
    for e in run.timeline.iter().filter(|e| e.kind == Kind::Observation) {
        match (e.name.as_str(), open) {
            ("vip-duplicate", None) => open = Some(e.t_ms),
            ("vip-single", Some(s)) => {
                out.push((s, e.t_ms));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        out.push((s, end_ms));
    }
    out
}

pub(super) fn label_text(m: &Mark) -> String {
    if m.times.len() > 1 {
        format!("{} ×{}", m.label, m.times.len())
    } else {
        m.label.clone()
    }
}
