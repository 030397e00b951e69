//! `report.md`: the summary of all runs and the details of one, as
//! GitHub-flavoured markdown (tables, fenced blocks, `<details>`).

use super::{rates, Environment};
use crate::observe::timeline::{self, Event, Kind};
use crate::scenario::run::RunResult;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

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
        s += "\n| run | result | failed expectations | promoted after | lost acknowledged writes |\n|---|---|---|---|---|\n";
        for (i, r) in runs.iter().enumerate() {
            let failed: Vec<String> = r
                .verdicts
                .iter()
                .filter(|v| !v.pass)
                .map(|v| format!("`{}`", v.expectation))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                i + 1,
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
    let _ = writeln!(
        s,
        "Picture: `run-{}/timeline.svg` (drag it, or `timeline.png` beside it, into the issue). \
         History, timeline, INFO/ROLE snapshots, configs and logs are in `run-{}/`.\n",
        i + 1,
        i + 1
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
    timeline_section(&mut s, run, i + 1);
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

fn environment_section(s: &mut String, env: &Environment) {
    s.push_str("### Environment\n\n| | |\n|---|---|\n");
    let id: String = env
        .image_id
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect();
    let rows = [
        (
            "server",
            env.server_version
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("image", format!("`{}` (id `{id}`)", env.image_name)),
        (
            "packages",
            if env.packages.is_empty() {
                "-".into()
            } else {
                env.packages
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "engine",
            format!(
                "{} {} at `{}`, API {} used (engine max {})",
                env.engine, env.docker_version, env.docker_host, env.docker_api, env.docker_api_max
            ),
        ),
        ("compose", env.compose.clone()),
        ("kernel", env.kernel.clone()),
        ("os", env.os.clone()),
        ("testbed", env.testbed_version.clone()),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {} |", v.replace('|', "\\|"));
    }
    for (k, v) in env
        .image_labels
        .iter()
        .filter(|(k, _)| !k.ends_with(".packages"))
    {
        let _ = writeln!(s, "| label `{k}` | `{}` |", v.replace('|', "\\|"));
    }
    s.push('\n');
}

fn expectations_section(s: &mut String, run: &RunResult) {
    s.push_str("### Expectations\n\n| expectation | measured | result |\n|---|---|---|\n");
    for v in &run.verdicts {
        let res = if v.pass { "PASS" } else { "**FAIL**" };
        let _ = writeln!(
            s,
            "| `{}` | {} | {res} |",
            v.expectation,
            v.measured.replace('|', "\\|")
        );
    }
    s.push('\n');
    if !run.step_errors.is_empty() {
        s.push_str("**Step errors**\n\n```text\n");
        for e in &run.step_errors {
            let _ = writeln!(s, "{e}");
        }
        s.push_str("```\n\n");
    }
}

fn measurements_section(s: &mut String, run: &RunResult) {
    let m = &run.measurements;
    s.push_str("### Measurements\n\n(ms from the first fault unless said otherwise)\n\n| measure | value |\n|---|---|\n");
    let rows = [
        ("first fault at (since bring-up)", ms(m.fault_ms)),
        ("promoted (first `+switch-master`)", ms(m.promoted_ms)),
        ("failovers", m.failovers.to_string()),
        (
            "old master → final master",
            format!(
                "{} → {}",
                m.old_master,
                m.final_master.as_deref().unwrap_or("none agreed")
            ),
        ),
        ("most VIP holders at once", m.vip_holders_max.to_string()),
        (
            "VIP on 2+ nodes for",
            format!("{:.0} ms", m.duplicate_vip_ms),
        ),
        (
            "VIP holders at the end",
            if m.final_vip_holders.is_empty() {
                "none".into()
            } else {
                m.final_vip_holders.join(", ")
            },
        ),
        (
            "old master demoted (from its return)",
            ms(m.old_master_demoted_ms),
        ),
        ("client recovered", ms(m.client_recovered_ms)),
        (
            "lost acknowledged writes",
            m.lost_acknowledged_writes.to_string(),
        ),
        ("refused writes", m.refused_writes.to_string()),
        ("longest loss window", format!("{:.0} ms", m.loss_window_ms)),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    if let Some(x) = &run.external {
        let (n, c) = (&x.run.name, &x.measurements);
        let rows = [
            ("client recovered", ms(c.client_recovered_ms)),
            (
                "lost acknowledged writes",
                c.lost_acknowledged_writes.to_string(),
            ),
            ("refused writes", c.refused_writes.to_string()),
            ("longest loss window", format!("{:.0} ms", c.loss_window_ms)),
        ];
        for (k, v) in rows {
            let _ = writeln!(s, "| external `{n}`: {k} | {v} |");
        }
    }
    s.push('\n');
}

/// Ids as ranges (`54–912, 915`): the first [`MAX_LOST_IDS`] ranges.
pub(super) fn ids(v: &[u64]) -> String {
    let mut sorted = v.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for id in sorted {
        match ranges.last_mut() {
            Some((_, b)) if *b + 1 == id => *b = id,
            _ => ranges.push((id, id)),
        }
    }
    let mut t: Vec<String> = ranges
        .iter()
        .take(MAX_LOST_IDS)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            }
        })
        .collect();
    let rest: u64 = ranges
        .iter()
        .skip(MAX_LOST_IDS)
        .map(|(a, b)| b - a + 1)
        .sum();
    if rest > 0 {
        t.push(format!("… ({rest} more)"));
    }
    t.join(", ")
}

fn checker_section(s: &mut String, run: &RunResult) {
    let zero = run.measurements.fault_ms.unwrap_or(0.0);
    s.push_str("### Writes\n\n");
    if run.history.is_empty() && run.external.is_none() {
        s.push_str("No workload in this scenario.\n\n");
        return;
    }
    if !run.history.is_empty() {
        if run.external.is_some() {
            s.push_str("#### Built-in workload (redis-rs)\n\n");
        }
        writes(s, &run.check, "wl:<id>", zero);
    }
    if let Some(x) = &run.external {
        let r = &x.run;
        let _ = writeln!(
            s,
            "#### External client `{}`\n\nCommand `{}`; {}.\n",
            r.name,
            r.command.join(" ").replace('`', "'"),
            r.exit
        );
        if let Some(e) = &r.exited_early {
            let _ = writeln!(s, "**It exited before the scenario ended**: {e}.\n");
        }
        if let Some(e) = &r.parse_error {
            let _ = writeln!(s, "**Its output was not all operation records**: `{e}`\n");
        }
        let m = &x.measurements;
        let _ = writeln!(
            s,
            "Writes recovered (end of the unavailability after the first fault): {}; longest loss window {:.0} ms.\n",
            ms(m.client_recovered_ms),
            m.loss_window_ms
        );
        writes(s, &x.check, &format!("wl:{}:<id>", r.name), zero);
        if !r.stderr.trim().is_empty() {
            let _ = writeln!(
                s,
                "<details><summary>its stderr (last lines)</summary>\n\n```\n{}\n```\n</details>\n",
                crate::workload::external::tail(&r.stderr, 20)
            );
        }
    }
}

/// One client's checker findings.
fn writes(s: &mut String, c: &crate::workload::checker::Report, key: &str, zero: f64) {
    let _ = writeln!(s, "{}.\n", c.summary());
    let mut list = |name: &str, v: &[u64]| {
        if !v.is_empty() {
            let _ = writeln!(s, "- {name} ({}): {}", v.len(), ids(v));
        }
    };
    list(
        &format!("**lost acknowledged writes** (ids, key `{key}`)"),
        &c.lost,
    );
    list("refused, yet present at the end", &c.refused_but_present);
    list("unknown outcome, landed", &c.unknown_landed);
    list("unknown outcome, missing", &c.unknown_missing);
    list("duplicated ids", &c.duplicated);
    for (name, ws) in [
        ("unavailable (every write failed)", &c.unavailable),
        ("acknowledged writes lost", &c.loss_windows),
    ] {
        for w in ws {
            let _ = writeln!(
                s,
                "- {name}: {} to {} ({:.0} ms){}",
                rel(w.start_ms, zero),
                rel(w.end_ms, zero),
                w.len_ms(),
                if w.ongoing {
                    ", **still open when the scenario ended**"
                } else {
                    ""
                }
            );
        }
    }
    s.push('\n');
}

/// The timeline table; bring-up events collapsed, routine sentinel events
/// dropped when the table would be long (the text file keeps everything).
fn timeline_section(s: &mut String, run: &RunResult, index: usize) {
    let start = scenario_start(run);
    let zero = run.measurements.fault_ms.unwrap_or(start);
    let (before, during): (Vec<Event>, Vec<Event>) =
        run.timeline.iter().cloned().partition(|e| e.t_ms < start);
    let mut shown = during.clone();
    let mut dropped: BTreeMap<&str, usize> = BTreeMap::new();
    if shown.len() > MAX_TABLE_ROWS {
        shown.retain(|e| {
            let routine = e.kind == Kind::Sentinel && ROUTINE.contains(&e.name.as_str());
            if routine {
                *dropped
                    .entry(
                        ROUTINE
                            .iter()
                            .find(|r| **r == e.name)
                            .copied()
                            .unwrap_or(""),
                    )
                    .or_default() += 1;
            }
            !routine
        });
    }
    let _ = writeln!(
        s,
        "### Timeline\n\nms relative to the first fault; ACTION rows are what the testbed did.\n"
    );
    if !dropped.is_empty() {
        let list: Vec<String> = dropped.iter().map(|(k, v)| format!("`{k}` ×{v}")).collect();
        let _ = writeln!(
            s,
            "{} routine sentinel events are left out to keep the table readable ({}); `run-{index}/timeline.txt` has every event.\n",
            dropped.values().sum::<usize>(),
            list.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "<details open><summary>{}</summary>\n\n```text\n{}```\n\n</details>\n",
        plural(shown.len(), "event"),
        timeline::render_table(&shown, zero)
    );
    if !before.is_empty() {
        let _ = writeln!(
            s,
            "<details><summary>{} during bring-up</summary>\n\n```text\n{}```\n\n</details>\n",
            plural(before.len(), "event"),
            timeline::render_table(&before, zero)
        );
    }
}

fn script_calls_section(s: &mut String, run: &RunResult) {
    s.push_str("### Reconfig script calls\n\n");
    if run.script_calls.is_empty() {
        s.push_str("None logged.\n\n");
        return;
    }
    let zero = run.measurements.fault_ms.unwrap_or(0.0);
    s.push_str("| node | start | took | exit | arguments |\n|---|---|---|---|---|\n");
    for c in &run.script_calls {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} ms | {} | `{}` |",
            c.node,
            rel(c.start_ms, zero),
            c.end_ms - c.start_ms,
            c.exit_code,
            c.args.join(" ")
        );
    }
    s.push('\n');
}

fn snapshots_section(s: &mut String, run: &RunResult) {
    if run.snapshots.is_empty() {
        return;
    }
    s.push_str("<details><summary>INFO replication and ROLE of each node at the end</summary>\n\n```text\n");
    for (node, cmds) in &run.snapshots {
        for (cmd, text) in cmds.iter().filter(|(c, _)| *c != "SENTINEL MASTER") {
            let _ = writeln!(
                s,
                "== {node}: {cmd}\n{}",
                text.trim_end().replace("```", "'''")
            );
        }
    }
    s.push_str("```\n\n</details>\n\n");
}
