//! Building the client image: the Debian roots (cached), the Go build in
//! the sid root, the host-side npm/pip/cargo steps, the copy into the
//! trixie root, the import.

use crate::backend::docker::LABEL_IMAGE;
use crate::backend::host;
use crate::backend::image::{self, ImageInfo};
use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use crate::model::clients::CLIENTS;
use bollard::Docker;
use std::path::{Path, PathBuf};

use super::versions::fnv1a;
use super::*;

pub(super) async fn build(
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
pub(super) async fn dpkg_versions(root: &Path, packages: &[&str]) -> Result<Vec<String>> {
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

pub(super) async fn remove_dir(p: &Path) -> Result<()> {
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
