//! A testbed's state directory and its `state.json`: the topology it was
//! made from, the macvlan parent, and who owns it — a live process (whose
//! testbed goes when that process does) or nobody (`cargo xtask up`, the
//! Compose project: it stays until `down`). An owner that is gone means its
//! objects are leftovers, which the next `up` of that name removes.

use crate::error::{Error, Result};
use crate::model::topology::Topology;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File in a testbed's state directory that marks it and records how it was
/// made.
pub const STATE_FILE: &str = "state.json";

/// Where state, logs and reports go by default: `target/testbed` of this
/// workspace, or `$TESTBED_STATE_DIR`.
pub fn default_state_root() -> PathBuf {
    std::env::var_os("TESTBED_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/testbed"))
}

/// The process that owns a testbed: its pid and its start time (clock ticks
/// since boot, `/proc/PID/stat` field 22), so a recycled pid is not taken
/// for the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub start_ticks: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
        }
    }

    /// Whether that process still runs.
    pub fn alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// `/proc/PID/stat` field 22 (after the parenthesised command, which may
/// hold spaces).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // field 3 is the first after the command; 22 is the 20th from there
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateFile {
    /// The topology, as TOML with every key explicit.
    pub topology: String,
    /// The macvlan parent in use.
    pub parent: String,
    /// `None`: nobody's (it stays until `down`).
    #[serde(default)]
    pub owner: Option<Owner>,
    /// The testbed's seed (see `Testbed::seed`).
    #[serde(default)]
    pub seed: u64,
}

impl StateFile {
    /// Whether the testbed is meant to be running: nobody owns it (it was
    /// left up on purpose), or its owner still runs.
    pub fn is_live(&self) -> bool {
        self.owner.is_none_or(|o| o.alive())
    }
}

/// Writes `state.json` of `topology` under `state_root` (creating the
/// directory).
pub fn write(
    state_root: &Path,
    topology: &Topology,
    parent: &str,
    seed: u64,
    owner: Option<Owner>,
) -> Result<PathBuf> {
    let dir = state_root.join(&topology.name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let state = StateFile {
        topology: topology.to_toml(),
        parent: parent.to_string(),
        owner,
        seed,
    };
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&state).expect("serialises"),
    )
    .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Records a testbed whose containers something else starts (the Compose
/// project in `compose/`), so that `Testbed::attach`, `cargo xtask status`
/// and `down` find it as they find one made by `Testbed::up`.
pub fn write_state(state_root: &Path, topology: &Topology, parent: &str) -> Result<PathBuf> {
    write(state_root, topology, parent, fresh_seed(), None)
}

/// A seed for a testbed that was given none: from the clock and the pid.
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    (t ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Reads `state.json` of testbed `name`; `None` when there is none.
pub fn read(state_root: &Path, name: &str) -> Result<Option<StateFile>> {
    let path = state_root.join(name).join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::State(format!("{}: not a testbed state file: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = Owner::me();
        assert!(me.start_ticks > 0 && me.alive());
        let recycled = Owner {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!recycled.alive(), "a recycled pid is not the owner");
        let nobody = Owner {
            pid: u32::MAX - 1,
            start_ticks: 1,
        };
        assert!(!nobody.alive());
    }

    #[test]
    fn state_round_trips_and_tells_live_from_leftover() {
        let dir = std::env::temp_dir().join(format!("tb-state-test-{}", std::process::id()));
        let t = Topology::default_topology();
        write(&dir, &t, "tbx", 7, Some(Owner::me())).unwrap();
        let s = read(&dir, &t.name).unwrap().unwrap();
        assert_eq!((s.parent.as_str(), s.seed), ("tbx", 7));
        assert!(s.is_live());
        let dead = Owner {
            pid: u32::MAX - 1,
            start_ticks: 1,
        };
        write(&dir, &t, "tbx", 7, Some(dead)).unwrap();
        assert!(!read(&dir, &t.name).unwrap().unwrap().is_live());
        write_state(&dir, &t, "tbx").unwrap();
        assert!(
            read(&dir, &t.name).unwrap().unwrap().is_live(),
            "nobody's: kept"
        );
        assert!(read(&dir, "absent").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
