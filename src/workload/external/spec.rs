//! What an external client is and where it runs: its spec (from a
//! scenario's `[external_client]` or `[[clients]]`), its key prefix and meta
//! line, the run's record, the `TESTBED_*` environment it gets, and its
//! placement (a host process or a container on the segment).

use crate::error::{Error, Result};
use crate::testbed::Testbed;
use crate::workload::Op;
use bollard::Docker;
use serde::Serialize;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// What to run (from a scenario's `[external_client]` or `[[clients]]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExternalSpec {
    /// The process name in the history and in key names.
    pub name: String,
    /// argv; a first word with a `/` is relative to `dir`. With `image`:
    /// the launcher of a client program of that image and its arguments.
    pub command: Vec<String>,
    /// The working directory of a host command: the scenario file's folder.
    pub dir: PathBuf,
    pub rate: u32,
    pub timeout_ms: u64,
    /// Run `command` in a container of this image on the testbed's segment
    /// (`crate::model::clients`); `None`: a process on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl ExternalSpec {
    /// The prefix of every key the client writes.
    pub fn key_prefix(&self) -> String {
        key_prefix(&self.name)
    }

    /// A client program of the client image, in a container.
    pub fn in_container(name: &str, program: &str, rate: u32, timeout_ms: u64) -> ExternalSpec {
        ExternalSpec {
            name: name.to_string(),
            command: vec![program.to_string()],
            dir: PathBuf::from("."),
            rate,
            timeout_ms,
            image: Some(crate::backend::client_image::CLIENT_IMAGE.to_string()),
        }
    }

    /// The program to run, resolved; an error says what is missing. A
    /// container's program is checked against the catalogue.
    pub fn program(&self) -> Result<PathBuf> {
        let first = self.command.first().map(String::as_str).unwrap_or("");
        if self.image.is_some() {
            return crate::model::clients::find(first)
                .map(|c| PathBuf::from(format!("/opt/clients/bin/{}", c.name)))
                .map_err(|m| Error::Input {
                    at: format!("client `{}`", self.name),
                    message: m,
                    hint: None,
                });
        }
        let found = if first.contains('/') {
            Some(self.dir.join(first)).filter(|p| p.is_file())
        } else {
            crate::backend::host::which(first)
        };
        found.ok_or_else(|| Error::Prerequisite {
            what: format!(
                "external client `{}`: program `{first}` not found ({})",
                self.name,
                if first.contains('/') {
                    format!("relative to {}", self.dir.display())
                } else {
                    "on PATH".to_string()
                }
            ),
            hint: "install it, or fix `external_client.command` in the scenario file".into(),
        })
    }
}

/// The key prefix of client `name`.
pub fn key_prefix(name: &str) -> String {
    format!("wl:{name}:")
}

/// The meta line of protocol v2 (`{"meta": {...}}`), if `line` is one.
pub fn meta_of(line: &str) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(line).ok()?;
    match v.get_mut("meta") {
        Some(m) if m.is_object() => Some(m.take()),
        _ => None,
    }
}

/// What the client did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExternalRun {
    pub name: String,
    pub command: Vec<String>,
    /// How it ended: `exit status: 0`, `killed after SIGTERM grace`, ...
    pub exit: String,
    /// Set when it exited before it was told to stop (timeline ms, status).
    pub exited_early: Option<String>,
    /// Its stderr (the bundle keeps it as a log).
    pub stderr: String,
    pub history: Vec<Op>,
    /// A line of stdout that was not an operation record.
    pub parse_error: Option<String>,
    /// Reading its stdout failed before the end: the history is cut short.
    pub read_error: Option<String>,
    /// Protocol v2's meta line (client, library, version, settings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// The exit code, when it exited (a container's, or a process's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// A container's address on the segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// It never printed a first write: why (`exit 1: ModuleNotFoundError`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub never_started: Option<String>,
}

impl ExternalRun {
    /// Whether its writes are `INCR` (protocol v2: a meta line), so a value
    /// above 1 is a write applied twice.
    pub fn counts_writes(&self) -> bool {
        self.meta.is_some()
    }

    /// `crashed (exit N: last stderr line)` when it did not write until
    /// told to stop, else `None`.
    pub fn crash(&self) -> Option<String> {
        let why = self
            .never_started
            .clone()
            .or_else(|| self.exited_early.clone())?;
        let code = self
            .exit_code
            .map_or_else(|| "?".to_string(), |c| c.to_string());
        let last = self
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no stderr")
            .trim();
        let last: String = last.chars().take(160).collect();
        Some(format!("crashed (exit {code}: {last}) [{why}]"))
    }
}

/// What every client is told about the testbed (the `TESTBED_*` variables).
#[derive(Debug, Clone, Default)]
pub struct ClientEnv {
    pub sentinels: Vec<String>,
    pub nodes: Vec<String>,
    pub vip: String,
    pub master_name: String,
    pub password: String,
    /// The timeline's origin, Unix ms.
    pub t0_unix_ms: f64,
}

impl ClientEnv {
    /// The testbed's addresses, with the origin of its timeline.
    pub fn of(tb: &Testbed) -> ClientEnv {
        let t = &tb.topology;
        let since_origin = tb.timeline.origin().elapsed();
        let t0 = SystemTime::now()
            .checked_sub(since_origin)
            .and_then(|o| o.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        ClientEnv {
            sentinels: t
                .nodes
                .iter()
                .map(|n| tb.sentinel_addr(n).to_string())
                .collect(),
            nodes: t
                .nodes
                .iter()
                .map(|n| tb.redis_addr(n).to_string())
                .collect(),
            vip: tb.vip_addr().to_string(),
            master_name: t.master_name.clone(),
            password: tb.password().unwrap_or("").to_string(),
            t0_unix_ms: t0,
        }
    }

    pub(super) fn vars(&self, spec: &ExternalSpec) -> Vec<(String, String)> {
        [
            ("TESTBED_VIP", self.vip.clone()),
            ("TESTBED_SENTINELS", self.sentinels.join(",")),
            ("TESTBED_NODES", self.nodes.join(",")),
            ("TESTBED_MASTER_NAME", self.master_name.clone()),
            ("TESTBED_PASSWORD", self.password.clone()),
            ("TESTBED_KEY_PREFIX", spec.key_prefix()),
            ("TESTBED_RATE", spec.rate.to_string()),
            ("TESTBED_TIMEOUT_MS", spec.timeout_ms.to_string()),
            ("TESTBED_T0_UNIX_MS", format!("{:.3}", self.t0_unix_ms)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Where a container client goes: the engine, the testbed it belongs to
/// (its labels), the network and its address there.
#[derive(Clone)]
pub struct Placement {
    pub docker: Docker,
    pub testbed: String,
    pub network: String,
    pub ip: Ipv4Addr,
}

impl Placement {
    /// On `tb`'s segment at `ip`.
    pub fn on(tb: &Testbed, ip: Ipv4Addr) -> Placement {
        Placement {
            docker: tb.docker.clone(),
            testbed: tb.topology.name.clone(),
            network: tb.names.network.clone(),
            ip,
        }
    }

    /// The container's name for client `name`.
    pub fn container(&self, name: &str) -> String {
        format!("tb-{}-cl-{name}", self.testbed)
    }
}
