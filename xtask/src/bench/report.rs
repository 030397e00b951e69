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
    pub failover_runs: usize,
    pub image_runs: usize,
    pub loopback_runs: usize,
}

/// One failover setting.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub key: String,
    /// `None`: plain processes on loopback (the host's redis-server).
    pub image: Option<String>,
    pub profile: Profile,
    pub down_after_ms: u64,
    pub runs: usize,
    /// `containers`, `loopback`, `fast` or `image`.
    pub group: String,
}

impl Setting {
    pub fn label(&self) -> String {
        let what = match &self.image {
            Some(i) => i.trim_start_matches("testbed/").to_string(),
            None => "loopback processes (host redis 7.0)".into(),
        };
        let profile = if self.profile == Profile::Fast {
            ", fast profile"
        } else {
            ""
        };
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
    if let Ok(v) = docker.version().await {
        e.docker_version = v.version.unwrap_or_default();
        e.docker_api = v.api_version.unwrap_or_default();
    }
    if let Ok(o) = tokio::process::Command::new("docker-compose")
        .arg("version")
        .arg("--short")
        .output()
        .await
    {
        e.docker_compose = String::from_utf8_lossy(&o.stdout).trim().to_string();
    }
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

/// kill -> switch of containers vs loopback at one down-after.
#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    pub down_after_ms: u64,
    pub container: Option<Summary>,
    pub loopback: Option<Summary>,
    pub ratio_of_medians: Option<f64>,
    /// container / loopback per pair of runs with the same index.
    pub pair_ratios: Option<Summary>,
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
                let by_index = |key: &str| {
                    let n = self.setting(key).map_or(0, |s| s.runs);
                    let v = self.samples(key);
                    (0..n)
                        .map(|i| v.iter().find(|s| s.index == i).and_then(|s| s.switch_ms()))
                        .collect::<Vec<_>>()
                };
                let c = by_index(&format!("c7.0-{da}"));
                let l = by_index(&format!("lo-{da}"));
                let (cs, ls) = (summary_of(c.clone()), summary_of(l.clone()));
                Overhead {
                    down_after_ms: *da,
                    container: cs,
                    loopback: ls,
                    ratio_of_medians: cs.zip(ls).map(|(c, l)| c.median / l.median),
                    pair_ratios: summary(&ratios(&c, &l)),
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

fn cell(s: Option<&Summary>) -> String {
    s.map_or("–".into(), |s| {
        format!("**{:.0}** ({:.0}–{:.0})", s.median, s.min, s.max)
    })
}

fn triple(s: Option<&Summary>, digits: usize) -> String {
    s.map_or("–".into(), |s| {
        format!(
            "{:.d$} / **{:.d$}** / {:.d$}",
            s.min,
            s.median,
            s.max,
            d = digits
        )
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

/// The tables, ready for the README.
pub fn markdown(r: &Report, svg_name: &str) -> String {
    let e = &r.environment;
    let mut m = format!(
        "Measured {date} on {cpus} × {cpu}, {mem:.0} GiB, {os}, kernel {kernel}; Docker {dv} (API {api}), docker-compose {dc}; host redis-server {hr}; testbed {tv}. {mode} run, {wall:.0} s wall time (bring-up {b:.0} s, failovers {f:.0} s).\n\n",
        date = e.date_utc,
        cpus = e.cpus,
        cpu = e.cpu_model,
        mem = e.memory_gib,
        os = e.os,
        kernel = e.kernel,
        dv = e.docker_version,
        api = e.docker_api,
        dc = e.docker_compose,
        hr = e.host_redis_server.as_deref().unwrap_or("?"),
        tv = e.testbed_version,
        mode = if r.plan.quick { "`--quick`" } else { "Default" },
        wall = r.wall_s,
        b = r.section_wall_s.get("bring-up").copied().unwrap_or(0.0),
        f = r.section_wall_s.get("failover").copied().unwrap_or(0.0),
    );
    m += "Cells are **median** (min–max) in ms over the runs shown; contenders alternate within each round.\n\n";

    m += "#### Bring-up to healthy (warm images)\n\n";
    m += "| contender | runs | to healthy | 6 container starts | `docker-compose up -d` returned | teardown |\n|---|---|---|---|---|---|\n";
    for (c, what) in [
        ("up", "`cargo xtask up` (`Testbed::up`)"),
        ("compose", "`docker-compose up -d` + health poll"),
        (
            "compose-naive",
            "same, seed-style sentinel.conf (no known peers)",
        ),
    ] {
        if let Some(s) = r.bringup_summary.get(c) {
            let n = s.healthy_ms.map_or(0, |x| x.n);
            let failed = if s.failed > 0 {
                format!(" ({} failed)", s.failed)
            } else {
                String::new()
            };
            m += &format!(
                "| {what} | {n}{failed} | {} | {} | {} | {} |\n",
                cell(s.healthy_ms.as_ref()),
                cell(s.starts_ms.as_ref()),
                cell(s.command_ms.as_ref()),
                cell(s.down_ms.as_ref())
            );
        }
    }
    let up_med = r
        .bringup_summary
        .get("up")
        .and_then(|s| s.healthy_ms)
        .map(|s| s.median);
    m += &format!(
        "\n`up` / compose-to-healthy per pair (min / **median** / max): {} — target ≤ 0.4: {}. `up` median {} — target ≤ 1500 ms: {}.",
        triple(r.up_over_compose.as_ref(), 2),
        verdict(r.up_over_compose.is_some_and(|s| s.median <= 0.4)),
        up_med.map_or("–".into(), |v| format!("{v:.0} ms")),
        verdict(up_med.is_some_and(|v| v <= 1500.0)),
    );
    if let Some(s) = &r.up_over_naive {
        m += &format!(" `up` / seed-style compose: {}.", triple(Some(s), 2));
    }
    m += " \"6 container starts\" is Docker's `Created` of the first container to `StartedAt` of the last.\n\n";
    if !r.up_steps.is_empty() {
        m += "Steps of `up` (each from the end of the previous one):\n\n| step | ms |\n|---|---|\n";
        for (l, s) in &r.up_steps {
            m += &format!("| {l} | {} |\n", cell(Some(s)));
        }
        m += "\n";
    }

    m += "#### Failover phases (ms from `docker kill` / SIGKILL of the master)\n\n";
    m += &phase_table(r, |s| s.group != "image");
    m += "\nfloor = down-after + 300 ms. *all switched*: the last live sentinel's `+switch-master`; *VIP answering*: a new connection to the VIP (probed every 25 ms) answers as the new master; *client recovered*: a redis-rs sentinel-aware client (TCP_USER_TIMEOUT 500 ms, sentinels in node order, so the dead node's sentinel is asked first) has a write acknowledged again. Loopback: the master's redis-server and its sentinel are both killed (as a node's sentinel is in the testbed), no VIP.\n\n";

    m += "#### Containers vs plain processes (same Redis 7.0.15), kill → all switched\n\n";
    m += "| down-after | containers | loopback | ratio of medians | per-pair ratio (min / **median** / max) | ≤ 1.05 |\n|---|---|---|---|---|---|\n";
    for o in &r.overhead {
        let ratio = o.pair_ratios.map(|s| s.median);
        m += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            o.down_after_ms,
            cell(o.container.as_ref()),
            cell(o.loopback.as_ref()),
            o.ratio_of_medians.map_or("–".into(), |v| format!("{v:.3}")),
            triple(o.pair_ratios.as_ref(), 3),
            verdict(ratio.is_some_and(|v| v <= 1.05))
        );
    }

    m += "\n#### Fast profile (`profile = \"fast\"`: SENTINEL DEBUG ping/ask 100 ms, publish 200 ms, info 1 s)\n\n";
    m += "| setting | kill → all switched | floor | median above floor |\n|---|---|---|---|\n";
    for key in ["c7.0-2000", "fast7.0-2000"] {
        if let Some(p) = r.phase_summary.iter().find(|p| p.setting == key) {
            let sw = p.phases.get("switch");
            m += &format!(
                "| {} | {} | {:.0} | {} |\n",
                p.label,
                cell(sw),
                p.floor_ms,
                sw.map_or("–".into(), |s| format!("{:+.0}", s.median - p.floor_ms))
            );
        }
    }

    m += "\n#### Per image (default profile, down-after 2000)\n\n";
    m += &phase_table(r, |s| s.group == "image" || s.key == "c7.0-2000");

    let f = &r.footprint;
    m += "\n#### Footprint\n\n";
    m += &format!(
        "RSS of the 6 containers at idle (default image, cgroup `rss`): **{:.1} MiB** in total",
        f.rss_total as f64 / 1048576.0
    );
    let per: Vec<String> = f
        .rss
        .iter()
        .map(|(n, b)| format!("{} {:.1}", short(n), *b as f64 / 1048576.0))
        .collect();
    if !per.is_empty() {
        m += &format!(" ({} MiB)", per.join(", "));
    }
    m += ". Images: ";
    m += &f
        .images
        .iter()
        .map(|(n, b)| format!("`{n}` {:.1} MB", *b as f64 / 1e6))
        .collect::<Vec<_>>()
        .join(", ");
    m += ".\n\n";
    m += &format!("![failover phases per setting]({svg_name})\n");
    m
}

fn short(container: &str) -> String {
    container
        .trim_start_matches("tb-")
        .trim_start_matches("bn-up-")
        .to_string()
}

fn phase_table(r: &Report, pick: impl Fn(&Setting) -> bool) -> String {
    let mut m = String::from("| setting | runs |");
    for (_, title, _) in PHASES {
        m += &format!(" {title} |");
        if title == "all switched" {
            m += " floor |";
        }
    }
    m += "\n|---|---|";
    m += &"---|".repeat(PHASES.len() + 1);
    m += "\n";
    for s in r.settings.iter().filter(|s| pick(s)) {
        let Some(p) = r.phase_summary.iter().find(|p| p.setting == s.key) else {
            continue;
        };
        let mut runs = p.runs_ok.to_string();
        if p.runs_failed > 0 {
            runs += &format!(" ({} failed)", p.runs_failed);
        }
        if p.failed_elections > 0 {
            runs += &format!(" ({} split vote)", p.failed_elections);
        }
        m += &format!("| {} | {runs} |", p.label);
        for (k, _, _) in PHASES {
            m += &format!(" {} |", cell(p.phases.get(k)));
            if k == "switch" {
                m += &format!(" {:.0} |", p.floor_ms);
            }
        }
        m += "\n";
    }
    m
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
