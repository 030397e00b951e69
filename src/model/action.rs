//! One application of a verb with its arguments, typed: what a scenario step
//! and a `cargo xtask` chaos command both are. Pure data; `Testbed::apply`
//! (in `faults`) carries it out.

use super::target::{Direction, Target};
use super::verb::{Role, Verb};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A verb with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Kill {
        target: Target,
    },
    Stop {
        target: Target,
    },
    Start {
        target: Target,
    },
    Restart {
        target: Target,
    },
    Pause {
        target: Target,
    },
    Resume {
        target: Target,
    },
    Isolate {
        target: Target,
    },
    Partition {
        a: Vec<Target>,
        /// Empty: every node not in `a`.
        b: Vec<Target>,
        direction: Direction,
    },
    Heal,
    Failover {
        /// The node whose sentinel is asked (and then leads); `None`: the
        /// first sentinel that accepts.
        via: Option<Target>,
        /// `SENTINEL FAILOVER <name> COORDINATED` (Valkey >= 9.0): the
        /// primary hands over with `FAILOVER TO`, after an election.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        coordinated: bool,
    },
    SentinelKill {
        target: Target,
    },
    SentinelCrash {
        target: Target,
    },
    SentinelPause {
        target: Target,
    },
    SentinelResume {
        target: Target,
    },
    /// The client containers' packets to the nodes' sentinels are dropped.
    SentinelBlackhole {
        target: Target,
    },
    SimulateFailure {
        target: Target,
        mode: SimulateFailure,
    },
    DebugSleep {
        target: Target,
        ms: u64,
    },
    ClientPause {
        target: Target,
        ms: u64,
        mode: PauseMode,
    },
    Delay {
        a: Vec<Target>,
        b: Vec<Target>,
        ms: u64,
        jitter_ms: u64,
        direction: Direction,
    },
    Loss {
        a: Vec<Target>,
        b: Vec<Target>,
        percent: f64,
        direction: Direction,
    },
    Rate {
        a: Vec<Target>,
        b: Vec<Target>,
        kbit: u64,
        direction: Direction,
    },
    Flap {
        a: Vec<Target>,
        b: Vec<Target>,
        up_ms: u64,
        down_ms: u64,
        direction: Direction,
    },
    ClockJump {
        target: Target,
        process: Process,
        seconds: f64,
    },
    ConfigReadonly {
        target: Target,
    },
    /// Observation time.
    Sleep {
        ms: u64,
    },
    /// Wait until a condition holds.
    Wait {
        until: Until,
        timeout_ms: u64,
        /// `master`: the node that must become master; `event`: the node
        /// whose sentinel must publish it (any sentinel when `None`).
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<Target>,
        /// `event`: the sentinel channel (`+odown`, `+failover-state-wait-promotion`, ...).
        #[serde(skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
    // issue 11: one command on the nodes' redis-servers or sentinels
    Command {
        target: Target,
        #[serde(flatten)]
        command: CommandSpec,
    },
    SentinelCommand {
        target: Target,
        #[serde(flatten)]
        command: CommandSpec,
    },
}

/// The command of a `command` / `sentinel-command` step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandSpec {
    /// The command and its arguments (`["CONFIG", "SET", "dir", "/proc"]`).
    pub args: Vec<String>,
    /// What the command is to the scenario: `Control` (set-up, the
    /// default), `Fault` (it is the fault: the first one is time zero) or
    /// `Repair` (it undoes one).
    pub role: Role,
    /// How long to wait for the answer (`DEBUG POPULATE`, `SAVE` take a while).
    pub timeout_ms: u64,
}

impl CommandSpec {
    /// The suffix of the recorded action's detail that carries a role
    /// other than `Control` (read back by [`Role::of_recorded`]).
    pub fn marker(role: Role) -> &'static str {
        match role {
            Role::Fault => " [fault]",
            Role::Repair => " [repair]",
            Role::Control => "",
        }
    }
}

impl Role {
    /// The role of a recorded action: the verb's, or for `command` and
    /// `sentinel-command` the one its detail carries ([`CommandSpec::marker`]).
    pub fn of_recorded(verb: Verb, detail: &str) -> Role {
        match verb {
            Verb::Command | Verb::SentinelCommand => {
                if detail.ends_with(CommandSpec::marker(Role::Fault)) {
                    Role::Fault
                } else if detail.ends_with(CommandSpec::marker(Role::Repair)) {
                    Role::Repair
                } else {
                    Role::Control
                }
            }
            v => v.info().role,
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fault" => Ok(Role::Fault),
            "repair" => Ok(Role::Repair),
            "control" => Ok(Role::Control),
            _ => Err(format!("`{s}`: want fault, repair or control")),
        }
    }
}

impl Action {
    /// The verb this applies.
    pub fn verb(&self) -> Verb {
        match self {
            Action::Kill { .. } => Verb::Kill,
            Action::Stop { .. } => Verb::Stop,
            Action::Start { .. } => Verb::Start,
            Action::Restart { .. } => Verb::Restart,
            Action::Pause { .. } => Verb::Pause,
            Action::Resume { .. } => Verb::Resume,
            Action::Isolate { .. } => Verb::Isolate,
            Action::Partition { .. } => Verb::Partition,
            Action::Heal => Verb::Heal,
            Action::Failover { .. } => Verb::Failover,
            Action::SentinelKill { .. } => Verb::SentinelKill,
            Action::SentinelCrash { .. } => Verb::SentinelCrash,
            Action::SentinelPause { .. } => Verb::SentinelPause,
            Action::SentinelResume { .. } => Verb::SentinelResume,
            Action::SentinelBlackhole { .. } => Verb::SentinelBlackhole,
            Action::SimulateFailure { .. } => Verb::SimulateFailure,
            Action::DebugSleep { .. } => Verb::DebugSleep,
            Action::ClientPause { .. } => Verb::ClientPause,
            Action::Delay { .. } => Verb::Delay,
            Action::Loss { .. } => Verb::Loss,
            Action::Rate { .. } => Verb::Rate,
            Action::Flap { .. } => Verb::Flap,
            Action::ClockJump { .. } => Verb::ClockJump,
            Action::ConfigReadonly { .. } => Verb::ConfigReadonly,
            Action::Sleep { .. } => Verb::Sleep,
            Action::Wait { .. } => Verb::Wait,
            Action::Command { .. } => Verb::Command,
            Action::SentinelCommand { .. } => Verb::SentinelCommand,
        }
    }

    /// What the action is to a scenario: its verb's role, or the role a
    /// command step was given.
    pub fn role(&self) -> Role {
        match self {
            Action::Command { command, .. } | Action::SentinelCommand { command, .. } => {
                command.role
            }
            a => a.verb().info().role,
        }
    }

    /// Every target it names (for validation against a topology).
    pub fn targets(&self) -> Vec<&Target> {
        match self {
            Action::Kill { target }
            | Action::Stop { target }
            | Action::Start { target }
            | Action::Restart { target }
            | Action::Pause { target }
            | Action::Resume { target }
            | Action::Isolate { target }
            | Action::SentinelKill { target }
            | Action::SentinelCrash { target }
            | Action::SentinelPause { target }
            | Action::SentinelResume { target }
            | Action::SentinelBlackhole { target }
            | Action::SimulateFailure { target, .. }
            | Action::DebugSleep { target, .. }
            | Action::ClientPause { target, .. }
            | Action::ClockJump { target, .. }
            | Action::ConfigReadonly { target }
            | Action::Command { target, .. }
            | Action::SentinelCommand { target, .. } => vec![target],
            Action::Partition { a, b, .. }
            | Action::Delay { a, b, .. }
            | Action::Loss { a, b, .. }
            | Action::Rate { a, b, .. }
            | Action::Flap { a, b, .. } => a.iter().chain(b).collect(),
            Action::Failover { via, .. } => via.iter().collect(),
            Action::Wait { target, .. } => target.iter().collect(),
            Action::Heal | Action::Sleep { .. } => vec![],
        }
    }

    /// A node-targeted action of `verb` (kill, stop, ..., sentinel-resume).
    pub fn on(verb: Verb, target: Target) -> Option<Action> {
        Some(match verb {
            Verb::Kill => Action::Kill { target },
            Verb::Stop => Action::Stop { target },
            Verb::Start => Action::Start { target },
            Verb::Restart => Action::Restart { target },
            Verb::Pause => Action::Pause { target },
            Verb::Resume => Action::Resume { target },
            Verb::Isolate => Action::Isolate { target },
            Verb::SentinelKill => Action::SentinelKill { target },
            Verb::SentinelCrash => Action::SentinelCrash { target },
            Verb::SentinelPause => Action::SentinelPause { target },
            Verb::SentinelResume => Action::SentinelResume { target },
            Verb::SentinelBlackhole => Action::SentinelBlackhole { target },
            Verb::ConfigReadonly => Action::ConfigReadonly { target },
            _ => return None,
        })
    }
}

/// The `SENTINEL SIMULATE-FAILURE` flags Redis 7, 8 and Valkey accept
/// (checked with `SENTINEL SIMULATE-FAILURE HELP` on Redis 8.0.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimulateFailure {
    /// Exit(99) right after winning the election for a failover.
    CrashAfterElection,
    /// Exit(99) right after promoting the chosen replica.
    CrashAfterPromotion,
}

impl SimulateFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            SimulateFailure::CrashAfterElection => "crash-after-election",
            SimulateFailure::CrashAfterPromotion => "crash-after-promotion",
        }
    }
}

impl FromStr for SimulateFailure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "crash-after-election" => Ok(SimulateFailure::CrashAfterElection),
            "crash-after-promotion" => Ok(SimulateFailure::CrashAfterPromotion),
            _ => Err(format!(
                "`{s}`: want crash-after-election or crash-after-promotion"
            )),
        }
    }
}

/// One of a node's two processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Process {
    Redis,
    Sentinel,
}

impl Process {
    pub fn as_str(self) -> &'static str {
        match self {
            Process::Redis => "redis",
            Process::Sentinel => "sentinel",
        }
    }
}

impl FromStr for Process {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "redis" => Ok(Process::Redis),
            "sentinel" => Ok(Process::Sentinel),
            _ => Err(format!("`{s}`: want redis or sentinel")),
        }
    }
}

/// What `CLIENT PAUSE` holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PauseMode {
    /// Every command of every client (replicas excepted).
    #[default]
    All,
    /// Only writes (and commands that may write).
    Write,
}

impl PauseMode {
    /// The word `CLIENT PAUSE` takes.
    pub fn as_arg(self) -> &'static str {
        match self {
            PauseMode::All => "ALL",
            PauseMode::Write => "WRITE",
        }
    }
}

impl FromStr for PauseMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(PauseMode::All),
            "write" => Ok(PauseMode::Write),
            _ => Err(format!("`{s}`: want all or write")),
        }
    }
}

/// The conditions a `wait` step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Until {
    /// A quorum of live sentinels names a master other than the initial one.
    Switch,
    /// The initial master replicates the current master.
    Demoted,
    /// Every health condition holds with the current master.
    Healthy,
    /// No `+switch-master` for the whole timeout (a switch fails the step).
    NoSwitch,
    /// After the first fault the external client failed a write, then had
    /// one acknowledged.
    ExternalRecovered,
    // issue 11
    /// A quorum of live sentinels names the step's `target` node as master.
    Master,
    /// A sentinel (the `target` node's, if given) publishes the step's
    /// `event` after the step starts.
    Event,
}

impl Until {
    pub const ALL: &'static [Until] = &[
        Until::Switch,
        Until::Demoted,
        Until::Healthy,
        Until::NoSwitch,
        Until::ExternalRecovered,
        Until::Master,
        Until::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Until::Switch => "switch",
            Until::Demoted => "demoted",
            Until::Healthy => "healthy",
            Until::NoSwitch => "no-switch",
            Until::ExternalRecovered => "external-recovered",
            Until::Master => "master",
            Until::Event => "event",
        }
    }
}

impl FromStr for Until {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Until::ALL
            .iter()
            .copied()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Until::ALL.iter().map(|u| u.as_str()).collect();
                format!("`{s}` is not a condition; use {}", all.join(", "))
            })
    }
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serde_tag_is_the_verb_name() {
        let a = Action::SentinelKill {
            target: Target::Replicas,
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["action"], a.verb().name());
        assert_eq!(v["target"], "replicas");
        let w = Action::Wait {
            until: Until::NoSwitch,
            timeout_ms: 5,
            target: None,
            event: None,
        };
        assert_eq!(serde_json::to_value(&w).unwrap()["until"], "no-switch");
    }

    #[test]
    fn words_round_trip() {
        for u in Until::ALL {
            assert_eq!(u.as_str().parse::<Until>().unwrap(), *u);
        }
        assert!("soon".parse::<Until>().unwrap_err().contains("no-switch"));
        for m in [
            SimulateFailure::CrashAfterElection,
            SimulateFailure::CrashAfterPromotion,
        ] {
            assert_eq!(m.as_str().parse::<SimulateFailure>().unwrap(), m);
        }
        assert!("crash".parse::<SimulateFailure>().is_err());
        assert_eq!("write".parse::<PauseMode>().unwrap().as_arg(), "WRITE");
        assert_eq!("fault".parse::<Role>().unwrap(), Role::Fault);
        assert!("boom"
            .parse::<Role>()
            .unwrap_err()
            .contains("fault, repair or control"));
    }

    #[test]
    fn a_command_step_carries_its_role_onto_the_timeline() {
        let spec = |role| CommandSpec {
            args: vec!["CONFIG".into(), "SET".into(), "dir".into(), "/proc".into()],
            role,
            timeout_ms: 5000,
        };
        let a = Action::Command {
            target: Target::Master,
            command: spec(Role::Fault),
        };
        assert_eq!(a.role(), Role::Fault);
        assert_eq!(Action::Heal.role(), Role::Repair);
        // what the recorder writes is what the reader finds
        for role in [Role::Fault, Role::Repair, Role::Control] {
            let detail = format!("node1 CONFIG SET dir /proc{}", CommandSpec::marker(role));
            assert_eq!(Role::of_recorded(Verb::Command, &detail), role);
        }
        // other verbs keep the table's role whatever their detail says
        assert_eq!(Role::of_recorded(Verb::Kill, "node1 [repair]"), Role::Fault);
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["action"], "command");
        assert_eq!(v["args"][0], "CONFIG");
        assert_eq!(v["role"], "fault");
    }

    #[test]
    fn on_covers_every_node_verb() {
        for i in super::super::verb::VERBS {
            if i.aim == super::super::verb::Aim::Nodes {
                let a = Action::on(i.verb, Target::Master);
                if let Some(a) = a {
                    assert_eq!(a.verb(), i.verb);
                } else {
                    // the node verbs with more arguments
                    assert!(
                        matches!(
                            i.verb,
                            Verb::SimulateFailure
                                | Verb::DebugSleep
                                | Verb::ClientPause
                                | Verb::Command
                                | Verb::SentinelCommand
                                | Verb::ClockJump
                        ),
                        "{}",
                        i.name
                    );
                }
            }
        }
    }
}
