//! The pinned versions of the client image's inputs, read from the
//! committed locks, and the hash of `fixtures/clients` its label carries.

use crate::backend::host;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

use super::{RECIPE, SID_GO_PACKAGES, TRIXIE_PACKAGES};

/// `name@version` of the top-level npm dependencies and of @redis/client.
pub fn npm_versions(lock: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(lock).map_err(|e| Error::io(lock, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::State(format!("{}: {e}", lock.display())))?;
    let pkgs = &v["packages"];
    let mut names: Vec<String> = pkgs[""]["dependencies"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    names.push("@redis/client".into());
    Ok(names
        .iter()
        .map(|n| {
            let ver = pkgs[format!("node_modules/{n}")]["version"]
                .as_str()
                .unwrap_or("?");
            format!("{n}@{ver}")
        })
        .collect())
}

/// `name==version` lines of a requirements file.
pub fn pip_versions(req: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(req).map_err(|e| Error::io(req, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("=="))
        .map(|l| l.split_whitespace().next().unwrap_or(l).to_string())
        .collect())
}

/// The version Cargo.lock resolved for `krate`.
pub fn cargo_version(lock: &Path, krate: &str) -> Result<String> {
    let text = std::fs::read_to_string(lock).map_err(|e| Error::io(lock, e))?;
    let v: toml::Value =
        toml::from_str(&text).map_err(|e| Error::State(format!("{}: {e}", lock.display())))?;
    v.get("package")
        .and_then(|p| p.as_array())
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(krate))
        })
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::State(format!("{}: no package {krate}", lock.display())))
}

/// The sha256 of the recipe and of every file under `fixtures/clients`
/// (path and content; build outputs excluded), as `sha256sum` computes it.
pub async fn inputs_hash(fixtures: &Path) -> Result<String> {
    let mut files = Vec::new();
    walk(fixtures, &mut files)?;
    files.sort();
    let mut manifest = format!(
        "{RECIPE}\ntrixie {}\nsid {}\n",
        TRIXIE_PACKAGES.join(" "),
        SID_GO_PACKAGES.join(" ")
    );
    let paths: Vec<String> = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    for chunk in paths.chunks(200) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let out = host::run_async("sha256sum", &refs).await?;
        let prefix = format!("{}/", fixtures.display());
        manifest.push_str(&out.replace(&prefix, ""));
    }
    // unique per call: tests hash in parallel threads of one process
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!(
        "testbed-clients-manifest-{}-{n}",
        std::process::id()
    ));
    std::fs::write(&tmp, &manifest).map_err(|e| Error::io(&tmp, e))?;
    let out = host::run_async("sha256sum", &[&tmp.to_string_lossy()]).await;
    let _ = std::fs::remove_file(&tmp);
    Ok(out?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ft = e.file_type().map_err(|e| Error::io(&p, e))?;
        if ft.is_dir() {
            if !matches!(name.as_ref(), "target" | "node_modules" | "__pycache__") {
                walk(&p, out)?;
            }
        } else if ft.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
