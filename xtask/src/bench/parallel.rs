//! The parallel section of the bench: runs per minute of
//! `fixtures/scenarios/kill-master.toml` with K = 1, 2 and 4 testbeds at
//! once (the pool of `repro --jobs`, slots 250-253: the top of the job
//! slots, clear of a `matrix` or `repro --jobs` up to 10), with the host's
//! CPU use over each batch and which expectations failed — more testbeds at
//! once must not change what a run measures.

use anyhow::Result;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use testbed::scenario::Scenario;

use crate::pool::{self, Job, Layout};

/// The first of the 4 slots the section uses.
const FIRST_SLOT: u8 = 250;

/// One batch: `runs` runs, `jobs` at once.
#[derive(Debug, Clone, Serialize)]
pub struct ParallelSample {
    pub jobs: usize,
    pub runs: usize,
    /// Runs in which every expectation held.
    pub passed: usize,
    /// Runs that did not complete.
    pub errors: usize,
    pub wall_s: f64,
    pub runs_per_min: f64,
    /// Each run's duration (bring-up to removal), seconds.
    pub run_s: Vec<f64>,
    /// Share of the host's CPU time that was busy over the batch (all CPUs).
    pub cpu_busy_pct: f64,
    /// /proc/loadavg before and after (the machine is shared).
    pub load_before: String,
    pub load_after: String,
    /// Expectation -> in how many runs it failed.
    pub failed: std::collections::BTreeMap<String, usize>,
}

/// The jobs to measure and the runs of each batch: 2 (`quick`) or 4 runs
/// per job, so every batch keeps its testbeds busy for about as long.
pub fn batches(quick: bool) -> Vec<(usize, usize)> {
    let per_job = if quick { 2 } else { 4 };
    [1usize, 2, 4].iter().map(|&k| (k, k * per_job)).collect()
}

pub async fn measure(quick: bool, on_line: impl Fn(String)) -> Result<Vec<ParallelSample>> {
    let path = crate::paths::root().join("fixtures/scenarios/kill-master.toml");
    let scenario = Arc::new(vec![Scenario::from_file(&path)?]);
    let mut out = Vec::new();
    for (jobs, runs) in batches(quick) {
        let layout = Layout {
            prefix: "bp".into(),
            first_slot: FIRST_SLOT,
            workers: jobs,
        };
        let queue: Vec<Job> = (1..=runs as u64)
            .map(|seed| Job {
                scenario: 0,
                image: None,
                seed,
            })
            .collect();
        let load_before = loadavg();
        let cpu0 = cpu_ticks();
        let t0 = Instant::now();
        let done = pool::run(scenario.clone(), queue, &layout, false, |_| {}).await?;
        let wall_s = t0.elapsed().as_secs_f64();
        let cpu_busy_pct = match (cpu0, cpu_ticks()) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                100.0 * (b1 - b0) as f64 / (t1 - t0) as f64
            }
            _ => f64::NAN,
        };
        let mut failed = std::collections::BTreeMap::new();
        for d in &done {
            if let Ok(r) = &d.result {
                for v in r.verdicts.iter().filter(|v| !v.pass) {
                    *failed.entry(v.expectation.clone()).or_insert(0) += 1;
                }
            }
        }
        let s = ParallelSample {
            failed,
            jobs,
            runs,
            passed: done
                .iter()
                .filter(|d| d.result.as_ref().is_ok_and(|r| r.passed()))
                .count(),
            errors: done.iter().filter(|d| d.result.is_err()).count(),
            wall_s,
            runs_per_min: runs as f64 * 60.0 / wall_s,
            run_s: done.iter().map(|d| d.elapsed_s).collect(),
            cpu_busy_pct,
            load_before,
            load_after: loadavg(),
        };
        on_line(line(&s));
        out.push(s);
    }
    Ok(out)
}

pub fn line(s: &ParallelSample) -> String {
    format!(
        "K={}: {} runs in {:.0} s = {:.2} runs/min ({} passed, {} errors; failed: {:?}), CPU {:.0}% busy, load {} -> {}",
        s.jobs, s.runs, s.wall_s, s.runs_per_min, s.passed, s.errors, s.failed, s.cpu_busy_pct, s.load_before, s.load_after
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// (busy, total) jiffies of all CPUs, from /proc/stat.
fn cpu_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let first = text.lines().next()?;
    let v: Vec<u64> = first
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

/// The markdown section.
pub fn markdown(samples: &[ParallelSample]) -> String {
    if samples.is_empty() {
        return String::new();
    }
    let base = samples.iter().find(|s| s.jobs == 1).map(|s| s.runs_per_min);
    let mut m = String::from(
        "## Parallel repeats (`repro --jobs K`, kill-master)\n\n\
         | K | runs | wall | runs/min | × K=1 | median run | CPU busy | load before → after | passed | failed expectations |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in samples {
        let mut r = s.run_s.clone();
        r.sort_by(f64::total_cmp);
        let med = r.get(r.len() / 2).copied().unwrap_or(f64::NAN);
        let speed = base.map_or("-".into(), |b| format!("{:.2}", s.runs_per_min / b));
        let failed: Vec<String> = s
            .failed
            .iter()
            .map(|(e, n)| format!("`{e}` {n}×"))
            .collect();
        m += &format!(
            "| {} | {} | {:.0} s | {:.2} | {speed} | {med:.0} s | {:.0}% | {} → {} | {}/{} | {} |\n",
            s.jobs, s.runs, s.wall_s, s.runs_per_min, s.cpu_busy_pct, s.load_before, s.load_after, s.passed, s.runs,
            if failed.is_empty() { "-".to_string() } else { failed.join(", ") }
        );
    }
    m.push('\n');
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_one_two_and_four_jobs() {
        let b = batches(true);
        assert_eq!(b.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2, 4]);
        assert!(b.iter().all(|(k, n)| n >= k));
        let s = ParallelSample {
            jobs: 2,
            runs: 4,
            passed: 4,
            errors: 0,
            wall_s: 60.0,
            runs_per_min: 4.0,
            run_s: vec![20.0, 22.0, 25.0, 30.0],
            cpu_busy_pct: 80.0,
            load_before: "1.0".into(),
            load_after: "2.0".into(),
            failed: [("failovers = 1".to_string(), 1)].into(),
        };
        let one = ParallelSample {
            jobs: 1,
            runs_per_min: 2.0,
            ..s.clone()
        };
        let md = markdown(&[one, s]);
        assert!(
            md.contains("| 2 | 4 | 60 s | 4.00 | 2.00 | 25 s | 80% |"),
            "{md}"
        );
        assert!(md.contains("| `failovers = 1` 1× |"), "{md}");
    }
}
