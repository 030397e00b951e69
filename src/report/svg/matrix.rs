//! `matrix.svg`: one panel per scenario (its first completed run), one lane
//! per client — every write a tick coloured by its outcome — with the
//! fault windows shaded and the key sentinel events and actions marked, on
//! one time axis from the fault. Built from the timeline picture's parts.

use super::model::{fault_windows, marks};
use super::{
    esc, fmt_s, label_text, lane_frame, place_labels, tick_step, ACTION, CHAR_W, FAULT_FILL,
    LABEL_ROW, LANE, LEFT, LOST, OBSERVATION, OK, REFUSED, RIGHT, SENTINEL, UNKNOWN, WIDTH,
};
use crate::scenario::result::ExternalResult;
use crate::scenario::run::RunResult;
use crate::workload::Outcome;
use std::collections::HashSet;
use std::fmt::Write;

/// A write applied more than once.
const TWICE: &str = "#ff8c00";

/// The picture of the matrix: a panel per run given (one per scenario).
pub fn matrix_svg(title: &str, runs: &[&RunResult]) -> String {
    let mut body = String::new();
    let mut y = 40.0;
    for r in runs {
        y = panel(&mut body, r, y) + 24.0;
    }
    let height = y + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height:.0}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="12" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    s.push_str(&body);
    legend(&mut s, height - 14.0);
    s.push_str("</svg>\n");
    s
}

/// One run's panel from `top`; returns its bottom.
fn panel(s: &mut String, run: &RunResult, top: f64) -> f64 {
    let ops = || run.clients.iter().flat_map(|c| &c.run.history);
    let fault = run.measurements.fault_ms;
    let first = ops().map(|o| o.invoke_ms).fold(f64::INFINITY, f64::min);
    let last = ops()
        .map(|o| o.complete_ms)
        .fold(f64::NEG_INFINITY, f64::max);
    let (mut t0, mut t1) = if first.is_finite() {
        (first, last)
    } else {
        let z = fault.unwrap_or(0.0);
        (z - 1000.0, z + 1000.0)
    };
    if t1 - t0 < 1000.0 {
        t1 = t0 + 1000.0;
    }
    let pad = (t1 - t0) * 0.01;
    (t0, t1) = (t0 - pad, t1 + pad);
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * plot_w;
    let m = &run.measurements;
    let sub = format!(
        "{} · testbed {} · {} → {} · promoted after {} · {} failover(s)",
        run.scenario,
        run.testbed,
        m.old_master,
        m.final_master.as_deref().unwrap_or("?"),
        m.promoted_ms
            .map_or("-".to_string(), |v| format!("{:.1} s", v / 1000.0)),
        m.failovers
    );
    let _ = writeln!(
        s,
        r#"<text x="12" y="{:.1}" font-size="13" font-weight="bold">{}</text>"#,
        top + 4.0,
        esc(&sub)
    );
    let marks = marks(run, t0, t1);
    let items: Vec<(f64, f64)> = marks
        .iter()
        .map(|mk| {
            (
                x(mk.times[0]),
                label_text(mk).chars().count() as f64 * CHAR_W + 6.0,
            )
        })
        .collect();
    let (placed, n_rows) = place_labels(&items);
    let plot_top = top + 14.0 + n_rows.max(1) as f64 * LABEL_ROW + 8.0;
    let lanes = run.clients.len().max(1);
    let plot_bottom = plot_top + lanes as f64 * LANE;
    for w in fault_windows(&run.timeline, t1) {
        let (a, b) = (x(w.start_ms.max(t0)), x(w.end_ms.min(t1)));
        let _ = writeln!(
            s,
            r#"<rect x="{a:.1}" y="{plot_top:.1}" width="{:.1}" height="{:.1}" fill="{FAULT_FILL}" fill-opacity="0.7"><title>{}</title></rect>"#,
            (b - a).max(1.0),
            plot_bottom - plot_top,
            esc(&w.label)
        );
    }
    // the axis, seconds from the fault
    let zero = fault.unwrap_or(t0);
    let step = tick_step((t1 - t0) / 1000.0);
    let (k0, k1) = (
        ((t0 - zero) / 1000.0 / step).ceil() as i64,
        ((t1 - zero) / 1000.0 / step).floor() as i64,
    );
    for k in k0..=k1 {
        let v = k as f64 * step;
        let tx = x(zero + v * 1000.0);
        let stroke = if k == 0 && fault.is_some() {
            "#444"
        } else {
            "#dddddd"
        };
        let _ = writeln!(
            s,
            r#"<line x1="{tx:.1}" y1="{plot_top:.1}" x2="{tx:.1}" y2="{:.1}" stroke="{stroke}"/>"#,
            plot_bottom + 4.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            plot_bottom + 16.0,
            fmt_s(v, step)
        );
    }
    for (i, c) in run.clients.iter().enumerate() {
        lane(s, c, plot_top + i as f64 * LANE, plot_w, &x);
    }
    // marks over the lanes, labels on rows above
    for (mk, p) in marks.iter().zip(&placed) {
        let row_y = |r: usize| plot_top - 8.0 - r as f64 * LABEL_ROW;
        let line_top = p.map_or(plot_top, |(r, _)| row_y(r) - 9.0);
        for (j, &t) in mk.times.iter().enumerate() {
            let tx = x(t);
            let y1 = if j == 0 { line_top } else { plot_top };
            let _ = writeln!(
                s,
                r#"<line x1="{tx:.1}" y1="{y1:.1}" x2="{tx:.1}" y2="{plot_bottom:.1}" stroke="{}" stroke-opacity="0.8"/>"#,
                mk.color
            );
        }
        if let Some((r, right)) = p {
            let mx = x(mk.times[0]);
            let (tx, anchor) = if *right {
                (mx + 3.0, "start")
            } else {
                (mx - 3.0, "end")
            };
            let _ = writeln!(
                s,
                r#"<text x="{tx:.1}" y="{:.1}" fill="{}" text-anchor="{anchor}">{}</text>"#,
                row_y(*r),
                mk.color,
                esc(&label_text(mk))
            );
        }
    }
    plot_bottom + 20.0
}

/// A client's lane: its label, and each write as a bar from invoke to
/// completion in the colour of its outcome (touching bars of one colour
/// merged).
fn lane(s: &mut String, c: &ExternalResult, y: f64, plot_w: f64, x: &dyn Fn(f64) -> f64) {
    let crash = c.run.crash();
    let label = match &crash {
        Some(_) => format!("{} (crashed)", c.run.name),
        None => c.run.name.clone(),
    };
    lane_frame(s, y, &label, plot_w);
    if let Some(why) = &crash {
        if c.run.history.is_empty() {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#888">{}</text>"##,
                LEFT + 8.0,
                y + LANE / 2.0 + 4.0,
                esc(why)
            );
            return;
        }
    }
    let lost: HashSet<u64> = c.check.lost.iter().copied().collect();
    let twice: HashSet<u64> = c.check.duplicates().into_iter().collect();
    let mut bars: Vec<(f64, f64, &str)> = c
        .run
        .history
        .iter()
        .map(|o| {
            let color = match &o.outcome {
                _ if twice.contains(&o.id) => TWICE,
                Outcome::Ok if lost.contains(&o.id) => LOST,
                Outcome::Ok => OK,
                Outcome::Unknown => UNKNOWN,
                Outcome::Error { .. } => REFUSED,
            };
            let a = x(o.invoke_ms);
            (a, x(o.complete_ms).max(a + 1.2), color)
        })
        .collect();
    bars.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64, &str)> = Vec::new();
    for (a, b, col) in bars {
        match merged.last_mut() {
            Some(l) if l.2 == col && a <= l.1 + 0.6 => l.1 = l.1.max(b),
            _ => merged.push((a, b, col)),
        }
    }
    for (a, b, col) in merged {
        let _ = writeln!(
            s,
            r#"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{col}"/>"#,
            y + 4.0,
            b - a,
            LANE - 8.0
        );
    }
}

fn legend(s: &mut String, ly: f64) {
    let items: [(&str, &str, bool); 9] = [
        (OK, "write ok", false),
        (LOST, "acknowledged, then lost", false),
        (TWICE, "applied twice", false),
        (UNKNOWN, "unknown (timeout)", false),
        (REFUSED, "refused", false),
        (FAULT_FILL, "fault window", false),
        (SENTINEL, "sentinel event", true),
        (ACTION, "testbed action", true),
        (OBSERVATION, "observation", true),
    ];
    super::legend_row(s, ly, &items);
}
