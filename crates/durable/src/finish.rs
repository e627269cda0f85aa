//! Finishing a workflow: complete or fail, fenced by the lease it was
//! claimed with, idempotent when it already finished the same way.

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::codec;
use crate::error::DurableError;
use crate::status::Status;
use crate::store::{self, TaskRow};

/// Finishes a workflow (complete or fail), fenced by the lease it was
/// claimed with; a no-op when it already finished the same way.
pub(crate) struct Finisher {
    pub(crate) db: DatabaseConnection,
    pub(crate) task_id: Uuid,
    pub(crate) owner: Uuid,
    pub(crate) lease_epoch: Option<i64>,
    pub(crate) found: TaskRow,
}

impl Finisher {
    /// Give the workflow up so another executor (or a later run) takes it.
    pub(crate) async fn release(&self) -> Result<(), DurableError> {
        if let Some(epoch) = self.lease_epoch {
            store::release_one(&self.db, self.task_id, self.owner, epoch).await?;
        }
        Ok(())
    }

    pub(crate) async fn finish(
        &self,
        status: Status,
        output: Option<String>,
        error: Option<String>,
    ) -> Result<(), DurableError> {
        if let Some(epoch) = self.lease_epoch {
            let written = crate::step::retry_transient(|| {
                store::finish_workflow(
                    &self.db,
                    self.task_id,
                    status,
                    output.clone(),
                    error.clone(),
                    self.owner,
                    epoch,
                )
            })
            .await?;
            if written {
                tracing::debug!(workflow.id = %self.task_id, status = status.as_str(), "workflow finished");
                return Ok(());
            }
        }
        let row = if self.lease_epoch.is_none() {
            self.found.clone()
        } else {
            store::task_by_id(&self.db, self.task_id)
                .await?
                .ok_or(DurableError::NotFound(self.task_id))?
        };
        let same = match status {
            Status::Completed => codec::same_json(row.output.as_deref(), output.as_deref()),
            _ => row.error == error,
        };
        match row.status {
            s if s == status && same => Ok(()),
            Status::Completed if status == Status::Completed => Err(DurableError::OutputConflict {
                workflow: self.task_id,
            }),
            Status::Paused => Err(DurableError::Paused(format!(
                "workflow {} is paused",
                self.task_id
            ))),
            Status::Cancelled => Err(DurableError::Cancelled(format!(
                "workflow {} is cancelled",
                self.task_id
            ))),
            Status::Pending | Status::Running => Err(DurableError::LeaseLost {
                workflow: self.task_id,
            }),
            other => Err(DurableError::InvalidTransition {
                task: self.task_id,
                status: other.as_str().to_string(),
                action: if status == Status::Completed {
                    "complete"
                } else {
                    "fail"
                },
            }),
        }
    }
}
