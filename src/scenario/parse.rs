//! Parsing and validating a scenario file. Pure except for reading the
//! topology file it names. Every error is `Error::Input` at file:line:col of
//! the key at fault, with a hint where one helps.

use super::{Scenario, Source};
use crate::error::{Error, Result};
use crate::model::topology::{ParseOptions, Topology};
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
use steps::{key_measure, step};

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
