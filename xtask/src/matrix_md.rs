//! `matrix.md` (and its committed copy, `--doc`): one row per scenario,
//! one column per image; a cell is the rate at which the claim held, the
//! key measure's median and the bundle. Pure.

use crate::matrix::{Cell, Matrix};
use std::fmt::Write as _;

/// The matrix as markdown; `doc`: for committing (scenario links relative
/// to `docs/`, bundles named, not linked).
pub fn render(m: &Matrix, doc: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Behaviour matrix\n");
    let e = &m.environment;
    let _ = writeln!(
        s,
        "Run {} with `{}`: {} run(s) per cell, {} testbed(s) at once, {:.0} min in all.\n",
        m.date_utc, m.command, m.repeat, m.jobs, m.minutes
    );
    let _ = writeln!(
        s,
        "Environment: {}, kernel {}, Docker {}, {} CPUs, load average {} at the start and {} at the end \
         (the machine is shared: timings are noisy), testbed `{}`.\n",
        e.os, e.kernel, e.docker, e.cpus, e.load_start, e.load_end, e.testbed
    );
    if !m.left_out.is_empty() {
        let _ = writeln!(
            s,
            "Not in this run (not built on this machine): {}.\n",
            m.left_out
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s += "A cell reads `held/runs`: in how many runs every expectation of the scenario held, \
          i.e. the behaviour its sources report was reproduced as reported; then the median of \
          the scenario's key measure (ms for `*_ms`). **0/N** is a finding: the report does not \
          reproduce on that server.\n\n";
    s += "| scenario | claim (sources) | key measure |";
    for (img, server) in &m.images {
        let _ = write!(s, " {server} (`{img}`) |");
    }
    s += "\n|---|---|---|";
    for _ in &m.images {
        s += "---|";
    }
    s.push('\n');
    for row in &m.scenarios {
        let link = if doc {
            format!("[{}](../{})", row.name, row.file)
        } else {
            format!("`{}`", row.name)
        };
        let sources = if row.sources.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                row.sources
                    .iter()
                    .map(|x| format!("`{x}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let key = m
            .cells
            .iter()
            .find(|c| c.scenario == row.name)
            .and_then(|c| c.key_measure.clone())
            .unwrap_or_default();
        let _ = write!(
            s,
            "| {link} | {}{sources} | `{}` |",
            row.description.replace('|', "\\|"),
            key.replace('|', "\\|")
        );
        for (img, _) in &m.images {
            let c = m
                .cells
                .iter()
                .find(|c| c.scenario == row.name && &c.image == img);
            let _ = write!(s, " {} |", c.map_or("-".into(), |c| cell_text(c, doc)));
        }
        s.push('\n');
    }
    let findings: Vec<&Cell> = m
        .cells
        .iter()
        .filter(|c| c.word() != "reproduced")
        .collect();
    if !findings.is_empty() {
        s += "\n## Not reproduced, or not every time\n\n";
        for c in findings {
            let _ = writeln!(
                s,
                "- `{}` on {}: {} ({}/{} runs{}){}",
                c.scenario,
                c.server,
                c.word(),
                c.held,
                c.runs,
                if c.errors.is_empty() {
                    String::new()
                } else {
                    format!(", {} did not complete", c.errors.len())
                },
                if doc {
                    String::new()
                } else {
                    format!(" — [bundle]({}/report.md)", c.bundle)
                }
            );
        }
    }
    if doc {
        s += "\nEach cell's bundle (report.md, report.json, per-run timelines) was written under \
              `target/testbed/matrix/<UTC>/<scenario>/<image>/` on the machine that ran it; \
              `cargo xtask matrix` makes a new one.\n";
    }
    s
}

fn cell_text(c: &Cell, doc: bool) -> String {
    let rate = if c.held == c.runs && c.errors.is_empty() {
        format!("{}/{}", c.held, c.runs)
    } else {
        format!("**{}/{}**", c.held, c.runs + c.errors.len())
    };
    let key = match (&c.key_summary, &c.key_measure) {
        (Some(v), Some(k)) if k.ends_with("_ms") && v.parse::<f64>().is_ok() => {
            format!(" · {v} ms")
        }
        (Some(v), _) => format!(" · {}", v.replace('|', "\\|")),
        _ => String::new(),
    };
    if doc {
        format!("{rate}{key}")
    } else {
        format!("{rate}{key} · [bundle]({}/report.md)", c.bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{MatrixEnv, ScenarioRow};

    #[test]
    fn cells_show_the_rate_the_key_median_and_findings() {
        let cell = |img: &str, held, runs| Cell {
            scenario: "kill-master".into(),
            image: img.into(),
            server: format!("server of {img}"),
            runs,
            held,
            errors: vec![],
            key_measure: Some("promoted_within_ms".into()),
            key_values: vec!["3000".into()],
            key_summary: Some("3000".into()),
            bundle: format!("kill-master/{img}"),
        };
        let m = Matrix {
            date_utc: "2026-12-01T00:00:00Z".into(),
            command: "cargo xtask matrix".into(),
            environment: MatrixEnv::default(),
            repeat: 3,
            jobs: 2,
            minutes: 1.0,
            images: vec![
                ("a".into(), "redis 8.0.2".into()),
                ("b".into(), "valkey 8.1.1".into()),
            ],
            scenarios: vec![ScenarioRow {
                name: "kill-master".into(),
                file: "fixtures/scenarios/kill-master.toml".into(),
                description: "kill the master".into(),
                sources: vec!["article:seed-vip".into()],
            }],
            cells: vec![cell("a", 3, 3), cell("b", 0, 3)],
            left_out: vec!["testbed/valkey:9.1".into()],
        };
        let md = render(&m, false);
        assert!(
            md.contains("| 3/3 · 3000 ms · [bundle](kill-master/a/report.md) | **0/3** · 3000 ms"),
            "{md}"
        );
        assert!(
            md.contains("- `kill-master` on server of b: not reproduced (0/3 runs)"),
            "{md}"
        );
        assert!(md.contains("`testbed/valkey:9.1`"), "{md}");
        let doc = render(&m, true);
        assert!(
            doc.contains("[kill-master](../fixtures/scenarios/kill-master.toml)"),
            "{doc}"
        );
        assert!(!doc.contains("[bundle]"), "{doc}");
    }
}
