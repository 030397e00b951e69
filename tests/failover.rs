//! Failover, for real: kill (or freeze, or ask) the master of a testbed of
//! real containers and check promotion, the VIP move, the replicas, the
//! clients and the snapshots of what the nodes report.

mod common;

use anyhow::{ensure, Context, Result};
use std::time::{Duration, Instant};
use testbed::client;
use testbed::faults::Target;
use testbed::normalize::{lines, Redactor};
use testbed::timeline::Kind;
use testbed::topology::Node;
use testbed::workload::{ClientPath, Outcome, Workload, WorkloadSpec};
use testbed::Testbed;

/// Kills the master and waits for the switch within the failover timeout.
/// Returns (fault time, old master, new master).
async fn kill_master(tb: &Testbed) -> Result<(f64, Node, Node)> {
    let old = tb.current_master().await?;
    let t0 = tb.kill(&Target::Master).await?;
    let started = Instant::now();
    // A split vote (both live sentinels ask for votes in the same epoch and
    // each votes for itself) makes Sentinel wait 2 x failover-timeout before
    // it tries again: a real Redis behaviour, reported, not hidden. The bound
    // is the failover timeout, or 3 x when the timeline shows the failed
    // election.
    let new = tb
        .wait_for_switch(&old, common::failover_timeout(tb) * 3)
        .await
        .context("no promotion within 3 x the topology's failover timeout")?;
    ensure!(new.name != old.name);
    let took = started.elapsed();
    if took > common::failover_timeout(tb) {
        let aborted = tb.timeline.find("-failover-abort-not-elected", t0);
        ensure!(
            !aborted.is_empty(),
            "switch took {took:?}, over the failover timeout {:?}, without a failed election:\n{}",
            common::failover_timeout(tb),
            tb.timeline.render(t0)
        );
        println!(
            "NOTE: a split vote ({} failed election(s)) delayed the failover to {took:?} (failover timeout {:?})",
            aborted.len(),
            common::failover_timeout(tb)
        );
        tb.timeline.record(
            Kind::Observation,
            "testbed",
            "split-vote",
            format!("switch after {took:?}"),
        );
    }
    // every live sentinel has published the switch (the leader last: it
    // waits for the replicas to be reconfigured)
    let live: Vec<String> = tb
        .topology
        .nodes
        .iter()
        .filter(|n| n.name != old.name)
        .map(|n| n.name.clone())
        .collect();
    tb.timeline
        .wait_for(
            "every live sentinel to publish +switch-master",
            common::failover_timeout(tb),
            |ev| {
                live.iter().all(|n| {
                    ev.iter()
                        .any(|e| e.t_ms >= t0 && e.name == "+switch-master" && &e.source == n)
                })
            },
        )
        .await?;
    Ok((t0, old, new))
}

fn other_replica<'a>(tb: &'a Testbed, old: &Node, new: &Node) -> &'a Node {
    tb.topology
        .nodes
        .iter()
        .find(|n| n.name != old.name && n.name != new.name)
        .expect("three nodes")
}

/// The first occurrence of each name after `t0`, in the order given, must be
/// increasing.
fn assert_order(tb: &Testbed, t0: f64, names: &[&str]) -> Result<()> {
    let mut last = t0;
    for n in names {
        let ev = tb.timeline.find(n, t0);
        let first = ev
            .first()
            .with_context(|| format!("no {n} on the timeline:\n{}", tb.timeline.render(t0)))?;
        ensure!(
            first.t_ms >= last,
            "{n} came before the previous phase:\n{}",
            tb.timeline.render(t0)
        );
        last = first.t_ms;
    }
    Ok(())
}

#[tokio::test]
async fn kill_master_promotes_a_replica() -> Result<()> {
    let tb = common::up(common::topology("t-kill", 101)?).await?;
    let trace = common::Trace::new(&tb, "kill_master_promotes_a_replica");
    let (t0, old, new) = kill_master(&tb).await?;
    // every live sentinel agrees
    let views = tb.sentinel_masters().await;
    let live: Vec<_> = tb
        .topology
        .nodes
        .iter()
        .filter(|n| n.name != old.name)
        .map(|n| n.name.clone())
        .collect();
    for n in &live {
        ensure!(
            views.get(n) == Some(&new.ip),
            "sentinel {n} reports {:?}, want {}",
            views.get(n),
            new.ip
        );
    }
    let other = other_replica(&tb, &old, &new);
    tb.wait_replica_of(other, &new, common::failover_timeout(&tb))
        .await?;
    assert_order(
        &tb,
        t0,
        &[
            "+sdown",
            "+odown",
            "+elected-leader",
            "+promoted-slave",
            "+switch-master",
        ],
    )?;
    let p = trace.ok(t0)?;
    // the bound is the failover timeout (3x after a reported split vote)
    let split_vote = !tb.timeline.find("split-vote", t0).is_empty();
    let bound = tb.topology.failover_timeout_ms as f64 * if split_vote { 3.0 } else { 1.0 };
    ensure!(
        p.switch_all_ms.is_some_and(|ms| ms <= bound),
        "{}",
        p.render()
    );
    Ok(())
}

#[tokio::test]
async fn vip_follows_the_new_master() -> Result<()> {
    let tb = common::up(common::topology("t-vip", 102)?).await?;
    let trace = common::Trace::new(&tb, "vip_follows_the_new_master");
    let (t0, old, new) = kill_master(&tb).await?;
    tb.wait_vip_on(&new, common::failover_timeout(&tb)).await?;

    // a write through the VIP is read back from the other replica
    let other = other_replica(&tb, &old, &new).clone();
    tb.wait_replica_of(&other, &new, common::failover_timeout(&tb))
        .await?;
    let set = redis::cmd("SET")
        .arg("through-vip")
        .arg("after-failover")
        .clone();
    client::query::<()>(tb.vip_addr(), None, &set).await?;
    testbed::wait::until(
        "the write to reach the other replica",
        Duration::from_secs(5),
        testbed::wait::POLL,
        || async {
            let get = redis::cmd("GET").arg("through-vip").clone();
            match client::query::<Option<String>>(tb.redis_addr(&other), None, &get).await {
                Ok(Some(v)) if v == "after-failover" => Ok(()),
                r => Err(format!("{} answered {r:?}", other.name)),
            }
        },
    )
    .await?;

    // the script log: the leader's call with the 7 documented arguments, and observers'
    // the leader's call is logged when its script ends (arping -c 3 takes ~2 s)
    let calls = tb
        .wait_script_calls(
            "the leader's and an observer's call",
            common::failover_timeout(&tb),
            |c| {
                c.iter()
                    .any(|c| c.args.get(1).is_some_and(|r| r == "leader"))
                    && c.iter()
                        .any(|c| c.args.get(1).is_some_and(|r| r == "observer"))
            },
        )
        .await?;
    let want_tail = [
        tb.topology.master_name.clone(),
        "leader".into(),
        "start".into(),
        old.ip.to_string(),
        tb.topology.redis_port.to_string(),
        new.ip.to_string(),
        tb.topology.redis_port.to_string(),
    ];
    let leader: Vec<_> = calls
        .iter()
        .filter(|c| c.args.get(1).map(String::as_str) == Some("leader"))
        .collect();
    ensure!(leader.len() == 1, "want one leader call, got {calls:#?}");
    ensure!(
        leader[0].args == want_tail,
        "leader call {:?}, want {want_tail:?}",
        leader[0].args
    );
    ensure!(leader[0].exit_code == 0, "{:?}", leader[0]);
    let observers: Vec<_> = calls
        .iter()
        .filter(|c| c.args.get(1).map(String::as_str) == Some("observer"))
        .collect();
    ensure!(!observers.is_empty(), "no observer call: {calls:#?}");
    for c in &observers {
        ensure!(
            c.args[3] == old.ip.to_string() && c.args[5] == new.ip.to_string(),
            "{c:?}"
        );
    }
    ensure!(
        calls.iter().all(|c| c.node != old.name),
        "the dead node's sentinel ran the script: {calls:#?}"
    );
    trace.ok(t0)?;
    Ok(())
}

async fn snapshot_nodes(
    tb: &Testbed,
    r: &Redactor,
    label: &dyn Fn(&Node) -> String,
) -> Result<String> {
    let mut out = String::new();
    let mut nodes: Vec<(String, &Node)> = tb.topology.nodes.iter().map(|n| (label(n), n)).collect();
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    for (l, n) in nodes {
        out += &format!("== {l}\n");
        match client::info(tb.redis_addr(n), None, "replication").await {
            Ok(i) => out += &lines(&r.info_replication(&i)),
            Err(_) => out += "(down)\n",
        }
    }
    Ok(out)
}

#[tokio::test]
async fn info_replication_snapshots() -> Result<()> {
    let tb = common::up(common::topology("t-snap", 103)?).await?;
    let trace = common::Trace::new(&tb, "info_replication_snapshots");
    // one set of snapshots per server line: Redis 7.0, 8.0 and Valkey differ
    let line = common::server_line(&tb).await?;
    println!("snapshots of the server line {line}");
    let _snapshots = common::snapshot_settings(&line).bind_to_scope();
    let t = &tb.topology;
    let mut r = Redactor::new();
    for n in &t.nodes {
        r = r.name(n.ip, n.name.clone());
    }
    let before = snapshot_nodes(&tb, &r, &|n| n.name.clone()).await?;
    insta::assert_snapshot!("before_failover", before);

    let (t0, old, new) = kill_master(&tb).await?;
    let other = other_replica(&tb, &old, &new).clone();
    tb.wait_replica_of(&other, &new, common::failover_timeout(&tb))
        .await?;
    // role names, not node names: which replica wins is up to Sentinel
    let r = Redactor::new()
        .name(old.ip, "old-master")
        .name(new.ip, "new-master")
        .name(other.ip, "other-replica");
    let role = |n: &Node| {
        if n.name == old.name {
            "old-master"
        } else if n.name == new.name {
            "new-master"
        } else {
            "other-replica"
        }
        .to_string()
    };
    let after = snapshot_nodes(&tb, &r, &role).await?;
    insta::assert_snapshot!("after_failover", after);

    // the sentinels' view, from every live sentinel: all the same
    let mut views = Vec::new();
    for n in t.nodes.iter().filter(|n| n.name != old.name) {
        let m = client::sentinel_master(tb.sentinel_addr(n), &t.master_name).await?;
        views.push(lines(&r.sentinel_master(&m)));
    }
    ensure!(
        views.windows(2).all(|w| w[0] == w[1]),
        "sentinels disagree: {views:#?}"
    );
    insta::assert_snapshot!("sentinel_view_after_failover", views[0]);

    let role_reply: redis::Value =
        client::query(tb.redis_addr(&new), None, &redis::cmd("ROLE")).await?;
    insta::assert_snapshot!("role_of_new_master", r.role(&role_reply));
    trace.ok(t0)?;
    Ok(())
}

#[tokio::test]
async fn old_master_rejoins_as_replica() -> Result<()> {
    let tb = common::up(common::topology("t-rejoin", 104)?).await?;
    let trace = common::Trace::new(&tb, "old_master_rejoins_as_replica");
    let (t0, old, new) = kill_master(&tb).await?;
    tb.wait_vip_on(&new, common::failover_timeout(&tb)).await?;
    for i in 0..20 {
        let set = redis::cmd("SET").arg(format!("after:{i}")).arg(i).clone();
        client::query::<()>(tb.vip_addr(), None, &set).await?;
    }
    tb.start(&Target::Node(old.name.clone())).await?;
    tb.wait_replica_of(&old, &new, common::demotion_timeout(&tb))
        .await?;
    tb.timeline
        .wait_for(
            "+convert-to-slave for the old master",
            Duration::from_secs(5),
            |ev| {
                ev.iter()
                    .any(|e| e.t_ms >= t0 && e.name == "+convert-to-slave")
            },
        )
        .await?;
    // it does not take the VIP back
    tb.wait_vip_on(&new, Duration::from_secs(5)).await?;
    ensure!(
        tb.holds_vip(&old).await? == Some(false),
        "the old master holds the VIP again"
    );
    // it has the writes made after the failover
    for i in 0..20 {
        let get = redis::cmd("GET").arg(format!("after:{i}")).clone();
        let v: Option<i64> = client::query(tb.redis_addr(&old), None, &get).await?;
        ensure!(v == Some(i), "old master lacks after:{i} (got {v:?})");
    }
    trace.ok(t0)?;
    Ok(())
}

#[tokio::test]
async fn sentinel_client_follows_failover() -> Result<()> {
    let tb = common::up(common::topology("t-client", 105)?).await?;
    let trace = common::Trace::new(&tb, "sentinel_client_follows_failover");
    let t = tb.topology.clone();
    // redis-rs's sentinel client writing unique keys at 50/s for the whole test
    let spec = WorkloadSpec {
        path: ClientPath::Sentinel,
        rate: 50,
        timeout_ms: 5000,
    };
    let wl = Workload::start(&tb, &spec)?;
    // observation time before the fault: the client writes undisturbed
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (t0, _old, new) = kill_master(&tb).await?;
    tb.wait_vip_on(&new, common::failover_timeout(&tb)).await?;
    // the client's own recovery: a write invoked after the VIP moved is
    // acknowledged (a write still waiting on the dead master takes up to its
    // 5 s timeout first)
    let vip_moved = tb.timeline.now_ms();
    wl.wait_acknowledged_after(
        vip_moved,
        common::failover_timeout(&tb) + Duration::from_millis(spec.timeout_ms),
    )
    .await
    .context("the sentinel-aware client did not recover")?;
    // observation time after recovery
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ops = wl.stop().await?;

    let present = testbed::workload::read_present(
        tb.redis_addr(&new),
        None,
        testbed::workload::KEY_PREFIX,
        ops.iter().map(|o| o.id),
    )
    .await?;
    let report = testbed::checker::check(&ops, &present);
    println!("sentinel-aware client: {}", report.summary());
    ensure!(
        ops.iter()
            .any(|o| o.outcome == Outcome::Ok && o.invoke_ms < t0),
        "no successful write before the fault"
    );
    let outage = report
        .unavailable
        .iter()
        .find(|w| w.end_ms >= t0)
        .with_context(|| {
            format!(
                "the client saw no outage after the fault: {}",
                report.summary()
            )
        })?;
    let last = ops.last().context("no operations")?;
    ensure!(
        outage.end_ms < last.invoke_ms,
        "the client never recovered: {}",
        report.summary()
    );
    tb.timeline.push(testbed::timeline::Event {
        t_ms: outage.end_ms,
        kind: Kind::Observation,
        source: "client".into(),
        name: "client-recovered".into(),
        detail: format!("unavailable for {:.0} ms", outage.len_ms()),
    });
    ensure!(
        outage.len_ms() <= t.failover_timeout_ms as f64,
        "unavailability {:.0} ms exceeds the failover timeout",
        outage.len_ms()
    );
    // every write acknowledged after recovery is on the new master
    let lost_after: Vec<u64> = ops
        .iter()
        .filter(|o| {
            o.outcome == Outcome::Ok && o.invoke_ms >= outage.end_ms && !present.contains(&o.id)
        })
        .map(|o| o.id)
        .collect();
    ensure!(
        lost_after.is_empty(),
        "acknowledged after recovery but not on {}: {lost_after:?}",
        new.name
    );
    trace.ok(t0)?;
    Ok(())
}

#[tokio::test]
async fn manual_failover_moves_the_vip() -> Result<()> {
    let tb = common::up(common::topology("t-manual", 106)?).await?;
    let trace = common::Trace::new(&tb, "manual_failover_moves_the_vip");
    let old = tb.current_master().await?;
    let t0 = tb.failover(None).await?;
    let new = tb
        .wait_for_switch(&old, common::failover_timeout(&tb))
        .await?;
    tb.wait_vip_on(&new, common::failover_timeout(&tb)).await?;
    tb.wait_replica_of(&old, &new, common::demotion_timeout(&tb))
        .await?;
    ensure!(tb.holds_vip(&old).await? == Some(false));
    assert_order(
        &tb,
        t0,
        &[
            "+new-epoch",
            "+selected-slave",
            "+promoted-slave",
            "+switch-master",
        ],
    )?;
    trace.ok(t0)?;
    Ok(())
}

async fn epoch(tb: &Testbed, n: &Node) -> Result<u64> {
    let m = client::sentinel_master(tb.sentinel_addr(n), &tb.topology.master_name).await?;
    Ok(m.get("config-epoch").context("no config-epoch")?.parse()?)
}

#[tokio::test]
async fn second_failover() -> Result<()> {
    let tb = common::up(common::topology("t-second", 107)?).await?;
    let trace = common::Trace::new(&tb, "second_failover");
    let (_, first_old, first_new) = kill_master(&tb).await?;
    tb.wait_vip_on(&first_new, common::failover_timeout(&tb))
        .await?;
    tb.start(&Target::Node(first_old.name.clone())).await?;
    tb.wait_replica_of(&first_old, &first_new, common::demotion_timeout(&tb))
        .await?;
    let third = other_replica(&tb, &first_old, &first_new).clone();
    tb.wait_replica_of(&third, &first_new, common::failover_timeout(&tb))
        .await?;
    // all three sentinels agree again before the second fault
    tb.wait_healthy(&first_new, common::failover_timeout(&tb) * 2)
        .await?;
    // Valkey 9.1 keeps a peer's `master_down` from the first failover (see
    // health::peer_is_healthy): reported, not hidden
    for n in &tb.topology.nodes {
        let v = testbed::health::sentinel_view(&tb.topology, n)
            .await
            .map_err(anyhow::Error::msg)?;
        if v.sentinel_flags.iter().any(|f| f.contains("master_down")) {
            println!(
                "NOTE: {}'s sentinel still flags a peer master_down after the first failover: {:?}",
                n.name, v.sentinel_flags
            );
            tb.timeline.record(
                Kind::Observation,
                "testbed",
                "stale-master-down",
                format!("{}: {:?}", n.name, v.sentinel_flags),
            );
        }
    }
    let epoch1 = epoch(&tb, &third).await?;

    let (t0, old2, new2) = kill_master(&tb).await?;
    ensure!(old2.name == first_new.name);
    tb.wait_vip_on(&new2, common::failover_timeout(&tb)).await?;
    let epoch2 = epoch(&tb, &new2).await?;
    ensure!(
        epoch2 > epoch1,
        "config-epoch went from {epoch1} to {epoch2}"
    );
    trace.ok(t0)?;
    Ok(())
}

#[tokio::test]
async fn paused_master_fails_over() -> Result<()> {
    let tb = common::up(common::topology("t-pause", 108)?).await?;
    let trace = common::Trace::new(&tb, "paused_master_fails_over");
    let old = tb.current_master().await?;
    let t0 = tb.pause(&Target::Node(old.name.clone())).await?;
    let deadline = Instant::now() + common::failover_timeout(&tb) + common::demotion_timeout(&tb);
    // sample the VIP holders while the failover runs
    let mut both_since: Option<f64> = None;
    let mut both_total = 0.0;
    // the last sample that saw two holders
    let mut both_last: Option<f64> = None;
    let mut new = None;
    let mut demoted = false;
    // sample every 50 ms
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while Instant::now() < deadline {
        tick.tick().await;
        let holders = tb.vip_holders().await?;
        let now = tb.timeline.now_ms();
        match (holders.len() > 1, both_since) {
            (true, None) => both_since = Some(now),
            (false, Some(s)) => {
                both_total += now - s;
                both_since = None;
            }
            _ => {}
        }
        if holders.len() > 1 {
            both_last = Some(now);
        }
        if new.is_none() {
            let views = tb.sentinel_masters().await;
            let moved: Vec<_> = views
                .iter()
                .filter(|(n, ip)| **n != old.name && **ip != old.ip)
                .collect();
            if moved.len() >= tb.topology.quorum as usize {
                new = tb.topology.node_by_ip(*moved[0].1).cloned();
                tb.resume(&Target::Node(old.name.clone())).await?;
            }
        } else if !demoted {
            let i = client::info(tb.redis_addr(&old), None, "replication").await;
            demoted = i.is_ok_and(|i| i.get("role").map(String::as_str) == Some("slave"));
        } else if holders.len() == 1 && both_since.is_none() {
            break;
        }
    }
    let new = new.context("no failover while the master was frozen")?;
    ensure!(demoted, "the old master was not demoted after unfreezing");
    tb.wait_replica_of(&old, &new, common::failover_timeout(&tb))
        .await?;
    tb.wait_vip_on(&new, common::failover_timeout(&tb)).await?;
    println!("both nodes held the VIP for {both_total:.0} ms in all");
    tb.timeline.record(
        Kind::Observation,
        "testbed",
        "vip-double-hold",
        format!("{both_total:.0} ms"),
    );
    // Only redis was frozen: the old node's sentinel went on, saw the
    // switch, and ran the script as an observer, which drops the VIP there.
    // That call ends the double holding (not the demotion, which never
    // touches the VIP).
    let calls = tb.script_calls()?;
    let drop_call = calls
        .iter()
        .find(|c| c.node == old.name && c.args.get(5) == Some(&new.ip.to_string()))
        .with_context(|| {
            format!(
                "{}'s sentinel never ran the script for the switch to {}: {calls:#?}",
                old.name, new.name
            )
        })?;
    if let Some(last) = both_last {
        // a sample is taken every 50 ms and takes a few ms; /proc/uptime
        // (the script log's clock) has 10 ms steps
        ensure!(
            last <= drop_call.end_ms + 250.0,
            "two nodes held the VIP at {:.0} ms, after {}'s script dropped it at {:.0} ms",
            last - t0,
            old.name,
            drop_call.end_ms - t0
        );
    }
    trace.ok(t0)?;
    Ok(())
}
