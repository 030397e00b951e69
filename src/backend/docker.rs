//! The Docker engine connection and the labels every testbed object carries.
//!
//! **The API version is negotiated for real.** bollard 0.21.1 builds each
//! request's URL as `/v1.NN` + path and then `join`s the path onto it, which
//! replaces the version (bollard#736, fixed upstream by PR #737): every
//! request goes out unversioned, and an unversioned request gets the engine's
//! *newest* API whatever `negotiate_version` agreed on. [`negotiate`] works
//! around it: it takes the version bollard negotiated (the lower of the
//! engine's and bollard's own) and installs a request modifier that puts
//! `/v<that>` in front of every path ([`versioned`]). bollard's websocket
//! attach path bypasses modifiers; the testbed does not use it.

use crate::error::{Error, Result};
use bollard::{BollardRequest, Docker};

/// Label on every container and network the testbed creates; `down --all`
/// finds leftovers by it.
pub const LABEL_MANAGED: &str = "io.redis-sentinel-testbed.managed";
/// Label naming the testbed an object belongs to.
pub const LABEL_NAME: &str = "io.redis-sentinel-testbed.name";
/// Label naming the node (node1, ...) of a container.
pub const LABEL_NODE: &str = "io.redis-sentinel-testbed.node";
/// Label with the container's kind: `redis`, `sentinel` or [`KIND_CLIENT`].
pub const LABEL_KIND: &str = "io.redis-sentinel-testbed.kind";
/// `LABEL_KIND` of a client container (a program of the client image on the
/// testbed's segment).
pub const KIND_CLIENT: &str = "client";
/// Label naming the client program a client container runs.
pub const LABEL_CLIENT: &str = "io.redis-sentinel-testbed.client";
/// Label on images the testbed built (never removed by `down`).
pub const LABEL_IMAGE: &str = "io.redis-sentinel-testbed.image";

/// Oldest engine API the testbed supports (Debian 12's dockerd 20.10).
pub const MIN_API: (u32, u32) = (1, 41);

/// Connects to the engine `DOCKER_HOST` names (else the local socket) and
/// [`negotiate`]s the API version.
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_local_defaults().map_err(|e| Error::Prerequisite {
        what: format!("cannot reach a Docker engine: {e}"),
        hint: "run `cargo xtask doctor --fix` (installs docker.io and starts dockerd)".into(),
    })?;
    negotiate(docker).await
}

/// Connects to the engine on the unix socket `path` (not `DOCKER_HOST`).
pub async fn connect_unix(path: &str) -> Result<Docker> {
    let docker =
        Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION).map_err(|e| {
            Error::Prerequisite {
                what: format!("cannot reach a Docker engine on {path}: {e}"),
                hint: "is that engine running?".into(),
            }
        })?;
    negotiate(docker).await
}

/// Asks the engine for its API version (`GET /version`, which every engine
/// answers unversioned), settles on the lower of the engine's and bollard's,
/// refuses one below [`MIN_API`], and returns a client that sends that
/// version in every request path (see the module doc).
pub async fn negotiate(docker: Docker) -> Result<Docker> {
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| Error::Prerequisite {
            what: format!("no Docker engine answers: {e}"),
            hint: "start one with `cargo xtask doctor --fix` (or `dockerd &`), then retry".into(),
        })?;
    let used = api_used(&docker);
    if used < MIN_API {
        return Err(Error::Prerequisite {
            what: format!(
                "the engine speaks API {}.{}, older than the {}.{} the testbed needs",
                used.0, used.1, MIN_API.0, MIN_API.1
            ),
            hint: "install a newer engine (Debian 12's docker.io 20.10 is the oldest supported)"
                .into(),
        });
    }
    let prefix = format!("/v{}.{}", used.0, used.1);
    let docker = docker.with_request_modifier(move |req| versioned(req, &prefix));
    docker.ping().await.map_err(|e| Error::Prerequisite {
        what: format!("the Docker engine does not answer ping: {e}"),
        hint: "check `docker info`; `cargo xtask doctor --fix` starts dockerd".into(),
    })?;
    Ok(docker)
}

/// `req` with `prefix` (`/v1.41`) in front of its path, unless the path
/// already starts with a version.
pub fn versioned(mut req: BollardRequest, prefix: &str) -> BollardRequest {
    let Some(pq) = req.uri().path_and_query() else {
        return req;
    };
    if has_version(pq.path()) {
        return req;
    }
    let u = req.uri();
    let whole = match (u.scheme_str(), u.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{prefix}{pq}"),
        _ => format!("{prefix}{pq}"),
    };
    if let Ok(uri) = whole.parse() {
        *req.uri_mut() = uri;
    }
    req
}

/// Whether a request path starts with `/v<major>.<minor>/`.
pub fn has_version(path: &str) -> bool {
    path.strip_prefix("/v")
        .and_then(|r| r.split_once('/').map(|(v, _)| v))
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
}

/// The API version this client sends in its request paths.
pub fn api_used(docker: &Docker) -> (u32, u32) {
    let v = docker.client_version();
    (v.major_version as u32, v.minor_version as u32)
}

/// The engine's newest API version as (major, minor).
pub async fn api_version(docker: &Docker) -> Result<(u32, u32)> {
    let v = docker
        .version()
        .await
        .map_err(|e| Error::docker("version", e))?;
    Ok(parse_api(&v.api_version.unwrap_or_default()))
}

/// `1.51` as (1, 51); anything else as (0, 0).
pub fn parse_api(s: &str) -> (u32, u32) {
    let mut it = s.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// What answers on the other end: `Docker Engine 28.5.2` (Docker calls its
/// component just `Engine`) or `Podman Engine 5.8.6`, its newest API and
/// the one this client uses.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EngineInfo {
    /// The engine's product name (the first component of `GET /version`).
    pub product: String,
    pub version: String,
    /// The newest API the engine speaks.
    pub api_max: String,
    /// The oldest API the engine speaks.
    pub api_min: String,
    /// The API in this client's request paths.
    pub api_used: String,
    /// `DOCKER_HOST`, or the default socket.
    pub host: String,
}

impl EngineInfo {
    /// `Docker Engine 28.5.2, API 1.51 (engine max 1.51), unix:///run/...`
    pub fn describe(&self) -> String {
        format!(
            "{} {}, API {} (engine max {}), {}",
            self.product, self.version, self.api_used, self.api_max, self.host
        )
    }
}

/// Asks the engine who it is; what it does not say is `unknown`.
pub async fn engine_info(docker: &Docker) -> EngineInfo {
    let unknown = || "unknown".to_string();
    let used = api_used(docker);
    let mut info = EngineInfo {
        product: unknown(),
        version: unknown(),
        api_max: unknown(),
        api_min: unknown(),
        api_used: format!("{}.{}", used.0, used.1),
        host: std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into()),
    };
    if let Ok(v) = docker.version().await {
        info.product = v
            .components
            .as_ref()
            .and_then(|c| c.first())
            .map(|c| c.name.clone())
            .filter(|n| !n.is_empty() && n != "Engine")
            .unwrap_or_else(|| "Docker Engine".into());
        info.version = v.version.unwrap_or_else(unknown);
        info.api_max = v.api_version.unwrap_or_else(unknown);
        info.api_min = v.min_api_version.unwrap_or_else(unknown);
    }
    info
}

#[cfg(test)]
mod tests;
