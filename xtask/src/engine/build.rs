//! The engine's root: debootstrap of the suite with [`PACKAGES`], cached;
//! an interrupted build never counts.

use super::mounts::{remove_tree, tail_of, unmount_under};
use super::{Clock, Engine, CACHE_ROOT, PACKAGES};
use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Builds the root of `e` unless it is cached; returns whether it built.
pub(super) async fn ensure_root(e: &Engine, clock: &mut Clock) -> Result<bool> {
    if e.is_built() {
        clock.step(format!("cached root {}", e.root().display()));
        return Ok(false);
    }
    ensure!(
        testbed::host::which("debootstrap").is_some(),
        "debootstrap is needed to build the engine's root: `apt-get install debootstrap` (or `cargo xtask doctor --fix`)"
    );
    std::fs::create_dir_all(CACHE_ROOT).with_context(|| format!("creating {CACHE_ROOT}"))?;
    let lock = std::fs::File::create(e.lock_file())?;
    if lock.try_lock().is_err() {
        eprintln!(
            "engine: another build of {} is running; waiting for it",
            e.suite
        );
        let l = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock)).await??;
        drop(l);
        ensure!(e.is_built(), "the other build of {} failed", e.suite);
        clock.step("built by another process");
        return Ok(false);
    }
    if e.is_built() {
        return Ok(false);
    }
    // Leftovers of interrupted builds (and an incomplete final folder).
    for stale in stale_builds(e)? {
        eprintln!("engine: removing an interrupted build {}", stale.display());
        remove_tree(&stale)?;
    }
    let tmp = Path::new(CACHE_ROOT).join(format!("engine-{}.tmp-{}", e.suite, std::process::id()));
    let root = tmp.join("root");
    std::fs::create_dir_all(&root)?;
    let mirror = testbed::image::mirror();
    let include = format!("--include={}", PACKAGES.join(","));
    let root_s = root.display().to_string();
    let log = tmp.join("debootstrap.log");
    eprintln!(
        "engine: debootstrap --variant=minbase {include} {} {root_s} {mirror} (log: {})",
        e.suite,
        log.display()
    );
    let out = std::fs::File::create(&log)?;
    let status = tokio::process::Command::new("debootstrap")
        .args(["--variant=minbase", &include, &e.suite, &root_s, &mirror])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .status()
        .await
        .context("starting debootstrap")?;
    // debootstrap mounts proc/sys in the target; never leave one mounted.
    unmount_under(&[&tmp])?;
    if !status.success() {
        let tail = tail_of(&log, 15);
        bail!(
            "debootstrap {} failed ({status}); the partial build stays in {} until the next try removes it. Last lines of {}:\n{tail}",
            e.suite,
            tmp.display(),
            log.display()
        );
    }
    clock.step(format!("debootstrap {}", e.suite));
    let versions = package_versions(&root)?;
    std::fs::write(tmp.join("versions.txt"), &versions)?;
    let all = testbed::host::run(
        "chroot",
        &[
            &root_s,
            "dpkg-query",
            "-W",
            "-f",
            "${Package}=${Version}\\n",
        ],
    )?;
    std::fs::write(tmp.join("packages.txt"), all)?;
    std::fs::rename(&tmp, &e.cache)
        .with_context(|| format!("renaming {} to {}", tmp.display(), e.cache.display()))?;
    clock.step(format!(
        "root complete: {}\n{}",
        e.root().display(),
        versions.trim_end()
    ));
    Ok(true)
}

/// Folders of builds that never completed: `engine-SUITE.tmp-*`, and a
/// final folder without its versions file.
pub(super) fn stale_builds(e: &Engine) -> Result<Vec<PathBuf>> {
    let prefix = format!("engine-{}.tmp-", e.suite);
    let mut out = Vec::new();
    for d in std::fs::read_dir(CACHE_ROOT)? {
        let p = d?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        {
            out.push(p);
        }
    }
    if e.cache.exists() && !e.is_built() {
        out.push(e.cache.clone());
    }
    Ok(out)
}

/// `Package=Version` of [`PACKAGES`], then what the binaries say.
fn package_versions(root: &Path) -> Result<String> {
    let r = root.display().to_string();
    let mut args = vec![
        r.as_str(),
        "dpkg-query",
        "-W",
        "-f",
        "${Package}=${Version}\\n",
    ];
    args.extend_from_slice(PACKAGES);
    let mut out = testbed::host::run("chroot", &args)?;
    for (bin, arg) in [
        ("/usr/sbin/dockerd", "--version"),
        ("/usr/bin/docker-compose", "version"),
    ] {
        if let Ok(v) = testbed::host::run("chroot", &[&r, bin, arg]) {
            let _ = writeln!(
                out,
                "# {bin} {arg}: {}",
                v.lines().next().unwrap_or("").trim()
            );
        }
    }
    Ok(out)
}

/// Whether a `versions.txt` names exactly `packages` (its `name=version`
/// lines; `#` lines are what the binaries said).
pub(super) fn lists_packages(versions: &str, packages: &[&str]) -> bool {
    let mut got: Vec<&str> = versions
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('=').map(|(p, _)| p.trim()))
        .collect();
    let mut want = packages.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    got == want
}
