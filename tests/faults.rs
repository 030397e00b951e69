//! Faults beyond kill and pause, on real testbeds: partitions (symmetric,
//! one-way, isolation with the host still connected), faults of the sentinel
//! alone (kill, pause, SENTINEL SIMULATE-FAILURE) and of the redis-server
//! alone (DEBUG SLEEP, CLIENT PAUSE). Slots 120..=124; the partitions are in
//! `faults/partition.rs`.
//!
//! The sentinel-only, simulate-failure and debug-sleep/client-pause tests use
//! the `fast` profile: their point is not Sentinel's default timing, and the
//! shorter periods make them quicker. The partition tests keep the default
//! timing, whose numbers the README quotes.

mod common;
// the partition tests (default timing), beside the faults of one process
#[path = "faults/partition.rs"]
mod partition;

use anyhow::{anyhow, ensure, Context, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testbed::client;
use testbed::faults::Target;
use testbed::faults::{Direction, Partition, PartitionKind, PauseMode, SimulateFailure};
use testbed::timeline::Kind;
use testbed::topology::Node;
use testbed::wait::{self, POLL};
use testbed::Testbed;

/// Every test runs under a hard bound, whatever its waits say.
async fn bounded<T>(limit: Duration, f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| anyhow!("the test exceeded its bound of {limit:?}"))?
}

fn down_after(tb: &Testbed) -> Duration {
    Duration::from_millis(tb.topology.down_after_ms)
}

fn others(tb: &Testbed, n: &Node) -> Vec<Node> {
    tb.topology
        .nodes
        .iter()
        .filter(|o| o.name != n.name)
        .cloned()
        .collect()
}

/// A connection that waits up to 10 s for an answer (the library's polling
/// connections give up after 1.5 s, shorter than the blocks measured here).
async fn patient(addr: SocketAddrV4) -> Result<redis::aio::MultiplexedConnection> {
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    Ok(redis::Client::open(client::connection_info(addr, None))?
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?)
}

async fn role(tb: &Testbed, n: &Node) -> Result<String> {
    let i = client::info(tb.redis_addr(n), None, "replication").await?;
    Ok(i.get("role").cloned().unwrap_or_default())
}

/// The flags `viewer`'s sentinel has for `subject` in `SENTINEL REPLICAS`
/// or `SENTINEL SENTINELS` (`what`).
async fn flags_of(tb: &Testbed, viewer: &Node, what: &str, subject: &Node) -> Result<String> {
    let list =
        client::sentinel_list(tb.sentinel_addr(viewer), what, &tb.topology.master_name).await?;
    list.iter()
        .find(|m| m.get("ip").map(String::as_str) == Some(&subject.ip.to_string()))
        .and_then(|m| m.get("flags").cloned())
        .with_context(|| {
            format!(
                "{}'s sentinel lists no {what} at {}",
                viewer.name, subject.ip
            )
        })
}

/// How many usable sentinels `SENTINEL CKQUORUM` on `n`'s sentinel counts.
async fn usable_sentinels(tb: &Testbed, n: &Node) -> std::result::Result<u32, String> {
    let cmd = redis::cmd("SENTINEL")
        .arg("CKQUORUM")
        .arg(&tb.topology.master_name)
        .clone();
    let text: String = client::query(tb.sentinel_addr(n), None, &cmd)
        .await
        .map_err(|e| e.to_string())?;
    // "OK 3 usable Sentinels. Quorum and failover authorization can be reached"
    text.split_whitespace()
        .nth(1)
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("unexpected CKQUORUM answer `{text}`"))
}

#[tokio::test]
async fn sentinel_only_faults_leave_redis_serving() -> Result<()> {
    bounded(Duration::from_secs(120), async {
        let tb = common::up(common::fast_topology("t-sentinel", 122)?).await?;
        let trace = common::Trace::new(&tb, "sentinel_only_faults");
        let master = tb.current_master().await?;
        let r = others(&tb, &master)[0].clone();
        let target = Target::Node(r.name.clone());
        let bound = down_after(&tb) + Duration::from_secs(5);
        let other_sentinels = |tb: &Testbed| {
            let addr = tb.sentinel_addr(&master);
            let m = tb.topology.master_name.clone();
            async move {
                let info = client::sentinel_master(addr, &m).await?;
                Ok::<_, anyhow::Error>(info.get("num-other-sentinels").cloned())
            }
        };
        ensure!(usable_sentinels(&tb, &master).await == Ok(3));

        let mut times = BTreeMap::new();
        for fault in ["kill", "pause"] {
            let t = match fault {
                "kill" => tb.sentinel_kill(&target).await?,
                _ => tb.sentinel_pause(&target).await?,
            };
            let down_ms = wait::until(
                &format!("the master's sentinel to count 2 usable sentinels after {fault}"),
                bound,
                POLL,
                || async {
                    match usable_sentinels(&tb, &master).await {
                        Ok(2) => Ok(tb.timeline.now_ms() - t),
                        other => Err(format!("CKQUORUM: {other:?}")),
                    }
                },
            )
            .await?;
            ensure!(flags_of(&tb, &master, "SENTINELS", &r)
                .await?
                .contains("s_down"));
            // Sentinel never forgets a peer: the count does not drop
            ensure!(
                other_sentinels(&tb).await?.as_deref() == Some("2"),
                "num-other-sentinels changed"
            );
            // the node's redis is untouched: answers, still replicates
            tb.wait_replica_of(&r, &master, Duration::from_secs(5))
                .await?;
            let c = tb.sentinel_container(&r).await?;
            ensure!(
                (c.running, c.paused) == (fault == "pause", fault == "pause"),
                "sentinel container after {fault}: {c:?}"
            );

            // one verb undoes both: it starts a killed sentinel, thaws a frozen one
            let t_undo = tb.sentinel_resume(&target).await?;
            let undo = "sentinel-resume";
            let up_ms = wait::until(
                &format!("3 usable sentinels again after {undo}"),
                bound,
                POLL,
                || async {
                    match usable_sentinels(&tb, &master).await {
                        Ok(3) => Ok(tb.timeline.now_ms() - t_undo),
                        other => Err(format!("CKQUORUM: {other:?}")),
                    }
                },
            )
            .await?;
            ensure!(!flags_of(&tb, &master, "SENTINELS", &r)
                .await?
                .contains("s_down"));
            times.insert(fault, (down_ms, up_ms));
        }
        // the peers published the sentinel's +sdown and -sdown (twice)
        let about = |name: &str| {
            tb.timeline
                .find(name, 0.0)
                .into_iter()
                .filter(|e| {
                    e.detail.starts_with("sentinel ") && e.detail.contains(&r.ip.to_string())
                })
                .count()
        };
        ensure!(
            about("+sdown") >= 2 && about("-sdown") >= 2,
            "+sdown {} / -sdown {}",
            about("+sdown"),
            about("-sdown")
        );
        println!(
            "sentinel of {}: (ms to 2 usable, ms back to 3) = {times:?}",
            r.name
        );
        trace.ok(0.0)?;
        Ok(())
    })
    .await
}

/// Waits until docker has restarted `n`'s sentinel more than `before` times
/// and it answers again; returns when it answered.
async fn wait_sentinel_restarted(tb: &Testbed, n: &Node, before: i64) -> Result<f64> {
    wait::until(
        "docker to restart the crashed sentinel",
        Duration::from_secs(15),
        POLL,
        || async {
            match tb.sentinel_container(n).await {
                Ok(s) if s.running && s.restarts > before => Ok(()),
                other => Err(format!("the sentinel container: {other:?}")),
            }
        },
    )
    .await?;
    wait::until(
        "the restarted sentinel to name a master",
        Duration::from_secs(10),
        POLL,
        || async {
            client::master_addr(tb.sentinel_addr(n), &tb.topology.master_name)
                .await
                .map(|_| tb.timeline.now_ms())
                .map_err(|e| e.to_string())
        },
    )
    .await
    .map_err(Into::into)
}

/// The sentinel container's log (stdout and stderr) as text.
async fn sentinel_log(tb: &Testbed, n: &Node) -> Result<String> {
    use bollard::query_parameters::LogsOptions;
    use futures_util::StreamExt;
    let opts = LogsOptions {
        stdout: true,
        stderr: true,
        tail: "all".into(),
        ..Default::default()
    };
    let mut s = tb.docker.logs(&tb.names.sentinel(&n.name), Some(opts));
    let mut out = String::new();
    while let Some(l) = s.next().await {
        out += &l?.to_string();
    }
    Ok(out)
}

/// Whether a command's error is its connection lost mid-answer.
fn crashed_before_answering(e: &str) -> bool {
    let e = e.to_lowercase();
    [
        "broken pipe",
        "connection reset",
        "unexpected end",
        "end of file",
    ]
    .iter()
    .any(|m| e.contains(m))
}

#[tokio::test]
async fn crash_after_election_kills_the_leader_and_docker_restarts_it() -> Result<()> {
    bounded(Duration::from_secs(120), async {
        let tb = common::up(common::fast_topology("t-simfail", 123)?).await?;
        let trace = common::Trace::new(&tb, "crash_after_election");
        let master = tb.current_master().await?;
        let leader = others(&tb, &master)[0].clone();
        let restarts = tb.sentinel_container(&leader).await?.restarts;

        tb.simulate_failure(
            &Target::Node(leader.name.clone()),
            SimulateFailure::CrashAfterElection,
        )
        .await?;
        // the sentinel elects itself and crashes at once: its OK to SENTINEL
        // FAILOVER may never reach us (seen in CI: "broken pipe"), which is
        // the fault doing what it says; any other error is a failure
        let asked = tb.timeline.now_ms();
        let t0 = match tb.failover(Some(&Target::Node(leader.name.clone()))).await {
            Ok(t) => t,
            Err(e) if crashed_before_answering(&e.to_string()) => {
                println!("the crash cut the reply to SENTINEL FAILOVER: {e}");
                asked
            }
            Err(e) => return Err(e.into()),
        };
        let back = wait_sentinel_restarted(&tb, &leader, restarts).await?;
        let log = sentinel_log(&tb, &leader).await?;
        let elected = log.find("+elected-leader").context("no +elected-leader in the log")?;
        let crash = log
            .find("Sentinel CRASH because of SENTINEL simulate-failure")
            .context("no simulated crash in the log")?;
        ensure!(elected < crash, "the crash came before the election");
        ensure!(
            !log.contains("+promoted-slave"),
            "it promoted a replica before crashing"
        );
        ensure!(
            !tb.timeline.find("+try-failover", t0).is_empty(),
            "no +try-failover on the timeline"
        );
        // the crash stopped the failover: same master, everything healthy
        tb.wait_healthy(&master, Duration::from_secs(30)).await?;
        ensure!(tb.current_master().await?.name == master.name);
        println!(
            "{}'s sentinel crashed after its election and answered again {:.0} ms after the failover request",
            leader.name,
            back - t0
        );
        trace.ok(t0)?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn debug_sleep_and_client_pause_block_a_node_for_that_long() -> Result<()> {
    bounded(Duration::from_secs(90), async {
        let mut t = common::fast_topology("t-block", 124)?;
        // Redis >= 7 refuses DEBUG unless told otherwise
        t.redis_conf.push("enable-debug-command yes".into());
        let tb = common::up(t).await?;
        let trace = common::Trace::new(&tb, "debug_sleep_and_client_pause");
        let master = tb.current_master().await?;
        let r = others(&tb, &master)[0].clone();
        let target = Target::Node(r.name.clone());
        let mut probe = patient(tb.redis_addr(&r)).await?;
        let mut results = Vec::new();

        for ms in [500u64, 1500] {
            redis::cmd("PING").query_async::<String>(&mut probe).await?;
            let start = Instant::now();
            let sleeper = tb.debug_sleep(&target, Duration::from_millis(ms));
            let mut p = probe.clone();
            let prober = async move {
                // Part of the scenario: the PING goes out 100 ms after DEBUG
                // SLEEP so that it arrives while the node sleeps.
                tokio::time::sleep(Duration::from_millis(100)).await;
                redis::cmd("PING").query_async::<String>(&mut p).await?;
                Ok::<_, anyhow::Error>(start.elapsed())
            };
            let (slept, answered) = tokio::join!(sleeper, prober);
            slept?;
            let answered = answered?.as_secs_f64() * 1000.0;
            results.push(format!(
                "debug-sleep {ms} ms: unresponsive {answered:.0} ms"
            ));
            ensure!(
                answered >= ms as f64 - 20.0 && answered <= ms as f64 + 300.0,
                "DEBUG SLEEP {ms} ms: the PING was answered {answered:.0} ms after the command"
            );
        }

        for ms in [500u64, 1500] {
            redis::cmd("PING").query_async::<String>(&mut probe).await?;
            let start = Instant::now();
            tb.client_pause(&target, Duration::from_millis(ms), PauseMode::All)
                .await?;
            redis::cmd("PING").query_async::<String>(&mut probe).await?;
            let answered = start.elapsed().as_secs_f64() * 1000.0;
            results.push(format!(
                "client-pause {ms} ms: unresponsive {answered:.0} ms"
            ));
            ensure!(
                answered >= ms as f64 - 20.0 && answered <= ms as f64 + 300.0,
                "CLIENT PAUSE {ms} ms: the PING was answered {answered:.0} ms after the command"
            );
        }

        // WRITE mode: reads go through at once, writes wait out the pause
        let start = Instant::now();
        tb.client_pause(
            &Target::Node(master.name.clone()),
            Duration::from_millis(800),
            PauseMode::Write,
        )
        .await?;
        let mut m = patient(tb.redis_addr(&master)).await?;
        redis::cmd("GET")
            .arg("k")
            .query_async::<Option<String>>(&mut m)
            .await?;
        let read = start.elapsed().as_secs_f64() * 1000.0;
        redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async::<()>(&mut m)
            .await?;
        let write = start.elapsed().as_secs_f64() * 1000.0;
        results.push(format!(
            "client-pause WRITE 800 ms: read after {read:.0} ms, write after {write:.0} ms"
        ));
        ensure!(
            read < 300.0,
            "a read waited {read:.0} ms under CLIENT PAUSE WRITE"
        );
        ensure!(
            (780.0..=1100.0).contains(&write),
            "a write was answered {write:.0} ms into CLIENT PAUSE 800 WRITE"
        );
        println!("{}", results.join("\n"));
        trace.ok(0.0)?;
        Ok(())
    })
    .await
}
