//! The Debian mirror debootstrap uses.

use std::path::PathBuf;

/// The Debian mirror debootstrap uses: `TESTBED_DEBIAN_MIRROR`, else the
/// host's own apt mirror (reachable where apt works), else deb.debian.org.
pub fn mirror() -> String {
    if let Ok(m) = std::env::var("TESTBED_DEBIAN_MIRROR") {
        if !m.trim().is_empty() {
            return m.trim().trim_end_matches('/').to_string();
        }
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| mirror_from_sources(&text))
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

/// The first Debian archive URI (`http(s)://…/debian`) in a one-line-style
/// `.list` or a deb822 `.sources` text; security and third-party repos and
/// commented lines are skipped.
pub fn mirror_from_sources(text: &str) -> Option<String> {
    text.lines().map(str::trim).find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let uris: Vec<&str> = if line.len() > 5 && line[..5].eq_ignore_ascii_case("URIs:") {
            line[5..].split_whitespace().collect()
        } else if let Some(rest) = line.strip_prefix("deb ") {
            let rest = rest.trim_start();
            let rest = match rest.strip_prefix('[') {
                Some(opts) => opts.split_once(']').map_or("", |(_, r)| r),
                None => rest,
            };
            rest.split_whitespace().take(1).collect()
        } else {
            return None;
        };
        uris.into_iter()
            .map(|u| u.trim_end_matches('/'))
            .find(|u| {
                (u.starts_with("http://") || u.starts_with("https://")) && u.ends_with("/debian")
            })
            .map(str::to_string)
    })
}
