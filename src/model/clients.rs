//! The catalogue of client programs: every client configuration the client
//! image (`testbed/clients:dev`, built by `backend::client_image`) holds,
//! one program of `fixtures/clients/<language>/` each, run by the launcher
//! `/opt/clients/bin/<name>`. Pure data: the image build, the scenario
//! parser (`client = "..."`) and `cargo xtask clients` all read it.
//!
//! Invariant: names are unique, and every program speaks the external-client
//! protocol v2 (a meta line, then one JSON line per `INCR <prefix><id>`).

use crate::model::topology::Topology;
use std::net::Ipv4Addr;

/// How a client finds the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Discovery {
    /// Asks the sentinels.
    Sentinel,
    /// Connects to the VIP and knows nothing of Sentinel.
    Vip,
}

impl Discovery {
    pub fn as_str(self) -> &'static str {
        match self {
            Discovery::Sentinel => "sentinel",
            Discovery::Vip => "vip",
        }
    }
}

/// One client configuration of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientProgram {
    /// The launcher's name, the name in the meta line and in key names.
    pub name: &'static str,
    pub language: &'static str,
    /// The library, as its package is called.
    pub library: &'static str,
    /// The API and settings used, in a few words.
    pub api: &'static str,
    pub discovery: Discovery,
    /// What the launcher execs inside the image (arguments are passed on).
    pub exec: &'static str,
}

/// Every client configuration of the image, in the matrix's row order.
pub const CLIENTS: &[ClientProgram] = &[
    ClientProgram {
        name: "redis-py-sentinel",
        language: "python",
        library: "redis-py",
        api: "Sentinel(...).master_for(...), the second seed's code",
        discovery: Discovery::Sentinel,
        exec: "python3 /clients/python/redis_py_sentinel.py",
    },
    ClientProgram {
        name: "valkey-py-sentinel",
        language: "python",
        library: "valkey-py",
        api: "valkey.sentinel.Sentinel(...).master_for(...)",
        discovery: Discovery::Sentinel,
        exec: "python3 /clients/python/valkey_py_sentinel.py",
    },
    ClientProgram {
        name: "ioredis-sentinel",
        language: "node",
        library: "ioredis",
        api: "new Redis({sentinels, name}), defaults",
        discovery: Discovery::Sentinel,
        exec: "node /clients/node/ioredis_sentinel.js",
    },
    ClientProgram {
        name: "ioredis-failover-detector",
        language: "node",
        library: "ioredis",
        api: "new Redis({sentinels, name, failoverDetector: true})",
        discovery: Discovery::Sentinel,
        exec: "node /clients/node/ioredis_failover_detector.js",
    },
    ClientProgram {
        name: "node-redis-sentinel",
        language: "node",
        library: "node-redis",
        api: "createSentinel({name, sentinelRootNodes})",
        discovery: Discovery::Sentinel,
        exec: "node /clients/node/node_redis_sentinel.js",
    },
    ClientProgram {
        name: "phpredis-vip",
        language: "php",
        library: "phpredis",
        api: "Redis::connect(VIP), the first seed's PHP application",
        discovery: Discovery::Vip,
        exec: "php /clients/php/phpredis_vip.php",
    },
    ClientProgram {
        name: "phpredis-sentinel",
        language: "php",
        library: "phpredis",
        api: "RedisSentinel discovery loop of its docs",
        discovery: Discovery::Sentinel,
        exec: "php /clients/php/phpredis_sentinel.php",
    },
    ClientProgram {
        name: "predis-sentinel",
        language: "php",
        library: "predis",
        api: "Client(sentinels, ['replication' => 'sentinel'])",
        discovery: Discovery::Sentinel,
        exec: "php /clients/php/predis_sentinel.php",
    },
    ClientProgram {
        name: "go-redis-failover",
        language: "go",
        library: "go-redis",
        api: "redis.NewFailoverClient(&FailoverOptions{...})",
        discovery: Discovery::Sentinel,
        exec: "/opt/clients/libexec/go-redis-failover",
    },
    ClientProgram {
        name: "redis-rb-sentinel",
        language: "ruby",
        library: "redis-rb",
        api: "Redis.new(name:, sentinels:, role: :master)",
        discovery: Discovery::Sentinel,
        exec: "ruby /clients/ruby/redis_rb_sentinel.rb",
    },
    ClientProgram {
        name: "redis-rs-sentinel",
        language: "rust",
        library: "redis-rs",
        api: "SentinelClient::build(...), a new connection after a failed write",
        discovery: Discovery::Sentinel,
        exec: "/opt/clients/libexec/redis-rs-sentinel",
    },
    ClientProgram {
        name: "fred-sentinel",
        language: "rust",
        library: "fred",
        api: "ServerConfig::Sentinel + exponential reconnect policy",
        discovery: Discovery::Sentinel,
        exec: "/opt/clients/libexec/fred-sentinel",
    },
];

/// The client program called `name`; the error lists the known ones.
pub fn find(name: &str) -> Result<&'static ClientProgram, String> {
    CLIENTS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("no client program `{name}`; the known ones: {}", names()))
}

/// Every name, comma-separated (for messages).
pub fn names() -> String {
    CLIENTS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The host part of the first client container's address: client
/// containers sit at .50 and up of the testbed's subnet (application
/// servers on the LAN), skipping any address the topology uses.
pub const FIRST_CLIENT_HOST: u32 = 50;

/// The addresses of `n` client containers on `t`'s segment: from
/// [`FIRST_CLIENT_HOST`] upwards, never a node's, the VIP, the gateway or the
/// host's shim. Pure.
pub fn client_ips(t: &Topology, n: usize) -> Result<Vec<Ipv4Addr>, String> {
    let net = u32::from(t.subnet.network());
    let last = u32::from(t.subnet.broadcast());
    let used = |ip: Ipv4Addr| {
        t.node_by_ip(ip).is_some() || ip == t.vip || ip == t.gateway() || ip == t.shim_ip()
    };
    let out: Vec<Ipv4Addr> = (net + FIRST_CLIENT_HOST..last)
        .map(Ipv4Addr::from)
        .filter(|ip| !used(*ip))
        .take(n)
        .collect();
    if out.len() < n {
        return Err(format!(
            "subnet {} has room for {} client containers from .{FIRST_CLIENT_HOST} on, not {n}",
            t.subnet,
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_skip_what_the_topology_uses() {
        let mut t = Topology::default_topology();
        let ips = client_ips(&t, 3).unwrap();
        assert_eq!(ips[0].octets()[3], 50);
        assert_eq!(ips.len(), 3);
        // a node and the VIP where clients would go are skipped
        t.nodes[0].ip = "198.18.0.50".parse().unwrap();
        t.vip = "198.18.0.51".parse().unwrap();
        let ips = client_ips(&t, 2).unwrap();
        assert_eq!(
            ips.iter().map(|i| i.octets()[3]).collect::<Vec<_>>(),
            [52, 53]
        );
        // .50-.252 minus the VIP: 202 addresses; the gateway and shim never
        let all = client_ips(&Topology::default_topology(), 202).unwrap();
        assert!(!all.contains(&"198.18.0.253".parse().unwrap()));
        assert!(client_ips(&Topology::default_topology(), 203).is_err());
    }

    #[test]
    fn names_are_unique_and_an_unknown_one_lists_the_known() {
        let mut n: Vec<&str> = CLIENTS.iter().map(|c| c.name).collect();
        n.sort_unstable();
        n.dedup();
        assert_eq!(n.len(), CLIENTS.len());
        let e = find("jedis").unwrap_err();
        assert!(
            e.contains("`jedis`") && e.contains("go-redis-failover"),
            "{e}"
        );
        assert_eq!(find("fred-sentinel").unwrap().language, "rust");
    }

    #[test]
    fn every_program_is_in_the_fixtures() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clients");
        for c in CLIENTS {
            // an interpreted program names its script; a compiled one its sources
            let rel = match c.exec.split_whitespace().nth(1) {
                Some(script) => script.trim_start_matches("/clients/").to_string(),
                None => match c.language {
                    "go" => "go/main.go".into(),
                    "rust" => "rust/Cargo.toml".into(),
                    other => panic!("{}: a {other} program without a script", c.name),
                },
            };
            assert!(fixtures.join(&rel).is_file(), "{}: {rel}", c.name);
        }
    }
}
