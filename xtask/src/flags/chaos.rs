//! The chaos verbs on a running testbed: one subcommand per row of the
//! verb table, their target groups, and their translation into `Action`s.

use clap::Subcommand;
use std::path::PathBuf;
use testbed::faults::{
    parse_groups, Action, Direction, PauseMode, Process, SimulateFailure, Target, Verb,
};

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
