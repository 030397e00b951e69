//! A scenario step: which keys each verb takes, each step's arguments
//! checked and typed into an `Action` (targets, groups, modes, bounds) at
//! file:line:col; and the arguments added for the reproduction library:
//! `command` /
//! `sentinel-command` (`args`, `role`, `timeout_ms`), `expect_error`, the
//! `target`/`event` of `wait until = "master" | "event"`, and the
//! scenario's `key_measure`.

use super::{positive, Ctx, RawStep};
use crate::error::Result;
use crate::model::action::{Action, CommandSpec, PauseMode, SimulateFailure, Until};
use crate::model::target::{Direction, Target, TARGET_WORDS};
use crate::model::topology::Topology;
use crate::model::verb::{self, Aim, Verb};
use crate::scenario::{Expectation, Step};
use std::ops::Range;
use toml::Spanned;

/// `key_measure`: the expectation (by its key) whose median the behaviour
/// matrix shows; by default the first expectation's.
pub(super) fn key_measure(
    cx: &Ctx,
    v: &Option<Spanned<String>>,
    expect: &[Expectation],
) -> Result<Option<String>> {
    let Some(v) = v else {
        return Ok(expect.first().map(Expectation::path));
    };
    let want = v.get_ref();
    let keys: Vec<String> = expect
        .iter()
        .map(|e| {
            if e.external {
                format!("external.{}", e.path())
            } else {
                e.path()
            }
        })
        .collect();
    if keys.contains(want) {
        Ok(Some(want.clone()))
    } else {
        Err(cx.err(
            v.span(),
            format!("key `key_measure`: `{want}` is not a measure of this scenario's [expect]"),
            Some(&format!("one of: {}", keys.join(", "))),
        ))
    }
}

/// `args`, `role` and `timeout_ms` of a `command` / `sentinel-command` step.
pub(super) fn command_spec(
    cx: &Ctx,
    r: &RawStep,
    span: &Range<usize>,
    verb: Verb,
) -> Result<CommandSpec> {
    let args = r.args.as_ref().ok_or_else(|| {
        cx.err(
            span.clone(),
            format!("step `{verb}` needs `args`"),
            Some("the command and its arguments, e.g. args = [\"CONFIG\", \"SET\", \"dir\", \"/proc\"]"),
        )
    })?;
    if args.get_ref().first().is_none_or(|a| a.trim().is_empty()) {
        return Err(cx.err(args.span(), "key `args`: the command is empty", None));
    }
    Ok(CommandSpec {
        args: args.get_ref().clone(),
        role: typed(cx, &r.role, "role")?.unwrap_or(crate::model::verb::Role::Control),
        timeout_ms: positive(cx, &r.timeout_ms, "timeout_ms")?.unwrap_or(5000),
    })
}

/// `expect_error`: a non-empty text the step's error must contain.
pub(super) fn expected_error(cx: &Ctx, v: &Option<Spanned<String>>) -> Result<Option<String>> {
    match v {
        Some(e) if e.get_ref().trim().is_empty() => Err(cx.err(
            e.span(),
            "key `expect_error`: the text is empty",
            Some("the start of the error the step must get, e.g. \"NOGOODSLAVE\""),
        )),
        v => Ok(v.as_ref().map(|e| e.get_ref().clone())),
    }
}

/// `target` and `event` of a `wait`: `master` needs one node, `event` a
/// sentinel channel (and optionally the node whose sentinel publishes it);
/// the other conditions take neither.
pub(super) fn wait_args(
    cx: &Ctx,
    r: &RawStep,
    span: &Range<usize>,
    until: Until,
    t: &Topology,
) -> Result<(Option<Target>, Option<String>)> {
    let node = |v: &Spanned<String>| -> Result<Target> {
        let tg = target(cx, v, t, Verb::Wait)?;
        match tg {
            Target::Node(_) | Target::InitialMaster => Ok(tg),
            _ => Err(cx.err(
                v.span(),
                format!("step `wait`: `{tg}` names no fixed node"),
                Some("name a node, or initial-master"),
            )),
        }
    };
    match until {
        Until::Master => {
            let v = r.target.as_ref().ok_or_else(|| {
                cx.err(
                    span.clone(),
                    "step `wait` with until = \"master\" needs `target`",
                    Some("the node that must become master, e.g. target = \"node1\""),
                )
            })?;
            if let Some(e) = &r.event {
                return Err(cx.err(
                    e.span(),
                    "key `event` applies to until = \"event\" only",
                    None,
                ));
            }
            Ok((Some(node(v)?), None))
        }
        Until::Event => {
            let e = r.event.as_ref().ok_or_else(|| {
                cx.err(
                    span.clone(),
                    "step `wait` with until = \"event\" needs `event`",
                    Some("a sentinel channel, e.g. event = \"+odown\""),
                )
            })?;
            if !super::expect::SENTINEL_EVENTS.contains(&e.get_ref().as_str()) {
                return Err(cx.err(
                    e.span(),
                    format!("key `event`: `{}` is not a sentinel event", e.get_ref()),
                    Some(&super::expect::SENTINEL_EVENTS.join(", ")),
                ));
            }
            let n = r.target.as_ref().map(node).transpose()?;
            Ok((n, Some(e.get_ref().clone())))
        }
        _ => {
            for (key, v) in [
                ("target", r.target.as_ref().map(Spanned::span)),
                ("event", r.event.as_ref().map(Spanned::span)),
            ] {
                if let Some(at) = v {
                    return Err(cx.err(
                        at,
                        format!("key `{key}` does not apply to until = \"{until}\""),
                        Some("`target` is for until = \"master\" and \"event\", `event` for \"event\""),
                    ));
                }
            }
            Ok((None, None))
        }
    }
}

/// The keys each kind of step takes besides `action` and `at_ms`.
pub(super) fn keys_of(verb: Verb) -> &'static [&'static str] {
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

pub(super) fn step(
    cx: &Ctx,
    s: &Spanned<RawStep>,
    t: &Topology,
    has_external: bool,
) -> Result<Step> {
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
pub(super) fn target(cx: &Ctx, v: &Spanned<String>, t: &Topology, verb: Verb) -> Result<Target> {
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
pub(super) fn typed<T: std::str::FromStr<Err = String>>(
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
