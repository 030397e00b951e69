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
/// the sentinels; with `user`, an ACL user for the sentinels (`user ...` on
/// every redis, `sentinel auth-user` on every sentinel) while the testbed's
/// own clients and replication keep the default user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Auth {
    pub password: String,
    /// The ACL user the sentinels authenticate as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Its ACL rules after `on >password` (default: [`SENTINEL_USER_RULES`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_rules: Option<String>,
}

/// The minimal Sentinel user of Redis 7.0's and 8.0's sentinel.conf (and
/// Valkey's before valkey#854, which added `&__sentinel__:hello`).
pub const SENTINEL_USER_RULES: &str =
    "+client +subscribe +publish +ping +info +multi +slaveof +config +client +exec";

impl Auth {
    /// A password for the default user only.
    pub fn password(p: &str) -> Auth {
        Auth {
            password: p.to_string(),
            user: None,
            user_rules: None,
        }
    }
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
    user: Option<Spanned<String>>,
    user_rules: Option<Spanned<String>>,
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
            if let Some(u) = &a.user {
                s += &format!("user = {}\n", q(u));
            }
            if let Some(r) = &a.user_rules {
                s += &format!("user_rules = {}\n", q(r));
            }
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

mod validate;
use validate::{Locator, Validator};

#[cfg(test)]
mod tests;
