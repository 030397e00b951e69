//! The client matrix's files: `matrix.md` (tables per scenario, the
//! summary over the runs, each client's settings), `matrix.json` (the
//! stable interface: `{"rows":[...]}` plus the summaries and the runs),
//! `matrix.svg`, and each scenario's report bundle beside them.
//!
//! Invariant: rendering is pure (a function of the runs, the rows, the
//! environment and the command); only [`write_matrix`] writes.

use super::Environment;
use crate::backend::image::ImageInfo;
use crate::error::{Error, Result};
use crate::scenario::matrix::{MatrixRun, Row, Summary};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Everything the files are made of.
pub struct Matrix<'a> {
    pub runs: &'a [MatrixRun],
    pub rows: &'a [Row],
    pub summaries: &'a [Summary],
    /// The environment of the first completed run.
    pub environment: &'a Environment,
    pub client_image: Option<&'a ImageInfo>,
    /// The clients' `TESTBED_RATE` and `TESTBED_TIMEOUT_MS`.
    pub rate: u32,
    pub timeout_ms: u64,
    /// The command that re-runs it.
    pub command: &'a str,
}

#[derive(Serialize)]
struct Json<'a> {
    rows: &'a [Row],
    summaries: &'a [Summary],
    runs: Vec<JsonRun<'a>>,
    environment: &'a Environment,
    client_image: Option<&'a ImageInfo>,
    rate: u32,
    timeout_ms: u64,
    command: &'a str,
}

#[derive(Serialize)]
struct JsonRun<'a> {
    scenario: &'a str,
    run: u32,
    testbed: &'a str,
    error: Option<&'a str>,
    fault_ms: Option<f64>,
    promoted_ms: Option<f64>,
    failovers: Option<usize>,
    old_master: Option<&'a str>,
    final_master: Option<&'a str>,
}

/// `matrix.json`.
pub fn render_json(m: &Matrix) -> String {
    let runs = m
        .runs
        .iter()
        .map(|r| {
            let me = r.result.as_ref().map(|x| &x.measurements);
            JsonRun {
                scenario: &r.scenario,
                run: r.run,
                testbed: &r.testbed,
                error: r.error.as_deref(),
                fault_ms: me.and_then(|x| x.fault_ms),
                promoted_ms: me.and_then(|x| x.promoted_ms),
                failovers: me.map(|x| x.failovers),
                old_master: me.map(|x| x.old_master.as_str()),
                final_master: me.and_then(|x| x.final_master.as_deref()),
            }
        })
        .collect();
    let j = Json {
        rows: m.rows,
        summaries: m.summaries,
        runs,
        environment: m.environment,
        client_image: m.client_image,
        rate: m.rate,
        timeout_ms: m.timeout_ms,
        command: m.command,
    };
    serde_json::to_string_pretty(&j).expect("the matrix serialises")
}

fn secs(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

/// The recovery cell of a row.
pub fn recovery_cell(r: &Row) -> String {
    match (&r.crashed, r.recovered_ms, r.did_not_recover_within_ms) {
        (Some(c), _, _) => c.replace('|', "/"),
        (None, Some(v), _) => secs(v),
        (None, None, Some(w)) => format!("**did not recover** within {}", secs(w)),
        (None, None, None) => "no failed write".into(),
    }
}

fn refused_cell(r: &Row) -> String {
    if r.refused.is_empty() {
        return "0".into();
    }
    r.refused
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `matrix.md`.
pub fn render_markdown(m: &Matrix) -> String {
    let mut s = String::new();
    let env = m.environment;
    let scenarios: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for r in m.runs {
            if !v.contains(&r.scenario.as_str()) {
                v.push(&r.scenario);
            }
        }
        v
    };
    let clients: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for r in m.rows {
            if !v.contains(&r.client.as_str()) {
                v.push(&r.client);
            }
        }
        v
    };
    let repeat = m.runs.iter().map(|r| r.run).max().unwrap_or(0);
    let _ = writeln!(
        s,
        "# Client matrix\n\n{} scenario(s) × {} client(s) × {repeat} run(s), {}. Every client writes `INCR wl:<client>:<id>` at {} writes/s (`TESTBED_TIMEOUT_MS` {}) from its own container on the testbed's segment, all at once, through the same failover.\n",
        scenarios.len(),
        clients.len(),
        env.date_utc,
        m.rate,
        m.timeout_ms
    );
    let _ = writeln!(
        s,
        "Recovery: fault → completion of the first acknowledged write after the first failed one (or after the first write slower than its timeout). *Longest unavailable*: the checker's longest span from a failed write to the next acknowledged one. *Acknowledged gap*: the longest time after the fault in which no acknowledgement completed. *Demoted master*: acknowledged after the first `+switch-master` and lost.\n"
    );
    environment(&mut s, m);
    for sc in &scenarios {
        scenario_section(&mut s, m, sc, repeat > 1);
    }
    settings(&mut s, m);
    let _ = writeln!(s, "Re-run: `{}`", m.command);
    s
}

fn environment(s: &mut String, m: &Matrix) {
    let e = m.environment;
    let _ = writeln!(s, "## Environment\n");
    let _ = writeln!(
        s,
        "- server: {} ({}, id `{}`)",
        e.server_version.as_deref().unwrap_or("unknown"),
        e.image_name,
        e.image_id
    );
    match m.client_image {
        Some(ci) => {
            let _ = writeln!(s, "- clients: `{}` (id `{}`)", ci.name, ci.id);
            for (k, v) in &ci.labels {
                if let Some(short) = k.strip_prefix("io.redis-sentinel-testbed.image.clients.") {
                    if short != "hash" && short != "programs" {
                        let _ = writeln!(s, "  - {short}: {}", v.replace(',', ", "));
                    }
                }
            }
        }
        None => {
            let _ = writeln!(s, "- clients: image unknown");
        }
    }
    let _ = writeln!(
        s,
        "- docker {} (API {}), kernel {}, {}\n- testbed {}\n",
        e.docker_version, e.docker_api, e.kernel, e.os, e.testbed_version
    );
}

fn scenario_section(s: &mut String, m: &Matrix, sc: &str, repeated: bool) {
    let _ = writeln!(s, "## {sc}\n");
    let runs: Vec<&MatrixRun> = m.runs.iter().filter(|r| r.scenario == sc).collect();
    if let Some(first) = runs.iter().find_map(|r| r.result.as_ref()) {
        // the scenario file's description line
        if let Some(d) = first
            .scenario_text
            .lines()
            .find_map(|l| l.strip_prefix("description = "))
        {
            let _ = writeln!(s, "{}\n", d.trim_matches('"'));
        }
    }
    for r in &runs {
        match (&r.result, &r.error) {
            (Some(x), _) => {
                let me = &x.measurements;
                let _ = writeln!(
                    s,
                    "- run {}: testbed `{}`, {} → {}, promoted {} after the fault, {} failover(s)",
                    r.run,
                    r.testbed,
                    me.old_master,
                    me.final_master.as_deref().unwrap_or("?"),
                    me.promoted_ms.map_or("never".into(), secs),
                    me.failovers
                );
            }
            (None, e) => {
                let _ = writeln!(
                    s,
                    "- run {}: **did not complete**: {}",
                    r.run,
                    e.as_deref().unwrap_or("?")
                );
            }
        }
    }
    s.push('\n');
    let run_col = if repeated { "| run " } else { "" };
    let _ = writeln!(
        s,
        "{run_col}| client | library | discovery | acknowledged | lost | duplicates | unknown (landed) | refused | recovery | longest unavailable | acknowledged gap | demoted master |"
    );
    let _ = writeln!(
        s,
        "{}|---|---|---|---|---|---|---|---|---|---|---|---|",
        if repeated { "|---" } else { "" }
    );
    for r in m.rows.iter().filter(|r| r.scenario == sc) {
        let run = if repeated {
            format!("| {} ", r.run)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "{run}| `{}` | {} {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} |",
            r.client,
            r.library,
            r.version,
            r.discovery,
            r.acknowledged,
            r.lost_acknowledged,
            r.duplicates,
            r.unknown,
            r.unknown_landed,
            refused_cell(r),
            recovery_cell(r),
            secs(r.longest_unavailable_ms),
            secs(r.longest_ack_gap_ms),
            if r.wrote_to_demoted_master {
                format!("**yes** ({})", r.writes_to_demoted_master)
            } else {
                "no".into()
            }
        );
    }
    s.push('\n');
    if repeated {
        let _ = writeln!(
            s,
            "Over the runs:\n\n| client | runs | recovery median (min–max) | did not recover | crashed | lost | duplicates | wrote to a demoted master |\n|---|---|---|---|---|---|---|---|"
        );
        for x in m.summaries.iter().filter(|x| x.scenario == sc) {
            let rec = match (
                x.recovered_median_ms,
                x.recovered_min_ms,
                x.recovered_max_ms,
            ) {
                (Some(md), Some(lo), Some(hi)) => {
                    format!("**{}** ({}–{})", secs(md), secs(lo), secs(hi))
                }
                _ => "–".into(),
            };
            let _ = writeln!(
                s,
                "| `{}` | {} | {rec} | {}/{} | {} | {} | {} | {}/{} |",
                x.client,
                x.runs,
                x.did_not_recover,
                x.runs,
                x.crashed,
                x.lost_acknowledged,
                x.duplicates,
                x.wrote_to_demoted_master_runs,
                x.runs
            );
        }
        s.push('\n');
    }
}

/// Each client's meta line (library, version, runtime, settings) from the
/// first run that has it.
fn settings(s: &mut String, m: &Matrix) {
    let _ = writeln!(
        s,
        "## Client settings\n\nAs each program printed them (its meta line): timeouts, retries, discovery, library defaults included.\n"
    );
    let mut seen: Vec<String> = Vec::new();
    for r in m.runs.iter().filter_map(|r| r.result.as_ref()) {
        for c in &r.clients {
            if seen.contains(&c.run.name) {
                continue;
            }
            if let Some(meta) = &c.run.meta {
                seen.push(c.run.name.clone());
                let _ = writeln!(
                    s,
                    "<details><summary><code>{}</code></summary>\n\n```json\n{}\n```\n</details>\n",
                    c.run.name,
                    serde_json::to_string_pretty(meta).unwrap_or_default()
                );
            }
        }
    }
}

/// Writes `matrix.md`, `matrix.json`, `matrix.svg` and each scenario's
/// bundle (`<scenario>/report.md`, ..., with every client's history and
/// stderr) into `dir`; returns the path of `matrix.md`.
pub fn write_matrix(dir: &Path, m: &Matrix) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let write = |name: &str, text: &str| -> Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
    };
    write("matrix.md", &render_markdown(m))?;
    write("matrix.json", &render_json(m))?;
    let mut firsts = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in m.runs {
        if let Some(x) = &r.result {
            if !seen.contains(&r.scenario.as_str()) {
                seen.push(&r.scenario);
                firsts.push(x);
            }
        }
    }
    let title = format!(
        "Client matrix — {} (run 1 of each scenario)",
        m.environment.date_utc
    );
    write("matrix.svg", &super::svg::matrix_svg(&title, &firsts))?;
    for sc in seen {
        let runs: Vec<_> = m
            .runs
            .iter()
            .filter(|r| r.scenario == sc)
            .filter_map(|r| r.result.clone())
            .collect();
        let errors: Vec<String> = m
            .runs
            .iter()
            .filter(|r| r.scenario == sc)
            .filter_map(|r| r.error.as_ref().map(|e| format!("run {}: {e}", r.run)))
            .collect();
        super::write_bundle_with_errors(
            &dir.join(super::safe_name(sc)),
            &runs,
            &errors,
            m.environment,
            m.command,
        )?;
    }
    Ok(dir.join("matrix.md"))
}
