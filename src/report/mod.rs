//! The bundle a scenario run leaves behind: `report.md` (ready to paste into
//! a GitHub issue), `report.json` (every run), and per run the history, the
//! timeline (JSON, text, SVG), INFO/ROLE snapshots, configs and logs.
//!
//! Invariant: rendering is pure (the markdown is a function of the runs, the
//! environment and the re-run command); only [`environment`] asks the host
//! and the engine, and only [`write_bundle`] writes files.

use crate::error::{Error, Result};
use crate::observe::timeline;
use crate::scenario::run::{RunResult, Verdict};
use bollard::Docker;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

mod markdown;
pub mod matrix;
pub mod merge;
pub mod svg;
pub use markdown::{outcome, render_markdown};

/// Where and with what a run happened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Environment {
    /// `Docker Engine` or `Podman Engine` (what `GET /version` says).
    pub engine: String,
    pub docker_version: String,
    /// The API version the testbed's requests carried (negotiated: the
    /// lower of the engine's newest and bollard's).
    pub docker_api: String,
    /// The engine's newest API version.
    pub docker_api_max: String,
    /// `DOCKER_HOST`, or the default socket.
    pub docker_host: String,
    /// The Compose program this host runs projects with
    /// (`docker-compose 1.29.2 (v1, Python)`), or `none (why)`.
    pub compose: String,
    pub kernel: String,
    pub os: String,
    /// Crate version and, when known, the git commit (`+dirty` with
    /// uncommitted changes).
    pub testbed_version: String,
    pub image_name: String,
    pub image_id: String,
    /// The image's labels (the offline images carry their package versions).
    pub image_labels: BTreeMap<String, String>,
    /// `package=version` from the image's labels, if it has them.
    pub packages: Vec<String>,
    /// `redis 8.0.2`, `valkey 8.1.1`.
    pub server_version: Option<String>,
    /// When the report was made (UTC, ISO 8601).
    pub date_utc: String,
}

/// Asks the engine and git; what cannot be found is `unknown`, never an error.
pub async fn environment(docker: &Docker, run: &RunResult) -> Environment {
    let unknown = || "unknown".to_string();
    let engine = crate::backend::docker::engine_info(docker).await;
    let compose = match crate::backend::compose_cli::detect() {
        Ok(c) => c.describe(),
        Err(e) => format!("none ({e})"),
    };
    let (mut kernel, mut os) = (unknown(), unknown());
    if let Ok(v) = docker.version().await {
        kernel = v.kernel_version.unwrap_or_else(unknown);
        os = format!(
            "{}/{}",
            v.os.unwrap_or_else(unknown),
            v.arch.unwrap_or_else(unknown)
        );
    }
    if let Ok(i) = docker.info().await {
        if let Some(name) = i.operating_system {
            os = format!("{name} ({os})");
        }
    }
    let image_name = run
        .image
        .as_ref()
        .map_or_else(|| run.topology.image.clone(), |i| i.name.clone());
    let (image_id, image_labels) = match &run.image {
        Some(i) => (i.id.clone(), i.labels.clone()),
        None => (unknown(), BTreeMap::new()),
    };
    let packages = image_labels
        .iter()
        .find(|(k, _)| k.ends_with(".packages"))
        .map(|(_, v)| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let product = crate::backend::image::spec(&image_name).map_or_else(
        || {
            if image_name.contains("valkey") {
                "valkey"
            } else {
                "redis"
            }
        },
        |s| s.product,
    );
    Environment {
        engine: engine.product,
        docker_version: engine.version,
        docker_api: engine.api_used,
        docker_api_max: engine.api_max,
        docker_host: engine.host,
        compose,
        kernel,
        os,
        testbed_version: testbed_version().await,
        image_name,
        image_id,
        image_labels,
        packages,
        server_version: run
            .server_version
            .as_ref()
            .map(|v| format!("{product} {v}")),
        date_utc: utc_iso(SystemTime::now()),
    }
}

async fn testbed_version() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut v = env!("CARGO_PKG_VERSION").to_string();
    if let Ok(c) =
        crate::backend::host::run_async("git", &["-C", dir, "rev-parse", "--short", "HEAD"]).await
    {
        v += &format!(" @ {}", c.trim());
        if let Ok(s) = crate::backend::host::run_async(
            "git",
            &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
        )
        .await
        {
            if !s.trim().is_empty() {
                v += "+dirty";
            }
        }
    }
    v
}

pub use crate::utc::{utc_clock, utc_compact, utc_iso};

/// How often one expectation failed over the runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rate {
    pub expectation: String,
    pub failed: usize,
    pub runs: usize,
    /// What was measured, run by run.
    pub measured: Vec<String>,
}

impl Rate {
    /// `expectation `failovers = 1` failed in 2/20 runs`.
    pub fn line(&self) -> String {
        format!(
            "expectation `{}` failed in {}/{} runs",
            self.expectation, self.failed, self.runs
        )
    }
}

/// Failure rates per expectation, in the scenario's order.
pub fn rates(runs: &[RunResult]) -> Vec<Rate> {
    rates_of(runs.iter().map(|r| r.verdicts.as_slice()))
}

/// Failure rates per expectation over the verdicts of each run.
pub fn rates_of<'a>(runs: impl IntoIterator<Item = &'a [Verdict]>) -> Vec<Rate> {
    let mut out: Vec<Rate> = Vec::new();
    for verdicts in runs {
        for v in verdicts {
            let i = match out.iter().position(|x| x.expectation == v.expectation) {
                Some(i) => i,
                None => {
                    out.push(Rate {
                        expectation: v.expectation.clone(),
                        failed: 0,
                        runs: 0,
                        measured: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            out[i].runs += 1;
            out[i].failed += usize::from(!v.pass);
            out[i].measured.push(v.measured.clone());
        }
    }
    out
}

/// A file name from any text: letters, digits, `-`, `_`, `.`; the rest `-`.
pub fn safe_name(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
            c
        } else {
            '-'
        };
        if !(c == '-' && o.ends_with('-')) {
            o.push(c);
        }
    }
    let o = o
        .trim_start_matches(['.', '-'])
        .trim_end_matches('-')
        .to_string();
    if o.is_empty() {
        "_".into()
    } else {
        o
    }
}

/// `node1/redis.conf (rendered)` -> `node1-redis.rendered.conf`.
pub fn config_file_name(key: &str) -> String {
    let (path, tag) = match key.split_once(" (") {
        Some((p, t)) => (p, Some(t.trim_end_matches(')'))),
        None => (key, None),
    };
    let (stem, ext) = path.rsplit_once('.').unwrap_or((path, ""));
    let mut name = safe_name(stem);
    if let Some(t) = tag {
        name = format!("{name}.{}", safe_name(t));
    }
    if !ext.is_empty() {
        name = format!("{name}.{}", safe_name(ext));
    }
    name
}

#[derive(Serialize)]
struct JsonReport<'a> {
    scenario: &'a str,
    passed: bool,
    rates: Vec<Rate>,
    run_errors: &'a [String],
    environment: &'a Environment,
    rerun_command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a RunPlan>,
    runs: &'a [RunResult],
}

/// Which runs of a plan a bundle holds: the plan is `repeat` runs with
/// seeds 1..=repeat (a run's seed decides the offset of its first fault in
/// Sentinel's cycle, `scenario::run::fault_offset_ms`); a shard holds every
/// `count`-th of them. `report merge` joins the shards of one plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunPlan {
    pub scenario: String,
    /// FNV-1a of the scenario file's text: shards of another file (or of
    /// an edited one) are refused by `merge`.
    pub scenario_digest: String,
    /// The image the runs used (the `--image` override or the topology's).
    pub image: String,
    pub repeat: u32,
    /// `(index, count)`, 1-based, when the bundle is one shard.
    pub shard: Option<(u32, u32)>,
    /// The seeds this bundle was to run, in order.
    pub seeds: Vec<u64>,
    /// Testbeds at once.
    pub jobs: usize,
}

/// The digest [`RunPlan::scenario_digest`] holds.
pub fn digest(text: &str) -> String {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// Writes the bundle into `dir` (created); returns the path of report.md.
pub fn write_bundle(
    dir: &Path,
    runs: &[RunResult],
    env: &Environment,
    rerun_command: &str,
) -> Result<PathBuf> {
    write_bundle_with_errors(dir, runs, &[], env, rerun_command)
}

/// Like [`write_bundle`], also naming runs that did not complete.
pub fn write_bundle_with_errors(
    dir: &Path,
    runs: &[RunResult],
    run_errors: &[String],
    env: &Environment,
    rerun_command: &str,
) -> Result<PathBuf> {
    write_bundle_planned(dir, runs, run_errors, env, rerun_command, None)
}

/// Like [`write_bundle_with_errors`], recording the plan (seeds, shard).
pub fn write_bundle_planned(
    dir: &Path,
    runs: &[RunResult],
    run_errors: &[String],
    env: &Environment,
    rerun_command: &str,
    plan: Option<&RunPlan>,
) -> Result<PathBuf> {
    let first = runs
        .first()
        .ok_or_else(|| Error::State("no run completed: nothing to report".into()))?;
    let write = |p: PathBuf, text: &str| -> Result<()> {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
    };
    let md = dir.join("report.md");
    write(
        md.clone(),
        &render_markdown(runs, run_errors, env, rerun_command),
    )?;
    let json = JsonReport {
        scenario: &first.scenario,
        passed: run_errors.is_empty() && runs.iter().all(RunResult::passed),
        rates: rates(runs),
        run_errors,
        environment: env,
        rerun_command,
        plan,
        runs,
    };
    write(
        dir.join("report.json"),
        &serde_json::to_string_pretty(&json).expect("a report serialises"),
    )?;
    for (i, r) in runs.iter().enumerate() {
        write_run(&dir.join(r.dir_name(i)), r, &write)?;
    }
    Ok(md)
}

fn write_run(d: &Path, r: &RunResult, write: &dyn Fn(PathBuf, &str) -> Result<()>) -> Result<()> {
    let history: String = r
        .history
        .iter()
        .map(|o| serde_json::to_string(o).expect("an op serialises") + "\n")
        .collect();
    write(d.join("history.jsonl"), &history)?;
    for x in r.external.iter().chain(&r.clients) {
        let name = safe_name(&x.run.name);
        let history: String = x
            .run
            .history
            .iter()
            .map(|o| serde_json::to_string(o).expect("an op serialises") + "\n")
            .collect();
        write(d.join(format!("history-{name}.jsonl")), &history)?;
        write(
            d.join("logs").join(format!("{name}.stderr.log")),
            &x.run.stderr,
        )?;
    }
    write(
        d.join("timeline.json"),
        &serde_json::to_string_pretty(&r.timeline).expect("events serialise"),
    )?;
    let zero = r.measurements.fault_ms.unwrap_or(0.0);
    write(
        d.join("timeline.txt"),
        &timeline::render_table(&r.timeline, zero),
    )?;
    let svg = crate::report::svg::timeline_svg(r);
    write(d.join("timeline.svg"), &svg)?;
    if !r.clients.is_empty() {
        let title = format!("{}: the clients, one lane each", r.scenario);
        write(
            d.join("clients.svg"),
            &crate::report::svg::matrix_svg(&title, &[r]),
        )?;
    }
    // A PNG for issue trackers that take no SVG, when a converter is at hand.
    if crate::backend::host::which("rsvg-convert").is_some() {
        let (svg_p, png_p) = (d.join("timeline.svg"), d.join("timeline.png"));
        let args = [
            "-b",
            "white",
            "-o",
            &png_p.to_string_lossy(),
            &svg_p.to_string_lossy(),
        ]
        .map(|s| s.to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Err(e) = crate::backend::host::run("rsvg-convert", &refs) {
            tracing::warn!("timeline.png not made: {e}");
        }
    }
    for (node, cmds) in &r.snapshots {
        let text: String = cmds
            .iter()
            .map(|(c, t)| format!("# {c}\n\n{}\n\n", t.trim_end()))
            .collect();
        write(
            d.join("snapshots").join(format!("{}.txt", safe_name(node))),
            &text,
        )?;
    }
    let mut used = BTreeSet::new();
    for (key, text) in &r.configs {
        let mut name = config_file_name(key);
        let mut k = 2;
        while !used.insert(name.clone()) {
            name = format!("{}-{k}", config_file_name(key));
            k += 1;
        }
        write(d.join("configs").join(name), text)?;
    }
    for (container, text) in &r.logs {
        write(
            d.join("logs").join(format!("{}.log", safe_name(container))),
            text,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
