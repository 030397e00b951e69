//! `cargo xtask engine up|down|status|env [--suite sid]`: a second, modern
//! Docker engine beside the host's, from Debian packages, for running the
//! testbed and its suites on a newer engine (API >= 1.44: per-endpoint MACs,
//! Compose v2, containerd 2) while the host's engine keeps its own work.
//!
//! - **The root** (`build.rs`, built once, cached outside any clone):
//!   `debootstrap --variant=minbase --include=docker.io,containerd,runc,iptables,ca-certificates,docker-compose
//!   SUITE` into `/var/cache/redis-sentinel-testbed/engine-SUITE.tmp-PID`,
//!   renamed to `engine-SUITE` only when complete (with `versions.txt`), so a
//!   build that was interrupted is never taken for a good one; a root whose
//!   `versions.txt` lists other packages than [`PACKAGES`] is built again.
//! - **The engine** (`start.rs`): its dockerd, in a private mount namespace
//!   whose root is that root (pivot_root, not the platform recipe's chroot:
//!   under a chroot `docker exec` lands on the host's `/`), on its own socket
//!   `/run/redis-sentinel-testbed/engine-SUITE/docker.sock`, with no iptables
//!   and no masquerading, its own data root inside the cached root (so its
//!   images outlive `down`), its own default bridge `tbeng-SUITE`
//!   (198.19.112-127.1/24, made here) and its processes in a cgroup of their
//!   own (`.../redis-sentinel-testbed/engine-SUITE/{daemon,containers}`), so
//!   that `down` finds every one of them even after the xtask was killed.
//!   Every host path the testbed bind-mounts into containers (the state
//!   folder, the Compose project, `/usr/bin/busybox`) is bound at the same
//!   path inside the root.
//! - **The docker0 trap**: a dockerd deletes the link `docker0` of the
//!   network namespace it runs in — the host's, since the testbed's macvlan
//!   parents live there — when started with `--bridge=none` (the platform
//!   recipe's flag!), and also when it finds its stored default `bridge`
//!   network while `--default-address-pool` is set (every start but the
//!   first; moby's `removeDefaultBridgeInterface`; measured: the host
//!   engine's containers on its default bridge then fail with "could not
//!   find bridge docker0"). So the engine never gets `--bridge=none`, `up`
//!   clears its network store before each start, and `up` and `down` fail
//!   loudly if docker0 vanished.
//! - **Images**: the catalog images the host engine has are copied into it
//!   (`docker save | docker load` through the API) unless it has the same id.
//! - **Compose v2**: the root's docker-compose 2.x is offered as the CLI
//!   plugin (`DOCKER_CONFIG` with a `cli-plugins` link) and standalone
//!   (`TESTBED_COMPOSE`); `env` prints both.
//! - **down** (`stop.rs`): SIGTERM to dockerd, SIGKILL after a bound, then
//!   SIGKILL to whatever is left in its cgroup or its mount namespace, an
//!   unmount of anything under the root or the runtime folder the host still
//!   sees (`mounts.rs`, checked against /proc/self/mountinfo), the removal of
//!   the bridge and the runtime folder. `--purge` removes the cached root too.
//!
//! The host's engine is never stopped, restarted or reconfigured.

use anyhow::{ensure, Result};
use bollard::Docker;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod build;
mod mounts;
mod start;
mod stop;

pub use start::up;
pub use stop::down;

/// Where built roots are cached (outside any clone: shared by worktrees).
pub const CACHE_ROOT: &str = "/var/cache/redis-sentinel-testbed";
/// Where a running engine keeps its socket, pid file and scripts.
pub const RUN_ROOT: &str = "/run/redis-sentinel-testbed";
/// What debootstrap adds to the minbase system.
pub const PACKAGES: &[&str] = &[
    "docker.io",
    "containerd",
    "runc",
    "iptables",
    "ca-certificates",
    "docker-compose",
];
/// The host engine's socket (never the second engine's, whatever DOCKER_HOST says).
const HOST_SOCKET: &str = "/var/run/docker.sock";
/// How long dockerd gets after SIGTERM (it stops its containers first).
const STOP_GRACE: Duration = Duration::from_secs(20);
/// Top cgroup of everything this module starts.
const CGROUP_TOP: &str = "redis-sentinel-testbed";
/// `ifalias` of the engine's bridge (not `redis-sentinel-testbed:`, which
/// marks testbed links that `cargo xtask down --all` removes).
const BRIDGE_ALIAS_PREFIX: &str = "redis-sentinel-testbed-engine:";
/// libnetwork's store inside the root (networks, endpoints, IPAM).
const NETWORK_STORE: &str = "var/lib/docker/network/files/local-kv.db";
/// Where the host's tree goes during pivot_root (inside the root).
const OLD_ROOT: &str = ".host-root";
/// Where networks made without a subnet come from.
const ADDRESS_POOL: &str = "base=198.19.96.0/20,size=24";

/// Options of `engine up`.
#[derive(Debug, Clone, Default)]
pub struct UpOpts {
    /// `dockerd --debug`: the log shows every request's method and path.
    pub debug: bool,
    /// More host paths to bind at the same path inside the root.
    pub binds: Vec<PathBuf>,
    /// How long to wait for the engine to answer.
    pub timeout: Duration,
}

/// One second engine: its suite and where everything of it lives.
#[derive(Debug, Clone)]
pub struct Engine {
    pub suite: String,
    /// The cached build: `root/` (the chroot), `versions.txt`, `packages.txt`.
    pub cache: PathBuf,
    /// The runtime folder: socket, pid file, scripts, records.
    pub run: PathBuf,
}

impl Engine {
    pub fn new(suite: &str) -> Result<Engine> {
        ensure!(
            !suite.is_empty()
                && suite
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "suite `{suite}`: use a Debian suite name such as sid, trixie, forky"
        );
        Ok(Engine {
            suite: suite.to_string(),
            cache: Path::new(CACHE_ROOT).join(format!("engine-{suite}")),
            run: Path::new(RUN_ROOT).join(format!("engine-{suite}")),
        })
    }

    pub fn root(&self) -> PathBuf {
        self.cache.join("root")
    }
    pub fn socket(&self) -> PathBuf {
        self.run.join("docker.sock")
    }
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }
    fn pid_file(&self) -> PathBuf {
        self.run.join("engine.pid")
    }
    fn mntns_file(&self) -> PathBuf {
        self.run.join("engine.mntns")
    }
    fn placeholders_file(&self) -> PathBuf {
        self.run.join("placeholders")
    }
    /// The host paths bound inside, one a line (what `up` bound).
    fn binds_file(&self) -> PathBuf {
        self.run.join("binds")
    }
    fn docker0_file(&self) -> PathBuf {
        self.run.join("docker0-at-up")
    }
    /// dockerd's log: beside the cache, so that it outlives `down`.
    pub fn log(&self) -> PathBuf {
        Path::new(CACHE_ROOT).join(format!("engine-{}.log", self.suite))
    }
    fn lock_file(&self) -> PathBuf {
        Path::new(CACHE_ROOT).join(format!("engine-{}.lock", self.suite))
    }
    fn versions_file(&self) -> PathBuf {
        self.cache.join("versions.txt")
    }
    /// The cgroup path (relative to a hierarchy's mount) of the engine.
    fn cgroup_rel(&self) -> String {
        format!("{CGROUP_TOP}/engine-{}", self.suite)
    }
    /// `--cgroup-parent` of its containers.
    fn cgroup_parent(&self) -> String {
        format!("/{}/containers", self.cgroup_rel())
    }
    /// The engine's own default bridge (made by `up`, removed by `down`).
    pub fn bridge(&self) -> String {
        let mut n = format!("tbeng-{}", self.suite);
        n.truncate(15);
        n
    }
    /// Its address: 198.19.(112 + hash % 16).1/24, outside the host
    /// engine's 198.19.128.0/17 and the address pool.
    pub fn bridge_cidr(&self) -> String {
        let h = self.suite.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        format!("198.19.{}.1/24", 112 + h % 16)
    }
    fn bridge_alias(&self) -> String {
        format!("{BRIDGE_ALIAS_PREFIX}{}", self.suite)
    }
    /// Complete, and built from [`PACKAGES`] (the names in `versions.txt`).
    fn is_built(&self) -> bool {
        let Ok(v) = std::fs::read_to_string(self.versions_file()) else {
            return false;
        };
        self.root().join("usr/sbin/dockerd").is_file() && build::lists_packages(&v, PACKAGES)
    }
    /// The root's Compose v2 binary (Debian ships it as a CLI plugin).
    pub fn compose_binary(&self) -> PathBuf {
        self.root()
            .join("usr/libexec/docker/cli-plugins/docker-compose")
    }
    /// A `DOCKER_CONFIG` folder whose `cli-plugins` offers that binary as
    /// `docker compose` to the host's docker CLI.
    pub fn docker_config(&self) -> PathBuf {
        self.run.join("docker-config")
    }
}

/// A timer that prints each step with the time it took.
struct Clock {
    start: Instant,
    last: Instant,
}

impl Clock {
    fn new() -> Clock {
        let now = Instant::now();
        Clock {
            start: now,
            last: now,
        }
    }
    /// Prints `msg` with the step's and the total time; returns the step's seconds.
    fn step(&mut self, msg: impl std::fmt::Display) -> f64 {
        let now = Instant::now();
        let step = (now - self.last).as_secs_f64();
        self.last = now;
        eprintln!(
            "[{:>6.1}s] engine: {msg} ({step:.2} s)",
            (now - self.start).as_secs_f64()
        );
        step
    }
}

/// What a shell needs to use the engine: `eval "$(cargo xtask engine env)"`.
fn print_env(e: &Engine) {
    println!("export DOCKER_HOST={}", e.docker_host());
    if e.docker_config()
        .join("cli-plugins/docker-compose")
        .exists()
    {
        println!(
            "# Compose v2 of the engine's root: `docker compose` (plugin) through DOCKER_CONFIG,"
        );
        println!(
            "# or standalone: export TESTBED_COMPOSE={}",
            e.compose_binary().display()
        );
        println!("export DOCKER_CONFIG={}", e.docker_config().display());
    }
}

/// A connection to the engine if it answers ping (API negotiated).
async fn answering(e: &Engine) -> Option<Docker> {
    if !e.socket().exists() {
        return None;
    }
    testbed::docker::connect_unix(&e.socket().display().to_string())
        .await
        .ok()
}

/// The engine on `e`'s socket (not `DOCKER_HOST`'s) as the library names it.
async fn describe(e: &Engine, d: &Docker) -> String {
    let mut info = testbed::docker::engine_info(d).await;
    info.host = e.docker_host();
    info.describe()
}

pub async fn status(e: &Engine) -> Result<()> {
    println!("engine {}: cache {}", e.suite, e.cache.display());
    match std::fs::read_to_string(e.versions_file()) {
        Ok(v) => {
            for l in v.lines() {
                println!("  {l}");
            }
        }
        Err(_) => println!("  root not built (`cargo xtask engine up` builds it)"),
    }
    let pid = stop::recorded_pid(e).filter(|p| stop::alive(*p) && stop::is_ours(e, *p));
    println!(
        "  dockerd pid: {}",
        pid.map_or("not running".into(), |p| p.to_string())
    );
    match answering(e).await {
        Some(d) => {
            println!("  {}: {}", e.docker_host(), describe(e, &d).await);
            if let Ok(imgs) = d
                .list_images(None::<bollard::query_parameters::ListImagesOptions>)
                .await
            {
                let tags: Vec<String> = imgs.into_iter().flat_map(|i| i.repo_tags).collect();
                println!("  images: {}", tags.join(", "));
            }
            if let Ok(cs) = d
                .list_containers(Some(
                    bollard::query_parameters::ListContainersOptionsBuilder::default()
                        .all(true)
                        .build(),
                ))
                .await
            {
                println!("  containers: {}", cs.len());
            }
        }
        None => println!("  {}: no answer", e.docker_host()),
    }
    let procs = stop::cgroup_pids(e);
    println!("  processes in its cgroups: {}", procs.len());
    let m = mounts::mounts_under(&[&e.root(), &e.run])?;
    println!(
        "  host-visible mounts under its root or runtime folder: {}",
        m.len()
    );
    if e.compose_binary().is_file() {
        println!("  compose v2: {}", e.compose_binary().display());
    }
    println!("  log: {}", e.log().display());
    Ok(())
}

pub async fn env(e: &Engine) -> Result<()> {
    if answering(e).await.is_none() {
        eprintln!(
            "engine {}: not answering (`cargo xtask engine up --suite {}`)",
            e.suite, e.suite
        );
    }
    print_env(e);
    Ok(())
}

#[cfg(test)]
mod tests;
