//! Step arguments added for the reproduction library: `command` /
//! `sentinel-command` (`args`, `role`, `timeout_ms`), `expect_error`, the
//! `target`/`event` of `wait until = "master" | "event"`, and the
//! scenario's `key_measure`.

use super::{positive, target, typed, Ctx, RawStep};
use crate::error::Result;
use crate::model::action::{CommandSpec, Until};
use crate::model::target::Target;
use crate::model::topology::Topology;
use crate::model::verb::Verb;
use crate::scenario::Expectation;
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
