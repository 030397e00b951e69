//! `cargo xtask matrix --join DIR...`: one matrix from several runs'
//! `matrix.json` (say one run per image, when a full run does not fit in
//! one sitting), written to `target/testbed/matrix/<UTC>-joined/` and, with
//! `--doc`, as the committed document. The joining itself is pure.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use crate::matrix::{Matrix, MatrixEnv};

/// Reads each folder's `matrix.json` and writes the joined matrix.
pub fn run(dirs: &[PathBuf], doc: Option<&Path>, state_root: &Path) -> Result<()> {
    let out = state_root.join("matrix").join(format!(
        "{}-joined",
        testbed::report::utc_compact(std::time::SystemTime::now())
    ));
    let mut parts = Vec::new();
    for d in dirs {
        let d = crate::paths::resolve(d);
        let p = d.join("matrix.json");
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("{}: not a matrix folder (no matrix.json)", d.display()))?;
        let mut m: Matrix = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a matrix.json", p.display()))?;
        // bundles stay where they are: name them from the joined folder
        for c in &mut m.cells {
            c.bundle = relative_to(&out, &d.join(&c.bundle));
        }
        parts.push(m);
    }
    let m = join(parts).context("matrix --join: name at least one folder")?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("matrix.json"), serde_json::to_string_pretty(&m)?)?;
    std::fs::write(out.join("matrix.md"), crate::matrix_md::render(&m, false))?;
    println!("matrix: {}", out.join("matrix.md").display());
    if let Some(doc) = doc {
        crate::matrix::write_doc(doc, &m)?;
    }
    Ok(())
}

/// `to` as seen from `from` (both under the state root): `../<run>/<bundle>`.
fn relative_to(from: &Path, to: &Path) -> String {
    match (
        from.parent(),
        to.strip_prefix(from.parent().unwrap_or(from)),
    ) {
        (Some(_), Ok(rest)) => format!("../{}", rest.display()),
        _ => to.display().to_string(),
    }
}

/// The runs as one: images and scenarios in order of first appearance, a
/// later run's cell replacing an earlier one's, dates and commands listed,
/// minutes added up. None when there is no run.
pub fn join(parts: Vec<Matrix>) -> Option<Matrix> {
    let mut it = parts.into_iter();
    let mut m = it.next()?;
    let mut dates = vec![m.date_utc.clone()];
    let mut commands = vec![m.command.clone()];
    let mut envs = vec![m.environment.clone()];
    for p in it {
        dates.push(p.date_utc);
        commands.push(p.command);
        envs.push(p.environment.clone());
        m.minutes += p.minutes;
        m.jobs = m.jobs.max(p.jobs);
        m.repeat = m.repeat.max(p.repeat);
        for i in p.images {
            if !m.images.iter().any(|x| x.0 == i.0) {
                m.images.push(i);
            }
        }
        for s in p.scenarios {
            if !m.scenarios.iter().any(|x| x.name == s.name) {
                m.scenarios.push(s);
            }
        }
        for c in p.cells {
            m.cells
                .retain(|x| !(x.scenario == c.scenario && x.image == c.image));
            m.cells.push(c);
        }
        m.left_out.extend(p.left_out);
    }
    m.left_out.sort();
    m.left_out.dedup();
    m.left_out.retain(|i| !m.images.iter().any(|x| &x.0 == i));
    m.date_utc = dates.join(" and ");
    m.command = commands.join("; ");
    m.environment = MatrixEnv {
        load_start: envs[0].load_start.clone(),
        load_end: envs.last().map(|e| e.load_end.clone()).unwrap_or_default(),
        ..envs[0].clone()
    };
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{Cell, ScenarioRow};

    fn part(image: &str, held: usize, scenarios: &[&str]) -> Matrix {
        Matrix {
            date_utc: format!("date-{image}"),
            command: format!("cargo xtask matrix --image {image}"),
            environment: MatrixEnv::default(),
            repeat: 1,
            jobs: 2,
            minutes: 10.0,
            images: vec![(image.into(), format!("server of {image}"))],
            scenarios: scenarios
                .iter()
                .map(|s| ScenarioRow {
                    name: s.to_string(),
                    file: format!("fixtures/scenarios/{s}.toml"),
                    description: String::new(),
                    sources: vec![],
                })
                .collect(),
            cells: scenarios
                .iter()
                .map(|s| Cell {
                    scenario: s.to_string(),
                    image: image.into(),
                    server: image.into(),
                    runs: 1,
                    held,
                    errors: vec![],
                    key_measure: None,
                    key_values: vec![],
                    key_summary: None,
                    bundle: format!("{s}/{image}"),
                })
                .collect(),
            left_out: vec!["b".into(), "c".into()],
        }
    }

    #[test]
    fn runs_join_into_one_matrix_and_later_cells_win() {
        assert!(join(vec![]).is_none());
        let m = join(vec![
            part("a", 1, &["x", "y"]),
            part("b", 0, &["x"]),
            part("a", 0, &["y"]),
        ])
        .unwrap();
        let imgs: Vec<&str> = m.images.iter().map(|i| i.0.as_str()).collect();
        assert_eq!(imgs, ["a", "b"]);
        assert_eq!(m.scenarios.len(), 2);
        assert_eq!(m.cells.len(), 3, "{:?}", m.cells);
        let y_a = m.cells.iter().find(|c| c.scenario == "y" && c.image == "a");
        assert_eq!(y_a.unwrap().held, 0, "the later run's cell");
        assert_eq!(m.left_out, ["c"]);
        assert_eq!(m.minutes, 30.0);
        assert!(m.date_utc.contains("date-a and date-b"), "{}", m.date_utc);
        assert!(crate::matrix_md::render(&m, true).contains("server of b"));
    }

    #[test]
    fn bundles_are_named_from_the_joined_folder() {
        let out = Path::new("/s/matrix/T2-joined");
        assert_eq!(
            relative_to(out, Path::new("/s/matrix/T1/kill/img")),
            "../T1/kill/img"
        );
    }
}
