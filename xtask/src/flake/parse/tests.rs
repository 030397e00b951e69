use super::*;

const LOG: &str = "\
# flake run=3 prefix=fl- threads=2 commit=abc123 started=2026-12-02T05:00:00Z
     0.100 e    Compiling xtask v0.1.0
     1.000 e      Running unittests src/lib.rs (/c/target/debug/deps/testbed-0123abcd)
     1.010 o
     1.020 o running 3 tests
     1.500 o test b ... ok
     2.020 o test a ... ok
     4.000 o test c ... ignored, needs a reason
     4.100 o
     4.100 o test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 3.08s
     5.000 e      Running tests/failover.rs (/c/target/debug/deps/failover-77aa)
# stall t=6.500 mono=0.101 wall=3.212
     5.010 o running 2 tests
     7.000 o test kill_master ... FAILED
     9.000 o test pause_master ... ok
     9.010 o
     9.010 o failures:
     9.010 o
     9.010 o ---- kill_master stdout ----
     9.020 o timeline of kill_master
     9.030 o Error: no promotion within 12 s
     9.040 o
     9.040 o Caused by:
     9.040 o     sentinel said nothing
     9.050 o note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
     9.060 o
     9.060 o failures:
     9.060 o     kill_master
     9.070 o
     9.070 o test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 4.06s
     9.100 e error: test failed, to rerun pass `--test failover`
    10.000 e    Doc-tests testbed
    10.100 o running 0 tests
    10.200 o test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
# end exit=101 interrupted=false elapsed=10.5
";

#[test]
fn reads_binaries_outcomes_and_header() {
    let r = parse(LOG);
    assert_eq!(
        (r.run, r.prefix.as_str(), r.commit.as_str()),
        (3, "fl-", "abc123")
    );
    assert_eq!(r.exit, Some(101));
    assert!(!r.passed());
    let labels: Vec<_> = r.binaries.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "unittests testbed",
            "tests/failover.rs",
            "doc-tests testbed"
        ]
    );
    assert_eq!(r.binaries[1].finished_in_s, Some(4.06));
    assert_eq!(r.stalls.len(), 1);
    assert_eq!((r.stalls[0].at_s, r.stalls[0].wall_s), (6.5, 3.212));
    let failed: Vec<_> = r.failed().map(|t| t.name.as_str()).collect();
    assert_eq!(failed, ["kill_master"]);
    let f = r.failed().next().unwrap().failure.as_deref().unwrap();
    assert!(f.starts_with("Error: no promotion within 12 s"), "{f}");
    assert!(
        f.contains("sentinel said nothing") && !f.contains("RUST_BACKTRACE"),
        "{f}"
    );
}

#[test]
fn durations_replay_name_order_and_thread_slots() {
    let r = parse(LOG);
    let d: BTreeMap<_, _> = r
        .tests
        .iter()
        .map(|t| (t.name.as_str(), t.duration_s.map(|d| (d * 1000.0).round())))
        .collect();
    // a and b start at 1.020 (two threads); c starts when b ends (1.500)
    assert_eq!(d["b"], Some(480.0));
    assert_eq!(d["a"], Some(1000.0));
    assert_eq!(d["c"], Some(2500.0));
    assert_eq!(d["kill_master"], Some(1990.0));
    assert_eq!(d["pause_master"], Some(3990.0));
}

#[test]
fn an_end_outside_the_schedule_leaves_durations_unknown() {
    // one thread: `b` cannot end before `a`, which starts first
    let ends = vec![
        ("b".to_string(), Outcome::Ok, 2.0),
        ("a".to_string(), Outcome::Ok, 3.0),
    ];
    assert_eq!(durations(0.0, &ends, 1), vec![None, None]);
    assert_eq!(durations(0.0, &ends, 2), vec![Some(2.0), Some(3.0)]);
}

#[test]
fn an_interrupted_run_neither_passes_nor_keeps_a_half_binary_out() {
    let log = "\
# flake run=1 prefix= threads=2 commit=abc started=x
     1.000 e      Running tests/up.rs (/t/deps/up-1)
     1.100 o running 2 tests
     3.000 o test a ... ok
# end interrupted=true elapsed=4.0
";
    let r = parse(log);
    assert!(r.interrupted && r.unfinished() && !r.passed());
    // a log without its end line (still running, or killed)
    let cut = log.lines().take(4).collect::<Vec<_>>().join("\n");
    let r = parse(&cut);
    assert!(!r.interrupted && r.unfinished() && !r.passed());
    assert_eq!(r.binaries.len(), 1);
    assert_eq!(r.binaries[0].finished_in_s, None);
    assert_eq!(r.tests.len(), 1);
}

#[test]
fn lines_of_the_two_pipes_read_out_of_order_keep_their_binary() {
    // seen in a real run: cargo's `Running` (stderr) read before the
    // previous binary's `test result:` (stdout), and a `running N tests`
    // read before its own `Running`; a binary that crashed (no result);
    // a binary read whole before its `Running`
    let log = "\
# flake run=1 prefix= threads=1 commit=abc started=x
     1.000 e      Running tests/impair.rs (/t/deps/impair-1)
     1.010 o running 1 test
     3.000 o test slow ... ok
     3.500 e      Running tests/scenarios.rs (/t/deps/scenarios-2)
     3.500 o
     3.500 o test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 2.49s
     3.510 o running 1 test
     9.000 o test no_quorum ... ok
     9.000 o test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 5.49s
     9.100 o running 1 test
     9.100 e      Running tests/up.rs (/t/deps/up-3)
    10.100 o test up_is_healthy ... ok
    10.200 e error: test failed, to rerun pass `--test up`
    10.300 e      Running tests/x.rs (/t/deps/x-4)
    10.400 o running 1 test
    10.900 o test x ... ok
    11.000 o test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.60s
    11.000 o running 0 tests
    11.000 o test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
    11.000 e      Running unittests src/bin/n.rs (/t/deps/n-5)
    11.000 e      Running tests/y.rs (/t/deps/y-6)
    11.010 o running 1 test
    11.500 o test y ... ok
    11.600 o test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.59s
# end exit=101 interrupted=false elapsed=11.0
";
    let r = parse(log);
    let b: Vec<_> = r
        .binaries
        .iter()
        .map(|b| (b.label.as_str(), b.finished_in_s))
        .collect();
    assert_eq!(
        b,
        [
            ("tests/impair.rs", Some(2.49)),
            ("tests/scenarios.rs", Some(5.49)),
            ("tests/up.rs", None),
            ("tests/x.rs", Some(0.6)),
            ("unittests n", Some(0.0)),
            ("tests/y.rs", Some(0.59)),
        ]
    );
    let t: BTreeMap<_, _> = r
        .tests
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                (
                    t.binary.as_str(),
                    t.duration_s.map(|d| (d * 1000.0).round()),
                ),
            )
        })
        .collect();
    assert_eq!(t["slow"], ("tests/impair.rs", Some(1990.0)));
    assert_eq!(t["no_quorum"], ("tests/scenarios.rs", Some(5490.0)));
    assert_eq!(t["up_is_healthy"], ("tests/up.rs", Some(1000.0)));
    assert_eq!(t["x"], ("tests/x.rs", Some(500.0)));
    assert_eq!(t["y"], ("tests/y.rs", Some(490.0)));
}
