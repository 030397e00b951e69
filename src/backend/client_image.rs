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
use bollard::Docker;
use std::fs::File;
use std::path::{Path, PathBuf};

mod build;
mod versions;

use build::build;
pub use versions::{cargo_version, inputs_hash, npm_versions, pip_versions};

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
