//! The sections of one run in `report.md`: environment, expectations,
//! measurements, the checker's writes, the timeline, the reconfig script's
//! calls and the snapshots.

use super::*;

pub(super) fn environment_section(s: &mut String, env: &Environment) {
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

pub(super) fn expectations_section(s: &mut String, run: &RunResult) {
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

pub(super) fn measurements_section(s: &mut String, run: &RunResult) {
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
pub(in crate::report) fn ids(v: &[u64]) -> String {
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

pub(super) fn checker_section(s: &mut String, run: &RunResult) {
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
pub(super) fn timeline_section(s: &mut String, run: &RunResult, dir: &str) {
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
            "{} routine sentinel events are left out to keep the table readable ({}); `{dir}/timeline.txt` has every event.\n",
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

pub(super) fn script_calls_section(s: &mut String, run: &RunResult) {
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

pub(super) fn snapshots_section(s: &mut String, run: &RunResult) {
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
