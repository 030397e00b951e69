//! The Markdown tables of a bench run (what README's "Performance" shows).
//! Pure: a function of the [`Report`].

use super::failover::NO_GOOD_REPLICA;
use super::report::{Report, Setting, PHASES};
use super::stats::Summary;

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
        "Measured {date} on {cpus} × {cpu}, {mem:.0} GiB, {os}, kernel {kernel}; Docker {dv} (API {api}), compose: {dc}; host redis-server {hr}; testbed {tv}. {mode} run, {wall:.0} s wall time (bring-up {b:.0} s, failovers {f:.0} s).\n\n",
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
    let servers: Vec<String> = e
        .images
        .iter()
        .map(|(image, packages)| {
            let server = packages
                .split(',')
                .find(|p| p.starts_with("redis-server=") || p.starts_with("valkey-server="))
                .unwrap_or("?");
            format!("`{image}` {server}")
        })
        .collect();
    if !servers.is_empty() {
        m += &format!("Images: {}.\n\n", servers.join(", "));
    }
    m += "Cells are **median** (min–max) in ms over the runs shown; contenders alternate within each round.\n\n";

    // a section that did not run (`--only`) leaves no empty table
    if r.plan.bringup_rounds > 0 {
        m += &bringup(r);
        m += &footprint(r);
    }
    if !r.settings.is_empty() {
        m += &failover(r);
        m += &format!("![failover phases per setting]({svg_name})\n");
    }
    m
}

fn bringup(r: &Report) -> String {
    let mut m = String::new();
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
        if let Some(s) = r
            .bringup_summary
            .get(c)
            .filter(|s| s.healthy_ms.is_some() || s.failed > 0)
        {
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

    m
}

fn failover(r: &Report) -> String {
    let mut m = String::new();
    m += "#### Failover phases (ms from the fault: `docker kill` of the master's container; on loopback its redis-server frozen and its sentinel killed)\n\n";
    m += &phase_table(r, |s| s.group != "image");
    m += "\nfloor = down-after + 300 ms. *all switched*: the last live sentinel's `+switch-master`; *VIP answering*: a new connection to the VIP (probed every 25 ms) answers as the new master; *client recovered*: a redis-rs sentinel-aware client (TCP_USER_TIMEOUT 500 ms, sentinels in node order, so the dead node's sentinel is asked first) has a write acknowledged again (each write bounded by 2 s). Loopback: the master's redis-server gets SIGSTOP and its sentinel SIGKILL; a killed container is silent to its peers (no FIN, no RST), and so is a frozen process, while a SIGKILLed process on a live host closes its connections and Sentinel, told at once, re-pings and starts the down-after clock up to 1 s earlier. No VIP on loopback.\n\n";

    m += "#### Containers vs plain processes (same Redis 7.0.15)\n\n";
    m += "| down-after | span | containers | loopback | ratio of medians | per-pair ratio (min / **median** / max) |\n|---|---|---|---|---|---|\n";
    for o in &r.overhead {
        for (span, c) in [
            ("kill → all switched", &o.kill_to_switch),
            ("first sdown → all switched", &o.sdown_to_switch),
        ] {
            m += &format!(
                "| {} | {span} | {} | {} | {} | {} |\n",
                o.down_after_ms,
                cell(c.container.as_ref()),
                cell(c.loopback.as_ref()),
                c.ratio_of_medians.map_or("–".into(), |v| format!("{v:.3}")),
                triple(c.pair_ratios.as_ref(), 3),
            );
        }
    }
    let worst = r
        .overhead
        .iter()
        .filter_map(|o| o.kill_to_switch.ratio_of_medians)
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
    m += &format!(
        "\nTarget: containers add ≤ 5 % to kill → switch (ratio of medians ≤ 1.05): {}. Where the kill falls in Sentinel's 1 s ping cycle moves `+sdown` by up to a second; run *i* of every setting waits (*i* × 0.618) mod 1 s before the kill, so each setting's runs cover the cycle evenly, but a pair's two runs are at different points of their own clusters' cycles: per-pair ratios of kill → switch carry that second, those of sdown → switch do not.\n",
        verdict(worst.is_some_and(|v| v <= 1.05))
    );

    m += "\n#### Fast profile (SENTINEL DEBUG) vs default, down-after 2000, redis 7.0\n\n";
    m += "| setting | runs | aborted: no good replica | kill → all switched | floor | median above floor |\n|---|---|---|---|---|---|\n";
    for key in ["c7.0-2000", "fast7.0-2000"] {
        let Some(p) = r.phase_summary.iter().find(|p| p.setting == key) else {
            continue;
        };
        let aborted = r
            .failover
            .iter()
            .filter(|x| x.setting == key)
            .filter(|x| {
                x.error
                    .as_deref()
                    .is_some_and(|e| e.contains(NO_GOOD_REPLICA))
            })
            .count();
        let sw = p.phases.get("switch");
        m += &format!(
            "| {} | {} | {aborted} | {} | {:.0} | {} |\n",
            p.label,
            p.runs_ok + p.runs_failed,
            cell(sw),
            p.floor_ms,
            sw.map_or("–".into(), |s| format!("{:+.0}", s.median - p.floor_ms))
        );
    }
    m += "\n`profile = \"fast\"` sets ping 300, ask 100, publish 200, info 1000 ms (ping 300, not 100: Sentinel promotes only a replica whose last INFO reply is younger than 5 ping periods, and while a failover is under way it asks the replicas for INFO once a second whatever the profile; with 100 ms, 2 of 3 runs aborted with `-failover-abort-no-good-slave`). No profile gets near the floor: after the election, the promotion and the replicas' reconfiguration are each seen through that fixed 1 s INFO round.\n";

    m += "\n#### Per image (default profile, down-after 2000)\n\n";
    m += &phase_table(r, |s| s.group == "image" || s.key == "c7.0-2000");

    m
}

fn footprint(r: &Report) -> String {
    let mut m = String::new();
    let f = &r.footprint;
    m += "#### Footprint\n\n";
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
