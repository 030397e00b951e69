//! Parsing and validating a scenario file. Pure except for reading the
//! topology file it names. Every error is `Error::Input` at file:line:col of
//! the key at fault, with a hint where one helps.

use super::{Scenario, Source, Step};
use crate::error::{Error, Result};
use crate::model::action::{Action, PauseMode, SimulateFailure, Until};
use crate::model::target::{Direction, Target, TARGET_WORDS};
use crate::model::topology::{ParseOptions, Topology};
use crate::model::verb::{self, Aim, Verb};
use crate::workload::external::ExternalSpec;
use crate::workload::{ClientPath, WorkloadSpec};
use serde::Deserialize;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

mod expect;
mod spans;
mod steps;
use expect::expectations;
pub use expect::{INFO_FIELDS, SENTINEL_EVENTS, SENTINEL_FIELDS};
use steps::{command_spec, expected_error, key_measure, wait_args};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    description: Option<String>,
    source: Option<Spanned<RawSources>>,
    topology: Option<Spanned<String>>,
    topology_overrides: Option<Spanned<toml::Table>>,
    workload: Option<Spanned<RawWorkload>>,
    external_client: Option<Spanned<RawExternal>>,
    #[serde(default)]
    clients: Vec<Spanned<RawExternal>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
    expect: Option<Spanned<toml::Table>>,
    key_measure: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSources {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    path: Spanned<String>,
    rate: Option<Spanned<u32>>,
    timeout_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternal {
    name: Option<Spanned<String>>,
    /// A host command.
    command: Option<Spanned<Vec<String>>>,
    /// Or a client program of the client image, run in a container.
    client: Option<Spanned<String>>,
    /// The client program's arguments.
    args: Option<Spanned<Vec<String>>>,
    rate: Option<Spanned<u32>>,
    timeout_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    at_ms: Option<Spanned<u64>>,
    action: Spanned<String>,
    target: Option<Spanned<String>>,
    via: Option<Spanned<String>>,
    a: Option<Spanned<Vec<String>>>,
    b: Option<Spanned<Vec<String>>>,
    one_way: Option<Spanned<bool>>,
    mode: Option<Spanned<String>>,
    ms: Option<Spanned<u64>>,
    jitter_ms: Option<Spanned<u64>>,
    percent: Option<Spanned<f64>>,
    seconds: Option<Spanned<f64>>,
    process: Option<Spanned<String>>,
    kbit: Option<Spanned<u64>>,
    up_ms: Option<Spanned<u64>>,
    down_ms: Option<Spanned<u64>>,
    until: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    // issue 11: commands, coordinated failovers, expected errors, waits
    args: Option<Spanned<Vec<String>>>,
    role: Option<Spanned<String>>,
    coordinated: Option<Spanned<bool>>,
    expect_error: Option<Spanned<String>>,
    event: Option<Spanned<String>>,
}

/// Turns spans of one file into `Error::Input`.
struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, msg: impl Into<String>, hint: Option<&str>) -> Error {
        Error::at(
            self.path.display(),
            self.text,
            span.start,
            msg,
            hint.map(str::to_string),
        )
    }
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates scenario TOML; `path` names it in messages and
    /// anchors its relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario> {
        let cx = Ctx { text, path };
        let raw: Raw = toml::from_str(text)
            .map_err(|e| cx.err(e.span().unwrap_or(0..0), e.message(), None))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = raw.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
        });
        let topology = topology(&cx, &raw, dir)?;
        let workload = raw
            .workload
            .as_ref()
            .map(|w| workload(&cx, w.get_ref(), &topology))
            .transpose()?;
        let external = raw
            .external_client
            .as_ref()
            .map(|x| client_spec(&cx, x, dir, "external_client"))
            .transpose()?;
        let mut clients: Vec<ExternalSpec> = Vec::new();
        for (i, c) in raw.clients.iter().enumerate() {
            let spec = client_spec(&cx, c, dir, &format!("clients[{i}]"))?;
            let taken = clients
                .iter()
                .chain(external.as_ref())
                .any(|o| o.name == spec.name);
            if taken {
                return Err(cx.err(
                    c.span(),
                    format!("key `clients[{i}]`: a second client named `{}`", spec.name),
                    Some("each client writes its own keys wl:<name>:<id>: give it another `name`"),
                ));
            }
            clients.push(spec);
        }
        let mut steps = Vec::new();
        for s in &raw.step {
            steps.push(step(&cx, s, &topology, external.is_some())?);
        }
        let expect = match &raw.expect {
            Some(e) => expectations(&cx, e, &topology, external.is_some())?,
            None => Vec::new(),
        };
        let key_measure = key_measure(&cx, &raw.key_measure, &expect)?;
        let sources = match &raw.source {
            Some(s) => sources(&cx, s)?,
            None => Vec::new(),
        };
        Ok(Scenario {
            name,
            description: raw.description.unwrap_or_default(),
            sources,
            file: path.to_path_buf(),
            text: text.to_string(),
            topology,
            workload,
            external,
            clients,
            steps,
            expect,
            key_measure,
        })
    }
}

/// The topology: a file (default: fixtures/topology.toml beside the
/// scenarios folder) with the scenario's overrides laid on top.
fn topology(cx: &Ctx, raw: &Raw, dir: &Path) -> Result<Topology> {
    let (path, span) = match &raw.topology {
        Some(p) => (dir.join(p.get_ref()), p.span()),
        None => (dir.join("../topology.toml"), 0..0),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let msg = format!("key `topology`: cannot read {}: {e}", path.display());
        cx.err(span.clone(), msg, None)
    })?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| {
        let msg = format!("key `topology`: {}: {e}", path.display());
        cx.err(span.clone(), msg, None)
    })?;
    let overrides = raw.topology_overrides.as_ref();
    for (k, v) in overrides.map(|o| o.get_ref().iter()).into_iter().flatten() {
        table.insert(k.clone(), v.clone());
    }
    let merged = toml::to_string(&table).expect("a table serialises");
    Topology::parse(&merged, Some(&path), &ParseOptions::default()).map_err(|e| {
        let msg = format!("the topology with this scenario's overrides is invalid: {e}");
        cx.err(overrides.map_or(0..0, |o| o.span()), msg, None)
    })
}

fn workload(cx: &Ctx, w: &RawWorkload, t: &Topology) -> Result<WorkloadSpec> {
    let path = match w.path.get_ref().as_str() {
        "vip" => ClientPath::Vip,
        "sentinel" => ClientPath::Sentinel,
        "master" | "initial-master" => ClientPath::Node(t.initial_master().name.clone()),
        n if t.node(n).is_some() => ClientPath::Node(n.to_string()),
        other => {
            return Err(cx.err(
                w.path.span(),
                format!("key `workload.path`: `{other}` is not a client path"),
                Some("use \"vip\", \"sentinel\", \"master\" (the node that is master when the workload starts: a fixed address) or a node name"),
            ))
        }
    };
    let d = WorkloadSpec::default();
    Ok(WorkloadSpec {
        path,
        rate: rate(cx, &w.rate, "workload.rate")?.unwrap_or(d.rate),
        timeout_ms: positive(cx, &w.timeout_ms, "workload.timeout_ms")?.unwrap_or(d.timeout_ms),
    })
}

/// An `[external_client]` or one of `[[clients]]` (`key` names it in
/// messages): a host `command`, or a `client` program of the client image.
fn client_spec(cx: &Ctx, sx: &Spanned<RawExternal>, dir: &Path, key: &str) -> Result<ExternalSpec> {
    let x = sx.get_ref();
    let program = match (&x.command, &x.client) {
        (Some(c), Some(_)) => {
            return Err(cx.err(
                c.span(),
                format!("key `{key}`: `command` and `client` both given"),
                Some("`command` runs a program on the host, `client` a program of the client image in a container: pick one"),
            ))
        }
        (None, None) => {
            return Err(cx.err(
                sx.span(),
                format!("key `{key}`: neither `command` nor `client`"),
                Some(&format!(
                    "client = \"ioredis-sentinel\" (one of: {}), or command = [\"python3\", \"../clients/redis_py_sentinel.py\"]",
                    crate::model::clients::names()
                )),
            ))
        }
        (None, Some(c)) => Some(
            crate::model::clients::find(c.get_ref())
                .map_err(|m| cx.err(c.span(), format!("key `{key}.client`: {m}"), None))?,
        ),
        (Some(_), None) => None,
    };
    if let (Some(a), None) = (&x.args, program) {
        return Err(cx.err(
            a.span(),
            format!("key `{key}.args`: `args` goes with `client`"),
            Some("a host `command` carries its arguments itself"),
        ));
    }
    let name = x.name.as_ref().map_or_else(
        || program.map_or("external".to_string(), |p| p.name.to_string()),
        |n| n.get_ref().clone(),
    );
    let usable = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !usable {
        return Err(cx.err(
            x.name.as_ref().map_or(0..0, |n| n.span()),
            format!("key `{key}.name`: `{name}` is not a usable name"),
            Some("1-32 letters, digits, `-` or `_` (it becomes the key prefix wl:<name>:)"),
        ));
    }
    let command = match (program, &x.command) {
        (Some(p), _) => {
            let mut c = vec![p.name.to_string()];
            c.extend(
                x.args
                    .as_ref()
                    .map(|a| a.get_ref().clone())
                    .unwrap_or_default(),
            );
            c
        }
        (None, Some(c)) => {
            if c.get_ref().first().is_none_or(|w| w.trim().is_empty()) {
                return Err(cx.err(
                    c.span(),
                    format!("key `{key}.command`: the command is empty"),
                    Some("e.g. command = [\"python3\", \"../clients/redis_py_sentinel.py\"]"),
                ));
            }
            c.get_ref().clone()
        }
        (None, None) => unreachable!("checked above"),
    };
    let d = WorkloadSpec::default();
    Ok(ExternalSpec {
        name,
        command,
        dir: dir.to_path_buf(),
        rate: rate(cx, &x.rate, &format!("{key}.rate"))?.unwrap_or(d.rate),
        timeout_ms: positive(cx, &x.timeout_ms, &format!("{key}.timeout_ms"))?.unwrap_or(1000),
        image: program.map(|_| crate::backend::client_image::CLIENT_IMAGE.to_string()),
    })
}

/// Writes per second: 1 to 1000.
fn rate(cx: &Ctx, v: &Option<Spanned<u32>>, key: &str) -> Result<Option<u32>> {
    match v {
        Some(r) if !(1..=1000).contains(r.get_ref()) => Err(cx.err(
            r.span(),
            format!(
                "key `{key}`: {} is outside 1..=1000 writes per second",
                r.get_ref()
            ),
            None,
        )),
        v => Ok(v.as_ref().map(|r| *r.get_ref())),
    }
}

fn positive(cx: &Ctx, v: &Option<Spanned<u64>>, key: &str) -> Result<Option<u64>> {
    match v {
        Some(n) if *n.get_ref() == 0 => {
            Err(cx.err(n.span(), format!("key `{key}`: must be more than 0"), None))
        }
        v => Ok(v.as_ref().map(|n| *n.get_ref())),
    }
}

/// The keys each kind of step takes besides `action` and `at_ms`.
fn keys_of(verb: Verb) -> &'static [&'static str] {
    match verb.info().aim {
        Aim::Nothing => match verb {
            Verb::Sleep => &["ms"],
            Verb::Wait => &["until", "timeout_ms", "target", "event"],
            _ => &[],
        },
        Aim::Groups => &["a", "b", "one_way"],
        Aim::Links => match verb {
            Verb::Delay => &["a", "b", "one_way", "ms", "jitter_ms"],
            Verb::Loss => &["a", "b", "one_way", "percent"],
            Verb::Rate => &["a", "b", "one_way", "kbit"],
            _ => &["a", "b", "one_way", "up_ms", "down_ms"],
        },
        Aim::OptionalNode | Aim::OneNode => match verb {
            Verb::Failover => &["via", "coordinated", "expect_error"],
            _ => &["via"],
        },
        Aim::Nodes => match verb {
            Verb::SimulateFailure => &["target", "mode"],
            Verb::DebugSleep => &["target", "ms"],
            Verb::ClientPause => &["target", "ms", "mode"],
            Verb::Command | Verb::SentinelCommand => {
                &["target", "args", "role", "timeout_ms", "expect_error"]
            }
            Verb::ClockJump => &["target", "process", "seconds"],
            _ => &["target"],
        },
    }
}

fn step(cx: &Ctx, s: &Spanned<RawStep>, t: &Topology, has_external: bool) -> Result<Step> {
    let span = s.span();
    let line = crate::error::line_col(cx.text, span.start).0;
    let r = s.get_ref();
    let name = r.action.get_ref().as_str();
    let verb = match (Verb::from_name(name), Verb::renamed(name)) {
        (Some(v), _) => v,
        (None, Some(v)) => {
            return Err(cx.err(
                r.action.span(),
                format!("key `action`: `{name}` was renamed `{v}`"),
                Some(&format!(
                    "write action = \"{v}\" (one name everywhere: CLI, scenarios, timeline)"
                )),
            ))
        }
        (None, None) => {
            return Err(cx.err(
                r.action.span(),
                format!("key `action`: `{name}` is not an action"),
                Some(&verb::names(|_| true)),
            ))
        }
    };
    let given: [(&str, Option<Range<usize>>); 21] = [
        ("target", r.target.as_ref().map(Spanned::span)),
        ("via", r.via.as_ref().map(Spanned::span)),
        ("a", r.a.as_ref().map(Spanned::span)),
        ("b", r.b.as_ref().map(Spanned::span)),
        ("one_way", r.one_way.as_ref().map(Spanned::span)),
        ("mode", r.mode.as_ref().map(Spanned::span)),
        ("ms", r.ms.as_ref().map(Spanned::span)),
        ("jitter_ms", r.jitter_ms.as_ref().map(Spanned::span)),
        ("percent", r.percent.as_ref().map(Spanned::span)),
        ("seconds", r.seconds.as_ref().map(Spanned::span)),
        ("process", r.process.as_ref().map(Spanned::span)),
        ("kbit", r.kbit.as_ref().map(Spanned::span)),
        ("up_ms", r.up_ms.as_ref().map(Spanned::span)),
        ("down_ms", r.down_ms.as_ref().map(Spanned::span)),
        ("until", r.until.as_ref().map(Spanned::span)),
        ("timeout_ms", r.timeout_ms.as_ref().map(Spanned::span)),
        ("args", r.args.as_ref().map(Spanned::span)),
        ("role", r.role.as_ref().map(Spanned::span)),
        ("coordinated", r.coordinated.as_ref().map(Spanned::span)),
        ("expect_error", r.expect_error.as_ref().map(Spanned::span)),
        ("event", r.event.as_ref().map(Spanned::span)),
    ];
    let takes = keys_of(verb);
    for (key, at) in &given {
        if let (Some(at), false) = (at, takes.contains(key)) {
            let hint = if takes.is_empty() {
                format!("`{verb}` takes no arguments")
            } else {
                format!("`{verb}` takes {}", takes.join(", "))
            };
            return Err(cx.err(
                at.clone(),
                format!("key `{key}` does not apply to `{verb}`"),
                Some(&hint),
            ));
        }
    }
    let need_target = || -> Result<Target> {
        let v = r.target.as_ref().ok_or_else(|| {
            cx.err(
                span.clone(),
                format!("step `{verb}` needs `target`"),
                Some(TARGET_WORDS),
            )
        })?;
        target(cx, v, t, verb)
    };
    let need_ms = || -> Result<u64> {
        let ms =
            r.ms.as_ref()
                .ok_or_else(|| cx.err(span.clone(), format!("step `{verb}` needs `ms`"), None))?;
        positive(cx, &Some(ms.clone()), "ms").map(|v| v.unwrap_or(0))
    };
    let groups = || -> Result<(Vec<Target>, Vec<Target>, Direction)> {
        let (Some(a), Some(b)) = (&r.a, &r.b) else {
            return Err(cx.err(
                span.clone(),
                format!("step `{verb}` needs groups `a` and `b`"),
                Some(
                    "e.g. a = [\"node1\"], b = [\"node2\", \"node3\"]; b = [] is every other node",
                ),
            ));
        };
        let group = |g: &Spanned<Vec<String>>| -> Result<Vec<Target>> {
            g.get_ref()
                .iter()
                .map(|w| target(cx, &Spanned::new(g.span(), w.clone()), t, verb))
                .collect()
        };
        let (ga, gb) = (group(a)?, group(b)?);
        if ga.is_empty() {
            return Err(cx.err(a.span(), "key `a`: the first group is empty", None));
        }
        let direction = match r.one_way.as_ref().map(|o| *o.get_ref()) {
            Some(true) => Direction::OneWay,
            _ => Direction::Both,
        };
        Ok((ga, gb, direction))
    };
    let need = |v: &Option<Spanned<u64>>, key: &str| -> Result<u64> {
        v.as_ref()
            .map(|x| *x.get_ref())
            .ok_or_else(|| cx.err(span.clone(), format!("step `{verb}` needs `{key}`"), None))
    };
    let action = match verb {
        Verb::Partition => {
            let (a, b, direction) = groups()?;
            Action::Partition { a, b, direction }
        }
        Verb::Delay | Verb::Loss | Verb::Rate | Verb::Flap => {
            let (a, b, direction) = groups()?;
            let action =
                match verb {
                    Verb::Delay => Action::Delay {
                        a,
                        b,
                        ms: need(&r.ms, "ms")?,
                        jitter_ms: r.jitter_ms.as_ref().map_or(0, |j| *j.get_ref()),
                        direction,
                    },
                    Verb::Loss => Action::Loss {
                        a,
                        b,
                        percent: r.percent.as_ref().map(|p| *p.get_ref()).ok_or_else(|| {
                            cx.err(span.clone(), "step `loss` needs `percent`", None)
                        })?,
                        direction,
                    },
                    Verb::Rate => Action::Rate {
                        a,
                        b,
                        kbit: need(&r.kbit, "kbit")?,
                        direction,
                    },
                    _ => Action::Flap {
                        a,
                        b,
                        up_ms: need(&r.up_ms, "up_ms")?,
                        down_ms: need(&r.down_ms, "down_ms")?,
                        direction,
                    },
                };
            // the parameters, checked as the library checks them
            if let Some(what) = crate::faults::impair::Impairment::of(&action) {
                what.validate()
                    .map_err(|m| cx.err(span.clone(), format!("step `{verb}`: {m}"), None))?;
            }
            action
        }
        Verb::Heal => Action::Heal,
        Verb::Failover => Action::Failover {
            via: r.via.as_ref().map(|v| target(cx, v, t, verb)).transpose()?,
            coordinated: r.coordinated.as_ref().is_some_and(|c| *c.get_ref()),
        },
        Verb::Command => Action::Command {
            target: need_target()?,
            command: command_spec(cx, r, &span, verb)?,
        },
        Verb::SentinelCommand => Action::SentinelCommand {
            target: need_target()?,
            command: command_spec(cx, r, &span, verb)?,
        },
        Verb::SimulateFailure => Action::SimulateFailure {
            target: need_target()?,
            mode: typed(cx, &r.mode, "mode")?.unwrap_or(SimulateFailure::CrashAfterElection),
        },
        Verb::DebugSleep => Action::DebugSleep {
            target: need_target()?,
            ms: need_ms()?,
        },
        Verb::ClientPause => Action::ClientPause {
            target: need_target()?,
            ms: need_ms()?,
            mode: typed::<PauseMode>(cx, &r.mode, "mode")?.unwrap_or_default(),
        },
        Verb::ClockJump => {
            let seconds = r.seconds.as_ref().ok_or_else(|| {
                cx.err(
                    span.clone(),
                    "step `clock-jump` needs `seconds`",
                    Some("e.g. seconds = 30 (or -30: back)"),
                )
            })?;
            let s = *seconds.get_ref();
            if !s.is_finite() || s == 0.0 || s.abs() > 86_400.0 * 365.0 {
                return Err(cx.err(
                    seconds.span(),
                    format!("key `seconds`: {s}: give a jump other than 0, within a year"),
                    None,
                ));
            }
            Action::ClockJump {
                target: need_target()?,
                process: typed(cx, &r.process, "process")?.ok_or_else(|| {
                    cx.err(
                        span.clone(),
                        "step `clock-jump` needs `process`",
                        Some("\"redis\" or \"sentinel\""),
                    )
                })?,
                seconds: s,
            }
        }
        Verb::Sleep => Action::Sleep { ms: need_ms()? },
        Verb::Wait => {
            let until: Until = typed(cx, &r.until, "until")?.ok_or_else(|| {
                cx.err(
                    span.clone(),
                    "step `wait` needs `until`",
                    Some(
                        "switch, demoted, healthy, no-switch, external-recovered, master or event",
                    ),
                )
            })?;
            let (wait_target, event) = wait_args(cx, r, &span, until, t)?;
            if until == Until::ExternalRecovered && !has_external {
                let at = r.until.as_ref().map_or(span.clone(), |u| u.span());
                return Err(cx.err(
                    at,
                    "step `wait`: `external-recovered` needs an `[external_client]`",
                    None,
                ));
            }
            // a demotion can take 4 publish periods + an INFO period (~18 s)
            let timeout_ms = positive(cx, &r.timeout_ms, "timeout_ms")?
                .unwrap_or(t.failover_timeout_ms + 25_000);
            Action::Wait {
                until,
                timeout_ms,
                target: wait_target,
                event,
            }
        }
        v => Action::on(v, need_target()?).expect("every other verb is aimed at nodes"),
    };
    Ok(Step {
        at_ms: r.at_ms.as_ref().map(|a| *a.get_ref()),
        action,
        line,
        expect_error: expected_error(cx, &r.expect_error)?,
    })
}

/// A target word, checked against the topology and the verb's aim.
fn target(cx: &Ctx, v: &Spanned<String>, t: &Topology, verb: Verb) -> Result<Target> {
    let target: Target = v
        .get_ref()
        .parse()
        .map_err(|m: String| cx.err(v.span(), m, None))?;
    let bad = |msg: String, hint: &str| Err(cx.err(v.span(), msg, Some(hint)));
    match &target {
        Target::Node(n) if t.node(n).is_none() => {
            let known: Vec<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
            bad(
                format!("step `{verb}`: no node named `{n}`"),
                &format!("the nodes are {}; or use {TARGET_WORDS}", known.join(", ")),
            )
        }
        Target::Host if verb.info().aim != Aim::Links => bad(
            format!("step `{verb}`: `host` is not a node"),
            "partitions never cut the host; only link impairments (delay, loss, rate, flap) take `host`",
        ),
        Target::Replicas if matches!(verb.info().aim, Aim::OneNode | Aim::OptionalNode) => bad(
            format!("step `{verb}` is aimed at one node; `replicas` can name several"),
            "name one node, `master` or `initial-master`",
        ),
        _ => Ok(target),
    }
}

/// An optional string key parsed into `T`.
fn typed<T: std::str::FromStr<Err = String>>(
    cx: &Ctx,
    v: &Option<Spanned<String>>,
    key: &str,
) -> Result<Option<T>> {
    v.as_ref()
        .map(|s| {
            s.get_ref()
                .parse()
                .map_err(|m: String| cx.err(s.span(), format!("key `{key}`: {m}"), None))
        })
        .transpose()
}

fn sources(cx: &Ctx, s: &Spanned<RawSources>) -> Result<Vec<Source>> {
    let list = match s.get_ref() {
        RawSources::One(x) => vec![x.clone()],
        RawSources::Many(v) => v.clone(),
    };
    if list.is_empty() {
        return Err(cx.err(s.span(), "key `source`: the list is empty", None));
    }
    list.iter()
        .map(|x| {
            parse_source(x).map_err(|m| {
                cx.err(
                    s.span(),
                    format!("key `source`: {m}"),
                    Some("owner/repo#123 (an issue or pull request), owner/repo:path/to/test (a file of a repository), article:NAME, or an https:// URL"),
                )
            })
        })
        .collect()
}

/// One source reference (see [`Source`]).
pub fn parse_source(x: &str) -> std::result::Result<Source, String> {
    let repo_ok = |r: &str| {
        let mut parts = r.split('/');
        let (Some(o), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let ok = |w: &str| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        ok(o) && ok(n)
    };
    if let Some(u) = x.strip_prefix("https://") {
        return if u.contains('.') && !u.contains(char::is_whitespace) {
            Ok(Source::Url { url: x.to_string() })
        } else {
            Err(format!("`{x}` is not a URL"))
        };
    }
    if let Some(name) = x.strip_prefix("article:") {
        return if name.is_empty() {
            Err("`article:` names no article".into())
        } else {
            Ok(Source::Article { name: name.into() })
        };
    }
    if let Some((repo, n)) = x.split_once('#') {
        if repo_ok(repo) {
            if let Ok(number) = n.parse::<u64>() {
                return Ok(Source::Issue {
                    repo: repo.into(),
                    number,
                });
            }
        }
    }
    if let Some((repo, path)) = x.split_once(':') {
        if repo_ok(repo) && !path.is_empty() && !path.contains(char::is_whitespace) {
            return Ok(Source::File {
                repo: repo.into(),
                path: path.into(),
            });
        }
    }
    Err(format!("`{x}` is not a source reference"))
}
