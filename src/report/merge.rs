//! `report merge`: the bundles of one plan's shards (`repro --shard I/N`,
//! run on one machine or many) joined into one bundle whose rates count
//! every run of every shard.
//!
//! A bundle is read from its `report.json` (the runs stay JSON: the merged
//! `report.json` holds them as they were written) and its `run-<seed>/`
//! folders are copied. Refused, naming the folder: a bundle without a plan,
//! bundles of another scenario file (digest), image or plan (repeat, shard
//! count), two bundles of the same shard, a seed in two bundles.

use super::{rates_of, utc_iso, Rate, RunPlan};
use crate::error::{Error, Result};
use crate::scenario::run::Verdict;
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One bundle as read back.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub plan: RunPlan,
    pub rerun_command: String,
    pub run_errors: Vec<String>,
    /// Every run, as written.
    pub runs: Vec<serde_json::Value>,
    /// Each run's seed and verdicts.
    pub verdicts: Vec<(u64, Vec<Verdict>)>,
    pub environment: serde_json::Value,
}

/// The merged plan and its runs, in seed order.
#[derive(Debug, Clone)]
pub struct Merged {
    pub plan: RunPlan,
    pub shards: Vec<Bundle>,
    pub rates: Vec<Rate>,
    /// Seeds of the plan that no bundle holds (missing shards, runs that
    /// did not complete).
    pub missing: Vec<u64>,
}

fn bad(dir: &Path, msg: impl std::fmt::Display) -> Error {
    Error::State(format!("{}: {msg}", dir.display()))
}

/// Reads the bundle in `dir`.
pub fn read(dir: &Path) -> Result<Bundle> {
    #[derive(Deserialize)]
    struct Doc {
        plan: Option<RunPlan>,
        #[serde(default)]
        rerun_command: String,
        #[serde(default)]
        run_errors: Vec<String>,
        #[serde(default)]
        runs: Vec<serde_json::Value>,
        #[serde(default)]
        environment: serde_json::Value,
    }
    #[derive(Deserialize)]
    struct RunPart {
        seed: Option<u64>,
        verdicts: Vec<Verdict>,
    }
    let p = dir.join("report.json");
    let text =
        std::fs::read_to_string(&p).map_err(|e| bad(dir, format!("no bundle here ({e})")))?;
    let doc: Doc = serde_json::from_str(&text)
        .map_err(|e| bad(dir, format!("report.json is not a report: {e}")))?;
    let plan = doc.plan.ok_or_else(|| {
        bad(
            dir,
            "the bundle has no plan (made before shards existed?): re-run it with `cargo xtask repro`",
        )
    })?;
    let mut verdicts = Vec::new();
    for r in &doc.runs {
        let part: RunPart = serde_json::from_value(r.clone())
            .map_err(|e| bad(dir, format!("a run in report.json is unreadable: {e}")))?;
        let seed = part
            .seed
            .ok_or_else(|| bad(dir, "a run has no seed: only repro bundles can be merged"))?;
        verdicts.push((seed, part.verdicts));
    }
    Ok(Bundle {
        dir: dir.to_path_buf(),
        plan,
        rerun_command: doc.rerun_command,
        run_errors: doc.run_errors,
        runs: doc.runs,
        verdicts,
        environment: doc.environment,
    })
}

/// Checks that `bundles` are shards of one plan and joins them.
pub fn merge(mut bundles: Vec<Bundle>) -> Result<Merged> {
    let Some(first) = bundles.first().cloned() else {
        return Err(Error::State(
            "report merge: name at least one bundle folder".into(),
        ));
    };
    let p0 = &first.plan;
    let mut seen_shards = Vec::new();
    let mut seen_seeds: Vec<(u64, PathBuf)> = Vec::new();
    for b in &bundles {
        let p = &b.plan;
        if p.scenario_digest != p0.scenario_digest {
            return Err(bad(
                &b.dir,
                format!(
                    "a shard of scenario `{}` (digest {}), not of `{}` (digest {}) as {} is: \
                     shards merge only when made from the same scenario file",
                    p.scenario,
                    p.scenario_digest,
                    p0.scenario,
                    p0.scenario_digest,
                    first.dir.display()
                ),
            ));
        }
        if p.image != p0.image {
            return Err(bad(
                &b.dir,
                format!(
                    "ran on {}, {} on {}",
                    p.image,
                    first.dir.display(),
                    p0.image
                ),
            ));
        }
        if p.repeat != p0.repeat || p.shard.map(|s| s.1) != p0.shard.map(|s| s.1) {
            return Err(bad(
                &b.dir,
                format!(
                    "belongs to another plan ({} runs{}), not {} runs{} as {}",
                    p.repeat,
                    shard_text(p.shard),
                    p0.repeat,
                    shard_text(p0.shard),
                    first.dir.display()
                ),
            ));
        }
        if let Some(s) = p.shard {
            if seen_shards.contains(&s.0) {
                return Err(bad(&b.dir, format!("shard {}/{} is given twice", s.0, s.1)));
            }
            seen_shards.push(s.0);
        }
        for (seed, _) in &b.verdicts {
            if let Some((_, other)) = seen_seeds.iter().find(|(s, _)| s == seed) {
                return Err(bad(
                    &b.dir,
                    format!("seed {seed} is also in {}", other.display()),
                ));
            }
            seen_seeds.push((*seed, b.dir.clone()));
        }
    }
    bundles.sort_by_key(|b| b.plan.shard.map_or(0, |s| s.0));
    let mut all: Vec<(u64, &[Verdict])> = bundles
        .iter()
        .flat_map(|b| b.verdicts.iter().map(|(s, v)| (*s, v.as_slice())))
        .collect();
    all.sort_by_key(|(s, _)| *s);
    let rates = rates_of(all.iter().map(|(_, v)| *v));
    let have: Vec<u64> = all.iter().map(|(s, _)| *s).collect();
    let missing = (1..=u64::from(p0.repeat))
        .filter(|s| !have.contains(s))
        .collect();
    let plan = RunPlan {
        shard: None,
        seeds: have,
        jobs: bundles.iter().map(|b| b.plan.jobs).max().unwrap_or(1),
        ..p0.clone()
    };
    Ok(Merged {
        plan,
        shards: bundles,
        rates,
        missing,
    })
}

fn shard_text(s: Option<(u32, u32)>) -> String {
    s.map_or(String::new(), |(i, n)| format!(", shard {i}/{n}"))
}

/// Writes the merged bundle into `out`: report.json (every run), report.md
/// (the rates, one row per run, the shards) and each run's folder.
pub fn write(out: &Path, m: &Merged) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut runs: Vec<&serde_json::Value> = m.shards.iter().flat_map(|b| &b.runs).collect();
    runs.sort_by_key(|r| r.get("seed").and_then(serde_json::Value::as_u64));
    let run_errors: Vec<String> = m
        .shards
        .iter()
        .flat_map(|b| {
            b.run_errors
                .iter()
                .map(|e| format!("{}: {e}", b.dir.display()))
        })
        .collect();
    let passed = run_errors.is_empty() && m.rates.iter().all(|r| r.failed == 0);
    let json = serde_json::json!({
        "scenario": m.plan.scenario,
        "passed": passed,
        "rates": m.rates,
        "run_errors": run_errors,
        "environment": m.shards.first().map(|b| b.environment.clone()),
        "rerun_command": m.shards.iter().map(|b| b.rerun_command.clone()).collect::<Vec<_>>().join(" && "),
        "plan": m.plan,
        "merged_from": m.shards.iter().map(|b| b.dir.display().to_string()).collect::<Vec<_>>(),
        "runs": runs,
    });
    let p = out.join("report.json");
    let text = serde_json::to_string_pretty(&json).expect("a report serialises");
    std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
    for b in &m.shards {
        for (seed, _) in &b.verdicts {
            let from = b.dir.join(format!("run-{seed}"));
            if from.is_dir() {
                copy_dir(&from, &out.join(format!("run-{seed}")))?;
            }
        }
    }
    let md = out.join("report.md");
    std::fs::write(&md, render(m, &run_errors)).map_err(|e| Error::io(&md, e))?;
    Ok(md)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for e in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let e = e.map_err(|e| Error::io(from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| Error::io(&src, e))?;
        }
    }
    Ok(())
}

/// The merged report.md (pure).
pub fn render(m: &Merged, run_errors: &[String]) -> String {
    let mut s = String::new();
    let runs: usize = m.shards.iter().map(|b| b.verdicts.len()).sum();
    let failed_runs: usize = m
        .shards
        .iter()
        .flat_map(|b| &b.verdicts)
        .filter(|(_, v)| v.iter().any(|v| !v.pass))
        .count();
    let verdict = if failed_runs == 0 && run_errors.is_empty() {
        "PASS"
    } else {
        "FAIL"
    };
    let _ = writeln!(s, "# Scenario `{}`: {verdict}\n", m.plan.scenario);
    let _ = writeln!(
        s,
        "Merged from {} bundle(s) on {}: {runs} of {} planned runs, image `{}`, scenario digest `{}`, merged {}.\n",
        m.shards.len(),
        m.plan.image,
        m.plan.repeat,
        m.plan.image,
        m.plan.scenario_digest,
        utc_iso(std::time::SystemTime::now())
    );
    if !m.missing.is_empty() {
        let _ = writeln!(
            s,
            "**Missing seeds** (no bundle holds them): {}\n",
            m.missing
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        s,
        "**{failed_runs} of {runs} runs broke an expectation.**\n"
    );
    s += "| expectation | failed in | measured over the runs |\n|---|---|---|\n";
    for r in &m.rates {
        let _ = writeln!(
            s,
            "| `{}` | {}/{} | {} |",
            r.expectation,
            r.failed,
            r.runs,
            super::markdown::measured_range(&r.measured)
        );
    }
    s += "\n| shard | bundle | seeds | failed runs |\n|---|---|---|---|\n";
    for b in &m.shards {
        let failed = b
            .verdicts
            .iter()
            .filter(|(_, v)| v.iter().any(|v| !v.pass))
            .count();
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {failed}/{} |",
            b.plan
                .shard
                .map_or("all".into(), |(i, n)| format!("{i}/{n}")),
            b.dir.display(),
            b.verdicts
                .iter()
                .map(|(x, _)| x.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            b.verdicts.len()
        );
    }
    s += "\n| seed | result | failed expectations |\n|---|---|---|\n";
    let mut rows: Vec<&(u64, Vec<Verdict>)> = m.shards.iter().flat_map(|b| &b.verdicts).collect();
    rows.sort_by_key(|(x, _)| *x);
    for (seed, v) in rows {
        let failed: Vec<String> = v
            .iter()
            .filter(|v| !v.pass)
            .map(|v| format!("`{}`", v.expectation))
            .collect();
        let res = if failed.is_empty() { "PASS" } else { "FAIL" };
        let _ = writeln!(s, "| {seed} | {res} | {} |", failed.join(", "));
    }
    for e in run_errors {
        let _ = writeln!(s, "\nRun error: `{}`", e.replace('`', "'"));
    }
    let _ = writeln!(
        s,
        "\nEach run's picture, timeline, history, configs and logs are in `run-<seed>/`; \
         the details of each shard's first failing run are in its own `report.md`."
    );
    s
}
