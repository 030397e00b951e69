//! The individual prerequisite probes: programs on PATH, Docker, Compose,
//! macvlan, a static busybox, redis-py and the client image's tools.

use super::*;
use crate::backend::host;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub(super) fn on_path(program: &str, package: &str) -> Outcome {
    host::which(program)
        .map(|p| p.display().to_string())
        .ok_or_else(|| {
            (
                format!("`{program}` not on PATH"),
                format!("apt-get install {package} ({FIX})"),
            )
        })
}

/// What `cargo xtask clients` needs: the tools that build the client image
/// (`doctor --fix` installs npm and python3-pip; debootstrap is checked
/// above), and the image itself, current with `fixtures/clients`.
pub(super) async fn client_checks() -> Vec<Check> {
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
pub(super) fn redis_py_check() -> Outcome {
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

pub(super) async fn docker_check() -> Outcome {
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
pub(super) async fn compose_check() -> Outcome {
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
pub(super) async fn macvlan_check() -> Outcome {
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
pub(super) fn elf_is_static(b: &[u8]) -> std::result::Result<bool, String> {
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
