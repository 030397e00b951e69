//! Rendering the files a testbed mounts into its containers: redis.conf,
//! sentinel.conf, the reconfig-script wrapper, the default VIP script and the
//! launchers. Pure functions of the topology.
//!
//! Invariant: the rendered sentinel.conf already names the other sentinels and
//! the replicas (`known-sentinel`, `known-replica`), so a sentinel does not
//! wait ~10 s for its next INFO round to discover them (platform.md).

use crate::model::topology::{Node, Topology};

/// Mount points inside the containers.
pub mod paths {
    /// Read-only: static busybox (`sh`, `ip`, `arping`) and the launchers.
    pub const BIN: &str = "/testbed/bin";
    /// Writable: redis.conf (Sentinel makes redis rewrite it on failover).
    pub const REDIS_DIR: &str = "/testbed/redis";
    /// Writable: sentinel.conf (Sentinel rewrites it at start and on events).
    pub const SENTINEL_DIR: &str = "/testbed/sentinel";
    /// Read-only: the reconfig-script wrapper and the script it runs.
    pub const SCRIPT_DIR: &str = "/testbed/script";
    /// Writable: the script's call log.
    pub const LOG_DIR: &str = "/testbed/log";
    /// The call log, one line per script run.
    pub const CALL_LOG: &str = "/testbed/log/reconfig.log";
    /// Read-only: this node's clock offset files (`redis.offset`,
    /// `sentinel.offset`), which the host rewrites for a clock jump.
    pub const CLOCK_DIR: &str = "/testbed/clock";
    /// The clock shim, when the testbed has one (preloaded by the launchers).
    pub const CLOCK_SHIM: &str = "/testbed/bin/libtestbed_clock.so";
    /// The interface of a container on the macvlan network.
    pub const INTERFACE: &str = "eth0";
    /// The PATH inside every container: busybox tools come first.
    pub const PATH: &str =
        "/testbed/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/// redis.conf for `node`.
pub fn redis_conf(t: &Topology, node: &Node) -> String {
    let master = t.initial_master();
    let mut c = header(t, node, "redis.conf");
    c += &format!(
        "port {}\nbind 0.0.0.0\nprotected-mode no\ndaemonize no\n",
        t.redis_port
    );
    c += "logfile \"\"\ndir /tmp\n";
    c +=
        "# no persistence: the testbed measures replication, not disks\nsave \"\"\nappendonly no\n";
    c += "# start a full sync at once instead of waiting 5 s for more replicas\nrepl-diskless-sync-delay 0\n";
    if node.name != master.name {
        c += &format!("replicaof {} {}\n", master.ip, t.redis_port);
    }
    if let Some(p) = node.replica_priority {
        c += &format!("replica-priority {p}\n");
    }
    if let Some(n) = t.min_replicas_to_write {
        c += &format!("min-replicas-to-write {n}\n");
    }
    if let Some(n) = t.min_replicas_max_lag {
        c += &format!("min-replicas-max-lag {n}\n");
    }
    if let Some(a) = &t.auth {
        c += &format!("requirepass {0}\nmasterauth {0}\n", a.password);
    }
    for l in &t.redis_conf {
        c += l;
        c += "\n";
    }
    c
}

/// sentinel.conf for the sentinel of `node`.
pub fn sentinel_conf(t: &Topology, node: &Node) -> String {
    let master = t.initial_master();
    let m = &t.master_name;
    let mut c = header(t, node, "sentinel.conf");
    c += &format!(
        "port {}\nprotected-mode no\ndaemonize no\nlogfile \"\"\ndir /tmp\n",
        t.sentinel_port
    );
    c += &format!("sentinel myid {}\n", sentinel_id(t, node));
    c += &format!(
        "sentinel monitor {m} {} {} {}\n",
        master.ip, t.redis_port, t.quorum
    );
    c += &format!("sentinel down-after-milliseconds {m} {}\n", t.down_after_ms);
    c += &format!("sentinel failover-timeout {m} {}\n", t.failover_timeout_ms);
    c += &format!("sentinel parallel-syncs {m} {}\n", t.parallel_syncs);
    if let Some(a) = &t.auth {
        c += &format!("sentinel auth-pass {m} {}\n", a.password);
    }
    c += &format!(
        "sentinel client-reconfig-script {m} {}/wrapper.sh\n",
        paths::SCRIPT_DIR
    );
    c += "# known peers: no waiting for discovery through INFO and hello messages\n";
    for n in t.nodes.iter().filter(|n| n.name != master.name) {
        c += &format!("sentinel known-replica {m} {} {}\n", n.ip, t.redis_port);
    }
    for n in t.nodes.iter().filter(|n| n.name != node.name) {
        c += &format!(
            "sentinel known-sentinel {m} {} {} {}\n",
            n.ip,
            t.sentinel_port,
            sentinel_id(t, n)
        );
    }
    for l in &t.sentinel_conf {
        c += l;
        c += "\n";
    }
    c
}

/// The 40-hex-digit sentinel run id of `node`: fixed per testbed and node so
/// every sentinel.conf can name its peers before they start.
pub fn sentinel_id(t: &Topology, node: &Node) -> String {
    (0u32..5)
        .map(|i| {
            let s = format!("{}/{}/{i}", t.name, node.name);
            let h = s.bytes().fold(0x811c_9dc5u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            format!("{h:08x}")
        })
        .collect()
}

/// Environment of every sentinel container; Sentinel passes it to the script.
pub fn sentinel_env(t: &Topology, node: &Node) -> Vec<(String, String)> {
    [
        ("TESTBED_NODE", node.name.clone()),
        ("TESTBED_LOCAL_IP", node.ip.to_string()),
        ("TESTBED_VIP", t.vip.to_string()),
        ("TESTBED_VIP_PREFIX", t.subnet.prefix().to_string()),
        ("TESTBED_INTERFACE", paths::INTERFACE.to_string()),
        ("TESTBED_CALL_LOG", paths::CALL_LOG.to_string()),
        ("PATH", paths::PATH.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The script Sentinel is configured with: logs each call (node, the 7
/// arguments, start and end on the shared /proc/uptime clock, exit code)
/// and runs the real script (the testbed's or the user's) with the same
/// arguments.
pub const WRAPPER: &str = r#"#!/testbed/bin/sh
# Generated by the testbed. Sentinel runs this as its client-reconfig-script:
# it runs script.sh with the same 7 arguments and logs the call.
read start _ < /proc/uptime
/testbed/script/script.sh "$@"
rc=$?
read end _ < /proc/uptime
echo "$start $end $TESTBED_NODE $rc $*" >> "$TESTBED_CALL_LOG"
exit $rc
"#;

/// The testbed's default VIP script: the seed's notify_master logic with the
/// local values taken from the environment.
pub const VIP_SCRIPT: &str = r#"#!/testbed/bin/sh
# The testbed's VIP script (the seed's notify_master6800.sh, parameterised).
# Arguments: <master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>
MASTER_IP="$6"
if [ "$MASTER_IP" = "$TESTBED_LOCAL_IP" ]; then
    # the new master is this server: take the VIP and tell the segment
    ip addr add "$TESTBED_VIP/$TESTBED_VIP_PREFIX" dev "$TESTBED_INTERFACE"
    arping -q -U -c 3 -I "$TESTBED_INTERFACE" "$TESTBED_VIP"
    exit 0
else
    # another server is the master: drop the VIP if this one holds it
    ip addr del "$TESTBED_VIP/$TESTBED_VIP_PREFIX" dev "$TESTBED_INTERFACE" 2>/dev/null
    exit 0
fi
exit 1
"#;

/// Starts redis-server or valkey-server, whichever the image has.
pub const START_REDIS: &str = r#"#!/testbed/bin/sh
# the testbed's clock shim, when it brought one: the wall clock of this
# process can then be shifted from the host (a clock jump)
if [ -f /testbed/bin/libtestbed_clock.so ] && [ -f /testbed/clock/redis.offset ]; then
    export LD_PRELOAD=/testbed/bin/libtestbed_clock.so TESTBED_CLOCK_FILE=/testbed/clock/redis.offset
fi
for b in redis-server valkey-server; do
    if command -v "$b" >/dev/null 2>&1; then exec "$b" /testbed/redis/redis.conf; fi
done
echo "testbed: the image has neither redis-server nor valkey-server" >&2
exit 127
"#;

/// Starts the sentinel with whatever binary the image has.
pub const START_SENTINEL: &str = r#"#!/testbed/bin/sh
if [ -f /testbed/bin/libtestbed_clock.so ] && [ -f /testbed/clock/sentinel.offset ]; then
    export LD_PRELOAD=/testbed/bin/libtestbed_clock.so TESTBED_CLOCK_FILE=/testbed/clock/sentinel.offset
fi
for b in redis-sentinel valkey-sentinel; do
    if command -v "$b" >/dev/null 2>&1; then exec "$b" /testbed/sentinel/sentinel.conf; fi
done
for b in redis-server valkey-server; do
    if command -v "$b" >/dev/null 2>&1; then exec "$b" /testbed/sentinel/sentinel.conf --sentinel; fi
done
echo "testbed: the image has no sentinel binary" >&2
exit 127
"#;

fn header(t: &Topology, node: &Node, file: &str) -> String {
    format!(
        "# {file} of {} on {} ({}), rendered by the testbed from its topology\n",
        node.name, t.name, node.ip
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::topology::{ParseOptions, Topology};
    use std::path::Path;

    fn fixture(name: &str) -> Topology {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        Topology::from_file(&p, &ParseOptions::default()).unwrap()
    }

    fn all_files(t: &Topology) -> String {
        let mut s = String::new();
        for n in &t.nodes {
            s += &format!("===== {}/redis.conf\n{}", n.name, redis_conf(t, n));
            s += &format!("===== {}/sentinel.conf\n{}", n.name, sentinel_conf(t, n));
        }
        s
    }

    #[test]
    fn default_topology_configs() {
        insta::assert_snapshot!(all_files(&fixture("topology.toml")));
    }

    #[test]
    fn seed_vip_configs() {
        insta::assert_snapshot!(all_files(&fixture("topologies/seed-vip.toml")));
    }

    #[test]
    fn seed_python_configs() {
        insta::assert_snapshot!(all_files(&fixture("topologies/seed-python.toml")));
    }

    #[test]
    fn sentinel_ids_are_fixed_per_testbed_and_node_and_never_shared() {
        use std::collections::HashSet;
        // fixed: the same testbed renders the same ids on every run (the
        // known-sentinel lines of its peers name them before they start)
        let t = Topology::default_topology();
        assert_eq!(
            sentinel_id(&t, &t.nodes[0]),
            sentinel_id(&Topology::default_topology(), &t.nodes[0])
        );
        // distinct across the nodes of 9-node topologies and across testbeds
        let mut seen = HashSet::new();
        for name in ["testbed", "t-kill", "t-vip", "rp-kill-master", "e2-t-kill"] {
            let mut text = format!("name = \"{name}\"\nquorum = 5\n");
            for i in 1..=9 {
                text += &format!(
                    "[[nodes]]\nname = \"node{i}\"\nip = \"198.18.0.{}\"\n",
                    10 + i
                );
            }
            let t = Topology::parse(&text, None, &ParseOptions::default()).unwrap();
            for n in &t.nodes {
                let id = sentinel_id(&t, n);
                assert!(
                    id.len() == 40 && id.chars().all(|c| c.is_ascii_hexdigit()),
                    "{id}"
                );
                assert!(seen.insert(id.clone()), "{name}/{} shares id {id}", n.name);
            }
        }
        assert_eq!(seen.len(), 45);
    }
}
