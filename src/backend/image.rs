//! The container images the testbed runs: a catalog of images built offline
//! from Debian's packages (debootstrap + `docker import`, no registry needed),
//! and for any other name a pull from a registry where one is reachable.
//!
//! Building takes ~30-50 s; an image that exists is returned after a single
//! inspect, so callers just call [`ensure_image`] every time.

use crate::backend::docker::LABEL_IMAGE;
use crate::backend::host;
use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use bollard::query_parameters::{CreateImageOptionsBuilder, RemoveImageOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The image used when a topology names none.
pub const DEFAULT_IMAGE: &str = "testbed/redis:8.0";

/// An image the testbed can build offline from one Debian suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSpec {
    /// Image reference, e.g. `testbed/redis:8.0`.
    pub name: &'static str,
    /// Debian suite debootstrap installs (`bookworm`, `trixie`).
    pub suite: &'static str,
    /// Packages added to the minbase system.
    pub packages: &'static [&'static str],
    /// `redis` or `valkey`: binaries are `<product>-server`, `-sentinel`, `-cli`.
    pub product: &'static str,
    /// The server's major.minor version in that suite.
    pub version: &'static str,
}

const REDIS_PACKAGES: &[&str] = &[
    "redis-server",
    "redis-sentinel",
    "redis-tools",
    "iproute2",
    "iputils-arping",
];
// Checked against trixie's package index: valkey ships the same split as
// redis (server, sentinel, tools), all from the valkey 8.1.1 source.
const VALKEY_PACKAGES: &[&str] = &[
    "valkey-server",
    "valkey-sentinel",
    "valkey-tools",
    "iproute2",
    "iputils-arping",
];

/// Every image [`ensure_image`] can build without a registry.
pub const CATALOG: &[ImageSpec] = &[
    ImageSpec {
        name: "testbed/redis:7.0",
        suite: "bookworm",
        packages: REDIS_PACKAGES,
        product: "redis",
        version: "7.0",
    },
    ImageSpec {
        name: "testbed/redis:8.0",
        suite: "trixie",
        packages: REDIS_PACKAGES,
        product: "redis",
        version: "8.0",
    },
    ImageSpec {
        name: "testbed/valkey:8.1",
        suite: "trixie",
        packages: VALKEY_PACKAGES,
        product: "valkey",
        version: "8.1",
    },
];

/// The catalog entry for `name`, if the testbed can build it offline.
pub fn spec(name: &str) -> Option<&'static ImageSpec> {
    CATALOG.iter().find(|s| s.name == name)
}

/// What the engine knows about an image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    pub name: String,
    pub id: String,
    pub size_bytes: i64,
    pub labels: BTreeMap<String, String>,
}

/// The image `name` if the engine has it.
pub async fn inspect(docker: &Docker, name: &str) -> Result<Option<ImageInfo>> {
    match docker.inspect_image(name).await {
        Ok(i) => Ok(Some(ImageInfo {
            name: name.to_string(),
            id: i.id.unwrap_or_default(),
            size_bytes: i.size.unwrap_or(0),
            labels: i
                .config
                .and_then(|c| c.labels)
                .map(|l| l.into_iter().collect())
                .unwrap_or_default(),
        })),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(Error::docker(format!("inspect image {name}"), e)),
    }
}

/// Returns the image `name`, building it (catalog names) or pulling it
/// (anything else) when the engine does not have it yet.
pub async fn ensure_image(docker: &Docker, name: &str, cache_dir: &Path) -> Result<ImageInfo> {
    if let Some(info) = inspect(docker, name).await? {
        return Ok(info);
    }
    match spec(name) {
        Some(spec) => build_locked(docker, spec, cache_dir).await,
        None => pull(docker, name).await,
    }
}

/// Ensures each of `names` in turn (one debootstrap at a time: two in
/// parallel only fight over the 2 cores and the mirror).
pub async fn build_all(
    docker: &Docker,
    cache_dir: &Path,
    names: &[&str],
) -> Result<Vec<ImageInfo>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        out.push(ensure_image(docker, name, cache_dir).await?);
    }
    Ok(out)
}

async fn pull(docker: &Docker, name: &str) -> Result<ImageInfo> {
    let progress = Progress::new(name);
    progress.step("not present; pulling from its registry");
    let (repo, tag) = split_reference(name);
    let opts = CreateImageOptionsBuilder::new()
        .from_image(repo)
        .tag(tag)
        .build();
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            let names: Vec<&str> = CATALOG.iter().map(|s| s.name).collect();
            return Err(Error::Prerequisite {
                what: format!("pulling image {name} failed: {e} (this machine may have no registry access)"),
                hint: format!(
                    "use an offline image built from Debian packages instead: one of {} (`cargo xtask image` builds them)",
                    names.join(", ")
                ),
            });
        }
    }
    let info = inspect(docker, name).await?.ok_or_else(|| {
        Error::State(format!(
            "image {name} is missing right after a successful pull"
        ))
    })?;
    progress.done(format!("pulled {}", info.id));
    Ok(info)
}

/// `repo:tag` split at the tag's colon (not a registry port's); no tag is `latest`.
pub fn split_reference(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (name, "latest"),
    }
}

/// Builds `spec` holding a per-image lock file, so parallel tests and other
/// processes wait for one build instead of racing on the same rootfs.
async fn build_locked(docker: &Docker, spec: &ImageSpec, cache_dir: &Path) -> Result<ImageInfo> {
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
        progress.done("built by another builder");
        return Ok(info);
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
    Ok(info)
}

async fn build(
    docker: &Docker,
    spec: &ImageSpec,
    rootfs: &Path,
    tarball: &Path,
    progress: &Progress,
) -> Result<ImageInfo> {
    let mirror = mirror();
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

/// The Debian mirror debootstrap uses: `TESTBED_DEBIAN_MIRROR`, else the
/// host's own apt mirror (reachable where apt works), else deb.debian.org.
pub fn mirror() -> String {
    if let Ok(m) = std::env::var("TESTBED_DEBIAN_MIRROR") {
        if !m.trim().is_empty() {
            return m.trim().trim_end_matches('/').to_string();
        }
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| mirror_from_sources(&text))
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

/// The first Debian archive URI (`http(s)://…/debian`) in a one-line-style
/// `.list` or a deb822 `.sources` text; security and third-party repos and
/// commented lines are skipped.
pub fn mirror_from_sources(text: &str) -> Option<String> {
    text.lines().map(str::trim).find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let uris: Vec<&str> = if line.len() > 5 && line[..5].eq_ignore_ascii_case("URIs:") {
            line[5..].split_whitespace().collect()
        } else if let Some(rest) = line.strip_prefix("deb ") {
            let rest = rest.trim_start();
            let rest = match rest.strip_prefix('[') {
                Some(opts) => opts.split_once(']').map_or("", |(_, r)| r),
                None => rest,
            };
            rest.split_whitespace().take(1).collect()
        } else {
            return None;
        };
        uris.into_iter()
            .map(|u| u.trim_end_matches('/'))
            .find(|u| {
                (u.starts_with("http://") || u.starts_with("https://")) && u.ends_with("/debian")
            })
            .map(str::to_string)
    })
}

/// A Dockerfile-style double-quoted string (`$` would start a variable).
pub(crate) fn quote(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{}\"", escaped.replace('$', "\\$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_lookup() {
        assert_eq!(spec(DEFAULT_IMAGE).map(|s| s.suite), Some("trixie"));
        assert_eq!(spec("testbed/redis:7.0").map(|s| s.suite), Some("bookworm"));
        let v = spec("testbed/valkey:8.1").expect("valkey in catalog");
        assert_eq!((v.product, v.version), ("valkey", "8.1"));
        assert!(v.packages.contains(&"valkey-sentinel"));
        assert!(spec("redis:7.4").is_none());
        for s in CATALOG {
            assert!(s.name.ends_with(&format!("{}:{}", s.product, s.version)));
        }
    }

    #[test]
    fn mirror_from_deb822_skips_comments_and_security() {
        let text = "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
                    URIs: http://deb.debian.org/debian\nSuites: bookworm\n\n\
                    Types: deb\nURIs: http://deb.debian.org/debian-security\n";
        assert_eq!(
            mirror_from_sources(text).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let sec = "Types: deb\nURIs: http://deb.debian.org/debian-security/\n";
        assert_eq!(mirror_from_sources(sec), None);
    }

    #[test]
    fn mirror_from_one_line_format() {
        let text = "# deb http://old.example/debian bookworm main\n\
                    deb https://packages.cloud.google.com/apt cloud-sdk main\n\
                    deb [arch=amd64 signed-by=/k.gpg] https://mirror.example.org/debian/ bookworm main\n";
        assert_eq!(
            mirror_from_sources(text).as_deref(),
            Some("https://mirror.example.org/debian")
        );
        assert_eq!(
            mirror_from_sources("deb-src http://x/debian sid main"),
            None
        );
    }

    #[test]
    fn label_values_are_quoted() {
        assert_eq!(quote(r#"a"b\c$d"#), r#""a\"b\\c\$d""#);
    }

    #[test]
    fn references_split_at_the_tag() {
        assert_eq!(split_reference("redis:7.4"), ("redis", "7.4"));
        assert_eq!(
            split_reference("valkey/valkey"),
            ("valkey/valkey", "latest")
        );
        assert_eq!(split_reference("reg:5000/x"), ("reg:5000/x", "latest"));
        assert_eq!(
            split_reference("testbed/redis:8.0"),
            ("testbed/redis", "8.0")
        );
    }
}
