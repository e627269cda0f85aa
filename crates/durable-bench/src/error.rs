//! The one error type of the bench.

use durable::DurableError;
use durable::sea_orm::DbErr;

/// What can stop a bench run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The SDK refused or failed an operation.
    #[error("durable: {0}")]
    Durable(#[from] DurableError),
    /// A statement of the bench's own failed (its floor, a server counter).
    #[error("database: {0}")]
    Db(#[from] DbErr),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path or process it was done to.
        what: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A child process of the run failed (a memory workload, a scale
    /// worker).
    #[error("{workload} (child process): {message}")]
    Child {
        /// What the child ran (`memory workload 'history'`, `scale worker`).
        workload: String,
        /// How it failed.
        message: String,
    },
    /// A workload did not do what it measures (a message never arrived, a
    /// sleeper never woke, a probe was never claimed).
    #[error("measurement failed: {0}")]
    Measurement(String),
    /// Bad arguments (a URL that is not PostgreSQL, an internal flag
    /// without the database it needs).
    #[error("{0}")]
    Usage(String),
    /// Something that should not fail did (a task stopped, a value could
    /// not be encoded, the run was interrupted).
    #[error("{0}")]
    Internal(String),
}

impl BenchError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result of a bench operation.
pub(crate) type Result<T, E = BenchError> = std::result::Result<T, E>;
