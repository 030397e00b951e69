//! The topology: what a testbed is made of, parsed from TOML and validated.
//! Pure: no I/O except reading the file itself (and checking that a named
//! reconfig script exists).
//!
//! Invariant: a `Topology` that exists is valid — every address lies in the
//! subnet and is distinct, the quorum can be reached, names are usable as
//! container and link names.

use crate::error::{Error, Result};
use crate::model::net::Subnet;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The address space every test network must come from (RFC 2544).
pub const ALLOWED_SPACE: &str = "198.18.0.0/15";

/// A validated topology.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topology {
    /// Testbed name: prefixes every container, network and link.
    pub name: String,
    /// The name Sentinel monitors the master under.
    pub master_name: String,
    /// Docker image for both redis and sentinel containers.
    pub image: String,
    pub subnet: Subnet,
    pub vip: Ipv4Addr,
    pub nodes: Vec<Node>,
    /// Index into `nodes` of the node that starts as master.
    pub initial_master: usize,
    pub redis_port: u16,
    pub sentinel_port: u16,
    pub quorum: u32,
    pub down_after_ms: u64,
    pub failover_timeout_ms: u64,
    pub parallel_syncs: u32,
    pub min_replicas_to_write: Option<u32>,
    pub min_replicas_max_lag: Option<u32>,
    pub auth: Option<Auth>,
    /// The script sentinels run on failover; `None` = the testbed's VIP script.
    pub reconfig_script: Option<PathBuf>,
    /// Extra lines appended to every redis.conf.
    pub redis_conf: Vec<String>,
    /// Extra lines appended to every sentinel.conf (after the monitor block).
    pub sentinel_conf: Vec<String>,
    /// Sentinel's internal periods: `Default`, or `Fast` (shortened at start
    /// with `SENTINEL DEBUG`, as Redis's own test suite does; Redis >= 7.0).
    pub profile: Profile,
    /// Where the topology came from (for messages), if a file.
    pub source: Option<PathBuf>,
}

/// Sentinel timing profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Sentinel's own periods (ping 1 s, ask 1 s, publish 2 s, info 10 s).
    #[default]
    Default,
    /// Ping every 300 ms, ask every 100 ms, publish hellos every 200 ms, INFO
    /// every 1 s.
    Fast,
}

impl Profile {
    /// The `SENTINEL DEBUG` parameters this profile sets (empty: none).
    pub fn sentinel_debug(&self) -> &'static [(&'static str, u32)] {
        match self {
            Profile::Default => &[],
            // ping 300, not 100: Sentinel promotes only a replica whose last
            // INFO is younger than 5 ping periods, and during a failover it
            // asks for INFO once a second whatever the profile — 5 x 100 ms
            // made `-failover-abort-no-good-slave` a matter of luck (bench).
            Profile::Fast => &[
                ("ping-period", 300),
                ("ask-period", 100),
                ("publish-period", 200),
                ("info-period", 1000),
            ],
        }
    }
}

/// One server: a redis-server and a sentinel sharing a network namespace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
    /// `replica-priority` (lower wins; 0 = never promoted). Redis default 100.
    pub replica_priority: Option<u32>,
}

/// Password protection: `requirepass` + `masterauth` on redis, `auth-pass` on
/// the sentinels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Auth {
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    name: Option<Spanned<String>>,
    master_name: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
    subnet: Option<Spanned<String>>,
    vip: Option<Spanned<String>>,
    initial_master: Option<Spanned<String>>,
    redis_port: Option<Spanned<i64>>,
    sentinel_port: Option<Spanned<i64>>,
    quorum: Option<Spanned<i64>>,
    down_after_ms: Option<Spanned<i64>>,
    failover_timeout_ms: Option<Spanned<i64>>,
    parallel_syncs: Option<Spanned<i64>>,
    min_replicas_to_write: Option<Spanned<i64>>,
    min_replicas_max_lag: Option<Spanned<i64>>,
    auth: Option<Spanned<RawAuth>>,
    reconfig_script: Option<Spanned<String>>,
    redis_conf: Option<Vec<Spanned<String>>>,
    sentinel_conf: Option<Vec<Spanned<String>>>,
    nodes: Option<Spanned<Vec<Spanned<RawNode>>>>,
    profile: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    password: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Spanned<String>,
    ip: Spanned<String>,
    replica_priority: Option<Spanned<i64>>,
}

/// Options that relax validation.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Accept a subnet outside 198.18.0.0/15 (only for a real LAN via `--parent`).
    pub allow_any_subnet: bool,
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn from_file(path: &Path, opts: &ParseOptions) -> Result<Topology> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, Some(path), opts)
    }

    /// The default topology (three nodes, VIP .100) without reading a file.
    pub fn default_topology() -> Topology {
        Self::parse("", None, &ParseOptions::default()).expect("the defaults are valid")
    }

    /// Parses and validates topology TOML. `origin` is used in messages and to
    /// resolve a relative `reconfig_script`.
    pub fn parse(text: &str, origin: Option<&Path>, opts: &ParseOptions) -> Result<Topology> {
        let at = Locator::new(text, origin);
        let raw: RawTopology = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            at.error(span, e.message().to_string(), None)
        })?;
        Validator { at: &at, opts }.validate(raw)
    }

    /// The node that starts as master.
    pub fn initial_master(&self) -> &Node {
        &self.nodes[self.initial_master]
    }

    /// Looks a node up by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Looks a node up by IP.
    pub fn node_by_ip(&self, ip: Ipv4Addr) -> Option<&Node> {
        self.nodes.iter().find(|n| n.ip == ip)
    }

    /// Address of the Docker network's gateway (never assigned to a node).
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.from_end(1)
    }

    /// Address of the host's shim interface on the segment.
    pub fn shim_ip(&self) -> Ipv4Addr {
        self.subnet.from_end(2)
    }

    /// A copy renamed and moved to another subnet, keeping each node's host
    /// part (node .11 stays .11). Used by tests that run side by side.
    pub fn relocated(&self, name: &str, subnet: Subnet) -> Result<Topology> {
        let mut t = self.clone();
        t.name = name.to_string();
        t.subnet = subnet;
        t.vip = subnet.with_host_of(self.vip, self.subnet);
        for n in &mut t.nodes {
            n.ip = subnet.with_host_of(n.ip, self.subnet);
        }
        let text = t.to_toml();
        Topology::parse(&text, None, &ParseOptions::default()).map(|mut v| {
            v.reconfig_script = t.reconfig_script.clone();
            v.source = t.source.clone();
            v
        })
    }

    /// What differs from `other`, key by key: `` `down_after_ms`: 2000 here,
    /// 3000 there `` (empty when they are the same testbed).
    pub fn diff(&self, other: &Topology) -> Vec<String> {
        let table = |t: &Topology| -> toml::Table {
            toml::from_str(&t.to_toml()).expect("to_toml writes valid TOML")
        };
        let (a, b) = (table(self), table(other));
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        let show = |v: Option<&toml::Value>| v.map_or("unset".to_string(), |v| v.to_string());
        keys.into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| format!("`{k}`: {} here, {} there", show(a.get(k)), show(b.get(k))))
            .collect()
    }

    /// The topology as TOML (all fields explicit).
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        let q = |v: &str| toml::Value::String(v.to_string()).to_string();
        s += &format!(
            "name = {}\nmaster_name = {}\n",
            q(&self.name),
            q(&self.master_name)
        );
        s += &format!(
            "image = {}\nsubnet = {}\n",
            q(&self.image),
            q(&self.subnet.to_string())
        );
        s += &format!("vip = {}\n", q(&self.vip.to_string()));
        s += &format!("initial_master = {}\n", q(&self.initial_master().name));
        s += &format!(
            "redis_port = {}\nsentinel_port = {}\nquorum = {}\n",
            self.redis_port, self.sentinel_port, self.quorum
        );
        s += &format!(
            "down_after_ms = {}\nfailover_timeout_ms = {}\nparallel_syncs = {}\n",
            self.down_after_ms, self.failover_timeout_ms, self.parallel_syncs
        );
        if let Some(v) = self.min_replicas_to_write {
            s += &format!("min_replicas_to_write = {v}\n");
        }
        if let Some(v) = self.min_replicas_max_lag {
            s += &format!("min_replicas_max_lag = {v}\n");
        }
        if let Some(p) = &self.reconfig_script {
            s += &format!("reconfig_script = {}\n", q(&p.display().to_string()));
        }
        let list = |v: &[String]| v.iter().map(|l| q(l)).collect::<Vec<_>>().join(", ");
        s += &format!("redis_conf = [{}]\n", list(&self.redis_conf));
        s += &format!("sentinel_conf = [{}]\n", list(&self.sentinel_conf));
        if self.profile == Profile::Fast {
            s += "profile = \"fast\"\n";
        }
        if let Some(a) = &self.auth {
            s += &format!("\n[auth]\npassword = {}\n", q(&a.password));
        }
        for n in &self.nodes {
            s += &format!(
                "\n[[nodes]]\nname = {}\nip = {}\n",
                q(&n.name),
                q(&n.ip.to_string())
            );
            if let Some(p) = n.replica_priority {
                s += &format!("replica_priority = {p}\n");
            }
        }
        s
    }
}

/// Turns byte spans into `file:line:col`.
struct Locator<'a> {
    text: &'a str,
    file: String,
    dir: Option<PathBuf>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str, origin: Option<&Path>) -> Self {
        Locator {
            text,
            file: origin.map_or("<topology>".into(), |p| p.display().to_string()),
            dir: origin.and_then(|p| p.parent().map(Path::to_path_buf)),
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
            + 1;
        (line, col)
    }

    fn error(&self, span: Range<usize>, message: String, hint: Option<String>) -> Error {
        let (line, col) = self.position(span.start);
        Error::Input {
            at: format!("{}:{line}:{col}", self.file),
            message,
            hint,
        }
    }
}

struct Validator<'a> {
    at: &'a Locator<'a>,
    opts: &'a ParseOptions,
}

type Check<T> = std::result::Result<T, Error>;

impl Validator<'_> {
    fn fail<T>(
        &self,
        span: Range<usize>,
        key: &str,
        msg: impl Into<String>,
        hint: Option<&str>,
    ) -> Check<T> {
        Err(self.at.error(
            span,
            format!("key `{key}`: {}", msg.into()),
            hint.map(str::to_string),
        ))
    }

    fn int(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: i64,
        range: Range<i64>,
    ) -> Check<i64> {
        match v {
            None => Ok(default),
            Some(s) if range.contains(s.get_ref()) => Ok(*s.get_ref()),
            Some(s) => self.fail(
                s.span(),
                key,
                format!(
                    "{} is out of range {}..={}",
                    s.get_ref(),
                    range.start,
                    range.end - 1
                ),
                None,
            ),
        }
    }

    fn ip(&self, v: &Spanned<String>, key: &str) -> Check<Ipv4Addr> {
        v.get_ref().parse().or_else(|_| {
            self.fail(
                v.span(),
                key,
                format!("`{}` is not an IPv4 address", v.get_ref()),
                None,
            )
        })
    }

    fn name(&self, v: &Spanned<String>, key: &str, max: usize) -> Check<String> {
        let s = v.get_ref();
        let ok = !s.is_empty()
            && s.len() <= max
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(s.clone())
        } else {
            self.fail(
                v.span(),
                key,
                format!("`{s}` is not a valid name"),
                Some(&format!(
                    "use 1-{max} characters a-z, 0-9 and '-', starting with a letter (it becomes part of container names)"
                )),
            )
        }
    }

    fn validate(&self, raw: RawTopology) -> Result<Topology> {
        let name = match &raw.name {
            Some(v) => self.name(v, "name", 24)?,
            None => "testbed".to_string(),
        };
        let master_name = match &raw.master_name {
            Some(v) if v.get_ref().is_empty() || v.get_ref().contains(char::is_whitespace) => {
                return self.fail(
                    v.span(),
                    "master_name",
                    "must be non-empty without spaces",
                    None,
                )
            }
            Some(v) => v.get_ref().clone(),
            None => "mymaster".to_string(),
        };
        let image = match &raw.image {
            Some(v) if v.get_ref().trim().is_empty() => {
                return self.fail(v.span(), "image", "is empty", None)
            }
            Some(v) => v.get_ref().clone(),
            None => crate::backend::image::DEFAULT_IMAGE.to_string(),
        };
        let (subnet, subnet_span) = match &raw.subnet {
            Some(v) => (
                v.get_ref()
                    .parse::<Subnet>()
                    .or_else(|e| self.fail(v.span(), "subnet", e, None))?,
                v.span(),
            ),
            None => ("198.18.0.0/24".parse().expect("valid"), 0..0),
        };
        if !(16..=29).contains(&subnet.prefix()) {
            return self.fail(
                subnet_span,
                "subnet",
                "prefix must be between /16 and /29",
                None,
            );
        }
        let space: Subnet = ALLOWED_SPACE.parse().expect("valid");
        if !self.opts.allow_any_subnet && !space.contains_subnet(&subnet) {
            return self.fail(
                subnet_span,
                "subnet",
                format!("{subnet} is outside {ALLOWED_SPACE}"),
                Some("test networks use 198.18.0.0/15 (RFC 2544) only; pass --allow-any-subnet for a real LAN with --parent"),
            );
        }
        let reserved = [
            (subnet.network(), "the subnet's network address"),
            (subnet.broadcast(), "the subnet's broadcast address"),
            (
                subnet.from_end(1),
                "the docker network's gateway (last address - 1)",
            ),
            (
                subnet.from_end(2),
                "the host shim's address (last address - 2)",
            ),
        ];
        let in_subnet = |ip: Ipv4Addr, span: Range<usize>, key: &str| -> Check<()> {
            if !subnet.contains(ip) {
                return self.fail(
                    span,
                    key,
                    format!("{ip} is not inside subnet {subnet}"),
                    None,
                );
            }
            if let Some((_, what)) = reserved.iter().find(|(r, _)| *r == ip) {
                return self.fail(
                    span,
                    key,
                    format!("{ip} is {what}"),
                    Some("pick another host address"),
                );
            }
            Ok(())
        };

        let vip = match &raw.vip {
            Some(v) => {
                let ip = self.ip(v, "vip")?;
                in_subnet(ip, v.span(), "vip")?;
                ip
            }
            None => subnet.with_host_of(
                "198.18.0.100".parse().expect("valid"),
                "198.18.0.0/24".parse().expect("valid"),
            ),
        };
        if raw.vip.is_none() {
            in_subnet(vip, 0..0, "vip")?;
        }

        let nodes = match &raw.nodes {
            None => (1..=3)
                .map(|i| Node {
                    name: format!("node{i}"),
                    ip: subnet.with_host_of(
                        Ipv4Addr::new(198, 18, 0, 10 + i),
                        "198.18.0.0/24".parse().expect("valid"),
                    ),
                    replica_priority: None,
                })
                .collect::<Vec<_>>(),
            Some(list) => {
                if list.get_ref().len() < 2 || list.get_ref().len() > 9 {
                    return self.fail(
                        list.span(),
                        "nodes",
                        format!("{} nodes given", list.get_ref().len()),
                        Some("a testbed has 2 to 9 nodes (3 is the seeds' setup)"),
                    );
                }
                let mut nodes: Vec<Node> = Vec::new();
                for n in list.get_ref() {
                    let n = n.get_ref();
                    let name = self.name(&n.name, "nodes.name", 12)?;
                    if nodes.iter().any(|o| o.name == name) {
                        return self.fail(
                            n.name.span(),
                            "nodes.name",
                            format!("`{name}` is used twice"),
                            None,
                        );
                    }
                    let ip = self.ip(&n.ip, "nodes.ip")?;
                    in_subnet(ip, n.ip.span(), "nodes.ip")?;
                    if let Some(o) = nodes.iter().find(|o| o.ip == ip) {
                        return self.fail(
                            n.ip.span(),
                            "nodes.ip",
                            format!("{ip} is also the address of {}", o.name),
                            None,
                        );
                    }
                    if ip == vip {
                        return self.fail(
                            n.ip.span(),
                            "nodes.ip",
                            format!("{ip} is the VIP"),
                            Some("the VIP must be an address no node owns"),
                        );
                    }
                    let replica_priority = match &n.replica_priority {
                        None => None,
                        Some(_) => Some(self.int(
                            &n.replica_priority,
                            "nodes.replica_priority",
                            100,
                            0..1_000_000,
                        )? as u32),
                    };
                    nodes.push(Node {
                        name,
                        ip,
                        replica_priority,
                    });
                }
                nodes
            }
        };
        if raw.nodes.is_none() && nodes.iter().any(|n| n.ip == vip) {
            let span = raw.vip.as_ref().map_or(0..0, |v| v.span());
            return self.fail(
                span,
                "vip",
                format!("{vip} is also a default node address"),
                None,
            );
        }

        let initial_master = match &raw.initial_master {
            None => 0,
            Some(v) => match nodes.iter().position(|n| &n.name == v.get_ref()) {
                Some(i) => i,
                None => {
                    return self.fail(
                        v.span(),
                        "initial_master",
                        format!("no node is named `{}`", v.get_ref()),
                        None,
                    )
                }
            },
        };

        let port = |v: &Option<Spanned<i64>>, key: &str, default| {
            self.int(v, key, default, 1..65536).map(|p| p as u16)
        };
        let redis_port = port(&raw.redis_port, "redis_port", 6379)?;
        let sentinel_port = port(&raw.sentinel_port, "sentinel_port", 26379)?;
        if redis_port == sentinel_port {
            let span = raw.sentinel_port.as_ref().map_or(0..0, |v| v.span());
            return self.fail(
                span,
                "sentinel_port",
                "equals redis_port; they share a network namespace",
                None,
            );
        }
        let quorum = self
            .int(&raw.quorum, "quorum", 2, 1..(nodes.len() as i64 + 1))
            .map_err(|e| {
                with_hint(
                    e,
                    &format!(
                        "quorum must be between 1 and the number of sentinels ({})",
                        nodes.len()
                    ),
                )
            })? as u32;
        let down_after_ms =
            self.int(&raw.down_after_ms, "down_after_ms", 2000, 100..86_400_001)? as u64;
        let failover_timeout_ms = self.int(
            &raw.failover_timeout_ms,
            "failover_timeout_ms",
            10_000,
            1000..86_400_001,
        )? as u64;
        let parallel_syncs = self.int(&raw.parallel_syncs, "parallel_syncs", 1, 1..1000)? as u32;
        let min_replicas_to_write = match &raw.min_replicas_to_write {
            None => None,
            Some(_) => Some(self.int(
                &raw.min_replicas_to_write,
                "min_replicas_to_write",
                0,
                0..nodes.len() as i64,
            )? as u32),
        };
        let min_replicas_max_lag = match &raw.min_replicas_max_lag {
            None => None,
            Some(v) if min_replicas_to_write.is_none() => {
                return self.fail(
                    v.span(),
                    "min_replicas_max_lag",
                    "has no effect without min_replicas_to_write",
                    Some("set min_replicas_to_write too"),
                )
            }
            Some(_) => Some(self.int(
                &raw.min_replicas_max_lag,
                "min_replicas_max_lag",
                10,
                1..86_401,
            )? as u32),
        };
        let auth = match &raw.auth {
            None => None,
            Some(a) => {
                let p = &a.get_ref().password;
                if p.get_ref().is_empty()
                    || p.get_ref()
                        .contains(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                {
                    return self.fail(
                        p.span(),
                        "auth.password",
                        "must be non-empty, without spaces or quotes",
                        None,
                    );
                }
                Some(Auth {
                    password: p.get_ref().clone(),
                })
            }
        };
        let reconfig_script = match &raw.reconfig_script {
            None => None,
            Some(v) => {
                let p = PathBuf::from(v.get_ref());
                let p = match (&self.at.dir, p.is_relative()) {
                    (Some(dir), true) => dir.join(p),
                    _ => p,
                };
                if !p.is_file() {
                    return self.fail(
                        v.span(),
                        "reconfig_script",
                        format!("{} is not a file", p.display()),
                        Some("paths are relative to the topology file"),
                    );
                }
                Some(p)
            }
        };
        let lines = |v: &Option<Vec<Spanned<String>>>, key: &str| -> Check<Vec<String>> {
            let mut out = Vec::new();
            for l in v.iter().flatten() {
                if l.get_ref().contains(['\n', '\r']) {
                    return self.fail(
                        l.span(),
                        key,
                        "a line may not contain a newline",
                        Some("give one array element per line"),
                    );
                }
                out.push(l.get_ref().clone());
            }
            Ok(out)
        };
        let profile = match &raw.profile {
            None => Profile::Default,
            Some(v) => match v.get_ref().as_str() {
                "default" => Profile::Default,
                "fast" => Profile::Fast,
                other => {
                    return self.fail(
                        v.span(),
                        "profile",
                        format!("`{other}` is not a profile"),
                        Some("use \"default\" or \"fast\""),
                    )
                }
            },
        };
        Ok(Topology {
            profile,
            name,
            master_name,
            image,
            subnet,
            vip,
            nodes,
            initial_master,
            redis_port,
            sentinel_port,
            quorum,
            down_after_ms,
            failover_timeout_ms,
            parallel_syncs,
            min_replicas_to_write,
            min_replicas_max_lag,
            auth,
            reconfig_script,
            redis_conf: lines(&raw.redis_conf, "redis_conf")?,
            sentinel_conf: lines(&raw.sentinel_conf, "sentinel_conf")?,
            source: self.at.dir.as_ref().map(|_| PathBuf::from(&self.at.file)),
        })
    }
}

fn with_hint(e: Error, hint: &str) -> Error {
    match e {
        Error::Input { at, message, .. } => Error::Input {
            at,
            message,
            hint: Some(hint.to_string()),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests;
