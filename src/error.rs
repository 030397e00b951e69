//! The library's error type: one variant per kind of failed operation, each
//! carrying what failed and, where there is one, what to do about it.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the testbed can fail at. Messages say what and where; `hint`
/// fields say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A topology or scenario file is wrong; `at` is `file:line:col`.
    #[error("{at}: {message}{}", hint_suffix(.hint))]
    Input {
        at: String,
        message: String,
        hint: Option<String>,
    },

    /// A prerequisite (engine, privilege, tool, kernel feature) is missing.
    #[error("prerequisite missing: {what}\n  hint: {hint}")]
    Prerequisite { what: String, hint: String },

    /// The Docker engine refused or failed an operation.
    // The cause is part of the message (not a `#[source]`), so `{:#}`
    // chains do not print it twice.
    #[error("docker: {context}: {error}")]
    Docker {
        context: String,
        error: bollard::errors::Error,
    },

    /// Talking to a redis-server or redis-sentinel failed.
    #[error("redis {addr}: {context}: {error}")]
    Redis {
        addr: String,
        context: String,
        error: redis::RedisError,
    },

    /// A host command (ip, nsenter, debootstrap, ...) failed.
    #[error("command `{command}` failed: {detail}")]
    Command { command: String, detail: String },

    /// A condition did not become true in time. `missing` names what was
    /// still false at the deadline.
    #[error("timed out after {elapsed_ms} ms waiting for {what}; still false: {missing}")]
    Timeout {
        what: String,
        elapsed_ms: u128,
        missing: String,
    },

    /// The subnet (or a name) the testbed wants is already in use.
    #[error("{what} is busy: {detail}\n  hint: {hint}")]
    Busy {
        what: String,
        detail: String,
        hint: String,
    },

    /// The testbed is not in the state an operation needs.
    #[error("{0}")]
    State(String),

    /// A file could not be read or written.
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!("\n  hint: {h}"),
        None => String::new(),
    }
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    /// A docker error with the operation that failed.
    pub fn docker(context: impl Into<String>, source: bollard::errors::Error) -> Self {
        Error::Docker {
            context: context.into(),
            error: source,
        }
    }

    /// A redis error with the address and the operation that failed.
    pub fn redis(
        addr: impl std::fmt::Display,
        context: impl Into<String>,
        source: redis::RedisError,
    ) -> Self {
        Error::Redis {
            addr: addr.to_string(),
            context: context.into(),
            error: source,
        }
    }

    /// A failed host command.
    pub fn command(command: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Command {
            command: command.into(),
            detail: detail.into(),
        }
    }
}
