//! Disks that fail: a sentinel whose config folder can no longer be written
//! (`config-readonly`). Sentinel rewrites its `sentinel.conf` at start and
//! after every change it learns (a failover, a new peer); with the folder
//! read-only each rewrite fails ("Read-only file system") and the file keeps
//! what it said before, which a restarted sentinel then reads back. The
//! folder is remounted read-only inside the sentinel container's own mount
//! namespace (from the host, `nsenter -m`), so nothing outside the container
//! changes, and a container restart (a new mount namespace) undoes it —
//! as `heal` does. The mount table is the record of what is in force.

use super::{Target, Verb};
use crate::backend::{containers, host};
use crate::error::{Error, Result};
use crate::model::render::paths;
use crate::model::topology::Node;
use crate::testbed::Testbed;

impl Testbed {
    /// The host pid of `n`'s sentinel container (0 when not running).
    async fn sentinel_pid(&self, n: &Node) -> Result<i64> {
        Ok(containers::state(
            &self.docker,
            &self.names.sentinel(&n.name),
            &self.names.network,
        )
        .await?
        .filter(|s| s.running)
        .map_or(0, |s| s.pid))
    }

    async fn remount(&self, pid: i64, mode: &str) -> Result<()> {
        let opts = format!("remount,{mode},bind");
        let p = pid.to_string();
        host::run_async(
            "nsenter",
            &["-t", &p, "-m", "mount", "-o", &opts, paths::SENTINEL_DIR],
        )
        .await
        .map(drop)
    }

    /// Makes the config folder of `target`'s sentinels read-only.
    pub async fn config_readonly(&self, target: &Target) -> Result<f64> {
        let nodes = self.resolve(target).await?;
        let mut pids = Vec::new();
        for n in &nodes {
            match self.sentinel_pid(n).await? {
                0 => {
                    return Err(Error::State(format!(
                        "`config-readonly`: {}'s sentinel is not running",
                        n.name
                    )))
                }
                pid => pids.push(pid),
            }
        }
        let t = self.record_verb(Verb::ConfigReadonly, &nodes, paths::SENTINEL_DIR);
        for pid in pids {
            self.remount(pid, "ro").await?;
        }
        Ok(t)
    }

    /// The nodes whose sentinel's config folder is read-only now, read from
    /// the sentinel's mount table.
    pub async fn readonly_configs(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for n in &self.topology.nodes {
            let pid = self.sentinel_pid(n).await?;
            if pid == 0 {
                continue;
            }
            let table = match tokio::fs::read_to_string(format!("/proc/{pid}/mountinfo")).await {
                Ok(t) => t,
                // it exited between the two calls
                Err(_) => continue,
            };
            if mount_is_readonly(&table, paths::SENTINEL_DIR) {
                out.push(n.name.clone());
            }
        }
        Ok(out)
    }

    /// Makes every sentinel config folder writable again. Part of `heal`.
    pub(crate) async fn heal_configs(&self) -> Result<Vec<String>> {
        let ro = self.readonly_configs().await?;
        for name in &ro {
            let pid = self.sentinel_pid(self.node(name)?).await?;
            self.remount(pid, "rw").await?;
        }
        Ok(ro)
    }
}

/// Whether `mountinfo` has `point` mounted read-only (field 6: the mount
/// options).
fn mount_is_readonly(mountinfo: &str, point: &str) -> bool {
    mountinfo.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(4) == Some(&point) && f.get(5).is_some_and(|o| o.split(',').any(|x| x == "ro"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_mounts_read_back_from_mountinfo() {
        let t = "314 269 254:0 /work/x/sentinel /testbed/sentinel ro,relatime - ext4 /dev/vda rw\n\
                 315 269 254:0 /work/x/log /testbed/log rw,relatime - ext4 /dev/vda rw\n";
        assert!(mount_is_readonly(t, "/testbed/sentinel"));
        assert!(!mount_is_readonly(t, "/testbed/log"));
        assert!(!mount_is_readonly(t, "/testbed/script"));
    }
}
