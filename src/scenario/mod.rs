//! Scenario files: a topology (a path plus overrides), a workload, an
//! external client, steps (the verbs of [`crate::model::verb`], waits and
//! observation time) and expectations. `parse` turns a file into a
//! [`Scenario`] (pure; errors name file:line:col); `run` runs one on a fresh
//! testbed and `result` judges what it measured.
//!
//! Invariant: a `Scenario` value is runnable — every step is a known verb
//! with typed, validated arguments (targets name nodes of its topology, or
//! are refused), every expectation a known measure with a numeric bound.

pub mod clients;
mod endstate;
mod evidence;
mod judge;
pub mod matrix;
mod parse;
pub mod result;
pub mod run;

pub use crate::model::action::{Action, Until};
pub use endstate::NodeEnd;
pub use parse::{INFO_FIELDS, SENTINEL_EVENTS, SENTINEL_FIELDS};
pub use result::{Measurements, RunResult, Verdict};

use crate::model::topology::Topology;
use crate::workload::external::ExternalSpec;
use crate::workload::WorkloadSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A validated scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    /// The behaviour the scenario reproduces (what the report claims).
    pub description: String,
    /// Where the behaviour is described: upstream issues, pull requests,
    /// tests of the Redis or Valkey suites, the source articles.
    pub sources: Vec<Source>,
    pub file: PathBuf,
    /// The scenario file's text (goes into reports as is).
    pub text: String,
    pub topology: Topology,
    pub workload: Option<WorkloadSpec>,
    /// A client library under test, run beside the built-in workload.
    pub external: Option<ExternalSpec>,
    /// More clients under test, all writing at once (`[[clients]]`; `cargo
    /// xtask clients` fills it with its selection). Each is judged on its
    /// own; none ends the run by crashing.
    pub clients: Vec<ExternalSpec>,
    pub steps: Vec<Step>,
    pub expect: Vec<Expectation>,
    /// The measure whose median the behaviour matrix shows (`key_measure`,
    /// or the first expectation's).
    pub key_measure: Option<String>,
}

/// A reference to where a behaviour is reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// `owner/repo#N`: an issue or pull request on GitHub.
    Issue { repo: String, number: u64 },
    /// `owner/repo:path`: a file of a repository (a test of its suite).
    File { repo: String, path: String },
    /// `article:NAME`: one of the source articles.
    Article { name: String },
    /// An `https://` URL.
    Url { url: String },
}

impl Source {
    /// The written form.
    pub fn text(&self) -> String {
        match self {
            Source::Issue { repo, number } => format!("{repo}#{number}"),
            Source::File { repo, path } => format!("{repo}:{path}"),
            Source::Article { name } => format!("article:{name}"),
            Source::Url { url } => url.clone(),
        }
    }

    /// A link for reports.
    pub fn url(&self) -> Option<String> {
        match self {
            Source::Issue { repo, number } => {
                Some(format!("https://github.com/{repo}/issues/{number}"))
            }
            Source::File { repo, path } => {
                Some(format!("https://github.com/{repo}/blob/HEAD/{path}"))
            }
            Source::Article { .. } => None,
            Source::Url { url } => Some(url.clone()),
        }
    }
}

/// One step; runs at `at_ms` after the workload started, or right after the
/// previous step.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    pub at_ms: Option<u64>,
    pub action: Action,
    /// The line of the scenario file the step starts on (for messages).
    pub line: usize,
    /// The step must fail with an error containing this text (a refusal
    /// is the behaviour under test); any other outcome is a step error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_error: Option<String>,
}

/// A measured value compared with a bound.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Expectation {
    pub measure: Measure,
    pub op: Cmp,
    pub bound: Bound,
    /// How the expectation is written in the file (for reports).
    pub source: String,
    /// Measured on the external client's writes (`[expect.external]`)
    /// rather than the built-in workload's.
    pub external: bool,
    /// The rest of a dotted measure's key: `events."+sdown".node2` is
    /// `Events` with `["+sdown", "node2"]`, `info.node3.dbsize` is `Info`
    /// with `["node3", "dbsize"]` (empty for the plain measures).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

impl Expectation {
    /// The measure's whole key (`info.node3.dbsize`), as in `[expect]` and
    /// in `Measurements::unmeasured`.
    pub fn path(&self) -> String {
        std::iter::once(self.measure.key().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// What a measure is compared with.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Bound {
    Number(f64),
    /// For `vip_holder`, `promoted_node`, `final_master`.
    Holder(Holder),
    /// A text field that must be equal (`info.node1.role = "master"`).
    Text(String),
    /// A text field that must contain this (`sentinel.node3.flags = "~ disconnected"`).
    Contains(String),
}

/// Who holds the VIP at the end (`vip_holder`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Holder {
    /// The final master, which is not the initial one.
    NewMaster,
    /// The initial master.
    OldMaster,
    /// Nobody.
    None,
    /// This node.
    Node(String),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    PromotedWithinMs,
    Failovers,
    LostAcknowledgedWrites,
    VipHoldersMax,
    VipHolder,
    OldMasterDemotedWithinMs,
    ClientRecoveredWithinMs,
    DuplicateVipMs,
    RefusedWrites,
    /// The longest span of acknowledged-then-lost writes.
    LossWindowMs,
    // issue 11: what the report claims, measured more precisely
    /// Steps that failed (a wait that timed out, an unexpected reply).
    StepErrors,
    /// The node the first failover promoted.
    PromotedNode,
    /// The master most sentinels name at the end.
    FinalMaster,
    /// `events.<channel>[.<node>]`: sentinel events published from the
    /// first fault on (by every sentinel, or by one node's).
    Events,
    /// `refused_writes.<KIND>`: refused writes of one error kind.
    RefusedWritesOf,
    /// `info.<node>.<field>`: a field of the node's INFO at the end
    /// (`dbsize` is DBSIZE).
    Info,
    /// `sentinel.<node>.<field>`: a field of the node's sentinel at the end
    /// (SENTINEL MASTER, `master` = the node it names, INFO sentinel).
    SentinelField,
    /// `sentinel_restarts.<node>`: restarts of its sentinel container.
    SentinelRestarts,
    /// `sentinel_running.<node>`: whether its sentinel runs at the end.
    SentinelRunning,
    /// `script_calls.<node>[.leader|.observer]`: runs of the reconfig
    /// script by that node's sentinel (from the script's call log).
    ScriptCalls,
}

impl Measure {
    pub const ALL: &'static [Measure] = &[
        Measure::PromotedWithinMs,
        Measure::Failovers,
        Measure::LostAcknowledgedWrites,
        Measure::VipHoldersMax,
        Measure::VipHolder,
        Measure::OldMasterDemotedWithinMs,
        Measure::ClientRecoveredWithinMs,
        Measure::DuplicateVipMs,
        Measure::RefusedWrites,
        Measure::LossWindowMs,
        Measure::StepErrors,
        Measure::PromotedNode,
        Measure::FinalMaster,
        Measure::Events,
        Measure::RefusedWritesOf,
        Measure::Info,
        Measure::SentinelField,
        Measure::SentinelRestarts,
        Measure::SentinelRunning,
        Measure::ScriptCalls,
    ];

    /// Its key in `[expect]`.
    pub fn key(self) -> &'static str {
        match self {
            Measure::PromotedWithinMs => "promoted_within_ms",
            Measure::Failovers => "failovers",
            Measure::LostAcknowledgedWrites => "lost_acknowledged_writes",
            Measure::VipHoldersMax => "vip_holders_max",
            Measure::VipHolder => "vip_holder",
            Measure::OldMasterDemotedWithinMs => "old_master_demoted_within_ms",
            Measure::ClientRecoveredWithinMs => "client_recovered_within_ms",
            Measure::DuplicateVipMs => "duplicate_vip_ms",
            Measure::RefusedWrites => "refused_writes",
            Measure::LossWindowMs => "loss_window_ms",
            Measure::StepErrors => "step_errors",
            Measure::PromotedNode => "promoted_node",
            Measure::FinalMaster => "final_master",
            Measure::Events => "events",
            // the same key as refused_writes, with a kind after the dot
            Measure::RefusedWritesOf => "refused_writes",
            Measure::Info => "info",
            Measure::SentinelField => "sentinel",
            Measure::SentinelRestarts => "sentinel_restarts",
            Measure::SentinelRunning => "sentinel_running",
            Measure::ScriptCalls => "script_calls",
        }
    }

    /// Whether the key takes more parts after a dot (`events."+sdown"`).
    pub fn is_dotted(self) -> bool {
        matches!(
            self,
            Measure::Events
                | Measure::RefusedWritesOf
                | Measure::Info
                | Measure::SentinelField
                | Measure::SentinelRestarts
                | Measure::SentinelRunning
                | Measure::ScriptCalls
        )
    }

    /// How the key is written, for hints (`events.<channel>[.<node>]`).
    pub fn form(self) -> &'static str {
        match self {
            Measure::Events => "events.<channel>[.<node>]",
            Measure::RefusedWritesOf => "refused_writes.<KIND>",
            Measure::Info => "info.<node>.<field>",
            Measure::SentinelField => "sentinel.<node>.<field>",
            Measure::SentinelRestarts => "sentinel_restarts.<node>",
            Measure::SentinelRunning => "sentinel_running.<node>",
            Measure::ScriptCalls => "script_calls.<node>[.leader|.observer]",
            m => m.key(),
        }
    }

    /// The plain (undotted) measure of that key.
    pub fn from_key(key: &str) -> Option<Measure> {
        Measure::ALL
            .iter()
            .copied()
            .find(|m| m.key() == key && !m.is_dotted())
    }

    /// Whether the measure comes from one client's writes (and so exists
    /// for an external client too).
    pub fn is_per_client(&self) -> bool {
        matches!(
            self,
            Measure::LostAcknowledgedWrites
                | Measure::ClientRecoveredWithinMs
                | Measure::RefusedWrites
                | Measure::LossWindowMs
                | Measure::RefusedWritesOf
        )
    }

    /// A bare number means `<=` for bounds (`*_within_ms`, maxima) and `=`
    /// for counts.
    fn is_upper_bound(&self) -> bool {
        self.key().ends_with("_within_ms") || *self == Measure::VipHoldersMax
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Le,
    Lt,
    Ge,
    Gt,
}

impl Cmp {
    pub fn holds(&self, measured: f64, bound: f64) -> bool {
        match self {
            Cmp::Eq => (measured - bound).abs() < 1e-9,
            Cmp::Le => measured <= bound,
            Cmp::Lt => measured < bound,
            Cmp::Ge => measured >= bound,
            Cmp::Gt => measured > bound,
        }
    }

    pub fn symbol(&self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Le => "<=",
            Cmp::Lt => "<",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
        }
    }
}

#[cfg(test)]
mod tests;
