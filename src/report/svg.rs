//! The timeline picture of one run, as SVG written by hand: operations over
//! time by outcome, fault windows shaded, key sentinel events, the testbed's
//! actions and observations marked. People look before they read.
//!
//! Invariant: the output is well-formed XML — every piece of text that comes
//! from a run goes through [`esc`].

use crate::observe::timeline::Kind;
use crate::scenario::run::RunResult;
use std::fmt::Write;

mod matrix;
mod model;
pub use matrix::matrix_svg;
use model::{duplicate_vip_windows, label_text, lanes, marks};
pub use model::{fault_windows, FaultWindow};

const WIDTH: f64 = 1100.0;
/// Room for the lane labels.
const LEFT: f64 = 250.0;
const RIGHT: f64 = 24.0;
const LABEL_ROW: f64 = 14.0;
const MAX_LABEL_ROWS: usize = 12;
const LANE: f64 = 20.0;
/// Approximate width of one 11 px sans-serif character.
const CHAR_W: f64 = 6.0;

const OK: &str = "#2e9e44";
const LOST: &str = "#c000c0";
const UNKNOWN: &str = "#9a9a9a";
const REFUSED: &str = "#d62728";
const SENTINEL: &str = "#5b3fa8";
const ACTION: &str = "#8b0000";
const OBSERVATION: &str = "#d97700";
const FAULT_FILL: &str = "#f6c9c9";

/// Escapes text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Tick step (s) giving at most ~12 ticks over `span_s`.
fn tick_step(span_s: f64) -> f64 {
    const STEPS: [f64; 12] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
    ];
    STEPS
        .into_iter()
        .find(|s| span_s / s <= 12.0)
        .unwrap_or(600.0)
}

fn fmt_s(v: f64, step: f64) -> String {
    if v.abs() < 1e-9 {
        "0".to_string()
    } else if step < 1.0 {
        format!("{v:+.1}")
    } else {
        format!("{v:+.0}")
    }
}

/// The time axis and the plot's box: what every part of the picture is
/// placed by.
struct Frame {
    t0: f64,
    t1: f64,
    /// Timeline ms of the axis' 0 (the first fault).
    zero: f64,
    has_fault: bool,
    plot_w: f64,
    plot_top: f64,
    plot_bottom: f64,
    label_top: f64,
}

impl Frame {
    fn x(&self, t: f64) -> f64 {
        LEFT + (t - self.t0) / (self.t1 - self.t0) * self.plot_w
    }

    /// The y of label row `r` (rows count upwards from the plot).
    fn row_y(&self, r: usize) -> f64 {
        self.plot_top - 8.0 - r as f64 * LABEL_ROW
    }
}

/// The shown time range: the workload and the steps (bring-up is not
/// shown), at least a second, padded by 1 %.
fn time_range(run: &RunResult) -> (f64, f64) {
    let all_ops = || {
        run.history
            .iter()
            .chain(run.external.iter().flat_map(|x| &x.run.history))
    };
    let ops_start = all_ops().map(|o| o.invoke_ms).fold(f64::INFINITY, f64::min);
    let acts_start = run
        .timeline
        .iter()
        .filter(|e| e.kind == Kind::Action)
        .map(|e| e.t_ms)
        .fold(f64::INFINITY, f64::min);
    let mut t0 = ops_start.min(acts_start);
    if !t0.is_finite() {
        t0 = run.timeline.first().map_or(0.0, |e| e.t_ms);
    }
    let last_op = all_ops().map(|o| o.complete_ms).fold(t0, f64::max);
    let last_ev = run.timeline.iter().map(|e| e.t_ms).fold(t0, f64::max);
    let mut t1 = last_op.max(last_ev);
    if t1 - t0 < 1000.0 {
        t1 = t0 + 1000.0;
    }
    let pad = (t1 - t0) * 0.01;
    (t0 - pad, t1 + pad)
}

/// The picture of one run.
pub fn timeline_svg(run: &RunResult) -> String {
    let (t0, t1) = time_range(run);
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * plot_w;

    // Labels of the marks on rows above the plot, no label crossing another
    // or another mark's line.
    let marks = marks(run, t0, t1);
    let items: Vec<(f64, f64)> = marks
        .iter()
        .map(|m| {
            (
                x(m.times[0]),
                label_text(m).chars().count() as f64 * CHAR_W + 6.0,
            )
        })
        .collect();
    let (placed, n_rows) = place_labels(&items);
    let dup = duplicate_vip_windows(run, t1);
    let op_lanes = lanes(run);
    let n_lanes = op_lanes.len() + usize::from(!dup.is_empty());
    let label_top = 52.0;
    let plot_top = label_top + n_rows.max(1) as f64 * LABEL_ROW + 8.0;
    let f = Frame {
        t0,
        t1,
        zero: run.measurements.fault_ms.unwrap_or(t0),
        has_fault: run.measurements.fault_ms.is_some(),
        plot_w,
        plot_top,
        plot_bottom: plot_top + n_lanes as f64 * LANE,
        label_top,
    };
    let height = f.plot_bottom + 86.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height:.0}" fill="white"/>"#
    );
    draw_title(&mut s, run);
    draw_fault_windows(&mut s, &f, run);
    draw_axis(&mut s, &f);
    draw_lanes(&mut s, &f, &op_lanes, &dup);
    if run.history.is_empty()
        && run
            .external
            .as_ref()
            .is_none_or(|x| x.run.history.is_empty())
    {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#888">(no workload in this scenario)</text>"##,
            LEFT + 8.0,
            f.plot_top + 14.0
        );
    }
    draw_marks(&mut s, &f, &marks, &placed);
    draw_legend(&mut s, f.plot_bottom + 56.0);
    s.push_str("</svg>\n");
    s
}

/// Title and one line of key measurements.
fn draw_title(s: &mut String, run: &RunResult) {
    let image = run
        .image
        .as_ref()
        .map_or(run.topology.image.as_str(), |i| i.name.as_str());
    let product = crate::backend::image::spec(image).map_or("server", |s| s.product);
    let version = run
        .server_version
        .as_deref()
        .map(|v| format!(" ({product} {v})"))
        .unwrap_or_default();
    let verdict = if run.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        s,
        r#"<text x="12" y="22" font-size="15" font-weight="bold">{} — {}{} — {verdict}</text>"#,
        esc(&run.scenario),
        esc(image),
        esc(&version)
    );
    let m = &run.measurements;
    let promoted = m
        .promoted_ms
        .map_or("-".to_string(), |v| format!("{:.1} s", v / 1000.0));
    let sub = format!(
        "testbed {} · old master {} → final master {} · promoted after {promoted} · failovers {} · max VIP holders {} · lost acknowledged writes {} · refused {}",
        run.testbed,
        m.old_master,
        m.final_master.as_deref().unwrap_or("?"),
        m.failovers,
        m.vip_holders_max,
        m.lost_acknowledged_writes,
        m.refused_writes
    );
    let _ = writeln!(
        s,
        r##"<text x="12" y="40" fill="#444">{}</text>"##,
        esc(&sub)
    );
}

/// The fault windows, shaded.
fn draw_fault_windows(s: &mut String, f: &Frame, run: &RunResult) {
    let (t0, t1, plot_top, plot_bottom) = (f.t0, f.t1, f.plot_top, f.plot_bottom);
    let x = |t| f.x(t);
    for w in fault_windows(&run.timeline, t1) {
        let (a, b) = (x(w.start_ms.max(t0)), x(w.end_ms.min(t1)));
        let _ = writeln!(
            s,
            r#"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{FAULT_FILL}" fill-opacity="0.7"><title>{}</title></rect>"#,
            plot_top,
            (b - a).max(1.0),
            plot_bottom - plot_top,
            esc(&w.label)
        );
    }
}

/// Ticks, grid and the axis label.
fn draw_axis(s: &mut String, f: &Frame) {
    let (t0, t1, zero, plot_top, plot_bottom, plot_w) =
        (f.t0, f.t1, f.zero, f.plot_top, f.plot_bottom, f.plot_w);
    let x = |t| f.x(t);
    let step = tick_step((t1 - t0) / 1000.0);
    let first = ((t0 - zero) / 1000.0 / step).ceil() as i64;
    let last = ((t1 - zero) / 1000.0 / step).floor() as i64;
    for k in first..=last {
        let v = k as f64 * step;
        let tx = x(zero + v * 1000.0);
        let (stroke, w) = if k == 0 && f.has_fault {
            ("#444", 1.2)
        } else {
            ("#dddddd", 1.0)
        };
        let _ = writeln!(
            s,
            r#"<line x1="{tx:.1}" y1="{plot_top:.1}" x2="{tx:.1}" y2="{:.1}" stroke="{stroke}" stroke-width="{w}"/>"#,
            plot_bottom + 4.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            plot_bottom + 16.0,
            fmt_s(v, step)
        );
    }
    let axis = if f.has_fault {
        "seconds from the first fault"
    } else {
        "seconds"
    };
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">{axis}</text>"##,
        LEFT + plot_w / 2.0,
        plot_bottom + 32.0
    );
}

/// Lanes of operations (touching bars merged, to keep the file small), and
/// the lane of VIP double holding.
fn draw_lanes(s: &mut String, f: &Frame, op_lanes: &[model::Lane], dup: &[(f64, f64)]) {
    let (t0, t1, plot_top, plot_w) = (f.t0, f.t1, f.plot_top, f.plot_w);
    let x = |t| f.x(t);
    let n_lanes = op_lanes.len() + usize::from(!dup.is_empty());
    let lane_ys: Vec<f64> = (0..n_lanes).map(|i| plot_top + i as f64 * LANE).collect();
    for (i, lane) in op_lanes.iter().enumerate() {
        let y = lane_ys[i];
        lane_frame(s, y, &lane.label, plot_w);
        let mut spans: Vec<(f64, f64)> = lane
            .spans
            .iter()
            .map(|&(a, b)| (x(a), x(b).max(x(a) + 1.2)))
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::new();
        for (a, b) in spans {
            match merged.last_mut() {
                Some(last) if a <= last.1 + 0.6 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        for (a, b) in merged {
            let _ = writeln!(
                s,
                r#"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                y + 4.0,
                b - a,
                LANE - 8.0,
                lane.color
            );
        }
    }
    if !dup.is_empty() {
        let y = lane_ys[n_lanes - 1];
        lane_frame(s, y, "VIP on 2+ nodes", plot_w);
        for &(a, b) in dup {
            let (a, b) = (x(a.max(t0)), x(b.min(t1)));
            let _ = writeln!(
                s,
                r#"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{OBSERVATION}"/>"#,
                y + 4.0,
                (b - a).max(1.2),
                LANE - 8.0
            );
        }
    }
}

/// The marks and their labels on top (and how many labels found no room).
fn draw_marks(s: &mut String, f: &Frame, marks: &[model::Mark], placed: &[Option<(usize, bool)>]) {
    let (plot_top, plot_bottom, label_top) = (f.plot_top, f.plot_bottom, f.label_top);
    let x = |t| f.x(t);
    let row_y = |r| f.row_y(r);
    let hidden = placed.iter().filter(|p| p.is_none()).count();
    for (m, p) in marks.iter().zip(placed) {
        let top = p.map_or(plot_top, |(r, _)| row_y(r) - 9.0);
        for (j, &t) in m.times.iter().enumerate() {
            let tx = x(t);
            let y1 = if j == 0 { top } else { plot_top };
            let _ = writeln!(
                s,
                r#"<line x1="{tx:.1}" y1="{y1:.1}" x2="{tx:.1}" y2="{plot_bottom:.1}" stroke="{}" stroke-width="1" stroke-opacity="0.8"/>"#,
                m.color
            );
        }
        if let Some((r, right)) = p {
            let mx = x(m.times[0]);
            let (tx, anchor) = if *right {
                (mx + 3.0, "start")
            } else {
                (mx - 3.0, "end")
            };
            let _ = writeln!(
                s,
                r#"<text x="{tx:.1}" y="{:.1}" fill="{}" text-anchor="{anchor}">{}</text>"#,
                row_y(*r),
                m.color,
                esc(&label_text(m))
            );
        }
    }
    if hidden > 0 {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#888">{hidden} label(s) hidden; see timeline.txt</text>"##,
            WIDTH - RIGHT,
            label_top - 2.0
        );
    }
}

/// The legend, on one line at `ly`.
fn draw_legend(s: &mut String, ly: f64) {
    let items: [(&str, &str, bool); 8] = [
        (OK, "write ok", false),
        (LOST, "acknowledged, then lost", false),
        (UNKNOWN, "unknown (timeout)", false),
        (REFUSED, "refused (error kind)", false),
        (FAULT_FILL, "fault window", false),
        (SENTINEL, "sentinel event", true),
        (ACTION, "testbed action", true),
        (OBSERVATION, "observation", true),
    ];
    legend_row(s, ly, &items);
}

/// A legend on one line at `ly`: a swatch (`line`: a tick) and a text per item.
pub(super) fn legend_row(s: &mut String, ly: f64, items: &[(&str, &str, bool)]) {
    let mut lx = 12.0;
    for &(color, text, line) in items {
        if line {
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"/>"#,
                lx + 5.0,
                ly - 10.0,
                lx + 5.0,
                ly + 2.0
            );
        } else {
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{color}"/>"#,
                ly - 9.0
            );
        }
        let _ = writeln!(s, r#"<text x="{:.1}" y="{ly:.1}">{text}</text>"#, lx + 14.0);
        lx += 14.0 + text.len() as f64 * CHAR_W + 18.0;
    }
}

/// Places labels (mark x, label width) on rows counted upwards from the
/// plot: a label sits right of its mark (left near the right edge), and its
/// mark's line runs down through the rows below. Marks are placed from the
/// right so that no line crosses a label. Returns (row, right-anchored) per
/// label (`None`: no room) and the number of rows used.
fn place_labels(items: &[(f64, f64)]) -> (Vec<Option<(usize, bool)>>, usize) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[b].0.total_cmp(&items[a].0));
    let mut rows: Vec<Vec<(f64, f64)>> = vec![Vec::new(); MAX_LABEL_ROWS];
    let mut out = vec![None; items.len()];
    let free =
        |row: &[(f64, f64)], (lo, hi): (f64, f64)| row.iter().all(|&(a, b)| hi < a || lo > b);
    for i in order {
        let (mx, w) = items[i];
        let right = mx + w <= WIDTH - 4.0;
        let span = if right {
            (mx - 1.0, mx + w)
        } else {
            (mx - w, mx + 1.0)
        };
        let line = (mx - 1.5, mx + 1.5);
        // the lowest row with room whose line crosses no label below; failing
        // that, the lowest row with room (a label beats a clean picture)
        let row = (0..MAX_LABEL_ROWS)
            .find(|&r| free(&rows[r], span) && rows[..r].iter().all(|b| free(b, line)))
            .or_else(|| (0..MAX_LABEL_ROWS).find(|&r| free(&rows[r], span)));
        if let Some(r) = row {
            rows[r].push(span);
            for below in &mut rows[..r] {
                below.push(line);
            }
            out[i] = Some((r, right));
        }
    }
    let used = out.iter().flatten().map(|(r, _)| r + 1).max().unwrap_or(0);
    (out, used)
}

fn lane_frame(s: &mut String, y: f64, label: &str, plot_w: f64) {
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{y:.1}" width="{plot_w:.1}" height="{LANE}" fill="none" stroke="#e4e4e4"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
        LEFT - 8.0,
        y + LANE / 2.0 + 4.0,
        esc(label)
    );
}

#[cfg(test)]
pub(crate) mod tests;
