//! The dotted measures of `[expect]` (`events."+sdown".node2`,
//! `refused_writes.NOREPLICAS`, `info.node3.dbsize`, `sentinel.node1.num-other-sentinels`,
//! `sentinel_restarts.node2`, `sentinel_running.node2`): which keys exist,
//! what their parts may be, and where each key is in the file (so an error
//! names its line and column). Pure.

use super::spans::key_spans;
use super::Ctx;
use crate::error::Result;
use crate::model::topology::Topology;
use crate::scenario::{Bound, Cmp, Expectation, Holder, Measure};
use toml::Spanned;

/// Every channel Sentinel publishes events on (Redis 7.0-8.0 and Valkey
/// 8.1-9.1 use the same names, checked in their `src/sentinel.c`).
pub const SENTINEL_EVENTS: &[&str] = &[
    "+config-update-from",
    "+convert-to-slave",
    "+elected-leader",
    "+failover-end",
    "+failover-end-for-timeout",
    "+failover-state-reconf-slaves",
    "+failover-state-select-slave",
    "+failover-state-send-slaveof-noone",
    "+failover-state-wait-promotion",
    "+fix-slave-config",
    "+monitor",
    "+new-epoch",
    "+odown",
    "+promoted-slave",
    "+reboot",
    "+reset-master",
    "+role-change",
    "+script-child",
    "+sdown",
    "+selected-slave",
    "+sentinel",
    "+sentinel-address-switch",
    "+sentinel-address-update",
    "+sentinel-invalid-addr",
    "+set",
    "+slave",
    "+slave-reconf-done",
    "+slave-reconf-inprog",
    "+slave-reconf-sent",
    "+slave-reconf-sent-be",
    "+switch-master",
    "+tilt",
    "+try-failover",
    "+vote-for-leader",
    "-cmd-link-reconnection",
    "-dup-sentinel",
    "-failover-abort-no-good-slave",
    "-failover-abort-not-elected",
    "-failover-abort-slave-timeout",
    "-monitor",
    "-odown",
    "-pubsub-link-reconnection",
    "-role-change",
    "-script-child",
    "-script-error",
    "-script-timeout",
    "-sdown",
    "-slave-reconf-sent-timeout",
    "-tilt",
];

/// The INFO fields `info.<node>.<field>` may name (read at the end of the
/// run; `dbsize` is the answer to DBSIZE).
pub const INFO_FIELDS: &[&str] = &[
    "dbsize",
    "role",
    "run_id",
    "uptime_in_seconds",
    "loading",
    "master_host",
    "master_link_status",
    "master_link_down_since_seconds",
    "master_sync_in_progress",
    "master_failover_state",
    "master_replid",
    "master_repl_offset",
    "slave_repl_offset",
    "slave_priority",
    "connected_slaves",
    "sync_full",
    "sync_partial_ok",
    "sync_partial_err",
    "rdb_changes_since_last_save",
    "rdb_last_bgsave_status",
    "total_connections_received",
    "rejected_connections",
    "total_error_replies",
    "acl_access_denied_auth",
    "acl_access_denied_cmd",
    "acl_access_denied_channel",
];

/// The fields `sentinel.<node>.<field>` may name: SENTINEL MASTER's, the
/// master the sentinel names (`master`, a node name) and INFO sentinel's.
pub const SENTINEL_FIELDS: &[&str] = &[
    "master",
    "flags",
    "num-slaves",
    "num-other-sentinels",
    "quorum",
    "config-epoch",
    "role-reported",
    "failover-timeout",
    "down-after-milliseconds",
    "last-ok-ping-reply",
    "last-ping-reply",
    "info-refresh",
    "link-pending-commands",
    "sentinel_tilt",
    "sentinel_tilt_since_seconds",
    "sentinel_total_tilt",
    "sentinel_running_scripts",
];

/// A problem with an expectation: what is wrong and a hint.
pub(super) type Problem = (String, Option<String>);

/// Parses the dotted measure `path` (`["events", "+sdown", "node2"]`): the
/// measure and its checked parts. The bound is the caller's.
pub(super) fn dotted(path: &[String], t: &Topology) -> Result<(Measure, Vec<String>), Problem> {
    let (head, rest) = path.split_first().expect("a key has a first part");
    let node = |n: &str, also_master: bool| -> Result<String, Problem> {
        if t.node(n).is_some() || (also_master && n == "master") {
            return Ok(n.to_string());
        }
        let known: Vec<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
        let extra = if also_master {
            " or master (the final master)"
        } else {
            ""
        };
        Err((
            format!("no node named `{n}`"),
            Some(format!("the nodes are {}{extra}", known.join(", "))),
        ))
    };
    let shape = |m: Measure| -> Problem {
        (
            format!("`{}` is not of the form {}", path.join("."), m.form()),
            None,
        )
    };
    let from = |list: &[&str], v: &str, what: &str| -> Result<String, Problem> {
        if list.contains(&v) {
            Ok(v.to_string())
        } else {
            Err((
                format!("`{v}` is not one of the {what}s the testbed reads"),
                Some(format!("one of: {}", list.join(", "))),
            ))
        }
    };
    let m = match head.as_str() {
        "events" => Measure::Events,
        "refused_writes" => Measure::RefusedWritesOf,
        "info" => Measure::Info,
        "sentinel" => Measure::SentinelField,
        "sentinel_restarts" => Measure::SentinelRestarts,
        "sentinel_running" => Measure::SentinelRunning,
        "script_calls" => Measure::ScriptCalls,
        _ => return Err(not_known(path)),
    };
    let args = match (m, rest) {
        (Measure::Events, [ch]) => vec![from(SENTINEL_EVENTS, ch, "sentinel event")?],
        (Measure::Events, [ch, n]) => vec![
            from(SENTINEL_EVENTS, ch, "sentinel event")?,
            node(n, false)?,
        ],
        (Measure::RefusedWritesOf, [kind]) => {
            let ok = kind.starts_with(|c: char| c.is_ascii_uppercase())
                && kind
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err((
                    format!("`{kind}` is not an error kind"),
                    Some("a kind is the first word of the error, in capitals: NOREPLICAS, READONLY, LOADING, MISCONF, NOAUTH, CONNREFUSED, CONNECT-TIMEOUT, ...".into()),
                ));
            }
            vec![kind.clone()]
        }
        (Measure::Info, [n, f]) => vec![node(n, true)?, from(INFO_FIELDS, f, "INFO field")?],
        (Measure::SentinelField, [n, f]) => {
            vec![node(n, false)?, from(SENTINEL_FIELDS, f, "sentinel field")?]
        }
        (Measure::SentinelRestarts | Measure::SentinelRunning, [n]) => vec![node(n, false)?],
        (Measure::ScriptCalls, [n]) => vec![node(n, false)?],
        (Measure::ScriptCalls, [n, role]) => {
            vec![
                node(n, false)?,
                from(&["leader", "observer"], role, "script role")?,
            ]
        }
        (m, _) => return Err(shape(m)),
    };
    Ok((m, args))
}

/// The error for a key that names no measure.
pub(super) fn not_known(path: &[String]) -> Problem {
    let all: Vec<&str> = Measure::ALL.iter().map(|m| m.form()).collect();
    (
        format!("`{}` is not a known measure", path.join(".")),
        Some(all.join(", ")),
    )
}

/// Whether `e` reads a text field (compared for equality), not a number.
pub(super) fn is_text_field(e: &Expectation) -> bool {
    match e.measure {
        Measure::Info => e.args.get(1).is_some_and(|f| {
            matches!(
                f.as_str(),
                "role"
                    | "run_id"
                    | "master_host"
                    | "master_link_status"
                    | "master_failover_state"
                    | "master_replid"
                    | "rdb_last_bgsave_status"
            )
        }),
        Measure::SentinelField => e
            .args
            .get(1)
            .is_some_and(|f| matches!(f.as_str(), "master" | "flags" | "role-reported")),
        _ => false,
    }
}

pub(super) fn expectations(
    cx: &Ctx,
    e: &Spanned<toml::Table>,
    t: &Topology,
    has_external: bool,
) -> Result<Vec<Expectation>> {
    let spans = key_spans(cx.text);
    let at = |path: &[String]| spans.get(path).cloned().unwrap_or(e.span());
    // (path, value, external): dotted keys are followed to their leaves
    let mut entries: Vec<(Vec<String>, &toml::Value, bool)> = Vec::new();
    for (k, v) in e.get_ref() {
        match (k.as_str(), v) {
            ("external", toml::Value::Table(table)) => {
                if !has_external {
                    return Err(cx.err(
                        at(&["external".into()]),
                        "key `expect.external`: the scenario has no `[external_client]`",
                        Some("add an [external_client] table, or remove these expectations"),
                    ));
                }
                for (k, v) in table {
                    leaves(vec![k.clone()], v, true, &mut entries);
                }
            }
            _ => leaves(vec![k.clone()], v, false, &mut entries),
        }
    }
    let mut out = Vec::new();
    for (path, v, ext) in entries {
        let full = if ext {
            format!("external.{}", path.join("."))
        } else {
            path.join(".")
        };
        let span_path: Vec<String> = if ext {
            std::iter::once("external".to_string())
                .chain(path.iter().cloned())
                .collect()
        } else {
            path.clone()
        };
        let mut x = expectation(&path, v, t).map_err(|(m, hint)| {
            cx.err(
                at(&span_path),
                format!("key `expect.{full}`: {m}"),
                hint.as_deref(),
            )
        })?;
        if ext {
            if !x.measure.is_per_client() {
                return Err(cx.err(
                    at(&span_path),
                    format!("key `expect.{full}`: `{}` is not measured per client", path.join(".")),
                    Some("per client: lost_acknowledged_writes, client_recovered_within_ms, refused_writes, refused_writes.<KIND>, loss_window_ms"),
                ));
            }
            x.external = true;
            x.source = format!("external.{}", x.source);
        }
        out.push(x);
    }
    Ok(out)
}

/// Follows a key of `[expect]` to its leaves: `events = { "+sdown" = 1 }`
/// (written `events."+sdown" = 1`) is the leaf `["events", "+sdown"]`.
fn leaves<'a>(
    path: Vec<String>,
    v: &'a toml::Value,
    ext: bool,
    out: &mut Vec<(Vec<String>, &'a toml::Value, bool)>,
) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let mut p = path.clone();
                p.push(k.clone());
                leaves(p, v, ext, out);
            }
        }
        _ => out.push((path, v, ext)),
    }
}

fn expectation(
    path: &[String],
    v: &toml::Value,
    t: &Topology,
) -> std::result::Result<Expectation, Problem> {
    let (measure, args) = match path {
        [key] => (
            Measure::from_key(key).ok_or_else(|| not_known(path))?,
            Vec::new(),
        ),
        _ => dotted(path, t)?,
    };
    let key = path
        .iter()
        .map(|p| {
            if p.contains(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-') {
                format!("\"{p}\"")
            } else {
                p.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(".");
    let source = format!("{key} = {v}");
    let mut x = Expectation {
        measure,
        op: Cmp::Eq,
        bound: Bound::Number(0.0),
        source,
        external: false,
        args,
    };
    let (op, bound) = comparison(&x, v, t)?;
    x.op = op;
    x.bound = bound;
    Ok(x)
}

/// The comparison and bound of `v` for the measure of `x`.
fn comparison(
    x: &Expectation,
    v: &toml::Value,
    t: &Topology,
) -> std::result::Result<(Cmp, Bound), Problem> {
    let measure = x.measure;
    let holds_a_node = matches!(
        measure,
        Measure::VipHolder | Measure::PromotedNode | Measure::FinalMaster
    );
    Ok(match v {
        toml::Value::Boolean(b) if measure == Measure::SentinelRunning => {
            (Cmp::Eq, Bound::Number(f64::from(u8::from(*b))))
        }
        toml::Value::String(s) if is_text_field(x) => match s.strip_prefix('~') {
            Some(part) => (Cmp::Eq, Bound::Contains(part.trim().to_string())),
            None => (Cmp::Eq, Bound::Text(s.clone())),
        },
        _ if is_text_field(x) => {
            return Err((
                format!("{v} is not a text: this field is compared for equality"),
                Some("e.g. info.node1.role = \"master\"".into()),
            ))
        }
        toml::Value::String(s) if holds_a_node => {
            let h = match s.as_str() {
                "new-master" => Holder::NewMaster,
                "old-master" => Holder::OldMaster,
                "none" => Holder::None,
                n if t.node(n).is_some() => Holder::Node(n.to_string()),
                n => {
                    return Err((
                        format!("`{n}` is neither a role nor a node"),
                        Some("use \"new-master\", \"old-master\", \"none\" or a node name".into()),
                    ))
                }
            };
            (Cmp::Eq, Bound::Holder(h))
        }
        _ if holds_a_node => {
            return Err((
                format!("{v} is not a holder"),
                Some("use \"new-master\", \"old-master\", \"none\" or a node name".into()),
            ))
        }
        toml::Value::Integer(i) => {
            let op = if measure.is_upper_bound() {
                Cmp::Le
            } else {
                Cmp::Eq
            };
            (op, Bound::Number(*i as f64))
        }
        toml::Value::String(s) => {
            let s = s.trim();
            let (op, rest) = [
                (">=", Cmp::Ge),
                ("<=", Cmp::Le),
                (">", Cmp::Gt),
                ("<", Cmp::Lt),
                ("=", Cmp::Eq),
            ]
            .iter()
            .find_map(|(p, c)| s.strip_prefix(p).map(|r| (*c, r.trim())))
            .ok_or_else(|| {
                (
                    format!("`{s}` is not a comparison like \"> 0\" or \"<= 5000\""),
                    None,
                )
            })?;
            let n: f64 = rest
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| (format!("`{rest}` is not a number"), None))?;
            (op, Bound::Number(n))
        }
        other => {
            return Err((
                format!("{other} is neither a number nor a comparison string"),
                None,
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_where_they_are_written() {
        let text = "[[step]]\naction = \"heal\"\n[expect]\nfailovers = 1\nevents.\"+reboot\" = 1\n\
                    info.node3.dbsize = 0\n[expect.external]\nrefused_writes.LOADING = \"> 0\"\n";
        let spans = key_spans(text);
        let at = |p: &[&str]| {
            let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            crate::error::line_col(text, spans[&p].start)
        };
        assert_eq!(at(&["failovers"]).0, 4);
        assert_eq!(at(&["events", "+reboot"]), (5, 8));
        assert_eq!(at(&["info", "node3", "dbsize"]), (6, 12));
        assert_eq!(at(&["external", "refused_writes", "LOADING"]).0, 8);
    }

    #[test]
    fn dotted_measures_check_their_parts() {
        let t = Topology::default_topology();
        let p = |s: &str| -> Vec<String> { s.split('.').map(str::to_string).collect() };
        assert_eq!(
            dotted(&p("events.+sdown.node2"), &t).unwrap(),
            (Measure::Events, vec!["+sdown".into(), "node2".into()])
        );
        assert!(dotted(&p("events.+sdwon"), &t)
            .unwrap_err()
            .0
            .contains("not one of the sentinel events"));
        assert!(dotted(&p("info.node9.role"), &t)
            .unwrap_err()
            .0
            .contains("no node named `node9`"));
        assert_eq!(dotted(&p("info.master.dbsize"), &t).unwrap().1[0], "master");
        assert!(dotted(&p("info.node1.nonsense"), &t)
            .unwrap_err()
            .0
            .contains("not one of the INFO fields"));
        assert!(dotted(&p("refused_writes.noreplicas"), &t).is_err());
        assert!(dotted(&p("sentinel_restarts"), &t)
            .unwrap_err()
            .0
            .contains("sentinel_restarts.<node>"));
        assert!(dotted(&p("sentinel.master.flags"), &t).is_err());
        assert!(dotted(&p("frobs.node1"), &t)
            .unwrap_err()
            .0
            .contains("not a known measure"));
    }
}
