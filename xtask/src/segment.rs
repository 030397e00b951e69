//! `cargo xtask segment up|down`: the host side of a Compose project — the
//! macvlan parent (a veth pair, or a real NIC) and the host shim — made by
//! the same library code and with the names `cargo xtask up` uses.

use crate::flags::SegmentAction;
use anyhow::{ensure, Result};
use std::path::Path;
use testbed::compose;

pub async fn run(
    action: SegmentAction,
    topology: &Path,
    parent: Option<&str>,
    allow_any_subnet: bool,
    state_root: &Path,
) -> Result<()> {
    let t = crate::compose::load(topology, allow_any_subnet)?;
    let name = compose::testbed_name(&t.name);
    ensure!(
        testbed::host::is_root(),
        "the segment is made of host links: run as root (e.g. `sudo -E cargo xtask segment ...`)"
    );
    match action {
        SegmentAction::Up => {
            let s = compose::segment_up(&t, parent, state_root).await?;
            println!(
                "segment of {name} {}: parent {}, shim {} {}/{}",
                if s.created { "created" } else { "already up" },
                s.parent,
                s.shim,
                s.shim_ip,
                t.subnet.prefix()
            );
            if parent.is_some() {
                println!(
                    "start the project with `{}={} docker-compose up -d`",
                    compose::ENV_PARENT,
                    s.parent
                );
            } else {
                println!("start the project with `docker-compose up -d` in compose/");
            }
        }
        SegmentAction::Down => {
            let docker = testbed::docker::connect().await?;
            let removed = compose::segment_down(&docker, &t, state_root).await?;
            if removed.is_empty() {
                println!("segment of {name}: nothing to remove");
            } else {
                println!("segment of {name} removed: {}", removed.join(", "));
            }
        }
    }
    Ok(())
}
