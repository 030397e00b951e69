//! Progress lines for slow operations (image builds, engine start-up): each
//! step is printed to stderr with the time since the operation began, so a
//! person watching a 50 s build sees where the time goes.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// A timer plus a label; every message is prefixed with the elapsed time.
///
/// Messages go to stderr (stdout stays free for machine-readable output such
/// as `--json`) and to `tracing`, so they also land in logs. Setting
/// `TESTBED_QUIET=1` silences stderr only: tests that build images in
/// parallel would otherwise interleave their lines.
#[derive(Debug)]
pub struct Progress {
    label: String,
    start: Instant,
    quiet: bool,
    /// Every step so far: (ms since start, message), for callers that time
    /// the steps (`cargo xtask bench`).
    steps: std::sync::Mutex<Vec<(f64, String)>>,
}

impl Progress {
    /// Starts the clock for an operation called `label`.
    pub fn new(label: &str) -> Self {
        Progress {
            label: label.to_string(),
            start: Instant::now(),
            quiet: std::env::var("TESTBED_QUIET").is_ok_and(|v| v == "1"),
            steps: std::sync::Mutex::default(),
        }
    }

    /// Reports one step: `[  1.2s] label: msg`.
    pub fn step(&self, msg: impl Display) {
        self.emit(&msg.to_string());
    }

    /// Reports a detail within a step (printed like a step, not kept among
    /// the timed steps of [`Progress::steps`]).
    pub fn detail(&self, msg: impl Display) {
        self.print(&msg.to_string());
    }

    /// A warning, in the same one-line format: `[  0.3s] label: warning: msg`.
    pub fn warn(&self, msg: impl Display) {
        self.print(&format!("warning: {msg}"));
    }

    /// Reports the end of the operation: `[  1.2s] label: done: msg`.
    pub fn done(&self, msg: impl Display) {
        self.emit(&format!("done: {msg}"));
    }

    /// Every step and the end reported so far: (ms since start, message).
    pub fn steps(&self) -> Vec<(f64, String)> {
        self.steps.lock().expect("steps lock").clone()
    }

    /// Time since [`Progress::new`].
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn emit(&self, msg: &str) {
        let elapsed = self.elapsed();
        self.steps
            .lock()
            .expect("steps lock")
            .push((elapsed.as_secs_f64() * 1000.0, msg.to_string()));
        self.print(msg);
    }

    fn print(&self, msg: &str) {
        let line = format_line(self.elapsed(), &self.label, msg);
        tracing::info!(target: "testbed::progress", "{line}");
        if !self.quiet {
            clear_ticker();
            eprintln!("{line}");
        }
    }
}

/// Whether stderr is a terminal a person watches (and colours are allowed:
/// `NO_COLOR` unset). Log files and pipes get plain lines only.
pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

static TICKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn clear_ticker() {
    if TICKING.swap(false, std::sync::atomic::Ordering::SeqCst) {
        eprint!("\r\x1b[2K");
    }
}

/// On a terminal, a one-line `… still waiting for X (5 s)` that updates in
/// place while a wait lasts longer than 2 s, and is erased when it ends
/// (dropped). Elsewhere (a log file, a test) it prints nothing.
pub struct Ticker {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Ticker {
    pub fn start(what: &str) -> Ticker {
        let quiet = std::env::var("TESTBED_QUIET").is_ok_and(|v| v == "1");
        if quiet || !stderr_is_terminal() || tokio::runtime::Handle::try_current().is_err() {
            return Ticker { task: None };
        }
        let what = what.to_string();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_secs(2)).await;
            loop {
                TICKING.store(true, std::sync::atomic::Ordering::SeqCst);
                eprint!(
                    "\r\x1b[2K… still waiting for {what} ({} s)",
                    start.elapsed().as_secs()
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ticker { task: Some(task) }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            clear_ticker();
        }
    }
}

fn format_line(elapsed: Duration, label: &str, msg: &str) -> String {
    format!("[{:>5.1}s] {label}: {msg}", elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_right_aligns_one_decimal() {
        let l = format_line(Duration::from_millis(1234), "img", "debootstrap");
        assert_eq!(l, "[  1.2s] img: debootstrap");
        let l = format_line(Duration::from_millis(123_456), "img", "x");
        assert_eq!(l, "[123.5s] img: x");
    }
}
