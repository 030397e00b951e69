//! One application of a verb with its arguments, typed: what a scenario step
//! and a `cargo xtask` chaos command both are. Pure data; `Testbed::apply`
//! (in `faults`) carries it out.

use super::target::{Direction, Target};
use super::verb::Verb;
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
    },
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
            | Action::ConfigReadonly { target } => vec![target],
            Action::Partition { a, b, .. }
            | Action::Delay { a, b, .. }
            | Action::Loss { a, b, .. }
            | Action::Rate { a, b, .. }
            | Action::Flap { a, b, .. } => a.iter().chain(b).collect(),
            Action::Failover { via } => via.iter().collect(),
            Action::Heal | Action::Sleep { .. } | Action::Wait { .. } => vec![],
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
}

impl Until {
    pub const ALL: &'static [Until] = &[
        Until::Switch,
        Until::Demoted,
        Until::Healthy,
        Until::NoSwitch,
        Until::ExternalRecovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Until::Switch => "switch",
            Until::Demoted => "demoted",
            Until::Healthy => "healthy",
            Until::NoSwitch => "no-switch",
            Until::ExternalRecovered => "external-recovered",
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
