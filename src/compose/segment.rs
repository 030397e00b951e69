//! The host side of a Compose project: its segment (macvlan parent + host
//! shim), made by the code and with the names `cargo xtask up` uses, and the
//! state file that lets `cargo xtask status|down --name` find the project.

use super::{testbed_name, topology};
use crate::backend::links;
use crate::error::{Error, Result};
use crate::model::net::Names;
use crate::model::topology::Topology;
use crate::testbed::teardown;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The host side of a Compose project's segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The macvlan parent (what `TESTBED_PARENT` must name).
    pub parent: String,
    pub shim: String,
    pub shim_ip: Ipv4Addr,
    /// False when the segment existed already.
    pub created: bool,
    /// The state file that lets `cargo xtask status --name ...` attach.
    pub state_file: PathBuf,
}

/// Creates the segment of `t`'s Compose project with the same code and
/// names `cargo xtask up` uses for a testbed (a veth pair as the parent, or
/// the existing interface `parent`, plus the host shim), and records the
/// testbed under `state_root`. Idempotent.
pub async fn segment_up(t: &Topology, parent: Option<&str>, state_root: &Path) -> Result<Segment> {
    let ct = topology(t)?;
    let names = Names::new(&ct.name);
    let exists = links::owned_links()
        .await?
        .iter()
        .any(|l| l.testbed == ct.name);
    let parent = if exists {
        parent.unwrap_or(&names.parent).to_string()
    } else {
        let busy = links::host_addresses_in(ct.subnet).await?;
        if !busy.is_empty() && parent.is_none() {
            return Err(Error::Busy {
                what: format!("subnet {}", ct.subnet),
                detail: format!("host addresses in it: {}", busy.join(", ")),
                hint: "is a testbed with this subnet up? remove it (`cargo xtask down --name ...`), or pick another `subnet`".into(),
            });
        }
        match links::create_segment(&names, ct.subnet, ct.shim_ip(), parent).await {
            Ok(p) => p,
            // take back what was made before the failure; say so if that fails too
            Err(e) => {
                let name = [ct.name.clone()];
                return Err(match links::remove_testbed_links(Some(&ct.name), &name).await {
                    Ok(_) => e,
                    Err(undo) => Error::State(format!(
                        "{e}; removing the half-made segment failed too: {undo}\n  hint: `cargo xtask segment down` or `cargo xtask down --all`"
                    )),
                });
            }
        }
    };
    let state_file = crate::testbed::write_state(state_root, &ct, &parent)?;
    Ok(Segment {
        parent,
        shim: names.shim.clone(),
        shim_ip: ct.shim_ip(),
        created: !exists,
        state_file,
    })
}

/// Removes the segment of `t`'s Compose project and its record; refuses
/// while containers of the project exist (they would lose their parent).
/// Returns the links removed. Idempotent.
pub async fn segment_down(
    docker: &bollard::Docker,
    t: &Topology,
    state_root: &Path,
) -> Result<Vec<String>> {
    let name = testbed_name(&t.name);
    let running = teardown::containers(docker, Some(&name)).await?;
    if !running.is_empty() {
        return Err(Error::Busy {
            what: format!("the segment of {name}"),
            detail: format!("its containers exist: {}", running.join(", ")),
            hint: format!(
                "run `docker-compose down -v` in the project first (or `cargo xtask down --name {name}`)"
            ),
        });
    }
    let removed = links::remove_testbed_links(Some(&name), std::slice::from_ref(&name)).await?;
    let dir = state_root.join(&name);
    if dir.join(crate::testbed::STATE_FILE).is_file() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    Ok(removed)
}
