//! `cargo xtask matrix [SCENARIO...] [--image IMG...] [--repeat N] [--jobs K]
//! [--doc FILE]`: every scenario on every image, N runs per cell, K testbeds
//! at once (one queue for all cells). Writes `target/testbed/matrix/<UTC>/`:
//! one repro bundle per cell (`<scenario>/<image>/`), `matrix.json` and
//! `matrix.md` — per cell the rate at which the scenario's claim held (every
//! expectation passed), the median of its key measure and a link to the
//! bundle. `--doc` also writes the table for committing (links to the
//! scenario files).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use testbed::report::{self, RunPlan};
use testbed::repro::RunResult;
use testbed::scenario::Scenario;

use crate::flags::MatrixArgs;
use crate::paths::{resolve, root};
use crate::pool::{self, Job, Layout};

/// One scenario × image cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub scenario: String,
    pub image: String,
    pub server: String,
    pub runs: usize,
    /// Runs in which every expectation held.
    pub held: usize,
    /// Runs that did not complete.
    pub errors: Vec<String>,
    pub key_measure: Option<String>,
    /// The key measure's value in each run, as measured.
    pub key_values: Vec<String>,
    /// Their median (numbers) or most common value (else).
    pub key_summary: Option<String>,
    /// The cell's bundle, relative to the matrix folder.
    pub bundle: String,
}

impl Cell {
    pub fn word(&self) -> &'static str {
        match (self.held, self.runs) {
            (_, 0) => "no run",
            (h, r) if h == r && self.errors.is_empty() => "reproduced",
            (0, _) => "not reproduced",
            _ => "partly",
        }
    }
}

/// The whole matrix (`matrix.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Matrix {
    pub date_utc: String,
    pub command: String,
    pub environment: MatrixEnv,
    pub repeat: u32,
    pub jobs: usize,
    pub minutes: f64,
    pub images: Vec<(String, String)>,
    pub scenarios: Vec<ScenarioRow>,
    pub cells: Vec<Cell>,
    /// Catalog images left out because they are not built here.
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioRow {
    pub name: String,
    pub file: String,
    pub description: String,
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct MatrixEnv {
    pub docker: String,
    pub kernel: String,
    pub os: String,
    pub testbed: String,
    pub cpus: usize,
    /// /proc/loadavg at the start and at the end (the machine is shared).
    pub load_start: String,
    pub load_end: String,
}

pub async fn run(args: &MatrixArgs, state_root: &Path) -> Result<()> {
    if !args.join.is_empty() {
        return crate::matrix_join::run(&args.join, args.doc.as_deref(), state_root);
    }
    let files = scenario_files(&args.scenarios)?;
    let mut scenarios = Vec::new();
    for f in &files {
        scenarios.push(Scenario::from_file(f)?);
    }
    testbed::doctor::ensure_ready(true, state_root).await?;
    let docker = testbed::docker::connect().await?;
    let (images, left_out) = images(&docker, &args.images).await?;
    let layout = Layout {
        prefix: "mx".into(),
        first_slot: *pool::JOB_SLOTS.start(),
        workers: args.jobs as usize,
    };
    layout.check()?;
    let started = SystemTime::now();
    let t0 = std::time::Instant::now();
    let load_start = loadavg();
    let mut queue = Vec::new();
    // seeds vary fastest, so every cell has its first run early
    for seed in 1..=u64::from(args.repeat) {
        for (i, _) in scenarios.iter().enumerate() {
            for img in &images {
                queue.push(Job {
                    scenario: i,
                    image: Some(img.clone()),
                    seed,
                });
            }
        }
    }
    let total = queue.len();
    println!(
        "matrix: {} scenario(s) x {} image(s) x {} = {total} runs, {} at once",
        scenarios.len(),
        images.len(),
        args.repeat,
        layout.workers
    );
    if !left_out.is_empty() {
        println!("left out (not built here): {}", left_out.join(", "));
    }
    let shared = Arc::new(scenarios.clone());
    let names: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = pool::run(shared, queue, &layout, false, move |d| {
        let k = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let img = d.job.image.as_deref().unwrap_or("?");
        let what = match &d.result {
            Ok(r) if r.passed() => "claim held".to_string(),
            Ok(r) => format!(
                "claim did not hold: {}",
                r.verdicts
                    .iter()
                    .filter(|v| !v.pass)
                    .map(|v| format!("{} (measured {})", v.expectation, v.measured))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Err(e) => format!("did not complete: {e}"),
        };
        println!(
            "[{k}/{total}] {} on {img} (seed {}): {what}",
            names[d.job.scenario], d.job.seed
        );
    })
    .await?;
    let dir = state_root.join("matrix").join(report::utc_compact(started));
    let mut cells = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        for img in &images {
            let mut runs: Vec<RunResult> = Vec::new();
            let mut errors = Vec::new();
            let mut mine: Vec<&pool::Done> = done
                .iter()
                .filter(|d| d.job.scenario == i && d.job.image.as_deref() == Some(img))
                .collect();
            mine.sort_by_key(|d| d.job.seed);
            for d in mine {
                match &d.result {
                    Ok(r) => runs.push(r.clone()),
                    Err(e) => errors.push(format!("run with seed {}: {e}", d.job.seed)),
                }
            }
            let rel = format!("{}/{}", report::safe_name(&s.name), report::safe_name(img));
            let mut server = img.clone();
            if let Some(first) = runs.first() {
                let env = report::environment(&docker, first).await;
                server = env.server_version.clone().unwrap_or(server);
                let plan = RunPlan {
                    scenario: s.name.clone(),
                    scenario_digest: report::digest(&s.text),
                    image: img.clone(),
                    repeat: args.repeat,
                    shard: None,
                    seeds: (1..=u64::from(args.repeat)).collect(),
                    jobs: layout.workers,
                };
                let rerun = format!(
                    "cargo xtask repro {} --image {img} --repeat {}",
                    relative(&files[i]),
                    args.repeat
                );
                report::write_bundle_planned(
                    &dir.join(&rel),
                    &runs,
                    &errors,
                    &env,
                    &rerun,
                    Some(&plan),
                )
                .with_context(|| format!("writing the bundle of {rel}"))?;
            }
            cells.push(cell(s, img, &server, &runs, errors, rel));
        }
    }
    let mut image_rows = Vec::new();
    for img in &images {
        let server = cells
            .iter()
            .find(|c| &c.image == img && c.server != *img)
            .map_or(img.clone(), |c| c.server.clone());
        image_rows.push((img.clone(), server));
    }
    let environment = matrix_env(&docker, load_start).await;
    let m = Matrix {
        date_utc: report::utc_iso(started),
        command: command(args),
        environment,
        repeat: args.repeat,
        jobs: layout.workers,
        minutes: t0.elapsed().as_secs_f64() / 60.0,
        images: image_rows,
        scenarios: scenarios
            .iter()
            .zip(&files)
            .map(|(s, f)| ScenarioRow {
                name: s.name.clone(),
                file: relative(f),
                description: s.description.clone(),
                sources: s.sources.iter().map(|x| x.text()).collect(),
            })
            .collect(),
        cells,
        left_out,
    };
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("matrix.json"), serde_json::to_string_pretty(&m)?)?;
    std::fs::write(dir.join("matrix.md"), crate::matrix_md::render(&m, false))?;
    println!("\nmatrix: {}", dir.join("matrix.md").display());
    if let Some(doc) = &args.doc {
        write_doc(doc, &m)?;
    }
    Ok(())
}

/// Writes `m` as the committed document `doc` (relative: from the workspace root).
pub fn write_doc(doc: &Path, m: &Matrix) -> Result<()> {
    let doc = if doc.is_relative() {
        root().join(doc)
    } else {
        doc.to_path_buf()
    };
    if let Some(d) = doc.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&doc, crate::matrix_md::render(m, true))?;
    println!("document: {}", doc.display());
    Ok(())
}

fn cell(
    s: &Scenario,
    img: &str,
    server: &str,
    runs: &[RunResult],
    errors: Vec<String>,
    bundle: String,
) -> Cell {
    let key = s.key_measure.clone();
    let key_values: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let k = key.as_deref()?;
            let e = s.expect.iter().find(|e| {
                let p = if e.external {
                    format!("external.{}", e.path())
                } else {
                    e.path()
                };
                p == k
            })?;
            r.verdicts
                .iter()
                .find(|v| v.expectation == e.source)
                .map(|v| v.measured.clone())
        })
        .collect();
    Cell {
        scenario: s.name.clone(),
        image: img.to_string(),
        server: server.to_string(),
        runs: runs.len(),
        held: runs.iter().filter(|r| r.passed()).count(),
        errors,
        key_measure: key,
        key_summary: summary(&key_values),
        key_values,
        bundle,
    }
}

/// The median of numeric values, else the most common value.
pub fn summary(values: &[String]) -> Option<String> {
    if values.is_empty() {
        return None;
    }
    let mut nums: Vec<f64> = values.iter().filter_map(|v| v.parse().ok()).collect();
    if nums.len() == values.len() {
        nums.sort_by(f64::total_cmp);
        let n = nums.len();
        let med = if n % 2 == 1 {
            nums[n / 2]
        } else {
            (nums[n / 2 - 1] + nums[n / 2]) / 2.0
        };
        return Some(format!("{med:.0}"));
    }
    let mut counts: Vec<(&String, usize)> = Vec::new();
    for v in values {
        match counts.iter_mut().find(|(x, _)| *x == v) {
            Some(c) => c.1 += 1,
            None => counts.push((v, 1)),
        }
    }
    counts.sort_by_key(|b| std::cmp::Reverse(b.1));
    counts.first().map(|(v, _)| (*v).clone())
}

fn scenario_files(given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        let mut out = Vec::new();
        for f in given {
            let p = resolve(f);
            if !p.is_file() {
                bail!("{}: no such scenario file", f.display());
            }
            out.push(p);
        }
        return Ok(out);
    }
    let dir = root().join("fixtures/scenarios");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    Ok(out)
}

/// The images to run: those given (built if missing), or every catalog
/// image already built here; and the catalog images left out.
async fn images(docker: &bollard::Docker, given: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    if !given.is_empty() {
        for img in given {
            testbed::image::ensure_image(docker, img, &testbed::testbed::default_state_root())
                .await
                .with_context(|| format!("--image {img}"))?;
        }
        return Ok((given.to_vec(), Vec::new()));
    }
    let (mut have, mut missing) = (Vec::new(), Vec::new());
    for spec in testbed::image::CATALOG {
        match testbed::image::inspect(docker, spec.name).await? {
            Some(_) => have.push(spec.name.to_string()),
            None => missing.push(spec.name.to_string()),
        }
    }
    if have.is_empty() {
        bail!("no offline image is built: run `cargo xtask image --all` (or name images with --image)");
    }
    Ok((have, missing))
}

fn relative(p: &Path) -> String {
    let r = root();
    p.strip_prefix(&r).unwrap_or(p).display().to_string()
}

fn command(a: &MatrixArgs) -> String {
    let mut c = "cargo xtask matrix".to_string();
    for s in &a.scenarios {
        c += &format!(" {}", s.display());
    }
    for i in &a.images {
        c += &format!(" --image {i}");
    }
    if a.repeat > 1 {
        c += &format!(" --repeat {}", a.repeat);
    }
    if a.jobs > 1 {
        c += &format!(" --jobs {}", a.jobs);
    }
    c
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn matrix_env(docker: &bollard::Docker, load_start: String) -> MatrixEnv {
    let mut e = MatrixEnv {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_start,
        load_end: loadavg(),
        ..Default::default()
    };
    if let Ok(v) = docker.version().await {
        e.docker = format!(
            "{} (API {})",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default()
        );
        e.kernel = v.kernel_version.unwrap_or_default();
    }
    if let Ok(i) = docker.info().await {
        e.os = i.operating_system.unwrap_or_default();
    }
    e.testbed = testbed::host::run_async(
        "git",
        &[
            "-C",
            &root().display().to_string(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    )
    .await
    .map(|s| s.trim().to_string())
    .unwrap_or_default();
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_value_is_a_median_or_the_most_common_one() {
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(summary(&v(&["3000", "1000", "2000"])).unwrap(), "2000");
        assert_eq!(summary(&v(&["1000", "2000"])).unwrap(), "1500");
        assert_eq!(summary(&v(&["node2", "node3", "node2"])).unwrap(), "node2");
        assert_eq!(summary(&[]), None);
    }
}
