//! Bring-up: a testbed comes up healthy, checked here independently of the
//! code path of `up` (own redis connections, the host's neighbour table), and
//! leaves nothing behind when it is removed.

mod common;

use anyhow::{ensure, Context, Result};
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

    // Each sentinel shares its redis container's network namespace: the
    // two container processes point at the same namespace inode.
    for n in &t.nodes {
        let redis_pid = tb.pid(n).await?;
        let s =
            testbed::containers::state(&tb.docker, &tb.names.sentinel(&n.name), &tb.names.network)
                .await?
                .context("no sentinel container")?;
        let ns = |pid: i64| std::fs::read_link(format!("/proc/{pid}/ns/net"));
        let (a, b) = (ns(redis_pid)?, ns(s.pid)?);
        ensure!(a == b, "{}: redis in {a:?}, its sentinel in {b:?}", n.name);
        // and it is not the host's
        ensure!(
            a != std::fs::read_link("/proc/self/ns/net")?,
            "{} runs in the host's namespace",
            n.name
        );
    }
    // status reads the MACs from the interfaces: the ones asked for
    let status = tb.status().await?;
    ensure!(
        status.nodes.iter().filter(|n| n.holds_vip).count() == 1,
        "{status:?}"
    );
    for n in &status.nodes {
        ensure!(!n.mac.is_empty() && !n.mac_differs(), "{n:?}");
    }

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
    // A second testbed on the subnet of a running one; names and subnet
    // from the topologies (TESTBED_TEST_PREFIX renames and moves them).
    let first = common::up(common::topology("t-busy-a", 111)?).await?;
    let second = common::topology("t-busy-b", 111)?;
    let (name, subnet) = (second.name.clone(), second.subnet);
    ensure!(subnet == first.topology.subnet);
    let err = match testbed::Testbed::up(second, Default::default()).await {
        Ok(_) => anyhow::bail!("a second testbed on a busy subnet came up"),
        Err(e) => e.to_string(),
    };
    ensure!(err.contains(&format!("subnet {subnet} is busy")), "{err}");
    ensure!(err.contains("hint:"), "{err}");
    let left = testbed::teardown::containers(&first.docker, Some(&name)).await?;
    ensure!(left.is_empty(), "{left:?}");
    ensure!(!testbed::links::owned_links()
        .await?
        .iter()
        .any(|l| l.testbed == name));
    first.down().await?;
    Ok(())
}

/// A bring-up that fails after containers were made (the sentinels cannot
/// authenticate: health never holds) removes everything it made.
#[tokio::test]
async fn a_failed_bring_up_leaves_nothing() -> Result<()> {
    common::init_tracing();
    let mut t = common::topology("t-upfail", 109)?;
    t.redis_conf.push("requirepass only-redis-knows".into());
    let name = t.name.clone();
    let opts = testbed::UpOptions {
        health_timeout: std::time::Duration::from_secs(6),
        ..Default::default()
    };
    let err = match testbed::Testbed::up(t, opts).await {
        Ok(_) => anyhow::bail!("a testbed whose sentinels cannot authenticate came up healthy"),
        Err(e) => e.to_string(),
    };
    ensure!(
        err.contains("waiting for the testbed to be healthy"),
        "{err}"
    );
    ensure!(
        err.contains("NOAUTH") || err.contains("Authentication"),
        "{err}"
    );
    let docker = testbed::docker::connect().await?;
    let left = testbed::teardown::leftovers(
        &docker,
        Some(&name),
        &testbed::testbed::default_state_root(),
    )
    .await?;
    ensure!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}

/// `up` of a running testbed's name with another topology says what
/// differs and refuses; with the same topology it attaches. The testbed has
/// a password with `/`, `#` and `%`, which must work unescaped.
#[tokio::test]
async fn a_changed_topology_is_refused_and_url_characters_in_passwords_work() -> Result<()> {
    let mut t = common::topology("t-change", 110)?;
    t.auth = Some(testbed::topology::Auth {
        password: "p/a#s%25w".into(),
    });
    let tb = common::up(t.clone()).await?;
    // the password works from here, through the VIP
    let mut c = testbed::client::connect(tb.vip_addr(), tb.password()).await?;
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async::<()>(&mut c)
        .await?;

    let mut changed = t.clone();
    changed.down_after_ms = 3000;
    let opts = testbed::UpOptions {
        reuse_running: true,
        ..Default::default()
    };
    let err = match testbed::Testbed::up(changed, opts.clone()).await {
        Ok(_) => anyhow::bail!("up with another down_after_ms returned the running testbed"),
        Err(e) => e.to_string(),
    };
    ensure!(
        err.contains("`down_after_ms`: 2000 here, 3000 there") && err.contains("--replace"),
        "{err}"
    );
    // the running one is untouched
    let m = testbed::client::sentinel_master(tb.sentinel_addr(&t.nodes[1]), &t.master_name).await?;
    ensure!(
        m.get("down-after-milliseconds").map(String::as_str) == Some("2000"),
        "{m:?}"
    );
    // the same topology attaches
    let again = testbed::Testbed::up(t.clone(), opts).await?;
    ensure!(again.topology.name == t.name);
    drop(again);
    ensure!(
        tb.status().await?.nodes.iter().all(|n| n.role != "down"),
        "attaching took it down"
    );
    tb.down().await?;
    Ok(())
}
