//! Clock jumps: the wall clock of one process of a node (its redis-server
//! or its sentinel) jumps by ± seconds, on that process only — as an NTP
//! step or a VM resumed after a pause does. The processes run with the
//! testbed's clock shim preloaded (`clock-shim/`: it adds an offset the host
//! writes into `<state dir>/<node>/clock/<process>.offset`, mapped into the
//! process), so a jump takes effect at the process's next clock read.
//! `CLOCK_MONOTONIC` is untouched. The offset files are the record of what
//! is in force (`clocks`); `heal` sets every offset back to 0 (itself a
//! jump back).

use super::{Process, Target, Verb};
use crate::error::{Error, Result};
use crate::testbed::Testbed;
use std::path::PathBuf;

/// `libtestbed_clock.so`: `$TESTBED_CLOCK_SHIM`, else the one the crate's
/// build script made (`clock-shim/shim.rs`).
pub fn shim_program() -> Result<PathBuf> {
    let p = std::env::var_os("TESTBED_CLOCK_SHIM")
        .filter(|p| !p.is_empty())
        .map_or_else(
            || PathBuf::from(env!("TESTBED_CLOCK_SHIM_BUILT")),
            PathBuf::from,
        );
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::Prerequisite {
            what: format!("the clock shim {} is not a file", p.display()),
            hint: "rebuild the testbed crate (`cargo build`), or set TESTBED_CLOCK_SHIM to a built libtestbed_clock.so".into(),
        })
    }
}

impl Process {
    fn file(self) -> &'static str {
        match self {
            Process::Redis => "redis.offset",
            Process::Sentinel => "sentinel.offset",
        }
    }
}

/// One shifted clock.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Shifted {
    pub node: String,
    pub process: Process,
    pub offset_ms: f64,
}

impl std::fmt::Display for Shifted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: clock {:+.3} s",
            self.node,
            self.process.as_str(),
            self.offset_ms / 1000.0
        )
    }
}

impl Testbed {
    fn clock_file(&self, node: &str, p: Process) -> PathBuf {
        self.state_dir.join(node).join("clock").join(p.file())
    }

    /// Makes the wall clock of `process` on `target`'s nodes jump by
    /// `seconds` (negative: back); offsets add up. Refused for a node that
    /// is down or a testbed brought up without the clock shim.
    pub async fn clock_jump(&self, target: &Target, process: Process, seconds: f64) -> Result<f64> {
        if !seconds.is_finite() || seconds == 0.0 || seconds.abs() > 86_400.0 * 365.0 {
            return Err(Error::State(format!(
                "`clock-jump`: {seconds} s: give a jump other than 0, within a year"
            )));
        }
        let nodes = self.resolve(target).await?;
        let shim = self.state_dir.join("bin/libtestbed_clock.so");
        if !shim.is_file() {
            return Err(Error::State(format!(
                "`clock-jump`: testbed {} was brought up without the clock shim, so its clocks cannot be shifted\n  hint: build it (`cargo build -p testbed-clock`; `cargo xtask` does) and bring the testbed up again",
                self.topology.name
            )));
        }
        for n in &nodes {
            if self.pid(n).await? == 0 {
                return Err(Error::State(format!("`clock-jump`: {} is down", n.name)));
            }
        }
        let mut now = Vec::new();
        for n in &nodes {
            now.push(
                read_offset(&self.clock_file(&n.name, process)).await? + (seconds * 1e9) as i64,
            );
        }
        let extra = format!("{} {seconds:+} s", process.as_str());
        let t = self.record_verb(Verb::ClockJump, &nodes, &extra);
        for (n, ns) in nodes.iter().zip(now) {
            write_offset(&self.clock_file(&n.name, process), ns).await?;
        }
        Ok(t)
    }

    /// Every shifted clock, read from the offset files.
    pub async fn clocks(&self) -> Result<Vec<Shifted>> {
        let mut out = Vec::new();
        for n in &self.topology.nodes {
            for p in [Process::Redis, Process::Sentinel] {
                let f = self.clock_file(&n.name, p);
                if !f.is_file() {
                    continue;
                }
                let ns = read_offset(&f).await?;
                if ns != 0 {
                    out.push(Shifted {
                        node: n.name.clone(),
                        process: p,
                        offset_ms: ns as f64 / 1e6,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Sets every shifted clock back to the real time. Part of `heal`.
    pub(crate) async fn heal_clocks(&self) -> Result<Vec<Shifted>> {
        let before = self.clocks().await?;
        for s in &before {
            write_offset(&self.clock_file(&s.node, s.process), 0).await?;
        }
        Ok(before)
    }
}

async fn read_offset(p: &std::path::Path) -> Result<i64> {
    let b = tokio::fs::read(p).await.map_err(|e| Error::io(p, e))?;
    let head: [u8; 8] = b
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| Error::State(format!("{}: not a clock offset file", p.display())))?;
    Ok(i64::from_le_bytes(head))
}

/// Writes the offset in place (the processes have the file mapped: a
/// rename would leave them on the old one).
async fn write_offset(p: &std::path::Path, ns: i64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let (p, bytes) = (p.to_path_buf(), ns.to_le_bytes());
    tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        f.write_all_at(&bytes, 0).map_err(|e| Error::io(&p, e))
    })
    .await
    .map_err(|e| Error::State(format!("writing a clock offset: {e}")))?
}
