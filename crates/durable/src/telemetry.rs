//! What the engine reports about itself: the names of its metrics, in one
//! place, recorded through the `metrics` facade (nothing is kept unless the
//! application installs a recorder, e.g. `metrics-exporter-prometheus`;
//! `durable serve` does), and the spans it opens (`tracing`; exported to
//! OpenTelemetry by a `tracing-opentelemetry` layer if the application
//! adds one).
//!
//! | metric | kind | labels | counts |
//! | --- | --- | --- | --- |
//! | `durable_steps_total` | counter | `kind`, `outcome` (`completed`, `failed`) | durable calls that ran and were recorded (not replays) |
//! | `durable_steps_replayed_total` | counter | | calls answered from the history |
//! | `durable_step_retries_total` | counter | | failed attempts of `step_with_retry` that will be tried again |
//! | `durable_workflows_finished_total` | counter | `status` | workflows this process completed or failed |
//! | `durable_workflows_claimed_total` | counter | `queue` | workflows a worker claimed (`inline` for inline roots of dead executors) |
//! | `durable_claim_lag_seconds` | histogram | `queue` | from when a workflow became due (created, or its delay ran out) to its first claim, by this process's clock |
//! | `durable_recoveries_total` | counter | | workflows released by `Executor::recover` from executors that died (takeovers by a worker's claim show in each workflow's `recoveries`) |
//! | `durable_lease_losses_total` | counter | | times this process found its lease lapsed, or a write fenced by a newer owner |
//!
//! Spans: `workflow.run` (a registered workflow's run, with `workflow.id`,
//! `workflow.name`, `workflow.key`; the function's task runs inside it),
//! `workflow.start` and `workflow.child` (inline), `step` (every step,
//! retry step and transaction step, with `workflow.id`, `step.name`),
//! `worker` (a worker's loop, with `executor`), `claim` (one round of
//! claims, with the number claimed) and `recovery` (`Executor::recover`).

use std::time::Duration;

use crate::status::{Status, StepKind};

/// A durable call ran and was recorded.
pub(crate) fn step_recorded(kind: StepKind, status: Status) {
    let outcome = if status == Status::Completed {
        "completed"
    } else {
        "failed"
    };
    metrics::counter!("durable_steps_total", "kind" => kind.as_str(), "outcome" => outcome)
        .increment(1);
}

/// A durable call was answered from the history.
pub(crate) fn step_replayed() {
    metrics::counter!("durable_steps_replayed_total").increment(1);
}

/// A failed attempt will be tried again.
pub(crate) fn step_retried() {
    metrics::counter!("durable_step_retries_total").increment(1);
}

/// This process finished a workflow.
pub(crate) fn workflow_finished(status: Status) {
    metrics::counter!("durable_workflows_finished_total", "status" => status.as_str()).increment(1);
}

/// A worker claimed a workflow; on its first claim, one that had been due
/// for `lag`.
pub(crate) fn claimed(queue: Option<&str>, lag: Option<Duration>) {
    let queue = queue.unwrap_or("inline").to_string();
    metrics::counter!("durable_workflows_claimed_total", "queue" => queue.clone()).increment(1);
    if let Some(lag) = lag {
        metrics::histogram!("durable_claim_lag_seconds", "queue" => queue)
            .record(lag.as_secs_f64());
    }
}

/// Workflows released from executors that died.
pub(crate) fn recovered(n: usize) {
    if n > 0 {
        metrics::counter!("durable_recoveries_total").increment(n as u64);
    }
}

/// The lease was found lapsed, or a write was fenced by a newer owner.
pub(crate) fn lease_lost() {
    metrics::counter!("durable_lease_losses_total").increment(1);
}
