//! The flake table: how many runs passed, what failed and what it said,
//! how long each test binary and the slowest tests took.

use super::parse::{Outcome, Run};
use crate::bench::stats::{summary, Summary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Where and how the runs were made.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub command: String,
    pub machine: String,
    pub made_utc: String,
}

/// What the runs add up to.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub runs: usize,
    pub passed: usize,
    pub failed: usize,
    /// Interrupted, or unfinished (a log without its end).
    pub interrupted: usize,
    /// The longest series of passed runs with no failed run between them
    /// (in the order the runs started; interrupted or unfinished runs
    /// neither break nor extend it).
    pub longest_streak: usize,
    pub run_time_s: Option<Summary>,
}

pub fn totals(runs: &[Run]) -> Totals {
    let (mut streak, mut longest) = (0, 0);
    for r in runs {
        if r.unfinished() {
            continue;
        }
        if r.passed() {
            streak += 1;
            longest = longest.max(streak);
        } else {
            streak = 0;
        }
    }
    let times: Vec<f64> = runs
        .iter()
        .filter(|r| !r.unfinished())
        .filter_map(|r| r.elapsed_s)
        .collect();
    Totals {
        runs: runs.len(),
        passed: runs.iter().filter(|r| r.passed()).count(),
        failed: runs
            .iter()
            .filter(|r| !r.unfinished() && !r.passed())
            .count(),
        interrupted: runs.iter().filter(|r| r.unfinished()).count(),
        longest_streak: longest,
        run_time_s: summary(&times),
    }
}

fn s(x: &Summary) -> String {
    format!("**{:.1}** ({:.1}–{:.1})", x.median, x.min, x.max)
}

/// Seconds per binary label, and per (binary, test).
type Samples<'a> = (
    BTreeMap<&'a str, Vec<f64>>,
    BTreeMap<(&'a str, &'a str), Vec<f64>>,
);

/// Per binary / per test: the samples of the runs that finished it.
fn samples(runs: &[Run]) -> Samples<'_> {
    let mut bins: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut tests: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for r in runs.iter().filter(|r| !r.unfinished()) {
        for b in &r.binaries {
            if let Some(t) = b.finished_in_s {
                bins.entry(&b.label).or_default().push(t);
            }
        }
        for t in r.tests.iter().filter(|t| t.outcome != Outcome::Ignored) {
            if let Some(d) = t.duration_s {
                tests.entry((&t.binary, &t.name)).or_default().push(d);
            }
        }
    }
    (bins, tests)
}

/// The slowest tests by median duration, at most `n`.
pub fn slowest(runs: &[Run], n: usize) -> Vec<(String, String, Summary)> {
    let (_, tests) = samples(runs);
    let mut v: Vec<_> = tests
        .into_iter()
        .filter_map(|((b, t), xs)| summary(&xs).map(|s| (b.to_string(), t.to_string(), s)))
        .collect();
    v.sort_by(|a, b| b.2.median.total_cmp(&a.2.median));
    v.truncate(n);
    v
}

/// `3.2 s at 412 s` for each stall of a run, or `none`.
fn stalls(r: &Run) -> String {
    if r.stalls.is_empty() {
        return "none".into();
    }
    r.stalls
        .iter()
        .map(|s| format!("{:.1} s at {:.0} s", s.mono_s.max(s.wall_s), s.at_s))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(runs: &[Run], meta: &Meta) -> String {
    let t = totals(runs);
    let mut out = String::new();
    let _ = writeln!(out, "# Flake rate of `{}`\n", meta.command);
    let mut commits: Vec<&str> = runs.iter().map(|r| r.commit.as_str()).collect();
    commits.dedup();
    let _ = writeln!(
        out,
        "Made {} on {}; commit {}. Runs: `cargo xtask flake` (each run's log, a timestamp per line, \
         is kept beside this file).\n",
        meta.made_utc,
        meta.machine,
        commits.join(", ")
    );
    let _ = writeln!(
        out,
        "| runs | passed | failed | interrupted or unfinished | longest streak of passes | run time, s |\n|---|---|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |\n",
        t.runs,
        t.passed,
        t.failed,
        t.interrupted,
        t.longest_streak,
        t.run_time_s.as_ref().map_or("–".into(), s)
    );
    let stalled: Vec<&Run> = runs.iter().filter(|r| !r.stalls.is_empty()).collect();
    if !stalled.is_empty() {
        let _ = writeln!(
            out,
            "Machine stalls (the command's own 100 ms tick taking over 1.5 s by the monotonic \
             or the wall clock; Sentinel enters TILT past 2 s): {}.\n",
            stalled
                .iter()
                .map(|r| format!("run {} `{}`: {}", r.run, r.prefix, stalls(r)))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    // the tests an interruption stopped are not failures
    let failures: Vec<_> = runs
        .iter()
        .filter(|r| !r.unfinished())
        .flat_map(|r| r.failed().map(move |f| (r, f)))
        .collect();
    if !failures.is_empty() || runs.iter().any(|r| !r.unfinished() && !r.passed()) {
        let _ = writeln!(
            out,
            "## Failures\n\n| run | prefix | binary | test | what it said | machine stalls in the run |\n|---|---|---|---|---|---|"
        );
        for (r, f) in &failures {
            // a panic's message is on the line after `panicked at`
            let said = f
                .failure
                .as_deref()
                .unwrap_or("(no output captured)")
                .lines()
                .find(|l| !l.contains("panicked at"))
                .unwrap_or("")
                .replace('|', "\\|");
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | `{}` | {} | {} |",
                r.run,
                r.prefix,
                f.binary,
                f.name,
                said,
                stalls(r)
            );
        }
        for r in runs
            .iter()
            .filter(|r| !r.unfinished() && !r.passed() && r.failed().next().is_none())
        {
            let _ = writeln!(
                out,
                "| {} | `{}` | – | – | exit {:?} with no failed test (a build or harness error: see run-{:02}.log) | – |",
                r.run, r.prefix, r.exit, r.run
            );
        }
        out.push('\n');
    }
    let (bins, _) = samples(runs);
    let mut bins: Vec<_> = bins
        .into_iter()
        .filter_map(|(b, xs)| summary(&xs).map(|s| (b, s)))
        .collect();
    bins.sort_by(|a, b| b.1.median.total_cmp(&a.1.median));
    let _ = writeln!(
        out,
        "## Test binaries (libtest's `finished in`), slowest first\n\n| binary | runs | s |\n|---|---|---|"
    );
    for (b, x) in &bins {
        let _ = writeln!(out, "| {b} | {} | {} |", x.n, s(x));
    }
    let _ = writeln!(
        out,
        "\n## The slowest tests\n\nA test's time is from its start to its end; libtest starts tests in \
         name order, as many at once as it has threads, each when another ends, so the start is known \
         from the ends printed before it.\n\n| test | binary | runs | s |\n|---|---|---|---|"
    );
    for (b, name, x) in slowest(runs, 10) {
        let _ = writeln!(out, "| `{name}` | {b} | {} | {} |", x.n, s(&x));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flake::parse::parse;

    fn run(n: u32, exit: i32, interrupted: bool) -> Run {
        let end = if interrupted {
            "# end interrupted=true elapsed=3".to_string()
        } else {
            format!("# end exit={exit} interrupted=false elapsed={}", 10 + n)
        };
        parse(&format!(
            "# flake run={n} prefix= threads=1 commit=c started=x\n\
             1.000 e      Running tests/up.rs (/t/deps/up-1)\n\
             1.100 o running 1 tests\n\
             3.000 o test a ... {}\n\
             3.100 o test result: ok. finished in 2.00s\n{end}\n",
            if exit == 0 { "ok" } else { "FAILED" }
        ))
    }

    #[test]
    fn a_failure_breaks_the_streak_and_an_interruption_does_not() {
        let runs = vec![
            run(1, 0, false),
            run(2, 101, false),
            run(3, 0, false),
            run(4, 0, true),
            run(5, 0, false),
            run(6, 0, false),
        ];
        let t = totals(&runs);
        assert_eq!((t.runs, t.passed, t.failed, t.interrupted), (6, 4, 1, 1));
        assert_eq!(t.longest_streak, 3);
        let md = render(
            &runs,
            &Meta {
                command: "cargo test --workspace".into(),
                machine: "m".into(),
                made_utc: "now".into(),
            },
        );
        assert!(md.contains("| 2 | `` | tests/up.rs | `a` |"), "{md}");
        assert!(
            md.contains("| none |") && !md.contains("Machine stalls"),
            "{md}"
        );
        assert_eq!(slowest(&runs, 10)[0].2.n, 5);
    }
}
