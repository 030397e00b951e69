//! `cargo xtask repro FILE [--repeat N] [--image IMG] [--keep-going]`: runs a
//! scenario N times, each on a fresh testbed, prints the verdicts and the
//! failure rate per expectation, and writes the report bundle under
//! `target/testbed/reports/<scenario>-<UTC time>/`.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::SystemTime;
use testbed::net::Subnet;
use testbed::report;
use testbed::repro::{RunOptions, RunResult};
use testbed::scenario::Scenario;
use testbed::UpOptions;

use crate::flags::ReproArgs;
use crate::paths::{from_root, resolve};

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
    testbed::doctor::ensure_ready(true, state_root).await?;
    let docker = testbed::docker::connect().await?;
    let opts = RunOptions {
        testbed_name: testbed_name(&scenario.name),
        subnet: Subnet::test_slot(args.slot),
        image: image.clone(),
        up: UpOptions::default(),
        seed: None,
    };
    let rerun = rerun_command(file, &path, repeat, image.as_deref(), keep_going);
    let started = SystemTime::now();

    let mut runs: Vec<RunResult> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for i in 1..=repeat {
        println!(
            "run {i}/{repeat}: {} on testbed {}",
            scenario.name, opts.testbed_name
        );
        match testbed::repro::run(&scenario, &opts).await {
            Ok(r) => {
                print!("{}", render_run(&r));
                runs.push(r);
            }
            // Ctrl-C: the run removed its testbed; stop here, status 130
            Err(e @ testbed::Error::Interrupted { .. }) => return Err(e.into()),
            Err(e) => {
                println!("  ERROR  the run did not complete: {e}");
                errors.push(format!("run {i}: {e}"));
                if !keep_going {
                    break;
                }
            }
        }
    }

    let Some(first) = runs.first() else {
        bail!("no run completed: {}", errors.join("; "));
    };
    if repeat > 1 {
        println!();
        for r in report::rates(&runs) {
            println!("{}", r.line());
        }
    }
    let env = report::environment(&docker, first).await;
    let dir = state_root.join("reports").join(format!(
        "{}-{}",
        report::safe_name(&scenario.name),
        report::utc_compact(started)
    ));
    let md = report::write_bundle_with_errors(&dir, &runs, &errors, &env, &rerun)
        .with_context(|| format!("writing the report to {}", dir.display()))?;
    println!("\nreport: {}", md.display());

    let failed = runs.iter().filter(|r| !r.passed()).count();
    let attempted = runs.len() + errors.len();
    if failed > 0 || !errors.is_empty() {
        let mut msg = format!("FAIL: {failed} of {attempted} runs broke an expectation");
        if !errors.is_empty() {
            msg += &format!("; {} did not complete: {}", errors.len(), errors.join("; "));
        }
        if attempted < repeat as usize {
            msg += &format!(" (stopped after run {attempted} of {repeat}; --keep-going goes on)");
        }
        bail!(msg);
    }
    println!("PASS: every expectation held in {} run(s)", runs.len());
    Ok(())
}

/// The verdict lines of one run and a one-line summary.
fn render_run(r: &RunResult) -> String {
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

/// `rp-<scenario>`, a valid testbed name of at most 24 characters.
fn testbed_name(scenario: &str) -> String {
    let mut n = String::from("rp-");
    for c in scenario.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && n.ends_with('-')) {
            n.push(c);
        }
    }
    n.truncate(24);
    n.trim_end_matches('-').to_string()
}

/// The command that re-runs this, with the file relative to the workspace
/// root when it lies inside it.
fn rerun_command(
    given: &Path,
    resolved: &Path,
    repeat: u32,
    image: Option<&str>,
    keep_going: bool,
) -> String {
    let file = from_root(given, resolved);
    let mut c = format!("cargo xtask repro {}", file.display());
    if repeat > 1 {
        c += &format!(" --repeat {repeat}");
    }
    if let Some(i) = image {
        c += &format!(" --image {i}");
    }
    if keep_going {
        c += " --keep-going";
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testbed_names_are_valid_and_short() {
        assert_eq!(testbed_name("kill-master"), "rp-kill-master");
        assert_eq!(
            testbed_name("isolated-master-keeps-vip"),
            "rp-isolated-master-keeps"
        );
        assert_eq!(testbed_name("Split Brain_2"), "rp-split-brain-2");
        assert_eq!(
            testbed_name("abcdefghijklmnopqrstu-xyz"),
            "rp-abcdefghijklmnopqrstu"
        );
    }

    #[test]
    fn the_rerun_command_is_relative_to_the_workspace() {
        let f = Path::new("fixtures/scenarios/kill-master.toml");
        let c = rerun_command(f, &resolve(f), 20, Some("testbed/valkey:8.1"), false);
        assert_eq!(c, "cargo xtask repro fixtures/scenarios/kill-master.toml --repeat 20 --image testbed/valkey:8.1");
    }
}
