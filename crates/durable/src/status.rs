//! Statuses of workflows and steps, and kinds of durable calls, as stored
//! in the `status` and `kind` columns.

use sea_orm::DbErr;
use serde::{Deserialize, Serialize};

/// What kind of durable call a step is.
///
/// ```
/// assert_eq!(durable::StepKind::Transaction.as_str(), "TRANSACTION");
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum StepKind {
    /// A child workflow (`ctx.child`).
    Workflow,
    /// A step (`ctx.step`, `ctx.step_with_retry`).
    Step,
    /// A transaction step (`ctx.transaction`).
    Transaction,
    /// A call that suspends the workflow until a time or an event.
    Wait,
    /// A durable sleep (`ctx.sleep`, `ctx.sleep_until`).
    Sleep,
    /// Waiting for a message (`ctx.recv`).
    Recv,
    /// A message sent from a workflow (`ctx.send`).
    Send,
    /// A value published under a key (`ctx.set_event`).
    Event,
    /// An item written to, or the close of, a stream (`ctx.write_stream`,
    /// `ctx.close_stream`).
    Stream,
    /// A child workflow started without waiting for it (`ctx.spawn`).
    Spawn,
    /// Waiting for a spawned child to finish (`join`).
    Join,
    /// Waiting for the first of several spawned children (`ctx.select`).
    Select,
    /// The marker of a code change (`ctx.patched`): runs that record it
    /// take the new path.
    Patch,
}

impl StepKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Workflow => "WORKFLOW",
            StepKind::Step => "STEP",
            StepKind::Transaction => "TRANSACTION",
            StepKind::Wait => "WAIT",
            StepKind::Sleep => "SLEEP",
            StepKind::Recv => "RECV",
            StepKind::Send => "SEND",
            StepKind::Event => "EVENT",
            StepKind::Stream => "STREAM",
            StepKind::Spawn => "SPAWN",
            StepKind::Join => "JOIN",
            StepKind::Select => "SELECT",
            StepKind::Patch => "PATCH",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, DbErr> {
        match s {
            "WORKFLOW" => Ok(StepKind::Workflow),
            "STEP" => Ok(StepKind::Step),
            "TRANSACTION" => Ok(StepKind::Transaction),
            "WAIT" => Ok(StepKind::Wait),
            "SLEEP" => Ok(StepKind::Sleep),
            "RECV" => Ok(StepKind::Recv),
            "SEND" => Ok(StepKind::Send),
            "EVENT" => Ok(StepKind::Event),
            "STREAM" => Ok(StepKind::Stream),
            "SPAWN" => Ok(StepKind::Spawn),
            "JOIN" => Ok(StepKind::Join),
            "SELECT" => Ok(StepKind::Select),
            "PATCH" => Ok(StepKind::Patch),
            other => Err(DbErr::Type(format!("unknown step kind {other:?}"))),
        }
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle state of a workflow or step.
///
/// ```
/// assert!(durable::Status::Completed.is_terminal());
/// assert_eq!(durable::Status::Paused.as_str(), "PAUSED");
/// assert_eq!(serde_json::to_string(&durable::Status::Running).unwrap(), "\"RUNNING\"");
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Created or enqueued, not running (or released by its executor, or
    /// suspended until a time or an event).
    Pending,
    /// Owned by an executor that is running it.
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with an error.
    Failed,
    /// Paused by a management call; resumes with `Client::resume`.
    Paused,
    /// Cancelled by a management call; terminal.
    Cancelled,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Status {
    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
            Status::Paused => "PAUSED",
            Status::Cancelled => "CANCELLED",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, DbErr> {
        match s {
            "PENDING" => Ok(Status::Pending),
            "RUNNING" => Ok(Status::Running),
            "COMPLETED" => Ok(Status::Completed),
            "FAILED" => Ok(Status::Failed),
            "PAUSED" => Ok(Status::Paused),
            "CANCELLED" => Ok(Status::Cancelled),
            other => Err(DbErr::Type(format!("unknown status {other:?}"))),
        }
    }

    /// Completed, failed or cancelled: nothing will change it again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}
