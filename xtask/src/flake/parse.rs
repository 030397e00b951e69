//! Reading one run's log back: which test binaries ran, how each test ended,
//! and how long each took.
//!
//! The log is what `cargo test` printed, one line per line with the seconds
//! since the run started and the stream (`o` stdout, `e` stderr) in front,
//! framed by a `#` header (run, prefix, test threads, commit) and a `#`
//! trailer (exit status, elapsed). libtest prints a test's line (`test NAME
//! ... ok`) when the test ends, and starts tests in name order, at most
//! `threads` at a time, each as soon as a slot frees; so every test's start
//! is known from the earlier ends, and its duration is its end minus that
//! start. Where the ends do not fit that order (a harness that does not
//! behave so), the duration is left unknown rather than guessed.
//!
//! Invariant: `parse` is pure (text in, record out) and never fails on
//! output it does not know: such lines are skipped.

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Ignored,
}

/// One test of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Test {
    /// The binary's label (see [`Binary::label`]).
    pub binary: String,
    pub name: String,
    pub outcome: Outcome,
    /// Seconds from its start to its end (`None` where the order of ends
    /// did not fit libtest's scheduling).
    pub duration_s: Option<f64>,
    /// A failed test's first lines of output (its panic or error).
    pub failure: Option<String>,
}

/// One test binary of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Binary {
    /// `tests/failover.rs`, `unittests testbed`, `doc-tests testbed`.
    pub label: String,
    pub tests: usize,
    /// libtest's own `finished in` (None when the binary did not finish).
    pub finished_in_s: Option<f64>,
}

/// One run of the test command.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub run: u32,
    pub prefix: String,
    pub commit: String,
    pub started_utc: String,
    /// The exit status (`None`: the run was interrupted or its log ends early).
    pub exit: Option<i32>,
    pub interrupted: bool,
    pub elapsed_s: Option<f64>,
    pub binaries: Vec<Binary>,
    pub tests: Vec<Test>,
    /// Stalls of the machine during the run (`# stall` lines).
    pub stalls: Vec<Stall>,
}

/// A tick of the flake command's watcher that took far longer than asked.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stall {
    /// Seconds since the run started.
    pub at_s: f64,
    /// How long the 100 ms tick took by the monotonic and the wall clock.
    pub mono_s: f64,
    pub wall_s: f64,
}

impl Run {
    /// Exit 0 and no test failed.
    pub fn passed(&self) -> bool {
        self.exit == Some(0) && !self.interrupted && self.failed().next().is_none()
    }

    /// Interrupted, or its log has no end (the command was killed, or the
    /// run is still going): such a run says nothing either way.
    pub fn unfinished(&self) -> bool {
        self.interrupted || self.exit.is_none()
    }

    pub fn failed(&self) -> impl Iterator<Item = &Test> {
        self.tests.iter().filter(|t| t.outcome == Outcome::Failed)
    }
}

/// One line of a log: seconds, stream, text.
fn split(line: &str) -> Option<(f64, char, &str)> {
    let line = line.trim_start();
    let (t, rest) = line.split_once(' ')?;
    let t: f64 = t.parse().ok()?;
    let mut chars = rest.chars();
    let stream = chars.next()?;
    let text = chars.as_str().strip_prefix(' ').unwrap_or("");
    Some((t, stream, text))
}

/// `key=value` pairs of a `#` header or trailer line.
fn fields(text: &str) -> BTreeMap<&str, &str> {
    text.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// The label of a `Running SOURCE (PATH)` line: the source for an
/// integration test, `unittests CRATE` for a crate's own tests.
fn binary_label(text: &str) -> Option<String> {
    let rest = text.trim().strip_prefix("Running ")?;
    let (source, path) = rest.rsplit_once(" (")?;
    if source.starts_with("unittests") {
        let file = path.trim_end_matches(')').rsplit('/').next()?;
        let krate = file.rsplit_once('-').map_or(file, |(k, _)| k);
        Some(format!("unittests {krate}"))
    } else {
        Some(source.to_string())
    }
}

/// `test NAME ... RESULT` → (name, outcome).
fn test_line(text: &str) -> Option<(&str, Outcome)> {
    let rest = text.strip_prefix("test ")?;
    let (name, result) = rest.rsplit_once(" ... ")?;
    let outcome = match result.trim() {
        "ok" => Outcome::Ok,
        "FAILED" => Outcome::Failed,
        r if r.starts_with("ignored") => Outcome::Ignored,
        _ => return None,
    };
    Some((name, outcome))
}

/// `finished in 12.34s` of a `test result:` line.
fn finished_in(text: &str) -> Option<f64> {
    let at = text.find("finished in ")? + "finished in ".len();
    text[at..].trim().trim_end_matches('s').parse().ok()
}

/// The tests of one binary as they ended: name, outcome, end time.
struct Pending {
    label: String,
    count: usize,
    started: f64,
    /// Its `running N tests` line was seen: its `test result:` may still
    /// come after the next binary's `Running` line (see [`parse`]).
    printed: bool,
    /// Its `test result:`'s time, when read before its `Running` line.
    result: Option<Option<f64>>,
    ends: Vec<(String, Outcome, f64)>,
}

impl Pending {
    fn new(label: String, t: f64) -> Self {
        Pending {
            label,
            count: 0,
            started: t,
            printed: false,
            result: None,
            ends: Vec::new(),
        }
    }
}

/// The binary a `Running` line names: what was read of it before that line
/// (`early`) included, and finished at once if its result was read too.
fn start(
    label: String,
    t: f64,
    early: &mut Option<Pending>,
    run: &mut Run,
    threads: usize,
) -> Option<Pending> {
    let mut p = early
        .take()
        .unwrap_or_else(|| Pending::new(String::new(), t));
    p.label = label;
    match p.result {
        Some(finished) => {
            finish(p, finished, run, threads);
            None
        }
        None => Some(p),
    }
}

/// Each test's duration by replaying libtest's scheduling (name order, at
/// most `threads` at once, a test starts when one ends); `None` for all if
/// an end does not belong to a running test.
fn durations(started: f64, ends: &[(String, Outcome, f64)], threads: usize) -> Vec<Option<f64>> {
    let mut order: Vec<&str> = ends.iter().map(|(n, _, _)| n.as_str()).collect();
    order.sort_unstable();
    let mut queue: VecDeque<&str> = order.into_iter().collect();
    let mut running: BTreeMap<&str, f64> = BTreeMap::new();
    let threads = threads.max(1);
    while running.len() < threads {
        let Some(n) = queue.pop_front() else { break };
        running.insert(n, started);
    }
    let mut out = Vec::with_capacity(ends.len());
    for (name, _, end) in ends {
        let Some(start) = running.remove(name.as_str()) else {
            return vec![None; ends.len()];
        };
        out.push(Some((end - start).max(0.0)));
        if let Some(n) = queue.pop_front() {
            running.insert(n, *end);
        }
    }
    out
}

/// The first lines of each failed test's captured output
/// (`---- NAME stdout ----` up to the next section).
fn failure_texts(lines: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for text in lines {
        let header = text
            .strip_prefix("---- ")
            .and_then(|r| r.strip_suffix(" stdout ----"));
        let ends_section = header.is_some()
            || *text == "failures:"
            || text.starts_with("test result:")
            || text.starts_with("running ");
        if ends_section {
            if let Some((name, body)) = current.take() {
                out.insert(name, summarise_failure(&body));
            }
        }
        if let Some(name) = header {
            current = Some((name.to_string(), Vec::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push(text);
        }
    }
    if let Some((name, body)) = current {
        out.insert(name, summarise_failure(&body));
    }
    out
}

/// The lines of a failure that say what failed: the error or panic and the
/// few lines after it (at most 6 lines, 600 characters).
fn summarise_failure(body: &[&str]) -> String {
    let from = body
        .iter()
        .position(|l| l.starts_with("Error:") || l.contains("panicked at"))
        .unwrap_or(0);
    let mut s = body[from..]
        .iter()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with"))
        .take(6)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if s.len() > 600 {
        let mut cut = 600;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A binary's tests into the run, with their durations.
fn finish(p: Pending, finished: Option<f64>, run: &mut Run, threads: usize) {
    let d = durations(p.started, &p.ends, threads);
    run.binaries.push(Binary {
        label: p.label.clone(),
        tests: p.count,
        finished_in_s: finished,
    });
    for ((name, outcome, _), duration_s) in p.ends.into_iter().zip(d) {
        run.tests.push(Test {
            binary: p.label.clone(),
            name,
            outcome,
            duration_s,
            failure: None,
        });
    }
}

/// Reads a run's log (see the module's header for the format).
pub fn parse(log: &str) -> Run {
    let mut run = Run {
        run: 0,
        prefix: String::new(),
        commit: String::new(),
        started_utc: String::new(),
        exit: None,
        interrupted: false,
        elapsed_s: None,
        binaries: Vec::new(),
        tests: Vec::new(),
        stalls: Vec::new(),
    };
    let mut threads = 1usize;
    let mut pending: Option<Pending> = None;
    // cargo's `Running` lines come on stderr, libtest's on stdout: two pipes,
    // so lines written a moment apart can be read in either order. A label
    // read while a binary is still printing waits in `next` for that
    // binary's `test result:`; what is read of a binary before its label
    // (from `running N tests` on) waits in `early`.
    let mut next: Option<(String, f64)> = None;
    let mut early: Option<Pending> = None;
    let mut stdout_texts: Vec<&str> = Vec::new();
    let mut in_failures = false;
    for line in log.lines() {
        if let Some(header) = line.strip_prefix("# flake ") {
            let f = fields(header);
            run.run = f.get("run").and_then(|v| v.parse().ok()).unwrap_or(0);
            run.prefix = f.get("prefix").unwrap_or(&"").to_string();
            run.commit = f.get("commit").unwrap_or(&"").to_string();
            run.started_utc = f.get("started").unwrap_or(&"").to_string();
            threads = f.get("threads").and_then(|v| v.parse().ok()).unwrap_or(1);
            continue;
        }
        if let Some(stall) = line.strip_prefix("# stall ") {
            let f = fields(stall);
            let num = |k| f.get(k).and_then(|v: &&str| v.parse().ok()).unwrap_or(0.0);
            run.stalls.push(Stall {
                at_s: num("t"),
                mono_s: num("mono"),
                wall_s: num("wall"),
            });
            continue;
        }
        if let Some(trailer) = line.strip_prefix("# end ") {
            let f = fields(trailer);
            run.exit = f.get("exit").and_then(|v| v.parse().ok());
            run.interrupted = f.get("interrupted") == Some(&"true");
            run.elapsed_s = f.get("elapsed").and_then(|v| v.parse().ok());
            continue;
        }
        let Some((t, stream, text)) = split(line) else {
            continue;
        };
        if stream == 'e' {
            let label = binary_label(text).or_else(|| {
                text.trim()
                    .strip_prefix("Doc-tests ")
                    .map(|k| format!("doc-tests {k}"))
            });
            if let Some(label) = label {
                if pending.as_ref().is_some_and(|p| p.printed) && next.is_none() {
                    // the binary before may not have ended: its last lines
                    // can be read after this one (another pipe)
                    next = Some((label, t));
                } else {
                    if let Some(p) = pending.take() {
                        finish(p, None, &mut run, threads);
                    }
                    if let Some((l, at)) = next.take() {
                        finish(Pending::new(l, at), None, &mut run, threads);
                    }
                    pending = start(label, t, &mut early, &mut run, threads);
                    in_failures = false;
                }
            }
            continue;
        }
        stdout_texts.push(text);
        let running = text
            .strip_prefix("running ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        if let Some(n) = running {
            // a new binary's first line: the one before ended without a result
            if let Some((l, at)) = next.take() {
                if let Some(p) = pending.take() {
                    finish(p, None, &mut run, threads);
                }
                pending = Some(Pending::new(l, at));
            }
            match pending.as_mut() {
                Some(p) if !p.printed => {
                    p.count = n;
                    p.started = t;
                    p.printed = true;
                }
                // read before its own `Running` line
                _ => {
                    let mut e = Pending::new(String::new(), t);
                    (e.count, e.printed) = (n, true);
                    early = Some(e);
                }
            }
            in_failures = false;
            continue;
        }
        if text == "failures:" {
            in_failures = true;
        } else if text.starts_with("test result:") {
            let finished = finished_in(text);
            match (pending.take(), early.as_mut()) {
                (Some(p), _) => finish(p, finished, &mut run, threads),
                (None, Some(e)) => e.result = Some(finished),
                (None, None) => {}
            }
            if let Some((l, at)) = next.take() {
                pending = start(l, at, &mut early, &mut run, threads);
            }
            in_failures = false;
        } else if !in_failures {
            let open = pending.as_mut().or(early.as_mut());
            if let (Some(p), Some((name, outcome))) = (open, test_line(text)) {
                p.ends.push((name.to_string(), outcome, t));
            }
        }
    }
    if let Some(p) = pending.take() {
        finish(p, None, &mut run, threads);
    }
    if let Some((l, at)) = next.take() {
        finish(Pending::new(l, at), None, &mut run, threads);
    }
    let failures = failure_texts(&stdout_texts);
    for t in run
        .tests
        .iter_mut()
        .filter(|t| t.outcome == Outcome::Failed)
    {
        t.failure = failures.get(&t.name).cloned();
    }
    run
}

#[cfg(test)]
mod tests;
