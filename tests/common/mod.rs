//! Shared set-up for the integration tests: each test gets its own testbed
//! (unique name and /24 inside 198.18.0.0/15), removed when the handle drops.

#![allow(dead_code)]

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use testbed::net::Subnet;
use testbed::phases::Phases;
use testbed::testbed::default_state_root;
use testbed::{ParseOptions, Testbed, Topology, UpOptions};

pub fn init_tracing() {
    // the impairment daemon cargo built for these tests
    if std::env::var_os("TESTBED_NETEM").is_none() {
        std::env::set_var("TESTBED_NETEM", env!("CARGO_BIN_EXE_testbed-netem"));
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// The default topology, renamed and moved to 198.18.<slot>.0/24;
/// `TESTBED_IMAGE` overrides the image. Names and slots go through
/// [`name`] and [`slot`], so a second suite (`TESTBED_TEST_PREFIX`) never
/// touches this one's testbeds.
pub fn topology(name: &str, slot: u8) -> Result<Topology> {
    let mut t = Topology::from_file(&fixture("topology.toml"), &ParseOptions::default())?
        .relocated(&self::name(name), self::slot(slot)?)?;
    if let Ok(img) = std::env::var("TESTBED_IMAGE") {
        t.image = img;
    }
    Ok(t)
}

/// A test's testbed name: `TESTBED_TEST_PREFIX` (e.g. `e2-`) + `base`.
pub fn name(base: &str) -> String {
    format!(
        "{}{base}",
        std::env::var("TESTBED_TEST_PREFIX").unwrap_or_default()
    )
}

/// The subnet of a test's slot (its /24 of 198.18.0.0/16). The tests' own
/// slots are 100-169; with `TESTBED_TEST_PREFIX` set they move down by 90
/// (to 10-79) unless `TESTBED_TEST_SLOT_OFFSET` says otherwise, so two
/// suites run side by side. 170-173 (bench), 200-255 (repro, clients,
/// matrix jobs) and 0 (`cargo xtask up`) are never used.
pub fn slot(base: u8) -> Result<Subnet> {
    let prefixed = std::env::var("TESTBED_TEST_PREFIX").is_ok_and(|p| !p.is_empty());
    let offset: i32 = match std::env::var("TESTBED_TEST_SLOT_OFFSET") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("TESTBED_TEST_SLOT_OFFSET={v} is not a number"))?,
        Err(_) if prefixed => -90,
        Err(_) => 0,
    };
    let s = i32::from(base) + offset;
    anyhow::ensure!(
        (1..=169).contains(&s),
        "test slot {base} + offset {offset} = {s} is outside 1..=169 (170-173 are the bench's, 200-255 repro's)"
    );
    Ok(Subnet::test_slot(s as u8))
}

/// [`topology`] with the `fast` profile (Sentinel's periods shortened with
/// `SENTINEL DEBUG`): for tests whose point is not Sentinel's default timing.
pub fn fast_topology(name: &str, slot: u8) -> Result<Topology> {
    let mut t = topology(name, slot)?;
    t.profile = testbed::topology::Profile::Fast;
    Ok(t)
}

/// Brings up a testbed for one test (`Testbed::up` removes what a killed
/// earlier run of the same test left, and refuses a testbed another live
/// process owns). Docker missing is a loud failure.
pub async fn up(t: Topology) -> Result<Testbed> {
    up_with(t, None).await
}

/// [`up`] with the testbed's seed (what its faults' random choices derive from).
pub async fn up_with(t: Topology, seed: Option<u64>) -> Result<Testbed> {
    init_tracing();
    testbed::docker::connect()
        .await
        .context("these tests run real containers and need a Docker engine")?;
    let name = t.name.clone();
    Testbed::up(
        t,
        UpOptions {
            health_timeout: Duration::from_secs(60),
            seed,
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("bringing up testbed {name}"))
}

/// Writes the timeline (JSON) under target/testbed/runs/<run>/, prints it as
/// a table with the phase timings, and appends those to timings.jsonl.
pub fn report(tb: &Testbed, run: &str, fault_ms: f64) -> Result<Phases> {
    let dir = default_state_root().join("runs").join(name(run));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("timeline.json"), tb.timeline.to_json())?;
    let t = &tb.topology;
    let p = testbed::phases::phases(
        run,
        &t.image,
        t.down_after_ms,
        &tb.timeline.events(),
        fault_ms,
    );
    std::fs::write(dir.join("phases.json"), serde_json::to_string_pretty(&p)?)?;
    println!(
        "timeline of {run} (t=0 at the fault):\n{}",
        tb.timeline.render(fault_ms)
    );
    println!("{}", p.render());
    p.append(&default_state_root())?;
    Ok(p)
}

/// How long an old master that is up may take to be converted to a replica:
/// Sentinel converts it only after its role has been reported wrong for 4
/// publish periods (8 s) and re-checks at its INFO period (10 s) — hence
/// failover timeout + 18 s + 5 s of margin.
pub fn demotion_timeout(tb: &Testbed) -> Duration {
    failover_timeout(tb) + Duration::from_secs(23)
}

/// Prints and saves the timeline if the test ends without calling `ok`
/// (an `Err` or a panic), so a failure in CI shows what happened.
pub struct Trace<'a> {
    tb: &'a Testbed,
    run: &'static str,
    armed: bool,
}

impl<'a> Trace<'a> {
    pub fn new(tb: &'a Testbed, run: &'static str) -> Trace<'a> {
        Trace {
            tb,
            run,
            armed: true,
        }
    }

    /// The test passed: report the phases from `fault_ms`.
    pub fn ok(mut self, fault_ms: f64) -> Result<Phases> {
        self.armed = false;
        report(self.tb, self.run, fault_ms)
    }
}

impl Drop for Trace<'_> {
    fn drop(&mut self) {
        if self.armed {
            let dir = default_state_root().join("runs").join(name(self.run));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("timeline.json"), self.tb.timeline.to_json());
            eprintln!(
                "{} failed; its timeline (ms since the testbed came up):\n{}",
                self.run,
                self.tb.timeline.render(0.0)
            );
        }
    }
}

/// The failover timeout of the topology, the bound the tests assert.
pub fn failover_timeout(tb: &Testbed) -> Duration {
    Duration::from_millis(tb.topology.failover_timeout_ms)
}

/// The server line of a testbed (`redis-8.0`, `valkey-9.1`): the insta
/// snapshot suffix of what its nodes report, so each line has its own
/// reviewed snapshots.
pub async fn server_line(tb: &Testbed) -> Result<String> {
    let n = tb.topology.initial_master();
    let info = testbed::client::info(tb.redis_addr(n), None, "server").await?;
    testbed::normalize::server_line(&info)
        .with_context(|| format!("INFO server of {} names no version: {info:?}", n.name))
}

/// insta settings whose snapshots carry `line` as their suffix
/// (`failover__before_failover@valkey-8.1.snap`).
pub fn snapshot_settings(line: &str) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_suffix(line);
    s
}
