//! Docker objects of a testbed: the macvlan network and the two containers
//! of each node, created through bollard.
//!
//! Invariants: containers get only NET_ADMIN and NET_RAW (never privileged);
//! every object carries `LABEL_MANAGED` and `LABEL_NAME`; the sentinel
//! container joins its redis container's network namespace
//! (`container:<redis>`), as if both ran on one server.

use crate::backend::docker::{LABEL_KIND, LABEL_MANAGED, LABEL_NAME, LABEL_NODE};
use crate::error::{Error, Result};
use crate::model::net::{mac_for, Names};
use crate::model::render::{self, paths};
use crate::model::topology::{Node, Topology};
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, InspectContainerOptions};
use bollard::Docker;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Host directories of one node (bind-mounted into its containers).
pub struct NodeDirs {
    pub redis: PathBuf,
    pub sentinel: PathBuf,
    pub log: PathBuf,
    /// The clock offset files of the node's two processes.
    pub clock: PathBuf,
}

impl NodeDirs {
    pub fn new(state_dir: &Path, node: &str) -> NodeDirs {
        let base = state_dir.join(node);
        NodeDirs {
            redis: base.join("redis"),
            sentinel: base.join("sentinel"),
            log: base.join("log"),
            clock: base.join("clock"),
        }
    }
}

fn labels(t: &Topology, node: Option<&str>, kind: Option<&str>) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_NAME.to_string(), t.name.clone()),
    ]);
    if let Some(n) = node {
        l.insert(LABEL_NODE.to_string(), n.to_string());
    }
    if let Some(k) = kind {
        l.insert(LABEL_KIND.to_string(), k.to_string());
    }
    l
}

/// Creates the macvlan network on `parent` (bridge mode, the topology's subnet).
pub async fn create_network(
    docker: &Docker,
    t: &Topology,
    names: &Names,
    parent: &str,
) -> Result<()> {
    let req = NetworkCreateRequest {
        name: names.network.clone(),
        driver: Some("macvlan".into()),
        ipam: Some(Ipam {
            driver: Some("default".into()),
            config: Some(vec![IpamConfig {
                subnet: Some(t.subnet.to_string()),
                gateway: Some(t.gateway().to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        options: Some(HashMap::from([
            ("parent".to_string(), parent.to_string()),
            ("macvlan_mode".to_string(), "bridge".to_string()),
        ])),
        labels: Some(labels(t, None, None)),
        ..Default::default()
    };
    docker.create_network(req).await.map_err(|e| {
        Error::docker(
            format!("create macvlan network {} on {parent}", names.network),
            e,
        )
    })?;
    Ok(())
}

fn bind(host: &Path, container: &str, ro: bool) -> String {
    format!(
        "{}:{container}:{}",
        host.display(),
        if ro { "ro" } else { "rw" }
    )
}

fn caps() -> Option<Vec<String>> {
    Some(vec!["NET_ADMIN".into(), "NET_RAW".into()])
}

/// Creates and starts the redis container of `node`; returns its id.
pub async fn create_redis(
    docker: &Docker,
    t: &Topology,
    names: &Names,
    node: &Node,
    dirs: NodeDirs,
    tools: &Path,
) -> Result<String> {
    let name = names.redis(&node.name);
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(node.ip.to_string()),
            ..Default::default()
        }),
        // Honoured by engines with API >= 1.44; dockerd 20.10 derives the
        // same MAC from the IP (checked after start by `verify_mac`).
        mac_address: Some(mac_for(node.ip)),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(t.image.clone()),
        hostname: Some(node.name.clone()),
        cmd: Some(vec![
            format!("{}/sh", paths::BIN),
            format!("{}/start-redis", paths::BIN),
        ]),
        env: Some(vec![format!("PATH={}", paths::PATH)]),
        labels: Some(labels(t, Some(&node.name), Some("redis"))),
        host_config: Some(HostConfig {
            network_mode: Some(names.network.clone()),
            cap_add: caps(),
            binds: Some(vec![
                bind(tools, paths::BIN, true),
                bind(&dirs.redis, paths::REDIS_DIR, false),
                bind(&dirs.clock, paths::CLOCK_DIR, true),
            ]),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(names.network.clone(), endpoint)])),
        }),
        ..Default::default()
    };
    create_and_start(docker, &name, body).await
}

/// Creates and starts the sentinel container of `node` in the network
/// namespace of its redis container; returns its id.
pub async fn create_sentinel(
    docker: &Docker,
    t: &Topology,
    names: &Names,
    node: &Node,
    dirs: NodeDirs,
    tools: &Path,
    script_dir: &Path,
) -> Result<String> {
    let name = names.sentinel(&node.name);
    let env = render::sentinel_env(t, node)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let body = ContainerCreateBody {
        image: Some(t.image.clone()),
        cmd: Some(vec![
            format!("{}/sh", paths::BIN),
            format!("{}/start-sentinel", paths::BIN),
        ]),
        env: Some(env),
        labels: Some(labels(t, Some(&node.name), Some("sentinel"))),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{}", names.redis(&node.name))),
            cap_add: caps(),
            binds: Some(vec![
                bind(tools, paths::BIN, true),
                bind(&dirs.sentinel, paths::SENTINEL_DIR, false),
                bind(script_dir, paths::SCRIPT_DIR, true),
                bind(&dirs.log, paths::LOG_DIR, false),
                bind(&dirs.clock, paths::CLOCK_DIR, true),
            ]),
            // The seed runs sentinel under supervisor with
            // autorestart=unexpected: restart on an unexpected exit only.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    create_and_start(docker, &name, body).await
}

async fn create_and_start(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> Result<String> {
    let opts = CreateContainerOptionsBuilder::default().name(name).build();
    let created = docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| Error::docker(format!("create container {name}"), e))?;
    docker
        .start_container(name, None)
        .await
        .map_err(|e| Error::docker(format!("start container {name}"), e))?;
    Ok(created.id)
}

/// What `docker inspect` says about a container that matters here.
#[derive(Debug, Clone, Default)]
pub struct ContainerState {
    pub running: bool,
    pub paused: bool,
    pub pid: i64,
    pub mac: Option<String>,
    pub exit_code: Option<i64>,
    /// Restarts Docker's restart policy made.
    pub restart_count: i64,
}

/// Inspects `name`; `None` when the container does not exist.
pub async fn state(docker: &Docker, name: &str, network: &str) -> Result<Option<ContainerState>> {
    match docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
    {
        Ok(c) => {
            let s = c.state.unwrap_or_default();
            let mac = c
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|mut n| n.remove(network))
                .and_then(|e| e.mac_address)
                .filter(|m| !m.is_empty());
            Ok(Some(ContainerState {
                running: s.running.unwrap_or(false),
                paused: s.paused.unwrap_or(false),
                pid: s.pid.unwrap_or(0),
                mac,
                exit_code: s.exit_code,
                restart_count: c.restart_count.unwrap_or(0),
            }))
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(Error::docker(format!("inspect {name}"), e)),
    }
}

/// Checks that the engine gave `node` the MAC the testbed derives from its
/// IP; a different engine that ignores both ways fails loudly here.
pub async fn verify_mac(docker: &Docker, names: &Names, node: &Node) -> Result<()> {
    let want = mac_for(node.ip);
    let got = state(docker, &names.redis(&node.name), &names.network)
        .await?
        .and_then(|s| s.mac);
    match got {
        Some(m) if m.eq_ignore_ascii_case(&want) => Ok(()),
        other => Err(Error::State(format!(
            "{} got MAC {} but the testbed needs {want} (derived from {}); this engine neither derives MACs from IPs nor honours endpoint MACs",
            node.name,
            other.unwrap_or_else(|| "none".into()),
            node.ip
        ))),
    }
}

/// What can be done to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// SIGKILL; Docker's restart policy does not answer it.
    Kill,
    /// SIGTERM, then SIGKILL after 2 s.
    Stop,
    Start,
    /// Stop with no grace and start again.
    Restart,
    /// cgroup freezer.
    Pause,
    Unpause,
}

/// Applies `op` to container `name`; the error names both.
pub async fn apply(docker: &Docker, name: &str, op: Op) -> Result<()> {
    use bollard::query_parameters::{
        KillContainerOptions, RestartContainerOptions, StopContainerOptions,
    };
    let r = match op {
        Op::Kill => {
            docker
                .kill_container(name, None::<KillContainerOptions>)
                .await
        }
        Op::Stop => {
            let opts = StopContainerOptions {
                t: Some(2),
                ..Default::default()
            };
            docker.stop_container(name, Some(opts)).await
        }
        Op::Start => docker.start_container(name, None).await,
        Op::Restart => {
            let opts = RestartContainerOptions {
                t: Some(0),
                ..Default::default()
            };
            docker.restart_container(name, Some(opts)).await
        }
        Op::Pause => docker.pause_container(name).await,
        Op::Unpause => docker.unpause_container(name).await,
    };
    r.map_err(|e| Error::docker(format!("{op:?} {name}").to_lowercase(), e))
}
