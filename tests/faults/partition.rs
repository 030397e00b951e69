//! Partitions on real testbeds, with the default timing the README quotes:
//! the isolated master (and the writes heal throws away), and a one-way cut.

use super::*;

#[tokio::test]
async fn isolated_master_keeps_taking_writes_that_heal_throws_away() -> Result<()> {
    bounded(Duration::from_secs(180), async {
        let tb = common::up(common::topology("t-split", 120)?).await?;
        let trace = common::Trace::new(&tb, "isolated_master_keeps_taking_writes");
        let old = tb.current_master().await?;
        let majority = others(&tb, &old);

        // a write every replica has before the cut
        let mut conn = patient(tb.redis_addr(&old)).await?;
        redis::cmd("SET")
            .arg("before")
            .arg("1")
            .query_async::<()>(&mut conn)
            .await?;
        let synced: i64 = redis::cmd("WAIT")
            .arg(2)
            .arg(5000)
            .query_async(&mut conn)
            .await?;
        ensure!(synced == 2, "only {synced} replicas took the first write");

        let t0 = tb.isolate(&Target::Node(old.name.clone())).await?;
        ensure!(
            tb.partitions().await?.len() == 4,
            "isolating one of three nodes is 4 directional cuts: {:?}",
            tb.partitions().await?
        );

        // a client on the host keeps writing to the old master's own address
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, tl, mut conn) = (stop.clone(), tb.timeline.clone(), conn.clone());
            tokio::spawn(async move {
                let (mut acked, mut failed, mut i) = (Vec::new(), 0u32, 0u32);
                while !stop.load(Ordering::Relaxed) {
                    let set = redis::cmd("SET").arg(format!("minority:{i}")).arg(i).clone();
                    match set.query_async::<()>(&mut conn).await {
                        Ok(()) => acked.push((i, tl.now_ms())),
                        Err(_) => failed += 1,
                    }
                    i += 1;
                    // the workload's pace: one write every 20 ms (the scenario)
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (acked, failed)
            })
        };

        // the majority side elects a new master; the isolated side cannot.
        // Two sentinels vote: a split vote (each for itself) makes Sentinel
        // try again after 2 x failover-timeout (README), hence 3 x.
        let new_ip = wait::until(
            "the two sentinels of the majority to agree on a new master",
            common::failover_timeout(&tb) * 3,
            POLL,
            || async {
                let views = tb.sentinel_masters().await;
                let maj: Vec<Ipv4Addr> = majority
                    .iter()
                    .filter_map(|n| views.get(&n.name).copied())
                    .collect();
                if maj.len() == 2 && maj[0] == maj[1] && maj[0] != old.ip {
                    Ok(maj[0])
                } else {
                    Err(format!("sentinel views: {views:?}"))
                }
            },
        )
        .await?;
        let new = tb
            .topology
            .node_by_ip(new_ip)
            .cloned()
            .context("the majority elected an unknown address")?;
        let switched_at = tb.timeline.now_ms();
        wait::until(
            "the new master to report role:master",
            common::failover_timeout(&tb),
            POLL,
            || async {
                match role(&tb, &new).await {
                    Ok(r) if r == "master" => Ok(()),
                    r => Err(format!("{} role: {r:?}", new.name)),
                }
            },
        )
        .await?;

        // split brain: two masters at once, and the isolated sentinel,
        // which the host still reaches, still names the old one
        ensure!(role(&tb, &old).await? == "master", "the old master stepped down by itself");
        let views = tb.sentinel_masters().await;
        ensure!(
            views.get(&old.name) == Some(&old.ip),
            "the isolated sentinel reports {:?}, want the old master {}",
            views.get(&old.name),
            old.ip
        );
        tb.timeline.record(
            Kind::Observation,
            "testbed",
            "split-brain",
            format!(
                "{} and {} both master; VIP on {:?}",
                old.name,
                new.name,
                tb.vip_holders().await?
            ),
        );
        let mut new_conn = patient(tb.redis_addr(&new)).await?;
        for k in 0..10 {
            redis::cmd("SET")
                .arg(format!("majority:{k}"))
                .arg(k)
                .query_async::<()>(&mut new_conn)
                .await?;
        }
        // The scenario itself: the host keeps writing to the isolated master
        // for one more second after the majority has its own master.
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        let (acked, failed) = writer.await?;
        let after_switch = acked.iter().filter(|(_, t)| *t >= switched_at).count();
        ensure!(
            after_switch > 0,
            "the isolated master acknowledged no write after the switch"
        );

        let t_heal = tb.heal().await?;
        ensure!(tb.partitions().await?.is_empty(), "cuts left after heal");
        tb.wait_replica_of(&old, &new, common::demotion_timeout(&tb))
            .await
            .context("the old master was not demoted after heal")?;
        tb.timeline
            .wait_for(
                "+convert-to-slave of the old master after heal",
                Duration::from_secs(5),
                |ev| {
                    ev.iter().any(|e| {
                        e.t_ms >= t_heal
                            && e.name == "+convert-to-slave"
                            && e.detail.contains(&old.ip.to_string())
                    })
                },
            )
            .await?;
        // the majority's writes reached the old master; its own are gone
        wait::until(
            "the old master to have the majority's writes",
            Duration::from_secs(10),
            POLL,
            || async {
                let get = redis::cmd("GET").arg("majority:9").clone();
                match client::query::<Option<i64>>(tb.redis_addr(&old), None, &get).await {
                    Ok(Some(9)) => Ok(()),
                    r => Err(format!("{} answered {r:?}", old.name)),
                }
            },
        )
        .await?;
        let mut survived = 0;
        for (i, _) in &acked {
            let get = redis::cmd("GET").arg(format!("minority:{i}")).clone();
            for n in [&old, &new] {
                let v: Option<i64> = client::query(tb.redis_addr(n), None, &get).await?;
                survived += usize::from(v.is_some());
            }
        }
        let before: Option<String> = client::query(
            tb.redis_addr(&new),
            None,
            &redis::cmd("GET").arg("before").clone(),
        )
        .await?;
        ensure!(before.as_deref() == Some("1"), "the pre-partition write is lost");
        let msg = format!(
            "the isolated master acknowledged {} writes ({after_switch} after the majority elected {}; {failed} failed); after heal {} of them survive",
            acked.len(),
            new.name,
            survived
        );
        println!("{msg}");
        tb.timeline
            .record(Kind::Observation, "testbed", "lost-writes", &msg);
        ensure!(survived == 0, "{msg}");
        trace.ok(t0)?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn one_way_cut_blinds_only_the_side_that_opens_the_connections() -> Result<()> {
    bounded(Duration::from_secs(120), async {
        let tb = common::up(common::topology("t-oneway", 121)?).await?;
        let trace = common::Trace::new(&tb, "one_way_cut");
        let master = tb.current_master().await?;
        let reps = others(&tb, &master);
        let (a, b) = (&reps[0], &reps[1]);

        let t0 = tb
            .partition(
                &[Target::Node(a.name.clone())],
                &[Target::Node(b.name.clone())],
                Direction::OneWay,
            )
            .await?;
        ensure!(
            tb.partitions().await? == [Partition {
                from: a.name.clone(),
                to: b.name.clone(),
                kind: PartitionKind::Connections
            }],
            "cuts in force: {:?}",
            tb.partitions().await?
        );
        // a's sentinel opens its links to b: they hang, so it flags b down
        let blind_at = wait::until(
            "a's sentinel to flag b's replica and sentinel s_down",
            down_after(&tb) + Duration::from_secs(5),
            POLL,
            || async {
                let r = flags_of(&tb, a, "REPLICAS", b).await.map_err(|e| e.to_string())?;
                let s = flags_of(&tb, a, "SENTINELS", b).await.map_err(|e| e.to_string())?;
                if r.contains("s_down") && s.contains("s_down") {
                    Ok(tb.timeline.now_ms())
                } else {
                    Err(format!("replica flags {r}, sentinel flags {s}"))
                }
            },
        )
        .await?;
        // The scenario: watch b's side for a whole down-after period (+1 s)
        // more; its connections to a still work, so it must not flag a.
        tokio::time::sleep(down_after(&tb) + Duration::from_secs(1)).await;
        let r = flags_of(&tb, b, "REPLICAS", a).await?;
        let s = flags_of(&tb, b, "SENTINELS", a).await?;
        ensure!(
            !r.contains("s_down") && !s.contains("s_down"),
            "b's sentinel flags a ({r} / {s}) though only a -> b is cut"
        );
        let b_sdowns: Vec<_> = tb
            .timeline
            .find("+sdown", t0)
            .into_iter()
            .filter(|e| e.source == b.name)
            .collect();
        ensure!(b_sdowns.is_empty(), "b published {b_sdowns:?}");
        // nothing failed over: every sentinel still names the master
        let views = tb.sentinel_masters().await;
        ensure!(
            views.len() == 3 && views.values().all(|ip| *ip == master.ip),
            "sentinel views changed: {views:?}"
        );
        tb.timeline.record(
            Kind::Observation,
            "testbed",
            "one-way-views",
            format!(
                "{} sees {} down after {:.0} ms; {} sees {} up",
                a.name,
                b.name,
                blind_at - t0,
                b.name,
                a.name
            ),
        );

        let t_heal = tb.heal().await?;
        ensure!(tb.partitions().await?.is_empty(), "cuts left after heal");
        let healed_at = wait::until(
            "a's sentinel to see b again",
            Duration::from_secs(10),
            POLL,
            || async {
                let r = flags_of(&tb, a, "REPLICAS", b).await.map_err(|e| e.to_string())?;
                let s = flags_of(&tb, a, "SENTINELS", b).await.map_err(|e| e.to_string())?;
                if r.contains("s_down") || s.contains("s_down") {
                    Err(format!("replica flags {r}, sentinel flags {s}"))
                } else {
                    Ok(tb.timeline.now_ms())
                }
            },
        )
        .await?;
        println!(
            "one-way {} -> {}: {} flagged {} down {:.0} ms after the cut; cleared {:.0} ms after heal",
            a.name,
            b.name,
            a.name,
            b.name,
            blind_at - t0,
            healed_at - t_heal
        );
        trace.ok(t0)?;
        Ok(())
    })
    .await
}
