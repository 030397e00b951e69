//! The commands of `cargo xtask` for the testbed's lifecycle: up, status,
//! down, logs, doctor, image. Each is a few calls into the library.

use crate::flags::{Cmd, TopologyArgs};
use crate::paths::resolve;
use anyhow::{Context, Result};
use futures_util::StreamExt;
use std::path::Path;
use testbed::testbed::{default_state_root, Status};
use testbed::{ParseOptions, Testbed, Topology, UpOptions};

fn load(args: &TopologyArgs) -> Result<Topology> {
    let opts = ParseOptions {
        allow_any_subnet: args.allow_any_subnet,
    };
    let mut t = Topology::from_file(&resolve(&args.topology), &opts)?;
    if let Some(img) = &args.image {
        t.image = img.clone();
    }
    Ok(t)
}

fn name_of(name: &Option<String>, topology: &Path) -> Result<String> {
    match name {
        Some(n) => Ok(n.clone()),
        None => Ok(Topology::from_file(
            &resolve(topology),
            &ParseOptions {
                allow_any_subnet: true,
            },
        )?
        .name),
    }
}

pub async fn run(cmd: Cmd) -> Result<()> {
    let state_root = default_state_root();
    match cmd {
        Cmd::Up {
            topo,
            replace,
            parent,
            no_fix,
        } => {
            let t = load(&topo)?;
            testbed::doctor::ensure_ready(!no_fix, &state_root).await?;
            crate::netem::ensure()?;
            let opts = UpOptions {
                parent,
                state_root: state_root.clone(),
                reuse_running: true,
                replace_existing: replace,
                ..Default::default()
            };
            let tb = Testbed::up(t, opts).await?;
            let name = tb.topology.name.clone();
            let hints = hints(&tb);
            // from here on it is the user's: it stays until `down`
            tb.detach()?;
            let tb = Testbed::attach(&name, &state_root).await?;
            let status = tb.status().await?;
            print!("{}", render_status(&status));
            print!("{hints}");
        }
        Cmd::Status {
            name,
            topology,
            json,
        } => {
            let tb = Testbed::attach(&name_of(&name, &topology)?, &state_root).await?;
            let status = tb.status().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render_status(&status));
            }
        }
        Cmd::Down {
            name,
            topology,
            all,
        } => {
            let docker = testbed::docker::connect().await?;
            let name = if all {
                None
            } else {
                Some(name_of(&name, &topology)?)
            };
            let removed = testbed::teardown::down(&docker, name.as_deref(), &state_root).await?;
            if removed.is_empty() && removed.state_dirs.is_empty() {
                println!("nothing to remove");
            } else {
                println!(
                    "removed {} container(s), {} network(s), {} link(s), {} state dir(s)",
                    removed.containers.len(),
                    removed.networks.len(),
                    removed.links.len(),
                    removed.state_dirs.len()
                );
            }
        }
        Cmd::Logs {
            node,
            sentinel,
            follow,
            name,
            topology,
        } => {
            let tb = Testbed::attach(&name_of(&name, &topology)?, &state_root).await?;
            logs(&tb, node.as_deref(), sentinel, follow).await?;
        }
        Cmd::Doctor { fix } => {
            if fix {
                testbed::doctor::fix(&state_root).await?;
            }
            let checks = testbed::doctor::checks().await;
            print!("{}", testbed::doctor::render(&checks));
            let failed: Vec<_> = checks
                .iter()
                .filter(|c| !c.ok && !testbed::doctor::is_optional(c.name))
                .collect();
            anyhow::ensure!(
                failed.is_empty(),
                "{} check(s) failed; `cargo xtask doctor --fix` installs what is missing",
                failed.len()
            );
        }
        Cmd::Compose { topo, out, check } => crate::compose::run(&topo, &out, check)?,
        Cmd::Segment {
            action,
            topology,
            parent,
            allow_any_subnet,
        } => {
            crate::segment::run(
                action,
                &topology,
                parent.as_deref(),
                allow_any_subnet,
                &state_root,
            )
            .await?
        }
        Cmd::Engine {
            action,
            suite,
            debug,
            bind,
            timeout,
            purge,
        } => {
            use crate::engine;
            use crate::flags::EngineAction;
            let e = engine::Engine::new(&suite)?;
            match action {
                EngineAction::Up => {
                    let opts = engine::UpOpts {
                        debug,
                        binds: bind,
                        timeout: std::time::Duration::from_secs(timeout),
                    };
                    engine::up(&e, &opts).await?
                }
                EngineAction::Down => engine::down(&e, purge).await?,
                EngineAction::Status => engine::status(&e).await?,
                EngineAction::Env => engine::env(&e).await?,
            }
        }
        Cmd::Chaos(c) => crate::chaos::run(c, &state_root).await?,
        Cmd::Bench { quick, runs, only } => {
            crate::netem::ensure()?;
            crate::bench::run(quick, runs.map(|n| n as usize), &only, &state_root).await?
        }
        Cmd::Soak(args) => crate::soak::run(&args, &state_root).await?,
        Cmd::Flake(args) => crate::flake::run(&args, &state_root).await?,
        Cmd::Clients(args) => {
            crate::netem::ensure()?;
            crate::clients::run(&args, &state_root).await?
        }
        Cmd::Repro(args) => {
            crate::netem::ensure()?;
            crate::repro::run(&args, &state_root).await?
        }
        // issue 11: the behaviour matrix and merged shards
        Cmd::Matrix(args) => {
            crate::netem::ensure()?;
            crate::matrix::run(&args, &state_root).await?
        }
        Cmd::Report {
            cmd: crate::flags::ReportCmd::Merge { dirs, out },
        } => crate::merge::run(&dirs, out.as_deref(), &state_root)?,
        Cmd::Image { names, all } => {
            let docker = testbed::docker::connect().await?;
            let names: Vec<String> = if all {
                testbed::image::CATALOG
                    .iter()
                    .map(|s| s.name.to_string())
                    .collect()
            } else if names.is_empty() {
                vec![testbed::image::DEFAULT_IMAGE.to_string()]
            } else {
                names
            };
            for n in names {
                let info = if n == testbed::backend::client_image::CLIENT_IMAGE {
                    // the clients' image: its own recipe and cache (see `cargo xtask clients`)
                    let cache = testbed::backend::client_image::cache_dir();
                    testbed::backend::client_image::ensure(&docker, &crate::paths::root(), &cache)
                        .await
                } else {
                    testbed::image::ensure_image(&docker, &n, &state_root.join("images")).await
                }
                .with_context(|| format!("image {n}"))?;
                println!(
                    "{}  {:>4} MB  {}",
                    info.name,
                    info.size_bytes / 1_000_000,
                    info.id
                );
            }
        }
    }
    Ok(())
}

/// The table `up` and `status` print.
pub fn render_status(s: &Status) -> String {
    let mut out = format!(
        "testbed {}  master-name {}  subnet {}  VIP {}\n",
        s.name, s.master_name, s.subnet, s.vip
    );
    out += &format!(
        "{:<8} {:<15} {:<18} {:<8} {:<9} {:<4} {}\n",
        "node", "ip", "mac", "role", "sentinel", "vip", "containers"
    );
    for n in &s.nodes {
        let mac = match (n.mac.as_str(), n.mac_differs()) {
            ("", _) => "-".to_string(),
            (m, false) => m.to_string(),
            (m, true) => format!("{m} (asked {})", n.expected_mac),
        };
        out += &format!(
            "{:<8} {:<15} {:<18} {:<8} {:<9} {:<4} {}, {}\n",
            n.name,
            n.ip,
            mac,
            n.role,
            n.sentinel_port,
            if n.holds_vip { "yes" } else { "" },
            n.redis_container,
            n.sentinel_container
        );
    }
    out
}

fn hints(tb: &Testbed) -> String {
    let t = &tb.topology;
    let n = &t.nodes[0];
    format!(
        "\nconnect:\n  redis-cli -h {vip} -p {rp} info replication      # the master, through the VIP\n  redis-cli -h {ip} -p {sp} sentinel master {m}   # a sentinel\n  cargo xtask status | cargo xtask logs --sentinel | cargo xtask down\n",
        vip = t.vip,
        rp = t.redis_port,
        ip = n.ip,
        sp = t.sentinel_port,
        m = t.master_name
    )
}

async fn logs(tb: &Testbed, node: Option<&str>, sentinel: bool, follow: bool) -> Result<()> {
    use bollard::query_parameters::LogsOptions;
    let nodes: Vec<_> = tb
        .topology
        .nodes
        .iter()
        .filter(|n| node.is_none_or(|x| x == n.name))
        .collect();
    anyhow::ensure!(
        !nodes.is_empty(),
        "no node named {:?}",
        node.unwrap_or_default()
    );
    let mut streams = Vec::new();
    for n in nodes {
        let c = if sentinel {
            tb.names.sentinel(&n.name)
        } else {
            tb.names.redis(&n.name)
        };
        let opts = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: "all".into(),
            ..Default::default()
        };
        let name = n.name.clone();
        streams.push(
            tb.docker
                .logs(&c, Some(opts))
                .map(move |l| (name.clone(), l))
                .boxed(),
        );
    }
    let mut all = futures_util::stream::select_all(streams);
    while let Some((node, line)) = all.next().await {
        let line = line.context("reading logs")?;
        for l in line.to_string().lines() {
            println!("{node:<8} | {l}");
        }
    }
    Ok(())
}
