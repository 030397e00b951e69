//! Prerequisite checks (`cargo xtask doctor`) and their automatic fix on a
//! Debian-family host: installing the packages the testbed shells out to and
//! starting a Docker engine when none answers.

use crate::backend::host;
use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
/// Packages `fix` installs when missing.
const PACKAGES: &[&str] = &[
    "docker.io",
    "debootstrap",
    "busybox-static",
    "iproute2",
    "util-linux",
    "iptables",
    "docker-compose",
    "redis-tools",
    // ping from the nodes' namespaces (the impairment tests and bench)
    "iputils-ping",
    // the bench's loopback contender: the same Redis as plain processes
    "redis-server",
    // what builds the client image of `cargo xtask clients`
    "npm",
    "python3-pip",
];

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

fn on_path(program: &str, package: &str) -> Outcome {
    host::which(program)
        .map(|p| p.display().to_string())
        .ok_or_else(|| {
            (
                format!("`{program}` not on PATH"),
                format!("apt-get install {package} ({FIX})"),
            )
        })
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

/// What `cargo xtask clients` needs: the tools that build the client image
/// (`doctor --fix` installs npm and python3-pip; debootstrap is checked
/// above), and the image itself, current with `fixtures/clients`.
async fn client_checks() -> Vec<Check> {
    use crate::backend::client_image::{self, Status, CLIENT_IMAGE};
    let missing = client_image::missing_build_tools();
    let tools = if missing.is_empty() {
        Ok("debootstrap, npm, pip, cargo".into())
    } else {
        Err((
            format!("missing {}", missing.join(", ")),
            format!("needed to build {CLIENT_IMAGE} for `cargo xtask clients` ({FIX})"),
        ))
    };
    let build = format!(
        "`cargo xtask image {CLIENT_IMAGE}` builds it (about 11 min the first time, cached after)"
    );
    let image = match crate::backend::docker::connect().await {
        Err(e) => Err(explain(e, || format!("start dockerd ({FIX})"))),
        Ok(docker) => {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
            match client_image::status(&docker, workspace).await {
                Ok(Status::Current(i)) => {
                    Ok(format!("{} ({} MB)", i.name, i.size_bytes / 1_000_000))
                }
                Ok(Status::Stale(_)) => Err((
                    format!("{CLIENT_IMAGE} was built from other client programs"),
                    build,
                )),
                Ok(Status::Missing) => Err((format!("no {CLIENT_IMAGE}"), build)),
                Err(e) => Err(explain(e, || build.clone())),
            }
        }
    };
    vec![
        check("client-image-tools", tools),
        check("client-image", image),
    ]
}

/// redis-py for python3, at the pinned version (the external client of
/// `fixtures/clients/` and its scenarios).
fn redis_py_check() -> Outcome {
    let hint = || format!("python3 -m pip install redis=={REDIS_PY} ({FIX})");
    if host::which("python3").is_none() {
        return Err(("`python3` not on PATH".into(), hint()));
    }
    match host::run("python3", &["-c", "import redis; print(redis.__version__)"]) {
        Ok(v) if v.trim() == REDIS_PY => Ok(format!("redis-py {REDIS_PY}")),
        Ok(v) => Err((
            format!("redis-py {} (the scenarios pin {REDIS_PY})", v.trim()),
            hint(),
        )),
        Err(_) => Err(("python3 has no redis-py".into(), hint())),
    }
}

/// Installs the pinned redis-py with pip (a Debian python3 marked
/// externally managed needs `--break-system-packages`).
async fn install_redis_py(progress: &Progress) -> Result<()> {
    let pin = format!("redis=={REDIS_PY}");
    progress.step(format!("python3 -m pip install {pin}"));
    let base = [
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        pin.as_str(),
    ];
    if host::run_async("python3", &base).await.is_ok() {
        return Ok(());
    }
    let mut args = base.to_vec();
    args.push("--break-system-packages");
    host::run_async("python3", &args).await.map(drop)
}

async fn docker_check() -> Outcome {
    // `connect` refuses an engine older than MIN_API with a hint.
    let docker = crate::backend::docker::connect()
        .await
        .map_err(|e| explain(e, || format!("start dockerd ({FIX})")))?;
    Ok(crate::backend::docker::engine_info(&docker)
        .await
        .describe())
}

/// Which Compose program runs a project (see `compose::cli`), and whether
/// it gives a generated project's containers the MACs the file asks for on
/// this engine: a program that cannot is a warning that says why.
async fn compose_check() -> Outcome {
    use crate::backend::compose_cli as cli;
    let c = cli::detect()
        .map_err(|e| explain(e, || format!("apt-get install docker-compose ({FIX})")))?;
    let Ok(docker) = crate::backend::docker::connect().await else {
        return Ok(format!("{}; MACs not checked: no engine", c.describe()));
    };
    let engine = crate::backend::docker::engine_info(&docker).await;
    let api = crate::backend::docker::parse_api(&engine.api_max);
    let env = std::env::var(cli::ENV_API).ok();
    // a generated project's .env pins LEGACY_API; the variable wins over it
    let dot_env = format!("{}={}\n", cli::ENV_API, cli::LEGACY_API);
    let pin = cli::pinned_api(env.as_deref(), Some(&dot_env));
    match cli::macs(&c, api, pin) {
        cli::Macs::Right(how) => Ok(format!("{}; MACs right: {how}", c.describe())),
        cli::Macs::Random(why) => Err((
            format!("{} on API {}: MACs random", c.describe(), engine.api_max),
            why,
        )),
    }
}

/// Makes a veth pair and a macvlan on one end (the testbed's LAN design),
/// then deletes them whatever happened.
async fn macvlan_check() -> Outcome {
    let pid = std::process::id();
    let (a, b, m) = (
        format!("tbchk{pid}a"),
        format!("tbchk{pid}b"),
        format!("tbchk{pid}m"),
    );
    // the testbed's alias on each link, so `down --all` finds them if this
    // process dies before deleting them
    let alias = format!("{}doctor-probe", crate::model::net::LINK_ALIAS_PREFIX);
    let made = async {
        host::run_async(
            "ip",
            &["link", "add", &a, "type", "veth", "peer", "name", &b],
        )
        .await?;
        for l in [&a, &b] {
            host::run_async("ip", &["link", "set", l, "alias", &alias]).await?;
        }
        host::run_async(
            "ip",
            &[
                "link", "add", &m, "link", &a, "type", "macvlan", "mode", "bridge",
            ],
        )
        .await?;
        host::run_async("ip", &["link", "set", &m, "alias", &alias]).await
    }
    .await;
    // Deleting one veth end removes its peer and the macvlan on it; each is
    // still deleted by name in case only some of them were made.
    for link in [&m, &a, &b] {
        let _ = host::run_async("ip", &["link", "del", link]).await;
    }
    made.map(|_| "veth + macvlan (bridge mode) created and removed".into())
        .map_err(|e| {
            explain(e, || {
                "the kernel needs veth and macvlan (CONFIG_MACVLAN)".into()
            })
        })
}

/// Path of a statically linked busybox, which other modules copy into
/// containers (a dynamic one would not find its libraries there).
pub fn static_busybox() -> Result<PathBuf> {
    let mut seen = Vec::new();
    for p in ["/usr/bin/busybox", "/bin/busybox"] {
        let path = PathBuf::from(p);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        match elf_is_static(&bytes) {
            Ok(true) => return Ok(path),
            Ok(false) => seen.push(format!("{p} is dynamically linked")),
            Err(e) => seen.push(format!("{p}: {e}")),
        }
    }
    Err(Error::Prerequisite {
        what: if seen.is_empty() {
            "no busybox at /usr/bin/busybox or /bin/busybox".into()
        } else {
            format!("no static busybox: {}", seen.join("; "))
        },
        hint: format!("apt-get install busybox-static ({FIX})"),
    })
}

/// Whether an ELF file has no PT_INTERP program header, i.e. needs no
/// dynamic loader (static and static-pie binaries alike).
fn elf_is_static(b: &[u8]) -> std::result::Result<bool, String> {
    if b.len() < 0x34 || &b[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    let le = match b[5] {
        1 => true,
        2 => false,
        _ => return Err("bad ELF data encoding".into()),
    };
    let int = |off: usize, len: usize| -> std::result::Result<u64, String> {
        let s = off
            .checked_add(len)
            .and_then(|end| b.get(off..end))
            .ok_or("truncated ELF")?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if le { s[len - 1 - i] } else { s[i] };
            v = (v << 8) | u64::from(byte);
        }
        Ok(v)
    };
    // (e_phoff, e_phentsize, e_phnum) offsets differ between ELF32 and ELF64.
    let (phoff, entsize, num) = match b[4] {
        1 => (int(0x1c, 4)?, int(0x2a, 2)?, int(0x2c, 2)?),
        2 => (int(0x20, 8)?, int(0x36, 2)?, int(0x38, 2)?),
        _ => return Err("bad ELF class".into()),
    };
    const PT_INTERP: u64 = 3;
    for i in 0..num {
        let at = i
            .checked_mul(entsize)
            .and_then(|o| o.checked_add(phoff))
            .and_then(|o| usize::try_from(o).ok())
            .ok_or("bad e_phoff")?;
        if int(at, 4)? == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

fn dpkg_installed(package: &str) -> bool {
    host::run("dpkg-query", &["-W", "-f", "${Status}", package])
        .is_ok_and(|s| s.trim_end().ends_with(" installed"))
}

/// Installs what is missing (apt) and starts dockerd if no engine answers.
pub async fn fix(log_dir: &Path) -> Result<()> {
    let progress = Progress::new("doctor --fix");
    let by_hand = format!(
        "install by hand: {} (Debian package names), then start dockerd",
        PACKAGES.join(" ")
    );
    if host::which("apt-get").is_none() {
        return Err(Error::Prerequisite {
            what: "automatic fixing needs a Debian-family host (apt-get)".into(),
            hint: by_hand,
        });
    }
    if !host::is_root() {
        return Err(Error::Prerequisite {
            what: "automatic fixing needs root (apt-get, dockerd)".into(),
            hint: format!("rerun as root, or {by_hand}"),
        });
    }
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        // A host with docker-ce or a compose plugin from elsewhere keeps it:
        // docker.io would conflict with docker-ce.
        .filter(|p| !(*p == "docker.io" && host::which("dockerd").is_some()))
        .filter(|p| !(*p == "docker-compose" && crate::backend::compose_cli::detect().is_ok()))
        // an npm or a pip from elsewhere (nodesource, pyenv) serves as well
        .filter(|p| !(*p == "npm" && host::which("npm").is_some()))
        .filter(|p| {
            !(*p == "python3-pip" && host::run("python3", &["-m", "pip", "--version"]).is_ok())
        })
        .filter(|p| !dpkg_installed(p))
        .collect();
    if !missing.is_empty() {
        progress.step(format!(
            "apt-get update, then install {}",
            missing.join(" ")
        ));
        host::run_async("apt-get", &["update"]).await?;
        let mut args = vec![
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
        ];
        args.extend_from_slice(&missing);
        host::run_async("env", &args).await?;
    }
    if crate::backend::docker::connect().await.is_err() {
        start_dockerd(log_dir, &progress).await?;
    }
    if host::which("python3").is_some() && redis_py_check().is_err() {
        install_redis_py(&progress).await?;
    }
    progress.done("prerequisites fixed");
    Ok(())
}

/// Starts dockerd detached (own process group, so a Ctrl-C aimed at this
/// command does not reach it; no pipes to us) so it outlives this process,
/// then waits until it answers.
async fn start_dockerd(log_dir: &Path, progress: &Progress) -> Result<()> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(log_dir).map_err(|e| Error::io(log_dir, e))?;
    let log_path = log_dir.join("dockerd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::io(&log_path, e))?;
    let log2 = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
    progress.step(format!("starting dockerd (log: {})", log_path.display()));
    // The default bridge would take 172.17.0.0/16 and later networks more of
    // 172.16/12: the bridge address and the pool keep every address docker
    // hands out inside 198.19.0.0/16 (RFC 2544 benchmarking space), beside the
    // testbed's own 198.18.0.0/16, so nothing collides with a real network.
    let args = [
        "--bip",
        "198.19.255.1/24",
        "--default-address-pool",
        "base=198.19.128.0/17,size=24",
    ];
    let mut child = std::process::Command::new("dockerd")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::command("dockerd", format!("cannot start: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if crate::backend::docker::connect().await.is_ok() {
            progress.step("dockerd answers");
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::command(
                format!("dockerd {}", args.join(" ")),
                format!("exited with {status}; see {}", log_path.display()),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: "dockerd to answer".into(),
                elapsed_ms: 60_000,
                missing: format!(
                    "engine ping (dockerd still running; see {})",
                    log_path.display()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

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
