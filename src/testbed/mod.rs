//! A running testbed: the [`Testbed`] handle, bring-up (`up.rs`), its state
//! file (`state.rs`), the live status (`status.rs`), removal
//! (`teardown.rs`) and what a Ctrl-C does (`interrupt.rs`).
//!
//! Invariants: a `Testbed` returned by `up` was healthy when returned; an
//! owned testbed is removed when dropped (unless `TESTBED_KEEP=1`), on
//! success, failure, panic and interruption alike; a failed `up` leaves
//! nothing behind.
//!
//! # Where `Testbed`'s methods are
//!
//! | what | methods | file |
//! |---|---|---|
//! | life | `up`, `attach`, `detach`, `down`, `wait_healthy`, `apply_profile` | `testbed/up.rs`, here |
//! | addresses | `node`, `redis_addr`, `sentinel_addr`, `vip_addr`, `password`, `pid` | here |
//! | live view | `status`, `macs` | `testbed/status.rs` |
//! | faults | `apply`, `resolve`, `resolve_groups` | `faults/mod.rs` |
//! | node | `kill`, `stop`, `start`, `restart`, `pause`, `resume` | `faults/process.rs` |
//! | sentinel | `sentinel_kill`, `sentinel_crash`, `sentinel_pause`, `sentinel_resume`, `sentinel_container`, `simulate_failure`, `failover` | `faults/sentinel.rs` |
//! | server | `debug_sleep`, `client_pause` | `faults/server.rs` |
//! | links | `partition`, `isolate`, `heal`, `partitions` | `faults/partition.rs` |
//! | roles | `sentinel_masters`, `current_master`, `wait_for_switch`, `wait_replica_of` | `observe/roles.rs` |
//! | VIP | `bind_vip`, `holds_vip`, `vip_holders`, `vip_oracle`, `wait_vip_on` | `testbed/up.rs`, `observe/vip.rs` |
//! | script log | `script_calls`, `wait_script_calls` | `observe/vip.rs` |
//! | events | `timeline` (field), `subscribe_all` | `observe/timeline.rs` |

pub mod interrupt;
pub mod state;
mod status;
pub mod teardown;
mod up;

pub use state::{default_state_root, write_state, STATE_FILE};
pub use status::{NodeStatus, Status};
pub use up::UpOptions;

use crate::backend::containers;
use crate::error::{Error, Result};
use crate::model::net::Names;
use crate::model::topology::{Node, ParseOptions, Topology};
use crate::observe::timeline::Timeline;
use bollard::Docker;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

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
    /// The seed every random choice of this testbed's faults derives from
    /// (the impairment daemons' jitter and loss), recorded in its state.
    pub seed: u64,
    owned: bool,
}

impl Testbed {
    /// Attaches to a testbed brought up earlier (by `cargo xtask up`, or
    /// the Compose project). The handle does not remove the testbed when
    /// dropped.
    pub async fn attach(name: &str, state_root: &Path) -> Result<Testbed> {
        let path = state_root.join(name).join(STATE_FILE);
        let state = state::read(state_root, name)?.ok_or_else(|| {
            Error::State(format!(
                "no testbed `{name}` is up (no {}); start it with `cargo xtask up`",
                path.display()
            ))
        })?;
        let opts = ParseOptions {
            allow_any_subnet: true,
        };
        let mut topology = Topology::parse(&state.topology, Some(&path), &opts)?;
        topology.source = None;
        let docker = crate::backend::docker::connect().await?;
        Ok(Testbed {
            docker,
            names: Names::new(name),
            state_dir: state_root.join(name),
            state_root: state_root.to_path_buf(),
            timeline: Timeline::new(),
            up_ms: 0.0,
            up_steps: Vec::new(),
            parent: state.parent,
            seed: state.seed,
            owned: false,
            topology,
        })
    }

    /// Starts recording every sentinel's events (attached handles do not).
    pub fn subscribe_all(&self) {
        for n in &self.topology.nodes {
            self.timeline.subscribe(&n.name, self.sentinel_addr(n));
        }
    }

    /// Leaves the testbed running when this handle is dropped: nobody owns
    /// it from now on, and it stays until `down`.
    pub fn detach(mut self) -> Result<()> {
        self.owned = false;
        interrupt::unregister(&self.topology.name);
        self.write_state(None).map(drop)
    }

    /// Removes the testbed now.
    pub async fn down(mut self) -> Result<teardown::Removed> {
        self.owned = false;
        self.timeline.stop();
        let r = teardown::down(&self.docker, Some(&self.topology.name), &self.state_root).await;
        interrupt::unregister(&self.topology.name);
        r
    }

    pub fn password(&self) -> Option<&str> {
        self.topology.auth.as_ref().map(|a| a.password.as_str())
    }

    pub fn node(&self, name: &str) -> Result<&Node> {
        self.topology.node(name).ok_or_else(|| {
            let known: Vec<&str> = self
                .topology
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect();
            Error::State(format!(
                "no node `{name}` in testbed {} (its nodes: {})",
                self.topology.name,
                known.join(", ")
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

    /// Writes `state.json` with `owner`.
    fn write_state(&self, owner: Option<state::Owner>) -> Result<PathBuf> {
        state::write(
            &self.state_root,
            &self.topology,
            &self.parent,
            self.seed,
            owner,
        )
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
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.timeline.stop();
        if !self.owned {
            return;
        }
        let name = self.topology.name.clone();
        if std::env::var("TESTBED_KEEP").is_ok_and(|v| v == "1") {
            interrupt::unregister(&name);
            let _ = self.write_state(None);
            eprintln!("TESTBED_KEEP=1: testbed `{name}` kept; remove it with `cargo xtask down --name {name}`");
            return;
        }
        if let Err(e) = teardown::down_blocking(&name, self.state_root.clone()) {
            eprintln!("removing testbed {name} failed: {e}");
        }
        interrupt::unregister(&name);
    }
}
