//! Building a catalog image: debootstrap into a rootfs, slim it, tar it and
//! import it through the API with its labels (package versions, the recipe
//! hash), holding a lock file per image.

use super::{inspect, split_reference, ImageInfo, ImageSpec, LABEL_SPEC};
use crate::backend::docker::LABEL_IMAGE;
use crate::backend::host;
use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use bollard::query_parameters::{CreateImageOptionsBuilder, RemoveImageOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use std::fs::File;
use std::path::Path;

/// Builds `spec` holding a per-image lock file, so parallel tests and other
/// processes wait for one build instead of racing on the same rootfs.
/// `replaces`: the id of the image of another recipe this build replaces
/// (removed afterwards unless a container still uses it).
pub(super) async fn build_locked(
    docker: &Docker,
    spec: &ImageSpec,
    cache_dir: &Path,
    replaces: Option<&str>,
) -> Result<ImageInfo> {
    let progress = Progress::new(spec.name);
    if host::which("debootstrap").is_none() {
        return Err(Error::Prerequisite {
            what: format!("debootstrap is needed to build {} offline", spec.name),
            hint: "run `cargo xtask doctor --fix` (or `apt-get install debootstrap`)".into(),
        });
    }
    if !host::is_root() {
        return Err(Error::Prerequisite {
            what: format!("building {} (debootstrap, chroot) needs root", spec.name),
            hint: "run as root, e.g. `sudo -E cargo xtask image`".into(),
        });
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let lock_path = cache_dir.join(format!("{}.lock", spec.name.replace(['/', ':'], "_")));
    let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    let lock = match lock.try_lock() {
        Ok(()) => lock,
        Err(std::fs::TryLockError::WouldBlock) => {
            progress.step("another build of this image is running; waiting for it");
            let p = lock_path.clone();
            tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
                .await
                .map_err(|e| Error::State(format!("lock task failed: {e}")))?
                .map_err(|e| Error::io(p, e))?
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
    };
    // Whoever held the lock before us may have built it meanwhile.
    if let Some(info) = inspect(docker, spec.name).await? {
        if spec.built_by(&info) {
            progress.done("built by another builder");
            return Ok(info);
        }
    }
    let rootfs = cache_dir.join(format!("rootfs-{}-{}", spec.suite, spec.product));
    let tarball = cache_dir.join(format!("rootfs-{}-{}.tar", spec.suite, spec.product));
    // Leftovers of an interrupted build: never reuse a half-made rootfs.
    if rootfs.exists() || tarball.exists() {
        progress.step("removing the leftovers of an interrupted build");
    }
    remove_rootfs(&rootfs, &tarball).await?;
    let result = build(docker, spec, &rootfs, &tarball, &progress).await;
    let cleanup = remove_rootfs(&rootfs, &tarball).await;
    drop(lock);
    let info = result?;
    cleanup?;
    progress.done(format!("{} ({} MB)", info.id, info.size_bytes / 1_000_000));
    if let Some(old) = replaces.filter(|old| *old != info.id) {
        // Without force: an image a container still runs stays (untagged).
        let opts = RemoveImageOptionsBuilder::new().build();
        if let Err(e) = docker.remove_image(old, Some(opts), None).await {
            progress.warn(format!("the image it replaces, {old}, stays: {e}"));
        }
    }
    Ok(info)
}

async fn build(
    docker: &Docker,
    spec: &ImageSpec,
    rootfs: &Path,
    tarball: &Path,
    progress: &Progress,
) -> Result<ImageInfo> {
    let mirror = super::mirror();
    progress.step(format!("debootstrap {} from {mirror}", spec.suite));
    let root = rootfs.to_string_lossy().into_owned();
    let include = format!("--include={}", spec.packages.join(","));
    let args = ["--variant=minbase", &include, spec.suite, &root, &mirror];
    debootstrap(&args, progress).await?;

    progress.step("slimming the rootfs");
    slim(rootfs).await?;

    let mut query = vec![
        root.as_str(),
        "dpkg-query",
        "-W",
        "-f",
        "${Package}=${Version}\\n",
    ];
    query.extend_from_slice(spec.packages);
    let versions = host::run_async("chroot", &query).await?;
    let packages: Vec<&str> = versions
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    progress.step(format!("installed {}", packages.join(" ")));

    let tar = tarball.to_string_lossy().into_owned();
    // Keep file capabilities (iputils may rely on them); numeric owners so the
    // host's user database cannot remap anything.
    let tar_args = [
        "--xattrs",
        "--xattrs-include=security.capability",
        "--numeric-owner",
    ];
    let mut args: Vec<&str> = tar_args.to_vec();
    args.extend_from_slice(&["-C", &root, "-cf", &tar, "."]);
    host::run_async("tar", &args).await?;
    let size = std::fs::metadata(tarball)
        .map_err(|e| Error::io(tarball, e))?
        .len();
    progress.step(format!(
        "importing the rootfs ({} MB tar)",
        size / 1_000_000
    ));

    let labels = [
        (LABEL_IMAGE.to_string(), spec.name.to_string()),
        (format!("{LABEL_IMAGE}.suite"), spec.suite.to_string()),
        (format!("{LABEL_IMAGE}.packages"), packages.join(",")),
        (LABEL_SPEC.to_string(), spec.hash()),
        (
            format!("{LABEL_IMAGE}.built"),
            crate::utc::utc_iso(std::time::SystemTime::now()),
        ),
    ];
    let mut changes: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("LABEL {}={}", quote(k), quote(v)))
        .collect();
    // A harmless default: the image's job is decided by each container's command.
    changes.push(format!("CMD [\"{}-server\", \"--version\"]", spec.product));
    let imported = match import(docker, spec.name, tarball, changes).await {
        Ok(()) => inspect(docker, spec.name).await.and_then(|i| {
            i.ok_or_else(|| {
                Error::State(format!("image {} is missing right after import", spec.name))
            })
        }),
        Err(e) => Err(e),
    };
    match imported {
        Ok(info) => Ok(info),
        // Never leave an image that callers would take as complete (an
        // import cut short may have created the tag).
        Err(e) => Err(match remove_image(docker, spec.name).await {
            Ok(()) => e,
            Err(undo) => Error::State(format!(
                "{e}; removing the half-imported image failed too: {undo}\n  hint: `docker rmi -f {}`",
                spec.name
            )),
        }),
    }
}

/// Removes image `name`; one that does not exist is fine.
async fn remove_image(docker: &Docker, name: &str) -> Result<()> {
    let opts = RemoveImageOptionsBuilder::new().force(true).build();
    match docker.remove_image(name, Some(opts), None).await {
        Ok(_)
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(Error::docker(format!("remove image {name}"), e)),
    }
}

/// Streams `tarball` into `POST /images/create?fromSrc=-` (what `docker
/// import` does), reading it in 1 MiB chunks rather than into memory.
pub(crate) async fn import(
    docker: &Docker,
    name: &str,
    tarball: &Path,
    changes: Vec<String>,
) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let (repo, tag) = split_reference(name);
    let opts = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(changes)
        .build();
    let file = tokio::fs::File::open(tarball)
        .await
        .map_err(|e| Error::io(tarball, e))?;
    let chunks = futures_util::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buf = vec![0u8; 1 << 20];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf.into()), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let body = bollard::body_try_stream(chunks);
    let mut stream = docker.create_image(Some(opts), Some(body), None);
    while let Some(item) = stream.next().await {
        item.map_err(|e| Error::docker(format!("import {name}"), e))?;
    }
    Ok(())
}

/// debootstrap's phase lines worth showing (it prints one line per package too).
const PHASES: &[&str] = &[
    "Retrieving Packages",
    "Resolving dependencies of base",
    "Installing core packages",
    "Unpacking the base system",
    "Configuring the base system",
    "Base system installed",
];

/// Runs debootstrap, turning its phase lines into progress steps and keeping
/// the last lines of output for the error message.
pub(crate) async fn debootstrap(args: &[&str], progress: &Progress) -> Result<()> {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};
    let line = format!("debootstrap {}", args.join(" "));
    let mut child = tokio::process::Command::new("debootstrap")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::command(&line, format!("cannot start: {e}")))?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::command(&line, "no stdout/stderr pipe"));
    };
    let (mut out, mut err) = (BufReader::new(out).lines(), BufReader::new(err).lines());
    let mut tail = std::collections::VecDeque::new();
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let next = tokio::select! {
            l = out.next_line(), if out_open => l.map(|l| l.or_else(|| { out_open = false; None })),
            l = err.next_line(), if err_open => l.map(|l| l.or_else(|| { err_open = false; None })),
        };
        let Some(l) = next.map_err(|e| Error::command(&line, format!("reading output: {e}")))?
        else {
            continue;
        };
        tracing::debug!(target: "testbed::debootstrap", "{l}");
        let msg = l.strip_prefix("I: ").unwrap_or(&l).trim_end();
        if PHASES.iter().any(|p| msg.starts_with(p)) {
            progress.step(msg);
        }
        if tail.len() == 15 {
            tail.pop_front();
        }
        tail.push_back(l);
    }
    let status = child
        .wait()
        .await
        .map_err(|e| Error::command(&line, e.to_string()))?;
    if !status.success() {
        let tail: Vec<String> = tail.into_iter().collect();
        return Err(Error::command(
            line,
            format!("{status}; last output:\n{}", tail.join("\n")),
        ));
    }
    Ok(())
}

/// Removes what containers never need: docs (but not the copyright files),
/// man pages, translations, apt's lists and caches, logs, and the host's
/// hostname/resolv.conf that debootstrap copied in (docker mounts its own).
pub(crate) async fn slim(rootfs: &Path) -> Result<()> {
    let existing = |dirs: &str| -> Vec<String> {
        dirs.split_whitespace()
            .map(|d| rootfs.join(d))
            .filter(|d| d.is_dir())
            .map(|d| d.to_string_lossy().into_owned())
            .collect()
    };
    let emptied = existing(
        "usr/share/man usr/share/info usr/share/locale usr/share/lintian \
         var/lib/apt/lists var/cache/apt var/cache/debconf var/log",
    );
    // -depth: children go before their (then empty) directory.
    find(&emptied, "-mindepth 1 -depth -delete").await?;
    let doc = existing("usr/share/doc");
    find(&doc, "-mindepth 1 ! -type d ! -name copyright -delete").await?;
    find(&doc, "-mindepth 1 -depth -type d -empty -delete").await?;
    for file in ["etc/hostname", "etc/resolv.conf"] {
        let p = rootfs.join(file);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(p, e)),
            _ => {}
        }
    }
    Ok(())
}

/// `find START... EXPR`; nothing at all without a start path (find would
/// then work on the current directory).
async fn find(start: &[String], expr: &str) -> Result<()> {
    if start.is_empty() {
        return Ok(());
    }
    let mut args: Vec<&str> = start.iter().map(String::as_str).collect();
    args.extend(expr.split_whitespace());
    host::run_async("find", &args).await.map(drop)
}

/// Removes a rootfs and its tarball. debootstrap mounts /proc and /sys inside
/// the target while it works; a killed run leaves them mounted, and deleting
/// recursively through a mounted /sys must never happen, so unmount first.
pub(crate) async fn remove_rootfs(rootfs: &Path, tarball: &Path) -> Result<()> {
    let (rootfs, tarball) = (rootfs.to_path_buf(), tarball.to_path_buf());
    // Deleting ~100k files takes seconds: keep it off the async workers.
    tokio::task::spawn_blocking(move || remove_rootfs_blocking(&rootfs, &tarball))
        .await
        .map_err(|e| Error::State(format!("cleanup task failed: {e}")))?
}

fn remove_rootfs_blocking(rootfs: &Path, tarball: &Path) -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("/proc/self/mountinfo", e))?;
    let mut below: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(rootfs))
        .collect();
    below.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in below {
        host::run("umount", &["-l", m])?;
    }
    if rootfs.exists() {
        std::fs::remove_dir_all(rootfs).map_err(|e| Error::io(rootfs, e))?;
    }
    match std::fs::remove_file(tarball) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(tarball, e)),
        _ => Ok(()),
    }
}

/// A Dockerfile-style double-quoted string (`$` would start a variable).
pub(crate) fn quote(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{}\"", escaped.replace('$', "\\$"))
}
