//! The whole `cargo xtask` command line, declared in one place.

mod chaos;
mod runs;

pub use chaos::{Attach, Chaos};
pub use runs::{ClientsArgs, FlakeArgs, MatrixArgs, ReportCmd, ReproArgs, SoakArgs};

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
    /// README's test command run again and again (`cargo test --workspace
    /// --no-fail-fast`; --prefix for a second stream beside): the runs
    /// passed and failed, what each failure said, the slowest binaries and
    /// tests. Writes target/testbed/flake/<UTC time>/{flake.md,flake.json,run-NN.log}.
    Flake(FlakeArgs),
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

#[cfg(test)]
mod tests {
    use super::runs::parse_shard;
    use super::*;
    use clap::CommandFactory;
    use testbed::faults::{Action, Direction, PauseMode, Target, Verb};
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
            "flake",
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
