//! The client matrix for real: the shipped kill-master scenario of
//! `fixtures/scenarios/clients/` with every client program of the image
//! writing at once from its own container on one testbed (slot 166), as
//! `cargo xtask clients` runs it. Every client must have a row with a
//! measured recovery or an explicit "did not recover", the counts of each
//! must add up (acknowledged = present + lost), and the files must say the
//! same.

mod common;

use anyhow::{ensure, Context, Result};
use testbed::model::clients::CLIENTS;
use testbed::scenario::matrix::{self, MatrixOptions};
use testbed::scenario::Scenario;

#[tokio::test]
async fn kill_master_matrix_has_a_row_per_client_and_the_counts_add_up() -> Result<()> {
    common::init_tracing();
    let docker = testbed::docker::connect()
        .await
        .context("this test runs real containers and needs a Docker engine")?;
    let scenario = Scenario::from_file(&common::fixture("scenarios/clients/kill-master.toml"))?;
    let slot = common::slot(166)?;
    let opts = MatrixOptions {
        name_prefix: common::name("tm-"),
        first_slot: slot.network().octets()[2],
        slots: 1,
        ..Default::default()
    };
    let runs = matrix::run(std::slice::from_ref(&scenario), &opts, |_| {}).await?;
    ensure!(runs.len() == 1, "{} runs", runs.len());
    let run = &runs[0];
    ensure!(
        run.error.is_none(),
        "the run did not complete: {:?}",
        run.error
    );
    let result = run.result.as_ref().expect("completed");
    ensure!(
        result.measurements.failovers == 1,
        "{} failovers",
        result.measurements.failovers
    );
    let rows = matrix::rows(&runs, &opts.clients, opts.timeout_ms as f64);
    for r in &rows {
        println!(
            "{:<26} ack {:>5} present {:>5} lost {:>3} dup {:>3} unknown {:>4} recovery {}",
            r.client,
            r.acknowledged,
            r.acknowledged_present,
            r.lost_acknowledged,
            r.duplicates,
            r.unknown,
            testbed::report::matrix::recovery_cell(r)
        );
    }
    ensure!(rows.len() == CLIENTS.len(), "{} rows", rows.len());
    for (r, c) in rows.iter().zip(CLIENTS) {
        ensure!(r.client == c.name, "row {} for {}", r.client, c.name);
        ensure!(r.crashed.is_none(), "{}: {:?}", r.client, r.crashed);
        ensure!(
            r.recovered_ms.is_some() != r.did_not_recover_within_ms.is_some(),
            "{}: neither a recovery nor an explicit 'did not recover' ({:?}, {:?})",
            r.client,
            r.recovered_ms,
            r.did_not_recover_within_ms
        );
        ensure!(
            r.acknowledged == r.acknowledged_present + r.lost_acknowledged,
            "{}: {} acknowledged != {} present + {} lost",
            r.client,
            r.acknowledged,
            r.acknowledged_present,
            r.lost_acknowledged
        );
        // every client wrote before the fault and was told to stop after it
        ensure!(
            r.acknowledged > 50,
            "{}: {} acknowledged",
            r.client,
            r.acknowledged
        );
        ensure!(!r.version.is_empty(), "{}: no version", r.client);
    }
    // the files say the same: matrix.json's rows, with the stable keys
    let dir = testbed::testbed::default_state_root()
        .join("runs")
        .join(common::name("client_matrix"));
    let _ = std::fs::remove_dir_all(&dir);
    let env = testbed::report::environment(&docker, result).await;
    let summaries = matrix::summaries(&rows);
    let m = testbed::report::matrix::Matrix {
        runs: &runs,
        rows: &rows,
        summaries: &summaries,
        environment: &env,
        client_image: None,
        rate: opts.rate,
        timeout_ms: opts.timeout_ms,
        command: "cargo test --test client_matrix",
    };
    testbed::report::matrix::write_matrix(&dir, &m)?;
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("matrix.json"))?)?;
    let jrows = json["rows"].as_array().context("no rows")?;
    ensure!(jrows.len() == CLIENTS.len());
    for key in [
        "client",
        "library",
        "version",
        "language",
        "scenario",
        "run",
        "recovered_ms",
        "acknowledged",
        "lost_acknowledged",
        "duplicates",
        "unknown",
        "refused",
        "longest_unavailable_ms",
        "wrote_to_demoted_master",
    ] {
        ensure!(
            jrows.iter().all(|r| r.get(key).is_some()),
            "a row has no `{key}`"
        );
    }
    let md = std::fs::read_to_string(dir.join("matrix.md"))?;
    for c in CLIENTS {
        ensure!(
            md.contains(&format!("`{}`", c.name)),
            "matrix.md lacks {}",
            c.name
        );
    }
    let svg = std::fs::read_to_string(dir.join("matrix.svg"))?;
    ensure!(svg.starts_with("<svg") && svg.contains("+switch-master"));
    ensure!(dir
        .join("kill-master/run-1/history-fred-sentinel.jsonl")
        .is_file());
    // nothing of the run is left
    let left = testbed::teardown::leftovers(
        &docker,
        Some(&run.testbed),
        &testbed::testbed::default_state_root(),
    )
    .await?;
    ensure!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}
