//! Steps: `step`, `step_with_retry` and `transaction`.
//!
//! A fresh step costs one read and one write, both autocommitted: the read
//! (the store's `check`) proves the workflow and its ancestors may start
//! work, the deadline has not passed and our lease holds; the write (the
//! store's `commit`) records the result, fenced by the lease. A root's
//! step that starts soon after the previous checkpoint skips the read:
//! that checkpoint saw the workflow's state (`call::window`). No
//! transaction or lock is held while user code runs, except in
//! `transaction`, whose point that is. A replayed step costs nothing: its
//! entry came with the history.

use std::future::Future;
use std::pin::Pin;

use sea_orm::DatabaseTransaction;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Ctx;
use crate::call::{Call, Prepared, Run};
use crate::codec;
use crate::error::{DurableError, is_connection_lost};
use crate::faults::{self, Point};
use crate::retry::RetryPolicy;
use crate::status::{Status, StepKind};
use crate::store::Entry;
use crate::store::sql::within;

/// How many times a transaction step checks again when its transaction
/// keeps opening after the proven lease.
const STALE_OPENS: usize = 3;

impl Ctx {
    /// Run a step. If already completed, returns the saved output without
    /// calling `f`; if it failed before, returns the saved error. Otherwise
    /// runs `f`, saves the result, and returns it.
    ///
    /// No retries; use [`Ctx::step_with_retry`] for those. A failure is
    /// recorded (and replayed) unless it is transient or says the workflow
    /// may not go on (paused, cancelled, timed out, lease lost).
    ///
    /// Every call takes the next identity (`name#n`) even when it is
    /// refused, so after `Paused`, `Cancelled`, `Timeout` or `LeaseLost`
    /// this `Ctx` is spent: return the error, and resume the workflow with a
    /// new [`Ctx::start`], as a re-run of the program does.
    ///
    /// # Errors
    /// The closure's error; [`DurableError::StepFailed`] when replaying a
    /// recorded failure; [`DurableError::Paused`], [`DurableError::Cancelled`],
    /// [`DurableError::Timeout`] (the closure was not called);
    /// [`DurableError::InvalidInput`] if the output does not survive a JSON
    /// round trip; [`DurableError::NonDeterminism`] if the history differs.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let count: u32 = ctx.step("fetch_count", || async { Ok(7) }).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "step", skip_all, fields(workflow.id = %self.id, step.name = name))]
    pub async fn step<T, F, Fut>(&self, name: &str, f: F) -> Result<T, DurableError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, DurableError>>,
    {
        let call = self.take(name, StepKind::Step)?;
        let run = match self.prepare_first(&call).await? {
            Prepared::Replay(entry) => return self.replay(&call, entry),
            Prepared::Run(run) => run,
        };
        let result = f().await;
        faults::reach(Point::StepRan);
        self.settle(&call, result, &run, 0).await
    }

    /// Run a step with a retry policy.
    ///
    /// The closure may be called several times (hence `Fn`). The retry count
    /// is saved after each failed attempt, so a crash in the middle of
    /// retries goes on counting where it stopped. When retries are exhausted
    /// the step is FAILED, and a replay returns the same error without
    /// calling the closure. An error made with [`DurableError::permanent`]
    /// is not retried.
    ///
    /// # Errors
    /// As [`Ctx::step`].
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// use durable::RetryPolicy;
    /// use std::time::Duration;
    ///
    /// let body: String = ctx
    ///     .step_with_retry("call_api", RetryPolicy::exponential(3, Duration::from_secs(1)), || async {
    ///         Ok("ok".to_string())
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "step", skip_all, fields(workflow.id = %self.id, step.name = name))]
    pub async fn step_with_retry<T, F, Fut>(
        &self,
        name: &str,
        policy: RetryPolicy,
        f: F,
    ) -> Result<T, DurableError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, DurableError>>,
    {
        let call = self.take(name, StepKind::Step)?;
        let max_retries = i32::try_from(policy.max_retries).unwrap_or(i32::MAX);
        let mut first = true;
        loop {
            // After a failed attempt the entry holds its count: read it.
            let prepared = if std::mem::take(&mut first) {
                self.prepare_first(&call).await?
            } else {
                self.prepare(&call).await?
            };
            let run = match prepared {
                Prepared::Replay(entry) => return self.replay(&call, entry),
                Prepared::Run(run) => run,
            };
            let retry_count = run.entry.as_ref().map_or(0, |e| e.retry_count);
            let error = match f().await {
                Ok(value) => return self.settle(&call, Ok(value), &run, max_retries).await,
                Err(error) => error,
            };
            if retry_count >= max_retries || !records_failure(&error) || error.is_permanent() {
                return self.settle(&call, Err(error), &run, max_retries).await;
            }
            let retry = retry_count + 1;
            tracing::debug!(workflow.id = %self.id, step = %call.key, retry, error = %error, "step failed; will retry");
            let mut cp = self.checkpoint(
                &call,
                Status::Pending,
                None,
                Some(codec::error_text(&error)),
                run.started_ms,
            )?;
            cp.retry_count = retry;
            cp.max_retries = max_retries;
            if let Some(entry) = self.commit(&call, &cp).await? {
                return self.replay(&call, entry);
            }
            crate::telemetry::step_retried();
            let wait = policy.backoff(u32::try_from(retry).unwrap_or(u32::MAX));
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Run a database-only step inside one transaction: the user's writes
    /// and the checkpoint commit together, or neither does.
    ///
    /// If the closure returns an error, its writes are rolled back and the
    /// failure is recorded (outside the transaction), as for [`Ctx::step`].
    /// On replay the closure is not called.
    ///
    /// # Errors
    /// As [`Ctx::step`], and [`DurableError::Db`] if the transaction fails
    /// to commit.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// use sea_orm::{ConnectionTrait, Statement};
    ///
    /// let inserted: u64 = ctx
    ///     .transaction("upsert_batch", |tx| {
    ///         Box::pin(async move {
    ///             let stmt = Statement::from_sql_and_values(
    ///                 tx.get_database_backend(),
    ///                 "INSERT INTO docs (id, body) VALUES ($1, $2)",
    ///                 [1.into(), "hello".into()],
    ///             );
    ///             Ok(tx.execute_raw(stmt).await?.rows_affected())
    ///         })
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "step", skip_all, fields(workflow.id = %self.id, step.name = name))]
    pub async fn transaction<T, F>(&self, name: &str, f: F) -> Result<T, DurableError>
    where
        T: Serialize + DeserializeOwned + Send,
        F: for<'tx> FnOnce(
                &'tx DatabaseTransaction,
            )
                -> Pin<Box<dyn Future<Output = Result<T, DurableError>> + Send + 'tx>>
            + Send,
    {
        let call = self.take(name, StepKind::Transaction)?;
        let (run, tx) = match self.open_transaction(&call).await? {
            Ok(opened) => opened,
            Err(entry) => return self.replay(&call, entry),
        };
        let value = match f(&tx).await {
            Ok(value) => value,
            Err(error) => {
                within(self.executor.statement_deadline(), tx.rollback()).await?;
                return self.settle(&call, Err(error), &run, 0).await;
            }
        };
        let output = match codec::encode_output(&call.key, &value) {
            Ok(output) => output,
            Err(error) => {
                within(self.executor.statement_deadline(), tx.rollback()).await?;
                return self.settle::<T>(&call, Err(error), &run, 0).await;
            }
        };
        let cp = self.checkpoint(&call, Status::Completed, Some(output), None, run.started_ms)?;
        if !self.store.commit_in(&tx, &cp).await? {
            within(self.executor.statement_deadline(), tx.rollback()).await?;
            let entry = self.refused(&call).await?;
            return self.replay(&call, entry);
        }
        faults::reach(Point::StepRan);
        match within(self.executor.statement_deadline(), tx.commit()).await {
            Ok(()) => {
                faults::reach(Point::StepCommitted);
                crate::telemetry::step_recorded(call.kind, Status::Completed);
                tracing::debug!(workflow.id = %self.id, step = %call.key, "transaction step committed");
                Ok(value)
            }
            // The COMMIT may or may not have happened: the entry says which.
            Err(err) if is_connection_lost(&err) => {
                match self.store.entry(self.id, call.position).await? {
                    Some(entry) if entry.status == Status::Completed && entry.key == call.key => {
                        crate::telemetry::step_recorded(call.kind, Status::Completed);
                        Ok(value)
                    }
                    _ => Err(err.into()),
                }
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Check the call, then open its transaction; if opening took so long
    /// that the check may be stale (the lease was not proven throughout),
    /// give the transaction back and check again, a few times at most.
    /// `Err(entry)`: the call's result is recorded, to replay.
    async fn open_transaction(
        &self,
        call: &Call,
    ) -> Result<Result<(Run, DatabaseTransaction), Entry>, DurableError> {
        for _ in 0..STALE_OPENS {
            // Always the read: opening the transaction may take longer
            // than the start window lasts.
            let run = match self.prepare(call).await? {
                Prepared::Replay(entry) => return Ok(Err(entry)),
                Prepared::Run(run) => run,
            };
            let opening = tokio::time::Instant::now();
            let tx = self
                .store
                .begin_user_transaction(self.executor.lease_ms())
                .await?;
            let waited = opening.elapsed();
            if waited > std::time::Duration::from_millis(500) {
                tracing::debug!(
                    workflow.id = %self.id,
                    step = %call.key,
                    ?waited,
                    still_under_lease = self.still_under_lease(&run),
                    "slow transaction open"
                );
            }
            if self.still_under_lease(&run) {
                return Ok(Ok((run, tx)));
            }
            tracing::debug!(workflow.id = %self.id, step = %call.key, "transaction opened after the proven lease; checking again");
            within(self.executor.statement_deadline(), tx.rollback()).await?;
        }
        Err(DurableError::Interrupted(format!(
            "executor {} could not open the transaction of step '{}' of workflow {} within its proven lease",
            self.executor.id, call.key, self.id
        )))
    }

    /// Return a recorded result: the saved output, or the saved error.
    pub(crate) fn replay<T: DeserializeOwned>(
        &self,
        call: &Call,
        entry: Entry,
    ) -> Result<T, DurableError> {
        tracing::debug!(workflow.id = %self.id, step = %call.key, "replaying");
        crate::telemetry::step_replayed();
        match (entry.status, entry.output) {
            (Status::Completed, Some(text)) => codec::decode_output(&call.key, &text),
            _ => Err(DurableError::StepFailed {
                step: call.key.clone(),
                message: entry.error.unwrap_or_default(),
            }),
        }
    }

    /// Record what the closure returned and hand it back.
    pub(super) async fn settle<T: Serialize + DeserializeOwned>(
        &self,
        call: &Call,
        result: Result<T, DurableError>,
        run: &Run,
        max_retries: i32,
    ) -> Result<T, DurableError> {
        let (status, output, error, outcome) = match result {
            Ok(value) => match codec::encode_output(&call.key, &value) {
                Ok(text) => (Status::Completed, Some(text), None, Ok(value)),
                Err(err) => (
                    Status::Failed,
                    None,
                    Some(codec::error_text(&err)),
                    Err(err),
                ),
            },
            Err(err) if !records_failure(&err) => return Err(err),
            Err(err) => (
                Status::Failed,
                None,
                Some(codec::error_text(&err)),
                Err(err),
            ),
        };
        let mut cp = self.checkpoint(call, status, output, error, run.started_ms)?;
        cp.retry_count = run.entry.as_ref().map_or(0, |e| e.retry_count);
        cp.max_retries = max_retries;
        if let Some(entry) = self.commit(call, &cp).await? {
            return self.replay(call, entry);
        }
        faults::reach(Point::StepCommitted);
        crate::telemetry::step_recorded(call.kind, status);
        tracing::debug!(workflow.id = %self.id, step = %call.key, status = status.as_str(), "step recorded");
        outcome
    }
}

/// Whether a step's error is its result (recorded and replayed), or a
/// condition of the run that a later run may not meet (not recorded).
fn records_failure(error: &DurableError) -> bool {
    !(error.is_transient()
        || matches!(
            error,
            DurableError::Paused(_)
                | DurableError::Cancelled(_)
                | DurableError::Timeout(_)
                | DurableError::LeaseLost { .. }
                | DurableError::StepLocked(_)
                | DurableError::Interrupted(_)
                | DurableError::Suspended { .. }
        ))
}
