//! `cargo xtask soak --minutes M [--seed S]`: one testbed under the write
//! workload and a seeded, random schedule of faults (`schedule.rs`), each
//! held, repaired, and followed by a wait until the testbed is healthy
//! with one VIP holder. At the end every acknowledged write is accounted
//! for (`record.rs`) and the bundle — seed, schedule as applied, per-fault
//! results, timeline, history — goes to target/testbed/reports/soak-<UTC time>/.
//!
//! Invariants: the testbed is owned (an interruption or an error removes
//! it); a fault's actions and its repair are the chaos verbs' own
//! (`Testbed::apply`); a fault the testbed does not recover from is tried
//! once more with the fallback repair (heal, resume, start every node and
//! sentinel), then ends the schedule and fails the soak.

mod markdown;
mod record;
mod schedule;

use crate::flags::SoakArgs;
use crate::paths::resolve;
use anyhow::{Context, Result};
use record::{Accounting, FaultRecord};
use schedule::{Hold, Planned, Schedule};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use testbed::faults::{Action, Target};
use testbed::model::net::Subnet;
use testbed::testbed::interrupt;
use testbed::timeline::Event;
use testbed::workload::{self, ClientPath, Op, Workload, WorkloadSpec};
use testbed::{checker, Error, ParseOptions, Testbed, Topology, UpOptions};

/// How long the testbed may take to be healthy again after a repair.
const RECOVERY: Duration = Duration::from_secs(90);

/// Everything a soak found (`soak.json`).
#[derive(Debug, Serialize)]
pub struct Soak {
    pub seed: u64,
    pub minutes: u32,
    pub started_utc: String,
    pub command: String,
    pub testbed: String,
    pub image: String,
    pub nodes: usize,
    pub rate: u32,
    pub faults: Vec<FaultRecord>,
    pub failovers: usize,
    pub accounting: Accounting,
    pub final_master: Option<String>,
    pub final_health: std::result::Result<(), String>,
    pub final_vip_holders: Vec<String>,
    /// Why the soak failed; empty: it passed.
    pub failures: Vec<String>,
    pub interrupted: Option<String>,
    pub wall_s: f64,
}

fn load(args: &SoakArgs) -> Result<Topology> {
    let t = Topology::from_file(&resolve(&args.topology), &ParseOptions::default())?;
    let mut t = t.relocated(&args.name, Subnet::test_slot(args.slot))?;
    if let Some(img) = &args.image {
        t.image = img.clone();
    }
    Ok(t)
}

pub async fn run(args: &SoakArgs, state_root: &Path) -> Result<()> {
    let seed = match &args.seed {
        Some(s) => testbed::faults::impair::netem::rng::parse_seed(s).with_context(|| {
            format!("--seed {s}: not a number (decimal, or hexadecimal with 0x)")
        })?,
        None => testbed::testbed::state::fresh_seed(),
    };
    let topo = load(args)?;
    testbed::doctor::ensure_ready(true, state_root).await?;
    crate::netem::ensure()?;
    let command = format!(
        "cargo xtask soak --minutes {} --seed {seed}{}",
        args.minutes,
        args.image
            .as_ref()
            .map(|i| format!(" --image {i}"))
            .unwrap_or_default()
    );
    println!("soak: {} min, seed {seed} (again: {command})", args.minutes);
    let wall = Instant::now();
    let started = SystemTime::now();
    // beside repro's reports (the testbed's own state dir goes with it)
    let dir = state_root
        .join("reports")
        .join(format!("soak-{}", testbed::report::utc_compact(started)));
    let up = UpOptions {
        state_root: state_root.to_path_buf(),
        replace_existing: true,
        seed: Some(seed),
        ..Default::default()
    };
    let tb = Testbed::up(topo, up).await?;
    let spec = WorkloadSpec {
        path: ClientPath::Vip,
        rate: args.rate,
        timeout_ms: 500,
    };
    let wl = Workload::start(&tb, &spec)?;
    let deadline = Instant::now() + Duration::from_secs(u64::from(args.minutes) * 60);
    let ft = tb.topology.failover_timeout_ms;
    let (faults, stopped) = soak(&tb, Schedule::new(seed, 3 * ft), deadline).await;
    let interrupted = match &stopped {
        Some(Error::Interrupted { signal, during }) => Some(format!("{signal} during {during}")),
        _ => None,
    };

    // the end: the last repair done, is the testbed whole?
    let end = final_state(&tb, interrupted.is_some()).await;
    let history = wl.stop().await?;
    let mut soak = Soak {
        seed,
        minutes: args.minutes,
        started_utc: testbed::report::utc_iso(started),
        command,
        testbed: tb.topology.name.clone(),
        image: tb.topology.image.clone(),
        nodes: tb.topology.nodes.len(),
        rate: args.rate,
        failovers: faults.iter().filter(|f| f.failed_over()).count(),
        faults,
        accounting: Accounting::default(),
        final_master: end.0.clone(),
        final_health: end.1,
        final_vip_holders: end.2,
        failures: Vec::new(),
        interrupted,
        wall_s: 0.0,
    };
    if soak.interrupted.is_none() {
        let present = match &end.0 {
            Some(m) => {
                let n = tb.node(m)?;
                let ids = history.iter().map(|o| o.id);
                workload::read_present(tb.redis_addr(n), tb.password(), workload::KEY_PREFIX, ids)
                    .await?
            }
            None => Default::default(),
        };
        let check = checker::check(&history, &present);
        let end_ms = tb.timeline.now_ms();
        soak.accounting = record::account(&mut soak.faults, &history, &check, end_ms);
    }
    soak.failures = failures(&soak, stopped.as_ref());
    let events = tb.timeline.events();
    soak.wall_s = wall.elapsed().as_secs_f64();
    write_bundle(&dir, &soak, &events, &history)?;
    tb.down().await?;
    println!("{}", markdown::summary(&soak));
    println!("wrote {}", dir.display());
    if let Some(e) = stopped.filter(|e| matches!(e, Error::Interrupted { .. })) {
        return Err(e.into());
    }
    anyhow::ensure!(
        soak.failures.is_empty(),
        "the soak failed: {} (report: {})",
        soak.failures.join("; "),
        dir.join("soak.md").display()
    );
    Ok(())
}

/// Applies the schedule until `deadline`; returns the faults as they
/// happened and the error that stopped it early (an interruption, or a
/// fault the testbed did not recover from).
async fn soak(
    tb: &Testbed,
    schedule: Schedule,
    deadline: Instant,
) -> (Vec<FaultRecord>, Option<Error>) {
    let mut out = Vec::new();
    let names: Vec<String> = tb.topology.nodes.iter().map(|n| n.name.clone()).collect();
    for planned in schedule {
        if Instant::now() >= deadline {
            return (out, None);
        }
        match one(tb, &planned, &names).await {
            Ok(r) => {
                let stuck = r.recovered_ms.is_none();
                println!("{}", markdown::line(&r));
                out.push(r);
                if stuck {
                    return (
                        out,
                        Some(Error::State("a fault was not recovered from".into())),
                    );
                }
            }
            Err(e) => return (out, Some(e)),
        }
        let settle = Duration::from_millis(planned.settle_ms);
        if let Err(e) = interrupt::sleep(settle, "the quiet time after a fault").await {
            return (out, Some(e));
        }
    }
    (out, None)
}

/// One fault: apply, hold, repair, wait for health (forcing it once).
async fn one(tb: &Testbed, p: &Planned, names: &[String]) -> testbed::Result<FaultRecord> {
    let before = tb.current_master().await?;
    let (fault, repair) = schedule::actions(&p.fault, &before.name, names);
    let mut r = FaultRecord {
        planned: *p,
        verb: schedule::verb(&p.fault).to_string(),
        applied: fault
            .iter()
            .map(|a| {
                let on_master = a
                    .targets()
                    .iter()
                    .any(|t| t.node_name() == Some(&before.name));
                let role = if on_master { " (master)" } else { "" };
                format!("{}{role} {}", describe(a), schedule::params(&p.fault))
            })
            .map(|s| s.trim().to_string())
            .collect(),
        master_before: before.name.clone(),
        master_after: None,
        applied_ms: tb.timeline.now_ms(),
        repaired_ms: 0.0,
        recovered_ms: None,
        forced: false,
        errors: Vec::new(),
        lost: 0,
        unavailable_ms: 0.0,
    };
    for a in &fault {
        keep(&mut r.errors, tb.apply(a).await)?;
    }
    let held = match p.hold {
        Hold::Ms(ms) => interrupt::sleep(Duration::from_millis(ms), "holding a fault").await,
        Hold::UntilSwitch(ms) => tb
            .wait_for_switch(&before, Duration::from_millis(ms))
            .await
            .map(drop),
    };
    keep(&mut r.errors, held)?;
    r.repaired_ms = tb.timeline.now_ms();
    for a in &repair {
        keep(&mut r.errors, tb.apply(a).await)?;
    }
    let mut healthy = recover(tb).await;
    if let Err(e) = &healthy {
        if matches!(e, Error::Interrupted { .. }) {
            return Err(healthy.unwrap_err());
        }
        r.errors.push(format!(
            "not healthy {} s after the repair: {e}",
            RECOVERY.as_secs()
        ));
        r.forced = true;
        force_repair(tb).await?;
        healthy = recover(tb).await;
    }
    match healthy {
        Ok(m) => {
            r.recovered_ms = Some(tb.timeline.now_ms());
            r.master_after = Some(m);
        }
        Err(e @ Error::Interrupted { .. }) => return Err(e),
        Err(e) => r
            .errors
            .push(format!("not healthy after the fallback repair either: {e}")),
    }
    Ok(r)
}

/// Records a failed action as a finding; an interruption ends the soak.
fn keep<T>(errors: &mut Vec<String>, r: testbed::Result<T>) -> testbed::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e @ Error::Interrupted { .. }) => Err(e),
        Err(e) => {
            errors.push(e.to_string());
            Ok(())
        }
    }
}

/// `kill node2`, `delay node1 | host`...
fn describe(a: &Action) -> String {
    let t: Vec<String> = a.targets().iter().map(|t| t.to_string()).collect();
    format!("{} {}", a.verb().name(), t.join(","))
        .trim()
        .to_string()
}

/// Waits until the testbed is healthy around whichever node is master,
/// exactly one node holds the VIP and no sentinel is in TILT (a clock
/// jump's repair is a jump too: without this, the next fault would meet a
/// sentinel that cannot vote — measured: seed 2026, fault #51, a master
/// killed 2 s after a clock jump's repair was never failed over, restarted
/// with an old dataset, and thousands of writes were gone); returns the
/// master's name.
async fn recover(tb: &Testbed) -> testbed::Result<String> {
    testbed::wait::until(
        "the testbed to be healthy with one VIP holder and no sentinel in TILT",
        RECOVERY,
        testbed::wait::POLL,
        || async {
            let m = tb.current_master().await.map_err(|e| e.to_string())?;
            testbed::health::probe(&tb.topology, &m).await?;
            let holders = tb.vip_holders().await.map_err(|e| e.to_string())?;
            if holders.len() != 1 {
                return Err(format!("VIP holders: [{}]", holders.join(", ")));
            }
            let tilted = testbed::health::sentinels_in_tilt(&tb.topology).await?;
            match tilted.as_slice() {
                [] => Ok(m.name),
                t => Err(format!("sentinels in TILT: [{}]", t.join(", "))),
            }
        },
    )
    .await
}

/// Everything back: links healed, every node resumed and started, every
/// sentinel resumed (each may already be so: their errors are expected).
async fn force_repair(tb: &Testbed) -> testbed::Result<()> {
    let _ = tb.apply(&Action::Heal).await;
    for n in &tb.topology.nodes {
        let target = Target::Node(n.name.clone());
        for a in [
            Action::Resume {
                target: target.clone(),
            },
            Action::Start {
                target: target.clone(),
            },
            Action::SentinelResume { target },
        ] {
            match tb.apply(&a).await {
                Err(e @ Error::Interrupted { .. }) => return Err(e),
                _ => continue,
            }
        }
    }
    Ok(())
}

/// The master, the health and the VIP holders at the end (after an
/// interruption: not waited for).
async fn final_state(
    tb: &Testbed,
    interrupted: bool,
) -> (Option<String>, std::result::Result<(), String>, Vec<String>) {
    if !interrupted {
        let _ = recover(tb).await;
    }
    let master = tb.current_master().await.ok();
    let health = match &master {
        Some(m) => testbed::health::probe(&tb.topology, m).await,
        None => Err("no master agreed on by the sentinels".into()),
    };
    let holders = tb.vip_holders().await.unwrap_or_default();
    (master.map(|m| m.name), health, holders)
}

fn failures(s: &Soak, stopped: Option<&Error>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = stopped {
        out.push(format!("the schedule stopped early: {e}"));
    }
    for f in s.faults.iter().filter(|f| f.recovered_ms.is_none()) {
        out.push(format!(
            "fault #{} ({}) was not recovered from",
            f.planned.index, f.verb
        ));
    }
    if let Err(e) = &s.final_health {
        out.push(format!("not healthy at the end: {e}"));
    }
    if s.final_vip_holders.len() != 1 {
        out.push(format!(
            "{} VIP holders at the end ([{}])",
            s.final_vip_holders.len(),
            s.final_vip_holders.join(", ")
        ));
    }
    if !s.accounting.unexplained.is_empty() {
        out.push(format!(
            "{} acknowledged writes lost outside every fault's span (ids {:?})",
            s.accounting.unexplained.len(),
            &s.accounting.unexplained[..s.accounting.unexplained.len().min(10)]
        ));
    }
    out
}

fn write_bundle(dir: &PathBuf, s: &Soak, events: &[Event], history: &[Op]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("soak.json"), serde_json::to_string_pretty(s)?)?;
    std::fs::write(dir.join("soak.md"), markdown::report(s))?;
    std::fs::write(dir.join("timeline.json"), serde_json::to_string(events)?)?;
    let mut h = String::new();
    for op in history {
        h += &serde_json::to_string(op)?;
        h.push('\n');
    }
    std::fs::write(dir.join("history.jsonl"), h)?;
    Ok(())
}
