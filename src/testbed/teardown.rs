//! Removing testbeds: one by name, or every testbed-labelled object on the
//! machine (`down --all`), plus the Ctrl-C / SIGTERM hook that removes the
//! testbeds this process is still building or owns.
//!
//! Invariant: removal finds objects by label (containers, networks) and by
//! link alias — never by guessing names — and is idempotent.

use crate::backend::docker::{LABEL_MANAGED, LABEL_NAME};
use crate::backend::links;
use crate::error::{Error, Result};
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use bollard::Docker;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

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
        self.containers.is_empty() && self.networks.is_empty() && self.links.is_empty()
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
        .filter_map(|c| c.names.and_then(|n| n.into_iter().next()))
        .map(|n| n.trim_start_matches('/').to_string())
        .collect())
}

/// Names of the networks of testbed `name` (or of all testbeds).
pub async fn networks(docker: &Docker, name: Option<&str>) -> Result<Vec<String>> {
    let list = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filter(name)),
        }))
        .await
        .map_err(|e| Error::docker("list networks", e))?;
    Ok(list.into_iter().filter_map(|n| n.name).collect())
}

/// Removes testbed `name` (every testbed when `None`): containers, networks,
/// host links, and state directories under `state_root`.
pub async fn down(
    docker: &Docker,
    name: Option<&str>,
    state_root: &std::path::Path,
) -> Result<Removed> {
    let mut removed = Removed::default();
    let mut names = containers(docker, name).await?;
    // Sentinels first: they live in their redis container's namespace.
    names.sort_by_key(|n| !n.ends_with("-sentinel"));
    let opts = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    for c in names {
        match docker.remove_container(&c, Some(opts.clone())).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => removed.containers.push(c),
            Err(e) => return Err(Error::docker(format!("remove container {c}"), e)),
        }
    }
    for n in networks(docker, name).await? {
        match docker.remove_network(&n).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => removed.networks.push(n),
            Err(e) => return Err(Error::docker(format!("remove network {n}"), e)),
        }
    }
    removed.links = links::remove_links(name)?;
    let dirs: Vec<PathBuf> = match name {
        Some(n) => vec![state_root.join(n)],
        None => std::fs::read_dir(state_root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join(crate::testbed::STATE_FILE).is_file())
            .collect(),
    };
    for d in dirs {
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|e| Error::io(&d, e))?;
            removed.state_dirs.push(d.display().to_string());
        }
    }
    Ok(removed)
}

/// Removes testbed `name` from synchronous code (a `Drop`, a signal
/// handler): runs on a thread of its own with its own runtime, so it works
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

/// Testbeds this process must remove if it is interrupted.
fn live() -> &'static Mutex<Vec<(String, PathBuf)>> {
    static LIVE: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// Registers a testbed for removal on Ctrl-C / SIGTERM (installs the handler
/// once per process).
pub fn register(name: &str, state_root: PathBuf) {
    install_signal_handler();
    live()
        .lock()
        .expect("live lock")
        .push((name.to_string(), state_root));
}

/// Forgets a testbed (removed, or handed over to the user by `up`).
pub fn unregister(name: &str) {
    live().lock().expect("live lock").retain(|(n, _)| n != name);
}

fn install_signal_handler() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::thread::spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
                let list = std::mem::take(&mut *live().lock().expect("live lock"));
                for (name, root) in list {
                    eprintln!("interrupted: removing testbed {name}");
                    if let Err(e) = down_blocking(&name, root) {
                        eprintln!(
                            "removing testbed {name} failed: {e}; run `cargo xtask down --all`"
                        );
                    }
                }
                std::process::exit(130);
            });
        });
    });
}
