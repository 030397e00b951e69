//! The soak's report (`soak.md`) and the lines it prints as it goes.

use super::record::FaultRecord;
use super::Soak;
use std::collections::BTreeMap;

fn secs(ms: Option<f64>) -> String {
    ms.map(|v| format!("{:.1}", v / 1000.0))
        .unwrap_or_else(|| "–".into())
}

/// One fault, as printed when it is over.
pub fn line(f: &FaultRecord) -> String {
    let rec = f.recovered_ms.map(|r| r - f.applied_ms);
    let mut s = format!(
        "  #{:<3} {:<32} held {:>5.1} s  healthy {:>5} s after{}",
        f.planned.index,
        f.applied.join(" + "),
        (f.repaired_ms - f.applied_ms) / 1000.0,
        secs(rec),
        match (&f.master_after, f.failed_over()) {
            (Some(m), true) => format!("  master {} → {m}", f.master_before),
            _ => String::new(),
        }
    );
    if f.forced {
        s += "  (fallback repair)";
    }
    for e in &f.errors {
        s += &format!("\n        ! {e}");
    }
    s
}

/// The summary printed at the end (and the head of the report).
pub fn summary(s: &Soak) -> String {
    let a = &s.accounting;
    let mut out = format!(
        "soak of {} min, seed {}: {} faults, {} failovers; {} writes, {} acknowledged, {} lost ({} unexplained), {} unknown landed / {} missing; longest outage {:.1} s; final master {}, VIP holders [{}]\n",
        s.minutes,
        s.seed,
        s.faults.len(),
        s.failovers,
        a.operations,
        a.acknowledged,
        a.lost,
        a.unexplained.len(),
        a.unknown_landed,
        a.unknown_missing,
        a.longest_unavailable_ms / 1000.0,
        s.final_master.as_deref().unwrap_or("none"),
        s.final_vip_holders.join(", ")
    );
    if let Some(i) = &s.interrupted {
        out += &format!("INTERRUPTED ({i}): writes were not checked\n");
    }
    match s.failures.is_empty() {
        true => out += "PASSED\n",
        false => {
            for f in &s.failures {
                out += &format!("FAILED: {f}\n");
            }
        }
    }
    out
}

/// The whole report.
pub fn report(s: &Soak) -> String {
    let mut out = format!(
        "# Soak {} — {} min, seed {}\n\n{}\nAgain: `{}`\n\nTestbed `{}`, {} nodes, {}, the built-in workload through the VIP at {} writes/s; {:.0} s wall.\n\n",
        s.started_utc,
        s.minutes,
        s.seed,
        summary(s),
        s.command,
        s.testbed,
        s.nodes,
        s.image,
        s.rate,
        s.wall_s
    );
    out += "## By fault\n\n| verb | times | failovers | lost writes | healthy again, s (median, max) | fallback repairs |\n|---|---|---|---|---|---|\n";
    let mut by: BTreeMap<&str, Vec<&FaultRecord>> = BTreeMap::new();
    for f in &s.faults {
        by.entry(f.verb.as_str()).or_default().push(f);
    }
    for (verb, fs) in &by {
        let mut rec: Vec<f64> = fs
            .iter()
            .filter_map(|f| f.recovered_ms.map(|r| r - f.applied_ms))
            .collect();
        rec.sort_by(f64::total_cmp);
        let median = rec.get(rec.len() / 2).copied();
        out += &format!(
            "| {verb} | {} | {} | {} | {}, {} | {} |\n",
            fs.len(),
            fs.iter().filter(|f| f.failed_over()).count(),
            fs.iter().map(|f| f.lost).sum::<usize>(),
            secs(median),
            secs(rec.last().copied()),
            fs.iter().filter(|f| f.forced).count()
        );
    }
    let a = &s.accounting;
    out += &format!(
        "\n## Writes\n\n{} operations, {} acknowledged, {} on the final master, {} lost, of which {} outside every fault's span; unknown outcome: {} landed, {} missing; refused but present: {}; errors by kind: {:?}.\n",
        a.operations,
        a.acknowledged,
        a.present,
        a.lost,
        a.unexplained.len(),
        a.unknown_landed,
        a.unknown_missing,
        a.refused_but_present,
        a.errors
    );
    out += "\n## Every fault\n\n| # | applied | held s | healthy after s | master | lost | no-write s | notes |\n|---|---|---|---|---|---|---|---|\n";
    for f in &s.faults {
        let master = match (&f.master_after, f.failed_over()) {
            (Some(m), true) => format!("{} → {m}", f.master_before),
            _ => f.master_before.clone(),
        };
        let mut notes = f.errors.join("; ").replace('|', "\\|");
        if f.forced {
            notes = format!("fallback repair. {notes}");
        }
        out += &format!(
            "| {} | {} | {:.1} | {} | {} | {} | {:.1} | {} |\n",
            f.planned.index,
            f.applied.join(" + "),
            (f.repaired_ms - f.applied_ms) / 1000.0,
            secs(f.recovered_ms.map(|r| r - f.applied_ms)),
            master,
            f.lost,
            f.unavailable_ms / 1000.0,
            notes
        );
    }
    out
}
