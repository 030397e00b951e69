//! `cargo xtask`: a thin client of the `testbed` library. Dispatch only; one
//! module per command.

mod bench;
mod chaos;
mod clients;
mod compose;
mod engine;
mod flags;
mod flake;
mod matrix;
mod matrix_join;
mod matrix_md;
mod merge;
mod netem;
mod ops;
mod paths;
mod pool;
mod repro;
mod segment;
mod soak;

use clap::Parser;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // plain lines in log files and pipes (and with NO_COLOR)
        .with_ansi(testbed::progress::stderr_is_terminal())
        .without_time()
        .init();
    let args = flags::Xtask::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(ops::run(args.cmd)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            let interrupted = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<testbed::Error>(),
                    Some(testbed::Error::Interrupted { .. })
                )
            });
            // 128 + SIGINT, as a shell reports a command Ctrl-C stopped
            std::process::ExitCode::from(if interrupted { 130 } else { 1 })
        }
    }
}

/// The error and its causes on one line, each cause once (the library's
/// messages already carry theirs).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for c in e.chain() {
        let text = c.to_string();
        if !last.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        last = text;
    }
    out
}
