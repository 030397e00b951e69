//! The whole `cargo xtask` command line, declared in one place.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use testbed::faults::{
    parse_groups, Action, Direction, PauseMode, Process, SimulateFailure, Target, Verb,
};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Redis Sentinel HA testbed: bring-up, status, teardown, images"
)]
pub struct Xtask {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, clap::Args)]
pub struct TopologyArgs {
    /// Topology file (TOML).
    #[arg(long, default_value = "fixtures/topology.toml")]
    pub topology: PathBuf,
    /// Override the topology's image (e.g. testbed/redis:7.0, testbed/valkey:8.1, redis:7.4).
    #[arg(long)]
    pub image: Option<String>,
    /// Accept a subnet outside 198.18.0.0/15 (for a real LAN with --parent).
    #[arg(long)]
    pub allow_any_subnet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Start the testbed and wait until it is healthy (a no-op when it runs
    /// with the same topology; refused with what differs otherwise).
    Up {
        #[command(flatten)]
        topo: TopologyArgs,
        /// Replace a running testbed of that name.
        #[arg(long)]
        replace: bool,
        /// Use this existing interface as the macvlan parent instead of a private veth.
        #[arg(long)]
        parent: Option<String>,
        /// Do not install missing prerequisites or start dockerd.
        #[arg(long)]
        no_fix: bool,
    },
    /// Show the running testbed.
    Status {
        /// Testbed name (default: from the topology file).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "fixtures/topology.toml")]
        topology: PathBuf,
        /// Machine-readable output (a stable interface).
        #[arg(long)]
        json: bool,
    },
    /// Remove the testbed (or, with --all, everything any testbed left).
    Down {
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "fixtures/topology.toml")]
        topology: PathBuf,
        /// Remove every testbed-labelled container, network and link on this machine.
        #[arg(long)]
        all: bool,
    },
    /// Show container logs, prefixed by node.
    Logs {
        /// Only this node.
        node: Option<String>,
        /// The sentinel containers instead of the redis ones.
        #[arg(long)]
        sentinel: bool,
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "fixtures/topology.toml")]
        topology: PathBuf,
    },
    /// Check prerequisites; --fix installs what is missing and starts dockerd.
    Doctor {
        #[arg(long)]
        fix: bool,
    },
    /// Build the offline images from Debian packages (cached).
    Image {
        /// Images to build (default: the default image; testbed/clients:dev is
        /// the client programs' image of `cargo xtask clients`).
        names: Vec<String>,
        /// Build every image of the catalog.
        #[arg(long)]
        all: bool,
    },
    /// Faults on a running testbed and its live event stream (kill, partition, events, ...).
    #[command(flatten)]
    Chaos(Chaos),
    /// Render the Docker Compose project of a topology (compose/ is that of
    /// fixtures/topology.toml); --check fails when the files differ instead.
    Compose {
        #[command(flatten)]
        topo: TopologyArgs,
        /// Project directory to write (or check); a relative path is from the workspace root.
        #[arg(long, default_value = "compose")]
        out: PathBuf,
        /// Compare with a fresh rendering and fail on any difference; write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Run a scenario file, each repetition on a fresh testbed; print PASS/FAIL per
    /// expectation and write a report bundle under target/testbed/reports/.
    Repro(ReproArgs),
    /// Run scenarios x images (each cell --repeat times, --jobs testbeds at once)
    /// and write target/testbed/matrix/<UTC>/matrix.{md,json}.
    Matrix(MatrixArgs),
    /// Work on report bundles: `report merge DIR...` joins the shards of one plan.
    Report {
        #[command(subcommand)]
        cmd: ReportCmd,
    },
    /// The client matrix: each scenario with every selected client writing at
    /// once on one testbed per run; writes target/testbed/clients/<UTC>/matrix.{md,json,svg}.
    Clients(ClientsArgs),
    /// A mixed-fault soak: one testbed under the write workload and a seeded
    /// random schedule of faults (kill, pause, isolate, partition,
    /// sentinel-kill, delay, loss, flap, rate, clock-jump, failover), each
    /// repaired and waited out; at the end one healthy master, one VIP
    /// holder and every acknowledged write accounted for. Writes
    /// target/testbed/reports/soak-<UTC time>/.
    Soak(SoakArgs),
    /// Measure bring-up (`up` vs docker-compose) and failover phases (per setting,
    /// per image, containers vs plain processes on loopback); write
    /// target/testbed/bench/<UTC time>.{json,md,svg}. Takes ~10 min (`--quick` ~2).
    Bench {
        /// Fewer runs (every section present, reduced): about 2 minutes.
        #[arg(long)]
        quick: bool,
        /// Runs per setting (bring-up rounds and failovers per setting).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        runs: Option<u32>,
        /// Only these sections (default: all).
        #[arg(long, value_delimiter = ',')]
        only: Vec<BenchSection>,
    },
    /// A second, modern Docker engine beside the host's (Debian SUITE's
    /// docker.io in a cached root, private mount namespace, own socket).
    Engine {
        action: EngineAction,
        /// Debian suite of the engine's root.
        #[arg(long, default_value = "sid")]
        suite: String,
        /// up: run dockerd with --debug (its log shows every request path).
        #[arg(long)]
        debug: bool,
        /// up: one more host path to bind at the same path inside the root (repeatable).
        #[arg(long)]
        bind: Vec<PathBuf>,
        /// up: seconds to wait for the engine to answer.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// down: also remove the cached root.
        #[arg(long)]
        purge: bool,
    },
    /// Create or remove the host segment (macvlan parent + shim) of a topology's
    /// Compose project, named as `cargo xtask up` names a testbed's.
    Segment {
        action: SegmentAction,
        #[arg(long, default_value = "fixtures/topology.toml")]
        topology: PathBuf,
        /// Use this existing interface (a real NIC) as the parent instead of a veth pair.
        #[arg(long)]
        parent: Option<String>,
        /// Accept a subnet outside 198.18.0.0/15 (for a real LAN with --parent).
        #[arg(long)]
        allow_any_subnet: bool,
    },
}

/// `cargo xtask repro`.
#[derive(Debug, clap::Args)]
pub struct ReproArgs {
    /// Scenario file (TOML), e.g. fixtures/scenarios/kill-master.toml.
    pub file: PathBuf,
    /// How many times to run it; the report gives the failure rate per expectation.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Override the scenario topology's image (e.g. testbed/valkey:8.1).
    #[arg(long)]
    pub image: Option<String>,
    /// Go on with the next run when one cannot complete (e.g. bring-up failed).
    #[arg(long)]
    pub keep_going: bool,
    /// The /24 of 198.18.0.0/16 its testbed uses (198.18.SLOT.0/24); with
    /// --jobs K the K testbeds use SLOT..SLOT+K-1. Default: 200, or 240 with --jobs.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub slot: Option<u8>,
    /// Testbeds at once (each its own name and /24: slots 240-254).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=15))]
    pub jobs: u32,
    /// Run only the I-th of N shares of the repeats (seeds I, I+N, I+2N, ...);
    /// `cargo xtask report merge` joins the shards' bundles.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
}

/// `I/N` with 1 <= I <= N.
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not I/N (e.g. 1/4: the first of 4 shards)"))?;
    let (i, n): (u32, u32) = match (i.trim().parse(), n.trim().parse()) {
        (Ok(i), Ok(n)) => (i, n),
        _ => return Err(format!("`{s}` is not I/N with whole numbers (e.g. 2/4)")),
    };
    if n == 0 || i == 0 || i > n {
        return Err(format!(
            "shard {i} of {n} does not exist: I must be between 1 and N (e.g. 1/{})",
            n.max(1)
        ));
    }
    Ok((i, n))
}

/// `cargo xtask matrix`.
#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// Scenario files (default: every file of fixtures/scenarios/).
    pub scenarios: Vec<PathBuf>,
    /// Images, one column each (default: every image of the offline catalog
    /// that is built on this machine).
    #[arg(long = "image", value_name = "IMG")]
    pub images: Vec<String>,
    /// Runs per cell.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Testbeds at once (slots 240-254).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=15))]
    pub jobs: u32,
    /// Also write the matrix as a committed document (links to scenario
    /// files instead of bundles), e.g. docs/behaviour-matrix.md.
    #[arg(long)]
    pub doc: Option<PathBuf>,
    /// Run nothing: join earlier runs' folders (target/testbed/matrix/<UTC>/,
    /// e.g. one per image) into one matrix; a later run's cell replaces an
    /// earlier one's.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["scenarios", "images"])]
    pub join: Vec<PathBuf>,
}

/// `cargo xtask report ...`.
#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Merge bundles of one plan's shards (`repro --shard I/N`) into one report
    /// whose rates count every shard.
    Merge {
        /// Bundle folders (target/testbed/reports/<scenario>-<UTC>/).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write (default: target/testbed/reports/<scenario>-merged-<UTC>/).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `cargo xtask clients`.
#[derive(Debug, clap::Args)]
pub struct ClientsArgs {
    /// Scenario files (default: every file of fixtures/scenarios/clients/).
    pub scenarios: Vec<PathBuf>,
    /// Only these client programs (repeatable, or comma-separated; default: all).
    #[arg(long)]
    pub client: Vec<String>,
    /// Runs per scenario; the matrix gives the median and range of the recovery.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// The first /24 of the ten it uses (198.18.SLOT.0/24 to SLOT+9).
    #[arg(long, default_value_t = 210, value_parser = clap::value_parser!(u8).range(1..=245))]
    pub slot: u8,
    /// Each client's writes per second (TESTBED_RATE).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rate: u32,
    /// Each client's command timeout in ms (TESTBED_TIMEOUT_MS).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: u64,
    /// Override the scenarios' server image (e.g. testbed/valkey:8.1).
    #[arg(long)]
    pub image: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long faults are applied (the final check comes after).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub minutes: u32,
    /// The schedule's seed (decimal or 0x-hex); default: a fresh one, printed.
    #[arg(long)]
    pub seed: Option<String>,
    /// Writes per second of the workload (through the VIP).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub rate: u32,
    /// The topology (relocated to the soak's name and slot).
    #[arg(long, default_value = "fixtures/topology.toml")]
    pub topology: PathBuf,
    /// Override the topology's image (e.g. testbed/valkey:8.1).
    #[arg(long)]
    pub image: Option<String>,
    /// The testbed's name.
    #[arg(long, default_value = "soak")]
    pub name: String,
    /// The /24 of 198.18.0.0/16 its testbed uses (198.18.SLOT.0/24).
    #[arg(long, default_value_t = 179, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub slot: u8,
}

/// A section of `cargo xtask bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchSection {
    /// `up` vs Compose to healthy, the footprint.
    Bringup,
    /// Failover phases per setting, per image, against loopback.
    Failover,
    /// Impairments: asked vs measured, the daemon's CPU.
    Impair,
    /// How `up` and failover grow with nodes and with testbeds at once.
    Growth,
    /// Runs per minute of kill-master with 1, 2, 4 testbeds at once (`repro --jobs`).
    Parallel,
}

/// What `cargo xtask engine` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineAction {
    Up,
    Down,
    Status,
    Env,
}

/// What `cargo xtask segment` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SegmentAction {
    Up,
    Down,
}

/// Which running testbed a chaos verb acts on.
#[derive(Debug, clap::Args)]
pub struct Attach {
    /// Testbed name (default: the name in the topology file).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "fixtures/topology.toml")]
    pub topology: PathBuf,
}

/// Two groups of link ends: `A... -- B...` or `--from A --to B,C`; without
/// a second group, every other node. Options go before `--`.
#[derive(Debug, clap::Args)]
pub struct Groups {
    /// First group.
    pub a: Vec<String>,
    /// Second group, after `--` (default: every other node).
    #[arg(last = true)]
    pub b: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub from: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub to: Vec<String>,
    /// Only from the first group to the second.
    #[arg(long)]
    pub one_way: bool,
    #[command(flatten)]
    pub at: Attach,
}

impl Groups {
    /// The two groups and the direction; `host` only where `host_ok`.
    fn parse(&self, host_ok: bool) -> Result<(Vec<Target>, Vec<Target>, Direction), String> {
        let Groups {
            a,
            b,
            from,
            to,
            one_way,
            ..
        } = self;
        // clap hands everything after `--` to the second group
        if let Some(w) = a.iter().chain(b).find(|w| w.starts_with('-')) {
            return Err(format!("`{w}` is not a node: options go before `--`"));
        }
        let (a, b) =
            match (
                a.is_empty() && b.is_empty(),
                from.is_empty() && to.is_empty(),
            ) {
                (false, true) => (a, b),
                (true, false) => (from, to),
                (true, true) => return Err(
                    "name the groups: `node1 -- node2 node3` or `--from node1 --to node2,node3`"
                        .into(),
                ),
                (false, false) => {
                    return Err("give the groups as words or with --from/--to, not both".into())
                }
            };
        let (a, b) = parse_groups(a, b)?;
        if !host_ok {
            if let Some(h) = a.iter().chain(&b).find(|t| **t == Target::Host) {
                return Err(format!(
                    "`{h}` is not a node: partitions never cut the host"
                ));
            }
        }
        let direction = if *one_way {
            Direction::OneWay
        } else {
            Direction::Both
        };
        Ok((a, b, direction))
    }
}

/// Nodes to act on: node names, `master` (the current master),
/// `initial-master` or `replicas`.
#[derive(Debug, clap::Args)]
pub struct Targets {
    #[arg(required = true)]
    pub targets: Vec<Target>,
    #[command(flatten)]
    pub at: Attach,
}

/// The verbs of `testbed::model::verb` on a testbed started with `cargo
/// xtask up`, plus `partitions` and `events`. A subcommand's name is the
/// verb's, as in scenario files and on the timeline.
#[derive(Debug, Subcommand)]
pub enum Chaos {
    /// docker kill of the nodes' redis containers; their sentinels lose the network too.
    Kill(Targets),
    /// Graceful stop of the nodes (SIGTERM, SIGKILL after 2 s).
    Stop(Targets),
    /// Start killed or stopped nodes (redis, then a restart of its sentinel).
    Start(Targets),
    /// Kill and start at once (a crash and a quick reboot).
    Restart(Targets),
    /// Freeze the nodes' redis containers (cgroup freezer: no FIN, no RST).
    Pause(Targets),
    /// Thaw frozen nodes.
    Resume(Targets),
    /// Cut the nodes from every other node, both ways, but not from the host.
    Isolate(Targets),
    /// Cut group A from group B (never from the host).
    ///
    /// `partition node1 -- node2 node3` or `partition --from node1 --to
    /// node2,node3`; without a second group, from every other node. Options
    /// go before `--`. `--one-way`: cut only the first group's connections
    /// to the second; the second still reaches the first.
    Partition(Groups),
    /// Hold every packet between group A and group B for --ms ± --jitter-ms
    /// (both ways: the round trip grows by 2 x ms). A group may be `host`.
    Delay {
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        ms: u64,
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        jitter_ms: u64,
        #[command(flatten)]
        g: Groups,
    },
    /// Drop each packet between group A and group B with probability --percent.
    Loss {
        #[arg(long)]
        percent: f64,
        #[command(flatten)]
        g: Groups,
    },
    /// Cap the bandwidth between group A and group B at --kbit kbit/s.
    Rate {
        #[arg(long)]
        kbit: u64,
        #[command(flatten)]
        g: Groups,
    },
    /// Cut and heal the links between group A and group B on a schedule
    /// (--up-ms, --down-ms) until `heal`.
    Flap {
        #[arg(long)]
        up_ms: u64,
        #[arg(long)]
        down_ms: u64,
        #[command(flatten)]
        g: Groups,
    },
    /// Remove every partition (idempotent).
    Heal {
        #[command(flatten)]
        at: Attach,
    },
    /// SENTINEL FAILOVER, on the first sentinel that accepts it or on --via's.
    Failover {
        /// The node whose sentinel leads the failover.
        #[arg(long)]
        via: Option<Target>,
        /// SENTINEL FAILOVER <name> COORDINATED (Valkey >= 9.0).
        #[arg(long)]
        coordinated: bool,
        #[command(flatten)]
        at: Attach,
    },
    /// docker kill of the nodes' sentinel containers only (redis keeps serving).
    SentinelKill(Targets),
    /// SIGKILL of the sentinel processes: an unexpected exit, restarted by the on-failure policy.
    SentinelCrash(Targets),
    /// Freeze the nodes' sentinel containers only.
    SentinelPause(Targets),
    /// Thaw or start the nodes' sentinel containers, whichever each needs.
    SentinelResume(Targets),
    /// Drop the client containers' packets to the nodes' sentinels (no reset);
    /// nodes and the host still reach them. `heal` ends it.
    SentinelBlackhole(Targets),
    /// SENTINEL SIMULATE-FAILURE: the sentinel exits in the next failover it leads.
    SimulateFailure {
        /// crash-after-election or crash-after-promotion.
        #[arg(long, default_value = "crash-after-election")]
        mode: SimulateFailure,
        #[command(flatten)]
        t: Targets,
    },
    /// DEBUG SLEEP: the redis-server answers nothing for --ms (needs
    /// `enable-debug-command yes` in the topology's redis_conf).
    DebugSleep {
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        ms: u64,
        #[command(flatten)]
        t: Targets,
    },
    /// CLIENT PAUSE: the redis-server holds its clients' commands back for --ms.
    ClientPause {
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        ms: u64,
        /// Hold back writes only.
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        t: Targets,
    },
    /// The wall clock of the nodes' sentinel (--sentinel) or redis-server
    /// (--redis) jumps by --seconds (negative: back); that process only.
    ClockJump {
        #[arg(long, conflicts_with = "redis", required_unless_present = "redis")]
        sentinel: bool,
        #[arg(long)]
        redis: bool,
        #[arg(long, allow_hyphen_values = true)]
        seconds: f64,
        #[command(flatten)]
        t: Targets,
    },
    /// Make the config folder of the nodes' sentinels read-only (`heal` undoes it).
    ConfigReadonly(Targets),
    /// List the partitions in force (read from the nodes' netfilter rules).
    Partitions {
        #[command(flatten)]
        at: Attach,
    },
    /// Print every sentinel's events live (elapsed ms, UTC time, node, channel) until Ctrl-C.
    Events {
        #[command(flatten)]
        at: Attach,
    },
}

impl Chaos {
    /// The testbed it acts on.
    pub fn attach_args(&self) -> &Attach {
        match self {
            Chaos::Kill(t)
            | Chaos::Stop(t)
            | Chaos::Start(t)
            | Chaos::Restart(t)
            | Chaos::Pause(t)
            | Chaos::Resume(t)
            | Chaos::Isolate(t)
            | Chaos::SentinelKill(t)
            | Chaos::SentinelCrash(t)
            | Chaos::SentinelPause(t)
            | Chaos::SentinelResume(t)
            | Chaos::SentinelBlackhole(t)
            | Chaos::ConfigReadonly(t)
            | Chaos::SimulateFailure { t, .. }
            | Chaos::DebugSleep { t, .. }
            | Chaos::ClientPause { t, .. }
            | Chaos::ClockJump { t, .. } => &t.at,
            Chaos::Partition(g)
            | Chaos::Delay { g, .. }
            | Chaos::Loss { g, .. }
            | Chaos::Rate { g, .. }
            | Chaos::Flap { g, .. } => &g.at,
            Chaos::Heal { at }
            | Chaos::Failover { at, .. }
            | Chaos::Partitions { at }
            | Chaos::Events { at } => at,
        }
    }

    /// The actions the command stands for, one per target, in order (empty
    /// for `partitions` and `events`, which act on nothing).
    pub fn actions(&self) -> Result<Vec<Action>, String> {
        let each = |verb: Verb, t: &Targets| -> Vec<Action> {
            t.targets
                .iter()
                .map(|x| Action::on(verb, x.clone()).expect("a node verb"))
                .collect()
        };
        Ok(match self {
            Chaos::Kill(t) => each(Verb::Kill, t),
            Chaos::Stop(t) => each(Verb::Stop, t),
            Chaos::Start(t) => each(Verb::Start, t),
            Chaos::Restart(t) => each(Verb::Restart, t),
            Chaos::Pause(t) => each(Verb::Pause, t),
            Chaos::Resume(t) => each(Verb::Resume, t),
            Chaos::Isolate(t) => each(Verb::Isolate, t),
            Chaos::SentinelKill(t) => each(Verb::SentinelKill, t),
            Chaos::SentinelCrash(t) => each(Verb::SentinelCrash, t),
            Chaos::SentinelPause(t) => each(Verb::SentinelPause, t),
            Chaos::SentinelResume(t) => each(Verb::SentinelResume, t),
            Chaos::SentinelBlackhole(t) => each(Verb::SentinelBlackhole, t),
            Chaos::ConfigReadonly(t) => each(Verb::ConfigReadonly, t),
            Chaos::Partition(g) => {
                let (a, b, direction) = g.parse(false)?;
                vec![Action::Partition { a, b, direction }]
            }
            Chaos::Delay { ms, jitter_ms, g } => {
                let (a, b, direction) = g.parse(true)?;
                vec![Action::Delay {
                    a,
                    b,
                    ms: *ms,
                    jitter_ms: *jitter_ms,
                    direction,
                }]
            }
            Chaos::Loss { percent, g } => {
                let (a, b, direction) = g.parse(true)?;
                vec![Action::Loss {
                    a,
                    b,
                    percent: *percent,
                    direction,
                }]
            }
            Chaos::Rate { kbit, g } => {
                let (a, b, direction) = g.parse(true)?;
                vec![Action::Rate {
                    a,
                    b,
                    kbit: *kbit,
                    direction,
                }]
            }
            Chaos::Flap { up_ms, down_ms, g } => {
                let (a, b, direction) = g.parse(true)?;
                vec![Action::Flap {
                    a,
                    b,
                    up_ms: *up_ms,
                    down_ms: *down_ms,
                    direction,
                }]
            }
            Chaos::Heal { .. } => vec![Action::Heal],
            Chaos::Failover {
                via, coordinated, ..
            } => vec![Action::Failover {
                via: via.clone(),
                coordinated: *coordinated,
            }],
            Chaos::SimulateFailure { mode, t } => t
                .targets
                .iter()
                .map(|x| Action::SimulateFailure {
                    target: x.clone(),
                    mode: *mode,
                })
                .collect(),
            Chaos::DebugSleep { ms, t } => t
                .targets
                .iter()
                .map(|x| Action::DebugSleep {
                    target: x.clone(),
                    ms: *ms,
                })
                .collect(),
            Chaos::ClientPause { ms, write, t } => t
                .targets
                .iter()
                .map(|x| Action::ClientPause {
                    target: x.clone(),
                    ms: *ms,
                    mode: if *write {
                        PauseMode::Write
                    } else {
                        PauseMode::All
                    },
                })
                .collect(),
            Chaos::ClockJump {
                sentinel,
                seconds,
                t,
                ..
            } => t
                .targets
                .iter()
                .map(|x| Action::ClockJump {
                    target: x.clone(),
                    process: if *sentinel {
                        Process::Sentinel
                    } else {
                        Process::Redis
                    },
                    seconds: *seconds,
                })
                .collect(),
            Chaos::Partitions { .. } | Chaos::Events { .. } => vec![],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use testbed::model::verb::VERBS;

    #[test]
    fn every_verb_is_a_subcommand_and_every_subcommand_a_verb() {
        let cmd = Xtask::command();
        let subs: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        for v in VERBS.iter().filter(|v| !v.verb.scenario_only()) {
            assert!(
                subs.contains(&v.name.to_string()),
                "no `cargo xtask {}`",
                v.name
            );
        }
        let others = [
            "up",
            "status",
            "down",
            "logs",
            "doctor",
            "image",
            "compose",
            "repro",
            "matrix",
            "report",
            "clients",
            "bench",
            "segment",
            "engine",
            "soak",
            "partitions",
            "events",
        ];
        for s in &subs {
            assert!(
                Verb::from_name(s).is_some() || others.contains(&s.as_str()),
                "`cargo xtask {s}` is neither a verb nor a known command"
            );
        }
    }

    #[test]
    fn chaos_commands_become_the_actions_of_the_verb_table() {
        let parse = |args: &[&str]| {
            let mut v = vec!["cargo xtask"];
            v.extend_from_slice(args);
            match Xtask::try_parse_from(v).unwrap().cmd {
                Cmd::Chaos(c) => c.actions(),
                other => panic!("{other:?}"),
            }
        };
        let a = parse(&["sentinel-kill", "node2", "replicas"]).unwrap();
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|a| a.verb() == Verb::SentinelKill));
        let a = parse(&["partition", "--one-way", "master", "--", "node3"]).unwrap();
        assert!(matches!(
            &a[0],
            Action::Partition { direction: Direction::OneWay, b, .. } if b == &[Target::Node("node3".into())]
        ));
        assert!(parse(&["partition", "node1", "--", "--one-way"])
            .unwrap_err()
            .contains("options go before"));
        assert!(parse(&["partition", "host"])
            .unwrap_err()
            .contains("never cut the host"));
        let a = parse(&[
            "delay",
            "--ms",
            "100",
            "--jitter-ms",
            "10",
            "--one-way",
            "host",
            "--",
            "master",
        ])
        .unwrap();
        assert!(matches!(
            &a[0],
            Action::Delay { ms: 100, jitter_ms: 10, direction: Direction::OneWay, a, .. } if a == &[Target::Host]
        ));
        let a = parse(&["client-pause", "--ms", "800", "--write", "master"]).unwrap();
        assert!(matches!(
            a[0],
            Action::ClientPause {
                ms: 800,
                mode: PauseMode::Write,
                ..
            }
        ));
        let e = Xtask::try_parse_from(["cargo xtask", "debug-sleep", "--ms", "0", "node1"]);
        assert!(e.is_err(), "0 ms is refused by the CLI");
    }

    #[test]
    fn jobs_and_shards_are_checked_and_named() {
        let err = |args: &[&str]| {
            let mut v = vec!["cargo xtask", "repro", "f.toml"];
            v.extend_from_slice(args);
            Xtask::try_parse_from(v).unwrap_err().to_string()
        };
        let e = err(&["--jobs", "0"]);
        assert!(
            e.contains("'--jobs <JOBS>'") && e.contains("0 is not in 1..=15"),
            "{e}"
        );
        let e = err(&["--shard", "3/2"]);
        assert!(
            e.contains("'--shard <I/N>'") && e.contains("shard 3 of 2 does not exist"),
            "{e}"
        );
        assert!(err(&["--shard", "1-2"]).contains("is not I/N"));
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        let ok = Xtask::try_parse_from([
            "cargo xtask",
            "repro",
            "f.toml",
            "--jobs",
            "4",
            "--shard",
            "1/3",
        ])
        .unwrap();
        assert!(matches!(
            ok.cmd,
            Cmd::Repro(ReproArgs {
                jobs: 4,
                shard: Some((1, 3)),
                ..
            })
        ));
        let e = Xtask::try_parse_from(["cargo xtask", "matrix", "--jobs", "0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'--jobs <JOBS>'"), "{e}");
    }
}
