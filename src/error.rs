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
    // The cause is both in the message (so `{}` alone says what happened)
    // and the `source()` (so callers can match on it); `report` prints a
    // chain without repeating it.
    #[error("docker: {context}: {error}")]
    Docker {
        context: String,
        #[source]
        error: bollard::errors::Error,
    },

    /// Talking to a redis-server or redis-sentinel failed.
    #[error("redis {addr}: {context}: {error}")]
    Redis {
        addr: String,
        context: String,
        #[source]
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
        #[source]
        error: std::io::Error,
    },

    /// The run was interrupted (Ctrl-C, SIGTERM) and stopped at this step;
    /// what it had made is being removed.
    #[error("interrupted ({signal}) during {during}")]
    Interrupted { signal: String, during: String },
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!("\n  hint: {h}"),
        None => String::new(),
    }
}

impl Error {
    /// An input error at byte `offset` of `text` (a file's contents): the
    /// location becomes `file:line:col`.
    pub fn at(
        file: impl std::fmt::Display,
        text: &str,
        offset: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let (line, col) = line_col(text, offset);
        Error::Input {
            at: format!("{file}:{line}:{col}"),
            message: message.into(),
            hint,
        }
    }

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

/// The 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

/// An error and its sources as one line, each cause once: a source whose
/// text the previous message already contains is not repeated (the
/// library's messages carry their cause; `source()` returns it too).
pub fn report(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut last = out.clone();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !last.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // columns count characters, not bytes
        assert_eq!(line_col(text, 10), (2, 4));
        assert_eq!(line_col(text, 999), (3, 1));
        let e = Error::at("f.toml", text, 6, "bad", Some("fix it".into()));
        assert_eq!(e.to_string(), "f.toml:2:1: bad\n  hint: fix it");
    }

    #[test]
    fn the_cause_is_a_source_and_printed_once() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::io("/x", io);
        let src = std::error::Error::source(&e).expect("a source");
        assert_eq!(src.to_string(), "disk on fire");
        assert!(src.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(report(&e), "/x: disk on fire");
        // a wrapper that does not repeat its cause gets it appended
        #[derive(Debug, thiserror::Error)]
        #[error("reading the report")]
        struct Outer(#[source] Error);
        assert_eq!(report(&Outer(e)), "reading the report: /x: disk on fire");
    }
}
