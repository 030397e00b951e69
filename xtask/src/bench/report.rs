//! What a bench run found: every raw sample, the summaries derived from them
//! (pure: [`Report::summarise`]), the environment, and the Markdown tables.

use super::bringup::{BringupSample, Footprint};
use super::failover::FailoverSample;
use super::stats::{ratios, summary, summary_of, Summary};
use serde::Serialize;
use std::collections::BTreeMap;
use testbed::phases::Phases;
use testbed::topology::Profile;

/// How many runs of what.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub quick: bool,
    pub bringup_rounds: usize,
    pub naive_rounds: usize,
    /// Containers (testbed/redis:7.0) and loopback, down-after 2000, each.
    pub runs_2000: usize,
    /// The same at down-after 5000.
    pub runs_5000: usize,
    /// `profile = "fast"` as shipped.
    pub fast_runs: usize,
    /// testbed/redis:8.0 and testbed/valkey:8.1 each (7.0 reuses the 2000 runs).
    pub image_runs: usize,
}

/// One failover setting.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub key: String,
    /// `None`: plain processes on loopback (the host's redis-server).
    pub image: Option<String>,
    pub profile: Profile,
    /// `SENTINEL DEBUG` parameters the bench sets on every sentinel once
    /// the testbed is up (a candidate profile).
    pub debug: Vec<(String, u32)>,
    pub down_after_ms: u64,
    pub runs: usize,
    /// `containers`, `loopback`, `fast` or `image`.
    pub group: String,
}

impl Setting {
    pub fn label(&self) -> String {
        let what = match &self.image {
            Some(i) => i.trim_start_matches("testbed/").to_string(),
            None => "loopback, host redis-server 7.0".into(),
        };
        let mut profile = if self.profile == Profile::Fast {
            ", profile fast".to_string()
        } else {
            String::new()
        };
        if let Some((_, ping)) = self.debug.iter().find(|(k, _)| k == "ping-period") {
            profile += &format!(", fast with ping {ping}");
        }
        format!("{what}{profile}, down-after {}", self.down_after_ms)
    }

    /// The floor of kill -> switch: down-after + 0.3 s.
    pub fn floor_ms(&self) -> f64 {
        self.down_after_ms as f64 + 300.0
    }
}

/// Where and with what.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Environment {
    pub date_utc: String,
    pub kernel: String,
    pub os: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub docker_version: String,
    pub docker_api: String,
    pub docker_compose: String,
    pub host_redis_server: Option<String>,
    pub testbed_version: String,
    /// image -> its package labels (`redis-server=5:7.0.15-1~deb12u5,...`).
    pub images: BTreeMap<String, String>,
}

pub async fn environment(docker: &bollard::Docker, host_redis: Option<String>) -> Environment {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once([':', '=']))
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let mut e = Environment {
        date_utc: testbed::report::utc_iso(std::time::SystemTime::now()),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        os: field(&read("/etc/os-release"), "PRETTY_NAME"),
        cpu_model: field(&read("/proc/cpuinfo"), "model name"),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib: field(&read("/proc/meminfo"), "MemTotal")
            .trim_end_matches(" kB")
            .parse::<f64>()
            .map_or(0.0, |kb| kb / 1024.0 / 1024.0),
        host_redis_server: host_redis,
        ..Default::default()
    };
    let engine = testbed::docker::engine_info(docker).await;
    e.docker_version = engine.version;
    // the API really used in the requests, and the engine's newest
    e.docker_api = format!("{}, engine max {}", engine.api_used, engine.api_max);
    e.docker_compose = testbed::compose::cli::detect()
        .map(|c| c.describe())
        .unwrap_or_else(|e| format!("none ({e})"));
    if let Ok(o) = tokio::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .await
    {
        e.testbed_version = String::from_utf8_lossy(&o.stdout).trim().to_string();
    }
    for s in testbed::image::CATALOG {
        if let Ok(Some(i)) = testbed::image::inspect(docker, s.name).await {
            let pk = i
                .labels
                .iter()
                .find(|(k, _)| k.ends_with(".packages"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            e.images.insert(s.name.to_string(), pk);
        }
    }
    e
}

/// Summaries of one contender's bring-ups.
#[derive(Debug, Clone, Serialize)]
pub struct ContenderSummary {
    pub healthy_ms: Option<Summary>,
    pub starts_ms: Option<Summary>,
    pub command_ms: Option<Summary>,
    pub down_ms: Option<Summary>,
    pub failed: usize,
}

/// One span of containers vs loopback.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub container: Option<Summary>,
    pub loopback: Option<Summary>,
    /// container median / loopback median.
    pub ratio_of_medians: Option<f64>,
    /// container / loopback per pair of runs with the same index.
    pub pair_ratios: Option<Summary>,
}

impl Comparison {
    fn of(c: &[Option<f64>], l: &[Option<f64>]) -> Comparison {
        let (cs, ls) = (summary_of(c.to_vec()), summary_of(l.to_vec()));
        Comparison {
            container: cs,
            loopback: ls,
            ratio_of_medians: cs.zip(ls).map(|(c, l)| c.median / l.median),
            pair_ratios: summary(&ratios(c, l)),
        }
    }
}

/// Containers vs loopback at one down-after: kill -> all switched, and
/// first `+sdown` -> all switched (which leaves out where the kill fell in
/// Sentinel's 1 s ping cycle).
#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    pub down_after_ms: u64,
    pub kill_to_switch: Comparison,
    pub sdown_to_switch: Comparison,
}

/// Every phase of one setting.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseSummary {
    pub setting: String,
    pub label: String,
    pub runs_ok: usize,
    pub runs_failed: usize,
    pub failed_elections: usize,
    pub floor_ms: f64,
    pub phases: BTreeMap<String, Summary>,
}

/// The phases in order: (key, column title, accessor).
pub type PhaseFn = fn(&Phases) -> Option<f64>;
pub const PHASES: [(&str, &str, PhaseFn); 7] = [
    ("sdown", "sdown", |p| p.sdown_ms),
    ("odown", "odown", |p| p.odown_ms),
    ("elected", "elected", |p| p.elected_ms),
    ("promoted", "promoted", |p| p.promoted_ms),
    ("switch", "all switched", |p| p.switch_all_ms),
    ("vip", "VIP answering", |p| p.vip_answering_ms),
    ("client", "client recovered", |p| p.client_recovered_ms),
];

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub environment: Environment,
    pub plan: Plan,
    pub wall_s: f64,
    pub section_wall_s: BTreeMap<String, f64>,
    pub settings: Vec<Setting>,
    pub bringup: Vec<BringupSample>,
    pub footprint: Footprint,
    pub failover: Vec<FailoverSample>,
    // derived by `summarise`
    pub bringup_summary: BTreeMap<String, ContenderSummary>,
    /// up / compose-to-healthy per alternating pair.
    pub up_over_compose: Option<Summary>,
    pub up_over_naive: Option<Summary>,
    /// Duration of each step of `Testbed::up` (from the previous step).
    pub up_steps: Vec<(String, Summary)>,
    pub phase_summary: Vec<PhaseSummary>,
    pub overhead: Vec<Overhead>,
    /// The impairments' precision (`--only impair` or a full run).
    pub impair: Option<super::impair::ImpairBench>,
    /// Growth with nodes and with testbeds at once (`--only growth` or a full run).
    pub growth: Option<super::growth::Growth>,
}

impl Report {
    pub fn new(environment: Environment, plan: Plan, settings: Vec<Setting>) -> Report {
        Report {
            environment,
            plan,
            wall_s: 0.0,
            section_wall_s: BTreeMap::new(),
            settings,
            bringup: Vec::new(),
            footprint: Footprint::default(),
            failover: Vec::new(),
            impair: None,
            growth: None,
            bringup_summary: BTreeMap::new(),
            up_over_compose: None,
            up_over_naive: None,
            up_steps: Vec::new(),
            phase_summary: Vec::new(),
            overhead: Vec::new(),
        }
    }

    fn bringup_of(&self, contender: &str) -> Vec<&BringupSample> {
        self.bringup
            .iter()
            .filter(|s| s.contender == contender)
            .collect()
    }

    /// The samples of one setting that completed.
    pub fn samples(&self, key: &str) -> Vec<&FailoverSample> {
        self.failover
            .iter()
            .filter(|s| s.setting == key && s.error.is_none())
            .collect()
    }

    pub fn setting(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.key == key)
    }

    /// Derives every summary from the raw samples.
    pub fn summarise(&mut self) {
        for c in ["up", "compose", "compose-naive"] {
            let v = self.bringup_of(c);
            let ok: Vec<_> = v.iter().filter(|s| s.error.is_none()).collect();
            let sum = |f: fn(&BringupSample) -> Option<f64>| summary_of(ok.iter().map(|s| f(s)));
            let cs = ContenderSummary {
                healthy_ms: sum(|s| s.healthy_ms),
                starts_ms: sum(|s| s.starts_ms),
                command_ms: sum(|s| s.command_ms),
                down_ms: sum(|s| s.down_ms),
                failed: v.len() - ok.len(),
            };
            self.bringup_summary.insert(c.to_string(), cs);
        }
        let by_round = |c: &str| {
            let v = self.bringup_of(c);
            (0..self.plan.bringup_rounds)
                .map(|r| {
                    v.iter()
                        .find(|s| s.round == r && s.error.is_none())
                        .and_then(|s| s.healthy_ms)
                })
                .collect::<Vec<_>>()
        };
        let up = by_round("up");
        let over_compose = summary(&ratios(&up, &by_round("compose")));
        let over_naive = summary(&ratios(&up, &by_round("compose-naive")));
        self.up_over_compose = over_compose;
        self.up_over_naive = over_naive;
        self.up_steps = step_durations(&self.bringup_of("up"));

        self.phase_summary = self
            .settings
            .iter()
            .map(|s| {
                let ok = self.samples(&s.key);
                let failed = self
                    .failover
                    .iter()
                    .filter(|x| x.setting == s.key && x.error.is_some())
                    .count();
                let mut phases = BTreeMap::new();
                for (k, _, f) in PHASES {
                    if let Some(sum) = summary_of(ok.iter().map(|x| x.phases.as_ref().and_then(f)))
                    {
                        phases.insert(k.to_string(), sum);
                    }
                }
                PhaseSummary {
                    setting: s.key.clone(),
                    label: s.label(),
                    runs_ok: ok.len(),
                    runs_failed: failed,
                    failed_elections: ok.iter().filter(|x| x.failed_elections > 0).count(),
                    floor_ms: s.floor_ms(),
                    phases,
                }
            })
            .collect();

        self.overhead = [2000u64, 5000]
            .iter()
            .map(|da| {
                let by_index = |key: &str, f: &dyn Fn(&Phases) -> Option<f64>| {
                    let n = self.setting(key).map_or(0, |s| s.runs);
                    let v = self.samples(key);
                    (0..n)
                        .map(|i| {
                            v.iter()
                                .find(|s| s.index == i)
                                .and_then(|s| s.phases.as_ref())
                                .and_then(f)
                        })
                        .collect::<Vec<_>>()
                };
                let (c, l) = (format!("c7.0-{da}"), format!("lo-{da}"));
                let kill = |p: &Phases| p.switch_all_ms;
                let sdown = |p: &Phases| Some(p.switch_all_ms? - p.sdown_ms?);
                Overhead {
                    down_after_ms: *da,
                    kill_to_switch: Comparison::of(&by_index(&c, &kill), &by_index(&l, &kill)),
                    sdown_to_switch: Comparison::of(&by_index(&c, &sdown), &by_index(&l, &sdown)),
                }
            })
            .collect();
    }
}

/// Labels a step of `up` by its leading words (`segment`, `redis containers
/// started`, `done` -> `healthy`).
fn step_label(msg: &str) -> String {
    if msg.starts_with("done") {
        return "health conditions hold".into();
    }
    msg.split_whitespace()
        .take_while(|w| !w.chars().any(|c| c.is_ascii_digit()) && !w.starts_with('('))
        .collect::<Vec<_>>()
        .join(" ")
}

fn step_durations(ups: &[&BringupSample]) -> Vec<(String, Summary)> {
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in ups.iter().filter(|s| s.error.is_none()) {
        let mut prev = 0.0;
        for (t, msg) in &s.steps {
            let l = step_label(msg);
            if !order.contains(&l) {
                order.push(l.clone());
            }
            by.entry(l).or_default().push(t - prev);
            prev = *t;
        }
    }
    order
        .into_iter()
        .filter_map(|l| {
            let s = summary(by.get(&l)?)?;
            Some((l, s))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_labels_drop_details() {
        assert_eq!(
            step_label("segment 198.18.170.0/24 (parent x, shim y)"),
            "segment"
        );
        assert_eq!(
            step_label("redis containers started"),
            "redis containers started"
        );
        assert_eq!(
            step_label("done: healthy in 1.2 s"),
            "health conditions hold"
        );
    }
}
