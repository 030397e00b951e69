//! Which Compose program runs a project, and whether it can give the
//! containers the MACs the file asks for on a given engine.
//!
//! Three programs: Docker's CLI plugin (`docker compose`), the same v2
//! program standalone (`docker-compose` 2.x: Debian's docker-compose package
//! from trixie on), and Debian 12's Python `docker-compose` 1.29. Detection
//! order: `TESTBED_COMPOSE` (a command line, e.g. `docker compose` or
//! `/usr/bin/docker-compose`), then `docker compose version --short`, then
//! `docker-compose version --short`.
//!
//! MACs, as measured (2026-12, Docker 20.10.24 and 28.5.2, docker-compose
//! 1.29.2 and 2.40.3, the file's service-level `mac_address`):
//! - an engine below API 1.44 honours the container-wide `MacAddress` every
//!   program sends (and dockerd 20.10 derives the same `02:42:`+IP anyway);
//! - from API 1.44 on an engine ignores the container-wide field; v2 then
//!   puts the MAC into the endpoint itself, 1.29 cannot: it speaks the API
//!   version `COMPOSE_API_VERSION` names (the project's `.env` pins
//!   [`LEGACY_API`]), else the engine's newest, and at 1.44 or above
//!   its containers get random MACs;
//! - a per-network `mac_address` is no way out: 1.29 rejects it under file
//!   format 2.4 ("unsupported option"), v2 refuses it below API 1.44.

use crate::error::{Error, Result};
use std::process::{Command, Stdio};

/// Variable that names the Compose command to use.
pub const ENV_COMPOSE: &str = "TESTBED_COMPOSE";
/// The variable docker-compose 1.x reads its API version from.
pub const ENV_API: &str = "COMPOSE_API_VERSION";
/// The API version docker-compose 1.x is pinned to in a generated project's
/// `.env` (Docker 20.10's; Docker 28 still serves it): see the module doc.
pub const LEGACY_API: &str = "1.41";
/// The first API at which engines ignore the container-wide MAC.
pub const ENDPOINT_MAC_API: (u32, u32) = (1, 44);

/// The kind of Compose program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `docker compose`: the v2 CLI plugin.
    Plugin,
    /// `docker-compose` 2.x: the same program, standalone.
    Standalone,
    /// `docker-compose` 1.x: the Python program (Debian 12 ships 1.29.2).
    Legacy,
}

/// A Compose program that answered, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeCli {
    pub flavor: Flavor,
    /// The command line before compose's own arguments.
    pub argv: Vec<String>,
    pub version: (u32, u32, u32),
}

impl ComposeCli {
    /// A [`Command`] for `argv` + the flags that keep its output plain +
    /// `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..]);
        match self.flavor {
            Flavor::Legacy => c.arg("--no-ansi"),
            Flavor::Plugin | Flavor::Standalone => c.args(["--ansi", "never"]),
        };
        c.args(args);
        c
    }

    /// `docker compose 2.40.3 (plugin)` and the like.
    pub fn describe(&self) -> String {
        let (a, b, c) = self.version;
        let kind = match self.flavor {
            Flavor::Plugin => "v2 plugin",
            Flavor::Standalone => "v2 standalone",
            Flavor::Legacy => "v1, Python",
        };
        format!("{} {a}.{b}.{c} ({kind})", self.argv.join(" "))
    }
}

/// Whether a Compose program gives the containers the MACs the file asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Macs {
    /// Yes, and how.
    Right(String),
    /// No, and why, with what to do.
    Random(String),
}

impl Macs {
    pub fn is_right(&self) -> bool {
        matches!(self, Macs::Right(_))
    }
    pub fn text(&self) -> &str {
        match self {
            Macs::Right(s) | Macs::Random(s) => s,
        }
    }
}

/// What `cli` does about MACs on an engine whose newest API is `engine`,
/// with `pin` the `COMPOSE_API_VERSION` in force (the variable, else the
/// project's `.env`; see [`pinned_api`]). Pure: see the module doc.
pub fn macs(cli: &ComposeCli, engine: (u32, u32), pin: Option<(u32, u32)>) -> Macs {
    let api = |v: (u32, u32)| format!("{}.{}", v.0, v.1);
    if engine < ENDPOINT_MAC_API {
        return Macs::Right(format!(
            "the engine (API {}) honours the container-wide MAC",
            api(engine)
        ));
    }
    match cli.flavor {
        Flavor::Plugin | Flavor::Standalone => Macs::Right(format!(
            "Compose v2 puts the MAC into the endpoint (API {})",
            api(engine)
        )),
        Flavor::Legacy => {
            let speaks = pin.map_or(engine, |p| p.min(engine));
            if speaks < ENDPOINT_MAC_API {
                Macs::Right(format!(
                    "{ENV_API}={} keeps docker-compose 1.x below API 1.44, where the engine honours its container-wide MAC",
                    api(speaks)
                ))
            } else {
                Macs::Random(format!(
                    "docker-compose 1.x speaks API {} to this engine and sends only the container-wide MAC, which engines ignore from API 1.44 on: the containers get random MACs. Set {ENV_API}={} (the generated .env does) or use Compose v2",
                    api(speaks),
                    LEGACY_API
                ))
            }
        }
    }
}

/// The `COMPOSE_API_VERSION` docker-compose 1.x would use: the variable
/// (`env`) wins over the project's `.env` text; `auto` or nothing is none.
pub fn pinned_api(env: Option<&str>, dot_env: Option<&str>) -> Option<(u32, u32)> {
    let from_file = || {
        dot_env?.lines().find_map(|l| {
            l.trim()
                .strip_prefix(ENV_API)
                .and_then(|r| r.strip_prefix('='))
                .map(str::to_string)
        })
    };
    let v = env.map(str::to_string).or_else(from_file)?;
    let v = v.trim();
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The version in what `version --short` (or plain `version`) prints:
/// `2.40.3`, `v2.40.3`, `Docker Compose version v2.40.3`,
/// `docker-compose version 1.29.2, build unknown`.
pub fn parse_version(out: &str) -> Option<(u32, u32, u32)> {
    let first = out.lines().find(|l| !l.trim().is_empty())?;
    first
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.trim_start_matches('v'))
        .find_map(|w| {
            let mut it = w.split(['.', '-', '+']);
            let a = it.next()?.parse().ok()?;
            let b = it.next()?.parse().ok()?;
            let c = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            Some((a, b, c))
        })
}

/// The flavor of a program that printed `version` when run as `argv`.
pub fn classify(argv: &[String], version: (u32, u32, u32)) -> Flavor {
    if version.0 < 2 {
        Flavor::Legacy
    } else if argv.len() >= 2 && argv[argv.len() - 1] == "compose" {
        Flavor::Plugin
    } else {
        Flavor::Standalone
    }
}

/// Runs `argv version --short`; the program and its version if it answers.
pub fn probe(argv: &[String]) -> Option<ComposeCli> {
    let out = Command::new(argv.first()?)
        .args(&argv[1..])
        .args(["version", "--short"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let version = parse_version(&String::from_utf8_lossy(&out.stdout))?;
    Some(ComposeCli {
        flavor: classify(argv, version),
        argv: argv.to_vec(),
        version,
    })
}

/// The candidates, in order: `TESTBED_COMPOSE`, the plugin, the binary.
pub fn candidates(env: Option<&str>) -> Vec<Vec<String>> {
    match env.map(str::trim).filter(|s| !s.is_empty()) {
        Some(cmd) => vec![cmd.split_whitespace().map(String::from).collect()],
        None => vec![
            vec!["docker".into(), "compose".into()],
            vec!["docker-compose".into()],
        ],
    }
}

/// The Compose program to use (see the module doc).
pub fn detect() -> Result<ComposeCli> {
    let env = std::env::var(ENV_COMPOSE).ok();
    let tried = candidates(env.as_deref());
    for argv in &tried {
        if let Some(c) = probe(argv) {
            return Ok(c);
        }
    }
    Err(Error::Prerequisite {
        what: format!(
            "no Compose program answers `version --short` (tried: {})",
            tried
                .iter()
                .map(|a| a.join(" "))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        hint: format!(
            "apt-get install docker-compose (Debian 12: 1.29; trixie and later: v2), or name one in {ENV_COMPOSE}"
        ),
    })
}

#[cfg(test)]
#[path = "compose_cli_tests.rs"]
mod tests;
