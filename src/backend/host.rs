//! Running host commands (`ip`, `nsenter`, `debootstrap`, ...) with errors that
//! carry the full command line and its stderr.

use crate::error::{Error, Result};
use std::process::{Command, Stdio};

/// Runs `program args...`, returns stdout; a non-zero exit is an error that
/// carries stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let line = command_line(program, args);
    tracing::debug!(command = %line, "run");
    use std::os::unix::process::CommandExt;
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        // its own process group: a Ctrl-C at the terminal reaches this
        // process, which stops between steps, not a half-done `ip` call
        .process_group(0)
        .output()
        .map_err(|e| {
            Error::command(
                &line,
                format!("cannot start `{program}`: {e} (is it installed and on PATH?)"),
            )
        })?;
    if !out.status.success() {
        return Err(Error::command(
            &line,
            format!(
                "exit {}: {}",
                out.status.code().map_or("signal".into(), |c| c.to_string()),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Like [`run`] but from async code: runs on the blocking pool.
pub async fn run_async(program: &str, args: &[&str]) -> Result<String> {
    let program = program.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&program, &refs)
    })
    .await
    .map_err(|e| Error::command("spawn_blocking", e.to_string()))?
}

/// Runs a command inside the network namespace of process `pid` (a
/// container's init), from the host: no tool needs to be in the image.
pub async fn in_netns(pid: i64, program: &str, args: &[&str]) -> Result<String> {
    let pid = pid.to_string();
    let mut full = vec!["-t", pid.as_str(), "-n", program];
    full.extend_from_slice(args);
    run_async("nsenter", &full).await
}

/// Whether `program` can be found on PATH.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (the testbed creates links and enters
/// network namespaces, both of which need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}
