//! `doctor --fix`: the packages the testbed shells out to, the pinned
//! redis-py, and a Docker engine started when none answers.

use super::*;
use crate::backend::host;
use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Packages `fix` installs when missing.
pub(super) const PACKAGES: &[&str] = &[
    "docker.io",
    "debootstrap",
    "busybox-static",
    "iproute2",
    "util-linux",
    "iptables",
    "docker-compose",
    "redis-tools",
    // ping from the nodes' namespaces (the impairment tests and bench)
    "iputils-ping",
    // the bench's loopback contender: the same Redis as plain processes
    "redis-server",
    // what builds the client image of `cargo xtask clients`
    "npm",
    "python3-pip",
];

/// Installs the pinned redis-py with pip (a Debian python3 marked
/// externally managed needs `--break-system-packages`).
pub(super) async fn install_redis_py(progress: &Progress) -> Result<()> {
    let pin = format!("redis=={REDIS_PY}");
    progress.step(format!("python3 -m pip install {pin}"));
    let base = [
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        pin.as_str(),
    ];
    if host::run_async("python3", &base).await.is_ok() {
        return Ok(());
    }
    let mut args = base.to_vec();
    args.push("--break-system-packages");
    host::run_async("python3", &args).await.map(drop)
}

pub(super) fn dpkg_installed(package: &str) -> bool {
    host::run("dpkg-query", &["-W", "-f", "${Status}", package])
        .is_ok_and(|s| s.trim_end().ends_with(" installed"))
}

/// Installs what is missing (apt) and starts dockerd if no engine answers.
pub async fn fix(log_dir: &Path) -> Result<()> {
    let progress = Progress::new("doctor --fix");
    let by_hand = format!(
        "install by hand: {} (Debian package names), then start dockerd",
        PACKAGES.join(" ")
    );
    if host::which("apt-get").is_none() {
        return Err(Error::Prerequisite {
            what: "automatic fixing needs a Debian-family host (apt-get)".into(),
            hint: by_hand,
        });
    }
    if !host::is_root() {
        return Err(Error::Prerequisite {
            what: "automatic fixing needs root (apt-get, dockerd)".into(),
            hint: format!("rerun as root, or {by_hand}"),
        });
    }
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        // A host with docker-ce or a compose plugin from elsewhere keeps it:
        // docker.io would conflict with docker-ce.
        .filter(|p| !(*p == "docker.io" && host::which("dockerd").is_some()))
        .filter(|p| !(*p == "docker-compose" && crate::backend::compose_cli::detect().is_ok()))
        // an npm or a pip from elsewhere (nodesource, pyenv) serves as well
        .filter(|p| !(*p == "npm" && host::which("npm").is_some()))
        .filter(|p| {
            !(*p == "python3-pip" && host::run("python3", &["-m", "pip", "--version"]).is_ok())
        })
        .filter(|p| !dpkg_installed(p))
        .collect();
    if !missing.is_empty() {
        progress.step(format!(
            "apt-get update, then install {}",
            missing.join(" ")
        ));
        host::run_async("apt-get", &["update"]).await?;
        let mut args = vec![
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
        ];
        args.extend_from_slice(&missing);
        host::run_async("env", &args).await?;
    }
    if crate::backend::docker::connect().await.is_err() {
        start_dockerd(log_dir, &progress).await?;
    }
    if host::which("python3").is_some() && redis_py_check().is_err() {
        install_redis_py(&progress).await?;
    }
    progress.done("prerequisites fixed");
    Ok(())
}

/// Starts dockerd detached (own process group, so a Ctrl-C aimed at this
/// command does not reach it; no pipes to us) so it outlives this process,
/// then waits until it answers.
pub(super) async fn start_dockerd(log_dir: &Path, progress: &Progress) -> Result<()> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(log_dir).map_err(|e| Error::io(log_dir, e))?;
    let log_path = log_dir.join("dockerd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::io(&log_path, e))?;
    let log2 = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
    progress.step(format!("starting dockerd (log: {})", log_path.display()));
    // The default bridge would take 172.17.0.0/16 and later networks more of
    // 172.16/12: the bridge address and the pool keep every address docker
    // hands out inside 198.19.0.0/16 (RFC 2544 benchmarking space), beside the
    // testbed's own 198.18.0.0/16, so nothing collides with a real network.
    let args = [
        "--bip",
        "198.19.255.1/24",
        "--default-address-pool",
        "base=198.19.128.0/17,size=24",
    ];
    let mut child = std::process::Command::new("dockerd")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::command("dockerd", format!("cannot start: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if crate::backend::docker::connect().await.is_ok() {
            progress.step("dockerd answers");
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::command(
                format!("dockerd {}", args.join(" ")),
                format!("exited with {status}; see {}", log_path.display()),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: "dockerd to answer".into(),
                elapsed_ms: 60_000,
                missing: format!(
                    "engine ping (dockerd still running; see {})",
                    log_path.display()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
