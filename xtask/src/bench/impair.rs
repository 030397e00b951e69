//! The precision of the link impairments: asked vs measured, from the
//! outside (stamped UDP datagrams between two nodes' namespaces, Redis PING
//! round trips, timed transfers), and the CPU the daemon costs at 1 000
//! packets/s. One testbed `bn-imp` on 198.18.174.0/24 with a fixed seed.

use super::stats::{summary, Summary};
use anyhow::{Context, Result};
use serde::Serialize;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};
use testbed::faults::{Direction, Target};
use testbed::observe::probe::{self, median, quantile};
use testbed::topology::Node;
use testbed::{Testbed, UpOptions};

pub const NAME: &str = "bn-imp";
pub const SLOT: u8 = 174;

/// One asked-vs-measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub asked: String,
    pub measure: String,
    pub expected: String,
    pub measured: String,
}

/// The daemon's CPU at a packet rate.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    pub packets_per_s: f64,
    pub delay_ms: u64,
    /// % of one core, user + system, over the run.
    pub percent_of_a_core: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImpairBench {
    pub rows: Vec<Row>,
    pub cpu: Vec<Cpu>,
    pub load_avg_1m: Vec<f64>,
}

fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn t(n: &Node) -> Vec<Target> {
    vec![Target::Node(n.name.clone())]
}

fn ms(v: f64) -> String {
    format!("{v:.2} ms")
}

pub async fn run(state_root: &std::path::Path) -> Result<ImpairBench> {
    let topo = super::topology(NAME, SLOT)?;
    let opts = UpOptions {
        state_root: state_root.to_path_buf(),
        seed: Some(20261201),
        replace_existing: true,
        ..Default::default()
    };
    let tb = Testbed::up(topo, opts).await?;
    let r = measure(&tb).await;
    tb.down().await?;
    r
}

async fn measure(tb: &Testbed) -> Result<ImpairBench> {
    let mut out = ImpairBench::default();
    let nodes: Vec<Node> = tb.topology.nodes.clone();
    let (a, b) = (&nodes[1], &nodes[2]);
    let (pa, pb) = (tb.pid(a).await?, tb.pid(b).await?);
    let mut port = 48000u16;
    let mut one_way = |count: usize, gap_ms: u64| {
        port += 1;
        let to = SocketAddrV4::new(b.ip, port);
        probe::udp_one_way(pa, pb, to, count, Duration::from_millis(gap_ms))
    };
    out.load_avg_1m.push(load_avg());
    for d in [10u64, 50, 200] {
        tb.delay(&t(a), &t(b), d, 0, Direction::OneWay).await?;
        let r = one_way(400, 5).await?;
        tb.heal().await?;
        out.rows.push(Row {
            asked: format!("delay {d} ms, one way"),
            measure: "one-way delay p50 / p99 (400 datagrams)".into(),
            expected: ms(d as f64),
            measured: format!(
                "{} / {}",
                ms(median(&r.delays_ms)),
                ms(quantile(&r.delays_ms, 0.99))
            ),
        });
    }
    tb.delay(&t(a), &t(b), 50, 20, Direction::OneWay).await?;
    let r = one_way(600, 5).await?;
    tb.heal().await?;
    let s: Summary = summary(&r.delays_ms).context("no datagram arrived")?;
    let mean = r.delays_ms.iter().sum::<f64>() / r.delays_ms.len() as f64;
    let sd = (r.delays_ms.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
        / r.delays_ms.len() as f64)
        .sqrt();
    out.rows.push(Row {
        asked: "delay 50 ms ± 20 ms (uniform), one way".into(),
        measure: "min / median / max, standard deviation (600 datagrams)".into(),
        expected: format!("30 / 50 / 70 ms, sd {:.1} ms", 20.0 / 3f64.sqrt()),
        measured: format!(
            "{:.1} / {:.1} / {:.1} ms, sd {sd:.1} ms",
            s.min, s.median, s.max
        ),
    });
    tb.delay(&t(a), &t(b), 40, 0, Direction::Both).await?;
    let rtt = probe::tcp_rtt(pa, tb.redis_addr(b), 100, Duration::from_millis(2)).await?;
    tb.heal().await?;
    out.rows.push(Row {
        asked: "delay 40 ms, both ways".into(),
        measure: "Redis PING round trip p50 / p99 (100)".into(),
        expected: ms(80.0),
        measured: format!("{} / {}", ms(median(&rtt)), ms(quantile(&rtt, 0.99))),
    });
    for p in [1.0f64, 10.0, 30.0] {
        tb.loss(&t(a), &t(b), p, Direction::OneWay).await?;
        let r = one_way(3000, 1).await?;
        tb.heal().await?;
        out.rows.push(Row {
            asked: format!("loss {p} %, one way"),
            measure: "datagrams lost (3000)".into(),
            expected: format!("{p:.1} %"),
            measured: format!("{:.2} %", r.loss_percent()),
        });
    }
    tb.flap(&t(a), &t(b), 500, 500, Direction::OneWay).await?;
    let r = one_way(2000, 2).await?;
    tb.heal().await?;
    out.rows.push(Row {
        asked: "flap up 500 / down 500 ms, one way".into(),
        measure: "datagrams lost (2000 over ~4 s)".into(),
        expected: "50 %".into(),
        measured: format!("{:.1} %", r.loss_percent()),
    });
    for (kbit, bytes) in [
        (1000u64, 250_000usize),
        (10_000, 2_500_000),
        (100_000, 20_000_000),
    ] {
        tb.rate(&t(b), &t(a), kbit, Direction::OneWay).await?;
        let took = transfer(tb, b, a, bytes).await?;
        tb.heal().await?;
        let want = bytes as f64 * 8.0 / (kbit as f64 * 1000.0);
        out.rows.push(Row {
            asked: format!("rate {} Mbit/s, one way", kbit as f64 / 1000.0),
            measure: format!("a {:.2} MB SET's transfer time", bytes as f64 / 1e6),
            expected: format!("{want:.3} s"),
            measured: format!("{took:.3} s ({:+.1} %)", (took / want - 1.0) * 100.0),
        });
    }
    out.load_avg_1m.push(load_avg());
    // the daemon's CPU at 1000 packets/s through a 10 ms delay
    tb.delay(&t(a), &t(b), 10, 0, Direction::OneWay).await?;
    let pidfile = tb.state_dir.join("impair").join(format!("{}.pid", b.name));
    let dpid: u32 = std::fs::read_to_string(&pidfile)?.trim().parse()?;
    let cpu = |p| probe::cpu_seconds(p).context("the daemon's /proc/PID/stat");
    let (c0, t0) = (cpu(dpid)?, Instant::now());
    let r = one_way(10_000, 1).await?;
    let (c1, dt) = (cpu(dpid)?, t0.elapsed().as_secs_f64());
    tb.heal().await?;
    out.cpu.push(Cpu {
        packets_per_s: r.sent as f64 / dt,
        delay_ms: 10,
        percent_of_a_core: (c1 - c0) / dt * 100.0,
    });
    out.load_avg_1m.push(load_avg());
    Ok(out)
}

/// Seconds for a SET of `bytes` from `from`'s namespace to `to`'s redis.
async fn transfer(tb: &Testbed, from: &Node, to: &Node, bytes: usize) -> Result<f64> {
    let pid = tb.pid(from).await?;
    Ok(probe::tcp_transfer(pid, tb.redis_addr(to), bytes).await?)
}

/// The section's table.
pub fn markdown(b: &ImpairBench) -> String {
    let mut s =
        String::from("#### Impairments: asked vs measured (testbed `bn-imp`, seed 20261201)\n\n");
    s += "| asked | measure | expected | measured |\n|---|---|---|---|\n";
    for r in &b.rows {
        s += &format!(
            "| {} | {} | {} | {} |\n",
            r.asked, r.measure, r.expected, r.measured
        );
    }
    for c in &b.cpu {
        s += &format!(
            "\nThe daemon at {:.0} packets/s through a {} ms delay: **{:.1} %** of one core (user + system, from /proc).\n",
            c.packets_per_s, c.delay_ms, c.percent_of_a_core
        );
    }
    if !b.load_avg_1m.is_empty() {
        let l: Vec<String> = b.load_avg_1m.iter().map(|x| format!("{x:.1}")).collect();
        s += &format!(
            "Load average (1 min) at the start, middle and end: {}.\n",
            l.join(", ")
        );
    }
    s
}
