//! The picture: one row per failover setting, every run's phases as dots on
//! a time axis from the kill (one colour per phase, a tick at each median),
//! and the floor (down-after + 0.3 s) as a dashed mark. SVG by hand.

use super::report::{Report, PHASES};
use std::fmt::Write;
use testbed::svg::esc;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 300.0;
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
        .filter(|s| !r.samples(&s.key).is_empty())
        .collect();
    let max = r
        .failover
        .iter()
        .filter_map(|s| s.phases.as_ref())
        .flat_map(|p| PHASES.iter().filter_map(|(_, _, f)| f(p)))
        .fold(1000.0_f64, f64::max);
    let x_max = (max / 1000.0).ceil() * 1000.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |ms: f64| LEFT + ms.clamp(0.0, x_max) / x_max * plot_w;
    let height = TOP + ROW * rows.len() as f64 + 50.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="20" font-size="14" font-weight="bold">Failover phases per setting, ms from the kill (each dot one run; tick = median)</text>
"#
    );
    // legend
    let mut lx = LEFT;
    for (i, (_, title, _)) in PHASES.iter().enumerate() {
        let _ = write!(
            s,
            r#"<circle cx="{cx}" cy="40" r="5" fill="{c}"/><text x="{tx}" y="44">{t}</text>
"#,
            cx = lx + 5.0,
            c = COLOURS[i],
            tx = lx + 14.0,
            t = esc(title)
        );
        lx += 24.0 + title.len() as f64 * 7.0;
    }
    let _ = write!(
        s,
        r#"<line x1="{a}" y1="40" x2="{b}" y2="40" stroke="black" stroke-width="2" stroke-dasharray="4 3"/><text x="{t}" y="44">floor (down-after + 300)</text>
"#,
        a = lx,
        b = lx + 20.0,
        t = lx + 26.0
    );
    // grid
    let bottom = TOP + ROW * rows.len() as f64;
    let mut tick = 0.0;
    while tick <= x_max {
        let _ = write!(
            s,
            r##"<line x1="{p:.1}" y1="{TOP}" x2="{p:.1}" y2="{bottom}" stroke="#e0e0e0"/><text x="{p:.1}" y="{ty}" text-anchor="middle">{tick:.0}</text>
"##,
            p = x(tick),
            ty = bottom + 16.0
        );
        tick += 1000.0;
    }
    let _ = write!(
        s,
        r#"<text x="{cx}" y="{y}" text-anchor="middle">ms from the kill</text>
"#,
        cx = LEFT + plot_w / 2.0,
        y = bottom + 34.0
    );
    for (row, setting) in rows.iter().enumerate() {
        let y0 = TOP + ROW * row as f64;
        let mid = y0 + ROW / 2.0;
        if row % 2 == 1 {
            let _ = write!(
                s,
                r##"<rect x="0" y="{y0}" width="{WIDTH}" height="{ROW}" fill="#f6f6f6" fill-opacity="0.7"/>
"##
            );
        }
        let samples = r.samples(&setting.key);
        let _ = write!(
            s,
            r#"<text x="{tx}" y="{ty}" text-anchor="end">{label}</text><text x="{tx}" y="{ty2}" text-anchor="end" fill="gray" font-size="10">{n} runs</text>
"#,
            tx = LEFT - 10.0,
            ty = mid,
            ty2 = mid + 13.0,
            label = esc(&setting.label()),
            n = samples.len()
        );
        let fx = x(setting.floor_ms());
        let _ = write!(
            s,
            r#"<line x1="{fx:.1}" y1="{a}" x2="{fx:.1}" y2="{b}" stroke="black" stroke-width="2" stroke-dasharray="4 3"/>
"#,
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
                let _ = write!(
                    s,
                    r#"<circle cx="{cx:.1}" cy="{jy:.1}" r="3.2" fill="{c}" fill-opacity="0.8"><title>{t}: {v:.0} ms</title></circle>
"#,
                    cx = x(v),
                    c = COLOURS[i],
                    t = esc(key)
                );
            }
            if let Some(p) = r
                .phase_summary
                .iter()
                .find(|p| p.setting == setting.key)
                .and_then(|p| p.phases.get(*key))
            {
                let _ = write!(
                    s,
                    r#"<line x1="{m:.1}" y1="{a}" x2="{m:.1}" y2="{b}" stroke="{c}" stroke-width="2.5"/>
"#,
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
