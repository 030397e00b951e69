use super::*;
use crate::observe::timeline::Event;
use crate::scenario::run::{Measurements, RunResult, Verdict};
use crate::workload::{Op, Outcome};
use std::collections::BTreeMap;

fn ev(t_ms: f64, kind: Kind, source: &str, name: &str, detail: &str) -> Event {
    Event {
        t_ms,
        kind,
        source: source.into(),
        name: name.into(),
        detail: detail.into(),
    }
}

/// A hand-made run: a workload of 60 writes, the master killed at 2 s,
/// a failover, writes refused and timed out in between, two lost.
pub(crate) fn sample_run(name: &str, pass: bool) -> RunResult {
    let topology = crate::Topology::default_topology();
    let ip = |i: usize| topology.nodes[i].ip.to_string();
    let mut history = Vec::new();
    for id in 0..60u64 {
        let t = 1000.0 + id as f64 * 100.0;
        let outcome = match id {
            12..=15 => Outcome::Unknown,
            16..=30 => Outcome::Error {
                kind: "CONNREFUSED".into(),
                message: "refused".into(),
            },
            31..=33 => Outcome::Error {
                kind: "READONLY".into(),
                message: "You can't write <here> & there".into(),
            },
            _ => Outcome::Ok,
        };
        let complete = if outcome == Outcome::Unknown {
            t + 500.0
        } else {
            t + 2.0
        };
        history.push(Op {
            id,
            process: "client".into(),
            invoke_ms: t,
            complete_ms: complete,
            outcome,
        });
    }
    let master = |s: &str| format!("master mymaster {} 6379{s}", ip(0));
    let timeline = vec![
        ev(
            900.0,
            Kind::Observation,
            "testbed",
            "healthy",
            "up in 900 ms",
        ),
        ev(1000.0, Kind::Action, "testbed", "sleep", "1000 ms"),
        ev(2000.0, Kind::Action, "testbed", "kill", "node1"),
        ev(4000.0, Kind::Sentinel, "node2", "+sdown", &master("")),
        ev(4010.0, Kind::Sentinel, "node3", "+sdown", &master("")),
        ev(
            4060.0,
            Kind::Sentinel,
            "node3",
            "+odown",
            &master(" #quorum 2/2"),
        ),
        ev(4070.0, Kind::Sentinel, "node3", "+vote-for-leader", "abc 1"),
        ev(
            4130.0,
            Kind::Sentinel,
            "node3",
            "+elected-leader",
            &master(""),
        ),
        ev(
            5100.0,
            Kind::Sentinel,
            "node3",
            "+promoted-slave",
            &format!("slave {0}:6379 {0} 6379 @ mymaster {1} 6379", ip(2), ip(0)),
        ),
        ev(
            5170.0,
            Kind::Sentinel,
            "node3",
            "+switch-master",
            &format!("mymaster {} 6379 {} 6379", ip(0), ip(2)),
        ),
        ev(
            5200.0,
            Kind::Sentinel,
            "node2",
            "+switch-master",
            &format!("mymaster {} 6379 {} 6379", ip(0), ip(2)),
        ),
        ev(
            5300.0,
            Kind::Observation,
            "testbed",
            "vip-duplicate",
            "node1,node3",
        ),
        ev(5500.0, Kind::Observation, "testbed", "vip-single", "node3"),
        ev(6000.0, Kind::Action, "testbed", "start", "node1"),
        ev(
            6500.0,
            Kind::Sentinel,
            "node2",
            "+convert-to-slave",
            &format!("slave {0}:6379 {0} 6379 @ mymaster {1} 6379", ip(0), ip(2)),
        ),
    ];
    let verdicts = vec![
        Verdict {
            expectation: "failovers = 1".into(),
            measured: "1".into(),
            pass: true,
        },
        Verdict {
            expectation: "lost_acknowledged_writes = 0".into(),
            measured: "2".into(),
            pass,
        },
    ];
    let check = crate::workload::checker::Report {
        operations: 60,
        acknowledged: 38,
        lost: vec![10, 11],
        errors: [("CONNREFUSED".to_string(), 15), ("READONLY".to_string(), 3)].into(),
        ..Default::default()
    };
    RunResult {
        seed: None,
        fault_offset_ms: None,
        scenario: name.into(),
        description: "kill the master: a replica is promoted".into(),
        sources: vec!["article:seed-vip".into()],
        scenario_text: "description = \"kill <the> master & see\"\n[[step]]\naction = \"kill\"\ntarget = \"master\"\n".into(),
        testbed: "rp-kill-master".into(),
        image: None,
        server_version: Some("8.0.2".into()),
        measurements: Measurements {
            fault_ms: Some(2000.0),
            promoted_ms: Some(3170.0),
            failovers: 1,
            old_master: "node1".into(),
            final_master: Some("node3".into()),
            vip_holders_max: 2,
            duplicate_vip_ms: 200.0,
            final_vip_holders: vec!["node3".into()],
            old_master_demoted_ms: Some(500.0),
            client_recovered_ms: Some(1400.0),
            lost_acknowledged_writes: 2,
            refused_writes: 18,
            loss_window_ms: 100.0,
            unmeasured: Default::default(),
            ..Default::default()
        },
        verdicts,
        step_errors: vec![],
        check,
        history,
        clients: vec![],
        external: None,
        timeline,
        script_calls: vec![],
        snapshots: BTreeMap::new(),
        configs: BTreeMap::new(),
        logs: BTreeMap::new(),
        topology,
    }
}

/// A minimal well-formedness check: tags balance, attributes are quoted,
/// no raw `<` or `&` in text.
pub(crate) fn assert_well_formed(xml: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        check_text(&rest[..i]);
        let end = rest[i..].find('>').expect("an unclosed tag") + i;
        let tag = &rest[i + 1..end];
        assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else if !tag.ends_with('/') {
            let name = tag
                .split_whitespace()
                .next()
                .expect("a tag name")
                .to_string();
            stack.push(name);
        }
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        check_text(tag);
        rest = &rest[end + 1..];
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

fn check_text(t: &str) {
    for (i, _) in t.match_indices('&') {
        let ent = &t[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| ent.starts_with(e)),
            "raw `&` in {t:?}"
        );
    }
}

#[test]
fn the_picture_is_well_formed_and_escapes_text() {
    let svg = timeline_svg(&sample_run("kill <master> & \"see\"", false));
    assert_well_formed(&svg);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(
        svg.contains("kill &lt;master&gt; &amp; &quot;see&quot;"),
        "the title is escaped"
    );
    // lanes: ok, lost, unknown, one per refused kind, the duplicate VIP
    for lane in [
        "ok (36)",
        "acknowledged, lost (2)",
        "unknown/timeout (4)",
        "refused CONNREFUSED (15)",
        "refused READONLY (3)",
        "VIP on 2+ nodes",
    ] {
        assert!(svg.contains(lane), "lane {lane} missing");
    }
    // key events are labelled, sentinel noise is not
    for label in [
        "+odown",
        "+elected-leader",
        "+promoted-slave node3",
        "+switch-master → node3 ×2",
        "+sdown ×2",
        "kill node1",
        "vip-duplicate node1,node3",
    ] {
        assert!(
            svg.contains(&format!(">{}<", esc(label))),
            "label {label} missing"
        );
    }
    assert!(!svg.contains("+vote-for-leader"));
    assert!(
        svg.contains("<title>kill node1</title>"),
        "the fault window is shaded"
    );
}

#[test]
fn fault_windows_end_at_the_action_that_undoes_them() {
    let e = |t, name: &str, d: &str| ev(t, Kind::Action, "testbed", name, d);
    let events = vec![
        e(1.0, "kill", "node1"),
        e(2.0, "pause", "node2"),
        e(3.0, "start", "node3"),
        e(4.0, "start", "node1"),
        e(
            5.0,
            "isolate",
            "node3 from node1,node2 (the host still reaches it)",
        ),
        e(6.0, "client-pause", "node2 for 500 ms (ALL)"),
        e(7.0, "heal", "2 cuts"),
        e(8.0, "debug-sleep", "node1 for 1.500 s"),
        e(9.0, "sentinel-crash", "node2"),
        e(10.0, "resume", "node2"),
        e(11.0, "sentinel-kill", "node3"),
        e(12.0, "sentinel-resume", "node3 (already running: )"),
        e(13.0, "sleep", "1000 ms"),
    ];
    let w: Vec<(f64, f64)> = fault_windows(&events, 100.0)
        .iter()
        .map(|w| (w.start_ms, w.end_ms))
        .collect();
    assert_eq!(
        w,
        vec![
            (1.0, 4.0),
            (2.0, 10.0),
            (5.0, 7.0),
            (6.0, 100.0),
            (8.0, 100.0),
            (11.0, 12.0)
        ]
    );
}

#[test]
fn labels_neither_overlap_nor_cross_lines() {
    // a cluster of marks 10 px apart, with long labels
    let items: Vec<(f64, f64)> = (0..6).map(|i| (400.0 + i as f64 * 10.0, 80.0)).collect();
    let (placed, rows) = place_labels(&items);
    assert!(placed.iter().all(Option::is_some));
    assert_eq!(rows, 6);
    for (i, p) in placed.iter().enumerate() {
        let (r, right) = p.unwrap();
        assert!(right);
        let (lo, hi) = (items[i].0, items[i].0 + items[i].1);
        for (j, q) in placed.iter().enumerate().filter(|(j, _)| *j != i) {
            let (rq, _) = q.unwrap();
            let xj = items[j].0;
            // mark j's line runs below its own label: it must miss label i
            assert!(
                !(rq > r && xj > lo && xj < hi),
                "line {j} crosses label {i}"
            );
        }
    }
}

#[test]
fn tick_labels_are_short() {
    assert_eq!(tick_step(9.0), 1.0);
    assert_eq!(tick_step(40.0), 5.0);
    assert_eq!(fmt_s(0.0, 1.0), "0");
    assert_eq!(fmt_s(-2.0, 1.0), "-2");
    assert_eq!(fmt_s(0.5, 0.5), "+0.5");
    assert_eq!(fmt_s(3.0, 1.0), "+3");
}
