//! The running testbed: bring-up (`Testbed::up`), attaching to one started
//! earlier, addresses, live status, and removal on drop.
//!
//! Invariants: a `Testbed` returned by `up` was healthy when returned; an
//! owned testbed is removed when dropped (unless `TESTBED_KEEP=1`), on
//! success, failure and panic alike; a failed `up` leaves nothing behind.

pub mod teardown;

use crate::backend::containers::{self, NodeDirs};
use crate::backend::progress::Progress;
use crate::backend::{host, image, links};
use crate::error::{Error, Result};
use crate::model::net::{mac_for, Names};
use crate::model::render::{self, paths};
use crate::model::topology::{Node, ParseOptions, Profile, Topology};
use crate::observe::timeline::{Kind, Timeline};
use crate::observe::{health, wait};
use bollard::Docker;
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sentinel's ping period (`SENTINEL_PING_PERIOD`), restored after bring-up.
const SENTINEL_PING_PERIOD_MS: u32 = 1000;
/// The ping period during bring-up: how often a sentinel retries a peer
/// whose port was still closed.
const BRINGUP_PING_PERIOD_MS: u32 = 100;

/// File in a testbed's state directory that marks it and records how it was
/// made.
pub const STATE_FILE: &str = "state.json";

/// Where state, logs and reports go by default: `target/testbed` of this
/// workspace, or `$TESTBED_STATE_DIR`.
pub fn default_state_root() -> PathBuf {
    std::env::var_os("TESTBED_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/testbed"))
}

/// How to bring a testbed up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Use this existing interface as the macvlan parent instead of a veth.
    pub parent: Option<String>,
    pub state_root: PathBuf,
    /// How long the health conditions may take.
    pub health_timeout: Duration,
    /// If the testbed is already running, attach to it instead of failing.
    pub reuse_running: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            parent: None,
            state_root: default_state_root(),
            health_timeout: Duration::from_secs(60),
            reuse_running: false,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    topology: String,
    parent: String,
}

/// Records a testbed whose containers something else starts (the Compose
/// project in `compose/`), so that [`Testbed::attach`], `cargo xtask status`
/// and `down` find it as they find one made by [`Testbed::up`].
pub fn write_state(state_root: &Path, topology: &Topology, parent: &str) -> Result<PathBuf> {
    let dir = state_root.join(&topology.name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let state = StateFile {
        topology: topology.to_toml(),
        parent: parent.to_string(),
    };
    let path = dir.join(STATE_FILE);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&state).expect("serialises"),
    )
    .map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// A running testbed.
pub struct Testbed {
    pub docker: Docker,
    pub topology: Topology,
    pub names: Names,
    pub state_root: PathBuf,
    pub state_dir: PathBuf,
    pub timeline: Timeline,
    /// ms from the start of `up` to healthy (0 when attached).
    pub up_ms: f64,
    /// The steps of `up`: (ms since its start, step); empty when attached.
    pub up_steps: Vec<(f64, String)>,
    /// The macvlan parent in use.
    pub parent: String,
    owned: bool,
}

impl Testbed {
    /// Brings a testbed up and returns once it is healthy.
    pub async fn up(topology: Topology, opts: UpOptions) -> Result<Testbed> {
        let progress = Progress::new(&format!("up {}", topology.name));
        preflight()?;
        let docker = crate::backend::docker::connect().await?;
        image::ensure_image(&docker, &topology.image, &opts.state_root.join("images")).await?;
        let names = Names::new(&topology.name);
        let existing = teardown::containers(&docker, Some(&topology.name)).await?;
        if !existing.is_empty() {
            if opts.reuse_running {
                if let Ok(tb) = Testbed::attach(&topology.name, &opts.state_root).await {
                    if tb.topology == strip_source(&topology) || tb.topology.name == topology.name {
                        progress.done("already running");
                        return Ok(tb);
                    }
                }
            }
            return Err(Error::Busy {
                what: format!("testbed `{}`", topology.name),
                detail: format!("containers exist already: {}", existing.join(", ")),
                hint: format!(
                    "remove them with `cargo xtask down --name {}` (or `down --all`)",
                    topology.name
                ),
            });
        }
        check_subnet_free(&docker, &topology, opts.parent.is_some()).await?;

        teardown::register(&topology.name, opts.state_root.clone());
        let state_dir = opts.state_root.join(&topology.name);
        let mut tb = Testbed {
            docker,
            names,
            state_dir,
            state_root: opts.state_root.clone(),
            timeline: Timeline::new(),
            up_ms: 0.0,
            up_steps: Vec::new(),
            parent: String::new(),
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
        self.write_files()?;
        self.parent =
            links::create_segment(&self.names, t.subnet, t.shim_ip(), opts.parent.as_deref())?;
        containers::create_network(&self.docker, &t, &self.names, &self.parent).await?;
        let state = StateFile {
            topology: t.to_toml(),
            parent: self.parent.clone(),
        };
        let state_path = self.state_dir.join(STATE_FILE);
        std::fs::write(
            &state_path,
            serde_json::to_string_pretty(&state).expect("serialises"),
        )
        .map_err(|e| Error::io(&state_path, e))?;
        progress.step(format!(
            "segment {} (parent {}, shim {} {})",
            t.subnet,
            self.parent,
            self.names.shim,
            t.shim_ip()
        ));

        let tools = self.state_dir.join("bin");
        let script_dir = self.state_dir.join("script");
        // Each node as soon as it can, nodes in parallel: its redis container,
        // the MAC check, the VIP (initial master only: the seed binds it by
        // hand, so do we), its sentinel (which needs nothing but its redis
        // container's namespace). Docker starts one or two containers at a
        // time on a small machine: a sentinel starting while another node's
        // redis container starts saves that much. The replicas' redis
        // containers start once the master's has: a replica that finds the
        // master's port closed retries only at its next replication cron, a
        // second later.
        let master = t.initial_master().clone();
        let (master_started, started) = tokio::sync::watch::channel(false);
        let (this, master_started) = (&*self, &master_started);
        let (tools, script_dir) = (&tools, &script_dir);
        let reconnect_tweaked = try_join_all(t.nodes.iter().map(|n| {
            let mut started = started.clone();
            let is_master = n.name == master.name;
            async move {
                if !is_master {
                    started.wait_for(|s| *s).await.map_err(|_| {
                        Error::State("the master's redis container did not start".into())
                    })?;
                }
                this.start_node(n, is_master, master_started, tools, script_dir)
                    .await
            }
        }))
        .await?;
        progress.step("containers started (each sentinel right after its redis)");
        for n in &t.nodes {
            self.timeline.subscribe(&n.name, self.sentinel_addr(n));
        }
        self.wait_healthy(&master, opts.health_timeout).await?;
        for (n, tweaked) in t.nodes.iter().zip(reconnect_tweaked) {
            if tweaked {
                self.set_ping_period(n, SENTINEL_PING_PERIOD_MS).await?;
            }
        }
        Ok(())
    }

    /// Starts `n`'s redis container (and says so on `master_started` if it
    /// is the `initial_master`), checks its MAC, binds the VIP on it if
    /// `initial_master`, starts its sentinel and applies the profile. Returns
    /// whether the bring-up ping period is in force on its sentinel.
    async fn start_node(
        &self,
        n: &Node,
        initial_master: bool,
        master_started: &tokio::sync::watch::Sender<bool>,
        tools: &Path,
        script_dir: &Path,
    ) -> Result<bool> {
        let t = &self.topology;
        let dirs = || NodeDirs::new(&self.state_dir, &n.name);
        containers::start_redis(&self.docker, t, &self.names, n, dirs(), tools).await?;
        if initial_master {
            master_started.send_replace(true);
        }
        containers::verify_mac(&self.docker, &self.names, n).await?;
        if initial_master {
            self.bind_vip(n).await?;
        }
        containers::start_sentinel(&self.docker, t, &self.names, n, dirs(), tools, script_dir)
            .await?;
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
                crate::backend::client::query::<String>(addr, None, &redis::cmd("PING"))
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
        crate::backend::client::query::<()>(self.sentinel_addr(n), None, &cmd).await
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
            crate::backend::client::query::<()>(addr, None, &cmd)
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

    /// Writes configs, scripts and tools into the state directory.
    fn write_files(&self) -> Result<()> {
        let t = &self.topology;
        let write = |p: PathBuf, text: &str, mode: u32| -> Result<()> {
            use std::os::unix::fs::PermissionsExt;
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            }
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(&p, e))
        };
        if self.state_dir.exists() {
            std::fs::remove_dir_all(&self.state_dir).map_err(|e| Error::io(&self.state_dir, e))?;
        }
        for n in &t.nodes {
            let d = NodeDirs::new(&self.state_dir, &n.name);
            write(d.redis.join("redis.conf"), &render::redis_conf(t, n), 0o644)?;
            write(
                d.sentinel.join("sentinel.conf"),
                &render::sentinel_conf(t, n),
                0o644,
            )?;
            std::fs::create_dir_all(&d.log).map_err(|e| Error::io(&d.log, e))?;
        }
        let script = match &t.reconfig_script {
            Some(p) => std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
            None => render::VIP_SCRIPT.to_string(),
        };
        write(self.state_dir.join("script/script.sh"), &script, 0o755)?;
        write(
            self.state_dir.join("script/wrapper.sh"),
            render::WRAPPER,
            0o755,
        )?;
        let bin = self.state_dir.join("bin");
        write(bin.join("start-redis"), render::START_REDIS, 0o755)?;
        write(bin.join("start-sentinel"), render::START_SENTINEL, 0o755)?;
        let busybox = crate::backend::doctor::static_busybox()?;
        let dst = bin.join("busybox");
        std::fs::copy(&busybox, &dst).map_err(|e| Error::io(&dst, e))?;
        for tool in ["sh", "ip", "arping"] {
            let l = bin.join(tool);
            std::os::unix::fs::symlink("busybox", &l).map_err(|e| Error::io(&l, e))?;
        }
        Ok(())
    }

    /// Attaches to a testbed brought up earlier (by `cargo xtask up`). The
    /// handle does not remove the testbed when dropped.
    pub async fn attach(name: &str, state_root: &Path) -> Result<Testbed> {
        let path = state_root.join(name).join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::State(format!(
                "no testbed `{name}` is up (no {}); start it with `cargo xtask up`",
                path.display()
            )),
            _ => Error::io(&path, e),
        })?;
        let state: StateFile = serde_json::from_str(&text)
            .map_err(|e| Error::State(format!("{}: {e}", path.display())))?;
        let opts = ParseOptions {
            allow_any_subnet: true,
        };
        let topology = Topology::parse(&state.topology, Some(&path), &opts)?;
        let docker = crate::backend::docker::connect().await?;
        let tb = Testbed {
            docker,
            names: Names::new(name),
            state_dir: state_root.join(name),
            state_root: state_root.to_path_buf(),
            timeline: Timeline::new(),
            up_ms: 0.0,
            up_steps: Vec::new(),
            parent: state.parent,
            owned: false,
            topology: strip_source(&topology),
        };
        Ok(tb)
    }

    /// Starts recording every sentinel's events (attached handles do not).
    pub fn subscribe_all(&self) {
        for n in &self.topology.nodes {
            self.timeline.subscribe(&n.name, self.sentinel_addr(n));
        }
    }

    /// Leaves the testbed running when this handle is dropped.
    pub fn detach(mut self) {
        self.owned = false;
        teardown::unregister(&self.topology.name);
    }

    /// Removes the testbed now.
    pub async fn down(mut self) -> Result<teardown::Removed> {
        self.owned = false;
        self.timeline.stop();
        teardown::unregister(&self.topology.name);
        teardown::down(&self.docker, Some(&self.topology.name), &self.state_root).await
    }

    pub fn password(&self) -> Option<&str> {
        self.topology.auth.as_ref().map(|a| a.password.as_str())
    }

    pub fn node(&self, name: &str) -> Result<&Node> {
        self.topology.node(name).ok_or_else(|| {
            Error::State(format!(
                "no node `{name}` in testbed {}",
                self.topology.name
            ))
        })
    }

    pub fn redis_addr(&self, n: &Node) -> SocketAddrV4 {
        SocketAddrV4::new(n.ip, self.topology.redis_port)
    }

    pub fn sentinel_addr(&self, n: &Node) -> SocketAddrV4 {
        SocketAddrV4::new(n.ip, self.topology.sentinel_port)
    }

    pub fn vip_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.topology.vip, self.topology.redis_port)
    }

    /// The host PID of a node's redis container (0 when not running).
    pub async fn pid(&self, n: &Node) -> Result<i64> {
        Ok(containers::state(
            &self.docker,
            &self.names.redis(&n.name),
            &self.names.network,
        )
        .await?
        .filter(|s| s.running)
        .map_or(0, |s| s.pid))
    }

    /// Adds the VIP on `n`'s interface and announces it (gratuitous ARP),
    /// from the host inside the node's namespace.
    pub async fn bind_vip(&self, n: &Node) -> Result<()> {
        let pid = self.pid(n).await?;
        let cidr = format!("{}/{}", self.topology.vip, self.topology.subnet.prefix());
        host::in_netns(pid, "ip", &["addr", "add", &cidr, "dev", paths::INTERFACE]).await?;
        let busybox = self.state_dir.join("bin/busybox").display().to_string();
        let vip = self.topology.vip.to_string();
        host::in_netns(
            pid,
            &busybox,
            &[
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
            ],
        )
        .await?;
        Ok(())
    }

    /// Whether `n`'s interface carries the VIP (`None`: not running).
    pub async fn holds_vip(&self, n: &Node) -> Result<Option<bool>> {
        let pid = self.pid(n).await?;
        if pid == 0 {
            return Ok(None);
        }
        let out = host::in_netns(
            pid,
            "ip",
            &["-o", "-4", "addr", "show", "dev", paths::INTERFACE],
        )
        .await?;
        let vip = format!(" {}/", self.topology.vip);
        Ok(Some(out.contains(&vip)))
    }

    /// The live view: every node's role, MAC and whether it holds the VIP.
    pub async fn status(&self) -> Result<Status> {
        let t = &self.topology;
        let mut nodes = Vec::new();
        for n in &t.nodes {
            let role = match crate::backend::client::info(
                self.redis_addr(n),
                self.password(),
                "replication",
            )
            .await
            {
                Ok(i) => match i.get("role").map(String::as_str) {
                    Some("master") => "master",
                    Some("slave") => "replica",
                    _ => "down",
                },
                Err(_) => "down",
            };
            nodes.push(NodeStatus {
                name: n.name.clone(),
                ip: n.ip.to_string(),
                mac: mac_for(n.ip),
                redis_port: t.redis_port,
                sentinel_port: t.sentinel_port,
                role: role.to_string(),
                holds_vip: self.holds_vip(n).await?.unwrap_or(false),
                redis_container: self.names.redis(&n.name),
                sentinel_container: self.names.sentinel(&n.name),
            });
        }
        Ok(Status {
            name: t.name.clone(),
            master_name: t.master_name.clone(),
            vip: t.vip.to_string(),
            subnet: t.subnet.to_string(),
            nodes,
        })
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.timeline.stop();
        if !self.owned {
            return;
        }
        let name = self.topology.name.clone();
        if std::env::var("TESTBED_KEEP").is_ok_and(|v| v == "1") {
            teardown::unregister(&name);
            eprintln!("TESTBED_KEEP=1: testbed `{name}` kept; remove it with `cargo xtask down --name {name}`");
            return;
        }
        teardown::unregister(&name);
        if let Err(e) = teardown::down_blocking(&name, self.state_root.clone()) {
            eprintln!("removing testbed {name} failed: {e}; run `cargo xtask down --all`");
        }
    }
}

/// `cargo xtask status --json`: a stable interface.
#[derive(Debug, Serialize, Deserialize)]
pub struct Status {
    pub name: String,
    pub master_name: String,
    pub vip: String,
    pub subnet: String,
    pub nodes: Vec<NodeStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub ip: String,
    pub mac: String,
    pub redis_port: u16,
    pub sentinel_port: u16,
    /// `master`, `replica` or `down`.
    pub role: String,
    pub holds_vip: bool,
    pub redis_container: String,
    pub sentinel_container: String,
}

fn strip_source(t: &Topology) -> Topology {
    let mut t = t.clone();
    t.source = None;
    t
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
                    return Err(Error::Busy {
                        what: format!("subnet {}", t.subnet),
                        detail: format!("docker network `{}` uses {s}", n.name.unwrap_or_default()),
                        hint: "pick another `subnet` in the topology, or remove leftovers with `cargo xtask down --all`".into(),
                    });
                }
            }
        }
    }
    let busy = links::host_addresses_in(t.subnet)?;
    // On a real LAN (--parent) the host may well have an address there.
    if !busy.is_empty() && !real_parent {
        return Err(Error::Busy {
            what: format!("subnet {}", t.subnet),
            detail: format!("host addresses in it: {}", busy.join(", ")),
            hint: "pick another `subnet` in the topology, or remove leftovers with `cargo xtask down --all`".into(),
        });
    }
    Ok(())
}
