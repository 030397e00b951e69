//! Stopping the engine and removing everything of it but the cached root
//! (and that too with `--purge`).

use super::build::stale_builds;
use super::mounts::{mounts_under, remove_tree, unmount_under};
use super::start::{cgroup_dirs, link_alias, link_exists};
use super::{answering, Clock, Engine, CACHE_ROOT, RUN_ROOT, STOP_GRACE};
use anyhow::{ensure, Result};
use bollard::Docker;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub async fn down(e: &Engine, purge: bool) -> Result<()> {
    ensure!(testbed::host::is_root(), "the engine needs root");
    let mut clock = Clock::new();
    stop(e, true).await?;
    clock.step("stopped, unmounted, runtime folder removed");
    if purge {
        if Path::new(CACHE_ROOT).exists() {
            for p in stale_builds(e)? {
                remove_tree(&p)?;
            }
        }
        if e.cache.exists() {
            remove_tree(&e.cache)?;
        }
        for f in [e.log(), e.lock_file()] {
            let _ = std::fs::remove_file(f);
        }
        clock.step(format!("purged {}", e.cache.display()));
    }
    Ok(())
}

/// Stops everything of `e` that runs and undoes every mount; idempotent.
/// `report`: print what it found.
pub(super) async fn stop(e: &Engine, report: bool) -> Result<()> {
    let say = |m: String| {
        if report {
            eprintln!("engine: {m}");
        }
    };
    let docker0_before = std::fs::read_to_string(e.docker0_file()).ok();
    // 1. Containers and networks first, while the engine answers: it is
    // private to the testbed, and nothing of it should outlive it.
    if let Some(d) = answering(e).await {
        let (c, n) = clean_engine(&d).await;
        if !c.is_empty() || !n.is_empty() {
            say(format!("removed containers {c:?}, networks {n:?}"));
        }
    }
    // 2. dockerd: SIGTERM, then SIGKILL after a bound.
    if let Some(pid) = recorded_pid(e) {
        if is_ours(e, pid) {
            signal(pid, "TERM");
            let t = Instant::now();
            while alive(pid) && t.elapsed() < STOP_GRACE {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if alive(pid) {
                say(format!(
                    "dockerd {pid} still alive after {STOP_GRACE:?}: SIGKILL"
                ));
                signal(pid, "KILL");
            } else {
                say(format!(
                    "dockerd {pid} exited {:.2} s after SIGTERM",
                    t.elapsed().as_secs_f64()
                ));
            }
        }
    }
    // 3. Whatever is left: in its cgroups (containerd, shims, containers)
    // or in its mount namespace.
    let ns = std::fs::read_to_string(e.mntns_file())
        .ok()
        .map(|s| s.trim().to_string());
    let t = Instant::now();
    loop {
        let mut left = cgroup_pids(e);
        if let Some(ns) = &ns {
            left.extend(pids_in_mntns(ns));
        }
        left.sort_unstable();
        left.dedup();
        left.retain(|p| alive(*p));
        if left.is_empty() {
            break;
        }
        ensure!(
            t.elapsed() < Duration::from_secs(15),
            "processes of the engine survive SIGKILL: {left:?}"
        );
        say(format!("SIGKILL to leftover processes {left:?}"));
        for p in &left {
            signal(*p, "KILL");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    remove_cgroups(e);
    if link_alias(&e.bridge()).is_some_and(|a| a == e.bridge_alias()) {
        testbed::host::run("ip", &["link", "del", &e.bridge()])?;
        say(format!("removed the engine's bridge {}", e.bridge()));
    }
    // 4. Mounts the host sees under the root or the runtime folder (none,
    // normally: they live and die with the private namespace).
    let root = e.root();
    let n = unmount_under(&[&root, &e.run])?;
    if n > 0 {
        say(format!("unmounted {n} leftover mount(s)"));
    }
    let still = mounts_under(&[&root, &e.run])?;
    ensure!(still.is_empty(), "still mounted after unmount: {still:?}");
    // 5. Placeholders made in the cached root, the runtime folder.
    if let Ok(list) = std::fs::read_to_string(e.placeholders_file()) {
        for p in list.lines().rev().filter(|l| !l.is_empty()) {
            let p = Path::new(p);
            if p.is_dir() {
                let _ = std::fs::remove_dir(p);
            } else if std::fs::metadata(p).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    if e.run.exists() {
        std::fs::remove_dir_all(&e.run)?;
    }
    let _ = std::fs::remove_dir(RUN_ROOT);
    if docker0_before.as_deref().map(str::trim) == Some("present") && !link_exists("docker0") {
        eprintln!(
            "engine: WARNING: the host engine's docker0 bridge existed when this engine started and is gone now; containers on Docker's default bridge will fail (\"could not find bridge docker0\") until the host's dockerd is restarted"
        );
    } else if docker0_before.is_some() {
        say(format!(
            "docker0: {} (was {})",
            if link_exists("docker0") {
                "present"
            } else {
                "absent"
            },
            docker0_before.unwrap_or_default().trim()
        ));
    }
    Ok(())
}

/// Removes every container and user network of a private engine.
async fn clean_engine(d: &Docker) -> (Vec<String>, Vec<String>) {
    use bollard::query_parameters::{
        ListContainersOptionsBuilder, ListNetworksOptions, RemoveContainerOptionsBuilder,
    };
    let mut cs = Vec::new();
    if let Ok(list) = d
        .list_containers(Some(
            ListContainersOptionsBuilder::default().all(true).build(),
        ))
        .await
    {
        for c in list {
            let name = c
                .names
                .and_then(|n| n.first().cloned())
                .unwrap_or_else(|| c.id.clone().unwrap_or_default());
            let opts = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            if d.remove_container(c.id.as_deref().unwrap_or_default(), Some(opts))
                .await
                .is_ok()
            {
                cs.push(name);
            }
        }
    }
    let mut ns = Vec::new();
    if let Ok(list) = d.list_networks(None::<ListNetworksOptions>).await {
        for n in list {
            let name = n.name.unwrap_or_default();
            if ["bridge", "host", "none"].contains(&name.as_str()) {
                continue;
            }
            if d.remove_network(&name).await.is_ok() {
                ns.push(name);
            }
        }
    }
    (cs, ns)
}

pub(super) fn recorded_pid(e: &Engine) -> Option<u32> {
    std::fs::read_to_string(e.pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether `pid` is still the process this module started (not a reused pid).
pub(super) fn is_ours(e: &Engine, pid: u32) -> bool {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
    cmd.contains("dockerd") && cmd.contains("/run/sock/docker.sock")
        || cmd.contains(&e.run.display().to_string())
}

/// Alive and not a zombie.
pub(super) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

pub(super) fn cgroup_pids(e: &Engine) -> Vec<u32> {
    fn walk(d: &Path, out: &mut Vec<u32>) {
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
            out.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(rd) = std::fs::read_dir(d) {
            for x in rd.flatten() {
                if x.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&x.path(), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    for d in cgroup_dirs(e) {
        walk(&d, &mut out);
    }
    out
}

fn remove_cgroups(e: &Engine) {
    fn rm(d: &Path) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for x in rd.flatten() {
                if x.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&x.path());
                }
            }
        }
        let _ = std::fs::remove_dir(d);
    }
    for d in cgroup_dirs(e) {
        rm(&d);
        if let Some(top) = d.parent() {
            let _ = std::fs::remove_dir(top);
        }
    }
}

fn pids_in_mntns(ns: &str) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for d in rd.flatten() {
            let Some(pid) = d.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if std::fs::read_link(d.path().join("ns/mnt"))
                .is_ok_and(|l| l.display().to_string() == ns)
            {
                out.push(pid);
            }
        }
    }
    out
}
