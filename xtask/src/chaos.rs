//! The chaos verbs (`cargo xtask kill|pause|resume|restart|start|stop|
//! partition|heal|partitions|isolate|failover|sentinel-*|simulate-failure|
//! debug-sleep|client-pause`) and `cargo xtask events`: faults on a testbed
//! started with `cargo xtask up`, for exploring by hand. Each verb attaches to
//! the running testbed, does the fault through the library and prints what it
//! did; `events` prints every sentinel's events live until Ctrl-C.

use crate::flags::{Attach, Chaos};
use anyhow::{bail, Context, Result};
use bollard::query_parameters::InspectContainerOptions;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testbed::faults::Target;
use testbed::netfaults::{self, Direction, PauseMode};
use testbed::timeline::{Event, Kind};
use testbed::{ParseOptions, Testbed, Topology};

impl Chaos {
    fn attach_args(&self) -> &Attach {
        match self {
            Chaos::Kill { at, .. }
            | Chaos::Stop { at, .. }
            | Chaos::Start { at, .. }
            | Chaos::Restart { at, .. }
            | Chaos::Pause { at, .. }
            | Chaos::Resume { at, .. }
            | Chaos::Partition { at, .. }
            | Chaos::Heal { at }
            | Chaos::Partitions { at }
            | Chaos::Isolate { at, .. }
            | Chaos::Failover { at, .. }
            | Chaos::SentinelKill { at, .. }
            | Chaos::SentinelPause { at, .. }
            | Chaos::SentinelResume { at, .. }
            | Chaos::SimulateFailure { at, .. }
            | Chaos::DebugSleep { at, .. }
            | Chaos::ClientPause { at, .. }
            | Chaos::Events { at } => at,
        }
    }
}

/// `--name`, else the name in the topology file (relative paths are tried
/// from the current directory, then from the workspace root).
fn testbed_name(at: &Attach) -> Result<String> {
    if let Some(n) = &at.name {
        return Ok(n.clone());
    }
    let p = if at.topology.is_relative() && !at.topology.exists() {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(&at.topology)
    } else {
        PathBuf::from(&at.topology)
    };
    let opts = ParseOptions {
        allow_any_subnet: true,
    };
    Ok(Topology::from_file(&p, &opts)?.name)
}

pub async fn run(cmd: Chaos, state_root: &Path) -> Result<()> {
    if let Chaos::Partition { a, b, .. } = &cmd {
        // clap hands everything after `--` to the second group
        if let Some(w) = a.iter().chain(b).find(|w| w.starts_with('-')) {
            bail!("`{w}` is not a node: options go before `--`");
        }
    }
    let show_cuts = matches!(
        cmd,
        Chaos::Partition { .. }
            | Chaos::Heal { .. }
            | Chaos::Partitions { .. }
            | Chaos::Isolate { .. }
    );
    let name = testbed_name(cmd.attach_args())?;
    let tb = Testbed::attach(&name, state_root).await?;
    // the wall-clock time of the timeline's origin, to print wall times
    let origin = SystemTime::now() - Duration::from_secs_f64(tb.timeline.now_ms() / 1000.0);
    match cmd {
        Chaos::Events { .. } => return events(&tb, origin).await,
        Chaos::Kill { targets, .. } => each(&targets, |t| tb.kill(t)).await?,
        Chaos::Stop { targets, .. } => each(&targets, |t| tb.stop(t)).await?,
        Chaos::Start { targets, .. } => each(&targets, |t| tb.start(t)).await?,
        Chaos::Restart { targets, .. } => each(&targets, |t| tb.restart(t)).await?,
        Chaos::Pause { targets, .. } => each(&targets, |t| tb.pause(t)).await?,
        Chaos::Resume { targets, .. } => each(&targets, |t| tb.unpause(t)).await?,
        Chaos::Partition {
            a,
            b,
            from,
            to,
            one_way,
            ..
        } => {
            let (a, b) = match (a.is_empty() && b.is_empty(), from.is_empty() && to.is_empty()) {
                (false, true) => (a, b),
                (true, false) => (from, to),
                (true, true) => bail!(
                    "name the groups: `partition node1 -- node2 node3` or `partition --from node1 --to node2,node3`"
                ),
                (false, false) => bail!("give the groups as words or with --from/--to, not both"),
            };
            let (a, b) = netfaults::parse_groups(&a, &b).map_err(anyhow::Error::msg)?;
            let (a, b) = tb.resolve_groups(&a, &b).await?;
            let a: Vec<&str> = a.iter().map(|n| n.name.as_str()).collect();
            let b: Vec<&str> = b.iter().map(|n| n.name.as_str()).collect();
            let dir = if one_way {
                Direction::OneWay
            } else {
                Direction::Both
            };
            tb.partition(&a, &b, dir).await?;
        }
        Chaos::Heal { .. } => {
            tb.heal().await?;
        }
        Chaos::Partitions { .. } => {}
        Chaos::Isolate { targets, .. } => each(&targets, |t| tb.isolate(t)).await?,
        Chaos::Failover { via, .. } => {
            match via {
                Some(v) => tb.failover_via(&v).await?,
                None => tb.failover().await?,
            };
        }
        Chaos::SentinelKill { targets, .. } => each(&targets, |t| tb.kill_sentinel(t)).await?,
        Chaos::SentinelPause { targets, .. } => each(&targets, |t| tb.pause_sentinel(t)).await?,
        Chaos::SentinelResume { targets, .. } => {
            for t in &targets {
                for n in tb.resolve(t).await? {
                    let one = Target::Node(n.name.clone());
                    match tb.sentinel_container(&n).await? {
                        (_, true, _) => {
                            tb.unpause_sentinel(&one).await?;
                        }
                        (false, _, _) => {
                            tb.start_sentinel(&one).await?;
                        }
                        (true, false, _) => println!("{}'s sentinel is running already", n.name),
                    }
                }
            }
        }
        Chaos::SimulateFailure { mode, targets, .. } => {
            each(&targets, |t| tb.simulate_failure(t, mode)).await?
        }
        Chaos::DebugSleep {
            target, seconds, ..
        } => {
            anyhow::ensure!(
                seconds > 0.0 && seconds <= 600.0,
                "seconds must be in (0, 600]"
            );
            tb.debug_sleep(&target, Duration::from_secs_f64(seconds))
                .await?;
        }
        Chaos::ClientPause {
            target, ms, write, ..
        } => {
            let mode = if write {
                PauseMode::Write
            } else {
                PauseMode::All
            };
            tb.client_pause(&target, Duration::from_millis(ms), mode)
                .await?;
        }
    }
    for e in tb.timeline.events() {
        if e.kind != Kind::Sentinel {
            println!("{}  {:<20} {}", wall(origin, e.t_ms), e.name, e.detail);
        }
    }
    if !show_cuts {
        return Ok(());
    }
    let cuts = tb.cuts().await.context("reading the cuts in force")?;
    if cuts.is_empty() {
        println!("partitions in force: none");
    } else {
        println!("partitions in force:");
        for c in cuts {
            println!("  {c}");
        }
    }
    Ok(())
}

/// Applies `f` to each target in turn.
async fn each<'a, F, Fut>(targets: &'a [Target], f: F) -> Result<()>
where
    F: Fn(&'a Target) -> Fut,
    Fut: std::future::Future<Output = testbed::Result<f64>>,
{
    for t in targets {
        f(t).await?;
    }
    Ok(())
}

/// `HH:MM:SS.mmm` (UTC) of the timeline time `t_ms`.
fn wall(origin: SystemTime, t_ms: f64) -> String {
    let t = origin + Duration::from_secs_f64(t_ms.max(0.0) / 1000.0);
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// Prints every sentinel event as it arrives, until Ctrl-C. Resubscribes
/// when a node's containers were restarted: a subscription into a network
/// namespace that went away never reports an error.
async fn events(tb: &Testbed, origin: SystemTime) -> Result<()> {
    tb.subscribe_all();
    println!(
        "sentinel events of testbed {} (Ctrl-C to stop)\n{:>10}  {:<12}  {:<6}  {:<22}  payload",
        tb.topology.name, "t (ms)", "UTC", "node", "channel"
    );
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut printed: HashSet<(u64, String, String, String)> = HashSet::new();
    let mut incarnations: BTreeMap<String, (i64, String)> = BTreeMap::new();
    loop {
        let seen = printed.len();
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tb.timeline.wait_for("a new event", Duration::from_secs(1), |ev| ev.len() > seen) => {}
        }
        for e in tb.timeline.events() {
            if printed.insert(key(&e)) {
                println!(
                    "{:>10.1}  {:<12}  {:<6}  {:<22}  {}",
                    e.t_ms,
                    wall(origin, e.t_ms),
                    e.source,
                    e.name,
                    e.detail
                );
            }
        }
        for n in &tb.topology.nodes {
            let now = incarnation(tb, n).await;
            let before = incarnations.insert(n.name.clone(), now.clone());
            if before.is_some_and(|b| b != now) && now.0 != 0 {
                tb.timeline.subscribe(&n.name, tb.sentinel_addr(n));
                println!(
                    "{:>10.1}  {:<12}  {:<6}  (containers restarted: subscribed again)",
                    tb.timeline.now_ms(),
                    wall(origin, tb.timeline.now_ms()),
                    n.name
                );
            }
        }
    }
    Ok(())
}

fn key(e: &Event) -> (u64, String, String, String) {
    (
        e.t_ms.to_bits(),
        e.source.clone(),
        e.name.clone(),
        e.detail.clone(),
    )
}

/// (redis container PID, sentinel container start time): either changes
/// when the node's sentinel needs a new subscription.
async fn incarnation(tb: &Testbed, n: &testbed::topology::Node) -> (i64, String) {
    let pid = tb.pid(n).await.unwrap_or(0);
    let started = tb
        .docker
        .inspect_container(&tb.names.sentinel(&n.name), None::<InspectContainerOptions>)
        .await
        .ok()
        .and_then(|i| i.state)
        .and_then(|s| s.started_at)
        .unwrap_or_default();
    (pid, started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_is_utc_with_millis() {
        let origin = UNIX_EPOCH + Duration::from_millis(3_600_000 + 61_234);
        assert_eq!(wall(origin, 1000.0), "01:01:02.234");
    }
}
