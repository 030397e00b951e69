//! The container images the testbed runs: a catalog of images built offline
//! from Debian's packages (debootstrap + `docker import`, no registry needed),
//! and for any other name a pull from a registry where one is reachable.
//!
//! Building takes ~30-50 s; an image that exists is returned after a single
//! inspect, so callers just call [`ensure_image`] every time. A catalog image
//! carries the hash of its recipe ([`ImageSpec::hash`]: suite, packages,
//! product and [`RECIPE`], the build steps' version) in the label
//! `io.redis-sentinel-testbed.image.spec`; one whose label differs (or that
//! has none) was built from another recipe and is rebuilt. So adding a
//! package to a list below rebuilds that image on the next `up` or test.
//!
//! The build itself (debootstrap, slimming, import): `image/build.rs`; the
//! Debian mirror: `image/mirror.rs`.

use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

mod build;
mod mirror;

pub use mirror::{mirror, mirror_from_sources};
// what the client image (`client_image.rs`) builds with
pub(crate) use build::{debootstrap, import, quote, remove_rootfs, slim};

/// The version of the build steps (debootstrap minbase, `slim`, the tar
/// flags, the import's changes). Bump it when they change: every catalog
/// image is then rebuilt, as when its packages change.
pub const RECIPE: u32 = 1;
/// The label holding [`ImageSpec::hash`].
pub const LABEL_SPEC: &str = "io.redis-sentinel-testbed.image.spec";

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

impl ImageSpec {
    /// What the image is built from, one `key value` a line: the input of
    /// [`ImageSpec::hash`].
    pub fn recipe(&self) -> String {
        format!(
            "recipe {RECIPE}\nname {}\nsuite {}\nproduct {}\nversion {}\npackages {}\n",
            self.name,
            self.suite,
            self.product,
            self.version,
            self.packages.join(",")
        )
    }

    /// FNV-1a (64 bit) of [`ImageSpec::recipe`], as 16 hex digits: stable
    /// across builds, toolchains and machines.
    pub fn hash(&self) -> String {
        let h = self
            .recipe()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        format!("{h:016x}")
    }

    /// Whether `info` was built from this recipe.
    pub fn built_by(&self, info: &ImageInfo) -> bool {
        info.labels.get(LABEL_SPEC) == Some(&self.hash())
    }
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
    // sid moves: the version is what sid had when this entry was made
    // (valkey 9.1.2, 2026-12); the image's labels record what it got.
    ImageSpec {
        name: "testbed/valkey:9.1",
        suite: "sid",
        packages: VALKEY_PACKAGES,
        product: "valkey",
        version: "9.1",
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

/// What [`ensure_image`] does about a catalog image.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The engine has it, built from this recipe.
    Use(ImageInfo),
    /// The engine does not have it.
    Build,
    /// The engine has it, built from another recipe (or before recipes were
    /// labelled): build it again, then remove this one unless it is in use.
    Rebuild(ImageInfo),
}

/// What the engine has of `spec`, and what to do about it.
pub async fn plan(docker: &Docker, spec: &ImageSpec) -> Result<Plan> {
    Ok(match inspect(docker, spec.name).await? {
        Some(info) if spec.built_by(&info) => Plan::Use(info),
        Some(info) => Plan::Rebuild(info),
        None => Plan::Build,
    })
}

/// Returns the image `name`, building it (catalog names) or pulling it
/// (anything else) when the engine does not have it yet. A catalog image
/// built from another recipe (see the module doc) is rebuilt.
pub async fn ensure_image(docker: &Docker, name: &str, cache_dir: &Path) -> Result<ImageInfo> {
    let Some(spec) = spec(name) else {
        return match inspect(docker, name).await? {
            Some(info) => Ok(info),
            None => pull(docker, name).await,
        };
    };
    match plan(docker, spec).await? {
        Plan::Use(info) => Ok(info),
        Plan::Build => build::build_locked(docker, spec, cache_dir, None).await,
        Plan::Rebuild(old) => {
            Progress::new(name).step(format!(
                "built from another recipe (label {LABEL_SPEC}={}, this recipe {}): rebuilding",
                old.labels.get(LABEL_SPEC).map_or("none", String::as_str),
                spec.hash()
            ));
            build::build_locked(docker, spec, cache_dir, Some(&old.id)).await
        }
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

#[cfg(test)]
mod tests;
