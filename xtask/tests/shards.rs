//! `repro --shard I/N` and `report merge`: two shards of a plan, merged,
//! count the same as one run of the whole plan over the same seeds — the
//! same runs (seed -> offset of the first fault), the same failure counts
//! per expectation — and merging refuses bundles that are not shards of one
//! plan, naming the folder. Also `--jobs 0` and `--shard 3/2` are refused
//! naming the argument.
//!
//! Real runs of a tiny scenario (bring-up, a 200 ms CLIENT PAUSE, removal)
//! with two testbeds at once on base slots 156-157 (moved like
//! tests/common's for a second suite); testbeds `rp0-<prefix>shards`,
//! `rp1-<prefix>shards`.

use anyhow::{ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn prefix() -> String {
    std::env::var("TESTBED_TEST_PREFIX").unwrap_or_default()
}

fn slot(base: u8) -> u8 {
    let prefixed = !prefix().is_empty();
    let offset: i32 = std::env::var("TESTBED_TEST_SLOT_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if prefixed { -90 } else { 0 });
    (i32::from(base) + offset) as u8
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is in the workspace")
        .to_path_buf()
}

/// A scenario whose verdicts do not depend on timing: one expectation
/// always holds, one never does; its one fault gets the seed's offset.
fn scenario(dir: &Path, name: &str, extra: &str) -> Result<PathBuf> {
    let topo = root().join("fixtures/topology.toml");
    let text = format!(
        "description = \"shards merge\"\nsource = \"article:seed-vip\"\ntopology = \"{}\"\n{extra}\
         [[step]]\naction = \"client-pause\"\ntarget = \"master\"\nms = 200\n\
         [[step]]\naction = \"sleep\"\nms = 300\n\
         [expect]\nfailovers = 0\npromoted_node = \"node2\"\n",
        topo.display()
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text)?;
    Ok(p)
}

/// Runs `cargo xtask ARGS`; returns (exit ok, stdout, stderr).
fn xtask(args: &[&str]) -> Result<(bool, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1")
        .output()
        .context("running xtask")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The bundle folder a repro printed (`report: <dir>/report.md`).
fn bundle(stdout: &str) -> Result<PathBuf> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .with_context(|| format!("no report line in:\n{stdout}"))?;
    Ok(Path::new(line.trim())
        .parent()
        .context("report.md has a folder")?
        .to_path_buf())
}

/// seed -> (fault offset, failed expectations) and expectation -> (failed, runs).
type Counts = (
    BTreeMap<u64, (u64, Vec<String>)>,
    BTreeMap<String, (u64, u64)>,
);

fn counts(dir: &Path) -> Result<Counts> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json"))?)?;
    let mut runs = BTreeMap::new();
    for r in v["runs"].as_array().context("runs")? {
        let seed = r["seed"].as_u64().context("a run has its seed")?;
        let offset = r["fault_offset_ms"].as_u64().context("and its offset")?;
        let failed: Vec<String> = r["verdicts"]
            .as_array()
            .context("verdicts")?
            .iter()
            .filter(|x| x["pass"] == false)
            .map(|x| x["expectation"].as_str().unwrap_or("?").to_string())
            .collect();
        runs.insert(seed, (offset, failed));
    }
    let mut rates = BTreeMap::new();
    for r in v["rates"].as_array().context("rates")? {
        rates.insert(
            r["expectation"].as_str().unwrap_or("?").to_string(),
            (
                r["failed"].as_u64().unwrap_or(0),
                r["runs"].as_u64().unwrap_or(0),
            ),
        );
    }
    Ok((runs, rates))
}

#[test]
fn two_shards_merged_count_as_one_run_of_the_same_seeds() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("tb-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let name = format!("{}shards", prefix());
    let file = scenario(&dir, &name, "")?;
    let f = file.to_string_lossy().to_string();
    let s = slot(156).to_string();
    let common = ["repro", &f, "--repeat", "4", "--jobs", "2", "--slot", &s];

    // the whole plan at once: one expectation fails in every run, so the
    // command fails; the bundle is written anyway
    let (ok, out, err) = xtask(&common)?;
    ensure!(!ok, "a plan with a false expectation passed:\n{out}\n{err}");
    let whole = bundle(&out)?;
    let mut shards = Vec::new();
    for sh in ["1/2", "2/2"] {
        let mut a = common.to_vec();
        a.extend_from_slice(&["--shard", sh]);
        let (_, out, err) = xtask(&a)?;
        shards.push(bundle(&out).with_context(|| err.clone())?);
    }
    let merged = dir.join("merged");
    let (ok, out, err) = xtask(&[
        "report",
        "merge",
        &shards[0].to_string_lossy(),
        &shards[1].to_string_lossy(),
        "--out",
        &merged.to_string_lossy(),
    ])?;
    ensure!(ok, "merge failed:\n{out}\n{err}");

    let (whole_runs, whole_rates) = counts(&whole)?;
    let (merged_runs, merged_rates) = counts(&merged)?;
    ensure!(
        whole_runs.keys().copied().collect::<Vec<_>>() == [1, 2, 3, 4],
        "{whole_runs:?}"
    );
    // the same runs: every seed with the same fault offset and outcome
    ensure!(
        whole_runs == merged_runs,
        "one run: {whole_runs:?}\nmerged shards: {merged_runs:?}"
    );
    ensure!(
        whole_rates == merged_rates,
        "one run: {whole_rates:?}\nmerged: {merged_rates:?}"
    );
    ensure!(
        merged_rates.get("promoted_node = \"node2\"") == Some(&(4, 4))
            && merged_rates.get("failovers = 0") == Some(&(0, 4)),
        "{merged_rates:?}"
    );
    // shard 1 of 2 ran seeds 1 and 3
    let (s1, _) = counts(&shards[0])?;
    ensure!(s1.keys().copied().collect::<Vec<_>>() == [1, 3], "{s1:?}");
    ensure!(
        merged.join("run-4/timeline.svg").is_file(),
        "run folders are copied"
    );

    // refusals: the same shard twice, a shard of another scenario
    let (ok, _, err) = xtask(&[
        "report",
        "merge",
        &shards[0].to_string_lossy(),
        &shards[0].to_string_lossy(),
        "--out",
        &dir.join("m2").to_string_lossy(),
    ])?;
    ensure!(!ok && err.contains("shard 1/2 is given twice"), "{err}");
    let other_name = format!("name = \"{}other\"\n", prefix());
    let other = scenario(&dir, &format!("{}shards2", prefix()), &other_name)?;
    let o = other.to_string_lossy().to_string();
    let (_, out, err) = xtask(&[
        "repro", &o, "--repeat", "4", "--jobs", "2", "--slot", &s, "--shard", "2/2",
    ])?;
    let foreign = bundle(&out).with_context(|| err)?;
    let (ok, _, err) = xtask(&[
        "report",
        "merge",
        &shards[0].to_string_lossy(),
        &foreign.to_string_lossy(),
        "--out",
        &dir.join("m3").to_string_lossy(),
    ])?;
    ensure!(
        !ok && err.contains(&foreign.display().to_string())
            && err.contains("not of `")
            && err.contains("same scenario file"),
        "{err}"
    );
    for d in [&whole, &shards[0], &shards[1], &foreign] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn bad_jobs_and_shards_are_refused_naming_the_argument() -> Result<()> {
    let f = root().join("fixtures/scenarios/kill-master.toml");
    let f = f.to_string_lossy();
    let (ok, _, err) = xtask(&["repro", &f, "--jobs", "0"])?;
    ensure!(!ok && err.contains("'--jobs <JOBS>'"), "{err}");
    let (ok, _, err) = xtask(&["repro", &f, "--shard", "3/2"])?;
    ensure!(
        !ok && err.contains("'--shard <I/N>'") && err.contains("shard 3 of 2 does not exist"),
        "{err}"
    );
    let (ok, _, err) = xtask(&["matrix", "--jobs", "16"])?;
    ensure!(!ok && err.contains("'--jobs <JOBS>'"), "{err}");
    // a shard without a run is refused before anything starts
    let (ok, _, err) = xtask(&["repro", &f, "--repeat", "2", "--shard", "3/4"])?;
    ensure!(!ok && err.contains("this shard has no run"), "{err}");
    Ok(())
}
