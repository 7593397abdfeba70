//! The checker's one error type: what stops a run before it can report
//! (exit status 2). Violations found in the stream are findings, not errors.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// Bad flags or environment.
    #[error("usage: {0}")]
    Usage(String),
    /// The first playlist could not be loaded (network setup).
    #[error("cannot load {url}: {reason}")]
    Setup { url: String, reason: String },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// An external checker was asked for but cannot run.
    #[error("{tool}: {reason}")]
    External { tool: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
