//! Prerequisite checks (`cargo xtask doctor`) and their automatic fix on a
//! Debian-family host: installing the packages the testbed shells out to and
//! starting a Docker engine when none answers.

use crate::backend::host;
use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;

mod fix;
mod probes;

pub use fix::fix;
pub use probes::static_busybox;
use probes::*;

/// One prerequisite and whether this host has it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// What to do when `ok` is false (empty when it is true).
    pub hint: String,
}

const FIX: &str = "or run `cargo xtask doctor --fix`";
/// Checks that only some commands need, and which: for the others their
/// absence is a warning; the commands named here refuse to start without
/// them (`ensure_for`). Every other check is needed by every command.
const NEEDED_BY: &[(&str, &[&str])] = &[
    ("compose", &["compose", "bench"]),
    ("redis-py", &["repro of the redis-py scenarios"]),
    ("redis-server", &["bench"]),
    ("ping", &["the impairment tests"]),
    ("client-image-tools", &["clients", "the client tests"]),
    // `clients` builds it itself when missing or stale
    ("client-image", &["the client tests"]),
];

/// The commands that need check `name` (empty: every command does).
pub fn needed_by(name: &str) -> &'static [&'static str] {
    NEEDED_BY
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, c)| c)
}

/// Whether a failed check only warns (not every command needs it).
pub fn is_optional(name: &str) -> bool {
    !needed_by(name).is_empty()
}

/// The redis-py of the shipped external client
/// (`fixtures/clients/requirements.txt` pins the same; a unit test checks).
pub const REDIS_PY: &str = "8.1.0";
/// A check's result: `Ok(detail)` or `Err((detail, hint))`.
type Outcome = std::result::Result<String, (String, String)>;

/// Detail and hint of an error; a prerequisite error already carries both.
fn explain(e: Error, hint: impl FnOnce() -> String) -> (String, String) {
    match e {
        Error::Prerequisite { what, hint } => (what, hint),
        other => (other.to_string(), hint()),
    }
}

fn check(name: &'static str, result: Outcome) -> Check {
    match result {
        Ok(detail) => Check {
            name,
            ok: true,
            detail,
            hint: String::new(),
        },
        Err((detail, hint)) => Check {
            name,
            ok: false,
            detail,
            hint,
        },
    }
}

/// Runs every check; none of them changes the host (the macvlan probe
/// removes the links it makes).
pub async fn checks() -> Vec<Check> {
    let root = host::is_root();
    let mut out = vec![check(
        "root",
        if root {
            Ok("running as uid 0".into())
        } else {
            Err((
                "not root".into(),
                "the testbed creates links and enters namespaces: run as root (e.g. `sudo -E`)"
                    .into(),
            ))
        },
    )];
    out.push(check("iproute2", on_path("ip", "iproute2")));
    out.push(check("nsenter", on_path("nsenter", "util-linux")));
    // partitions are netfilter rules set in the nodes' namespaces
    out.push(check("iptables", on_path("iptables", "iptables")));
    out.push(check(
        "busybox-static",
        static_busybox()
            .map(|p| format!("{} (static)", p.display()))
            .map_err(|e| explain(e, || format!("apt-get install busybox-static ({FIX})"))),
    ));
    out.push(check("debootstrap", on_path("debootstrap", "debootstrap")));
    out.push(check("docker", docker_check().await));
    out.push(check(
        "macvlan",
        if root {
            macvlan_check().await
        } else {
            Err((
                "not probed: needs root".into(),
                "run the doctor as root".into(),
            ))
        },
    ));
    out.push(check("compose", compose_check().await));
    out.push(check("redis-py", redis_py_check()));
    out.push(check(
        "redis-server",
        on_path("redis-server", "redis-server"),
    ));
    out.push(check("ping", on_path("ping", "iputils-ping")));
    out.extend(client_checks().await);
    out
}

// ---- the client matrix (`cargo xtask clients`) ----

/// What `cargo xtask up` needs (and every command with it): see
/// [`ensure_for`].
pub async fn ensure_ready(allow_fix: bool, log_dir: &Path) -> Result<()> {
    ensure_for("up", allow_fix, log_dir).await
}

/// Checks what `command` needs, fixes when allowed and needed, and fails
/// listing every needed check that still fails with the package to
/// install; a missing tool another command needs only warns.
pub async fn ensure_for(command: &str, allow_fix: bool, log_dir: &Path) -> Result<()> {
    let progress = Progress::new("doctor");
    let failed = |cs: Vec<Check>| -> Vec<Check> {
        cs.into_iter()
            .filter(|c| {
                let needs = needed_by(c.name);
                let needed = needs.is_empty() || needs.contains(&command);
                if !c.ok && !needed {
                    progress.warn(format!(
                        "{}: {} ({}; needed by {})",
                        c.name,
                        c.detail,
                        c.hint,
                        needs.join(", ")
                    ));
                }
                !c.ok && needed
            })
            .collect()
    };
    let mut bad = failed(checks().await);
    let mut fix_error = None;
    if !bad.is_empty() && allow_fix {
        if let Err(e) = fix(log_dir).await {
            fix_error = Some(e.to_string());
        }
        bad = failed(checks().await);
    }
    if bad.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = bad
        .iter()
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    let mut hints: Vec<String> = bad
        .iter()
        .map(|c| format!("{}: {}", c.name, c.hint))
        .collect();
    if let Some(e) = fix_error {
        hints.push(format!("the automatic fix failed: {e}"));
    }
    Err(Error::Prerequisite {
        what: list.join("; "),
        hint: hints.join("\n        "),
    })
}

/// A table of the checks for people: status, name, detail, hint.
pub fn render(checks: &[Check]) -> String {
    let status = |c: &Check| match (c.ok, is_optional(c.name)) {
        (true, _) => "ok",
        (false, true) => "WARN",
        (false, false) => "FAIL",
    };
    let name_w = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let detail_w = checks
        .iter()
        .map(|c| c.detail.len())
        .max()
        .unwrap_or(0)
        .min(60);
    let mut out = String::new();
    for c in checks {
        let needs = needed_by(c.name);
        let who = if needs.is_empty() {
            String::new()
        } else {
            format!("[needed by {}] ", needs.join(", "))
        };
        let line = format!(
            "{:<4}  {:<name_w$}  {:<detail_w$}  {who}{}",
            status(c),
            c.name,
            c.detail.replace('\n', " "),
            c.hint.replace('\n', " ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf64(phdr_types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * phdr_types.len()];
        b[..4].copy_from_slice(b"\x7fELF");
        (b[4], b[5]) = (2, 1);
        b[0x20] = 64; // e_phoff
        b[0x36] = 56; // e_phentsize
        b[0x38] = phdr_types.len() as u8;
        for (i, t) in phdr_types.iter().enumerate() {
            b[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
        }
        b
    }

    #[test]
    fn the_pinned_redis_py_is_the_one_of_the_requirements_file() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clients/requirements.txt");
        let text = std::fs::read_to_string(p).unwrap();
        assert!(
            text.lines()
                .any(|l| l.trim() == format!("redis=={REDIS_PY}")),
            "{text}"
        );
    }

    #[test]
    fn pt_interp_means_dynamic() {
        assert_eq!(elf_is_static(&elf64(&[6, 3, 1])), Ok(false));
        assert_eq!(elf_is_static(&elf64(&[1, 1, 4])), Ok(true));
        assert!(elf_is_static(b"#!/bin/sh\n").is_err());
        let mut truncated = elf64(&[1, 3]);
        truncated.truncate(70);
        assert!(elf_is_static(&truncated).is_err());
    }

    #[test]
    fn render_marks_failures_and_warnings() {
        let cs = [
            check("root", Ok("uid 0".into())),
            check("debootstrap", Err(("missing".into(), "install it".into()))),
            check("compose", Err(("missing".into(), "optional".into()))),
        ];
        let t = render(&cs);
        assert!(t
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("ok    root")));
        assert!(t.contains("FAIL  debootstrap"));
        assert!(t.contains("WARN  compose"));
    }
}
