//! One fast test per client program of the client image: the program runs
//! in its own container against one standalone redis-server with one
//! sentinel (testbed/redis:8.0; sentinel clients need a sentinel to find
//! the master), writes until it has 60 writes on record, gets SIGTERM, and
//! then every line it printed must parse, its meta line must name it, and
//! every write it says was acknowledged must be on the server, once.
//!
//! Each test has its own internal bridge network 198.18.169.<16 k>/28 (slot
//! 169 of this suite, cut in /28s; no traffic leaves the bridge) and its
//! own labelled objects (`cl-<client>`), removed at the end, after a panic,
//! and by the next run if this one was killed.

mod common;

use anyhow::{ensure, Context, Result};
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use bollard::Docker;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use testbed::backend::client_image;
use testbed::docker::{LABEL_MANAGED, LABEL_NAME};
use testbed::model::clients;
use testbed::workload::external::{ClientEnv, ExternalClient, ExternalSpec, Placement};
use testbed::workload::Outcome;

/// Writes on record before the client is stopped.
const WRITES: usize = 60;

/// Removes a test's objects when dropped (a failed assertion included).
struct Objects(String);

impl Drop for Objects {
    fn drop(&mut self) {
        let root = testbed::testbed::default_state_root();
        if let Err(e) = testbed::teardown::down_blocking(&self.0, root) {
            eprintln!("removing {}: {e}", self.0);
        }
    }
}

fn labels(name: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_NAME.to_string(), name.to_string()),
    ])
}

/// The standalone server and its sentinel, in one container at `ip`.
async fn server(docker: &Docker, name: &str, network: &str, ip: Ipv4Addr) -> Result<()> {
    let script = format!(
        "redis-server --port 6379 --protected-mode no --save '' --appendonly no --daemonize yes \
         && printf 'port 26379\\nprotected-mode no\\nsentinel monitor mymaster {ip} 6379 1\\n' > /tmp/sentinel.conf \
         && exec redis-sentinel /tmp/sentinel.conf"
    );
    let body = ContainerCreateBody {
        image: Some(testbed::image::DEFAULT_IMAGE.to_string()),
        cmd: Some(vec!["sh".into(), "-c".into(), script]),
        labels: Some(labels(name)),
        host_config: Some(HostConfig {
            network_mode: Some(network.to_string()),
            cap_drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_string(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(ip.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    let c = format!("{name}-server");
    let opts = CreateContainerOptionsBuilder::default().name(&c).build();
    docker.create_container(Some(opts), body).await?;
    docker.start_container(&c, None).await?;
    // ready: the sentinel names the master, and the master answers
    testbed::wait::until(
        "the server and its sentinel",
        Duration::from_secs(20),
        testbed::wait::POLL,
        || async move {
            let addr = |p| SocketAddrV4::new(ip, p);
            let mut s = testbed::client::connect(addr(26379), None)
                .await
                .map_err(|e| e.to_string())?;
            let m: Option<(String, u16)> = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg("mymaster")
                .query_async(&mut s)
                .await
                .map_err(|e| e.to_string())?;
            let mut r = testbed::client::connect(addr(6379), None)
                .await
                .map_err(|e| e.to_string())?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut r)
                .await
                .map_err(|e| e.to_string())?;
            match m {
                Some((h, _)) if h == ip.to_string() && pong == "PONG" => Ok(()),
                other => Err(format!("sentinel says {other:?}, server {pong}")),
            }
        },
    )
    .await?;
    Ok(())
}

/// A test's own network and server: 198.18.<slot>.<16 index>/28, the
/// gateway at .1, the server at .2, the client at .3.
struct Fixture {
    docker: Docker,
    name: String,
    base: u32,
    _objects: Objects,
}

impl Fixture {
    async fn new(test: &str, index: u8) -> Result<Fixture> {
        common::init_tracing();
        let docker = testbed::docker::connect()
            .await
            .context("these tests run real containers and need a Docker engine")?;
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        client_image::ensure(&docker, workspace, &client_image::cache_dir())
            .await
            .context("the client image (`cargo xtask image testbed/clients:dev`)")?;
        testbed::image::ensure_image(
            &docker,
            testbed::image::DEFAULT_IMAGE,
            &testbed::testbed::default_state_root().join("images"),
        )
        .await?;
        let name = common::name(&format!("cl-{test}"));
        let root = testbed::testbed::default_state_root();
        // what a killed earlier run of this test left
        testbed::teardown::down(&docker, Some(&name), &root).await?;
        let objects = Objects(name.clone());
        let slot = common::slot(169)?;
        let base = u32::from(slot.with_host_of(Ipv4Addr::new(0, 0, 0, 16 * index), slot));
        let f = Fixture {
            docker,
            name,
            base,
            _objects: objects,
        };
        f.docker
            .create_network(NetworkCreateRequest {
                name: f.name.clone(),
                driver: Some("bridge".into()),
                internal: Some(true),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(format!("{}/28", f.at(0))),
                        gateway: Some(f.at(1).to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(labels(&f.name)),
                ..Default::default()
            })
            .await
            .context("creating the test's bridge network")?;
        server(&f.docker, &f.name, &f.name, f.at(2)).await?;
        Ok(f)
    }

    fn at(&self, k: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + k)
    }

    fn env(&self) -> Result<ClientEnv> {
        Ok(ClientEnv {
            sentinels: vec![format!("{}:26379", self.at(2))],
            nodes: vec![format!("{}:6379", self.at(2))],
            vip: format!("{}:6379", self.at(2)),
            master_name: "mymaster".into(),
            password: String::new(),
            t0_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs_f64()
                * 1000.0,
        })
    }

    fn place(&self) -> Placement {
        Placement {
            docker: self.docker.clone(),
            testbed: self.name.clone(),
            network: self.name.clone(),
            ip: self.at(3),
        }
    }
}

/// Runs client program `program` against its own server and checks what
/// it printed against what the server holds.
async fn check_client(program: &str) -> Result<()> {
    let c = clients::find(program).map_err(anyhow::Error::msg)?;
    let index = clients::CLIENTS
        .iter()
        .position(|x| x.name == program)
        .expect("found above") as u8;
    let f = Fixture::new(program, index).await?;
    let at = |k| f.at(k);
    let env = f.env()?;
    let spec = ExternalSpec::in_container(program, program, 100, 1000);
    let place = f.place();
    let mut client = ExternalClient::launch(&env, &spec, Some(place)).await?;
    let started = client.first_write().await;
    if started.is_ok() {
        testbed::wait::until(
            &format!("{program} to have {WRITES} writes on record"),
            Duration::from_secs(30),
            testbed::wait::POLL,
            || {
                let n = client.records();
                async move {
                    if n >= WRITES {
                        Ok(())
                    } else {
                        Err(format!("{n} writes"))
                    }
                }
            },
        )
        .await?;
    }
    let run = client.stop_quietly().await;
    started.with_context(|| format!("stderr:\n{}", run.stderr))?;

    // what it printed
    ensure!(run.parse_error.is_none(), "{:?}", run.parse_error);
    ensure!(run.read_error.is_none(), "{:?}", run.read_error);
    ensure!(run.exited_early.is_none(), "{:?}", run.exited_early);
    ensure!(run.exit_code == Some(0), "after SIGTERM: {}", run.exit);
    let meta = run.meta.as_ref().context("no meta line first")?;
    ensure!(meta["client"] == program, "meta names {}", meta["client"]);
    ensure!(
        meta["library"] == c.library,
        "meta library {}",
        meta["library"]
    );
    ensure!(
        meta["language"] == c.language,
        "meta language {}",
        meta["language"]
    );
    ensure!(
        meta["discovery"] == c.discovery.as_str(),
        "meta discovery {}",
        meta["discovery"]
    );
    ensure!(
        meta["version"].as_str().is_some_and(|v| !v.is_empty()),
        "no version: {meta}"
    );
    let h = &run.history;
    ensure!(h.len() >= WRITES, "{} writes", h.len());
    let ids: Vec<u64> = h.iter().map(|o| o.id).collect();
    ensure!(
        ids == (1..=h.len() as u64).collect::<Vec<_>>(),
        "ids are not 1..n: {ids:?}"
    );
    ensure!(
        h.iter()
            .all(|o| o.invoke_ms <= o.complete_ms && o.invoke_ms > -1.0),
        "a record ends before it starts, or before T0"
    );
    let not_ok: Vec<_> = h.iter().filter(|o| o.outcome != Outcome::Ok).collect();
    // the write in flight at SIGTERM may be cut short; nothing else fails
    ensure!(
        not_ok.len() <= 1 && not_ok.iter().all(|o| o.outcome == Outcome::Unknown),
        "writes that failed against a healthy server: {not_ok:?}\nstderr:\n{}",
        run.stderr
    );

    // what the server holds
    let server = SocketAddrV4::new(at(2), 6379);
    let prefix = spec.key_prefix();
    let values = testbed::workload::read_values(server, None, &prefix, ids.iter().copied()).await?;
    let acked: Vec<u64> = h
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .map(|o| o.id)
        .collect();
    for id in &acked {
        ensure!(
            values.get(id) == Some(&1),
            "acknowledged write {id} reads {:?} on the server",
            values.get(id)
        );
    }
    let mut conn = testbed::client::connect(server, None).await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    ensure!(
        keys.len() == values.len() && keys.len() >= acked.len(),
        "{} keys on the server, {} of the history's, {} acknowledged",
        keys.len(),
        values.len(),
        acked.len()
    );
    let check = testbed::checker::check_counts(h, &values);
    ensure!(
        check.lost.is_empty() && check.duplicates().is_empty(),
        "{}",
        check.summary()
    );
    Ok(())
}

/// A client program that exits before its first write: an error, and a
/// run that says so with its exit code and its last stderr line (what the
/// matrix shows as "crashed (exit N: ...)"). redis-py's program refuses an
/// unknown option (argparse: exit 2).
#[tokio::test]
async fn a_client_that_exits_first_says_how() -> Result<()> {
    let f = Fixture::new("exits-first", 14).await?;
    let mut spec = ExternalSpec::in_container("redis-py-sentinel", "redis-py-sentinel", 10, 1000);
    spec.command.push("--no-such-option".into());
    let mut c = ExternalClient::launch(&f.env()?, &spec, Some(f.place())).await?;
    let e = c.first_write().await.expect_err("it exits at once");
    ensure!(
        e.to_string().contains("exited before its first write"),
        "{e}"
    );
    let mut run = c.stop_quietly().await;
    run.never_started = Some(e.to_string());
    ensure!(run.exit_code == Some(2), "{run:?}");
    let crash = run.crash().context("no crash")?;
    ensure!(
        crash.starts_with("crashed (exit 2: ") && crash.contains("unrecognized arguments"),
        "{crash}"
    );
    ensure!(run.history.is_empty());
    Ok(())
}

macro_rules! client_tests {
    ($($test:ident => $program:literal),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() -> Result<()> {
                check_client($program).await
            }
        )*

        /// Every program of the catalogue has its test above.
        #[test]
        fn every_client_program_has_a_test() {
            let tested = [$($program),*];
            for c in clients::CLIENTS {
                assert!(tested.contains(&c.name), "no test for {}", c.name);
            }
        }
    };
}

client_tests! {
    redis_py_sentinel => "redis-py-sentinel",
    valkey_py_sentinel => "valkey-py-sentinel",
    ioredis_sentinel => "ioredis-sentinel",
    ioredis_failover_detector => "ioredis-failover-detector",
    node_redis_sentinel => "node-redis-sentinel",
    phpredis_vip => "phpredis-vip",
    phpredis_sentinel => "phpredis-sentinel",
    predis_sentinel => "predis-sentinel",
    go_redis_failover => "go-redis-failover",
    redis_rb_sentinel => "redis-rb-sentinel",
    redis_rs_sentinel => "redis-rs-sentinel",
    fred_sentinel => "fred-sentinel",
}
