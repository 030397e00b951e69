//! The chaos verbs — one `cargo xtask` subcommand per verb of the verb
//! table (`kill`, `partition`, `sentinel-crash`, ...) — plus `partitions`
//! and `events`: faults on a testbed started with `cargo xtask up`, for
//! exploring by hand. Each verb attaches to the running testbed, carries out
//! its actions through `Testbed::apply` (the same code a scenario step
//! runs) and prints what it did with the wall-clock time; `events` prints
//! every sentinel's events live until Ctrl-C.

use crate::flags::{Attach, Chaos};
use anyhow::{Context, Result};
use bollard::query_parameters::InspectContainerOptions;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime};
use testbed::faults::Verb;
use testbed::timeline::{Event, Kind};
use testbed::utc::utc_clock;
use testbed::{ParseOptions, Testbed, Topology};

/// `--name`, else the name in the topology file.
fn testbed_name(at: &Attach) -> Result<String> {
    if let Some(n) = &at.name {
        return Ok(n.clone());
    }
    let opts = ParseOptions {
        allow_any_subnet: true,
    };
    Ok(Topology::from_file(&crate::paths::resolve(&at.topology), &opts)?.name)
}

pub async fn run(cmd: Chaos, state_root: &Path) -> Result<()> {
    let actions = cmd.actions().map_err(anyhow::Error::msg)?;
    let name = testbed_name(cmd.attach_args())?;
    let tb = Testbed::attach(&name, state_root).await?;
    // the wall-clock time of the timeline's origin, to print wall times
    let origin = SystemTime::now() - Duration::from_secs_f64(tb.timeline.now_ms() / 1000.0);
    if let Chaos::Events { .. } = cmd {
        return events(&tb, origin).await;
    }
    let link_verbs = [
        Verb::ClockJump,
        Verb::ConfigReadonly,
        Verb::Partition,
        Verb::Isolate,
        Verb::Heal,
        Verb::Delay,
        Verb::Loss,
        Verb::Rate,
        Verb::Flap,
    ];
    let mut link_verb = matches!(cmd, Chaos::Partitions { .. });
    if actions
        .iter()
        .any(|a| matches!(a.verb(), Verb::Delay | Verb::Loss | Verb::Flap))
    {
        crate::netem::ensure()?;
    }
    for a in &actions {
        let r = tb.apply(a).await;
        print_actions(&tb, origin);
        r?;
        link_verb |= link_verbs.contains(&a.verb());
    }
    if link_verb {
        print_in_force(&tb).await?;
    }
    Ok(())
}

/// What is cut and what is impaired, read back from the nodes.
async fn print_in_force(tb: &Testbed) -> Result<()> {
    let cuts = tb
        .partitions()
        .await
        .context("reading the partitions in force")?;
    let impaired = tb
        .impairments()
        .await
        .context("reading the impairments in force")?;
    if cuts.is_empty() {
        println!("partitions in force: none");
    } else {
        println!("partitions in force:");
        for p in cuts {
            println!("  {p}");
        }
    }
    if impaired.is_empty() {
        println!("impairments in force: none");
    } else {
        println!("impairments in force:");
        for i in impaired {
            println!("  {i}");
        }
    }
    let ro = tb
        .readonly_configs()
        .await
        .context("reading the sentinels' mounts")?;
    if !ro.is_empty() {
        println!("read-only sentinel configs: {}", ro.join(", "));
    }
    let clocks = tb.clocks().await.context("reading the clock offsets")?;
    if !clocks.is_empty() {
        println!("shifted clocks:");
        for c in clocks {
            println!("  {c}");
        }
    }
    Ok(())
}

/// The actions recorded so far and not printed yet.
fn print_actions(tb: &Testbed, origin: SystemTime) {
    thread_local! {
        static PRINTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    let actions: Vec<Event> = tb
        .timeline
        .events()
        .into_iter()
        .filter(|e| e.kind != Kind::Sentinel)
        .collect();
    let from = PRINTED.with(|p| p.replace(actions.len()));
    for e in actions.iter().skip(from) {
        println!("{}  {:<20} {}", wall(origin, e.t_ms), e.name, e.detail);
    }
}

/// `HH:MM:SS.mmm` (UTC) of the timeline time `t_ms`.
fn wall(origin: SystemTime, t_ms: f64) -> String {
    utc_clock(origin + Duration::from_secs_f64(t_ms.max(0.0) / 1000.0))
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
    use std::time::UNIX_EPOCH;

    #[test]
    fn wall_clock_is_utc_with_millis() {
        let origin = UNIX_EPOCH + Duration::from_millis(3_600_000 + 61_234);
        assert_eq!(wall(origin, 1000.0), "01:01:02.234");
    }
}
