//! `cargo xtask clients [SCENARIO...] [--client NAME...] [--repeat N]`: the
//! client matrix. Each scenario runs with every selected client writing at
//! the same time on one testbed per run (`cm-<scenario>`, slots 210-219 by
//! default); writes `target/testbed/clients/<UTC>/matrix.{md,json,svg}` and
//! each scenario's report bundle beside them.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use testbed::backend::client_image;
use testbed::model::clients::{self, ClientProgram};
use testbed::report;
use testbed::scenario::matrix::{self, MatrixOptions, MatrixRun};
use testbed::scenario::Scenario;

use crate::flags::ClientsArgs;
use crate::paths::{from_root, resolve, root};

/// The shipped matrix scenarios.
pub const DEFAULT_DIR: &str = "fixtures/scenarios/clients";

pub async fn run(args: &ClientsArgs, state_root: &Path) -> Result<()> {
    let selected = select(&args.client)?;
    let files = scenario_files(&args.scenarios)?;
    let scenarios: Vec<Scenario> = files
        .iter()
        .map(|f| Scenario::from_file(f).map_err(anyhow::Error::from))
        .collect::<Result<_>>()?;
    testbed::doctor::ensure_for("clients", true, state_root).await?;
    let docker = testbed::docker::connect().await?;
    let image = client_image::ensure(&docker, &root(), &client_image::cache_dir())
        .await
        .context("the client image (`cargo xtask doctor --fix` installs what its build needs)")?;
    let opts = MatrixOptions {
        clients: selected.clone(),
        repeat: args.repeat,
        first_slot: args.slot,
        rate: args.rate,
        timeout_ms: args.timeout_ms,
        image: args.image.clone(),
        ..Default::default()
    };
    let started = SystemTime::now();
    println!(
        "client matrix: {} scenario(s) × {} client(s) × {} run(s); testbeds cm-*, 198.18.{}-{}.0/24",
        scenarios.len(),
        selected.len(),
        args.repeat,
        args.slot,
        u16::from(args.slot) + 9
    );
    let runs = matrix::run(&scenarios, &opts, |m| {
        print!("{}", render_run(m, &selected))
    })
    .await?;
    let rows = matrix::rows(&runs, &selected, args.timeout_ms as f64);
    let summaries = matrix::summaries(&rows);
    let first = runs
        .iter()
        .find_map(|r| r.result.as_ref())
        .context("no run completed")?;
    let env = report::environment(&docker, first).await;
    let command = rerun_command(args, &files);
    let dir = state_root
        .join("clients")
        .join(report::utc_compact(started));
    let m = report::matrix::Matrix {
        runs: &runs,
        rows: &rows,
        summaries: &summaries,
        environment: &env,
        client_image: Some(&image),
        rate: args.rate,
        timeout_ms: args.timeout_ms,
        command: &command,
    };
    let md = report::matrix::write_matrix(&dir, &m)
        .with_context(|| format!("writing the matrix to {}", dir.display()))?;
    println!("\nmatrix: {}", md.display());
    let failed: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("{} run {}: {e}", r.scenario, r.run))
        })
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "{} run(s) did not complete: {}",
        failed.len(),
        failed.join("; ")
    );
    Ok(())
}

/// The selected clients (every one by default); an unknown name is an
/// error listing the known ones.
fn select(names: &[String]) -> Result<Vec<&'static ClientProgram>> {
    if names.is_empty() {
        return Ok(clients::CLIENTS.iter().collect());
    }
    let mut out: Vec<&'static ClientProgram> = Vec::new();
    for n in names
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.is_empty())
    {
        let c = clients::find(n).map_err(|m| anyhow::anyhow!("--client: {m}"))?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// The given files, or every `.toml` of [`DEFAULT_DIR`] in name order.
fn scenario_files(given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return given
            .iter()
            .map(|f| {
                let p = resolve(f);
                anyhow::ensure!(p.is_file(), "{}: no such scenario file", f.display());
                Ok(p)
            })
            .collect();
    }
    let dir = root().join(DEFAULT_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no scenario in {}", dir.display());
    Ok(files)
}

/// One line per client of a run.
fn render_run(m: &MatrixRun, clients: &[&ClientProgram]) -> String {
    let mut s = format!("{} run {} on {}:\n", m.scenario, m.run, m.testbed);
    if let Some(e) = &m.error {
        return s + &format!("  did not complete: {e}\n");
    }
    for r in matrix::rows(std::slice::from_ref(m), clients, 1000.0) {
        s += &format!(
            "  {:<26} {:>5} ack  {:>3} lost  {:>3} dup  {:>4} unknown  recovery {}\n",
            r.client,
            r.acknowledged,
            r.lost_acknowledged,
            r.duplicates,
            r.unknown,
            report::matrix::recovery_cell(&r)
        );
    }
    s
}

fn rerun_command(args: &ClientsArgs, files: &[PathBuf]) -> String {
    let mut c = String::from("cargo xtask clients");
    if !args.scenarios.is_empty() {
        for (g, f) in args.scenarios.iter().zip(files) {
            c += &format!(" {}", from_root(g, f).display());
        }
    }
    for n in &args.client {
        c += &format!(" --client {n}");
    }
    if args.repeat > 1 {
        c += &format!(" --repeat {}", args.repeat);
    }
    if args.slot != 210 {
        c += &format!(" --slot {}", args.slot);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_client_lists_the_known_ones() {
        let e = select(&["ioredis-sentinel,jedis".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`jedis`") && e.contains("fred-sentinel"), "{e}");
        let all = select(&[]).unwrap();
        assert_eq!(all.len(), clients::CLIENTS.len());
        let two = select(&["fred-sentinel".into(), "fred-sentinel,phpredis-vip".into()]).unwrap();
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn the_shipped_scenarios_are_found_and_parse() {
        let files = scenario_files(&[]).unwrap();
        assert!(files.len() >= 6, "{files:?}");
        for f in files {
            Scenario::from_file(&f).unwrap();
        }
    }
}
