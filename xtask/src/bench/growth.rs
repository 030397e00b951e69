//! How the testbed grows: `up` of 3, 5 and 9 nodes, the failover phases at 5
//! nodes, and K testbeds brought up at once (K = 1, 2, 4), each as median
//! (min–max) and as a ratio to the 3-node figure of the same run. Testbeds
//! `bn-g*` on 198.18.175-178.0/24, removed after each round.

use super::stats::{summary, Summary};
use anyhow::Result;
use serde::Serialize;
use std::time::{Duration, Instant};
use testbed::faults::Target;
use testbed::observe::phases;
use testbed::{ParseOptions, Testbed, Topology, UpOptions};

pub const SLOTS: [u8; 4] = [175, 176, 177, 178];

/// An `n`-node topology named `name` on 198.18.<slot>.0/24.
fn topology(name: &str, slot: u8, n: u8) -> Result<Topology> {
    let quorum = n / 2 + 1;
    let mut text = format!(
        "name = \"{name}\"\nsubnet = \"198.18.{slot}.0/24\"\nvip = \"198.18.{slot}.100\"\nquorum = {quorum}\n"
    );
    for i in 1..=n {
        text += &format!(
            "[[nodes]]\nname = \"node{i}\"\nip = \"198.18.{slot}.{}\"\n",
            10 + i
        );
    }
    Ok(Topology::parse(&text, None, &ParseOptions::default())?)
}

/// Ms from the kill to each phase of one failover; `None` when not seen.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Phases {
    pub sdown: Option<f64>,
    pub promoted: Option<f64>,
    pub switched: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Growth {
    /// nodes -> `up` to healthy, ms, one per round.
    pub up_ms: Vec<(u8, Vec<f64>)>,
    /// K -> ms from starting K `up`s at once until the last is healthy.
    pub parallel_ms: Vec<(usize, Vec<f64>)>,
    /// containers -> ms to create and start that many bare containers at
    /// once (`sleep`, no network): Docker's own floor for 3 and 9 nodes.
    pub docker_floor_ms: Vec<(usize, Vec<f64>)>,
    /// The 5-node failover phases, one per run.
    pub five_node_failover: Vec<Phases>,
    pub errors: Vec<String>,
}

fn opts(state_root: &std::path::Path) -> UpOptions {
    UpOptions {
        state_root: state_root.to_path_buf(),
        replace_existing: true,
        ..Default::default()
    }
}

pub async fn run(rounds: usize, state_root: &std::path::Path) -> Result<Growth> {
    let mut g = Growth::default();
    let mut ups: Vec<(u8, Vec<f64>)> = vec![(3, vec![]), (5, vec![]), (9, vec![])];
    let mut par: Vec<(usize, Vec<f64>)> = vec![(1, vec![]), (2, vec![]), (4, vec![])];
    let mut floor: Vec<(usize, Vec<f64>)> = vec![(6, vec![]), (18, vec![])];
    let docker = testbed::docker::connect().await?;
    for round in 0..rounds {
        for (n, v) in floor.iter_mut() {
            match bare_starts(&docker, *n).await {
                Ok(ms) => v.push(ms),
                Err(e) => g.errors.push(format!("{n} bare containers #{round}: {e}")),
            }
        }
        // the sizes alternate within a round, as the bench's contenders do
        for (n, v) in ups.iter_mut() {
            let t = topology(&format!("bn-g{n}"), SLOTS[0], *n)?;
            match Testbed::up(t, opts(state_root)).await {
                Ok(tb) => {
                    v.push(tb.up_ms);
                    super::say(
                        "growth",
                        format!("{n} nodes #{round}: healthy in {:.0} ms", tb.up_ms),
                    );
                    if *n == 5 {
                        g.five_node_failover.push(failover(&tb).await);
                    }
                    tb.down().await?;
                }
                Err(e) => g.errors.push(format!("{n} nodes #{round}: {e}")),
            }
        }
        for (k, v) in par.iter_mut() {
            let ts: Vec<Topology> = (0..*k)
                .map(|i| topology(&format!("bn-gp{i}"), SLOTS[i], 3))
                .collect::<Result<_>>()?;
            let start = Instant::now();
            let all = futures_util::future::join_all(
                ts.into_iter().map(|t| Testbed::up(t, opts(state_root))),
            )
            .await;
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let mut ok = true;
            for r in all {
                match r {
                    Ok(tb) => {
                        tb.down().await?;
                    }
                    Err(e) => {
                        ok = false;
                        g.errors.push(format!("{k} at once #{round}: {e}"));
                    }
                }
            }
            if ok {
                v.push(ms);
                super::say(
                    "growth",
                    format!("{k} testbeds at once #{round}: all healthy in {ms:.0} ms"),
                );
            }
        }
    }
    g.up_ms = ups;
    g.parallel_ms = par;
    g.docker_floor_ms = floor;
    Ok(g)
}

/// The label value of the floor's containers (`down --name bn-gfloor` and
/// `down --all` find them).
const FLOOR: &str = "bn-gfloor";

/// Creates and starts `n` bare containers of the default image at once
/// (`sleep`, network none), until the last has started; removes them.
async fn bare_starts(docker: &bollard::Docker, n: usize) -> Result<f64> {
    use bollard::models::{ContainerCreateBody, HostConfig};
    use bollard::query_parameters::CreateContainerOptionsBuilder;
    use std::collections::HashMap;
    let start = Instant::now();
    let one = |i: usize| async move {
        let name = format!("tb-{FLOOR}-{i}");
        let body = ContainerCreateBody {
            image: Some(testbed::image::DEFAULT_IMAGE.to_string()),
            entrypoint: Some(vec!["sleep".into()]),
            cmd: Some(vec!["120".into()]),
            labels: Some(HashMap::from([
                (
                    testbed::docker::LABEL_MANAGED.to_string(),
                    "true".to_string(),
                ),
                (testbed::docker::LABEL_NAME.to_string(), FLOOR.to_string()),
            ])),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default().name(&name).build();
        docker.create_container(Some(opts), body).await?;
        docker.start_container(&name, None).await
    };
    let r = futures_util::future::join_all((0..n).map(one)).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let docker_down = testbed::teardown::down(docker, Some(FLOOR), &std::env::temp_dir()).await;
    r.into_iter().collect::<Result<Vec<()>, _>>()?;
    docker_down?;
    Ok(ms)
}

/// One failover of a 5-node testbed: sdown, promoted, all switched (ms).
async fn failover(tb: &Testbed) -> Phases {
    let Ok(old) = tb.current_master().await else {
        return Phases::default();
    };
    tb.subscribe_all();
    let Ok(t0) = tb.kill(&Target::Master).await else {
        return Phases::default();
    };
    let ft = Duration::from_millis(tb.topology.failover_timeout_ms);
    let _ = tb.wait_for_switch(&old, ft * 3).await;
    let live = tb.topology.nodes.len() - 1;
    let _ = tb
        .timeline
        .wait_for("every live sentinel's +switch-master", ft, |ev| {
            ev.iter()
                .filter(|e| e.t_ms >= t0 && e.name == "+switch-master")
                .count()
                >= live
        })
        .await;
    let p = phases::phases(
        "growth-5",
        &tb.topology.image,
        tb.topology.down_after_ms,
        &tb.timeline.events(),
        t0,
    );
    Phases {
        sdown: p.sdown_ms,
        promoted: p.promoted_ms,
        switched: p.switch_all_ms,
    }
}

fn cell(s: Option<Summary>, base: Option<f64>) -> String {
    match (s, base) {
        (Some(s), Some(b)) => format!(
            "**{:.0}** ({:.0}–{:.0}) · {:.2}×",
            s.median,
            s.min,
            s.max,
            s.median / b
        ),
        (Some(s), None) => format!("**{:.0}** ({:.0}–{:.0})", s.median, s.min, s.max),
        (None, _) => "–".into(),
    }
}

/// The section's tables.
pub fn markdown(g: &Growth) -> String {
    let base = g
        .up_ms
        .iter()
        .find(|(n, _)| *n == 3)
        .and_then(|(_, v)| summary(v))
        .map(|s| s.median);
    let mut s = String::from("#### Growth: nodes and testbeds at once\n\n| what | runs | ms to healthy, median (min–max) · ratio to 3 nodes |\n|---|---|---|\n");
    for (n, v) in &g.up_ms {
        s += &format!(
            "| `up`, {n} nodes (quorum {}) | {} | {} |\n",
            n / 2 + 1,
            v.len(),
            cell(summary(v), base)
        );
    }
    for (k, v) in &g.parallel_ms {
        s += &format!(
            "| {k} testbed(s) of 3 nodes at once, until the last is healthy | {} | {} |\n",
            v.len(),
            cell(summary(v), base)
        );
    }
    for (n, v) in &g.docker_floor_ms {
        s += &format!(
            "| Docker alone: {n} bare containers created and started at once | {} | {} |\n",
            v.len(),
            cell(summary(v), base)
        );
    }
    let col = |f: fn(&Phases) -> Option<f64>| {
        let v: Vec<f64> = g.five_node_failover.iter().filter_map(f).collect();
        cell(summary(&v), None)
    };
    s += &format!(
        "\nFailover at 5 nodes (down-after 2000, {} runs), ms from the kill: sdown {}, promoted {}, all switched {}.\n",
        g.five_node_failover.len(),
        col(|x| x.sdown),
        col(|x| x.promoted),
        col(|x| x.switched)
    );
    if let (Some(b), Some(nine)) = (
        base,
        g.up_ms
            .iter()
            .find(|(n, _)| *n == 9)
            .and_then(|(_, v)| summary(v)),
    ) {
        s += &format!(
            "Target: 9-node `up` ≤ 1.5 × the 3-node `up`: {:.2}× — **{}**.\n",
            nine.median / b,
            if nine.median / b <= 1.5 {
                "met"
            } else {
                "missed"
            }
        );
    }
    for e in &g.errors {
        s += &format!("\nFAILED: {e}\n");
    }
    s
}

/// Every testbed this section makes, by name.
fn names() -> Vec<String> {
    let mut v: Vec<String> = [3, 5, 9].iter().map(|n| format!("bn-g{n}")).collect();
    v.extend((0..SLOTS.len()).map(|i| format!("bn-gp{i}")));
    v.push(FLOOR.to_string());
    v
}

/// Removes whatever an aborted round left of this section's testbeds.
pub async fn cleanup(docker: &bollard::Docker, state_root: &std::path::Path) -> Result<()> {
    for n in names() {
        testbed::teardown::down(docker, Some(&n), state_root).await?;
    }
    Ok(())
}
