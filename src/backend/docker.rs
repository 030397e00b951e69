//! The Docker engine connection and the labels every testbed object carries.

use crate::error::{Error, Result};
use bollard::Docker;

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

/// Connects to the local engine and negotiates the API version down to what
/// the engine speaks (Debian's dockerd 20.10 answers 1.41).
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_local_defaults().map_err(|e| Error::Prerequisite {
        what: format!("cannot reach a Docker engine: {e}"),
        hint: "run `cargo xtask doctor --fix` (installs docker.io and starts dockerd)".into(),
    })?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| Error::Prerequisite {
            what: format!("no Docker engine answers on the local socket: {e}"),
            hint: "start one with `cargo xtask doctor --fix` (or `dockerd &`), then retry".into(),
        })?;
    docker.ping().await.map_err(|e| Error::Prerequisite {
        what: format!("the Docker engine does not answer ping: {e}"),
        hint: "check `docker info`; `cargo xtask doctor --fix` starts dockerd".into(),
    })?;
    Ok(docker)
}

/// The engine's API version as (major, minor).
pub async fn api_version(docker: &Docker) -> Result<(u32, u32)> {
    let v = docker
        .version()
        .await
        .map_err(|e| Error::docker("version", e))?;
    let api = v.api_version.unwrap_or_default();
    let mut it = api.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    Ok((it.next().unwrap_or(0), it.next().unwrap_or(0)))
}
