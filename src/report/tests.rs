use super::markdown::measured_range;
use super::markdown::sections::ids;
use super::*;
use crate::report::svg::tests::{assert_well_formed, sample_run};
use std::time::Duration;

fn env() -> Environment {
    Environment {
        engine: "Docker Engine".into(),
        docker_version: "20.10.24".into(),
        docker_api: "1.41".into(),
        docker_api_max: "1.41".into(),
        docker_host: "unix:///var/run/docker.sock".into(),
        compose: "docker-compose 1.29.2 (v1, Python)".into(),
        kernel: "6.18.0".into(),
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        testbed_version: "0.1.0 @ abc1234".into(),
        image_name: "testbed/redis:8.0".into(),
        image_id: "sha256:b7ac5d0df26f81af".into(),
        packages: vec!["redis-server=5:8.0.2-3".into()],
        server_version: Some("redis 8.0.2".into()),
        date_utc: "2026-11-23T19:00:00Z".into(),
        ..Default::default()
    }
}

fn three_runs() -> Vec<RunResult> {
    vec![
        sample_run("kill-master", true),
        sample_run("kill-master", false),
        sample_run("kill-master", true),
    ]
}

#[test]
fn the_markdown_has_the_rate_and_the_expectation_table() {
    let cmd = "cargo xtask repro fixtures/scenarios/kill-master.toml --repeat 3";
    let md = render_markdown(&three_runs(), &[], &env(), cmd);
    assert!(md.starts_with("# Scenario `kill-master`: FAIL\n"), "{md}");
    assert!(
        md.contains("- expectation `lost_acknowledged_writes = 0` failed in 1/3 runs\n"),
        "{md}"
    );
    assert!(!md.contains("`failovers = 1` failed in"), "{md}");
    assert!(
        md.contains("| `lost_acknowledged_writes = 0` | **1/3** | 2 |"),
        "{md}"
    );
    assert!(
        md.contains("## Details (run 2 of 3, the first failing run)"),
        "{md}"
    );
    assert!(
        md.contains("| expectation | measured | result |\n|---|---|---|\n"),
        "{md}"
    );
    assert!(
        md.contains("| `lost_acknowledged_writes = 0` | 2 | **FAIL** |"),
        "{md}"
    );
    assert!(md.contains("| `failovers = 1` | 1 | PASS |"), "{md}");
    assert!(
        md.contains("```toml\ndescription = \"kill <the> master & see\""),
        "{md}"
    );
    assert!(
        md.contains("lost acknowledged writes** (ids, key `wl:<id>`) (2): 10–11"),
        "{md}"
    );
    assert!(md.contains(&format!("```sh\n{cmd}\n```")), "{md}");
    assert!(
        md.contains("| engine | Docker Engine 20.10.24 at `unix:///var/run/docker.sock`, API 1.41 used (engine max 1.41) |"),
        "{md}"
    );
    // the timeline is relative to the fault: the kill is at 0
    assert!(
        md.lines()
            .any(|l| l.trim_start().starts_with("0  ACTION") && l.contains("kill")),
        "{md}"
    );
    // code fences balance
    assert_eq!(md.matches("```").count() % 2, 0);
}

#[test]
fn one_passing_run_says_pass() {
    let md = render_markdown(
        &[sample_run("kill-master", true)],
        &[],
        &env(),
        "cargo xtask repro x.toml",
    );
    assert!(
        md.contains("**PASS**: all 2 expectations held in the run."),
        "{md}"
    );
    assert!(md.contains("## Details\n"), "{md}");
    assert!(!md.contains("failed in"), "{md}");
}

#[test]
fn the_bundle_has_every_file() {
    let dir = std::env::temp_dir().join(format!("testbed-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut runs = three_runs();
    runs[0]
        .configs
        .insert("node1/redis.conf (rendered)".into(), "port 6379\n".into());
    runs[0].configs.insert(
        "node1/sentinel.conf (as left by the run)".into(),
        "sentinel myid x\n".into(),
    );
    runs[0]
        .logs
        .insert("tb-rp-kill-master-node1".into(), "ready\n".into());
    runs[0].snapshots.insert(
        "node1".into(),
        [("ROLE".to_string(), "master".to_string())].into(),
    );
    let md = write_bundle(&dir, &runs, &env(), "cargo xtask repro x.toml").unwrap();
    assert_eq!(md, dir.join("report.md"));
    for f in [
        "report.json",
        "run-1/history.jsonl",
        "run-1/timeline.json",
        "run-1/timeline.txt",
        "run-1/timeline.svg",
        "run-1/configs/node1-redis.rendered.conf",
        "run-1/configs/node1-sentinel.as-left-by-the-run.conf",
        "run-1/logs/tb-rp-kill-master-node1.log",
        "run-1/snapshots/node1.txt",
        "run-3/history.jsonl",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 3);
    assert_eq!(json["passed"], false);
    let history = std::fs::read_to_string(dir.join("run-1/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 60);
    assert_well_formed(&std::fs::read_to_string(dir.join("run-2/timeline.svg")).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn utc_time_is_computed_without_a_calendar_crate() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(utc_compact(t), "20231114T221320Z");
    assert_eq!(utc_iso(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    // a leap day
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(utc_iso(t), "2000-02-29T00:00:00Z");
}

#[test]
fn file_names_are_safe() {
    assert_eq!(
        config_file_name("node1/redis.conf (rendered)"),
        "node1-redis.rendered.conf"
    );
    assert_eq!(safe_name("../../etc/passwd"), "etc-passwd");
    assert_eq!(safe_name("a b/c"), "a-b-c");
}

#[test]
fn ids_are_listed_as_ranges() {
    assert_eq!(ids(&[5, 3, 4, 9, 11, 12]), "3–5, 9, 11–12");
    let many: Vec<u64> = (0..200).map(|i| i * 2).collect();
    assert!(ids(&many).ends_with(", 98, … (150 more)"), "{}", ids(&many));
}

#[test]
fn numeric_measurements_show_as_a_range() {
    assert_eq!(
        measured_range(&["3000".into(), "2950".into(), "3400".into()]),
        "2950–3400"
    );
    assert_eq!(measured_range(&["1".into(), "1".into()]), "1");
    assert_eq!(
        measured_range(&["did not happen".into(), "3".into()]),
        "3; did not happen"
    );
}

/// A run with an external client: its writes are checked on their own,
/// shown in their own section and lanes, and kept in their own files.
#[test]
fn an_external_client_gets_its_section_lanes_and_files() {
    use crate::scenario::run::{ClientMeasurements, ExternalResult};
    let mut run = sample_run("kill-master-redis-py", false);
    let mut history = run.history.clone();
    for op in &mut history {
        op.process = "redis-py".into();
    }
    let present: std::collections::HashSet<u64> = (0..60).filter(|id| *id != 40).collect();
    let check = crate::workload::checker::check(&history, &present);
    assert_eq!(check.lost, vec![40]);
    run.external = Some(ExternalResult {
        run: crate::workload::external::ExternalRun {
            name: "redis-py".into(),
            command: vec!["python3".into(), "client.py".into()],
            exit: "exit status: 0".into(),
            exited_early: Some("exit status: 1 after its write at 6000 ms".into()),
            stderr: "Traceback (most recent call last):\nboom <here>\n".into(),
            history,
            parse_error: None,
            read_error: None,
            ..Default::default()
        },
        measurements: crate::scenario::run::ClientMeasurements {
            lost_acknowledged_writes: 1,
            ..ClientMeasurements::default()
        },
        check,
    });
    let md = super::markdown::render_markdown(
        std::slice::from_ref(&run),
        &[],
        &env(),
        "cargo xtask repro x.toml",
    );
    for want in [
        "#### External client `redis-py`",
        "**It exited before the scenario ended**: exit status: 1",
        "key `wl:redis-py:<id>`) (1): 40",
        "| external `redis-py`: lost acknowledged writes | 1 |",
        "boom <here>",
    ] {
        assert!(md.contains(want), "no `{want}` in:\n{md}");
    }
    let svg = crate::report::svg::timeline_svg(&run);
    assert_well_formed(&svg);
    assert!(svg.contains("redis-py: acknowledged, lost (1)"), "{svg}");

    let dir = std::env::temp_dir().join(format!("testbed-report-ext-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_bundle(&dir, &[run], &env(), "cargo xtask repro x.toml").unwrap();
    let h = std::fs::read_to_string(dir.join("run-1/history-redis-py.jsonl")).unwrap();
    assert_eq!(h.lines().count(), 60);
    assert!(dir.join("run-1/logs/redis-py.stderr.log").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_environment_names_the_engine_the_api_used_and_the_compose_program() {
    let cmd = "cargo xtask repro fixtures/scenarios/kill-master.toml";
    let mut e = env();
    e.engine = "Docker Engine".into();
    e.docker_version = "28.5.2".into();
    e.docker_api = "1.51".into();
    e.docker_api_max = "1.51".into();
    e.docker_host = "unix:///run/redis-sentinel-testbed/engine-sid/docker.sock".into();
    e.compose = "docker compose 2.40.3 (v2 plugin)".into();
    let md = render_markdown(&three_runs(), &[], &e, cmd);
    assert!(
        md.contains("| engine | Docker Engine 28.5.2 at `unix:///run/redis-sentinel-testbed/engine-sid/docker.sock`, API 1.51 used (engine max 1.51) |"),
        "{md}"
    );
    assert!(
        md.contains("| compose | docker compose 2.40.3 (v2 plugin) |"),
        "{md}"
    );
}
