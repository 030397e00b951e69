//! The impairment daemon `testbed-netem` is a binary of the testbed crate;
//! `cargo xtask` builds it (up to date in a fraction of a second) before a
//! command that may impair links, so the library finds it beside the xtask
//! binary. (The clock shim is built by the crate's build script.)

use anyhow::{ensure, Context, Result};

/// Builds `testbed-netem` unless `TESTBED_NETEM` names one.
pub fn ensure() -> Result<()> {
    if std::env::var_os("TESTBED_NETEM").is_some_and(|p| !p.is_empty()) {
        return Ok(());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = std::process::Command::new(&cargo)
        .args(["build", "-q", "-p", "testbed", "--bin", "testbed-netem"])
        .current_dir(crate::paths::root())
        .stdin(std::process::Stdio::null())
        .status()
        .context("running cargo to build testbed-netem")?;
    ensure!(st.success(), "building testbed-netem failed ({st})");
    Ok(())
}
