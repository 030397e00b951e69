//! `sentinel-blackhole` on a real testbed with a real client container on
//! its segment: the client's packets to one node's sentinel vanish (a
//! connect times out: dropped, no reset) while that node's redis, the other
//! sentinels and the host still answer; `partitions` lists the rule with the
//! client's address; `heal` removes it. Slot 167.

mod common;

use anyhow::{anyhow, ensure, Context, Result};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testbed::faults::Target;
use testbed::model::clients::client_ips;
use testbed::observe::probe;
use testbed::workload::container::{self, Launch};

/// One PING round trip from the client's namespace to `addr`, or why not.
async fn ping_from(pid: i64, addr: std::net::SocketAddrV4) -> std::result::Result<f64, String> {
    probe::tcp_rtt(pid, addr, 1, Duration::ZERO)
        .await
        .map(|v| v[0])
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_black_holed_sentinel_drops_the_clients_packets_only() -> Result<()> {
    let run = async {
        let tb = common::up(common::topology("t-blackhole", 167)?).await?;
        let image = testbed::backend::client_image::CLIENT_IMAGE;
        ensure!(
            tb.docker.inspect_image(image).await.is_ok(),
            "the client image {image} is missing: `cargo xtask image {image}`"
        );
        let ip = client_ips(&tb.topology, 1).map_err(|e| anyhow!(e))?[0];
        let running = container::start(
            Launch {
                docker: &tb.docker,
                testbed: &tb.topology.name,
                container: format!("tb-{}-cl-probe", tb.topology.name),
                image,
                network: &tb.names.network,
                ip,
                cmd: vec!["sleep".into(), "120".into()],
                env: Vec::new(),
                client: "probe",
            },
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(Mutex::new(String::new())),
        )
        .await?;
        let pid = tb
            .docker
            .inspect_container(&running.name, None)
            .await?
            .state
            .and_then(|s| s.pid)
            .context("the client container's pid")?;
        let (n1, n2) = (&tb.topology.nodes[0], &tb.topology.nodes[1]);
        // before: the client reaches every sentinel
        for n in [n1, n2] {
            ping_from(pid, tb.sentinel_addr(n))
                .await
                .map_err(|e| anyhow!("before the fault, {}'s sentinel: {e}", n.name))?;
        }
        tb.sentinel_blackhole(&Target::Node(n1.name.clone()))
            .await?;
        let cut = ping_from(pid, tb.sentinel_addr(n1)).await;
        ensure!(
            cut.as_ref().is_err_and(|e| e.contains("timed out")),
            "node1's sentinel from the client: {cut:?} (expected a connect timeout: dropped, no reset)"
        );
        ping_from(pid, tb.redis_addr(n1))
            .await
            .map_err(|e| anyhow!("node1's redis from the client must still answer: {e}"))?;
        ping_from(pid, tb.sentinel_addr(n2))
            .await
            .map_err(|e| anyhow!("node2's sentinel from the client must still answer: {e}"))?;
        // the host (the testbed's own observer) and Sentinel's gossip are untouched
        testbed::client::sentinel_master(tb.sentinel_addr(n1), &tb.topology.master_name).await?;
        let view = testbed::health::sentinel_view(&tb.topology, n1)
            .await
            .map_err(|e| anyhow!(e))?;
        ensure!(
            view.sentinel_flags
                .iter()
                .all(|f| testbed::health::peer_is_healthy(f)),
            "node1's sentinel lost its peers: {:?}",
            view.sentinel_flags
        );
        let listed = tb.partitions().await?;
        ensure!(
            listed
                .iter()
                .any(|p| p.from.contains(&ip.to_string()) && p.to == n1.name),
            "partitions does not list the client's rule: {listed:?}"
        );
        tb.heal().await?;
        ensure!(
            tb.partitions().await?.is_empty(),
            "{:?}",
            tb.partitions().await?
        );
        ping_from(pid, tb.sentinel_addr(n1))
            .await
            .map_err(|e| anyhow!("after heal, node1's sentinel from the client: {e}"))?;
        running.stop(Duration::from_secs(2)).await;
        tb.down().await?;
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .map_err(|_| anyhow!("the test exceeded its bound of 120 s"))?
}
