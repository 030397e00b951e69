//! The picture: one row per failover setting, every run's phases as dots on
//! a time axis from the kill (one colour per phase, a tick at each median),
//! and the floor (down-after + 0.3 s) as a dashed mark. SVG by hand.

use super::report::{Report, PHASES};
use std::fmt::Write;
use testbed::svg::esc;

const WIDTH: f64 = 1100.0;
/// Approximate width of one 12 px sans-serif character.
const CHAR_W: f64 = 6.6;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const ROW: f64 = 46.0;
const COLOURS: [&str; 7] = [
    "#9ecae1", "#4292c6", "#08519c", "#74c476", "#d62728", "#ff7f0e", "#7b3294",
];

pub fn render(r: &Report) -> String {
    let rows: Vec<_> = r
        .settings
        .iter()
        .filter(|s| r.failover.iter().any(|x| x.setting == s.key))
        .collect();
    // The axis ends 3 s after the latest median: a run that waited for a
    // second election (2 x failover-timeout) would squeeze every other dot
    // into a corner; such values sit on the right edge, labelled.
    let medians = r
        .phase_summary
        .iter()
        .flat_map(|p| p.phases.values().map(|s| s.median))
        .fold(1000.0_f64, f64::max);
    let max = r
        .failover
        .iter()
        .filter_map(|s| s.phases.as_ref())
        .flat_map(|p| PHASES.iter().filter_map(|(_, _, f)| f(p)))
        .fold(1000.0_f64, f64::max)
        .min(medians + 3000.0);
    let x_max = (max / 1000.0).ceil() * 1000.0;
    let longest = rows.iter().map(|s| s.label().len()).max().unwrap_or(10);
    let left = 24.0 + longest as f64 * CHAR_W;
    let plot_w = WIDTH - left - RIGHT;
    let x = |ms: f64| left + ms.clamp(0.0, x_max) / x_max * plot_w;
    let height = TOP + ROW * rows.len() as f64 + 50.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="20" font-size="14" font-weight="bold">Failover phases per setting, ms from the kill (each dot one run; tick = median)</text>
"#
    );
    // legend
    let mut lx = 20.0;
    for (i, (_, title, _)) in PHASES.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<circle cx="{cx}" cy="40" r="5" fill="{c}"/><text x="{tx}" y="44">{t}</text>"#,
            cx = lx + 5.0,
            c = COLOURS[i],
            tx = lx + 14.0,
            t = esc(title)
        );
        lx += 26.0 + title.len() as f64 * CHAR_W;
    }
    let _ = writeln!(
        s,
        r#"<line x1="{a}" y1="40" x2="{b}" y2="40" stroke="black" stroke-width="2" stroke-dasharray="4 3"/><text x="{t}" y="44">floor (down-after + 300)</text>"#,
        a = lx,
        b = lx + 20.0,
        t = lx + 26.0
    );
    // grid
    let bottom = TOP + ROW * rows.len() as f64;
    let mut tick = 0.0;
    while tick <= x_max {
        let _ = writeln!(
            s,
            r##"<line x1="{p:.1}" y1="{TOP}" x2="{p:.1}" y2="{bottom}" stroke="#e0e0e0"/><text x="{p:.1}" y="{ty}" text-anchor="middle">{tick:.0}</text>"##,
            p = x(tick),
            ty = bottom + 16.0
        );
        tick += 1000.0;
    }
    let _ = writeln!(
        s,
        r#"<text x="{cx}" y="{y}" text-anchor="middle">ms from the kill</text>"#,
        cx = left + plot_w / 2.0,
        y = bottom + 34.0
    );
    for (row, setting) in rows.iter().enumerate() {
        let y0 = TOP + ROW * row as f64;
        let mid = y0 + ROW / 2.0;
        if row % 2 == 1 {
            let _ = writeln!(
                s,
                r##"<rect x="0" y="{y0}" width="{WIDTH}" height="{ROW}" fill="#f6f6f6" fill-opacity="0.7"/>"##
            );
        }
        let samples = r.samples(&setting.key);
        if samples.is_empty() {
            let failed = r
                .failover
                .iter()
                .find(|x| x.setting == setting.key)
                .and_then(|x| x.error.clone())
                .unwrap_or_default();
            let why = failed.split(':').next().unwrap_or_default();
            let _ = writeln!(
                s,
                r##"<text x="{tx:.1}" y="{ty:.1}" fill="#b00000">every run failed ({w})</text>"##,
                tx = x(setting.floor_ms()) + 10.0,
                ty = mid + 4.0,
                w = esc(why)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{tx}" y="{ty}" text-anchor="end">{label}</text><text x="{tx}" y="{ty2}" text-anchor="end" fill="gray" font-size="10">{note}</text>"#,
            tx = left - 10.0,
            ty = mid,
            ty2 = mid + 13.0,
            label = esc(&setting.label()),
            note = esc(&row_note(r, &setting.key, samples.len()))
        );
        let fx = x(setting.floor_ms());
        let _ = writeln!(
            s,
            r#"<line x1="{fx:.1}" y1="{a}" x2="{fx:.1}" y2="{b}" stroke="black" stroke-width="2" stroke-dasharray="4 3"/>"#,
            a = y0 + 4.0,
            b = y0 + ROW - 4.0
        );
        for (i, (key, _, f)) in PHASES.iter().enumerate() {
            for (j, smp) in samples.iter().enumerate() {
                let Some(v) = smp.phases.as_ref().and_then(f) else {
                    continue;
                };
                // deterministic jitter inside the row
                let jy = mid - 12.0 + ((j * 7 + i * 3) % 25) as f64;
                // the spans the issue asks about stand out
                let radius = if matches!(*key, "switch" | "vip") {
                    4.2
                } else {
                    2.8
                };
                let _ = writeln!(
                    s,
                    r#"<circle cx="{cx:.1}" cy="{jy:.1}" r="{radius}" fill="{c}" fill-opacity="0.8"><title>{t}: {v:.0} ms</title></circle>"#,
                    cx = x(v),
                    c = COLOURS[i],
                    t = esc(key)
                );
                if v > x_max && *key == "switch" {
                    let _ = writeln!(
                        s,
                        r#"<text x="{tx:.1}" y="{ty:.1}" text-anchor="end" font-size="10">{v:.0} ms →</text>"#,
                        tx = x(v) - 8.0,
                        ty = jy + 4.0
                    );
                }
            }
            if let Some(p) = r
                .phase_summary
                .iter()
                .find(|p| p.setting == setting.key)
                .and_then(|p| p.phases.get(*key))
            {
                let _ = writeln!(
                    s,
                    r#"<line x1="{m:.1}" y1="{a}" x2="{m:.1}" y2="{b}" stroke="{c}" stroke-width="2.5"/>"#,
                    m = x(p.median),
                    a = y0 + 3.0,
                    b = y0 + ROW - 3.0,
                    c = COLOURS[i]
                );
            }
        }
    }
    s += "</svg>\n";
    s
}

/// `10 runs · switch 4.3 s · VIP 3.4 s` (medians).
fn row_note(r: &Report, key: &str, runs: usize) -> String {
    let mut note = format!("{runs} runs");
    if let Some(p) = r.phase_summary.iter().find(|p| p.setting == key) {
        if p.runs_failed > 0 {
            note += &format!(" ({} failed)", p.runs_failed);
        }
        for (k, name) in [("switch", "switch"), ("vip", "VIP")] {
            if let Some(v) = p.phases.get(k) {
                note += &format!(" · {name} {:.2} s", v.median / 1000.0);
            }
        }
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::failover::FailoverSample;
    use crate::bench::report::{Environment, Plan, Setting};
    use testbed::phases::Phases;
    use testbed::topology::Profile;

    fn sample(setting: &str, index: usize, switch: f64) -> FailoverSample {
        let mut s = FailoverSample::failed(setting, index, &anyhow::anyhow!("x"));
        s.error = None;
        s.phases = Some(Phases {
            run: format!("{setting}#{index}"),
            image: "testbed/redis:7.0".into(),
            down_after_ms: 2000,
            sdown_ms: Some(2100.0),
            odown_ms: Some(2200.0),
            elected_ms: Some(2250.0),
            promoted_ms: Some(switch - 1100.0),
            switch_all_ms: Some(switch),
            vip_answering_ms: Some(switch - 1000.0),
            client_recovered_ms: Some(switch + 400.0),
            sentinels_switched: 2,
        });
        s
    }

    fn report() -> Report {
        let setting = |key: &str| Setting {
            key: key.into(),
            image: Some("testbed/redis:7.0".into()),
            profile: Profile::Default,
            debug: Vec::new(),
            down_after_ms: 2000,
            runs: 3,
            group: "containers".into(),
        };
        let plan = Plan {
            quick: true,
            bringup_rounds: 1,
            naive_rounds: 1,
            runs_2000: 3,
            runs_5000: 1,
            fast_runs: 1,
            image_runs: 1,
        };
        let mut r = Report::new(
            Environment::default(),
            plan,
            vec![setting("a"), setting("b")],
        );
        r.failover = vec![
            sample("a", 0, 4300.0),
            sample("a", 1, 4600.0),
            sample("a", 2, 24900.0),
        ];
        let mut failed = FailoverSample::failed(
            "b",
            0,
            &anyhow::anyhow!("-failover-abort-no-good-slave from node2 at +2345 ms"),
        );
        failed.index = 0;
        r.failover.push(failed);
        r.summarise();
        r
    }

    #[test]
    fn outliers_sit_on_the_edge_and_failed_settings_keep_their_row() {
        let svg = render(&report());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("24900 ms →"), "{svg}");
        assert!(
            svg.contains("every run failed (-failover-abort-no-good-slave from node2 at +2345 ms)"),
            "{svg}"
        );
        // the axis stops 3 s after the latest median, not at the outlier
        assert!(!svg.contains(">10000<"), "{svg}");
    }
}
