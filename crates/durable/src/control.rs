//! Management calls: pause, resume and cancel a workflow and its whole
//! subtree, with the seed's transitions, each in one short transaction.

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::ctx::Ctx;
use crate::error::DurableError;
use crate::status::Status;
use crate::step::{begin_write, retry_transient};
use crate::store::{self, Cascade};

impl Ctx {
    /// Pause a workflow by id, and every PENDING or RUNNING descendant.
    ///
    /// Once this returns, no new step of the subtree starts in any process
    /// (a step already running finishes and is saved). Only PENDING or
    /// RUNNING workflows can be paused.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id;
    /// [`DurableError::InvalidTransition`] from any other status.
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// durable::Ctx::pause(&db, id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause(db: &DatabaseConnection, task_id: Uuid) -> Result<(), DurableError> {
        manage(db, task_id, Cascade::Pause).await
    }

    /// Resume a paused workflow by id: it becomes RUNNING again and its
    /// paused descendants PENDING, ready to go on.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id;
    /// [`DurableError::InvalidTransition`] unless it is PAUSED.
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// durable::Ctx::resume(&db, id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume(db: &DatabaseConnection, task_id: Uuid) -> Result<(), DurableError> {
        manage(db, task_id, Cascade::Resume).await
    }

    /// Cancel a workflow by id, and every unfinished descendant.
    ///
    /// Cancellation is terminal: a cancelled workflow cannot be resumed.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id;
    /// [`DurableError::InvalidTransition`] if it already finished
    /// (COMPLETED, FAILED or CANCELLED).
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// durable::Ctx::cancel(&db, id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn cancel(db: &DatabaseConnection, task_id: Uuid) -> Result<(), DurableError> {
        manage(db, task_id, Cascade::Cancel).await
    }
}

/// Lock the target row, check the transition, cascade, commit: one
/// transaction, retried whole on a transient failure (e.g. a deadlock
/// between two cascades over one tree).
async fn manage(
    db: &DatabaseConnection,
    task_id: Uuid,
    which: Cascade,
) -> Result<(), DurableError> {
    retry_transient(|| async {
        let txn = begin_write(db).await?;
        let status = store::lock_status(&txn, task_id)
            .await?
            .ok_or(DurableError::NotFound(task_id))?;
        let (allowed, action) = match which {
            Cascade::Pause => (matches!(status, Status::Pending | Status::Running), "pause"),
            Cascade::Resume => (status == Status::Paused, "resume"),
            Cascade::Cancel => (!status.is_terminal(), "cancel"),
        };
        if !allowed {
            return Err(DurableError::InvalidTransition {
                task: task_id,
                status: status.as_str().to_string(),
                action,
            });
        }
        let changed = store::cascade(&txn, task_id, which).await?;
        txn.commit().await?;
        tracing::info!(%task_id, action, changed, "workflow {action}d");
        Ok(())
    })
    .await
}
