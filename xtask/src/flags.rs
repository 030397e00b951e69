//! The whole `cargo xtask` command line, declared in one place.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    /// Start the testbed and wait until it is healthy (a no-op when running).
    Up {
        #[command(flatten)]
        topo: TopologyArgs,
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
        /// Images to build (default: the default image).
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
    Repro {
        /// Scenario file (TOML), e.g. fixtures/scenarios/kill-master.toml.
        file: PathBuf,
        /// How many times to run it; the report gives the failure rate per expectation.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Override the scenario topology's image (e.g. testbed/valkey:8.1).
        #[arg(long)]
        image: Option<String>,
        /// Go on with the next run when one cannot complete (e.g. bring-up failed).
        #[arg(long)]
        keep_going: bool,
    },
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

/// Faults on a testbed started with `cargo xtask up`, for exploring by hand.
/// A target is a node name, `master` or `replicas`.
#[derive(Debug, Subcommand)]
pub enum Chaos {
    /// docker kill the nodes' redis containers (their sentinels lose the network too).
    Kill {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// Stop nodes gracefully (SIGTERM, SIGKILL after 2 s).
    Stop {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// Start killed or stopped nodes (redis, then its sentinel).
    Start {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// Kill and start again at once (a crash and a quick reboot).
    Restart {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// Freeze the nodes' redis containers (cgroup freezer).
    Pause {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// Thaw frozen nodes.
    Resume {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// Cut two groups of nodes apart (never from the host).
    ///
    /// `partition node1 -- node2 node3` or `partition --from node1 --to
    /// node2,node3`; without a second group, from every other node. Options
    /// go before `--`.
    Partition {
        /// First group.
        a: Vec<String>,
        /// Second group, after `--` (default: every other node).
        #[arg(last = true)]
        b: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        from: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        to: Vec<String>,
        /// Cut only the first group's connections to the second; the second
        /// still reaches the first.
        #[arg(long)]
        one_way: bool,
        #[command(flatten)]
        at: Attach,
    },
    /// Remove every partition.
    Heal {
        #[command(flatten)]
        at: Attach,
    },
    /// List the partitions in force (read from the nodes' netfilter rules).
    Partitions {
        #[command(flatten)]
        at: Attach,
    },
    /// Cut nodes from every other node, both ways, but not from the host.
    Isolate {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// SENTINEL FAILOVER, on the first sentinel that accepts it or on --via's.
    Failover {
        /// The node whose sentinel leads the failover.
        #[arg(long)]
        via: Option<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// docker kill the nodes' sentinel containers only (redis keeps serving).
    SentinelKill {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// Freeze the nodes' sentinel containers only.
    SentinelPause {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// Thaw or start the nodes' sentinel containers, whichever they need.
    SentinelResume {
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// SENTINEL SIMULATE-FAILURE: the sentinel crashes in the next failover it leads.
    SimulateFailure {
        /// crash-after-election or crash-after-promotion.
        mode: testbed::netfaults::SimulateFailure,
        #[arg(required = true)]
        targets: Vec<testbed::faults::Target>,
        #[command(flatten)]
        at: Attach,
    },
    /// DEBUG SLEEP: the redis-server answers nothing for SECONDS (needs
    /// `enable-debug-command yes` in the topology's redis_conf).
    DebugSleep {
        target: testbed::faults::Target,
        seconds: f64,
        #[command(flatten)]
        at: Attach,
    },
    /// CLIENT PAUSE: the redis-server holds its clients' commands back for MS.
    ClientPause {
        target: testbed::faults::Target,
        ms: u64,
        /// Hold back writes only.
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        at: Attach,
    },
    /// Print every sentinel's events live (elapsed ms, UTC time, node, channel) until Ctrl-C.
    Events {
        #[command(flatten)]
        at: Attach,
    },
}
