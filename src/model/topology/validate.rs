//! Validation of a parsed topology, section by section: names, the subnet
//! and its reserved addresses, the VIP, the nodes, the sentinels' settings,
//! and the rest. Every error is `Error::Input` at file:line:col of the key.

/// Folders of the state root that are not testbeds: a testbed of one of
/// these names would have its state dir there, and `down` would remove it.
pub const RESERVED_NAMES: &[&str] = &[
    "bench", "images", "reports", "runs", "engines", "clients", "matrix", "flake",
];

use super::{Auth, Node, ParseOptions, Profile, RawTopology, Topology, ALLOWED_SPACE};
use crate::error::{Error, Result};
use crate::model::net::Subnet;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

mod settings;

/// Turns byte spans into `file:line:col`.
pub(super) struct Locator<'a> {
    text: &'a str,
    file: String,
    dir: Option<PathBuf>,
}

impl<'a> Locator<'a> {
    pub(super) fn new(text: &'a str, origin: Option<&Path>) -> Self {
        Locator {
            text,
            file: origin.map_or("<topology>".into(), |p| p.display().to_string()),
            dir: origin.and_then(|p| p.parent().map(Path::to_path_buf)),
        }
    }

    pub(super) fn error(&self, span: Range<usize>, message: String, hint: Option<String>) -> Error {
        Error::at(&self.file, self.text, span.start, message, hint)
    }
}

pub(super) struct Validator<'a> {
    pub(super) at: &'a Locator<'a>,
    pub(super) opts: &'a ParseOptions,
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

    pub(super) fn validate(&self, raw: RawTopology) -> Result<Topology> {
        let (name, master_name, image) = self.identity(&raw)?;
        let subnet = self.subnet(&raw)?;
        let vip = self.vip(&raw, subnet)?;
        let nodes = self.nodes(&raw, subnet, vip)?;
        let initial_master = self.initial_master(&raw, &nodes)?;
        let s = self.sentinel(&raw, &nodes)?;
        let x = self.extras(&raw, &nodes)?;
        Ok(Topology {
            profile: x.profile,
            name,
            master_name,
            image,
            subnet,
            vip,
            nodes,
            initial_master,
            redis_port: s.redis_port,
            sentinel_port: s.sentinel_port,
            quorum: s.quorum,
            down_after_ms: s.down_after_ms,
            failover_timeout_ms: s.failover_timeout_ms,
            parallel_syncs: s.parallel_syncs,
            min_replicas_to_write: s.min_replicas_to_write,
            min_replicas_max_lag: s.min_replicas_max_lag,
            auth: x.auth,
            reconfig_script: x.reconfig_script,
            redis_conf: x.redis_conf,
            sentinel_conf: x.sentinel_conf,
            source: self.at.dir.as_ref().map(|_| PathBuf::from(&self.at.file)),
        })
    }

    /// `name`, `master_name`, `image`.
    fn identity(&self, raw: &RawTopology) -> Check<(String, String, String)> {
        let name = match &raw.name {
            Some(v) => self.name(v, "name", 24)?,
            None => "testbed".to_string(),
        };
        if let (Some(v), true) = (&raw.name, RESERVED_NAMES.contains(&name.as_str())) {
            return self.fail(
                v.span(),
                "name",
                format!("`{name}` is the name of a folder of the state root"),
                Some(&format!(
                    "pick another name; {} are taken (a testbed's state dir is <state root>/<name>, removed by `down`)",
                    RESERVED_NAMES.join(", ")
                )),
            );
        }
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
        Ok((name, master_name, image))
    }

    /// `subnet`: a /16../29 inside 198.18.0.0/15 (unless allowed otherwise).
    fn subnet(&self, raw: &RawTopology) -> Check<Subnet> {
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
        Ok(subnet)
    }

    /// `ip` lies in `subnet` and is none of its reserved addresses.
    fn in_subnet(&self, subnet: Subnet, ip: Ipv4Addr, span: Range<usize>, key: &str) -> Check<()> {
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
    }

    fn vip(&self, raw: &RawTopology, subnet: Subnet) -> Check<Ipv4Addr> {
        let vip = match &raw.vip {
            Some(v) => {
                let ip = self.ip(v, "vip")?;
                self.in_subnet(subnet, ip, v.span(), "vip")?;
                ip
            }
            None => subnet.with_host_of(
                "198.18.0.100".parse().expect("valid"),
                "198.18.0.0/24".parse().expect("valid"),
            ),
        };
        if raw.vip.is_none() {
            self.in_subnet(subnet, vip, 0..0, "vip")?;
        }

        Ok(vip)
    }

    /// `[[nodes]]` (or node1..3 at .11 .12 .13).
    fn nodes(&self, raw: &RawTopology, subnet: Subnet, vip: Ipv4Addr) -> Check<Vec<Node>> {
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
                    self.in_subnet(subnet, ip, n.ip.span(), "nodes.ip")?;
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

        Ok(nodes)
    }

    fn initial_master(&self, raw: &RawTopology, nodes: &[Node]) -> Check<usize> {
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

        Ok(initial_master)
    }
}
