//! An external client run as a container of the client image
//! (`testbed/clients:dev`) on the testbed's macvlan segment, with its own
//! static address: an application server on the LAN, as in the source
//! articles. Its stdout is the JSON-lines history, its stderr a log.
//!
//! Invariants: the container has no capability at all (`cap_drop ALL`:
//! clients need neither NET_ADMIN nor NET_RAW); it carries the testbed's
//! labels (`LABEL_MANAGED`, `LABEL_NAME`, `LABEL_KIND=client`), so the
//! testbed's removal (its `Drop`, Ctrl-C, `down`) removes it too; it is
//! removed when stopped, and when its handle is dropped without a stop.
//! Output is read through an attach made before the start, so nothing it
//! prints is lost, whatever the engine's log driver.

use crate::backend::docker::{KIND_CLIENT, LABEL_CLIENT, LABEL_KIND, LABEL_MANAGED, LABEL_NAME};
use crate::error::{Error, Result};
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkingConfig,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, InspectContainerOptions,
    KillContainerOptions, RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// What to start.
pub struct Launch<'a> {
    pub docker: &'a Docker,
    /// The testbed the container belongs to (its `LABEL_NAME`).
    pub testbed: &'a str,
    pub container: String,
    pub image: &'a str,
    /// The Docker network to join, and the address on it.
    pub network: &'a str,
    pub ip: Ipv4Addr,
    /// The launcher and its arguments.
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The client program's name (its `LABEL_CLIENT`).
    pub client: &'a str,
}

/// A started client container.
pub struct Running {
    docker: Docker,
    pub name: String,
    reader: Option<JoinHandle<Option<String>>>,
    removed: bool,
}

/// How the container ended.
#[derive(Debug, Clone)]
pub struct Ended {
    /// `exit status: 0`, `killed: still running 5 s after SIGTERM`, ...
    pub exit: String,
    pub exit_code: Option<i64>,
    /// Reading its output failed before the end.
    pub read_error: Option<String>,
}

/// Creates the container, attaches to its output (stdout lines into
/// `lines`, stderr into `stderr`), then starts it. A failure after the
/// create removes it again.
pub async fn start(
    l: Launch<'_>,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
) -> Result<Running> {
    let labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_NAME.to_string(), l.testbed.to_string()),
        (LABEL_KIND.to_string(), KIND_CLIENT.to_string()),
        (LABEL_CLIENT.to_string(), l.client.to_string()),
    ]);
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(l.ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(l.image.to_string()),
        cmd: Some(l.cmd.clone()),
        env: Some(l.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some(l.network.to_string()),
            cap_drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(l.network.to_string(), endpoint)])),
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default()
        .name(&l.container)
        .build();
    l.docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| Error::docker(format!("create client container {}", l.container), e))?;
    let mut running = Running {
        docker: l.docker.clone(),
        name: l.container.clone(),
        reader: None,
        removed: false,
    };
    let attach = AttachContainerOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .stream(true)
        // attached before the start, as `docker run` does: nothing to
        // replay (a replay too may deliver the first lines twice)
        .logs(false)
        .build();
    let attached = l
        .docker
        .attach_container(&l.container, Some(attach))
        .await
        .map_err(|e| Error::docker(format!("attach to client container {}", l.container), e));
    let attached = match attached {
        Ok(a) => a,
        Err(e) => {
            running.remove().await;
            return Err(e);
        }
    };
    running.reader = Some(tokio::spawn(read(attached.output, lines, stderr)));
    if let Err(e) = l.docker.start_container(&l.container, None).await {
        running.remove().await;
        return Err(Error::docker(
            format!("start client container {}", l.container),
            e,
        ));
    }
    Ok(running)
}

/// Splits the attached output into stdout lines and stderr text (frames may
/// cut lines anywhere). Returns the read error, if any.
async fn read(
    mut out: std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>>
                + Send,
        >,
    >,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
) -> Option<String> {
    let mut partial: Vec<u8> = Vec::new();
    let mut error = None;
    while let Some(item) = out.next().await {
        match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                partial.extend_from_slice(&message);
                while let Some(i) = partial.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=i).collect();
                    let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                    lines.lock().expect("not poisoned").push(text);
                }
            }
            Ok(LogOutput::StdErr { message }) => stderr
                .lock()
                .expect("not poisoned")
                .push_str(&String::from_utf8_lossy(&message)),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    if !partial.is_empty() {
        let text = String::from_utf8_lossy(&partial).into_owned();
        lines.lock().expect("not poisoned").push(text);
    }
    error
}

impl Running {
    /// Whether its output has ended (the container exited).
    pub fn output_ended(&self) -> bool {
        self.reader.as_ref().is_none_or(|r| r.is_finished())
    }

    /// The exit code once the container has stopped; `None` while it runs.
    pub async fn exited(&self) -> Option<i64> {
        let c = self
            .docker
            .inspect_container(&self.name, None::<InspectContainerOptions>)
            .await
            .ok()?;
        let s = c.state?;
        if s.running.unwrap_or(false) {
            None
        } else {
            Some(s.exit_code.unwrap_or(-1))
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; reads the rest of its output and
    /// removes the container.
    pub async fn stop(mut self, grace: Duration) -> Ended {
        let exit = match self.exited().await {
            Some(code) => format!("exit status: {code}"),
            None => {
                let term = KillContainerOptions {
                    signal: "SIGTERM".into(),
                };
                // it may exit between the inspect and the kill: fine
                let _ = self.docker.kill_container(&self.name, Some(term)).await;
                let deadline = tokio::time::Instant::now() + grace;
                loop {
                    if let Some(code) = self.exited().await {
                        break format!("exit status: {code}");
                    }
                    if tokio::time::Instant::now() >= deadline {
                        let kill = KillContainerOptions {
                            signal: "SIGKILL".into(),
                        };
                        let _ = self.docker.kill_container(&self.name, Some(kill)).await;
                        break format!("killed: still running {} s after SIGTERM", grace.as_secs());
                    }
                    // the engine reports the exit; polled, as `docker wait`
                    // would fail on a non-zero status
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let exit_code = self.exited().await;
        let read_error = match self.reader.take() {
            // the attach ends with the container; bounded in case it does not
            Some(r) => match tokio::time::timeout(Duration::from_secs(5), r).await {
                Ok(Ok(e)) => e,
                Ok(Err(e)) => Some(format!("the output reader failed: {e}")),
                Err(_) => Some("its output did not end within 5 s of its exit".into()),
            },
            None => None,
        };
        self.remove().await;
        Ended {
            exit,
            exit_code,
            read_error,
        }
    }

    async fn remove(&mut self) {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(&self.name, Some(opts)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => self.removed = true,
            // left for Drop and the testbed's removal, which find it by label
            Err(e) => tracing::warn!("removing client container {}: {e}", self.name),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        if self.removed {
            return;
        }
        // a run that ended without `stop` (an error, a Ctrl-C): remove it on
        // a thread of its own with its own runtime
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let docker = crate::backend::docker::connect().await.ok()?;
                let opts = RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                };
                docker.remove_container(&name, Some(opts)).await.ok()
            })
        })
        .join();
    }
}
