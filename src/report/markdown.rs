//! `report.md`: the summary of all runs and the details of one, as
//! GitHub-flavoured markdown (tables, fenced blocks, `<details>`).

use super::{rates, Environment};
use crate::observe::timeline::{self, Event, Kind};
use crate::scenario::run::RunResult;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

pub(super) mod sections;
use sections::*;

/// `2950–3400` for numbers, else the distinct values (at most three).
pub(super) fn measured_range(values: &[String]) -> String {
    let nums: Vec<f64> = values.iter().filter_map(|v| v.parse().ok()).collect();
    if !nums.is_empty() && nums.len() == values.len() {
        let (lo, hi) = nums
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        return if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}–{hi}")
        };
    }
    let distinct: BTreeSet<&str> = values.iter().map(String::as_str).collect();
    let mut s: Vec<&str> = distinct.iter().take(3).copied().collect();
    if distinct.len() > 3 {
        s.push("…");
    }
    s.join("; ")
}

/// Sentinel events dropped from a long timeline table (they stay in the
/// files): votes, epochs, discovery of peers and replicas.
const ROUTINE: &[&str] = &[
    "+vote-for-leader",
    "+new-epoch",
    "+sentinel",
    "-dup-sentinel",
    "+slave",
    "+config-update-from",
    "+sentinel-address-switch",
    "+sentinel-invalid-addr",
];
/// Rows above which the timeline table drops routine events.
const MAX_TABLE_ROWS: usize = 80;
/// Ranges of write ids listed in the report.
const MAX_LOST_IDS: usize = 50;

fn ms(v: Option<f64>) -> String {
    v.map_or("did not happen".to_string(), |v| format!("{v:.0} ms"))
}

fn rel(t: f64, zero: f64) -> String {
    format!("{:+.2} s", (t - zero) / 1000.0)
}

/// Where the scenario proper starts: the first operation or action
/// (earlier events are the bring-up).
fn scenario_start(r: &RunResult) -> f64 {
    let op = r
        .history
        .iter()
        .map(|o| o.invoke_ms)
        .fold(f64::INFINITY, f64::min);
    let act = r
        .timeline
        .iter()
        .filter(|e| e.kind == Kind::Action)
        .map(|e| e.t_ms)
        .fold(f64::INFINITY, f64::min);
    let s = op.min(act);
    if s.is_finite() {
        s
    } else {
        0.0
    }
}

/// `report.md`: a summary of all runs, then the details of the first
/// failing run (or the first run).
pub fn render_markdown(
    runs: &[RunResult],
    run_errors: &[String],
    env: &Environment,
    rerun_command: &str,
) -> String {
    let mut s = String::new();
    let Some(first) = runs.first() else {
        return "# No run completed\n".to_string();
    };
    let failed_runs = runs.iter().filter(|r| !r.passed()).count();
    let total = runs.len() + run_errors.len();
    let pass = failed_runs == 0 && run_errors.is_empty();
    let rates = rates(runs);
    let verdict = if pass { "PASS" } else { "FAIL" };
    let _ = writeln!(s, "# Scenario `{}`: {verdict}\n", first.scenario);
    let server = env
        .server_version
        .as_deref()
        .unwrap_or("server version unknown");
    let _ = writeln!(
        s,
        "Image `{}` ({server}), testbed {}, {}.\n",
        env.image_name, env.testbed_version, env.date_utc
    );
    claim_line(&mut s, runs, failed_runs, server);
    if pass {
        let _ = writeln!(
            s,
            "**PASS**: all {} expectations held in {}.\n",
            rates.len(),
            runs_word(runs.len())
        );
    } else {
        let _ = writeln!(
            s,
            "**FAIL**: {failed_runs} of {total} runs broke an expectation.\n"
        );
        for r in rates.iter().filter(|r| r.failed > 0) {
            let _ = writeln!(s, "- {}", r.line());
        }
        if !run_errors.is_empty() {
            let _ = writeln!(
                s,
                "- {} of {total} runs did not complete (errors below)",
                run_errors.len()
            );
        }
        s.push('\n');
    }
    let with_step_errors = runs.iter().filter(|r| !r.step_errors.is_empty()).count();
    if with_step_errors > 0 {
        let _ = writeln!(
            s,
            "Steps failed in {with_step_errors}/{} runs (see \"Step errors\").\n",
            runs.len()
        );
    }
    if total > 1 {
        s += "| expectation | failed in | measured over the runs |\n|---|---|---|\n";
        for r in &rates {
            let f = if r.failed > 0 {
                format!("**{}/{}**", r.failed, r.runs)
            } else {
                format!("0/{}", r.runs)
            };
            let _ = writeln!(
                s,
                "| `{}` | {f} | {} |",
                r.expectation,
                measured_range(&r.measured)
            );
        }
        s += "\n| run | seed | result | failed expectations | promoted after | lost acknowledged writes |\n|---|---|---|---|---|---|\n";
        for (i, r) in runs.iter().enumerate() {
            let failed: Vec<String> = r
                .verdicts
                .iter()
                .filter(|v| !v.pass)
                .map(|v| format!("`{}`", v.expectation))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                i + 1,
                r.seed.map_or("-".to_string(), |x| x.to_string()),
                if r.passed() { "PASS" } else { "FAIL" },
                failed.join(", "),
                ms(r.measurements.promoted_ms),
                r.measurements.lost_acknowledged_writes
            );
        }
        s.push('\n');
    }
    for e in run_errors {
        let _ = writeln!(s, "Run error: `{}`\n", e.replace('`', "'"));
    }

    let (i, run) = runs
        .iter()
        .enumerate()
        .find(|(_, r)| !r.passed())
        .unwrap_or((0, first));
    let which = if total == 1 {
        String::new()
    } else if run.passed() {
        format!(" (run {} of {total})", i + 1)
    } else {
        format!(" (run {} of {total}, the first failing run)", i + 1)
    };
    let _ = writeln!(s, "## Details{which}\n");
    let dir = run.dir_name(i);
    let _ = writeln!(
        s,
        "Picture: `{dir}/timeline.svg` (drag it, or `timeline.png` beside it, into the issue). \
         History, timeline, INFO/ROLE snapshots, configs and logs are in `{dir}/`.\n"
    );
    environment_section(&mut s, env);
    let _ = writeln!(
        s,
        "### Scenario\n\n```toml\n{}\n```\n",
        run.scenario_text.trim_end()
    );
    expectations_section(&mut s, run);
    measurements_section(&mut s, run);
    checker_section(&mut s, run);
    timeline_section(&mut s, run, &dir);
    script_calls_section(&mut s, run);
    snapshots_section(&mut s, run);
    let _ = writeln!(s, "### How to re-run\n");
    let _ = writeln!(
        s,
        "As root on Linux with Docker (`cargo xtask doctor --fix` installs and starts what is missing), \
         in a checkout of the testbed at `{}`:\n",
        env.testbed_version
    );
    let _ = writeln!(s, "```sh\n{rerun_command}\n```");
    s
}

/// What the scenario's sources claim and whether this server showed it:
/// every expectation holding is the claim reproduced as reported.
fn claim_line(s: &mut String, runs: &[RunResult], failed_runs: usize, server: &str) {
    let Some(first) = runs.first() else { return };
    if first.description.is_empty() {
        return;
    }
    let sources = if first.sources.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            first
                .sources
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let _ = writeln!(s, "**Claim**{sources}: {}\n", first.description);
    let _ = writeln!(
        s,
        "**Outcome**: {}.\n",
        outcome(runs.len(), failed_runs, server)
    );
}

/// `reproduced as reported on <server> (3/3 runs)`, `not reproduced on …`,
/// or `reproduced on … in 2/3 runs`.
pub fn outcome(runs: usize, failed: usize, server: &str) -> String {
    let held = runs - failed;
    match (held, failed) {
        (_, 0) => format!("reproduced as reported on {server} ({held}/{runs} runs)"),
        (0, _) => format!("not reproduced on {server} (0/{runs} runs)"),
        _ => format!("reproduced on {server} in {held}/{runs} runs"),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn runs_word(n: usize) -> String {
    if n == 1 {
        "the run".into()
    } else {
        format!("all {n} runs")
    }
}
