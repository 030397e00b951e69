//! Verdicts of the measures added for the reproduction library: the node
//! promoted and the final master, and the dotted measures (sentinel event
//! counts, refused writes of one kind, INFO and sentinel fields at the end,
//! sentinel restarts). Pure: everything comes from [`Measurements`].

use super::result::{compare, Measurements, Verdict};
use super::{Bound, Expectation, Holder, Measure};

/// `promoted_node` and `final_master`: a node, `old-master`, `new-master`
/// (a node that is not the old master) or `none`.
pub(super) fn node(e: &Expectation, m: &Measurements, old: &str) -> Verdict {
    let Bound::Holder(want) = &e.bound else {
        unreachable!("the parser gives node measures a holder bound");
    };
    let got = match e.measure {
        Measure::PromotedNode => m.promoted_node.as_deref(),
        _ => m.final_master.as_deref(),
    };
    let pass = match (want, got) {
        (Holder::Node(w), Some(g)) => w == g,
        (Holder::OldMaster, Some(g)) => g == old,
        (Holder::NewMaster, Some(g)) => g != old,
        (Holder::None, None) => true,
        _ => false,
    };
    Verdict {
        expectation: e.source.clone(),
        measured: got.unwrap_or("none").to_string(),
        pass,
    }
}

/// The dotted measures (`events.…`, `refused_writes.<KIND>`, `info.…`,
/// `sentinel.…`, `sentinel_restarts.…`, `sentinel_running.…`).
pub(super) fn dotted(e: &Expectation, m: &Measurements) -> Verdict {
    let arg = |i: usize| e.args.get(i).map_or("", String::as_str);
    let unmeasured = |why: String| Verdict {
        expectation: e.source.clone(),
        measured: format!("could not measure: {why}"),
        pass: false,
    };
    // `master` in info.master.<field> is the final master
    let node_name = |n: &str| -> Option<String> {
        if n == "master" {
            m.final_master.clone()
        } else {
            Some(n.to_string())
        }
    };
    match e.measure {
        Measure::Events => {
            let per_node = m.events.get(arg(0));
            let n: usize = match e.args.get(1) {
                Some(node) => per_node.and_then(|p| p.get(node)).copied().unwrap_or(0),
                None => per_node.map_or(0, |p| p.values().sum()),
            };
            compare(e, Some(n as f64))
        }
        Measure::RefusedWritesOf => {
            let n = m.refused_by_kind.get(arg(0)).copied().unwrap_or(0);
            compare(e, Some(n as f64))
        }
        Measure::Info | Measure::SentinelField => {
            let Some(node) = node_name(arg(0)) else {
                return unmeasured("no final master was agreed on".into());
            };
            let Some(end) = m.end.get(&node) else {
                return unmeasured(format!("{node} was not read at the end"));
            };
            let (fields, part) = if e.measure == Measure::Info {
                (&end.info, "info")
            } else {
                (&end.sentinel, "sentinel")
            };
            let field = arg(1);
            match fields.get(field) {
                Some(v) => value(e, v),
                None => match end.problems.get(part).or(end.problems.get(field)) {
                    Some(why) => unmeasured(format!("{node}: {why}")),
                    None => unmeasured(format!("{node} reports no `{field}`")),
                },
            }
        }
        Measure::SentinelRestarts | Measure::SentinelRunning => {
            let node = arg(0);
            let end = m.end.get(node);
            let got = end.and_then(|x| {
                if e.measure == Measure::SentinelRestarts {
                    x.sentinel_restarts.map(|r| r as f64)
                } else {
                    x.sentinel_running.map(|r| f64::from(u8::from(r)))
                }
            });
            match got {
                Some(v) => compare(e, Some(v)),
                None => {
                    let why = end
                        .and_then(|x| x.problems.get("container").cloned())
                        .unwrap_or_else(|| format!("{node}'s sentinel container was not read"));
                    unmeasured(why)
                }
            }
        }
        Measure::ScriptCalls => {
            if let Some(why) = m.unmeasured.get("script_calls") {
                return unmeasured(why.clone());
            }
            let per_role = m.script_calls.get(arg(0));
            let n: usize = match e.args.get(1) {
                Some(role) => per_role.and_then(|r| r.get(role)).copied().unwrap_or(0),
                None => per_role.map_or(0, |r| r.values().sum()),
            };
            compare(e, Some(n as f64))
        }
        _ => unreachable!("not a dotted measure: {:?}", e.measure),
    }
}

/// A field's value against the bound: text for equality, else a number.
fn value(e: &Expectation, v: &str) -> Verdict {
    match &e.bound {
        Bound::Text(want) => Verdict {
            expectation: e.source.clone(),
            measured: v.to_string(),
            pass: v == want,
        },
        Bound::Contains(part) => Verdict {
            expectation: e.source.clone(),
            measured: v.to_string(),
            pass: v.contains(part.as_str()),
        },
        _ => match v.trim().parse::<f64>() {
            Ok(n) => compare(e, Some(n)),
            Err(_) => Verdict {
                expectation: e.source.clone(),
                measured: format!("`{v}` (not a number)"),
                pass: false,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::endstate::NodeEnd;
    use crate::scenario::Cmp;

    fn x(measure: Measure, args: &[&str], op: Cmp, bound: Bound) -> Expectation {
        Expectation {
            measure,
            op,
            bound,
            source: "…".into(),
            external: false,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn events_count_all_sentinels_or_one() {
        let mut m = Measurements::default();
        let per: [(&str, usize); 2] = [("node2", 2), ("node3", 1)];
        m.events.insert(
            "+reboot".into(),
            per.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        );
        let all = x(Measure::Events, &["+reboot"], Cmp::Eq, Bound::Number(3.0));
        assert!(dotted(&all, &m).pass);
        let one = x(
            Measure::Events,
            &["+reboot", "node3"],
            Cmp::Ge,
            Bound::Number(2.0),
        );
        let v = dotted(&one, &m);
        assert!(!v.pass && v.measured == "1", "{v:?}");
        // an event that never came is 0, which can fail `>= 1`
        let none = x(Measure::Events, &["+tilt"], Cmp::Ge, Bound::Number(1.0));
        assert_eq!(dotted(&none, &m).measured, "0");
    }

    #[test]
    fn end_fields_fail_with_the_reason_they_could_not_be_read() {
        let mut m = Measurements {
            final_master: Some("node2".into()),
            ..Default::default()
        };
        let mut n2 = NodeEnd::default();
        n2.info.insert("dbsize".into(), "0".into());
        n2.info.insert("role".into(), "master".into());
        m.end.insert("node2".into(), n2);
        let mut n1 = NodeEnd::default();
        n1.problems
            .insert("info".into(), "connection refused".into());
        m.end.insert("node1".into(), n1);
        let keys = x(
            Measure::Info,
            &["master", "dbsize"],
            Cmp::Eq,
            Bound::Number(0.0),
        );
        assert!(dotted(&keys, &m).pass);
        let role = x(
            Measure::Info,
            &["node2", "role"],
            Cmp::Eq,
            Bound::Text("slave".into()),
        );
        assert!(!dotted(&role, &m).pass);
        let down = x(
            Measure::Info,
            &["node1", "dbsize"],
            Cmp::Eq,
            Bound::Number(0.0),
        );
        let v = dotted(&down, &m);
        assert!(
            !v.pass && v.measured.contains("node1: connection refused"),
            "{v:?}"
        );
        let restarts = x(
            Measure::SentinelRestarts,
            &["node2"],
            Cmp::Ge,
            Bound::Number(1.0),
        );
        assert!(dotted(&restarts, &m).measured.contains("could not measure"));
    }

    #[test]
    fn promoted_and_final_nodes() {
        let m = Measurements {
            promoted_node: Some("node3".into()),
            final_master: Some("node1".into()),
            ..Default::default()
        };
        let p = |h: Holder| x(Measure::PromotedNode, &[], Cmp::Eq, Bound::Holder(h));
        assert!(node(&p(Holder::Node("node3".into())), &m, "node1").pass);
        assert!(node(&p(Holder::NewMaster), &m, "node1").pass);
        assert!(!node(&p(Holder::None), &m, "node1").pass);
        let f = x(
            Measure::FinalMaster,
            &[],
            Cmp::Eq,
            Bound::Holder(Holder::OldMaster),
        );
        assert!(node(&f, &m, "node1").pass);
    }
}
