//! The fault vocabulary: one table of verbs. Each verb has one name, used as
//! the `cargo xtask` subcommand, the scenario `action`, and the name of the
//! action recorded on the timeline; the table also says whether it is a
//! fault, what ends it (for the fault windows of the picture), and what it
//! can be aimed at. The CLI, the scenario parser, the runner and the SVG all
//! read it, and a test checks that the CLI has a subcommand for every verb.

use serde::{Deserialize, Serialize};

/// A verb of the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verb {
    Kill,
    Stop,
    Start,
    Restart,
    Pause,
    Resume,
    Isolate,
    Partition,
    Heal,
    Failover,
    SentinelKill,
    SentinelCrash,
    SentinelPause,
    SentinelResume,
    SentinelBlackhole,
    SimulateFailure,
    DebugSleep,
    ClientPause,
    Delay,
    Loss,
    Rate,
    Flap,
    ClockJump,
    ConfigReadonly,
    Sleep,
    Wait,
    // issue 11: commands sent as scenario steps
    Command,
    SentinelCommand,
}

/// What a verb does to the testbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Breaks or degrades something; the first fault of a scenario is its
    /// time zero.
    Fault,
    /// Undoes faults (start, resume, heal, sentinel-resume).
    Repair,
    /// Scenario control: observation time, waiting for a condition.
    Control,
}

/// What a verb is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aim {
    /// Nothing (heal, sleep, wait).
    Nothing,
    /// Any targets naming nodes (`replicas` included).
    Nodes,
    /// Exactly one node (`replicas` is refused).
    OneNode,
    /// Two groups of nodes (partition; the host is never cut).
    Groups,
    /// Two groups of link ends: nodes, and the host (`host`) on one side.
    Links,
    /// Optionally one node (failover: by default the first sentinel that
    /// accepts, or the sentinel of `--via`).
    OptionalNode,
}

/// One row of the table.
#[derive(Debug)]
pub struct VerbInfo {
    pub verb: Verb,
    /// The one name: CLI subcommand, scenario action, timeline action.
    pub name: &'static str,
    pub role: Role,
    pub aim: Aim,
    /// The verbs whose action ends this fault's window (none: it ends by
    /// itself, or it lasts the duration it was given — see `timed`).
    pub ended_by: &'static [Verb],
    /// The window lasts the duration given to the verb (`ms`).
    pub timed: bool,
    /// One line for help texts.
    pub summary: &'static str,
    /// Names of releases before 0.2; scenario files using them are refused
    /// with the new name.
    pub old_names: &'static [&'static str],
}

use Aim::*;
use Role::*;
use Verb::*;

/// Every verb, in the order of the docs.
pub const VERBS: &[VerbInfo] = &[
    VerbInfo {
        verb: Kill,
        name: "kill",
        role: Fault,
        aim: Nodes,
        ended_by: &[Start, Restart],
        timed: false,
        summary: "docker kill of the nodes' redis containers; their sentinels lose the network too",
        old_names: &[],
    },
    VerbInfo {
        verb: Stop,
        name: "stop",
        role: Fault,
        aim: Nodes,
        ended_by: &[Start, Restart],
        timed: false,
        summary: "graceful stop of the nodes (SIGTERM, SIGKILL after 2 s)",
        old_names: &[],
    },
    VerbInfo {
        verb: Start,
        name: "start",
        role: Repair,
        aim: Nodes,
        ended_by: &[],
        timed: false,
        summary: "start killed or stopped nodes (redis, then a restart of its sentinel)",
        old_names: &[],
    },
    VerbInfo {
        verb: Restart,
        name: "restart",
        role: Fault,
        aim: Nodes,
        ended_by: &[],
        timed: false,
        summary: "kill and start at once (a crash and a quick reboot)",
        old_names: &[],
    },
    VerbInfo {
        verb: Pause,
        name: "pause",
        role: Fault,
        aim: Nodes,
        ended_by: &[Resume],
        timed: false,
        summary: "freeze the nodes' redis containers (cgroup freezer: no FIN, no RST)",
        old_names: &[],
    },
    VerbInfo {
        verb: Resume,
        name: "resume",
        role: Repair,
        aim: Nodes,
        ended_by: &[],
        timed: false,
        summary: "thaw frozen nodes",
        old_names: &["unpause"],
    },
    VerbInfo {
        verb: Isolate,
        name: "isolate",
        role: Fault,
        aim: Nodes,
        ended_by: &[Heal],
        timed: false,
        summary: "cut the nodes from every other node, both ways, but not from the host",
        old_names: &[],
    },
    VerbInfo {
        verb: Partition,
        name: "partition",
        role: Fault,
        aim: Groups,
        ended_by: &[Heal],
        timed: false,
        summary: "cut group a from group b (both ways, or one way)",
        old_names: &[],
    },
    VerbInfo {
        verb: Heal,
        name: "heal",
        role: Repair,
        aim: Nothing,
        ended_by: &[],
        timed: false,
        summary: "remove every partition and impairment (idempotent, from any process)",
        old_names: &[],
    },
    VerbInfo {
        verb: Failover,
        name: "failover",
        role: Fault,
        aim: OptionalNode,
        ended_by: &[],
        timed: false,
        summary: "SENTINEL FAILOVER on the first sentinel that accepts it, or on one node's",
        old_names: &["sentinel-failover"],
    },
    VerbInfo {
        verb: SentinelKill,
        name: "sentinel-kill",
        role: Fault,
        aim: Nodes,
        ended_by: &[SentinelResume],
        timed: false,
        summary: "docker kill of the nodes' sentinel containers only (redis keeps serving)",
        old_names: &["kill-sentinel"],
    },
    VerbInfo {
        verb: SentinelCrash,
        name: "sentinel-crash",
        role: Fault,
        aim: Nodes,
        ended_by: &[],
        timed: false,
        summary: "SIGKILL of the sentinel process: an unexpected exit, restarted by the container's on-failure policy",
        old_names: &["crash-sentinel"],
    },
    VerbInfo {
        verb: SentinelPause,
        name: "sentinel-pause",
        role: Fault,
        aim: Nodes,
        ended_by: &[SentinelResume],
        timed: false,
        summary: "freeze the nodes' sentinel containers only",
        old_names: &["pause-sentinel"],
    },
    VerbInfo {
        verb: SentinelResume,
        name: "sentinel-resume",
        role: Repair,
        aim: Nodes,
        ended_by: &[],
        timed: false,
        summary: "thaw or start the nodes' sentinel containers, whichever each needs",
        old_names: &["unpause-sentinel", "sentinel-start", "sentinel-unpause"],
    },
    VerbInfo {
        verb: SentinelBlackhole,
        name: "sentinel-blackhole",
        role: Fault,
        aim: Nodes,
        ended_by: &[Heal],
        timed: false,
        summary: "drop the client containers' packets to the nodes' sentinels (no reset); nodes and the host still reach them",
        old_names: &[],
    },
    VerbInfo {
        verb: SimulateFailure,
        name: "simulate-failure",
        role: Fault,
        aim: Nodes,
        ended_by: &[],
        timed: false,
        summary: "SENTINEL SIMULATE-FAILURE: the sentinel exits in the next failover it leads",
        old_names: &[],
    },
    VerbInfo {
        verb: DebugSleep,
        name: "debug-sleep",
        role: Fault,
        aim: Nodes,
        ended_by: &[],
        timed: true,
        summary: "DEBUG SLEEP: the redis-server answers nothing for that long",
        old_names: &[],
    },
    VerbInfo {
        verb: ClientPause,
        name: "client-pause",
        role: Fault,
        aim: Nodes,
        ended_by: &[],
        timed: true,
        summary: "CLIENT PAUSE: the redis-server holds its clients' commands (or writes) back",
        old_names: &[],
    },
    VerbInfo {
        verb: Delay,
        name: "delay",
        role: Fault,
        aim: Links,
        ended_by: &[Heal],
        timed: false,
        summary: "hold every packet between the groups ms ± uniform jitter_ms (the round trip grows by 2 x ms)",
        old_names: &[],
    },
    VerbInfo {
        verb: Loss,
        name: "loss",
        role: Fault,
        aim: Links,
        ended_by: &[Heal],
        timed: false,
        summary: "drop each packet between the groups with a probability",
        old_names: &[],
    },
    VerbInfo {
        verb: Rate,
        name: "rate",
        role: Fault,
        aim: Links,
        ended_by: &[Heal],
        timed: false,
        summary: "cap the bandwidth between the groups (kbit/s)",
        old_names: &[],
    },
    VerbInfo {
        verb: Flap,
        name: "flap",
        role: Fault,
        aim: Links,
        ended_by: &[Heal],
        timed: false,
        summary: "cut and heal the links on a schedule (up_ms, down_ms) until heal",
        old_names: &[],
    },
    VerbInfo {
        verb: ClockJump,
        name: "clock-jump",
        role: Fault,
        aim: Nodes,
        ended_by: &[],
        timed: false,
        summary: "the wall clock of a node's redis-server or sentinel jumps by ± seconds (that process only; heal sets it back)",
        old_names: &[],
    },
    VerbInfo {
        verb: ConfigReadonly,
        name: "config-readonly",
        role: Fault,
        aim: Nodes,
        ended_by: &[Heal],
        timed: false,
        summary: "the sentinel's config folder becomes read-only: its config rewrites fail (heal or a restart undoes it)",
        old_names: &[],
    },
    VerbInfo {
        verb: Sleep,
        name: "sleep",
        role: Control,
        aim: Nothing,
        ended_by: &[],
        timed: false,
        summary: "observation time: let the system run",
        old_names: &[],
    },
    VerbInfo {
        verb: Wait,
        name: "wait",
        role: Control,
        aim: Nothing,
        ended_by: &[],
        timed: false,
        summary: "wait for a condition (switch, demoted, healthy, no-switch, external-recovered, master, event)",
        old_names: &[],
    },
    // issue 11: a command on the servers or the sentinels, as a scenario
    // step. Control by default; a step says `role = "fault"` or `"repair"`
    // when the command is the scenario's fault (or undoes one).
    VerbInfo {
        verb: Command,
        name: "command",
        role: Control,
        aim: Nodes,
        ended_by: &[],
        timed: false,
        summary: "send one command to the nodes' redis-servers (CONFIG SET, DEBUG POPULATE, REPLICAOF, ...)",
        old_names: &[],
    },
    VerbInfo {
        verb: SentinelCommand,
        name: "sentinel-command",
        role: Control,
        aim: Nodes,
        ended_by: &[],
        timed: false,
        summary: "send one command to the nodes' sentinels (SENTINEL SET, SENTINEL CONFIG SET, ...)",
        old_names: &[],
    },
];

impl Verb {
    /// Its row of the table.
    pub fn info(self) -> &'static VerbInfo {
        VERBS
            .iter()
            .find(|i| i.verb == self)
            .expect("every verb has a row (tested)")
    }

    /// Its one name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The verb called `name`, if any.
    pub fn from_name(name: &str) -> Option<Verb> {
        VERBS.iter().find(|i| i.name == name).map(|i| i.verb)
    }

    /// The verb an old name (before 0.2) stood for.
    pub fn renamed(old: &str) -> Option<Verb> {
        VERBS
            .iter()
            .find(|i| i.old_names.contains(&old))
            .map(|i| i.verb)
    }

    pub fn is_fault(self) -> bool {
        self.info().role == Role::Fault
    }

    /// Whether it brings a node or a link back (the reference point of
    /// `old_master_demoted_within_ms`).
    pub fn brings_back(self) -> bool {
        self.info().role == Role::Repair || self == Restart
    }

    /// Whether it is a scenario step only (no CLI subcommand).
    pub fn scenario_only(self) -> bool {
        self.info().role == Role::Control
    }
}

/// Every name, comma-separated (for error hints).
pub fn names(filter: impl Fn(&VerbInfo) -> bool) -> String {
    VERBS
        .iter()
        .filter(|i| filter(i))
        .map(|i| i.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn one_row_and_one_name_per_verb() {
        let mut names = HashSet::new();
        let mut verbs = HashSet::new();
        for i in VERBS {
            assert!(names.insert(i.name), "{} twice", i.name);
            assert!(verbs.insert(i.verb), "{:?} twice", i.verb);
            assert_eq!(Verb::from_name(i.name), Some(i.verb));
            // the serde name is the table's name
            let json = serde_json::to_string(&i.verb).unwrap();
            assert_eq!(json, format!("\"{}\"", i.name));
            for old in i.old_names {
                assert!(
                    Verb::from_name(old).is_none(),
                    "{old} is both old and current"
                );
                assert_eq!(Verb::renamed(old), Some(i.verb));
            }
        }
        // `info` finds every variant (SentinelCommand is the last one declared)
        assert_eq!(Verb::Wait.info().name, "wait");
        assert_eq!(Verb::SentinelCommand.info().name, "sentinel-command");
    }

    #[test]
    fn what_ends_a_fault_is_a_repair() {
        for i in VERBS {
            for e in i.ended_by {
                assert!(
                    e.info().role == Role::Repair || *e == Verb::Restart,
                    "{} is ended by {}, which repairs nothing",
                    i.name,
                    e.name()
                );
            }
            if i.timed {
                assert!(i.ended_by.is_empty() && i.role == Role::Fault, "{}", i.name);
            }
        }
        assert!(Verb::Kill.is_fault() && !Verb::Heal.is_fault() && !Verb::Sleep.is_fault());
        assert!(Verb::Restart.brings_back() && Verb::Heal.brings_back());
    }
}
