//! Scenario files: a topology (a path plus overrides), a workload, steps
//! (faults, waits, observation time) and expectations. Parsing and
//! validation are pure; errors name file:line:col.
//!
//! Invariant: a `Scenario` value is runnable — every step names a known
//! action with the arguments it needs, every expectation a known measure.

pub mod run;

use crate::error::{Error, Result};
use crate::model::topology::{ParseOptions, Topology};
use crate::workload::external::ExternalSpec;
use crate::workload::{ClientPath, WorkloadSpec};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A validated scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// The scenario file's text (goes into reports as is).
    pub text: String,
    pub topology: Topology,
    pub workload: Option<WorkloadSpec>,
    /// A client library under test, run beside the built-in workload.
    pub external: Option<ExternalSpec>,
    pub steps: Vec<Step>,
    pub expect: Vec<Expectation>,
}

/// One step; runs at `at_ms` after the workload started, or right after the
/// previous step.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    pub at_ms: Option<u64>,
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Kill {
        target: String,
    },
    Stop {
        target: String,
    },
    Start {
        target: String,
    },
    Restart {
        target: String,
    },
    Pause {
        target: String,
    },
    Unpause {
        target: String,
    },
    Failover,
    Isolate {
        target: String,
    },
    Partition {
        a: Vec<String>,
        b: Vec<String>,
        one_way: bool,
    },
    Heal,
    KillSentinel {
        target: String,
    },
    /// SIGKILL of the sentinel process: an unexpected exit (restarted by the
    /// container's on-failure policy).
    CrashSentinel {
        target: String,
    },
    PauseSentinel {
        target: String,
    },
    UnpauseSentinel {
        target: String,
    },
    SimulateFailure {
        target: String,
        mode: String,
    },
    DebugSleep {
        target: String,
        ms: u64,
    },
    ClientPause {
        target: String,
        ms: u64,
    },
    /// Observation time: let the system run.
    Sleep {
        ms: u64,
    },
    /// Wait for a condition (`switch`, `demoted`, `healthy`, `no-switch`,
    /// `external-recovered`: after the first fault the external client
    /// failed a write, then had one acknowledged).
    Wait {
        until: String,
        timeout_ms: u64,
    },
}

/// A measured value compared with a bound.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Expectation {
    pub measure: Measure,
    pub op: Cmp,
    /// A number, or a name for `vip_holder`.
    pub value: String,
    /// How the expectation is written in the file (for reports).
    pub source: String,
    /// Measured on the external client's writes (`[expect.external]`)
    /// rather than the built-in workload's.
    pub external: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
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
}

impl Measure {
    /// Whether the measure comes from one client's writes (and so exists
    /// for an external client too).
    pub fn is_per_client(&self) -> bool {
        matches!(
            self,
            Measure::LostAcknowledgedWrites
                | Measure::ClientRecoveredWithinMs
                | Measure::RefusedWrites
                | Measure::LossWindowMs
        )
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    description: Option<String>,
    topology: Option<Spanned<String>>,
    topology_overrides: Option<Spanned<toml::Table>>,
    workload: Option<Spanned<RawWorkload>>,
    external_client: Option<Spanned<RawExternal>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
    expect: Option<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    path: Spanned<String>,
    rate: Option<u32>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternal {
    name: Option<Spanned<String>>,
    command: Spanned<Vec<String>>,
    rate: Option<u32>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    at_ms: Option<u64>,
    action: Spanned<String>,
    target: Option<String>,
    a: Option<Vec<String>>,
    b: Option<Vec<String>>,
    one_way: Option<bool>,
    mode: Option<String>,
    ms: Option<u64>,
    until: Option<String>,
    timeout_ms: Option<u64>,
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Scenario> {
        let at = |span: Range<usize>, msg: String, hint: Option<&str>| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before
                .rfind('\n')
                .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
                + 1;
            Error::Input {
                at: format!("{}:{line}:{col}", path.display()),
                message: msg,
                hint: hint.map(str::to_string),
            }
        };
        let raw: Raw = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().to_string(), None))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = raw.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
        });

        // The topology: a file (default: fixtures/topology.toml beside the
        // scenarios folder) with the scenario's overrides laid on top.
        let (topo_path, topo_span) = match &raw.topology {
            Some(p) => (dir.join(p.get_ref()), p.span()),
            None => (dir.join("../topology.toml"), 0..0),
        };
        let topo_text = std::fs::read_to_string(&topo_path).map_err(|e| {
            at(
                topo_span.clone(),
                format!("key `topology`: cannot read {}: {e}", topo_path.display()),
                None,
            )
        })?;
        let mut table: toml::Table = toml::from_str(&topo_text).map_err(|e| {
            at(
                topo_span.clone(),
                format!("key `topology`: {}: {e}", topo_path.display()),
                None,
            )
        })?;
        let overrides_span = raw.topology_overrides.as_ref().map_or(0..0, |o| o.span());
        if let Some(o) = &raw.topology_overrides {
            for (k, v) in o.get_ref() {
                table.insert(k.clone(), v.clone());
            }
        }
        let merged = toml::to_string(&table).expect("a table serialises");
        let topology = Topology::parse(&merged, Some(&topo_path), &ParseOptions::default())
            .map_err(|e| {
                at(
                    overrides_span.clone(),
                    format!("the topology with this scenario's overrides is invalid: {e}"),
                    None,
                )
            })?;

        let workload = match &raw.workload {
            None => None,
            Some(w) => {
                let w = w.get_ref();
                let path = match w.path.get_ref().as_str() {
                    "vip" => ClientPath::Vip,
                    "sentinel" => ClientPath::Sentinel,
                    "master" => ClientPath::Node("master".into()),
                    n if topology.node(n).is_some() => ClientPath::Node(n.to_string()),
                    other => {
                        return Err(at(
                            w.path.span(),
                            format!("key `workload.path`: `{other}` is not a client path"),
                            Some("use \"vip\", \"sentinel\", \"master\" (the initial master) or a node name"),
                        ))
                    }
                };
                let d = WorkloadSpec::default();
                Some(WorkloadSpec {
                    path,
                    rate: w.rate.unwrap_or(d.rate).clamp(1, 1000),
                    timeout_ms: w.timeout_ms.unwrap_or(d.timeout_ms),
                })
            }
        };

        let external = match &raw.external_client {
            None => None,
            Some(x) => {
                let x = x.get_ref();
                let name = x
                    .name
                    .as_ref()
                    .map_or("external".to_string(), |n| n.get_ref().clone());
                let ok = !name.is_empty()
                    && name.len() <= 32
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    let span = x.name.as_ref().map_or(0..0, |n| n.span());
                    return Err(at(
                        span,
                        format!("key `external_client.name`: `{name}` is not a usable name"),
                        Some("1-32 letters, digits, `-` or `_` (it becomes the key prefix wl:<name>:)"),
                    ));
                }
                if x.command
                    .get_ref()
                    .first()
                    .is_none_or(|c| c.trim().is_empty())
                {
                    return Err(at(
                        x.command.span(),
                        "key `external_client.command`: the command is empty".into(),
                        Some("e.g. command = [\"python3\", \"../clients/redis_py_sentinel.py\"]"),
                    ));
                }
                let d = WorkloadSpec::default();
                Some(ExternalSpec {
                    name,
                    command: x.command.get_ref().clone(),
                    dir: dir.to_path_buf(),
                    rate: x.rate.unwrap_or(d.rate).clamp(1, 1000),
                    timeout_ms: x.timeout_ms.unwrap_or(1000),
                })
            }
        };

        let mut steps = Vec::new();
        for s in &raw.step {
            let span = s.span();
            let s = s.get_ref();
            let target = |what: &str| -> Result<String> {
                let t = s.target.clone().ok_or_else(|| {
                    at(
                        span.clone(),
                        format!("step `{what}` needs `target`"),
                        Some("a node name, \"master\" or \"replicas\""),
                    )
                })?;
                if t != "master" && t != "replicas" && topology.node(&t).is_none() {
                    return Err(at(
                        span.clone(),
                        format!("step `{what}`: no node named `{t}`"),
                        Some("a node name, \"master\" or \"replicas\""),
                    ));
                }
                Ok(t)
            };
            let ms = |what: &str| {
                s.ms.ok_or_else(|| at(span.clone(), format!("step `{what}` needs `ms`"), None))
            };
            let a = s.action.get_ref().as_str();
            let action = match a {
                "kill" => Action::Kill { target: target(a)? },
                "stop" => Action::Stop { target: target(a)? },
                "start" => Action::Start { target: target(a)? },
                "restart" => Action::Restart { target: target(a)? },
                "pause" => Action::Pause { target: target(a)? },
                "unpause" | "resume" => Action::Unpause { target: target(a)? },
                "failover" => Action::Failover,
                "isolate" => Action::Isolate { target: target(a)? },
                "partition" => {
                    let (Some(ga), Some(gb)) = (s.a.clone(), s.b.clone()) else {
                        return Err(at(span, "step `partition` needs groups `a` and `b`".into(), Some("e.g. a = [\"node1\"], b = [\"node2\", \"node3\"]")));
                    };
                    Action::Partition { a: ga, b: gb, one_way: s.one_way.unwrap_or(false) }
                }
                "heal" => Action::Heal,
                "kill-sentinel" => Action::KillSentinel { target: target(a)? },
                "crash-sentinel" => Action::CrashSentinel { target: target(a)? },
                "pause-sentinel" => Action::PauseSentinel { target: target(a)? },
                "unpause-sentinel" => Action::UnpauseSentinel { target: target(a)? },
                "simulate-failure" => Action::SimulateFailure {
                    target: target(a)?,
                    mode: s.mode.clone().unwrap_or_else(|| "crash-after-election".into()),
                },
                "debug-sleep" => Action::DebugSleep { target: target(a)?, ms: ms(a)? },
                "client-pause" => Action::ClientPause { target: target(a)?, ms: ms(a)? },
                "sleep" => Action::Sleep { ms: ms(a)? },
                "wait" => {
                    let until = s.until.clone().unwrap_or_default();
                    if !["switch", "demoted", "healthy", "no-switch", "external-recovered"].contains(&until.as_str()) {
                        return Err(at(span, format!("step `wait`: `until = \"{until}\"` is not a condition"), Some("use switch, demoted, healthy, no-switch or external-recovered")));
                    }
                    if until == "external-recovered" && external.is_none() {
                        return Err(at(span, "step `wait`: `external-recovered` needs an `[external_client]`".into(), None));
                    }
                    // a demotion can take 4 publish periods + an INFO period (~18 s)
                    Action::Wait { until, timeout_ms: s.timeout_ms.unwrap_or(topology.failover_timeout_ms + 25_000) }
                }
                other => {
                    return Err(at(
                        s.action.span(),
                        format!("key `action`: `{other}` is not an action"),
                        Some("kill, stop, start, restart, pause, unpause, failover, isolate, partition, heal, kill-sentinel, crash-sentinel, pause-sentinel, unpause-sentinel, simulate-failure, debug-sleep, client-pause, sleep, wait"),
                    ))
                }
            };
            steps.push(Step {
                at_ms: s.at_ms,
                action,
            });
        }

        let mut expect = Vec::new();
        if let Some(e) = &raw.expect {
            let mut entries: Vec<(String, &toml::Value, bool)> = Vec::new();
            for (k, v) in e.get_ref() {
                match (k.as_str(), v) {
                    ("external", toml::Value::Table(t)) => {
                        if external.is_none() {
                            return Err(at(
                                e.span(),
                                "key `expect.external`: the scenario has no `[external_client]`"
                                    .into(),
                                Some(
                                    "add an [external_client] table, or remove these expectations",
                                ),
                            ));
                        }
                        entries.extend(t.iter().map(|(k, v)| (k.clone(), v, true)));
                    }
                    _ => entries.push((k.clone(), v, false)),
                }
            }
            for (k, v, ext) in entries {
                let full = if ext {
                    format!("external.{k}")
                } else {
                    k.clone()
                };
                let mut x = parse_expectation(&k, v)
                    .map_err(|m| at(e.span(), format!("key `expect.{full}`: {m}"), None))?;
                if ext {
                    if !x.measure.is_per_client() {
                        return Err(at(
                            e.span(),
                            format!("key `expect.{full}`: `{k}` is not measured per client"),
                            Some("per client: lost_acknowledged_writes, client_recovered_within_ms, refused_writes, loss_window_ms"),
                        ));
                    }
                    x.external = true;
                    x.source = format!("external.{}", x.source);
                }
                if x.measure == Measure::VipHolder
                    && !matches!(x.value.as_str(), "new-master" | "old-master" | "none")
                    && topology.node(&x.value).is_none()
                {
                    let m = format!(
                        "key `expect.vip_holder`: `{}` is neither a role nor a node",
                        x.value
                    );
                    return Err(at(
                        e.span(),
                        m,
                        Some("use \"new-master\", \"old-master\", \"none\" or a node name"),
                    ));
                }
                expect.push(x);
            }
        }
        Ok(Scenario {
            name,
            description: raw.description.unwrap_or_default(),
            file: path.to_path_buf(),
            text: text.to_string(),
            topology,
            workload,
            external,
            steps,
            expect,
        })
    }
}

fn parse_expectation(key: &str, v: &toml::Value) -> std::result::Result<Expectation, String> {
    let measure: Measure = serde::Deserialize::deserialize(toml::Value::String(key.to_string()))
        .map_err(|_| "not a known measure (promoted_within_ms, failovers, lost_acknowledged_writes, vip_holders_max, vip_holder, old_master_demoted_within_ms, client_recovered_within_ms, duplicate_vip_ms, refused_writes, loss_window_ms)".to_string())?;
    let within = key.ends_with("_within_ms") || key == "vip_holders_max";
    let (op, value) = match v {
        toml::Value::Integer(i) => (if within { Cmp::Le } else { Cmp::Eq }, i.to_string()),
        toml::Value::String(s) if measure == Measure::VipHolder => (Cmp::Eq, s.clone()),
        toml::Value::String(s) => {
            let s = s.trim();
            let (op, rest) = [
                (">=", Cmp::Ge),
                ("<=", Cmp::Le),
                (">", Cmp::Gt),
                ("<", Cmp::Lt),
                ("=", Cmp::Eq),
            ]
            .iter()
            .find_map(|(p, c)| s.strip_prefix(p).map(|r| (*c, r.trim())))
            .ok_or_else(|| format!("`{s}` is not a comparison like \"> 0\" or \"<= 5000\""))?;
            rest.parse::<f64>()
                .map_err(|_| format!("`{rest}` is not a number"))?;
            (op, rest.to_string())
        }
        other => {
            return Err(format!(
                "{other} is neither a number nor a comparison string"
            ))
        }
    };
    Ok(Expectation {
        measure,
        op,
        value,
        source: format!("{key} = {v}"),
        external: false,
    })
}

#[cfg(test)]
mod tests;
