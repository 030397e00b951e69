//! Mount points the host sees (mountinfo), unmounting them, and removing a
//! tree that may hold some.

use anyhow::{ensure, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Mount points in a mountinfo text (field 5, octal escapes undone).
pub fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_octal(m)))
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points the host sees at or under any of `prefixes`, deepest first.
pub fn mounts_under(prefixes: &[&Path]) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut out: Vec<PathBuf> = parse_mountinfo(&text)
        .into_iter()
        .filter(|m| prefixes.iter().any(|p| m.starts_with(p)))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    Ok(out)
}

/// Unmounts everything at or under `prefixes` (lazily when a plain unmount
/// fails); returns how many it unmounted.
pub(super) fn unmount_under(prefixes: &[&Path]) -> Result<usize> {
    let mut n = 0;
    for _round in 0..5 {
        let m = mounts_under(prefixes)?;
        if m.is_empty() {
            break;
        }
        for p in m {
            let s = p.display().to_string();
            let ok = Command::new("umount")
                .arg(&s)
                .stderr(Stdio::null())
                .status()?
                .success()
                || Command::new("umount").args(["-l", &s]).status()?.success();
            if ok {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Removes a folder tree that may hold leftover mounts (unmounted first;
/// `rm --one-file-system` never crosses into one that stayed).
pub(super) fn remove_tree(p: &Path) -> Result<()> {
    unmount_under(&[p])?;
    let left = mounts_under(&[p])?;
    ensure!(
        left.is_empty(),
        "cannot remove {}: still mounted {left:?}",
        p.display()
    );
    let st = Command::new("rm")
        .args(["-rf", "--one-file-system"])
        .arg(p)
        .status()?;
    ensure!(st.success(), "rm -rf {} failed", p.display());
    Ok(())
}

pub(super) fn tail_of(p: &Path, n: usize) -> String {
    let t = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
