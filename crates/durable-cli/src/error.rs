//! The one error type of the CLI.

use durable::DurableError;

/// What can stop a command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// The SDK refused or failed an operation.
    #[error("durable: {0}")]
    Durable(#[from] DurableError),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// `durable bench` failed (its own error says how).
    #[error(transparent)]
    Bench(#[from] durable_bench::BenchError),
    /// Bad arguments or an unusable environment.
    #[error("{0}")]
    Usage(String),
    /// Something that should not fail did (a task stopped, a value
    /// could not be encoded).
    #[error("{0}")]
    Internal(String),
    /// What was asked for is not there (an event without a value).
    #[error("{0}")]
    NotFound(String),
}

impl CliError {
    /// The process's exit code for this error: 2 for a wrong command
    /// line (the bench's included), 1 for everything else (see `main.rs`).
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Bench(durable_bench::BenchError::Usage(_)) => 2,
            _ => 1,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result of a CLI operation.
pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;
