//! One runner for registered workflows, used by `Client::run` and by
//! `Worker`: the function runs in a task of its own, so a panic is caught
//! and recorded as a failure, and one function ([`outcome`]) decides what
//! every result means for the workflow: record it, release it, suspend it,
//! or leave it alone.

use tracing::Instrument;

use crate::codec;
use crate::ctx::{Ctx, Finisher};
use crate::error::DurableError;
use crate::registry::ErasedWorkflow;
use crate::status::Status;
use crate::store::Suspension;

/// What a workflow function's result means for the workflow.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Completed with this output (JSON text).
    Complete(String),
    /// Failed for good with this message.
    Fail(String),
    /// Waiting: release it until it is due.
    Suspend(Suspension),
    /// Interrupted by something a later run may not meet (a transient
    /// error, a pause, a shutdown): release it so any executor resumes it.
    Release,
    /// Someone else decides now (cancelled, or another executor owns it):
    /// write nothing.
    Stop,
}

/// The one classification of a workflow function's result.
pub(crate) fn outcome(result: &Result<String, DurableError>) -> Outcome {
    match result {
        Ok(output) => Outcome::Complete(output.clone()),
        Err(DurableError::Suspended {
            workflow,
            position,
            wake_at_ms,
            waiting_for,
        }) => Outcome::Suspend(Suspension {
            workflow: *workflow,
            position: *position,
            wake_ms: *wake_at_ms,
            wait_for: waiting_for.clone(),
        }),
        Err(DurableError::Paused(_) | DurableError::Interrupted(_)) => Outcome::Release,
        Err(err) if err.is_transient() => Outcome::Release,
        Err(
            DurableError::Cancelled(_)
            | DurableError::LeaseLost { .. }
            | DurableError::StepLocked(_),
        ) => Outcome::Stop,
        Err(DurableError::WorkflowFailed { message, .. }) => Outcome::Fail(message.clone()),
        Err(other) => Outcome::Fail(other.to_string()),
    }
}

/// Run `ctx`'s registered function to its end and settle the outcome.
/// Returns the function's error (after recording it) if it did not complete.
pub(crate) async fn run(workflow: ErasedWorkflow, mut ctx: Ctx) -> Result<(), DurableError> {
    ctx.suspendable = true;
    let finisher = ctx.finisher();
    let input = ctx.found.input.clone();
    let id = ctx.id;
    // A trace of its own: not a child of the worker's long-lived span,
    // which ends only at shutdown (an exporter would hold the run's
    // trace open until then).
    let span = tracing::info_span!(
        parent: None,
        "workflow.run",
        workflow.id = %id,
        workflow.name = %ctx.found.name,
        workflow.key = %ctx.found.key,
        attempt = ctx.found.attempts
    );
    // The function runs in its own task so that a panic is caught here;
    // the guard stops it if this future is dropped (at shutdown). The
    // task carries the run's span, so its steps nest under it.
    let task = AbortOnDrop(tokio::spawn(workflow(ctx, input).instrument(span.clone())));
    let result = match (&mut { task }.0).await {
        Ok(result) => result,
        Err(join) => Err(DurableError::WorkflowFailed {
            workflow: id,
            message: panic_message(join),
        }),
    };
    settle(&finisher, result).instrument(span).await
}

/// Write what the outcome means, then hand the function's error back.
pub(crate) async fn settle(
    finisher: &Finisher,
    result: Result<String, DurableError>,
) -> Result<(), DurableError> {
    match outcome(&result) {
        Outcome::Complete(output) => {
            return finisher.finish(Status::Completed, Some(output), None).await;
        }
        Outcome::Fail(message) => {
            finisher
                .finish(Status::Failed, None, Some(codec::error_text(message)))
                .await?;
        }
        Outcome::Suspend(suspension) => finisher.release(Some(&suspension)).await?,
        Outcome::Release => finisher.release(None).await?,
        Outcome::Stop => {}
    }
    result.map(|_| ())
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

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn every_result_has_one_meaning() {
        assert_eq!(outcome(&Ok("1".into())), Outcome::Complete("1".into()));
        assert_eq!(
            outcome(&Err(DurableError::custom("boom"))),
            Outcome::Fail("boom".into())
        );
        assert_eq!(
            outcome(&Err(DurableError::permanent("bad card"))),
            Outcome::Fail("permanent error: bad card".into())
        );
        let panicked = DurableError::WorkflowFailed {
            workflow: Uuid::nil(),
            message: "panicked: oops".into(),
        };
        assert_eq!(
            outcome(&Err(panicked)),
            Outcome::Fail("panicked: oops".into())
        );
        assert_eq!(
            outcome(&Err(DurableError::Paused("p".into()))),
            Outcome::Release
        );
        assert_eq!(
            outcome(&Err(DurableError::Interrupted("shutdown".into()))),
            Outcome::Release
        );
        assert_eq!(
            outcome(&Err(DurableError::Cancelled("c".into()))),
            Outcome::Stop
        );
        assert_eq!(
            outcome(&Err(DurableError::LeaseLost {
                workflow: Uuid::nil()
            })),
            Outcome::Stop
        );
        let busy = DurableError::Db(sea_orm::DbErr::ConnectionAcquire(
            sea_orm::ConnAcquireErr::Timeout,
        ));
        assert_eq!(outcome(&Err(busy)), Outcome::Release);
        let suspended = DurableError::Suspended {
            workflow: Uuid::nil(),
            position: 4,
            wake_at_ms: Some(99),
            waiting_for: Some("approval".into()),
        };
        assert_eq!(
            outcome(&Err(suspended)),
            Outcome::Suspend(Suspension {
                workflow: Uuid::nil(),
                position: 4,
                wake_ms: Some(99),
                wait_for: Some("approval".into()),
            })
        );
    }
}
