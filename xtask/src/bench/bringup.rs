//! Bring-up to healthy, three contenders on warm images:
//! - `up`: `Testbed::up` (what `cargo xtask up` runs), then `down`;
//! - `compose`: the generated Compose project (`testbed::compose::render`),
//!   `docker-compose up -d`, polling `health::probe` every 50 ms from the
//!   start of the command, then `docker-compose down -v`;
//! - `compose-naive`: the same project with seed-style sentinel.conf files
//!   (monitor + timings only: no `myid`, `known-replica`, `known-sentinel`),
//!   so that Sentinel discovers replicas and peers by itself.
//!
//! The segment of a Compose project (veth parent + shim) is made once, as
//! `cargo xtask segment up` does for a compose user; `up` makes its own
//! every time. Also: the 6 container starts alone (docker's own `Created`
//! of the first container to `StartedAt` of the last) and the footprint.

use super::failover::up_options;
use anyhow::{bail, Context, Result};
use bollard::Docker;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::net::Names;
use testbed::{Testbed, Topology};

/// One bring-up.
#[derive(Debug, Clone, Serialize)]
pub struct BringupSample {
    /// `up`, `compose` or `compose-naive`.
    pub contender: String,
    pub round: usize,
    /// Start of the command -> every health condition holds.
    pub healthy_ms: Option<f64>,
    /// docker's `Created` of the first of the 6 containers -> `StartedAt` of the last.
    pub starts_ms: Option<f64>,
    /// `docker-compose up -d` returned (compose contenders).
    pub command_ms: Option<f64>,
    /// Removal (`Testbed::down`, `docker-compose down -v`).
    pub down_ms: Option<f64>,
    /// The steps of `Testbed::up`: (ms since its start, step).
    pub steps: Vec<(f64, String)>,
    pub error: Option<String>,
}

impl BringupSample {
    fn new(contender: &str, round: usize) -> BringupSample {
        BringupSample {
            contender: contender.into(),
            round,
            healthy_ms: None,
            starts_ms: None,
            command_ms: None,
            down_ms: None,
            steps: Vec::new(),
            error: None,
        }
    }
}

/// Memory of the 6 containers at idle, and the images' sizes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Footprint {
    /// (container, RSS bytes: cgroup v1 `rss`, or v2 `anon`).
    pub rss: Vec<(String, u64)>,
    pub rss_total: u64,
    /// (container, cgroup memory usage bytes, page cache included).
    pub usage: Vec<(String, u64)>,
    /// (image, bytes).
    pub images: Vec<(String, i64)>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn container_names(t: &Topology) -> Vec<String> {
    let n = Names::new(&t.name);
    t.nodes
        .iter()
        .flat_map(|x| [n.redis(&x.name), n.sentinel(&x.name)])
        .collect()
}

/// First `Created` -> last `StartedAt` over `names`, from `docker inspect`.
async fn container_span(docker: &Docker, names: &[String]) -> Result<f64> {
    let (mut first, mut last) = (f64::INFINITY, f64::NEG_INFINITY);
    for n in names {
        let c = docker
            .inspect_container(
                n,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .with_context(|| format!("inspect {n}"))?;
        let created = c
            .created
            .map(|d| d.unix_timestamp_nanos() as f64 / 1e6)
            .with_context(|| format!("{n} has no creation time"))?;
        let started = c
            .state
            .and_then(|s| s.started_at)
            .and_then(|s| super::stats::rfc3339_ms(&s))
            .with_context(|| format!("{n} has no start time"))?;
        first = first.min(created);
        last = last.max(started);
    }
    Ok(last - first)
}

/// One `up` round; with `footprint`, also measures the idle footprint.
pub async fn up_round(
    docker: &Docker,
    t: &Topology,
    round: usize,
    footprint: bool,
) -> (BringupSample, Option<Footprint>) {
    let mut s = BringupSample::new("up", round);
    let start = Instant::now();
    let tb = match Testbed::up(t.clone(), up_options()).await {
        Ok(tb) => tb,
        Err(e) => {
            s.error = Some(format!("up: {e}"));
            return (s, None);
        }
    };
    s.healthy_ms = Some(ms(start));
    s.steps = tb.up_steps.clone();
    let names = container_names(t);
    match container_span(docker, &names).await {
        Ok(v) => s.starts_ms = Some(v),
        Err(e) => s.error = Some(format!("{e:#}")),
    }
    let fp = if footprint {
        Some(measure_footprint(docker, &names).await)
    } else {
        None
    };
    let d = Instant::now();
    match tb.down().await {
        Ok(_) => s.down_ms = Some(ms(d)),
        Err(e) => s.error = Some(format!("down: {e}")),
    }
    (s, fp)
}

async fn measure_footprint(docker: &Docker, names: &[String]) -> Footprint {
    use futures_util::StreamExt;
    // idle: nothing but Sentinel's own pings and hellos
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut f = Footprint::default();
    for n in names {
        let opts = bollard::query_parameters::StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        let mut st = docker.stats(n, Some(opts));
        if let Some(Ok(s)) = st.next().await {
            let m = s.memory_stats.unwrap_or_default();
            let stats = m.stats.unwrap_or_default();
            let rss = stats
                .get("rss")
                .or_else(|| stats.get("anon"))
                .copied()
                .unwrap_or(0);
            f.rss.push((n.clone(), rss));
            f.usage.push((n.clone(), m.usage.unwrap_or(0)));
        }
    }
    f.rss_total = f.rss.iter().map(|(_, b)| b).sum();
    f
}

/// A rendered Compose project of a bench topology, with its segment up.
pub struct ComposeProject {
    pub contender: &'static str,
    /// The testbed the project is (`compose-<name>`).
    ct: Topology,
    t: Topology,
    dir: PathBuf,
}

impl ComposeProject {
    /// Renders the project of `t` into `dir` (seed-style sentinel configs
    /// when `naive`) and makes its segment.
    pub async fn prepare(
        t: &Topology,
        dir: &Path,
        naive: bool,
        state_root: &Path,
    ) -> Result<ComposeProject> {
        let mut files = testbed::compose::render(t, "cargo xtask bench")?;
        if naive {
            for f in files
                .iter_mut()
                .filter(|f| f.path.ends_with("sentinel.conf"))
            {
                f.contents = seed_style(&f.contents);
            }
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        testbed::compose::write(dir, &files)?;
        testbed::compose::segment_up(t, None, state_root).await?;
        Ok(ComposeProject {
            contender: if naive { "compose-naive" } else { "compose" },
            ct: testbed::compose::topology(t)?,
            t: t.clone(),
            dir: dir.to_path_buf(),
        })
    }

    /// Removes the project's containers, network, segment and state (also
    /// what a crashed earlier bench left).
    pub async fn remove(docker: &Docker, t: &Topology, state_root: &Path) -> Result<()> {
        let name = testbed::compose::testbed_name(&t.name);
        testbed::teardown::down(docker, Some(&name), state_root).await?;
        Ok(())
    }

    pub async fn cleanup(&self, docker: &Docker, state_root: &Path) -> Result<()> {
        Self::remove(docker, &self.t, state_root).await?;
        testbed::compose::segment_down(docker, &self.t, state_root).await?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }

    async fn compose(&self, args: &[&str]) -> Result<()> {
        // docker compose, docker-compose v2 or 1.29: whichever this host has
        let cli = testbed::compose::cli::detect()?;
        let mut all = vec!["-p", self.ct.name.as_str()];
        all.extend_from_slice(args);
        let mut cmd = tokio::process::Command::from(cli.command(&all));
        let out = cmd
            .current_dir(&self.dir)
            .output()
            .await
            .with_context(|| format!("running {}", cli.describe()))?;
        if !out.status.success() {
            bail!(
                "{} {} failed: {}",
                cli.describe(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// `docker-compose up -d`, polling health every 50 ms from the start.
    pub async fn round(&self, docker: &Docker, round: usize) -> BringupSample {
        let mut s = BringupSample::new(self.contender, round);
        if let Err(e) = self.measure(docker, &mut s).await {
            s.error = Some(format!("{e:#}"));
        }
        let d = Instant::now();
        match self.compose(&["down", "-v", "--timeout", "1"]).await {
            Ok(()) => s.down_ms = Some(ms(d)),
            Err(e) => s.error = Some(format!("{e:#}")),
        }
        s
    }

    async fn measure(&self, docker: &Docker, s: &mut BringupSample) -> Result<()> {
        let start = Instant::now();
        let up = self.compose(&["up", "-d"]);
        tokio::pin!(up);
        let mut returned: Option<f64> = None;
        let master = self.ct.initial_master().clone();
        let deadline = Duration::from_secs(60);
        let healthy = loop {
            if start.elapsed() > deadline {
                bail!("{} not healthy within {deadline:?}", self.ct.name);
            }
            if returned.is_none() {
                tokio::select! {
                    r = &mut up => { r?; returned = Some(ms(start)); }
                    h = testbed::health::probe(&self.ct, &master) => if h.is_ok() { break ms(start) },
                }
            } else if testbed::health::probe(&self.ct, &master).await.is_ok() {
                break ms(start);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if returned.is_none() {
            (&mut up).await?;
            returned = Some(ms(start));
        }
        s.healthy_ms = Some(healthy);
        s.command_ms = returned;
        s.starts_ms = Some(container_span(docker, &container_names(&self.ct)).await?);
        Ok(())
    }
}

/// A sentinel.conf as the seed writes one: monitor and timings only.
fn seed_style(conf: &str) -> String {
    conf.lines()
        .filter(|l| {
            !(l.starts_with("sentinel known-")
                || l.starts_with("sentinel myid")
                || l.starts_with("# known peers"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The images' sizes.
pub async fn image_sizes(docker: &Docker) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for s in testbed::image::CATALOG {
        if let Ok(Some(i)) = testbed::image::inspect(docker, s.name).await {
            out.push((s.name.to_string(), i.size_bytes));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_style_keeps_monitor_and_timings_only() {
        let t = Topology::default_topology();
        let c = testbed::render::sentinel_conf(&t, &t.nodes[0]);
        let s = seed_style(&c);
        assert!(s.contains("sentinel monitor mymaster 198.18.0.11 6379 2\n"));
        assert!(s.contains("sentinel down-after-milliseconds mymaster"));
        assert!(!s.contains("known-"), "{s}");
        assert!(!s.contains("myid"), "{s}");
    }
}
