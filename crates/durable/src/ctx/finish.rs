//! Finishing a workflow: complete or fail, fenced by its lease, a no-op
//! when it already finished the same way; releasing it; reading its result.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::Ctx;
use crate::codec;
use crate::error::DurableError;
use crate::status::Status;
use crate::store::{Lease, Store, Suspension, WorkflowRow};

/// What it takes to finish a workflow after its `Ctx` was handed to a
/// registered function.
#[derive(Debug, Clone)]
pub(crate) struct Finisher {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) id: Uuid,
    pub(crate) lease: Option<Lease>,
    pub(crate) found: WorkflowRow,
}

impl Finisher {
    /// Give the workflow up so another executor (or a later run) takes it;
    /// with a suspension, not before it is due.
    pub(crate) async fn release(
        &self,
        suspension: Option<&Suspension>,
    ) -> Result<(), DurableError> {
        if let Some(lease) = &self.lease {
            self.store.release(self.id, lease, suspension).await?;
        }
        Ok(())
    }

    pub(crate) async fn finish(
        &self,
        status: Status,
        output: Option<String>,
        error: Option<String>,
    ) -> Result<(), DurableError> {
        if let Some(lease) = &self.lease
            && self
                .store
                .finish(
                    self.id,
                    lease,
                    status,
                    output.clone(),
                    error.clone(),
                    self.found.parent_id.filter(|_| lease.holder == self.id),
                )
                .await?
        {
            crate::telemetry::workflow_finished(status);
            tracing::debug!(workflow.id = %self.id, status = status.as_str(), "workflow finished");
            return Ok(());
        }
        let row = match self.lease {
            None => self.found.clone(),
            Some(_) => self
                .store
                .workflow(self.id)
                .await?
                .ok_or(DurableError::NotFound(self.id))?,
        };
        let same = match status {
            Status::Completed => codec::same_json(row.output.as_deref(), output.as_deref()),
            _ => row.error == error,
        };
        match row.status {
            s if s == status && same => Ok(()),
            Status::Completed if status == Status::Completed => {
                Err(DurableError::OutputConflict { workflow: self.id })
            }
            Status::Paused => Err(DurableError::Paused(format!(
                "workflow {} is paused",
                self.id
            ))),
            Status::Cancelled => Err(DurableError::Cancelled(format!(
                "workflow {} is cancelled",
                self.id
            ))),
            Status::Pending | Status::Running => {
                crate::telemetry::lease_lost();
                Err(DurableError::LeaseLost { workflow: self.id })
            }
            other => Err(DurableError::InvalidTransition {
                task: self.id,
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

impl Ctx {
    /// Check if this workflow was already completed (for skipping in a parent).
    ///
    /// # Errors
    /// [`DurableError::Db`] if the database fails.
    ///
    /// ```no_run
    /// # async fn demo(child: durable::Ctx) -> Result<(), durable::DurableError> {
    /// if child.is_completed().await? {
    ///     println!("already done");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn is_completed(&self) -> Result<bool, DurableError> {
        Ok(self.current_row().await?.status == Status::Completed)
    }

    /// The saved output if this workflow is completed.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] if the output does not deserialize into `T`.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let total: Option<u64> = ctx.get_output().await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_output<T: DeserializeOwned>(&self) -> Result<Option<T>, DurableError> {
        let row = self.current_row().await?;
        match (row.status, row.output) {
            (Status::Completed, Some(text)) => {
                Ok(Some(codec::decode_output(&self.found.name, &text)?))
            }
            _ => Ok(None),
        }
    }

    async fn current_row(&self) -> Result<WorkflowRow, DurableError> {
        self.store
            .workflow(self.id)
            .await?
            .ok_or(DurableError::NotFound(self.id))
    }

    /// Mark this workflow as completed with an output value.
    ///
    /// Completing an already completed workflow with the same output is a
    /// no-op (that is what a re-run does); with a different output it is an
    /// error and the first result stands.
    ///
    /// # Errors
    /// [`DurableError::OutputConflict`], [`DurableError::Paused`],
    /// [`DurableError::Cancelled`], [`DurableError::InvalidTransition`] (it
    /// failed), [`DurableError::LeaseLost`].
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// ctx.complete(&serde_json::json!({"rows": 1200})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn complete<T: Serialize>(&self, output: &T) -> Result<(), DurableError> {
        let text = codec::encode_value("workflow output", output)?;
        self.finish_waiting(Status::Completed, Some(text), None)
            .await
    }

    /// Mark this workflow as failed.
    ///
    /// Failing an already failed workflow with the same message is a no-op.
    ///
    /// # Errors
    /// [`DurableError::InvalidTransition`] if it already finished otherwise;
    /// [`DurableError::LeaseLost`] if another executor owns it now.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// ctx.fail("input file is corrupt").await?;
    /// # Ok(()) }
    /// ```
    pub async fn fail(&self, error: &str) -> Result<(), DurableError> {
        self.finish_waiting(Status::Failed, None, Some(codec::error_text(error)))
            .await
    }

    /// Finish, and if the tree is paused and this workflow waits for a
    /// resume ([`Ctx::wait_when_paused`]), try again until it is resumed
    /// or the wait is over.
    async fn finish_waiting(
        &self,
        status: Status,
        output: Option<String>,
        error: Option<String>,
    ) -> Result<(), DurableError> {
        // A call after this one reads the workflow's state: it may be
        // finished by then.
        let _shut = self.window.shut();
        let waits = self.pause_deadline();
        let mut backoff = super::Backoff::new();
        loop {
            let finished = self
                .finisher()
                .finish(status, output.clone(), error.clone())
                .await;
            match (finished, waits) {
                (Err(DurableError::Paused(_)), Some(until))
                    if tokio::time::Instant::now() < until =>
                {
                    backoff.pause(until).await;
                }
                (done, _) => return done,
            }
        }
    }

    /// Fail a workflow just claimed that was taken over more than `limit`
    /// times from executors that died, instead of running it again.
    ///
    /// # Errors
    /// [`DurableError::MaxRecoveryExceeded`] when it was failed so.
    pub(crate) async fn refuse_if_poisoned(&self, limit: u32) -> Result<(), DurableError> {
        let recoveries = self.found.recoveries;
        if u32::try_from(recoveries).unwrap_or(0) <= limit || self.lease.is_none() {
            return Ok(());
        }
        tracing::warn!(
            workflow.id = %self.id,
            workflow.name = %self.found.name,
            recoveries,
            limit,
            "workflow failed: taken over from dead executors more often than the limit"
        );
        self.finisher()
            .finish(
                Status::Failed,
                None,
                Some(codec::max_recoveries_error(recoveries, limit)),
            )
            .await?;
        Err(DurableError::MaxRecoveryExceeded {
            workflow: self.id,
            recoveries: u32::try_from(recoveries).unwrap_or(0),
        })
    }

    /// What it takes to finish this workflow after the `Ctx` itself was
    /// handed to a registered function.
    pub(crate) fn finisher(&self) -> Finisher {
        Finisher {
            store: self.store.clone(),
            id: self.id,
            lease: self.lease,
            found: self.found.clone(),
        }
    }
}
