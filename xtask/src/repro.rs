//! `cargo xtask repro FILE [--repeat N] [--jobs K] [--shard I/N] [--image IMG]
//! [--keep-going] [--slot S]`: runs a scenario N times (seeds 1..=N), each on
//! a fresh testbed, K at once; prints the verdicts and the failure rate per
//! expectation, and writes the report bundle under
//! `target/testbed/reports/<scenario>-<UTC time>/` (`…-shard<I>of<N>/` for a
//! shard). A run's seed is its number in the plan: it decides the offset
//! of the first fault in Sentinel's cycle, so a shard's runs are the same
//! runs wherever the shard runs, and `report merge` joins the shards.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use testbed::report::{self, RunPlan};
use testbed::repro::RunResult;
use testbed::scenario::Scenario;

use crate::flags::ReproArgs;
use crate::paths::{from_root, resolve};
use crate::pool::{self, Job, Layout};

pub async fn run(args: &ReproArgs, state_root: &Path) -> Result<()> {
    let (file, repeat, image, keep_going) =
        (&args.file, args.repeat, args.image.clone(), args.keep_going);
    let path = resolve(file);
    anyhow::ensure!(
        path.is_file(),
        "{}: no such scenario file (a relative path is tried from here and from the workspace root)",
        file.display()
    );
    // Errors name file:line:col.
    let scenario = Scenario::from_file(&path)?;
    let seeds = match args.shard {
        Some((i, n)) => pool::shard_seeds(repeat, i, n),
        None => (1..=u64::from(repeat)).collect(),
    };
    if seeds.is_empty() {
        let (i, n) = args.shard.unwrap_or((1, 1));
        bail!(
            "--shard {i}/{n} with --repeat {repeat}: this shard has no run (shard I runs seeds I, I+N, ...); give --repeat {n} or more"
        );
    }
    let jobs = (args.jobs as usize).min(seeds.len());
    let layout = Layout {
        prefix: "rp".into(),
        first_slot: args.slot.unwrap_or(if args.jobs > 1 { 240 } else { 200 }),
        workers: jobs,
    };
    layout.check()?;
    testbed::doctor::ensure_ready(true, state_root).await?;
    let docker = testbed::docker::connect().await?;
    let rerun = rerun_command(file, &path, args);
    let started = SystemTime::now();
    let total = seeds.len();
    let plan = RunPlan {
        scenario: scenario.name.clone(),
        scenario_digest: report::digest(&scenario.text),
        image: image
            .clone()
            .unwrap_or_else(|| scenario.topology.image.clone()),
        repeat,
        shard: args.shard,
        seeds: seeds.clone(),
        jobs,
    };
    let queue: Vec<Job> = seeds
        .iter()
        .map(|&seed| Job {
            scenario: 0,
            image: image.clone(),
            seed,
        })
        .collect();
    if jobs > 1 {
        println!(
            "{total} run(s) of {}, {jobs} at once (testbeds {}..{}, slots {}-{})",
            scenario.name,
            layout.name(0, &scenario.name),
            layout.name(jobs - 1, &scenario.name),
            layout.first_slot,
            usize::from(layout.first_slot) + jobs - 1
        );
    }
    let printed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let name = scenario.name.clone();
    let done = pool::run(
        Arc::new(vec![scenario.clone()]),
        queue,
        &layout,
        !keep_going,
        move |d| {
            let k = printed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let mut out = format!(
                "run {k}/{total} (seed {}): {name} on testbed {}\n",
                d.job.seed, d.testbed
            );
            match &d.result {
                Ok(r) => out += &render_run(r),
                Err(e) => out += &format!("  ERROR  the run did not complete: {e}\n"),
            }
            print!("{out}");
        },
    )
    .await?;

    let mut runs: Vec<RunResult> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut done = done;
    done.sort_by_key(|d| d.job.seed);
    for d in done {
        match d.result {
            Ok(r) => runs.push(r),
            Err(e) => errors.push(format!("run with seed {}: {e}", d.job.seed)),
        }
    }
    let Some(first) = runs.first() else {
        bail!("no run completed: {}", errors.join("; "));
    };
    if total > 1 {
        println!();
        for r in report::rates(&runs) {
            println!("{}", r.line());
        }
    }
    let env = report::environment(&docker, first).await;
    let mut folder = format!(
        "{}-{}",
        report::safe_name(&scenario.name),
        report::utc_compact(started)
    );
    if let Some((i, n)) = args.shard {
        folder += &format!("-shard{i}of{n}");
    }
    let dir = state_root.join("reports").join(folder);
    let md = report::write_bundle_planned(&dir, &runs, &errors, &env, &rerun, Some(&plan))
        .with_context(|| format!("writing the report to {}", dir.display()))?;
    println!("\nreport: {}", md.display());

    let failed = runs.iter().filter(|r| !r.passed()).count();
    let attempted = runs.len() + errors.len();
    let server = env.server_version.as_deref().unwrap_or("this server");
    println!("outcome: {}", report::outcome(runs.len(), failed, server));
    if failed > 0 || !errors.is_empty() {
        let mut msg = format!("FAIL: {failed} of {attempted} runs broke an expectation");
        if !errors.is_empty() {
            msg += &format!("; {} did not complete: {}", errors.len(), errors.join("; "));
        }
        if attempted < total {
            msg += &format!(" (stopped after {attempted} of {total} runs; --keep-going goes on)");
        }
        bail!(msg);
    }
    println!("PASS: every expectation held in {} run(s)", runs.len());
    Ok(())
}

/// The verdict lines of one run and a one-line summary.
pub fn render_run(r: &RunResult) -> String {
    let mut s = String::new();
    for v in &r.verdicts {
        let mark = if v.pass { "PASS" } else { "FAIL" };
        s += &format!("  {mark}  {}  (measured {})\n", v.expectation, v.measured);
    }
    for e in &r.step_errors {
        s += &format!("  STEP ERROR  {e}\n");
    }
    let m = &r.measurements;
    let promoted = m.promoted_ms.map_or("no promotion".into(), |v| {
        format!("promoted after {v:.0} ms")
    });
    s += &format!(
        "  => {}: {promoted}, {} failover(s), {} -> {}, {} lost acknowledged write(s), {} refused\n",
        if r.passed() { "PASS" } else { "FAIL" },
        m.failovers,
        m.old_master,
        m.final_master.as_deref().unwrap_or("?"),
        m.lost_acknowledged_writes,
        m.refused_writes
    );
    s
}

/// The command that re-runs this, with the file relative to the workspace
/// root when it lies inside it.
fn rerun_command(given: &Path, resolved: &Path, a: &ReproArgs) -> String {
    let file = from_root(given, resolved);
    let mut c = format!("cargo xtask repro {}", file.display());
    if a.repeat > 1 {
        c += &format!(" --repeat {}", a.repeat);
    }
    if a.jobs > 1 {
        c += &format!(" --jobs {}", a.jobs);
    }
    if let Some((i, n)) = a.shard {
        c += &format!(" --shard {i}/{n}");
    }
    if let Some(i) = &a.image {
        c += &format!(" --image {i}");
    }
    if a.keep_going {
        c += " --keep-going";
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_rerun_command_is_relative_to_the_workspace() {
        let f = Path::new("fixtures/scenarios/kill-master.toml");
        let a = ReproArgs {
            file: PathBuf::from(f),
            repeat: 20,
            image: Some("testbed/valkey:8.1".into()),
            keep_going: false,
            slot: None,
            jobs: 4,
            shard: Some((2, 3)),
        };
        let c = rerun_command(f, &resolve(f), &a);
        assert_eq!(c, "cargo xtask repro fixtures/scenarios/kill-master.toml --repeat 20 --jobs 4 --shard 2/3 --image testbed/valkey:8.1");
    }
}
