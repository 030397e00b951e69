//! The same failover with plain processes on loopback: the host's
//! `redis-server` (Debian bookworm's 7.0.15, the version of the image
//! `testbed/redis:7.0`) as 3 servers (ports 7001-7003) and 3 sentinels
//! (`redis-server <conf> --sentinel`, ports 27001-27003) on 127.0.0.1, with
//! the configs the testbed renders (same timings, same pre-declared peers)
//! minus what needs a network of its own (no VIP, no reconfig script).
//!
//! The fault: the master's redis-server is frozen (SIGSTOP) and its sentinel
//! killed (SIGKILL) at the same instant. A killed container is silent to its
//! peers (its namespace loses its interface: no FIN, no RST, pings go
//! unanswered), and so is a frozen process; a SIGKILLed process on a live
//! host instead closes its connections, and Sentinel, told at once,
//! reconnects and pings right away, which starts the down-after clock up to
//! a ping period (1 s) earlier than silence does. The node's sentinel dies
//! with it, as in the testbed, so two sentinels vote in both. The frozen
//! server is killed once the run is over.
//!
//! Invariant: every process this module starts is killed when its
//! [`Cluster`] drops; the pids are also written to `pids` so that a bench
//! killed from outside is cleaned up by the next one ([`kill_leftovers`]).

use super::failover::{
    kill_delay, push_observation, sentinel_debug, switch_timeout, wait_switch, ClientLoop,
    FailoverSample,
};
use anyhow::{bail, Context, Result};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testbed::timeline::{Kind, Timeline};

const MASTER_NAME: &str = "mymaster";
const REDIS_PORTS: [u16; 3] = [7001, 7002, 7003];
const SENTINEL_PORTS: [u16; 3] = [27001, 27002, 27003];
const NODES: [&str; 3] = ["node1", "node2", "node3"];
/// The testbed's default failover timeout.
const FAILOVER_TIMEOUT_MS: u64 = 10_000;

fn addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
}

fn sentinel_id(i: usize) -> String {
    format!("{:040x}", 0xbe_0000 + i)
}

/// `redis-server --version` of the host, e.g. `7.0.15`.
pub fn host_version() -> Option<String> {
    let out = Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .map(str::to_string)
}

/// Fails unless every port is free on 127.0.0.1.
pub fn check_ports() -> Result<()> {
    for p in REDIS_PORTS.iter().chain(&SENTINEL_PORTS) {
        std::net::TcpListener::bind(addr(*p)).with_context(|| {
            format!("127.0.0.1:{p} is busy; the loopback runs need ports 7001-7003 and 27001-27003")
        })?;
    }
    Ok(())
}

/// Kills processes an earlier bench left (pids recorded in `dir/pids`, only
/// those whose command line still names `dir`).
pub fn kill_leftovers(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("pids")) else {
        return;
    };
    let needle = dir.display().to_string();
    let ours = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
    };
    let mut alive = Vec::new();
    for pid in text.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        if ours(pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        // a zombie's cmdline is empty: once it reads empty, it is gone
        if ours(pid) {
            alive.push(pid.to_string());
        }
    }
    // the record goes only with the processes: a kill that failed keeps it
    // for the next run
    if alive.is_empty() {
        let _ = std::fs::remove_file(dir.join("pids"));
    } else {
        eprintln!(
            "bench: loopback processes {} could not be killed; kept in {}",
            alive.join(", "),
            dir.join("pids").display()
        );
    }
}

fn redis_conf(i: usize, dir: &Path) -> String {
    let mut c = format!(
        "port {}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nlogfile \"{}/redis{i}.log\"\ndir {}\n",
        REDIS_PORTS[i],
        dir.display(),
        dir.display()
    );
    c += "save \"\"\nappendonly no\nrepl-diskless-sync-delay 0\n";
    if i != 0 {
        c += &format!("replicaof 127.0.0.1 {}\n", REDIS_PORTS[0]);
    }
    c
}

/// What `render::sentinel_conf` writes for the testbed, on loopback ports.
fn sentinel_conf(i: usize, down_after_ms: u64, dir: &Path) -> String {
    let m = MASTER_NAME;
    let mut c = format!(
        "port {}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nlogfile \"{}/sentinel{i}.log\"\ndir {}\n",
        SENTINEL_PORTS[i],
        dir.display(),
        dir.display()
    );
    c += &format!("sentinel myid {}\n", sentinel_id(i));
    c += &format!("sentinel monitor {m} 127.0.0.1 {} 2\n", REDIS_PORTS[0]);
    c += &format!("sentinel down-after-milliseconds {m} {down_after_ms}\n");
    c += &format!(
        "sentinel failover-timeout {m} {FAILOVER_TIMEOUT_MS}\nsentinel parallel-syncs {m} 1\n"
    );
    for p in &REDIS_PORTS[1..] {
        c += &format!("sentinel known-replica {m} 127.0.0.1 {p}\n");
    }
    for j in (0..3).filter(|j| *j != i) {
        c += &format!(
            "sentinel known-sentinel {m} 127.0.0.1 {} {}\n",
            SENTINEL_PORTS[j],
            sentinel_id(j)
        );
    }
    c
}

/// The six processes of one run.
struct Cluster {
    dir: PathBuf,
    /// redis 0..3, then sentinels 0..3.
    procs: Vec<Option<Child>>,
}

impl Cluster {
    fn start(dir: &Path, down_after_ms: u64) -> Result<Cluster> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir)?;
        let mut c = Cluster {
            dir: dir.to_path_buf(),
            procs: Vec::new(),
        };
        for i in 0..3 {
            let conf = dir.join(format!("redis{i}.conf"));
            std::fs::write(&conf, redis_conf(i, dir))?;
            c.spawn(&conf, false)?;
        }
        for i in 0..3 {
            let conf = dir.join(format!("sentinel{i}.conf"));
            std::fs::write(&conf, sentinel_conf(i, down_after_ms, dir))?;
            c.spawn(&conf, true)?;
        }
        Ok(c)
    }

    fn spawn(&mut self, conf: &Path, sentinel: bool) -> Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.arg(conf);
        if sentinel {
            cmd.arg("--sentinel");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the host's redis-server (Debian package redis-server)")?;
        let pids = self.dir.parent().unwrap_or(&self.dir).join("pids");
        let mut line = child.id().to_string();
        line.push('\n');
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&pids)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .with_context(|| format!("recording pids in {}", pids.display()))?;
        self.procs.push(Some(child));
        Ok(())
    }

    /// SIGSTOP of process `k` (killed with the others on drop).
    fn freeze(&mut self, k: usize) -> Result<()> {
        let pid = self.procs[k].as_ref().context("no such process")?.id();
        let st = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()?;
        anyhow::ensure!(st.success(), "kill -STOP {pid} failed");
        Ok(())
    }

    /// SIGKILL of process `k`.
    fn kill(&mut self, k: usize) {
        if let Some(mut c) = self.procs[k].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for k in 0..self.procs.len() {
            self.kill(k);
        }
        // removes the pid record only when every recorded process is gone
        kill_leftovers(self.dir.parent().unwrap_or(&self.dir));
    }
}

/// Every health condition of the testbed minus the VIP: replicas linked,
/// every sentinel sees the master, 2 healthy replicas and 2 healthy peers.
async fn healthy() -> Result<(), String> {
    use testbed::client;
    let mut missing = Vec::new();
    match client::info(addr(REDIS_PORTS[0]), None, "replication").await {
        Ok(i) if i.get("connected_slaves").map(String::as_str) == Some("2") => {}
        r => missing.push(format!("master with 2 replicas ({r:?})")),
    }
    for p in &REDIS_PORTS[1..] {
        match client::info(addr(*p), None, "replication").await {
            Ok(i) if i.get("master_link_status").map(String::as_str) == Some("up") => {}
            _ => missing.push(format!("replica {p} linked")),
        }
    }
    for p in SENTINEL_PORTS {
        let a = addr(p);
        let m = client::sentinel_master(a, MASTER_NAME).await;
        let r = client::sentinel_list(a, "REPLICAS", MASTER_NAME).await;
        let s = client::sentinel_list(a, "SENTINELS", MASTER_NAME).await;
        let ok = match (m, r, s) {
            (Ok(m), Ok(r), Ok(s)) => {
                let get = |k: &str| m.get(k).map(String::as_str).unwrap_or("?");
                let flags = |l: &[std::collections::BTreeMap<String, String>], f: &str| {
                    l.len() == 2
                        && l.iter()
                            .all(|i| i.get("flags").map(String::as_str) == Some(f))
                };
                get("flags") == "master"
                    && get("port") == REDIS_PORTS[0].to_string()
                    && flags(&r, "slave")
                    && flags(&s, "sentinel")
            }
            _ => false,
        };
        if !ok {
            missing.push(format!("sentinel {p} healthy"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

fn sentinel_client() -> Result<redis::sentinel::SentinelClient> {
    let sentinels: Vec<_> = SENTINEL_PORTS.iter().map(|p| addr(*p)).collect();
    Ok(testbed::client::sentinel_client(
        &sentinels,
        MASTER_NAME,
        None,
        Duration::from_millis(500),
    )?)
}

/// One loopback failover at `down_after_ms`, in `dir` (removed after).
pub async fn loopback_run(
    dir: &Path,
    down_after_ms: u64,
    debug: &[(String, u32)],
    setting: &str,
    index: usize,
) -> FailoverSample {
    match run(dir, down_after_ms, debug, setting, index).await {
        Ok(s) => s,
        Err(e) => FailoverSample::failed(setting, index, &e),
    }
}

async fn run(
    dir: &Path,
    down_after_ms: u64,
    debug: &[(String, u32)],
    setting: &str,
    index: usize,
) -> Result<FailoverSample> {
    let started = std::time::Instant::now();
    let mut cluster = Cluster::start(dir, down_after_ms)?;
    let tl = Timeline::new();
    let sentinels: Vec<SocketAddrV4> = SENTINEL_PORTS.iter().map(|p| addr(*p)).collect();
    for (i, a) in sentinels.iter().enumerate() {
        tl.subscribe(NODES[i], *a);
        // as `Testbed::up` does: a 100 ms ping period until healthy, so that
        // a sentinel that found a peer's port closed retries within 100 ms
        testbed::wait::until(
            "a loopback sentinel to answer",
            Duration::from_secs(10),
            Duration::from_millis(10),
            || async {
                testbed::client::query::<String>(*a, None, &redis::cmd("PING"))
                    .await
                    .map_err(|e| e.to_string())
            },
        )
        .await?;
    }
    let ping = |ms: u32| vec![("ping-period".to_string(), ms)];
    sentinel_debug(&sentinels, &ping(100)).await?;
    testbed::wait::until(
        "the loopback cluster to be healthy",
        Duration::from_secs(30),
        testbed::wait::POLL,
        healthy,
    )
    .await?;
    sentinel_debug(&sentinels, &ping(1000)).await?;
    sentinel_debug(&sentinels, debug).await?;
    let up_ms = started.elapsed().as_secs_f64() * 1000.0;
    let client = ClientLoop::start(sentinel_client()?, tl.clone());
    client.wait_first_ok(Duration::from_secs(5)).await?;
    tokio::time::sleep(kill_delay(index)).await;
    let t0 = tl.record(
        Kind::Action,
        "testbed",
        "freeze",
        "node1: redis-server SIGSTOP, sentinel SIGKILL",
    );
    cluster.freeze(0)?;
    cluster.kill(3);
    let live: Vec<String> = NODES[1..].iter().map(|s| s.to_string()).collect();
    let timeout = switch_timeout(FAILOVER_TIMEOUT_MS, down_after_ms);
    let new_ip_port = wait_switch(&tl, &live, t0, timeout).await;
    let rec = client.wait_recovered(t0, Duration::from_secs(10)).await;
    let (writes, failed) = client.stop().await;
    tl.stop();
    new_ip_port?;
    let mut events = tl.events();
    let new_master = events
        .iter()
        .find(|e| e.t_ms >= t0 && e.name == "+switch-master")
        .and_then(|e| e.detail.split_whitespace().nth(4).map(str::to_string))
        .map(|port| format!("127.0.0.1:{port}"));
    push_observation(
        &mut events,
        "client-recovered",
        rec,
        "sentinel-aware client",
    );
    let phases = testbed::phases::phases(
        &format!("{setting}#{index}"),
        "host redis-server (loopback)",
        down_after_ms,
        &events,
        t0,
    );
    if phases.switch_all_ms.is_none() {
        bail!("no +switch-master after the kill");
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(dir);
    Ok(FailoverSample {
        setting: setting.to_string(),
        index,
        phases: Some(phases),
        up_ms: Some(up_ms),
        kill_delay_ms: kill_delay(index).as_secs_f64() * 1000.0,
        vip_oracle_ms: None,
        failed_elections: super::failover::count(&events, "-failover-abort-not-elected", t0),
        new_master,
        client_writes: writes,
        client_failed: failed,
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_conf_declares_peers_like_the_testbed() {
        let c = sentinel_conf(1, 2000, Path::new("/x"));
        assert!(c.contains("sentinel monitor mymaster 127.0.0.1 7001 2\n"));
        assert!(c.contains("sentinel known-replica mymaster 127.0.0.1 7002\n"));
        assert!(c.contains(&format!(
            "sentinel known-sentinel mymaster 127.0.0.1 27001 {}\n",
            sentinel_id(0)
        )));
        assert!(!c.contains("27002 "), "{c}");
        assert_eq!(sentinel_id(2).len(), 40);
    }
}
