//! Statuses of workflows and steps, and kinds of durable calls, as stored
//! in the `status` and `kind` columns.

use sea_orm::DbErr;
use serde::{Deserialize, Serialize};

/// What kind of durable call a step is.
///
/// ```
/// assert_eq!(durable::StepKind::Transaction.as_str(), "TRANSACTION");
/// ```
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
}

impl StepKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Workflow => "WORKFLOW",
            StepKind::Step => "STEP",
            StepKind::Transaction => "TRANSACTION",
            StepKind::Wait => "WAIT",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, DbErr> {
        match s {
            "WORKFLOW" => Ok(StepKind::Workflow),
            "STEP" => Ok(StepKind::Step),
            "TRANSACTION" => Ok(StepKind::Transaction),
            "WAIT" => Ok(StepKind::Wait),
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
