//! Writing a Compose project into a directory and checking a directory
//! against a fresh rendering (rust-analyzer's codegen check).

use super::{File, COMPOSE_FILE, GENERATED};
use crate::error::{Error, Result};
use std::path::Path;

/// What [`write`] did.
#[derive(Debug, Default)]
pub struct Written {
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// Writes `files` into `dir` (only those that differ) and removes files the
/// rendering no longer has. Refuses a non-empty `dir` that holds no
/// generated compose file: it is not a project to overwrite.
pub fn write(dir: &Path, files: &[File]) -> Result<Written> {
    use std::os::unix::fs::PermissionsExt;
    let existing = list(dir)?;
    if !existing.is_empty() {
        let marker = std::fs::read_to_string(dir.join(COMPOSE_FILE)).unwrap_or_default();
        if !marker.contains(GENERATED) {
            return Err(Error::State(format!(
                "{} is not empty and holds no generated {COMPOSE_FILE}: not overwriting it (choose another --out)",
                dir.display()
            )));
        }
    }
    let mut w = Written::default();
    for f in files {
        let p = dir.join(&f.path);
        let same = std::fs::read_to_string(&p).is_ok_and(|c| c == f.contents)
            && mode_of(&p).is_some_and(|m| executable(m) == executable(f.mode));
        if same {
            continue;
        }
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        std::fs::write(&p, &f.contents).map_err(|e| Error::io(&p, e))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(f.mode))
            .map_err(|e| Error::io(&p, e))?;
        w.changed.push(f.path.clone());
    }
    for extra in existing
        .into_iter()
        .filter(|e| !files.iter().any(|f| &f.path == e))
    {
        let p = dir.join(&extra);
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        // Directories left empty go too (the node of an older rendering).
        let mut d = p.parent();
        while let Some(x) = d.filter(|x| *x != dir) {
            if std::fs::remove_dir(x).is_err() {
                break;
            }
            d = x.parent();
        }
        w.removed.push(extra);
    }
    Ok(w)
}

/// How `dir` differs from `files`: one line per stale, missing, extra or
/// wrongly executable file (empty: up to date).
pub fn check(dir: &Path, files: &[File]) -> Result<Vec<String>> {
    let mut drift = Vec::new();
    for f in files {
        let p = dir.join(&f.path);
        match std::fs::read_to_string(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                drift.push(format!("{}: missing", f.path))
            }
            Err(e) => return Err(Error::io(&p, e)),
            Ok(got) if got != f.contents => drift.push(format!(
                "{}: differs from a fresh rendering ({})",
                f.path,
                first_difference(&f.contents, &got)
            )),
            Ok(_) => {
                let m = mode_of(&p).unwrap_or(0);
                if executable(m) != executable(f.mode) {
                    drift.push(format!(
                        "{}: mode {m:o}, want {}executable",
                        f.path,
                        if executable(f.mode) { "" } else { "not " }
                    ));
                }
            }
        }
    }
    for extra in list(dir)?
        .into_iter()
        .filter(|e| !files.iter().any(|f| &f.path == e))
    {
        drift.push(format!("{extra}: not part of the rendering"));
    }
    Ok(drift)
}

fn executable(mode: u32) -> bool {
    mode & 0o111 != 0
}

fn mode_of(p: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

fn first_difference(want: &str, got: &str) -> String {
    let (mut w, mut g) = (want.lines(), got.lines());
    for line in 1.. {
        match (w.next(), g.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (a, b) => {
                return format!(
                    "line {line}: want {:?}, found {:?}",
                    a.unwrap_or("<end of file>"),
                    b.unwrap_or("<end of file>")
                )
            }
        }
    }
    unreachable!("the loop returns")
}

/// Every file under `dir` (relative, `/`-separated, sorted); none when `dir`
/// does not exist.
fn list(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) -> Result<()> {
        let entries = match std::fs::read_dir(d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(d, e)),
        };
        for e in entries {
            let e = e.map_err(|e| Error::io(d, e))?;
            let p = e.path();
            let ty = e.file_type().map_err(|e| Error::io(&p, e))?;
            if ty.is_dir() {
                walk(root, &p, out)?;
            } else {
                let rel = p.strip_prefix(root).expect("under root");
                let parts: Vec<_> = rel.iter().map(|s| s.to_string_lossy()).collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}
