//! Degraded links, measured from the outside on real testbeds: probes in
//! the nodes' namespaces (Redis PING round trips, stamped UDP datagrams) and
//! timed transfers, against what the verb asked for. Slots 125-129.

mod common;

use anyhow::{anyhow, ensure, Context, Result};
use std::future::Future;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};
use testbed::faults::{Direction, End, Impairment, Target};
use testbed::observe::probe::{self, median};
use testbed::topology::Node;
use testbed::Testbed;

async fn bounded<T>(limit: Duration, f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| anyhow!("the test exceeded its bound of {limit:?}"))?
}

fn node(tb: &Testbed, i: usize) -> Node {
    tb.topology.nodes[i].clone()
}

fn t(n: &Node) -> Vec<Target> {
    vec![Target::Node(n.name.clone())]
}

/// Median Redis PING round trip from `from`'s namespace to `to`, ms.
async fn rtt(tb: &Testbed, from: &Node, to: &Node) -> Result<f64> {
    let pid = tb.pid(from).await?;
    let v = probe::tcp_rtt(pid, tb.redis_addr(to), 40, Duration::from_millis(5)).await?;
    Ok(median(&v))
}

/// Nothing of the impairments is left in any namespace, and no daemon runs.
async fn nothing_impaired(tb: &Testbed) -> Result<()> {
    ensure!(
        tb.impairments().await?.is_empty(),
        "{:?}",
        tb.impairments().await?
    );
    for n in &tb.topology.nodes {
        let pid = tb.pid(n).await?;
        let rules = testbed::host::in_netns(pid, "iptables", &["-S"]).await?;
        ensure!(!rules.contains("TESTBED-IMPAIR"), "{}: {rules}", n.name);
        let q = testbed::host::in_netns(pid, "tc", &["qdisc", "show", "dev", "eth0"]).await?;
        ensure!(!q.contains("htb"), "{}: {q}", n.name);
    }
    let daemons: Vec<_> = testbed::faults::impair::all_daemons()
        .into_iter()
        .filter(|(_, t)| *t == tb.topology.name)
        .collect();
    ensure!(daemons.is_empty(), "daemons left: {daemons:?}");
    Ok(())
}

#[tokio::test]
async fn delay_grows_the_round_trip_by_twice_the_delay_only_where_asked() -> Result<()> {
    bounded(Duration::from_secs(150), async {
        let tb = common::up(common::topology("t-delay", 125)?).await?;
        let (a, b, c) = (node(&tb, 0), node(&tb, 1), node(&tb, 2));
        let (ab0, ac0) = (rtt(&tb, &a, &b).await?, rtt(&tb, &a, &c).await?);
        let ms = 40.0;
        tb.delay(&t(&a), &t(&b), ms as u64, 0, Direction::Both)
            .await?;
        let (ab, ac) = (rtt(&tb, &a, &b).await?, rtt(&tb, &a, &c).await?);
        println!(
            "RTT a->b {ab0:.2} -> {ab:.2} ms, a->c {ac0:.2} -> {ac:.2} ms (delay {ms} ms each way)"
        );
        // the round trip grows by 2 x ms: median within ±10 % + 2 ms
        let want = ab0 + 2.0 * ms;
        ensure!(
            (ab - want).abs() <= 0.1 * 2.0 * ms + 2.0,
            "a->b RTT {ab:.2} ms, want {want:.2}"
        );
        // the untouched pair keeps its round trip
        ensure!(ac < ac0 + 2.0, "a->c RTT went from {ac0:.2} to {ac:.2} ms");
        let listed = tb.impairments().await?;
        ensure!(listed.len() == 2, "{listed:?}");
        ensure!(
            listed.iter().all(|i| i.what
                == Impairment::Delay {
                    ms: 40,
                    jitter_ms: 0
                }),
            "{listed:?}"
        );
        tb.heal().await?;
        nothing_impaired(&tb).await?;
        let back = rtt(&tb, &a, &b).await?;
        ensure!(back < 5.0, "after heal the RTT is {back:.2} ms");

        // one way: only a -> b is slower, seen by stamped datagrams each way
        tb.delay(&t(&a), &t(&b), ms as u64, 0, Direction::OneWay)
            .await?;
        let (pa, pb) = (tb.pid(&a).await?, tb.pid(&b).await?);
        let to_b = SocketAddrV4::new(b.ip, 47001);
        let to_a = SocketAddrV4::new(a.ip, 47002);
        let gap = Duration::from_millis(5);
        let ab = probe::udp_one_way(pa, pb, to_b, 100, gap).await?;
        let ba = probe::udp_one_way(pb, pa, to_a, 100, gap).await?;
        let (ab, ba) = (median(&ab.delays_ms), median(&ba.delays_ms));
        println!("one way 40 ms a -> b: a->b {ab:.2} ms, b->a {ba:.2} ms");
        ensure!(
            (ab - ms).abs() <= 0.1 * ms + 2.0,
            "a->b one-way {ab:.2} ms, want {ms}"
        );
        ensure!(
            ba < 2.0,
            "b->a one-way {ba:.2} ms: the other direction was slowed too"
        );
        tb.heal().await?;
        nothing_impaired(&tb).await?;
        tb.down().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn loss_and_flap_drop_the_asked_share_of_packets() -> Result<()> {
    bounded(Duration::from_secs(150), async {
        // a fixed seed: the same run draws the same losses
        let tb = common::up_with(common::topology("t-loss", 126)?, Some(42)).await?;
        let (a, b, c) = (node(&tb, 0), node(&tb, 1), node(&tb, 2));
        let (pa, pb, pc) = (tb.pid(&a).await?, tb.pid(&b).await?, tb.pid(&c).await?);
        tb.loss(&t(&a), &t(&b), 20.0, Direction::OneWay).await?;
        let r = probe::udp_one_way(
            pa,
            pb,
            SocketAddrV4::new(b.ip, 47003),
            800,
            Duration::from_millis(2),
        )
        .await?;
        println!(
            "loss 20 % a -> b: {:.1} % of {} datagrams lost",
            r.loss_percent(),
            r.sent
        );
        ensure!(
            (r.loss_percent() - 20.0).abs() <= 5.0,
            "loss {:.1} %",
            r.loss_percent()
        );
        // the same through ICMP, from the sender's namespace
        let out = testbed::host::in_netns(
            pa,
            "ping",
            &["-c", "1000", "-i", "0.003", "-q", &b.ip.to_string()],
        )
        .await?;
        let lost: f64 = out
            .split(',')
            .find(|p| p.contains("packet loss"))
            .and_then(|p| p.trim().split('%').next()?.parse().ok())
            .context("no loss in ping's summary")?;
        println!("ping a -> b: {lost:.1} % lost");
        ensure!((lost - 20.0).abs() <= 5.0, "ping lost {lost} %");

        tb.flap(&t(&a), &t(&c), 200, 200, Direction::OneWay).await?;
        let r = probe::udp_one_way(
            pa,
            pc,
            SocketAddrV4::new(c.ip, 47004),
            1000,
            Duration::from_millis(3),
        )
        .await?;
        println!("flap 200/200 a -> c: {:.1} % lost", r.loss_percent());
        ensure!(
            (r.loss_percent() - 50.0).abs() <= 10.0,
            "flap lost {:.1} %",
            r.loss_percent()
        );
        tb.heal().await?;
        nothing_impaired(&tb).await?;
        let r = probe::udp_one_way(
            pa,
            pc,
            SocketAddrV4::new(c.ip, 47005),
            200,
            Duration::from_millis(2),
        )
        .await?;
        ensure!(
            r.loss_percent() == 0.0,
            "after heal {:.1} % lost",
            r.loss_percent()
        );
        tb.down().await?;
        Ok(())
    })
    .await
}

/// Seconds for a SET of `bytes` from `from`'s namespace to `to`'s redis.
async fn transfer(tb: &Testbed, from: &Node, to: &Node, bytes: usize) -> Result<f64> {
    let pid = tb.pid(from).await?;
    Ok(probe::tcp_transfer(pid, tb.redis_addr(to), bytes).await?)
}

#[tokio::test]
async fn a_capped_link_takes_the_time_the_rate_implies() -> Result<()> {
    bounded(Duration::from_secs(120), async {
        let tb = common::up(common::topology("t-rate", 127)?).await?;
        let (a, b, c) = (node(&tb, 0), node(&tb, 1), node(&tb, 2));
        let kbit = 8000u64;
        tb.rate(&t(&b), &t(&a), kbit, Direction::OneWay).await?;
        let bytes = 2_000_000usize;
        let want = bytes as f64 * 8.0 / (kbit as f64 * 1000.0);
        let took = transfer(&tb, &b, &a, bytes).await?;
        println!("2 MB b -> a at {kbit} kbit/s: {took:.3} s (the rate implies {want:.3} s)");
        ensure!(
            (took - want).abs() <= 0.15 * want,
            "took {took:.3} s, want {want:.3} ± 15 %"
        );
        let free = transfer(&tb, &c, &a, bytes).await?;
        ensure!(free < want / 4.0, "an untouched pair took {free:.3} s");
        ensure!(
            tb.impairments().await?
                == [testbed::faults::Impaired {
                    from: End::Node(b.name.clone()),
                    to: End::Node(a.name.clone()),
                    what: Impairment::Rate { kbit }
                }],
            "{:?}",
            tb.impairments().await?
        );
        tb.heal().await?;
        nothing_impaired(&tb).await?;
        tb.down().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn the_host_link_and_bad_input() -> Result<()> {
    bounded(Duration::from_secs(120), async {
        let tb = common::up(common::topology("t-hostlink", 128)?).await?;
        let m = tb.current_master().await?;
        // a client on a slow link to the master: from the host's side
        let time_pings = || async {
            let mut c =
                testbed::client::connect_with(tb.vip_addr(), None, Duration::from_secs(5)).await?;
            let mut v = Vec::new();
            for _ in 0..20 {
                let s = Instant::now();
                redis::cmd("PING").query_async::<String>(&mut c).await?;
                v.push(s.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(median(&v))
        };
        let before = time_pings().await?;
        tb.delay(&[Target::Host], &[Target::Master], 30, 0, Direction::Both)
            .await?;
        let after = time_pings().await?;
        println!("host <-> master PING: {before:.2} -> {after:.2} ms (30 ms each way)");
        ensure!(
            (after - before - 60.0).abs() <= 8.0,
            "{before:.2} -> {after:.2} ms"
        );
        let listed = tb.impairments().await?;
        ensure!(
            listed
                .iter()
                .any(|i| i.from == End::Host && i.to == End::Node(m.name.clone())),
            "{listed:?}"
        );

        // bad input changes nothing
        let before = tb.impairments().await?;
        let (a, b) = (node(&tb, 1), node(&tb, 2));
        for (what, want) in [
            (Impairment::Loss { percent: 150.0 }, "at most 100"),
            (
                Impairment::Delay {
                    ms: 10,
                    jitter_ms: 50,
                },
                "jitter",
            ),
            (Impairment::Rate { kbit: 0 }, "8 kbit/s"),
        ] {
            let e = tb
                .impair(&t(&a), &t(&b), what, Direction::Both)
                .await
                .unwrap_err()
                .to_string();
            ensure!(e.contains(want), "{e}");
        }
        let e = tb
            .delay(
                &[Target::Node("node9".into())],
                &t(&b),
                10,
                0,
                Direction::Both,
            )
            .await
            .unwrap_err()
            .to_string();
        ensure!(e.contains("no node `node9`"), "{e}");
        tb.kill(&Target::Node(b.name.clone())).await?;
        let e = tb
            .delay(&t(&a), &t(&b), 10, 0, Direction::Both)
            .await
            .unwrap_err()
            .to_string();
        ensure!(e.contains("is down"), "{e}");
        ensure!(
            tb.impairments().await? == before,
            "a refused verb changed what is in force"
        );
        tb.down().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_clock_jump_and_a_readonly_config_hit_one_sentinel_only() -> Result<()> {
    bounded(Duration::from_secs(90), async {
        let tb = common::up(common::topology("t-clock", 129)?).await?;
        let n2 = node(&tb, 1);
        let t0 = tb
            .clock_jump(
                &Target::Node(n2.name.clone()),
                testbed::faults::Process::Sentinel,
                10.0,
            )
            .await?;
        // its next timer tick sees 10 s pass in 100 ms: more than Sentinel's 2 s
        let ev = tb
            .timeline
            .wait_for(
                "+tilt from node2's sentinel",
                Duration::from_secs(5),
                |ev| {
                    ev.iter()
                        .any(|e| e.t_ms >= t0 && e.name == "+tilt" && e.source == n2.name)
                },
            )
            .await?;
        let at = ev
            .iter()
            .find(|e| e.t_ms >= t0 && e.name == "+tilt")
            .map(|e| e.t_ms - t0)
            .unwrap_or_default();
        println!("+tilt on {} {at:.0} ms after the jump", n2.name);
        // the others keep their clocks: watched for 3 s more, no TILT there
        let others = tb
            .timeline
            .wait_for(
                "a +tilt from another sentinel",
                Duration::from_secs(3),
                |ev| {
                    ev.iter()
                        .any(|e| e.t_ms >= t0 && e.name == "+tilt" && e.source != n2.name)
                },
            )
            .await;
        ensure!(
            others.is_err(),
            "another sentinel entered TILT: {:?}",
            others.ok().map(|e| e.len())
        );
        // what the soak waits on: INFO sentinel says so, for that one only
        let tilted = testbed::health::sentinels_in_tilt(&tb.topology)
            .await
            .map_err(anyhow::Error::msg)?;
        ensure!(tilted == [n2.name.clone()], "in TILT: {tilted:?}");
        let clocks = tb.clocks().await?;
        ensure!(
            clocks.len() == 1
                && clocks[0].node == n2.name
                && (clocks[0].offset_ms - 10_000.0).abs() < 1.0,
            "{clocks:?}"
        );
        // the sentinel's own wall clock, asked over its port, is 10 s ahead
        let info = testbed::client::info(tb.sentinel_addr(&n2), None, "server").await?;
        let theirs: f64 = info
            .get("server_time_usec")
            .context("no server_time_usec")?
            .parse::<f64>()?
            / 1e6;
        let ours = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        ensure!(
            (theirs - ours - 10.0).abs() < 1.0,
            "its clock is {:.1} s off",
            theirs - ours
        );
        tb.heal().await?;
        ensure!(tb.clocks().await?.is_empty(), "heal left a shifted clock");

        // a read-only config folder: the sentinel's rewrite fails, the
        // others' does not; heal makes it writable again
        let flush = |n: &Node| {
            let addr = tb.sentinel_addr(n);
            async move {
                testbed::client::query::<String>(
                    addr,
                    None,
                    &redis::cmd("SENTINEL").arg("FLUSHCONFIG").clone(),
                )
                .await
            }
        };
        tb.config_readonly(&Target::Node(n2.name.clone())).await?;
        ensure!(
            tb.readonly_configs().await? == [n2.name.clone()],
            "{:?}",
            tb.readonly_configs().await?
        );
        let e = flush(&n2)
            .await
            .expect_err("a read-only config folder was written");
        ensure!(e.to_string().contains("Failed to save config"), "{e}");
        flush(&node(&tb, 0)).await?;
        tb.heal().await?;
        ensure!(tb.readonly_configs().await?.is_empty());
        flush(&n2).await?;
        tb.down().await?;
        Ok(())
    })
    .await
}
