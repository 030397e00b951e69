//! `cargo xtask compose`: renders the Docker Compose project of a topology
//! (compose/ is that of fixtures/topology.toml), or with `--check` fails when
//! a project differs from a fresh rendering.

use crate::flags::TopologyArgs;
use crate::paths::{resolve, root};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use testbed::{ParseOptions, Topology};

/// Reads the topology file (after `resolve`).
pub fn load(path: &Path, allow_any_subnet: bool) -> Result<Topology> {
    Ok(Topology::from_file(
        &resolve(path),
        &ParseOptions { allow_any_subnet },
    )?)
}

/// How the headers name the topology: its path inside the workspace (the
/// same from any working directory), else its file name.
fn label(path: &Path) -> String {
    let inside = std::fs::canonicalize(path)
        .ok()
        .zip(std::fs::canonicalize(root()).ok())
        .and_then(|(p, r)| p.strip_prefix(r).ok().map(Path::to_path_buf));
    let shown = inside.unwrap_or_else(|| path.file_name().map_or(path.into(), PathBuf::from));
    shown
        .iter()
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

pub fn run(topo: &TopologyArgs, out: &Path, check: bool) -> Result<()> {
    let path = resolve(&topo.topology);
    let mut t = load(&path, topo.allow_any_subnet)?;
    if let Some(img) = &topo.image {
        t.image = img.clone();
    }
    let files = testbed::compose::render(&t, &label(&path))?;
    let dir = if out.is_relative() {
        root().join(out)
    } else {
        out.to_path_buf()
    };
    if check {
        let drift = testbed::compose::check(&dir, &files)?;
        if !drift.is_empty() {
            bail!(
                "{} is not the rendering of {}:\n  {}\nregenerate it with `cargo xtask compose` (same --topology/--image/--out)",
                dir.display(),
                path.display(),
                drift.join("\n  ")
            );
        }
        println!("{} is up to date ({} files)", dir.display(), files.len());
        return Ok(());
    }
    let w = testbed::compose::write(&dir, &files)?;
    for f in &w.changed {
        println!("wrote   {}", dir.join(f).display());
    }
    for f in &w.removed {
        println!("removed {}", dir.join(f).display());
    }
    println!(
        "{}: {} files, {} changed, {} removed",
        dir.display(),
        files.len(),
        w.changed.len(),
        w.removed.len()
    );
    Ok(())
}
