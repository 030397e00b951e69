//! Paths given on the command line: as given when they exist, else relative
//! to the workspace root (so `cargo xtask` works from any folder). The one
//! resolver of xtask.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// `p` as given when it exists, else relative to the workspace root.
pub fn resolve(p: &Path) -> PathBuf {
    if p.is_relative() && !p.exists() {
        root().join(p)
    } else {
        p.to_path_buf()
    }
}

/// `p` relative to the workspace root when it lies inside it (for commands
/// printed to be re-run), else as given.
pub fn from_root(given: &Path, resolved: &Path) -> PathBuf {
    match (resolved.canonicalize(), root().canonicalize()) {
        (Ok(f), Ok(r)) => f.strip_prefix(&r).map(Path::to_path_buf).unwrap_or(f),
        _ => given.to_path_buf(),
    }
}
