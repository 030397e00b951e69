//! Ctrl-C and SIGTERM: stop, then remove what was made — in that order.
//!
//! The first signal sets a process-wide flag. Work in flight is not dropped
//! mid-request (a container create that Docker already received would
//! finish after the removal listed the containers): every step of `up`, of
//! a scenario, of a wait or a sleep checks the flag and returns
//! [`Error::Interrupted`], so the owned `Testbed` unwinds and removes itself
//! (its `Drop`), after every request it sent has been answered. A second
//! signal exits at once with status 130 and says what may be left and the
//! `down` command that removes it. If the owner has not unwound after
//! [`GRACE`] (it is stuck in something that never checks), the signal
//! thread removes the registered testbeds itself and exits with 130.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the owner may take to unwind before the signal thread removes
/// its testbeds itself.
pub const GRACE: Duration = Duration::from_secs(60);

/// 0: not interrupted; otherwise the signal number.
static SIGNAL: AtomicU8 = AtomicU8::new(0);

fn watch() -> &'static tokio::sync::watch::Sender<bool> {
    static W: OnceLock<tokio::sync::watch::Sender<bool>> = OnceLock::new();
    W.get_or_init(|| tokio::sync::watch::channel(false).0)
}

/// The signal's name, once one arrived.
pub fn interrupted() -> Option<&'static str> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n if n == libc::SIGTERM as u8 => Some("SIGTERM"),
        _ => Some("SIGINT"),
    }
}

/// `Err(Interrupted)` once a signal arrived; call it between steps.
pub fn check(during: &str) -> Result<()> {
    match interrupted() {
        None => Ok(()),
        Some(signal) => Err(Error::Interrupted {
            signal: signal.to_string(),
            during: during.to_string(),
        }),
    }
}

/// Resolves when a signal arrives (at once if one already did).
pub async fn cancelled() {
    let mut rx = watch().subscribe();
    // the sender lives in a static: `wait_for` only ends when it holds
    let _ = rx.wait_for(|v| *v).await;
}

/// Sleeps `d`, or less if a signal arrives (then `Err(Interrupted)`).
pub async fn sleep(d: Duration, during: &str) -> Result<()> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancelled() => check(during),
    }
}

/// Marks the process interrupted, as a signal would (for tests, and for
/// callers that stop for their own reasons).
pub fn trigger(signal: i32) {
    SIGNAL.store(signal as u8, Ordering::SeqCst);
    watch().send_replace(true);
}

/// Testbeds this process must see removed if it is interrupted.
fn live() -> &'static Mutex<Vec<(String, PathBuf)>> {
    static LIVE: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// Registers a testbed (installs the signal handling once per process).
pub fn register(name: &str, state_root: PathBuf) {
    install();
    live()
        .lock()
        .expect("live lock")
        .push((name.to_string(), state_root));
}

/// Forgets a testbed (removed, or left running on purpose).
pub fn unregister(name: &str) {
    live().lock().expect("live lock").retain(|(n, _)| n != name);
}

fn registered() -> Vec<(String, PathBuf)> {
    live().lock().expect("live lock").clone()
}

/// Installs the SIGINT/SIGTERM handling (once per process; later calls do
/// nothing). `Testbed::up` calls it; commands that make other things
/// (`bench`'s loopback processes) call it first too.
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::thread::Builder::new()
            .name("testbed-signals".into())
            .spawn(signal_thread)
            .expect("a thread can be spawned");
    });
}

fn signal_thread() {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let first = tokio::select! {
            _ = int.recv() => libc::SIGINT,
            _ = term.recv() => libc::SIGTERM,
        };
        trigger(first);
        let names: Vec<String> = registered().into_iter().map(|(n, _)| n).collect();
        if names.is_empty() {
            eprintln!("interrupted: stopping (again to exit at once)");
        } else {
            eprintln!(
                "interrupted: stopping, then removing testbed {} (again to exit at once)",
                names.join(", ")
            );
        }
        let started = Instant::now();
        loop {
            tokio::select! {
                _ = int.recv() => second(),
                _ = term.recv() => second(),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            if started.elapsed() >= GRACE {
                break;
            }
        }
        // the owner is stuck in something that never checks: remove
        for (name, root) in registered() {
            eprintln!(
                "interrupted: the run did not stop within {GRACE:?}; removing testbed {name}"
            );
            if let Err(e) = super::teardown::down_blocking(&name, root) {
                eprintln!("removing testbed {name} failed: {e}");
            }
        }
        std::process::exit(130);
    });
}

/// A second signal: exit now, saying what may be left.
fn second() -> ! {
    let names: Vec<String> = registered().into_iter().map(|(n, _)| n).collect();
    if names.is_empty() {
        eprintln!("interrupted twice: exiting now");
    } else {
        let cmds: Vec<String> = names
            .iter()
            .map(|n| format!("`cargo xtask down --name {n}`"))
            .collect();
        eprintln!(
            "interrupted twice: exiting now; testbed {} may be left: remove with {} (or `cargo xtask down --all`)",
            names.join(", "),
            cmds.join(", ")
        );
    }
    std::process::exit(130);
}

#[cfg(test)]
mod tests {
    // The flag is process-wide: the behaviour under a real signal is tested
    // with child processes (tests/interrupt.rs); here only the pure parts.
    use super::*;

    #[test]
    fn an_interrupted_error_names_the_signal_and_the_step() {
        let e = Error::Interrupted {
            signal: "SIGINT".into(),
            during: "up: containers".into(),
        };
        assert_eq!(e.to_string(), "interrupted (SIGINT) during up: containers");
    }
}
