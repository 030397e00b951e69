//! `cargo xtask bench [--quick] [--runs N]`: bring-up and failover numbers,
//! measured side by side in one run (contenders alternate, so a busy moment
//! of a shared machine hits both), reported as min/median/max and as ratios
//! of alternating pairs. Writes `target/testbed/bench/<UTC time>.{json,md,svg}`.
//!
//! Sections: bring-up to healthy (`up` vs the Compose project vs a seed-style
//! Compose project; `bringup.rs`), failover phases per setting (`failover.rs`)
//! against the same Redis as plain processes on loopback (`loopback.rs`), the
//! fast Sentinel profiles, every offline image, the footprint; the precision
//! of the link impairments (`impair.rs`). `--only` picks sections. The samples
//! and their summaries: `report.rs` (JSON), the tables: `markdown.rs`, the
//! picture: `svg.rs`, min/median/max and pair ratios: `stats.rs`.
//!
//! The parallel-repeats section (`parallel.rs`, also alone with
//! `--only parallel`): runs per minute of kill-master with 1, 2, 4 testbeds at
//! once, through the pool of `repro --jobs`.
//!
//! Invariants: the bench removes everything it made (testbeds `bn-*`, the
//! Compose testbeds `compose-bn-*`, the parallel section's `bp*-*`, loopback
//! processes), also after a failed run, and touches nothing else: subnets
//! 198.18.170-174.0/24 and, for the parallel section, the job slots
//! 198.18.250-253.0/24, loopback ports 7001-7003 and 27001-27003. It asserts
//! nothing about timings: it reports.

mod bringup;
mod failover;
mod growth;
mod impair;
mod loopback;
mod markdown;
pub mod parallel;
mod report;
pub mod stats;
mod svg;

use crate::flags::BenchSection;
use anyhow::{Context, Result};
use bringup::ComposeProject;
use report::{Plan, Report, Setting};
use std::path::Path;
use std::time::Instant;
use testbed::net::Subnet;
use testbed::topology::Profile;
use testbed::Topology;

const UP_NAME: &str = "bn-up";
const COMPOSE_NAME: &str = "bn-cmp";
const NAIVE_NAME: &str = "bn-nv";
const FAILOVER_NAME: &str = "bn-fo";
/// Slots (198.18.<slot>.0/24) of the four topologies above.
const SLOTS: [u8; 4] = [170, 171, 172, 173];
const IMAGE_70: &str = "testbed/redis:7.0";

fn topology(name: &str, slot: u8) -> Result<Topology> {
    let path = crate::paths::root().join("fixtures/topology.toml");
    let t = Topology::from_file(&path, &testbed::ParseOptions::default())?;
    Ok(t.relocated(name, Subnet::test_slot(slot))?)
}

/// Runs per section. `--runs N` sets every setting to N (the extra images
/// to ceil(N/2)) and the bring-up rounds to N.
fn plan(quick: bool, runs: Option<usize>) -> Plan {
    let pick = |given: Option<usize>, quick_n: usize, full_n: usize| {
        given.unwrap_or(if quick { quick_n } else { full_n }).max(1)
    };
    let bringup = pick(runs, 3, 5);
    Plan {
        quick,
        bringup_rounds: bringup,
        // the seed-style project takes up to ~12 s (Sentinel's 10 s INFO
        // period): not in the 2-minute run
        naive_rounds: if quick { 0 } else { bringup.min(2) },
        runs_2000: pick(runs, 2, 10),
        runs_5000: pick(runs, 1, 10),
        fast_runs: pick(runs.map(|n| n.div_ceil(2)), 1, 5),
        image_runs: pick(runs.map(|n| n.div_ceil(2)), 1, 5),
    }
}

fn settings(p: &Plan) -> Vec<Setting> {
    let s = |key: &str, image: Option<&str>, da: u64, runs: usize, group: &str| Setting {
        key: key.into(),
        image: image.map(str::to_string),
        profile: Profile::Default,
        debug: Vec::new(),
        down_after_ms: da,
        runs,
        group: group.into(),
    };
    vec![
        s("c7.0-2000", Some(IMAGE_70), 2000, p.runs_2000, "containers"),
        s("lo-2000", None, 2000, p.runs_2000, "loopback"),
        s("c7.0-5000", Some(IMAGE_70), 5000, p.runs_5000, "containers"),
        s("lo-5000", None, 5000, p.runs_5000, "loopback"),
        Setting {
            profile: Profile::Fast,
            ..s("fast7.0-2000", Some(IMAGE_70), 2000, p.fast_runs, "fast")
        },
        s(
            "c8.0-2000",
            Some("testbed/redis:8.0"),
            2000,
            p.image_runs,
            "image",
        ),
        s(
            "cvalkey8.1-2000",
            Some("testbed/valkey:8.1"),
            2000,
            p.image_runs,
            "image",
        ),
    ]
}

pub async fn run(
    quick: bool,
    runs: Option<usize>,
    only: &[BenchSection],
    state_root: &Path,
) -> Result<()> {
    let wanted = |s: BenchSection| only.is_empty() || only.contains(&s);
    // the bench prints its own lines; `up`'s progress lines would drown them
    std::env::set_var("TESTBED_QUIET", "1");
    let wall = Instant::now();
    anyhow::ensure!(
        testbed::host::is_root(),
        "the bench makes links and containers: run as root"
    );
    let docker = testbed::docker::connect().await?;
    let out_dir = state_root.join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let plan = plan(quick, runs);
    let settings = settings(&plan);

    // warm images, tools, free ports: checked before anything runs
    for s in testbed::image::CATALOG {
        testbed::image::ensure_image(&docker, s.name, &state_root.join("images"))
            .await
            .with_context(|| format!("image {}", s.name))?;
    }
    // what the bench needs beyond `up` (the host's redis-server for the
    // loopback contender, a compose binary): checked, and installed by
    // `doctor --fix`, before anything runs
    testbed::doctor::ensure_for("bench", true, state_root).await?;
    let lo_dir = out_dir.join("loopback");
    loopback::kill_leftovers(&lo_dir);
    loopback::check_ports()?;

    let t_up = topology(UP_NAME, SLOTS[0])?;
    let t_cmp = topology(COMPOSE_NAME, SLOTS[1])?;
    let t_nv = topology(NAIVE_NAME, SLOTS[2])?;
    let t_fo = topology(FAILOVER_NAME, SLOTS[3])?;
    cleanup(&docker, [&t_up, &t_fo], [&t_cmp, &t_nv], state_root).await?;

    let env = report::environment(&docker, loopback::host_version()).await;
    let mut rep = Report::new(env, plan.clone(), settings.clone());
    if !wanted(BenchSection::Bringup) {
        rep.plan.bringup_rounds = 0;
        rep.plan.naive_rounds = 0;
    }
    if !wanted(BenchSection::Failover) {
        rep.settings.clear();
    }
    let result = measure(
        &docker,
        &mut rep,
        &out_dir,
        state_root,
        [&t_up, &t_cmp, &t_nv, &t_fo],
    )
    .await;
    let cleaned = cleanup(&docker, [&t_up, &t_fo], [&t_cmp, &t_nv], state_root).await;
    result?;
    cleaned?;
    if wanted(BenchSection::Impair) {
        let started = Instant::now();
        say("impair", "asked vs measured on bn-imp");
        let r = impair::run(state_root).await;
        testbed::teardown::down(&docker, Some(impair::NAME), state_root).await?;
        rep.impair = Some(r?);
        rep.section_wall_s
            .insert("impair".into(), started.elapsed().as_secs_f64());
    }
    if wanted(BenchSection::Growth) {
        let started = Instant::now();
        say("growth", "3/5/9 nodes and 1/2/4 testbeds at once on bn-g*");
        growth::cleanup(&docker, state_root).await?;
        let rounds = if quick { 1 } else { runs.unwrap_or(3) };
        let r = growth::run(rounds, state_root).await;
        growth::cleanup(&docker, state_root).await?;
        rep.growth = Some(r?);
        rep.section_wall_s
            .insert("growth".into(), started.elapsed().as_secs_f64());
    }
    if wanted(BenchSection::Parallel) {
        let started = Instant::now();
        rep.parallel = parallel::measure(quick, |l| say("parallel", l)).await?;
        rep.section_wall_s
            .insert("parallel".into(), started.elapsed().as_secs_f64());
    }

    rep.wall_s = wall.elapsed().as_secs_f64();
    rep.summarise();
    let stamp = testbed::report::utc_compact(std::time::SystemTime::now());
    let base = out_dir.join(&stamp);
    let mut md = markdown::markdown(&rep, &format!("{stamp}.svg"));
    if let Some(i) = &rep.impair {
        md += "\n";
        md += &impair::markdown(i);
    }
    if let Some(g) = &rep.growth {
        md += "\n";
        md += &growth::markdown(g);
    }
    if !rep.parallel.is_empty() {
        md += "\n";
        md += &parallel::markdown(&rep.parallel);
    }
    std::fs::write(
        base.with_extension("json"),
        serde_json::to_string_pretty(&rep)?,
    )?;
    std::fs::write(base.with_extension("md"), &md)?;
    std::fs::write(base.with_extension("svg"), svg::render(&rep))?;
    println!("{md}");
    println!(
        "wrote {0}.json, {0}.md, {0}.svg ({1:.0} s)",
        base.display(),
        rep.wall_s
    );
    Ok(())
}

async fn cleanup(
    docker: &bollard::Docker,
    testbeds: [&Topology; 2],
    compose: [&Topology; 2],
    state_root: &Path,
) -> Result<()> {
    for t in testbeds {
        testbed::teardown::down(docker, Some(&t.name), state_root).await?;
    }
    for t in compose {
        ComposeProject::remove(docker, t, state_root).await?;
    }
    Ok(())
}

fn say(section: &str, msg: impl std::fmt::Display) {
    eprintln!("bench {section}: {msg}");
}

async fn measure(
    docker: &bollard::Docker,
    rep: &mut Report,
    out_dir: &Path,
    state_root: &Path,
    [t_up, t_cmp, t_nv, t_fo]: [&Topology; 4],
) -> Result<()> {
    // 1. bring-up, alternating up / compose (/ seed-style compose)
    let started = Instant::now();
    let cmp =
        ComposeProject::prepare(t_cmp, &out_dir.join("compose-bn-cmp"), false, state_root).await?;
    let nv =
        ComposeProject::prepare(t_nv, &out_dir.join("compose-bn-nv"), true, state_root).await?;
    let plan = rep.plan.clone();
    for round in 0..plan.bringup_rounds {
        let (s, fp) = bringup::up_round(docker, t_up, round, round == 0).await;
        say("bring-up", sample_line(&s));
        rep.bringup.push(s);
        if let Some(fp) = fp {
            rep.footprint = fp;
        }
        let s = cmp.round(docker, round).await;
        say("bring-up", sample_line(&s));
        rep.bringup.push(s);
        if round < plan.naive_rounds {
            let s = nv.round(docker, round).await;
            say("bring-up", sample_line(&s));
            rep.bringup.push(s);
        }
    }
    cmp.cleanup(docker, state_root).await?;
    nv.cleanup(docker, state_root).await?;
    rep.footprint.images = bringup::image_sizes(docker).await;
    rep.section_wall_s
        .insert("bring-up".into(), started.elapsed().as_secs_f64());

    // 2-4. failovers: every setting's i-th run, one after the other
    let started = Instant::now();
    let lo_dir = out_dir.join("loopback");
    let most = rep.settings.iter().map(|s| s.runs).max().unwrap_or(0);
    for i in 0..most {
        for s in rep.settings.clone() {
            if i >= s.runs {
                continue;
            }
            let sample = match &s.image {
                Some(image) => {
                    let mut t = t_fo.clone();
                    t.image = image.clone();
                    t.profile = s.profile;
                    t.down_after_ms = s.down_after_ms;
                    failover::container_run(&t, &s.debug, &s.key, i).await
                }
                None => {
                    let dir = lo_dir.join("run");
                    loopback::loopback_run(&dir, s.down_after_ms, &s.debug, &s.key, i).await
                }
            };
            say("failover", failover_line(&sample));
            rep.failover.push(sample);
        }
    }
    rep.section_wall_s
        .insert("failover".into(), started.elapsed().as_secs_f64());
    Ok(())
}

fn sample_line(s: &bringup::BringupSample) -> String {
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} ms"));
    match &s.error {
        Some(e) => format!("{} #{}: FAILED: {e}", s.contender, s.round),
        None => format!(
            "{} #{}: healthy {} (container starts {}, teardown {})",
            s.contender,
            s.round,
            f(s.healthy_ms),
            f(s.starts_ms),
            f(s.down_ms)
        ),
    }
}

fn failover_line(s: &failover::FailoverSample) -> String {
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
    match (&s.error, &s.phases) {
        (Some(e), _) => format!("{} #{}: FAILED: {e}", s.setting, s.index),
        (None, Some(p)) => format!(
            "{} #{}: sdown {} odown {} elected {} promoted {} switch {} vip {} client {} ms{}",
            s.setting,
            s.index,
            f(p.sdown_ms),
            f(p.odown_ms),
            f(p.elected_ms),
            f(p.promoted_ms),
            f(p.switch_all_ms),
            f(p.vip_answering_ms),
            f(p.client_recovered_ms),
            if s.failed_elections > 0 {
                format!(" ({} failed election events)", s.failed_elections)
            } else {
                String::new()
            }
        ),
        (None, None) => format!("{} #{}: no phases", s.setting, s.index),
    }
}
