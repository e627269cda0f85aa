//! Task kinds and statuses, as stored in the `kind` and `status` columns.

use sea_orm::DbErr;

/// What a task row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Workflow,
    Step,
    Transaction,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Workflow => "WORKFLOW",
            Kind::Step => "STEP",
            Kind::Transaction => "TRANSACTION",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, DbErr> {
        match s {
            "WORKFLOW" => Ok(Kind::Workflow),
            "STEP" => Ok(Kind::Step),
            "TRANSACTION" => Ok(Kind::Transaction),
            other => Err(DbErr::Type(format!("unknown task kind {other:?}"))),
        }
    }
}

/// Lifecycle state of a workflow or step.
///
/// ```
/// assert!(durable::Status::Completed.is_terminal());
/// assert_eq!(durable::Status::Paused.as_str(), "PAUSED");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created or enqueued, not running (or released by its executor).
    Pending,
    /// Owned by an executor that is running it.
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with an error.
    Failed,
    /// Paused by a management call; resumes with `Ctx::resume`.
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
            other => Err(DbErr::Type(format!("unknown task status {other:?}"))),
        }
    }

    /// Completed, failed or cancelled: nothing will change it again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}
