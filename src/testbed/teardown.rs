//! Removing testbeds: one by name, or every testbed-made object on the
//! machine (`down --all`).
//!
//! Removal goes in rounds — list, remove, list again — until nothing of the
//! testbed is left or a bound passes, and it collects errors instead of
//! stopping at the first: a network still "has active endpoints" while a
//! container's removal is under way, and is removed in the next round. What
//! is still there at the end is named in the error, with the command that
//! removes it.
//!
//! Invariant: objects are found by label (containers, networks), by link
//! alias, and by the link names a testbed name gives (`Names`: a link made
//! by `ip link add` whose alias was not set yet, because the process was
//! killed in between, is still found) — never by guessing; idempotent.

use crate::backend::docker::{LABEL_MANAGED, LABEL_NAME};
use crate::backend::links;
use crate::error::{Error, Result};
use crate::model::net::Names;
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use bollard::Docker;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long removal keeps trying before it reports what is left.
const PATIENCE: Duration = Duration::from_secs(30);

/// What a removal removed.
#[derive(Debug, Default, Serialize)]
pub struct Removed {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub links: Vec<String>,
    pub state_dirs: Vec<String>,
}

impl Removed {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.links.is_empty()
            && self.state_dirs.is_empty()
    }
}

fn filter(name: Option<&str>) -> HashMap<String, Vec<String>> {
    let label = match name {
        Some(n) => format!("{LABEL_NAME}={n}"),
        None => format!("{LABEL_MANAGED}=true"),
    };
    HashMap::from([("label".to_string(), vec![label])])
}

/// Names of the containers of testbed `name` (or of all testbeds).
pub async fn containers(docker: &Docker, name: Option<&str>) -> Result<Vec<String>> {
    Ok(labelled_containers(docker, name)
        .await?
        .into_iter()
        .map(|(c, _)| c)
        .collect())
}

/// (container, testbed label) of testbed `name` (or of all testbeds).
async fn labelled_containers(docker: &Docker, name: Option<&str>) -> Result<Vec<(String, String)>> {
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filter(name)),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("list containers", e))?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let testbed = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_NAME).cloned())
                .unwrap_or_default();
            let n = c.names.and_then(|n| n.into_iter().next())?;
            Some((n.trim_start_matches('/').to_string(), testbed))
        })
        .collect())
}

/// Names of the networks of testbed `name` (or of all testbeds).
pub async fn networks(docker: &Docker, name: Option<&str>) -> Result<Vec<String>> {
    Ok(labelled_networks(docker, name)
        .await?
        .into_iter()
        .map(|(n, _)| n)
        .collect())
}

async fn labelled_networks(docker: &Docker, name: Option<&str>) -> Result<Vec<(String, String)>> {
    let list = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filter(name)),
        }))
        .await
        .map_err(|e| Error::docker("list networks", e))?;
    Ok(list
        .into_iter()
        .filter_map(|n| {
            let testbed = n
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_NAME).cloned())
                .unwrap_or_default();
            Some((n.name?, testbed))
        })
        .collect())
}

/// State directories under `state_root` (of `name`, or all of them).
fn state_dirs(state_root: &Path, name: Option<&str>) -> Vec<PathBuf> {
    match name {
        Some(n) => vec![state_root.join(n)],
        None => std::fs::read_dir(state_root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join(super::state::STATE_FILE).is_file())
            .collect(),
    }
    .into_iter()
    .filter(|d| d.exists())
    .collect()
}

/// Every testbed name known on this machine: from labels, link aliases and
/// state directories (their link names are derived from these).
async fn known_names(docker: &Docker, state_root: &Path) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    names.extend(
        labelled_containers(docker, None)
            .await?
            .into_iter()
            .map(|(_, t)| t),
    );
    names.extend(
        labelled_networks(docker, None)
            .await?
            .into_iter()
            .map(|(_, t)| t),
    );
    names.extend(links::owned_links().await?.into_iter().map(|l| l.testbed));
    for d in state_dirs(state_root, None) {
        if let Some(n) = d.file_name() {
            names.insert(n.to_string_lossy().into_owned());
        }
    }
    names.remove("");
    Ok(names)
}

/// Whatever of testbed `name` (every testbed when `None`) still exists:
/// containers, networks, links, impairment daemons, state dirs — empty when
/// nothing does.
pub async fn leftovers(
    docker: &Docker,
    name: Option<&str>,
    state_root: &Path,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    out.extend(
        containers(docker, name)
            .await?
            .into_iter()
            .map(|c| format!("container {c}")),
    );
    out.extend(
        networks(docker, name)
            .await?
            .into_iter()
            .map(|n| format!("network {n}")),
    );
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => known_names(docker, state_root).await?.into_iter().collect(),
    };
    for l in links::testbed_links(name, &names).await? {
        out.push(format!("link {l}"));
    }
    out.extend(
        state_dirs(state_root, name)
            .into_iter()
            .map(|d| format!("state dir {}", d.display())),
    );
    Ok(out)
}

/// Removes testbed `name` (every testbed when `None`): containers,
/// networks, host links, and state directories under `state_root`, in
/// rounds until nothing is left (see the module docs).
pub async fn down(docker: &Docker, name: Option<&str>, state_root: &Path) -> Result<Removed> {
    let mut removed = Removed::default();
    let started = Instant::now();
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => known_names(docker, state_root).await?.into_iter().collect(),
    };
    loop {
        let mut errors = Vec::new();
        round(docker, name, &names, state_root, &mut removed, &mut errors).await;
        let left = leftovers(docker, name, state_root).await?;
        if left.is_empty() {
            return Ok(removed);
        }
        if started.elapsed() >= PATIENCE {
            let what = name.map_or("every testbed".to_string(), |n| format!("testbed `{n}`"));
            let cmd = name.map_or("cargo xtask down --all".to_string(), |n| {
                format!("cargo xtask down --name {n}")
            });
            return Err(Error::State(format!(
                "removing {what}: still there after {:.0} s: {}; errors: {}\n  hint: run `{cmd}` again; if it persists, remove them by hand",
                PATIENCE.as_secs_f64(),
                left.join(", "),
                if errors.is_empty() { "none".to_string() } else { errors.join("; ") }
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One round of removal; every failure goes into `errors`.
async fn round(
    docker: &Docker,
    name: Option<&str>,
    names: &[String],
    state_root: &Path,
    removed: &mut Removed,
    errors: &mut Vec<String>,
) {
    let gone = |e: &bollard::errors::Error| {
        matches!(
            e,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }
        )
    };
    // the impairment daemons first (SIGTERM: they release what they hold);
    // they would also end with their nodes' containers
    for (pid, t) in crate::faults::impair::all_daemons() {
        if name.is_none_or(|n| n == t) {
            // SAFETY: kill(2) on a pid just read from /proc with its command line checked
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    match containers(docker, name).await {
        Ok(mut list) => {
            // sentinels first: they live in their redis container's namespace
            list.sort_by_key(|n| !n.ends_with("-sentinel"));
            let opts = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            for c in list {
                match docker.remove_container(&c, Some(opts.clone())).await {
                    Ok(()) => removed.containers.push(c),
                    Err(e) if gone(&e) => removed.containers.push(c),
                    Err(e) => errors.push(format!("container {c}: {e}")),
                }
            }
        }
        Err(e) => errors.push(e.to_string()),
    }
    match networks(docker, name).await {
        Ok(list) => {
            for n in list {
                match docker.remove_network(&n).await {
                    Ok(()) => removed.networks.push(n),
                    Err(e) if gone(&e) => removed.networks.push(n),
                    Err(e) => errors.push(format!("network {n}: {e}")),
                }
            }
        }
        Err(e) => errors.push(e.to_string()),
    }
    match links::remove_testbed_links(name, names).await {
        Ok(l) => removed.links.extend(l),
        Err(e) => errors.push(e.to_string()),
    }
    // the state dir last: it records what the testbed was until the rest is gone
    if errors.is_empty() {
        for d in state_dirs(state_root, name) {
            match tokio::fs::remove_dir_all(&d).await {
                Ok(()) => removed.state_dirs.push(d.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(format!("{}: {e}", d.display())),
            }
        }
    }
}

/// Removes testbed `name` from synchronous code (a `Drop`, the signal
/// thread): runs on a thread of its own with its own runtime, so it works
/// inside or outside an async context.
pub fn down_blocking(name: &str, state_root: PathBuf) -> Result<Removed> {
    let name = name.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::State(format!("cannot start a runtime for teardown: {e}")))?;
        rt.block_on(async {
            let docker = crate::backend::docker::connect().await?;
            down(&docker, Some(&name), &state_root).await
        })
    })
    .join()
    .map_err(|_| Error::State("teardown thread panicked".into()))?
}

/// The link names testbed `name` gives (for messages and removal by name).
pub fn link_names(name: &str) -> [String; 3] {
    let n = Names::new(name);
    [n.shim, n.parent, n.parent_peer]
}
