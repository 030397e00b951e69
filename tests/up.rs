//! Bring-up: a testbed comes up healthy, checked here independently of the
//! code path of `up` (own redis connections, the host's neighbour table), and
//! leaves nothing behind when it is removed.

mod common;

use anyhow::{ensure, Result};
use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use testbed::net::mac_for;

async fn query<T: redis::FromRedisValue>(addr: SocketAddrV4, cmd: &redis::Cmd) -> Result<T> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let mut c = client.get_multiplexed_async_connection().await?;
    Ok(cmd.query_async(&mut c).await?)
}

fn info_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn up_is_healthy_and_down_leaves_nothing() -> Result<()> {
    let t = common::topology("t-up", 100)?;
    let tb = common::up(t.clone()).await?;
    let master = t.initial_master();

    for n in &t.nodes {
        let info: String = query(
            SocketAddrV4::new(n.ip, t.redis_port),
            redis::cmd("INFO").arg("replication"),
        )
        .await?;
        let i = info_map(&info);
        if n.name == master.name {
            ensure!(
                i["role"] == "master" && i["connected_slaves"] == "2",
                "{}: {info}",
                n.name
            );
        } else {
            ensure!(i["role"] == "slave", "{}: {info}", n.name);
            ensure!(
                i["master_host"] == master.ip.to_string(),
                "{}: {info}",
                n.name
            );
            ensure!(i["master_link_status"] == "up", "{}: {info}", n.name);
        }
        let m: BTreeMap<String, String> = query(
            SocketAddrV4::new(n.ip, t.sentinel_port),
            redis::cmd("SENTINEL").arg("MASTER").arg(&t.master_name),
        )
        .await?;
        ensure!(
            m["ip"] == master.ip.to_string(),
            "sentinel {}: {m:?}",
            n.name
        );
        ensure!(
            m["num-slaves"] == "2" && m["num-other-sentinels"] == "2",
            "sentinel {}: {m:?}",
            n.name
        );
    }

    // The VIP answers as the master...
    let vip = SocketAddrV4::new(t.vip, t.redis_port);
    let via_vip = info_map(&query::<String>(vip, &redis::cmd("INFO")).await?);
    let direct = info_map(
        &query::<String>(
            SocketAddrV4::new(master.ip, t.redis_port),
            redis::cmd("INFO").arg("server"),
        )
        .await?,
    );
    ensure!(
        via_vip["role"] == "master" && via_vip["run_id"] == direct["run_id"],
        "VIP answered {via_vip:?}"
    );
    // ...and the host reached it through the master's MAC.
    let neigh = std::process::Command::new("ip")
        .args(["neigh", "show", &t.vip.to_string(), "dev", &tb.names.shim])
        .output()?;
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_string();
    ensure!(
        neigh.contains(&mac_for(master.ip)),
        "neighbour entry for the VIP: {neigh:?}, want {}",
        mac_for(master.ip)
    );

    // The sentinel shares the redis container's network namespace.
    let status = tb.status().await?;
    ensure!(
        status.nodes.iter().filter(|n| n.holds_vip).count() == 1,
        "{status:?}"
    );

    let names = tb.names.clone();
    let docker = tb.docker.clone();
    tb.down().await?;

    let left = testbed::teardown::containers(&docker, Some(&t.name)).await?;
    ensure!(left.is_empty(), "containers left: {left:?}");
    let nets = testbed::teardown::networks(&docker, Some(&t.name)).await?;
    ensure!(nets.is_empty(), "networks left: {nets:?}");
    let links = testbed::links::owned_links().await?;
    ensure!(
        !links.iter().any(|l| l.testbed == t.name),
        "links left: {links:?}"
    );
    for l in [&names.parent, &names.parent_peer, &names.shim] {
        let out = std::process::Command::new("ip")
            .args(["link", "show", l])
            .output()?;
        ensure!(!out.status.success(), "link {l} still exists");
    }
    Ok(())
}

#[tokio::test]
async fn a_busy_subnet_is_refused_and_nothing_is_left() -> Result<()> {
    common::init_tracing();
    // A second testbed on the subnet of a running one.
    let first = common::up(common::topology("t-busy-a", 99)?).await?;
    let second = common::topology("t-busy-b", 99)?;
    let err = match testbed::Testbed::up(second, Default::default()).await {
        Ok(_) => anyhow::bail!("a second testbed on a busy subnet came up"),
        Err(e) => e.to_string(),
    };
    ensure!(err.contains("subnet 198.18.99.0/24 is busy"), "{err}");
    ensure!(err.contains("hint:"), "{err}");
    let left = testbed::teardown::containers(&first.docker, Some("t-busy-b")).await?;
    ensure!(left.is_empty(), "{left:?}");
    ensure!(!testbed::links::owned_links()
        .await?
        .iter()
        .any(|l| l.testbed == "t-busy-b"));
    first.down().await?;
    Ok(())
}
