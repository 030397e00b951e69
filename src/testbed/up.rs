//! Bring-up: preflight → image → what already exists under that name
//! (reuse, replace, refuse, or remove a dead owner's leftovers) → a free
//! subnet → the state dir and its files → veth + shim → macvlan network →
//! per node, nodes in parallel: its redis container, the MAC check, the VIP
//! (initial master), its sentinel → health → Sentinel's own ping period.
//!
//! Every step checks for Ctrl-C first, and the nodes' starts are all
//! awaited before an error unwinds (never dropped mid-request), so the
//! removal that follows sees every object that was made.

use super::{interrupt, state, teardown, Testbed};
use crate::backend::containers::{self, NodeDirs};
use crate::backend::progress::Progress;
use crate::backend::{client, host, image, links};
use crate::error::{Error, Result};
use crate::model::net::Names;
use crate::model::render::{self, paths};
use crate::model::topology::{Node, Profile, Topology};
use crate::observe::timeline::{Kind, Timeline};
use crate::observe::{health, wait};
use bollard::Docker;
use futures_util::future::join_all;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sentinel's ping period (`SENTINEL_PING_PERIOD`), restored after bring-up.
const SENTINEL_PING_PERIOD_MS: u32 = 1000;
/// The ping period during bring-up: how often a sentinel retries a peer
/// whose port was still closed.
const BRINGUP_PING_PERIOD_MS: u32 = 100;

/// How to bring a testbed up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Use this existing interface as the macvlan parent instead of a veth.
    pub parent: Option<String>,
    pub state_root: PathBuf,
    /// How long the health conditions may take.
    pub health_timeout: Duration,
    /// If a testbed of that name is running with the same topology, attach
    /// to it instead of failing (a different topology is refused, with what
    /// differs).
    pub reuse_running: bool,
    /// Remove a running testbed of that name first (unless another live
    /// process owns it).
    pub replace_existing: bool,
    /// The testbed's seed (`Testbed::seed`); `None`: a fresh one, recorded.
    pub seed: Option<u64>,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            parent: None,
            state_root: super::default_state_root(),
            health_timeout: Duration::from_secs(60),
            reuse_running: false,
            replace_existing: false,
            seed: None,
        }
    }
}

impl Testbed {
    /// Brings a testbed up and returns once it is healthy.
    pub async fn up(topology: Topology, opts: UpOptions) -> Result<Testbed> {
        interrupt::install();
        interrupt::check("up")?;
        let progress = Progress::new(&format!("up {}", topology.name));
        preflight()?;
        let docker = crate::backend::docker::connect().await?;
        image::ensure_image(&docker, &topology.image, &opts.state_root.join("images")).await?;
        interrupt::check("up: after the image")?;
        if let Some(tb) = existing(&docker, &topology, &opts, &progress).await? {
            progress.done("already running");
            return Ok(tb);
        }
        check_subnet_free(&docker, &topology, opts.parent.is_some()).await?;

        interrupt::register(&topology.name, opts.state_root.clone());
        let mut tb = Testbed {
            docker,
            names: Names::new(&topology.name),
            state_dir: opts.state_root.join(&topology.name),
            state_root: opts.state_root.clone(),
            timeline: Timeline::new(),
            up_ms: 0.0,
            up_steps: Vec::new(),
            parent: String::new(),
            seed: opts.seed.unwrap_or_else(state::fresh_seed),
            owned: true,
            topology,
        };
        // From here on a failure removes whatever was made: `tb` is owned.
        tb.bring_up(&opts, &progress).await?;
        tb.up_ms = progress.elapsed().as_secs_f64() * 1000.0;
        tb.timeline.record(
            Kind::Observation,
            "testbed",
            "healthy",
            format!("up in {:.0} ms", tb.up_ms),
        );
        progress.done(format!("healthy in {:.2} s", tb.up_ms / 1000.0));
        tb.up_steps = progress.steps();
        Ok(tb)
    }

    async fn bring_up(&mut self, opts: &UpOptions, progress: &Progress) -> Result<()> {
        let t = self.topology.clone();
        let owner = Some(state::Owner::me());
        write_files(&self.state_dir, &t).await?;
        self.write_state(owner)?;
        progress.detail(format!("state dir {}", self.state_dir.display()));
        interrupt::check("up: segment")?;
        self.parent =
            links::create_segment(&self.names, t.subnet, t.shim_ip(), opts.parent.as_deref())
                .await?;
        self.write_state(owner)?;
        interrupt::check("up: network")?;
        containers::create_network(&self.docker, &t, &self.names, &self.parent).await?;
        progress.step(format!(
            "segment {} (parent {}, shim {} {})",
            t.subnet,
            self.parent,
            self.names.shim,
            t.shim_ip()
        ));

        // Each node as soon as it can, nodes in parallel: its redis
        // container, the MAC check, the VIP (initial master only: the seed
        // binds it by hand, so do we), its sentinel. The replicas' redis
        // containers start once the master's has: a replica that finds the
        // master's port closed retries only at its next replication cron, a
        // second later. Every node's start is awaited, even after another
        // failed: nothing is left in flight when the removal lists objects.
        let master = t.initial_master().clone();
        let (master_started, started) = tokio::sync::watch::channel(None::<bool>);
        let this = &*self;
        let master_started = &master_started;
        let results = join_all(t.nodes.iter().map(|n| {
            let mut started = started.clone();
            let is_master = n.name == master.name;
            async move {
                if !is_master {
                    let ok = started
                        .wait_for(|s| s.is_some())
                        .await
                        .map(|s| *s == Some(true))
                        .unwrap_or(false);
                    if !ok {
                        return Err(Error::State(
                            "the master's redis container did not start".into(),
                        ));
                    }
                }
                let r = this
                    .start_node(n, is_master, master_started, progress)
                    .await;
                if is_master && r.is_err() {
                    master_started.send_replace(Some(false));
                }
                r
            }
        }))
        .await;
        let tweaked = results.into_iter().collect::<Result<Vec<bool>>>()?;
        progress.step("containers started (each sentinel right after its redis)");
        for n in &t.nodes {
            self.timeline.subscribe(&n.name, self.sentinel_addr(n));
        }
        progress.detail("waiting for the health conditions");
        self.wait_healthy(&master, opts.health_timeout).await?;
        for (n, tweaked) in t.nodes.iter().zip(tweaked) {
            if tweaked {
                self.set_ping_period(n, SENTINEL_PING_PERIOD_MS).await?;
            }
        }
        Ok(())
    }

    /// Starts `n`'s redis container (and says so on `master_started` if it
    /// is the initial master), checks its MAC, binds the VIP on it if
    /// initial master, starts its sentinel and applies the profile. Returns
    /// whether the bring-up ping period is in force on its sentinel.
    async fn start_node(
        &self,
        n: &Node,
        initial_master: bool,
        master_started: &tokio::sync::watch::Sender<Option<bool>>,
        progress: &Progress,
    ) -> Result<bool> {
        let t = &self.topology;
        let dirs = || NodeDirs::new(&self.state_dir, &n.name);
        let tools = self.state_dir.join("bin");
        let script_dir = self.state_dir.join("script");
        interrupt::check(&format!("up: {}'s redis container", n.name))?;
        containers::create_redis(&self.docker, t, &self.names, n, dirs(), &tools).await?;
        progress.detail(format!("{}: redis container started", n.name));
        if initial_master {
            master_started.send_replace(Some(true));
        }
        containers::verify_mac(&self.docker, &self.names, n).await?;
        if initial_master {
            interrupt::check("up: the VIP")?;
            self.bind_vip(n).await?;
            progress.detail(format!("{}: VIP {} bound", n.name, t.vip));
        }
        interrupt::check(&format!("up: {}'s sentinel container", n.name))?;
        containers::create_sentinel(&self.docker, t, &self.names, n, dirs(), &tools, &script_dir)
            .await?;
        progress.detail(format!("{}: sentinel container started", n.name));
        self.apply_profile(n).await?;
        if t.profile != Profile::Default {
            return Ok(false);
        }
        // Sentinel retries a connection that was refused only once per ping
        // period (1 s by default). Sentinels start one after another, so the
        // first ones find their peers' ports still closed and would report
        // them `disconnected` for a second: during bring-up the period is
        // 100 ms, and Sentinel's default is restored once the testbed is
        // healthy. A server without SENTINEL DEBUG (< 7.0) just takes the second.
        let addr = self.sentinel_addr(n);
        let what = format!("the sentinel on {} to answer", n.name);
        wait::until(
            &what,
            Duration::from_secs(10),
            Duration::from_millis(10),
            || async {
                client::query::<String>(addr, None, &redis::cmd("PING"))
                    .await
                    .map_err(|e| e.to_string())
            },
        )
        .await?;
        Ok(self
            .set_ping_period(n, BRINGUP_PING_PERIOD_MS)
            .await
            .is_ok())
    }

    /// `SENTINEL DEBUG ping-period <ms>` on `n`'s sentinel.
    async fn set_ping_period(&self, n: &Node, ms: u32) -> Result<()> {
        let cmd = redis::cmd("SENTINEL")
            .arg("DEBUG")
            .arg("ping-period")
            .arg(ms)
            .clone();
        client::query::<()>(self.sentinel_addr(n), None, &cmd).await
    }

    /// Applies the topology's timing profile to the sentinel of `n` (waits
    /// for it to answer first: it has just been started).
    pub async fn apply_profile(&self, n: &Node) -> Result<()> {
        let params = self.topology.profile.sentinel_debug();
        if params.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("DEBUG");
        for (k, v) in params {
            cmd.arg(*k).arg(*v);
        }
        let addr = self.sentinel_addr(n);
        let what = format!("the sentinel on {} to accept SENTINEL DEBUG", n.name);
        wait::until(&what, Duration::from_secs(10), wait::POLL, || async {
            client::query::<()>(addr, None, &cmd)
                .await
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Waits until every health condition holds with `master` as the master.
    pub async fn wait_healthy(&self, master: &Node, timeout: Duration) -> Result<()> {
        let t = &self.topology;
        wait::until("the testbed to be healthy", timeout, wait::POLL, || {
            health::probe(t, master)
        })
        .await
    }

    /// Adds the VIP on `n`'s interface and announces it (gratuitous ARP),
    /// from the host inside the node's namespace.
    pub async fn bind_vip(&self, n: &Node) -> Result<()> {
        let pid = self.pid(n).await?;
        let cidr = format!("{}/{}", self.topology.vip, self.topology.subnet.prefix());
        host::in_netns(pid, "ip", &["addr", "add", &cidr, "dev", paths::INTERFACE]).await?;
        let busybox = self.state_dir.join("bin/busybox").display().to_string();
        let vip = self.topology.vip.to_string();
        let arping = [
            "arping",
            "-q",
            "-U",
            "-c",
            "1",
            "-w",
            "1",
            "-I",
            paths::INTERFACE,
            &vip,
        ];
        host::in_netns(pid, &busybox, &arping).await?;
        Ok(())
    }
}

/// What exists already under `t.name`: `Some` testbed to reuse, `None` when
/// the name is free (leftovers of a dead owner removed, or a running testbed
/// replaced as asked), or an error saying why not.
async fn existing(
    docker: &Docker,
    t: &Topology,
    opts: &UpOptions,
    progress: &Progress,
) -> Result<Option<Testbed>> {
    let root = &opts.state_root;
    let left = teardown::leftovers(docker, Some(&t.name), root).await?;
    if left.is_empty() {
        return Ok(None);
    }
    let st = state::read(root, &t.name)?;
    let running = !teardown::containers(docker, Some(&t.name))
        .await?
        .is_empty();
    let live = running && st.as_ref().is_some_and(|s| s.is_live());
    let remove = |why: &str| {
        progress.step(format!("{why}: removing {}", left.join(", ")));
        teardown::down(docker, Some(&t.name), root)
    };
    if !live {
        remove("leftovers of an earlier run whose process is gone").await?;
        return Ok(None);
    }
    let other_owner = st
        .as_ref()
        .and_then(|s| s.owner)
        .filter(|o| o.pid != std::process::id());
    if let Some(o) = other_owner {
        return Err(Error::Busy {
            what: format!("testbed `{}`", t.name),
            detail: format!("process {} owns it and is running", o.pid),
            hint: "use another name (tests: TESTBED_TEST_PREFIX), or stop that process".into(),
        });
    }
    if opts.replace_existing {
        remove("replacing the running testbed").await?;
        return Ok(None);
    }
    if opts.reuse_running {
        let tb = Testbed::attach(&t.name, root).await?;
        let mut asked = t.clone();
        asked.source = None;
        let diff = tb.topology.diff(&asked);
        if diff.is_empty() {
            return Ok(Some(tb));
        }
        return Err(Error::Busy {
            what: format!("testbed `{}`", t.name),
            detail: format!("it is running with another topology: {}", diff.join("; ")),
            hint: format!(
                "`cargo xtask up --replace` replaces it; `cargo xtask down --name {}` removes it",
                t.name
            ),
        });
    }
    Err(Error::Busy {
        what: format!("testbed `{}`", t.name),
        detail: format!("it exists already: {}", left.join(", ")),
        hint: format!(
            "remove it with `cargo xtask down --name {}` (or `down --all`)",
            t.name
        ),
    })
}

/// Writes configs, scripts and tools into the state directory (on the
/// blocking pool: a few dozen small files and a busybox copy).
async fn write_files(state_dir: &Path, t: &Topology) -> Result<()> {
    let (dir, t) = (state_dir.to_path_buf(), t.clone());
    tokio::task::spawn_blocking(move || write_files_blocking(&dir, &t))
        .await
        .map_err(|e| Error::State(format!("writing the state dir failed: {e}")))?
}

fn write_files_blocking(state_dir: &Path, t: &Topology) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let write = |p: PathBuf, text: &str, mode: u32| -> Result<()> {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(&p, e))
    };
    if state_dir.exists() {
        std::fs::remove_dir_all(state_dir).map_err(|e| Error::io(state_dir, e))?;
    }
    for n in &t.nodes {
        let d = NodeDirs::new(state_dir, &n.name);
        write(d.redis.join("redis.conf"), &render::redis_conf(t, n), 0o644)?;
        write(
            d.sentinel.join("sentinel.conf"),
            &render::sentinel_conf(t, n),
            0o644,
        )?;
        std::fs::create_dir_all(&d.log).map_err(|e| Error::io(&d.log, e))?;
        // the clocks start unshifted: 4 KiB of zeros each (see clock-shim/)
        for f in ["redis.offset", "sentinel.offset"] {
            let p = d.clock.join(f);
            std::fs::create_dir_all(&d.clock).map_err(|e| Error::io(&d.clock, e))?;
            std::fs::write(&p, [0u8; 4096]).map_err(|e| Error::io(&p, e))?;
        }
    }
    let script = match &t.reconfig_script {
        Some(p) => std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
        None => render::VIP_SCRIPT.to_string(),
    };
    write(state_dir.join("script/script.sh"), &script, 0o755)?;
    write(state_dir.join("script/wrapper.sh"), render::WRAPPER, 0o755)?;
    let bin = state_dir.join("bin");
    write(bin.join("start-redis"), render::START_REDIS, 0o755)?;
    write(bin.join("start-sentinel"), render::START_SENTINEL, 0o755)?;
    let busybox = crate::backend::doctor::static_busybox()?;
    let dst = bin.join("busybox");
    std::fs::copy(&busybox, &dst).map_err(|e| Error::io(&dst, e))?;
    for tool in ["sh", "ip", "arping"] {
        let l = bin.join(tool);
        std::os::unix::fs::symlink("busybox", &l).map_err(|e| Error::io(&l, e))?;
    }
    // the clock shim, when it was built: without it clocks cannot be shifted
    match crate::faults::clock::shim_program() {
        Ok(shim) => {
            let dst = bin.join("libtestbed_clock.so");
            std::fs::copy(&shim, &dst).map_err(|e| Error::io(&dst, e))?;
        }
        Err(e) => tracing::info!("no clock shim: {e}"),
    }
    Ok(())
}

fn preflight() -> Result<()> {
    if !host::is_root() {
        return Err(Error::Prerequisite {
            what: "the testbed must run as root (it creates links and enters network namespaces)"
                .into(),
            hint: "run as root, e.g. `sudo -E cargo xtask up`".into(),
        });
    }
    for tool in ["ip", "nsenter"] {
        if host::which(tool).is_none() {
            return Err(Error::Prerequisite {
                what: format!("`{tool}` is not on PATH"),
                hint: "run `cargo xtask doctor --fix` (installs iproute2 and util-linux)".into(),
            });
        }
    }
    Ok(())
}

/// Refuses a subnet that a Docker network or a host address already uses.
async fn check_subnet_free(docker: &Docker, t: &Topology, real_parent: bool) -> Result<()> {
    let busy = |detail: String| {
        Error::Busy {
        what: format!("subnet {}", t.subnet),
        detail,
        hint: "pick another `subnet` in the topology, or remove leftovers with `cargo xtask down --all`".into(),
    }
    };
    let nets = docker
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await
        .map_err(|e| Error::docker("list networks", e))?;
    for n in nets {
        for c in n.ipam.and_then(|i| i.config).unwrap_or_default() {
            if let Some(s) = c
                .subnet
                .and_then(|s| s.parse::<crate::model::net::Subnet>().ok())
            {
                if s.overlaps(&t.subnet) {
                    let name = n.name.clone().unwrap_or_default();
                    return Err(busy(format!("docker network `{name}` uses {s}")));
                }
            }
        }
    }
    let used = links::host_addresses_in(t.subnet).await?;
    // On a real LAN (--parent) the host may well have an address there.
    if !used.is_empty() && !real_parent {
        return Err(busy(format!("host addresses in it: {}", used.join(", "))));
    }
    Ok(())
}
