//! K testbeds at once: a pool of workers, each with its own testbed name
//! and /24, taking runs (a scenario, an image, a seed) from one queue. Used
//! by `repro --jobs`, `matrix --jobs` and the bench's parallel section.
//!
//! Invariants: worker `w` always uses slot `first_slot + w` and names its
//! testbeds `<prefix><w>-<scenario>`, so no two runs in flight share a
//! subnet or a name, and none shares one with `cargo xtask up` (slot 0) or
//! the tests (100-169). After Ctrl-C no worker starts another run; the
//! runs in flight unwind and remove their testbeds, and the pool returns
//! `Interrupted` once every worker has stopped.

use anyhow::{bail, Result};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use testbed::net::Subnet;
use testbed::repro::{RunOptions, RunResult};
use testbed::scenario::Scenario;
use testbed::UpOptions;

/// The slots (198.18.<slot>.0/24) parallel runs use.
pub const JOB_SLOTS: std::ops::RangeInclusive<u8> = 240..=254;

/// One run to make.
#[derive(Debug, Clone)]
pub struct Job {
    /// Index into the pool's scenarios.
    pub scenario: usize,
    pub image: Option<String>,
    pub seed: u64,
}

/// What a run gave: its result, or why it did not complete.
pub struct Done {
    pub job: Job,
    pub testbed: String,
    pub result: std::result::Result<RunResult, String>,
    /// How long the run took, bring-up and removal included.
    pub elapsed_s: f64,
}

/// How the pool names and places its testbeds.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Testbed names are `<prefix><worker>-<scenario>` (`<prefix>-<scenario>`
    /// with one worker, as `repro` always named them).
    pub prefix: String,
    pub first_slot: u8,
    pub workers: usize,
}

impl Layout {
    /// Checks that the workers' slots exist (`first_slot + workers - 1 <= 254`).
    pub fn check(&self) -> Result<()> {
        if self.workers == 0 {
            bail!("--jobs 0: at least one job is needed");
        }
        let last = usize::from(self.first_slot) + self.workers - 1;
        if last > 254 {
            bail!(
                "--jobs {}: slots {}..={last} do not exist; the last /24 is 198.18.254.0 \
                 (parallel jobs use slots 240-254: at most 15 jobs)",
                self.workers,
                self.first_slot
            );
        }
        Ok(())
    }

    /// The testbed name of `worker` for `scenario` (a valid name, ≤ 24).
    pub fn name(&self, worker: usize, scenario: &str) -> String {
        let head = if self.workers == 1 {
            format!("{}-", self.prefix)
        } else {
            format!("{}{worker}-", self.prefix)
        };
        let mut n = head;
        for c in scenario.chars().map(|c| c.to_ascii_lowercase()) {
            let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            };
            if !(c == '-' && n.ends_with('-')) {
                n.push(c);
            }
        }
        n.truncate(24);
        n.trim_end_matches('-').to_string()
    }

    pub fn subnet(&self, worker: usize) -> Subnet {
        Subnet::test_slot(self.first_slot + worker as u8)
    }
}

/// Runs `jobs` on `layout.workers` testbeds at once; `on_done` sees each
/// run as it ends (to print it). Returns every run in the order they
/// ended; `Err` only for an interruption.
/// With `stop_on_error`, a run that does not complete (bring-up failed)
/// empties the queue: the runs in flight finish, no other starts.
pub async fn run(
    scenarios: Arc<Vec<Scenario>>,
    jobs: Vec<Job>,
    layout: &Layout,
    stop_on_error: bool,
    on_done: impl Fn(&Done) + Send + Sync + 'static,
) -> Result<Vec<Done>> {
    layout.check()?;
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let done = Arc::new(Mutex::new(Vec::new()));
    let on_done = Arc::new(on_done);
    let mut set = tokio::task::JoinSet::new();
    for worker in 0..layout.workers {
        let (queue, done, on_done) = (queue.clone(), done.clone(), on_done.clone());
        let (scenarios, layout) = (scenarios.clone(), layout.clone());
        set.spawn(async move {
            loop {
                if testbed::testbed::interrupt::interrupted().is_some() {
                    return;
                }
                let Some(job) = queue.lock().expect("queue lock").pop_front() else {
                    return;
                };
                let s = &scenarios[job.scenario];
                let opts = RunOptions {
                    testbed_name: layout.name(worker, &s.name),
                    subnet: layout.subnet(worker),
                    image: job.image.clone(),
                    up: UpOptions::default(),
                    seed: Some(job.seed),
                };
                let t0 = std::time::Instant::now();
                let r = testbed::repro::run(s, &opts).await;
                let interrupted = matches!(r, Err(testbed::Error::Interrupted { .. }));
                let d = Done {
                    job,
                    testbed: opts.testbed_name.clone(),
                    result: r.map_err(|e| e.to_string()),
                    elapsed_s: t0.elapsed().as_secs_f64(),
                };
                if interrupted {
                    return;
                }
                if stop_on_error && d.result.is_err() {
                    queue.lock().expect("queue lock").clear();
                }
                on_done(&d);
                done.lock().expect("done lock").push(d);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        if let Err(e) = r {
            bail!("a job's task failed: {e}");
        }
    }
    testbed::testbed::interrupt::check("the parallel runs")?;
    let out = std::mem::take(&mut *done.lock().expect("done lock"));
    Ok(out)
}

/// The seeds of shard `index` of `count` among runs 1..=repeat: every
/// `count`-th run, starting at `index` (round robin, like nextest's
/// `--partition count:I/N`).
pub fn shard_seeds(repeat: u32, index: u32, count: u32) -> Vec<u64> {
    (1..=u64::from(repeat))
        .filter(|s| (s - 1) % u64::from(count) == u64::from(index - 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_get_distinct_valid_names_and_slots() {
        let l = Layout {
            prefix: "rp".into(),
            first_slot: 240,
            workers: 4,
        };
        l.check().unwrap();
        let names: Vec<String> = (0..4).map(|w| l.name(w, "kill-master")).collect();
        assert_eq!(names[0], "rp0-kill-master");
        assert_eq!(names[3], "rp3-kill-master");
        assert_eq!(l.subnet(3).to_string(), "198.18.243.0/24");
        assert_eq!(
            l.name(12, "isolated-master-keeps-vip"),
            "rp12-isolated-master-kee"
        );
        let one = Layout {
            workers: 1,
            first_slot: 200,
            ..l.clone()
        };
        assert_eq!(one.name(0, "kill-master"), "rp-kill-master");
        let zero = Layout {
            workers: 0,
            ..l.clone()
        };
        assert!(zero.check().unwrap_err().to_string().contains("--jobs 0"));
        let many = Layout { workers: 16, ..l };
        assert!(many.check().unwrap_err().to_string().contains("at most 15"));
    }

    #[test]
    fn shards_split_the_seeds_without_overlap() {
        let a = shard_seeds(10, 1, 3);
        let b = shard_seeds(10, 2, 3);
        let c = shard_seeds(10, 3, 3);
        assert_eq!(a, [1, 4, 7, 10]);
        assert_eq!(b, [2, 5, 8]);
        assert_eq!(c, [3, 6, 9]);
        let mut all: Vec<u64> = [a, b, c].concat();
        all.sort();
        assert_eq!(all, (1..=10).collect::<Vec<_>>());
        assert_eq!(shard_seeds(2, 3, 4), Vec::<u64>::new());
    }
}
