use super::*;
use crate::scenario::result::ClientMeasurements;
use crate::workload::checker;
use crate::workload::external::ExternalRun;

fn op(id: u64, t: f64, dur: f64, outcome: Outcome) -> Op {
    Op {
        id,
        process: "c".into(),
        invoke_ms: t,
        complete_ms: t + dur,
        outcome,
    }
}

fn refused() -> Outcome {
    Outcome::Error {
        kind: "CONNREFUSED".into(),
        message: "CONNREFUSED x".into(),
    }
}

#[test]
fn recovery_is_the_end_of_the_outage_or_of_a_slow_write() {
    // ok, fault at 100, refused 120..180, ok at 200
    let h = vec![
        op(1, 90.0, 1.0, Outcome::Ok),
        op(2, 120.0, 1.0, refused()),
        op(3, 180.0, 1.0, refused()),
        op(4, 200.0, 5.0, Outcome::Ok),
    ];
    let w = checker::unavailable(&h);
    assert_eq!(recovery(&h, &w, 100.0, 1000.0), (Some(105.0), None));
    // still failing at the end: did not recover within 81 ms
    let w = checker::unavailable(&h[..3]);
    assert_eq!(recovery(&h[..3], &w, 100.0, 1000.0), (None, Some(81.0)));
    // no failure, but one write blocked 8 s inside the library
    let h = vec![
        op(1, 90.0, 1.0, Outcome::Ok),
        op(2, 110.0, 8000.0, Outcome::Ok),
        op(3, 8200.0, 1.0, Outcome::Ok),
    ];
    let w = checker::unavailable(&h);
    assert!(w.is_empty());
    assert_eq!(recovery(&h, &w, 100.0, 1000.0), (Some(8010.0), None));
    assert_eq!(recovery(&h, &w, 100.0, 10_000.0), (None, None));
    assert_eq!(longest_ack_gap(&h, 100.0), 8110.0 - 91.0);
}

fn program(name: &str) -> &'static ClientProgram {
    crate::model::clients::find(name).unwrap()
}

fn result_with(clients: Vec<ExternalResult>) -> RunResult {
    let mut r = crate::report::svg::tests::sample_run("kill-master", true);
    r.measurements.fault_ms = Some(100.0);
    r.clients = clients;
    r
}

fn judged(name: &str, history: Vec<Op>, present: &[u64], meta: bool) -> ExternalResult {
    let values: BTreeMap<u64, i64> = present.iter().map(|id| (*id, 1)).collect();
    let check = checker::check_counts(&history, &values);
    let measurements = ClientMeasurements::of(&check, Some(100.0));
    ExternalResult {
        run: ExternalRun {
            name: name.into(),
            history,
            exit: "exit status: 0".into(),
            meta: meta.then(|| serde_json::json!({"version": "9.9.9"})),
            ..Default::default()
        },
        check,
        measurements,
    }
}

#[test]
fn every_client_has_a_row_and_the_counts_add_up() {
    let h = vec![
        op(1, 90.0, 1.0, Outcome::Ok),
        op(2, 120.0, 1.0, refused()),
        op(3, 200.0, 5.0, Outcome::Ok),
        op(4, 210.0, 5.0, Outcome::Ok),
    ];
    let ok = judged("go-redis-failover", h, &[1, 3], true);
    let mut crashed = judged("predis-sentinel", vec![], &[], false);
    crashed.run.never_started = Some("exited before its first write".into());
    crashed.run.exit_code = Some(255);
    crashed.run.stderr = "PHP Warning: x\nPHP Fatal error: boom\n".into();
    let m = MatrixRun {
        scenario: "kill-master".into(),
        run: 1,
        testbed: "cm-kill-master".into(),
        result: Some(result_with(vec![ok, crashed])),
        error: None,
    };
    let clients = [
        program("go-redis-failover"),
        program("predis-sentinel"),
        program("fred-sentinel"),
    ];
    let rows = rows(std::slice::from_ref(&m), &clients, 1000.0);
    assert_eq!(rows.len(), 3, "a row per client, crashed or missing too");
    let g = &rows[0];
    assert_eq!((g.version.as_str(), g.acknowledged), ("9.9.9", 3));
    assert_eq!(g.acknowledged, g.acknowledged_present + g.lost_acknowledged);
    assert_eq!(g.lost_acknowledged, 1);
    assert_eq!(g.recovered_ms, Some(105.0));
    assert_eq!(g.refused.get("CONNREFUSED"), Some(&1));
    let p = &rows[1];
    let c = p.crashed.as_deref().unwrap();
    assert!(
        c.starts_with("crashed (exit 255: PHP Fatal error: boom)"),
        "{c}"
    );
    assert_eq!(p.recovered_ms, None);
    assert!(
        rows[2].crashed.is_some(),
        "no result at all is a crashed row"
    );
    // a run that did not complete has no rows
    let failed = MatrixRun {
        result: None,
        error: Some("bring-up".into()),
        ..m.clone()
    };
    assert!(super::rows(&[failed], &clients, 1000.0).is_empty());
}

#[test]
fn summaries_give_the_median_range_and_the_did_not_recover_rate() {
    let c = program("fred-sentinel");
    let m = |run| MatrixRun {
        scenario: "s".into(),
        run,
        testbed: "cm-s".into(),
        result: None,
        error: None,
    };
    let mk = |run, rec: Option<f64>, dnr: Option<f64>| Row {
        recovered_ms: rec,
        did_not_recover_within_ms: dnr,
        ..blank(c, &m(run))
    };
    let rows = vec![
        mk(1, Some(300.0), None),
        mk(2, Some(100.0), None),
        mk(3, None, Some(30_000.0)),
        mk(4, Some(200.0), None),
    ];
    let s = &summaries(&rows)[0];
    assert_eq!((s.runs, s.recovered_runs, s.did_not_recover), (4, 3, 1));
    assert_eq!(s.recovered_median_ms, Some(200.0));
    assert_eq!(
        (s.recovered_min_ms, s.recovered_max_ms),
        (Some(100.0), Some(300.0))
    );
    assert_eq!(median(&[1.0, 3.0]), Some(2.0));
}

#[test]
fn testbed_names_are_short_and_valid() {
    assert_eq!(testbed_name("cm-", "kill-master"), "cm-kill-master");
    assert_eq!(
        testbed_name("cm-", "first-sentinel-blackholed-then-kill"),
        "cm-first-sentinel-blackh"
    );
}
