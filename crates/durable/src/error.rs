//! `DurableError`: the one error type of the SDK boundary.

use sea_orm::{DbErr, RuntimeErr};
use uuid::Uuid;

/// Everything that can go wrong in a workflow, a step or a management call.
///
/// Messages are lowercase and carry the values a reader needs (which
/// workflow, which step, which state). Use [`DurableError::is_transient`] to
/// tell errors worth retrying from permanent ones; never match on message text.
///
/// The enum is `#[non_exhaustive]`: a `match` needs a last `_` arm.
///
/// ```no_run
/// use durable::{Client, DurableError};
///
/// async fn cancel_order(url: &str, key: &str) -> Result<(), DurableError> {
///     let db = durable::connect(url).await?;
///     let client = Client::new(&db);
///     let id = client.workflow_by_key(key).await?.id;
///     client.cancel(id).await
/// }
///
/// # async fn demo() {
/// let Err(err) = cancel_order("postgres://app@localhost/app", "order-42").await else {
///     println!("cancelled");
///     return;
/// };
/// match err {
///     DurableError::KeyNotFound(key) => eprintln!("no workflow has key {key}"),
///     DurableError::NotFound(id) => eprintln!("workflow {id} is gone"),
///     DurableError::InvalidTransition { task, status, action } => {
///         eprintln!("cannot {action} {task}: it is {status}")
///     }
///     DurableError::SchemaMissing { detail } => {
///         eprintln!("run `durable migrate` or call durable::init first ({detail})")
///     }
///     DurableError::ConnectFailed { server, reason, .. } => {
///         eprintln!("database server {server} is unreachable: {reason}")
///     }
///     _ if err.is_transient() => eprintln!("a passing database error, try again: {err}"),
///     _ => eprintln!("cannot cancel order-42: {err}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DurableError {
    /// A database error that the SDK did not absorb.
    #[error("database error: {0}")]
    Db(DbErr),
    /// [`crate::connect`] could not open a first connection to the server:
    /// it is down or starting, the host or port is wrong, or it refused the
    /// user or the database. Transient ([`DurableError::is_transient`]) when
    /// trying again later may succeed (no answer, a refused or lost
    /// connection, a server starting or shutting down); not when the URL
    /// is wrong (an unknown database, a refused password).
    #[error("cannot connect to the database server at {server}: {reason}")]
    ConnectFailed {
        /// `host:port` from the URL (never the password).
        server: String,
        /// What the connection attempt said.
        reason: String,
        /// Whether connecting again later may succeed.
        transient: bool,
    },
    /// The `durable` tables are not in this database (or not in the
    /// schema the connection's `search_path` names): nothing was written.
    #[error(
        "the durable tables are missing from this database ({detail}): call durable::init(&db) \
         at start-up, or run `durable migrate`"
    )]
    SchemaMissing {
        /// What the database said.
        detail: String,
    },
    /// A value could not be turned into JSON or back.
    #[error("serialization error: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The workflow is owned by another live executor; it was not run here.
    #[error("locked by another executor: {0}")]
    StepLocked(String),
    /// The workflow (or an ancestor) is paused; the step did not start.
    #[error("paused: {0}")]
    Paused(String),
    /// The workflow (or an ancestor) is cancelled; the step did not start.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The deadline of the workflow (or an ancestor) has passed; the step
    /// did not start. (Waiting for a result that is not there yet is
    /// [`DurableError::WaitTimeout`].)
    #[error("timeout: {0}")]
    Timeout(String),
    /// A free-form error, usually returned by user code inside a step.
    #[error("{0}")]
    Custom(String),
    /// The code no longer matches the recorded history of the workflow.
    #[error("non-determinism in workflow {workflow} at step '{step}': {detail}")]
    NonDeterminism {
        /// The workflow whose history does not match.
        workflow: Uuid,
        /// The step (`name#n`) where the mismatch was found.
        step: String,
        /// What was recorded and what the code asked for.
        detail: String,
    },
    /// A step failed in an earlier run; this is its saved error, replayed.
    #[error("step '{step}' failed: {message}")]
    StepFailed {
        /// The step (`name#n`).
        step: String,
        /// The error message recorded when it failed.
        message: String,
    },
    /// Input rejected before anything was written: a bad name, a value that
    /// does not survive a JSON round trip, a non-positive timeout.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// No task with this id exists.
    #[error("task {0} not found")]
    NotFound(Uuid),
    /// No root workflow has this key.
    #[error("no workflow has key '{0}'")]
    KeyNotFound(String),
    /// No schedule has this name.
    #[error("schedule '{0}' not found")]
    ScheduleNotFound(String),
    /// The operation is not allowed in the task's current state.
    #[error("cannot {action} task {task} in status {status}")]
    InvalidTransition {
        /// The task addressed.
        task: Uuid,
        /// Its status when the call was made.
        status: String,
        /// What was attempted (`pause`, `resume`, `cancel`, `complete`, `fail`).
        action: &'static str,
    },
    /// `complete` was called with an output that differs from the one already recorded.
    #[error("workflow {workflow} already completed with a different output")]
    OutputConflict {
        /// The workflow.
        workflow: Uuid,
    },
    /// The executor is shutting down; the step did not start and the
    /// workflow will be resumed by another executor.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// No workflow function of this name is registered.
    #[error("no workflow named '{0}' is registered")]
    UnknownWorkflow(String),
    /// No queue of this name was declared.
    #[error("queue '{0}' does not exist; declare it with Client::declare_queue")]
    UnknownQueue(String),
    /// An enqueue reused a workflow key for different work.
    #[error("workflow key '{key}' is taken by different work: {detail}")]
    Conflict {
        /// The key.
        key: String,
        /// What differs (name, queue or input).
        detail: String,
    },
    /// The awaited workflow failed (its recorded error), or panicked.
    #[error("workflow {workflow} failed: {message}")]
    WorkflowFailed {
        /// The workflow.
        workflow: Uuid,
        /// The error recorded for it.
        message: String,
    },
    /// This executor no longer owns the workflow (its lease was taken over);
    /// the result was not written.
    #[error("workflow {workflow} is no longer owned by this executor")]
    LeaseLost {
        /// The workflow.
        workflow: Uuid,
    },
    /// Stopped waiting for a workflow's result: it had not finished within
    /// the time given. The workflow goes on.
    #[error("stopped waiting for workflow {workflow} after {waited:?}: it has not finished")]
    WaitTimeout {
        /// The workflow.
        workflow: Uuid,
        /// How long the caller waited.
        waited: std::time::Duration,
    },
    /// An error that retrying cannot fix (a declined card, a malformed
    /// request): `step_with_retry` records it without retrying. Make one
    /// with [`DurableError::permanent`].
    #[error("permanent error: {0}")]
    Permanent(String),
    /// A spawned child workflow that was joined failed or was cancelled.
    #[error("child workflow {child} ended {status}: {message}")]
    ChildFailed {
        /// The child.
        child: Uuid,
        /// How it ended: `FAILED` or `CANCELLED`.
        status: crate::status::Status,
        /// Its error.
        message: String,
    },
    /// The workflow was taken over from executors that died while running
    /// it more often than the limit ([`crate::DEFAULT_MAX_RECOVERIES`],
    /// [`crate::Worker::max_recoveries`]): it is FAILED and not recovered
    /// again (it may be what kills them). [`crate::Client::retry`] runs it
    /// again, with its count started afresh.
    #[error(
        "workflow {workflow} was recovered {recoveries} times, more than its limit: it is failed and no longer recovered (Client::retry runs it again)"
    )]
    MaxRecoveryExceeded {
        /// The workflow.
        workflow: Uuid,
        /// Its takeovers from executors that died.
        recoveries: u32,
    },
    /// The workflow stopped to wait (until a time, or for an event) and
    /// will be resumed when it is due. Return it from the workflow function
    /// (`?` does): the executor releases the workflow, so it holds no slot
    /// while it waits.
    #[error("workflow {workflow} is waiting for {waiting_for:?} until {wake_at_ms:?}")]
    Suspended {
        /// The waiting workflow.
        workflow: Uuid,
        /// Call position of the waiting call.
        position: i32,
        /// When it wakes up at the latest (epoch ms, database clock).
        wake_at_ms: Option<i64>,
        /// What it waits for.
        waiting_for: Option<String>,
    },
}

impl DurableError {
    /// A free-form error, for user code inside steps.
    ///
    /// ```
    /// let err = durable::DurableError::custom("upstream returned 503");
    /// assert_eq!(err.to_string(), "upstream returned 503");
    /// ```
    pub fn custom(message: impl Into<String>) -> Self {
        Self::Custom(message.into())
    }

    /// An error that retrying cannot fix: `step_with_retry` records it at
    /// once instead of trying again.
    ///
    /// ```
    /// let err = durable::DurableError::permanent("card declined");
    /// assert!(err.is_permanent());
    /// assert_eq!(err.to_string(), "permanent error: card declined");
    /// ```
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }

    /// True for an error made with [`DurableError::permanent`].
    ///
    /// ```
    /// assert!(!durable::DurableError::custom("503").is_permanent());
    /// ```
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }

    /// True when an id or key named nothing ([`DurableError::NotFound`],
    /// [`DurableError::KeyNotFound`]).
    ///
    /// ```
    /// assert!(durable::DurableError::KeyNotFound("order-42".into()).is_not_found());
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_) | Self::KeyNotFound(_))
    }

    /// True for errors that may succeed when the whole operation is tried
    /// again: lost connections, serialization failures, deadlocks, a busy
    /// SQLite database, pool timeouts.
    ///
    /// ```
    /// assert!(!durable::DurableError::custom("bad request").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Db(err) => is_transient_db(err),
            Self::ConnectFailed { transient, .. } => *transient,
            _ => false,
        }
    }
}

/// A database error as the SDK reports it: a missing `durable_` table is
/// [`DurableError::SchemaMissing`] (the one mistake every newcomer makes
/// once), every other one [`DurableError::Db`].
impl From<DbErr> for DurableError {
    fn from(err: DbErr) -> Self {
        if is_missing_durable_table(&err) {
            return Self::SchemaMissing {
                detail: err.to_string(),
            };
        }
        Self::Db(err)
    }
}

/// PostgreSQL says so by SQLSTATE 42P01 (undefined table); SQLite has no
/// code of its own for it (SQLITE_ERROR, 1), so there its message is the
/// only sign. Either way only a table of ours counts.
fn is_missing_durable_table(err: &DbErr) -> bool {
    let (DbErr::Conn(RuntimeErr::SqlxError(e))
    | DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = e.as_ref() else {
        return false;
    };
    let message = db.message();
    match db.code().as_deref() {
        Some("42P01") => message.contains("\"durable_"),
        Some("1") => message.starts_with("no such table: durable_"),
        _ => false,
    }
}

/// Classifies a database error by kind (SQLSTATE / SQLite code), never by text.
pub(crate) fn is_transient_db(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(e) | DbErr::Exec(e) | DbErr::Query(e) => e,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx_err) = runtime else {
        return false;
    };
    is_transient_sqlx(sqlx_err)
}

/// [`is_transient_db`] for a driver error.
pub(crate) fn is_transient_sqlx(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match err {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Protocol(_) => true,
        E::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL: serialization failure, deadlock, connection
            // exceptions (08xxx), admin shutdown / crash (57P0x), a lock
            // wait past `lock_timeout` (55P03), a session ended for idling
            // in a transaction (25P03).
            // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes.
            code == "40001"
                || code == "40P01"
                || code == "55P03"
                || code == "25P03"
                || code.starts_with("08")
                || code.starts_with("57P0")
                || code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
        }),
        _ => false,
    }
}

/// True for errors that leave it unknown whether a COMMIT took effect.
pub(crate) fn is_connection_lost(err: &DbErr) -> bool {
    let (DbErr::Conn(RuntimeErr::SqlxError(e))
    | DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    matches!(
        e.as_ref(),
        sea_orm::sqlx::Error::Io(_) | sea_orm::sqlx::Error::Protocol(_)
    )
}
