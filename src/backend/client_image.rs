//! The client image `testbed/clients:dev`: every external client program of
//! `fixtures/clients/` with its runtime and library at pinned versions, built
//! offline like the server images ([`crate::backend::image`]): debootstrap + `docker
//! import`, no registry.
//!
//! Recipe (each input pinned; versions recorded in labels):
//! - a trixie minbase root with Debian's php8.4-cli + php8.4-redis +
//!   php-predis, ruby + ruby-redis, nodejs, python3 (apt-get in the chroot);
//! - a sid minbase root with golang-go + golang-github-redis-go-redis-dev, used
//!   only to compile `fixtures/clients/go` in GOPATH mode (no module proxy),
//!   `CGO_ENABLED=0`, a static binary;
//! - npm packages by the host's `npm ci` from the committed package-lock.json,
//!   PyPI wheels by the host's `pip install --require-hashes`, fred by the
//!   host's `cargo build --locked` of `fixtures/clients/rust` (its own
//!   Cargo.lock; fred and redis-rs);
//! - all of it copied into the trixie root: programs under `/clients`,
//!   libraries and binaries under `/opt/clients`, one launcher per client in
//!   `/opt/clients/bin` (on PATH); slimmed; imported.
//!
//! The two Debian roots and the cargo build are cached in [`CACHE_DIR`]
//! (`/var/cache/redis-sentinel-testbed/clients`, outside any clone; the
//! roots keyed by suite, package list and [`RECIPE`]); a label holds a hash of
//! `fixtures/clients` and of the recipe, so a changed client program (or
//! recipe) rebuilds the image and an unchanged one is reused after one
//! inspect.

use crate::backend::docker::LABEL_IMAGE;
use crate::backend::host;
use crate::backend::image::{self, ImageInfo};
use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use crate::model::clients::CLIENTS;
use bollard::Docker;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The image reference.
pub const CLIENT_IMAGE: &str = "testbed/clients:dev";

/// Bump when the recipe changes in a way the inputs do not show.
pub const RECIPE: &str = "clients-recipe-1";

/// Where the Debian roots, the cargo build and the lock live: outside any
/// clone, so a fresh CI checkout reuses them.
pub const CACHE_DIR: &str = "/var/cache/redis-sentinel-testbed/clients";

/// The cache folder: [`CACHE_DIR`], or `TESTBED_CLIENTS_CACHE` when set.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("TESTBED_CLIENTS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CACHE_DIR))
}

/// Debian packages of the runtime root (trixie).
pub const TRIXIE_PACKAGES: &[&str] = &[
    "php8.4-cli",
    "php8.4-redis",
    "php-predis",
    "ruby",
    "ruby-redis",
    "nodejs",
    "python3",
    "ca-certificates",
];

/// Debian packages of the Go build root (sid).
pub const SID_GO_PACKAGES: &[&str] = &["golang-go", "golang-github-redis-go-redis-dev"];

/// The host programs a build runs, and the Debian package (or tool) that
/// gives each: `doctor --fix` installs the packages.
pub const BUILD_TOOLS: &[(&str, &str)] = &[
    ("debootstrap", "debootstrap"),
    ("npm", "npm"),
    ("python3", "python3-pip"),
    ("cargo", "rustup (https://rustup.rs)"),
];

/// Whether the image is there and built from the current client programs.
#[derive(Debug, Clone)]
pub enum Status {
    Missing,
    /// Built from other client programs or another recipe.
    Stale(ImageInfo),
    Current(ImageInfo),
}

/// The image's [`Status`] against `workspace`'s `fixtures/clients`.
pub async fn status(docker: &Docker, workspace: &Path) -> Result<Status> {
    let hash = inputs_hash(&workspace.join("fixtures/clients")).await?;
    Ok(match image::inspect(docker, CLIENT_IMAGE).await? {
        None => Status::Missing,
        Some(i) if i.labels.get(&label("hash")) == Some(&hash) => Status::Current(i),
        Some(i) => Status::Stale(i),
    })
}

/// What of [`BUILD_TOOLS`] is missing on this host, as `` `tool` (package) ``;
/// pip is checked as `python3 -m pip`.
pub fn missing_build_tools() -> Vec<String> {
    let mut out = Vec::new();
    for (tool, package) in BUILD_TOOLS {
        let here = match *tool {
            "python3" => host::run("python3", &["-m", "pip", "--version"]).is_ok(),
            t => host::which(t).is_some(),
        };
        if !here {
            let what = if *tool == "python3" { "pip" } else { tool };
            out.push(format!("`{what}` ({package})"));
        }
    }
    out
}

/// Label keys (beside [`LABEL_IMAGE`]).
pub fn label(key: &str) -> String {
    format!("{LABEL_IMAGE}.clients.{key}")
}

/// Returns the client image, building it when it is missing or was built
/// from other client programs or another recipe. `workspace` is the
/// project's root (it holds `fixtures/clients`), `dir` the cache folder
/// ([`cache_dir`]).
pub async fn ensure(docker: &Docker, workspace: &Path, dir: &Path) -> Result<ImageInfo> {
    let fixtures = workspace.join("fixtures/clients");
    let hash = inputs_hash(&fixtures).await?;
    let previous = image::inspect(docker, CLIENT_IMAGE).await?;
    if let Some(info) = &previous {
        if info.labels.get(&label("hash")) == Some(&hash) {
            return Ok(info.clone());
        }
    }
    let progress = Progress::new(CLIENT_IMAGE);
    if let Some(missing) = missing_build_tools().first() {
        return Err(Error::Prerequisite {
            what: format!("{missing} is needed to build {CLIENT_IMAGE} offline"),
            hint: "run `cargo xtask doctor --fix` (installs debootstrap, npm, python3-pip)".into(),
        });
    }
    if !host::is_root() {
        return Err(Error::Prerequisite {
            what: format!("building {CLIENT_IMAGE} (debootstrap, chroot) needs root"),
            hint: "run as root".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let lock_path = dir.join("build.lock");
    let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    if lock.try_lock().is_err() {
        progress.step("another build of the client image is running; waiting for it");
        let p = lock_path.clone();
        let l = lock.try_clone().map_err(|e| Error::io(&p, e))?;
        tokio::task::spawn_blocking(move || l.lock())
            .await
            .map_err(|e| Error::State(format!("lock task failed: {e}")))?
            .map_err(|e| Error::io(p, e))?;
        if let Some(info) = image::inspect(docker, CLIENT_IMAGE).await? {
            if info.labels.get(&label("hash")) == Some(&hash) {
                progress.done("built by another builder");
                return Ok(info);
            }
        }
    }
    let info = build(docker, workspace, dir, &hash, &progress).await?;
    drop(lock);
    // the image it replaces is left untagged: remove it (never by force, so
    // one a container still uses stays)
    if let Some(old) = previous.filter(|p| p.id != info.id) {
        let opts: Option<bollard::query_parameters::RemoveImageOptions> = None;
        if docker.remove_image(&old.id, opts, None).await.is_ok() {
            progress.step(format!("removed the previous {CLIENT_IMAGE} ({})", old.id));
        }
    }
    progress.done(format!("{} ({} MB)", info.id, info.size_bytes / 1_000_000));
    Ok(info)
}

async fn build(
    docker: &Docker,
    workspace: &Path,
    dir: &Path,
    hash: &str,
    progress: &Progress,
) -> Result<ImageInfo> {
    let fixtures = workspace.join("fixtures/clients");
    // 1. the Debian roots (cached)
    let base = debian_root(dir, "trixie", TRIXIE_PACKAGES, progress).await?;
    let go_root = debian_root(dir, "sid", SID_GO_PACKAGES, progress).await?;
    let debian = dpkg_versions(&base, TRIXIE_PACKAGES).await?;
    let go_debian = dpkg_versions(&go_root, SID_GO_PACKAGES).await?;

    // 2. the Go client, compiled in the sid root
    progress.step("compiling the go-redis client in the sid root (GOPATH mode, CGO_ENABLED=0)");
    let go_bin = build_go(&go_root, &fixtures.join("go/main.go")).await?;

    // 3. npm, PyPI and crates.io inputs, on the host
    let stage = dir.join("stage");
    remove_dir(&stage).await?;
    let node_stage = stage.join("node");
    mkdir(&node_stage)?;
    for f in ["package.json", "package-lock.json"] {
        copy(&fixtures.join("node").join(f), &node_stage.join(f))?;
    }
    progress.step("npm ci (fixtures/clients/node/package-lock.json)");
    let ns = node_stage.to_string_lossy().into_owned();
    host::run_async(
        "npm",
        &[
            "ci",
            "--prefix",
            &ns,
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
        ],
    )
    .await?;
    progress.step("pip install --require-hashes (fixtures/clients/python/requirements.txt)");
    let py_stage = stage.join("python").to_string_lossy().into_owned();
    let req = fixtures
        .join("python/requirements.txt")
        .to_string_lossy()
        .into_owned();
    host::run_async(
        "python3",
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "--no-compile",
            "--target",
            &py_stage,
            "-r",
            &req,
        ],
    )
    .await?;
    progress.step("cargo build --release --locked (fixtures/clients/rust: fred, redis-rs)");
    let manifest = fixtures
        .join("rust/Cargo.toml")
        .to_string_lossy()
        .into_owned();
    // in the cache, so a fresh clone does not compile fred again
    let target_dir = dir.join("cargo-target").to_string_lossy().into_owned();
    host::run_async(
        "cargo",
        &[
            "build",
            "--quiet",
            "--release",
            "--locked",
            "--manifest-path",
            &manifest,
            "--target-dir",
            &target_dir,
        ],
    )
    .await?;
    let fred_bin = Path::new(&target_dir).join("release/testbed-client-fred");
    let redis_rs_bin = Path::new(&target_dir).join("release/redis-rs-sentinel");

    // 4. the image's root: a copy of the cached trixie root plus the clients
    progress.step("assembling the rootfs");
    let rootfs = dir.join("rootfs");
    let tarball = dir.join("rootfs.tar");
    remove_dir(&rootfs).await?;
    let _ = std::fs::remove_file(&tarball);
    let (b, r) = (
        base.to_string_lossy().into_owned(),
        rootfs.to_string_lossy().into_owned(),
    );
    host::run_async("cp", &["-a", &b, &r]).await?;
    let result = async {
        let clients = rootfs.join("clients");
        let opt = rootfs.join("opt/clients");
        host::run_async(
            "cp",
            &[
                "-a",
                &fixtures.to_string_lossy(),
                &clients.to_string_lossy(),
            ],
        )
        .await?;
        for junk in ["rust/target", "node/node_modules", "python/__pycache__"] {
            remove_dir(&clients.join(junk)).await?;
        }
        mkdir(&opt.join("node"))?;
        mkdir(&opt.join("libexec"))?;
        mkdir(&opt.join("bin"))?;
        host::run_async(
            "cp",
            &[
                "-a",
                &node_stage.join("node_modules").to_string_lossy(),
                &opt.join("node/node_modules").to_string_lossy(),
            ],
        )
        .await?;
        host::run_async(
            "cp",
            &["-a", &py_stage, &opt.join("python").to_string_lossy()],
        )
        .await?;
        std::os::unix::fs::symlink(
            "/opt/clients/node/node_modules",
            clients.join("node/node_modules"),
        )
        .map_err(|e| Error::io(clients.join("node/node_modules"), e))?;
        copy(&go_bin, &opt.join("libexec/go-redis-failover"))?;
        copy(&fred_bin, &opt.join("libexec/fred-sentinel"))?;
        copy(&redis_rs_bin, &opt.join("libexec/redis-rs-sentinel"))?;
        for c in CLIENTS {
            let p = opt.join("bin").join(c.name);
            std::fs::write(&p, format!("#!/bin/sh\nexec {} \"$@\"\n", c.exec))
                .map_err(|e| Error::io(&p, e))?;
            chmod_x(&p)?;
        }
        // every client answers in the image itself before it is imported
        check_in_chroot(&rootfs).await?;

        let npm = npm_versions(&fixtures.join("node/package-lock.json"))?;
        let pip = pip_versions(&fixtures.join("python/requirements.txt"))?;
        let cargo = cargo_version(&fixtures.join("rust/Cargo.lock"), "fred")?;
        let redis_rs = cargo_version(&fixtures.join("rust/Cargo.lock"), "redis")?;
        progress.step(format!(
            "debian {} | go {} | npm {} | pip {} | fred {cargo}",
            debian.join(" "),
            go_debian.join(" "),
            npm.join(" "),
            pip.join(" ")
        ));
        tar_rootfs(&rootfs, &tarball).await?;
        let names: Vec<&str> = CLIENTS.iter().map(|c| c.name).collect();
        let labels = [
            (LABEL_IMAGE.to_string(), CLIENT_IMAGE.to_string()),
            (format!("{LABEL_IMAGE}.suite"), "trixie".to_string()),
            (label("hash"), hash.to_string()),
            (label("recipe"), RECIPE.to_string()),
            (label("programs"), names.join(",")),
            (label("debian"), debian.join(",")),
            (label("go-build-debian-sid"), go_debian.join(",")),
            (label("npm"), npm.join(",")),
            (label("pypi"), pip.join(",")),
            (label("crates"), format!("fred={cargo},redis={redis_rs}")),
            (format!("{LABEL_IMAGE}.built"), utc_now().await?),
        ];
        let mut changes: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("LABEL {}={}", image::quote(k), image::quote(v)))
            .collect();
        changes.push(
            "ENV PATH=/opt/clients/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                .into(),
        );
        changes.push("ENV PYTHONPATH=/opt/clients/python".into());
        changes.push("ENV NODE_PATH=/opt/clients/node/node_modules".into());
        changes.push("WORKDIR /clients".into());
        changes.push("CMD [\"ls\", \"/opt/clients/bin\"]".into());
        let size = std::fs::metadata(&tarball)
            .map_err(|e| Error::io(&tarball, e))?
            .len();
        progress.step(format!(
            "importing the rootfs ({} MB tar)",
            size / 1_000_000
        ));
        image::import(docker, CLIENT_IMAGE, &tarball, changes).await?;
        image::inspect(docker, CLIENT_IMAGE).await?.ok_or_else(|| {
            Error::State(format!(
                "image {CLIENT_IMAGE} is missing right after import"
            ))
        })
    }
    .await;
    let cleanup = remove_dir(&rootfs).await;
    let _ = std::fs::remove_file(&tarball);
    let _ = remove_dir(&stage).await;
    let info = result?;
    cleanup?;
    Ok(info)
}

/// The cached minbase root of `suite` with `packages` installed (apt-get in
/// the chroot resolves dependencies better than debootstrap's `--include`),
/// slimmed. Built once per (suite, packages, recipe); a half-built one is
/// never reused.
async fn debian_root(
    dir: &Path,
    suite: &str,
    packages: &[&str],
    progress: &Progress,
) -> Result<PathBuf> {
    let key = fnv1a(format!("{RECIPE} {suite} {}", packages.join(" ")).as_bytes());
    let root = dir.join(format!("{suite}-{key:016x}"));
    let done = dir.join(format!("{suite}-{key:016x}.done"));
    if done.exists() && root.is_dir() {
        return Ok(root);
    }
    let _ = std::fs::remove_file(&done);
    remove_dir(&root).await?;
    let mirror = image::mirror();
    progress.step(format!("debootstrap {suite} from {mirror}"));
    let r = root.to_string_lossy().into_owned();
    image::debootstrap(&["--variant=minbase", suite, &r, &mirror], progress).await?;
    progress.step(format!("apt-get install {} ({suite})", packages.join(" ")));
    let mut args = vec![
        r.as_str(),
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "-o",
        "Acquire::Check-Valid-Until=false",
        "-o",
        "APT::Sandbox::User=root",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
    ];
    args.extend_from_slice(packages);
    host::run_async("chroot", &args).await?;
    host::run_async("chroot", &[r.as_str(), "apt-get", "clean"]).await?;
    image::slim(&root).await?;
    std::fs::write(&done, packages.join("\n")).map_err(|e| Error::io(&done, e))?;
    Ok(root)
}

/// Compiles `main.go` in the sid root against Debian's go-redis source:
/// GOPATH mode (GO111MODULE=off) with `github.com/redis/go-redis/v9` made a
/// symlink to Debian's unversioned source path; nothing is downloaded.
async fn build_go(root: &Path, main_go: &Path) -> Result<PathBuf> {
    let build = root.join("build");
    remove_dir(&build).await?;
    let src = build.join("gopath/src/testbed-client");
    mkdir(&src)?;
    mkdir(&build.join("gopath/src/github.com/redis/go-redis"))?;
    std::os::unix::fs::symlink(
        "/usr/share/gocode/src/github.com/redis/go-redis",
        build.join("gopath/src/github.com/redis/go-redis/v9"),
    )
    .map_err(|e| Error::io(&build, e))?;
    copy(main_go, &src.join("main.go"))?;
    // the go tool reads /proc/self/exe to find GOROOT
    let proc_dir = root.join("proc").to_string_lossy().into_owned();
    host::run_async("mount", &["-t", "proc", "proc", &proc_dir]).await?;
    let r = root.to_string_lossy().into_owned();
    let res = host::run_async(
        "chroot",
        &[
            &r,
            "env",
            "HOME=/tmp",
            "GOCACHE=/var/cache/testbed-gocache",
            "GOPATH=/build/gopath:/usr/share/gocode",
            "GO111MODULE=off",
            "CGO_ENABLED=0",
            "GOTOOLCHAIN=local",
            "GOTELEMETRY=off",
            "GOFLAGS=-trimpath",
            "sh",
            "-c",
            "cd /build/gopath/src/testbed-client && go vet . && go build -ldflags '-s -w' -o /build/go-redis-failover .",
        ],
    )
    .await;
    let umount = host::run_async("umount", &["-l", &proc_dir]).await;
    res?;
    umount?;
    Ok(build.join("go-redis-failover"))
}

/// Every launcher, run in the new root against no server at all (a refused
/// sentinel and VIP), prints its meta line naming itself and then ends with
/// exit code 0 within 5 s of SIGTERM: the runtimes and libraries load and
/// the protocol's stop works.
async fn check_in_chroot(rootfs: &Path) -> Result<()> {
    let r = rootfs.to_string_lossy().into_owned();
    for c in CLIENTS {
        let script = format!(
            "export PYTHONPATH=/opt/clients/python NODE_PATH=/opt/clients/node/node_modules \
             TESTBED_SENTINELS=127.0.0.1:1 TESTBED_VIP=127.0.0.1:1 TESTBED_RATE=5 TESTBED_TIMEOUT_MS=100; \
             cd /clients; out=/tmp/check.out; /opt/clients/bin/{} >$out 2>/tmp/check.err & pid=$!; \
             i=0; while [ $i -lt 200 ] && [ ! -s $out ]; do sleep 0.1; i=$((i+1)); done; \
             kill -TERM $pid; j=0; while kill -0 $pid 2>/dev/null && [ $j -lt 50 ]; do sleep 0.1; j=$((j+1)); done; \
             if kill -0 $pid 2>/dev/null; then kill -KILL $pid; echo still running 5 s after SIGTERM; fi; \
             wait $pid; echo exit=$?; head -n 1 $out; rm -f $out /tmp/check.err",
            c.name
        );
        let out = host::run_async("chroot", &[&r, "sh", "-c", &script]).await?;
        let fail = |why: String| {
            Error::command(
                format!("{} in the new image", c.name),
                format!("{why}: {out:?}"),
            )
        };
        let mut lines = out.lines();
        if lines.next() != Some("exit=0") {
            return Err(fail("did not exit 0 after SIGTERM".into()));
        }
        let meta: serde_json::Value = serde_json::from_str(lines.next().unwrap_or(""))
            .map_err(|e| fail(format!("no meta line ({e})")))?;
        if meta["meta"]["client"] != c.name {
            return Err(fail("its meta line names another client".into()));
        }
    }
    Ok(())
}

/// `Package=Version` of each package, read from the root's dpkg database.
async fn dpkg_versions(root: &Path, packages: &[&str]) -> Result<Vec<String>> {
    let r = root.to_string_lossy().into_owned();
    let mut args = vec![
        r.as_str(),
        "dpkg-query",
        "-W",
        "-f",
        "${Package}=${Version}\\n",
    ];
    args.extend_from_slice(packages);
    let out = host::run_async("chroot", &args).await?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// `name@version` of the top-level npm dependencies and of @redis/client.
pub fn npm_versions(lock: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(lock).map_err(|e| Error::io(lock, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::State(format!("{}: {e}", lock.display())))?;
    let pkgs = &v["packages"];
    let mut names: Vec<String> = pkgs[""]["dependencies"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    names.push("@redis/client".into());
    Ok(names
        .iter()
        .map(|n| {
            let ver = pkgs[format!("node_modules/{n}")]["version"]
                .as_str()
                .unwrap_or("?");
            format!("{n}@{ver}")
        })
        .collect())
}

/// `name==version` lines of a requirements file.
pub fn pip_versions(req: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(req).map_err(|e| Error::io(req, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("=="))
        .map(|l| l.split_whitespace().next().unwrap_or(l).to_string())
        .collect())
}

/// The version Cargo.lock resolved for `krate`.
pub fn cargo_version(lock: &Path, krate: &str) -> Result<String> {
    let text = std::fs::read_to_string(lock).map_err(|e| Error::io(lock, e))?;
    let v: toml::Value =
        toml::from_str(&text).map_err(|e| Error::State(format!("{}: {e}", lock.display())))?;
    v.get("package")
        .and_then(|p| p.as_array())
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(krate))
        })
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::State(format!("{}: no package {krate}", lock.display())))
}

/// The sha256 of the recipe and of every file under `fixtures/clients`
/// (path and content; build outputs excluded), as `sha256sum` computes it.
pub async fn inputs_hash(fixtures: &Path) -> Result<String> {
    let mut files = Vec::new();
    walk(fixtures, &mut files)?;
    files.sort();
    let mut manifest = format!(
        "{RECIPE}\ntrixie {}\nsid {}\n",
        TRIXIE_PACKAGES.join(" "),
        SID_GO_PACKAGES.join(" ")
    );
    let paths: Vec<String> = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    for chunk in paths.chunks(200) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let out = host::run_async("sha256sum", &refs).await?;
        let prefix = format!("{}/", fixtures.display());
        manifest.push_str(&out.replace(&prefix, ""));
    }
    // unique per call: tests hash in parallel threads of one process
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!(
        "testbed-clients-manifest-{}-{n}",
        std::process::id()
    ));
    std::fs::write(&tmp, &manifest).map_err(|e| Error::io(&tmp, e))?;
    let out = host::run_async("sha256sum", &[&tmp.to_string_lossy()]).await;
    let _ = std::fs::remove_file(&tmp);
    Ok(out?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ft = e.file_type().map_err(|e| Error::io(&p, e))?;
        if ft.is_dir() {
            if !matches!(name.as_ref(), "target" | "node_modules" | "__pycache__") {
                walk(&p, out)?;
            }
        } else if ft.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// tar of the root for `docker import`: sorted names and numeric owners, so
/// equal trees give equal archives up to mtimes.
async fn tar_rootfs(rootfs: &Path, tarball: &Path) -> Result<()> {
    let (r, t) = (
        rootfs.to_string_lossy().into_owned(),
        tarball.to_string_lossy().into_owned(),
    );
    host::run_async(
        "tar",
        &[
            "--xattrs",
            "--xattrs-include=security.capability",
            "--numeric-owner",
            "--sort=name",
            "-C",
            &r,
            "-cf",
            &t,
            ".",
        ],
    )
    .await
    .map(drop)
}

async fn remove_dir(p: &Path) -> Result<()> {
    if !p.exists() && p.symlink_metadata().is_err() {
        return Ok(());
    }
    image::remove_rootfs(p, &p.with_extension("absent-tar")).await
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| Error::io(from, e))
}

fn chmod_x(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).map_err(|e| Error::io(p, e))
}

async fn utc_now() -> Result<String> {
    Ok(host::run_async("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .await?
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clients")
    }

    #[test]
    fn pinned_versions_are_read_from_the_committed_locks() {
        let npm = npm_versions(&fixtures().join("node/package-lock.json")).unwrap();
        assert!(npm.contains(&"ioredis@6.0.0".to_string()), "{npm:?}");
        assert!(npm.contains(&"redis@6.3.1".to_string()), "{npm:?}");
        let pip = pip_versions(&fixtures().join("python/requirements.txt")).unwrap();
        assert_eq!(pip, ["redis==8.1.0", "valkey==6.2.0"]);
        let fred = cargo_version(&fixtures().join("rust/Cargo.lock"), "fred").unwrap();
        assert!(fred.starts_with("10.1."), "{fred}");
    }

    #[tokio::test]
    async fn the_hash_follows_the_client_programs() {
        let dir = std::env::temp_dir().join(format!("tb-clients-hash-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("node/node_modules")).unwrap();
        std::fs::write(dir.join("a.py"), "print(1)\n").unwrap();
        std::fs::write(dir.join("node/node_modules/x.js"), "junk").unwrap();
        let h1 = inputs_hash(&dir).await.unwrap();
        std::fs::write(dir.join("node/node_modules/x.js"), "other junk").unwrap();
        assert_eq!(
            inputs_hash(&dir).await.unwrap(),
            h1,
            "node_modules is not an input"
        );
        std::fs::write(dir.join("a.py"), "print(2)\n").unwrap();
        assert_ne!(inputs_hash(&dir).await.unwrap(), h1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
