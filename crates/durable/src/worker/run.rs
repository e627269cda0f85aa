//! Running one claimed workflow: call its function, record the outcome,
//! survive its panics.

use std::sync::Arc;

use tokio::sync::Notify;

use super::claim::Permits;
use crate::codec;
use crate::ctx::{Ctx, Finisher};
use crate::error::DurableError;
use crate::executor::ExecutorInner;
use crate::registry::Registry;
use crate::status::Status;
use crate::store::{self, TaskRow};

/// Run `row`'s registered function to its end and record the outcome.
pub(super) async fn run_one(
    executor: Arc<ExecutorInner>,
    registry: Arc<Registry>,
    row: TaskRow,
    _permits: Permits,
    wake: Arc<Notify>,
) {
    let queue = row.queue.clone();
    let (id, name) = (row.id, row.name.clone());
    let Some(workflow) = registry.get(&name) else {
        // Claims only select registered names; this is a bug if it happens.
        tracing::error!(workflow.id = %id, workflow.name = %name, "claimed a workflow with no function");
        return;
    };
    let input = row.input.clone();
    let ctx = Ctx::claimed(executor.clone(), row);
    let finisher = ctx.finisher();
    // The function runs in its own task so that a panic is caught here;
    // the guard stops it if this task is stopped at shutdown.
    let task = AbortOnDrop(tokio::spawn(workflow(ctx, input)));
    let result = match (&mut { task }.0).await {
        Ok(result) => result,
        Err(join) => Err(DurableError::WorkflowFailed {
            workflow: id,
            message: panic_message(join),
        }),
    };
    match settle_workflow(&finisher, result).await {
        Ok(()) => tracing::debug!(workflow.id = %id, workflow.name = %name, "workflow finished"),
        Err(err) => tracing::debug!(workflow.id = %id, error = %err, "workflow stopped"),
    }
    if let Some(queue) = queue
        && let Err(err) = store::notify(&executor.db, &queue).await
    {
        tracing::debug!(error = %err, "notify failed");
    }
    wake.notify_one();
}

/// Record what a workflow function returned: its output, or its failure.
/// Conditions of the run (paused, cancelled, lease lost, shutting down)
/// record nothing and come back as errors; a transient error releases the
/// workflow so it is tried again.
pub(crate) async fn settle_workflow(
    finisher: &Finisher,
    result: Result<String, DurableError>,
) -> Result<(), DurableError> {
    match result {
        Ok(output) => finisher.finish(Status::Completed, Some(output), None).await,
        Err(
            err @ (DurableError::Paused(_)
            | DurableError::Cancelled(_)
            | DurableError::LeaseLost { .. }
            | DurableError::StepLocked(_)
            | DurableError::Interrupted(_)),
        ) => Err(err),
        Err(err) if err.is_transient() => {
            finisher.release().await?;
            Err(err)
        }
        Err(err) => {
            let message = match &err {
                DurableError::WorkflowFailed { message, .. } => message.clone(),
                other => other.to_string(),
            };
            finisher
                .finish(Status::Failed, None, Some(codec::error_text(message)))
                .await?;
            Err(err)
        }
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    if !join.is_panic() {
        return "stopped before it finished".to_string();
    }
    let payload = join.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    format!("panicked: {text}")
}

/// Stops the wrapped task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
