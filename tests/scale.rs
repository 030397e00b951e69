//! More than three nodes, and more than one testbed at once: a 5-node
//! (quorum 3) and a 9-node (quorum 5) testbed come up healthy and fail over
//! within the failover timeout with one VIP holder; four 3-node testbeds at
//! once are all healthy and fail over one each. Slots 130-135.

mod common;

use anyhow::{anyhow, ensure, Context, Result};
use std::time::{Duration, Instant};
use testbed::faults::Target;
use testbed::{ParseOptions, Testbed, Topology};

/// An `n`-node topology on `slot`, nodes .11 upwards.
fn topology(name: &str, slot: u8, n: u8, quorum: u8) -> Result<Topology> {
    let net = common::slot(slot)?;
    let base = net.to_string();
    let prefix = base.trim_end_matches(".0/24");
    let mut text = format!(
        "name = \"{}\"\nsubnet = \"{base}\"\nvip = \"{prefix}.100\"\nquorum = {quorum}\n",
        common::name(name)
    );
    for i in 1..=n {
        text += &format!(
            "[[nodes]]\nname = \"node{i}\"\nip = \"{prefix}.{}\"\n",
            10 + i
        );
    }
    let mut t = Topology::parse(&text, None, &ParseOptions::default())?;
    if let Ok(img) = std::env::var("TESTBED_IMAGE") {
        t.image = img;
    }
    Ok(t)
}

/// Kills the master; waits (failover timeout, 3 x after a split vote) for
/// a new one, the VIP on it alone, every replica linked to it.
async fn fails_over(tb: &Testbed) -> Result<Duration> {
    let old = tb.current_master().await?;
    let t0 = tb.kill(&Target::Master).await?;
    let start = Instant::now();
    let ft = Duration::from_millis(tb.topology.failover_timeout_ms);
    let new = tb
        .wait_for_switch(&old, ft * 3)
        .await
        .with_context(|| format!("{}: no promotion", tb.topology.name))?;
    let took = start.elapsed();
    if took > ft {
        ensure!(
            !tb.timeline
                .find("-failover-abort-not-elected", t0)
                .is_empty(),
            "{}: the switch took {took:?}, over the failover timeout, without a failed election",
            tb.topology.name
        );
    }
    tb.wait_vip_on(&new, ft).await?;
    ensure!(
        tb.vip_holders().await? == [new.name.clone()],
        "more than one VIP holder"
    );
    for n in tb
        .topology
        .nodes
        .iter()
        .filter(|n| n.name != old.name && n.name != new.name)
    {
        tb.wait_replica_of(n, &new, ft * 2).await?;
    }
    Ok(took)
}

async fn bounded<T>(limit: Duration, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| anyhow!("the test exceeded its bound of {limit:?}"))?
}

#[tokio::test]
async fn five_nodes_with_quorum_three() -> Result<()> {
    bounded(Duration::from_secs(240), async {
        let tb = common::up(topology("t-five", 130, 5, 3)?).await?;
        println!("5 nodes up in {:.0} ms", tb.up_ms);
        let took = fails_over(&tb).await?;
        println!("5 nodes: switch after {took:?}");
        tb.down().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn nine_nodes_with_quorum_five() -> Result<()> {
    bounded(Duration::from_secs(300), async {
        let tb = common::up(topology("t-nine", 131, 9, 5)?).await?;
        println!("9 nodes up in {:.0} ms", tb.up_ms);
        let took = fails_over(&tb).await?;
        println!("9 nodes: switch after {took:?}");
        tb.down().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn four_testbeds_at_once() -> Result<()> {
    bounded(Duration::from_secs(300), async {
        let ts: Vec<Topology> = (0..4)
            .map(|i| topology(&format!("t-many{i}"), 132 + i, 3, 2))
            .collect::<Result<_>>()?;
        let tbs = futures_util::future::try_join_all(ts.into_iter().map(common::up)).await?;
        for tb in &tbs {
            let m = tb.current_master().await?;
            tb.wait_healthy(&m, Duration::from_secs(30)).await?;
        }
        let took = futures_util::future::try_join_all(tbs.iter().map(fails_over)).await?;
        println!("four testbeds: switches after {took:?}");
        for tb in tbs {
            tb.down().await?;
        }
        Ok(())
    })
    .await
}
