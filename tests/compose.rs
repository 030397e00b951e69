//! The Compose project in compose/: it is the fresh rendering of the default
//! topology, and the Compose program this host has (`docker compose`,
//! `docker-compose` v2 or 1.29; `TESTBED_COMPOSE` picks one) brings it up as
//! the testbed `cargo xtask up` makes — healthy by the same conditions, the
//! MACs `compose::cli::macs` predicts, failing over the same way
//! (promotion, VIP move, reconfig script) — and `down` plus `segment down`
//! leave nothing behind.
//!
//! With `TESTBED_TEST_PREFIX` set, the project run is not the committed one
//! (198.18.0.0/24, the default topology's) but that of the default topology
//! renamed and moved to the test's slot, rendered into the state folder, so
//! that a second suite never touches a project of the first.

mod common;

use anyhow::{bail, ensure, Context, Result};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testbed::compose::{self, cli::ComposeCli};
use testbed::faults::Target;
use testbed::testbed::default_state_root;
use testbed::{health, links, teardown, wait, ParseOptions, Testbed, Topology};

/// How the headers of the committed project name its topology.
const SOURCE: &str = "fixtures/topology.toml";

fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compose")
}

fn default_topology() -> Result<Topology> {
    Ok(Topology::from_file(
        &common::fixture("topology.toml"),
        &ParseOptions::default(),
    )?)
}

/// rust-analyzer's codegen check: the committed files are what
/// `cargo xtask compose` renders now.
#[test]
fn committed_project_is_the_rendering_of_the_default_topology() -> Result<()> {
    let files = compose::render(&default_topology()?, SOURCE)?;
    let drift = compose::check(&project_dir(), &files)?;
    ensure!(
        drift.is_empty(),
        "compose/ is not the rendering of {SOURCE}:\n  {}\nregenerate it with `cargo xtask compose` and commit the result",
        drift.join("\n  ")
    );
    Ok(())
}

/// The topology whose project the test runs, and the project's folder:
/// the committed one, or (with a prefix) a rendering into the state folder
/// (which a second engine sees at the same path).
fn project_of(state_root: &Path) -> Result<(Topology, PathBuf, bool)> {
    let prefixed = std::env::var("TESTBED_TEST_PREFIX").is_ok_and(|p| !p.is_empty());
    if !prefixed {
        return Ok((default_topology()?, project_dir(), false));
    }
    let t = common::topology("t-cmp", 130)?;
    let dir = state_root
        .join("projects")
        .join(compose::testbed_name(&t.name));
    Ok((t, dir, true))
}

/// The running project; removes everything of it when dropped (success,
/// failure and panic alike) unless disarmed after a checked removal.
struct Project {
    cli: ComposeCli,
    name: String,
    dir: PathBuf,
    /// A rendered project (prefixed run) is removed with the testbed.
    rendered: bool,
    busybox: PathBuf,
    state_root: PathBuf,
    armed: bool,
}

impl Project {
    /// `<compose> -p <name> -f <dir>/docker-compose.yml <args>` with the
    /// variables' defaults, except the busybox this host has.
    fn compose(&self, args: &[&str]) -> Result<Output> {
        let file = self.dir.join(compose::COMPOSE_FILE);
        let file = file.to_string_lossy();
        let mut all = vec!["-p", &self.name, "-f", &file];
        all.extend_from_slice(args);
        let mut cmd = self.cli.command(&all);
        cmd.env(compose::ENV_BUSYBOX, &self.busybox)
            .env_remove(compose::ENV_PARENT);
        cmd.output()
            .with_context(|| format!("cannot run {}", self.cli.describe()))
    }

    fn compose_ok(&self, args: &[&str]) -> Result<Output> {
        let out = self.compose(args)?;
        ensure!(
            out.status.success(),
            "{} {} failed ({}):\n{}",
            self.cli.describe(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out)
    }

    /// Removes whatever the project (or a crashed earlier run) left:
    /// compose's own `down`, then every object labelled with the testbed's
    /// name, its links and its state directory (and a rendered project).
    fn remove(&self) -> Result<()> {
        let down = if self.dir.join(compose::COMPOSE_FILE).is_file() {
            self.compose(&["down", "-v", "--remove-orphans", "-t", "0"])
                .map(drop)
        } else {
            Ok(())
        };
        teardown::down_blocking(&self.name, self.state_root.clone())?;
        if self.rendered && self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)?;
        }
        down
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        testbed::testbed::interrupt::unregister(&self.name);
        if self.armed {
            if let Err(e) = self.remove() {
                eprintln!(
                    "removing the compose testbed {} failed: {e:#}; run `cargo xtask down --name {}`",
                    self.name, self.name
                );
            }
        }
    }
}

/// The reconfig script's call log inside a sentinel container.
async fn call_log(container: &str) -> std::result::Result<String, String> {
    testbed::host::run_async(
        "docker",
        &[
            "exec",
            container,
            "/testbed/bin/busybox",
            "cat",
            testbed::render::paths::CALL_LOG,
        ],
    )
    .await
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn docker_compose_up_gives_the_same_testbed_which_fails_over_and_down_leaves_nothing(
) -> Result<()> {
    common::init_tracing();
    let docker = testbed::docker::connect()
        .await
        .context("this test runs the compose project's containers and needs a Docker engine")?;
    let cli = compose::cli::detect()?;
    let engine = testbed::docker::engine_info(&docker).await;
    let state_root = default_state_root();
    let (t, dir, rendered) = project_of(&state_root)?;
    let ct = compose::topology(&t)?;
    let names = compose::names(&t);
    // Compose cannot build the image: make sure it is there, as `up` does.
    let image = std::env::var(compose::ENV_IMAGE).unwrap_or_else(|_| t.image.clone());
    testbed::image::ensure_image(&docker, &image, &state_root.join("images")).await?;

    let mut project = Project {
        cli: cli.clone(),
        name: ct.name.clone(),
        dir: dir.clone(),
        rendered,
        busybox: testbed::doctor::static_busybox()?,
        state_root: state_root.clone(),
        armed: true,
    };
    project
        .remove()
        .context("removing leftovers of an earlier run")?;
    testbed::testbed::interrupt::register(&ct.name, state_root.clone());
    if rendered {
        compose::write(&dir, &compose::render(&t, SOURCE)?)?;
    }
    let dot_env = std::fs::read_to_string(dir.join(".env")).ok();
    let pin = compose::cli::pinned_api(
        std::env::var(compose::cli::ENV_API).ok().as_deref(),
        dot_env.as_deref(),
    );
    let engine_api = testbed::docker::parse_api(&engine.api_max);
    let macs = compose::cli::macs(&cli, engine_api, pin);
    println!(
        "compose: {} on {} {} (API {}); project {} in {}",
        cli.describe(),
        engine.product,
        engine.version,
        engine.api_max,
        ct.name,
        dir.display()
    );
    if macs.is_right() {
        println!("MACs: expected right: {}", macs.text());
    } else {
        println!(
            "NOTE: this Compose program cannot give this engine's containers the MACs the file asks for: {}",
            macs.text()
        );
    }

    let segment = compose::segment_up(&t, None, &state_root).await?;
    ensure!(segment.parent == names.parent, "{segment:?}");

    let start = Instant::now();
    project.compose_ok(&["up", "-d"])?;
    let returned = start.elapsed();
    let tb = Testbed::attach(&ct.name, &state_root).await?;
    tb.subscribe_all();
    let master = ct.initial_master();
    wait::until(
        "the compose testbed to be healthy (the conditions of `cargo xtask up`)",
        Duration::from_secs(60),
        wait::POLL,
        || health::probe(&ct, master),
    )
    .await?;
    let healthy = start.elapsed();
    println!(
        "docker-compose up -d returned after {:.2} s; healthy after {:.2} s",
        returned.as_secs_f64(),
        healthy.as_secs_f64()
    );

    // The same testbed: MACs as predicted (read from each interface, what
    // ARP answers with), shared namespaces, quorum, the VIP oracle.
    let status = tb.status().await?;
    for s in &status.nodes {
        ensure!(!s.mac.is_empty(), "no MAC read from {}'s interface", s.name);
        ensure!(
            s.mac_differs() != macs.is_right(),
            "{} has MAC {} (the file asks for {}), but {} on {} API {} was expected to {}: {}",
            s.name,
            s.mac,
            s.expected_mac,
            cli.describe(),
            engine.product,
            engine.api_max,
            if macs.is_right() {
                "get it right"
            } else {
                "get a random one"
            },
            macs.text()
        );
    }
    for n in &ct.nodes {
        let s = docker
            .inspect_container(&names.sentinel(&n.name), None::<InspectContainerOptions>)
            .await?;
        let r = docker
            .inspect_container(&names.redis(&n.name), None::<InspectContainerOptions>)
            .await?;
        let mode = s
            .host_config
            .and_then(|h| h.network_mode)
            .unwrap_or_default();
        ensure!(
            mode == format!("container:{}", r.id.unwrap_or_default()),
            "the sentinel of {} is not in its redis container's namespace: {mode}",
            n.name
        );
        let ok: String = testbed::client::query(
            tb.sentinel_addr(n),
            None,
            redis::cmd("SENTINEL").arg("CKQUORUM").arg(&ct.master_name),
        )
        .await?;
        ensure!(ok.starts_with("OK"), "sentinel on {}: {ok}", n.name);
    }
    tb.wait_vip_on(master, Duration::from_secs(10)).await?;

    // Kill the master: a replica is promoted and the VIP follows it.
    let timeout = Duration::from_millis(ct.failover_timeout_ms);
    let old = tb.current_master().await?;
    ensure!(old.name == master.name, "master is {}", old.name);
    let killed = Instant::now();
    let t0 = tb.kill(&Target::Master).await?;
    let new = tb.wait_for_switch(&old, timeout).await?;
    let switched = killed.elapsed();
    tb.wait_vip_on(&new, timeout).await?;
    let vip_moved = killed.elapsed();
    let other = ct
        .nodes
        .iter()
        .find(|n| n.name != old.name && n.name != new.name)
        .context("three nodes")?;
    tb.wait_replica_of(other, &new, timeout).await?;
    let live = [new.name.as_str(), other.name.as_str()];
    tb.timeline
        .wait_for(
            "every live sentinel to publish +switch-master",
            timeout,
            |ev| {
                live.iter().all(|n| {
                    ev.iter()
                        .any(|e| e.t_ms >= t0 && e.name == "+switch-master" && e.source == *n)
                })
            },
        )
        .await?;
    // The reconfig script ran beside the new master and took the VIP there.
    let want = format!("{} {}", new.ip, ct.redis_port);
    let sentinel = names.sentinel(&new.name);
    wait::until(
        &format!("{sentinel} to log a successful reconfig-script call to {want}"),
        Duration::from_secs(10),
        wait::POLL,
        || async {
            let log = call_log(&sentinel).await?;
            let ok = log.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() == 11 && f[3] == "0" && l.ends_with(&want)
            });
            if ok {
                Ok(())
            } else {
                Err(format!("call log: {log:?}"))
            }
        },
    )
    .await?;
    println!(
        "kill of {} -> sentinels switched to {} after {:.2} s, VIP answering there after {:.2} s\n{}",
        old.name,
        new.name,
        switched.as_secs_f64(),
        vip_moved.as_secs_f64(),
        tb.timeline.render(t0)
    );
    ensure!(switched <= timeout, "switch took {switched:?}");

    // A run writes nothing into the project.
    let drift = compose::check(&dir, &compose::render(&t, SOURCE)?)?;
    ensure!(drift.is_empty(), "the run changed compose/: {drift:?}");

    // Down, and nothing of the compose testbed is left.
    tb.timeline.stop();
    drop(tb);
    project.compose_ok(&["down", "-v", "-t", "2"])?;
    compose::segment_down(&docker, &t, &state_root).await?;
    project.armed = false;
    if rendered {
        std::fs::remove_dir_all(&dir)?;
    }

    let left = teardown::containers(&docker, Some(&ct.name)).await?;
    ensure!(left.is_empty(), "containers left: {left:?}");
    let by_project = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![format!("com.docker.compose.project={}", ct.name)],
            )])),
            ..Default::default()
        }))
        .await?;
    ensure!(
        by_project.is_empty(),
        "compose containers left: {by_project:?}"
    );
    let nets = teardown::networks(&docker, Some(&ct.name)).await?;
    ensure!(nets.is_empty(), "networks left: {nets:?}");
    if links::owned_links()
        .await?
        .iter()
        .any(|l| l.testbed == ct.name)
    {
        bail!(
            "links of {} left: {:?}",
            ct.name,
            links::owned_links().await?
        );
    }
    for l in [&names.parent, &names.parent_peer, &names.shim] {
        ensure!(
            !Command::new("ip")
                .args(["link", "show", l])
                .output()?
                .status
                .success(),
            "link {l} still exists"
        );
    }
    let dir = state_root.join(&ct.name);
    ensure!(!dir.exists(), "state dir {} left", dir.display());
    Ok(())
}
