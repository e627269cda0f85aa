//! Steps: `step`, `step_with_retry` and `transaction`.
//!
//! A fresh step costs one read and one write, both autocommitted: the read
//! (`step_check`) proves the workflow and its ancestors may start work, the
//! deadline has not passed and our lease holds; the write (`commit_step`)
//! records the result, fenced by the lease. No transaction or lock is held
//! while user code runs, except in `transaction`, whose point that is. A
//! replayed step costs nothing: its record came with the history.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sea_orm::{DatabaseTransaction, DbBackend, DbErr, TransactionTrait};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::ctx::{Call, Ctx};
use crate::error::{DurableError, is_connection_lost, is_transient_db};
use crate::history::AtPosition;
use crate::retry::RetryPolicy;
use crate::status::{Kind, Status};
use crate::store::{self, Checkpoint, StepRecord};

/// Attempts of an autocommitted SDK statement that fails transiently.
const TRANSIENT_ATTEMPTS: u32 = 5;

/// What the read before a fresh step decided.
pub(crate) enum Checked {
    /// Run the step; `started_ms` is the database clock now.
    Run { started_ms: i64, retry_count: i32 },
    /// A finished record appeared since history was loaded (another handle
    /// of this workflow in this process, or an earlier owner): use it.
    Recorded(StepRecord),
}

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
    pub async fn step<T, F, Fut>(&self, name: &str, f: F) -> Result<T, DurableError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, DurableError>>,
    {
        let call = self.begin_call(name, Kind::Step)?;
        let started_ms = match self.prepare(&call).await? {
            Checked::Recorded(record) => return self.replay(&call, record),
            Checked::Run { started_ms, .. } => started_ms,
        };
        let result = f().await;
        self.settle(&call, result, started_ms, 0, 0).await
    }

    /// Run a step with a retry policy.
    ///
    /// The closure may be called several times (hence `Fn`). The retry count
    /// is saved after each failed attempt, so a crash in the middle of
    /// retries goes on counting where it stopped. When retries are exhausted
    /// the step is FAILED, and a replay returns the same error without
    /// calling the closure.
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
        let call = self.begin_call(name, Kind::Step)?;
        let max_retries = i32::try_from(policy.max_retries).unwrap_or(i32::MAX);
        loop {
            let (started_ms, retry_count) = match self.prepare(&call).await? {
                Checked::Recorded(record) => return self.replay(&call, record),
                Checked::Run {
                    started_ms,
                    retry_count,
                } => (started_ms, retry_count),
            };
            let error = match f().await {
                Ok(value) => {
                    return self
                        .settle(&call, Ok(value), started_ms, retry_count, max_retries)
                        .await;
                }
                Err(error) => error,
            };
            if retry_count >= max_retries || !records_failure(&error) {
                return self
                    .settle(&call, Err(error), started_ms, retry_count, max_retries)
                    .await;
            }
            let retry = retry_count + 1;
            tracing::debug!(workflow.id = %self.task_id, step = %call.key, retry, error = %error, "step failed; will retry");
            let pending = self.checkpoint(
                &call,
                Status::Pending,
                None,
                Some(codec::error_text(&error)),
            );
            let cp = Checkpoint {
                retry_count: retry,
                max_retries,
                started_ms,
                ..pending?
            };
            if !retry_transient(|| store::commit_step(&self.db, &cp)).await? {
                return self.rejected(&call).await;
            }
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
    pub async fn transaction<T, F>(&self, name: &str, f: F) -> Result<T, DurableError>
    where
        T: Serialize + DeserializeOwned + Send,
        F: for<'tx> FnOnce(
                &'tx DatabaseTransaction,
            )
                -> Pin<Box<dyn Future<Output = Result<T, DurableError>> + Send + 'tx>>
            + Send,
    {
        let call = self.begin_call(name, Kind::Transaction)?;
        let started_ms = match self.prepare(&call).await? {
            Checked::Recorded(record) => return self.replay(&call, record),
            Checked::Run { started_ms, .. } => started_ms,
        };
        let tx = begin_write(&self.db).await?;
        let value = match f(&tx).await {
            Ok(value) => value,
            Err(error) => {
                tx.rollback().await?;
                return self.settle(&call, Err(error), started_ms, 0, 0).await;
            }
        };
        let output = match codec::encode_output(&call.key, &value) {
            Ok(output) => output,
            Err(error) => {
                tx.rollback().await?;
                return self.settle::<T>(&call, Err(error), started_ms, 0, 0).await;
            }
        };
        let cp = Checkpoint {
            started_ms,
            ..self.checkpoint(&call, Status::Completed, Some(output), None)?
        };
        if !store::commit_step(&tx, &cp).await? {
            tx.rollback().await?;
            return self.rejected(&call).await;
        }
        match tx.commit().await {
            Ok(()) => {
                tracing::debug!(workflow.id = %self.task_id, step = %call.key, "transaction step committed");
                Ok(value)
            }
            // The COMMIT may or may not have happened: the record says which.
            Err(err) if is_connection_lost(&err) => {
                match store::task_by_key(&self.db, self.task_id, &call.key).await? {
                    Some(row) if row.status == Status::Completed => Ok(value),
                    _ => Err(err.into()),
                }
            }
            Err(err) => Err(err.into()),
        }
    }

    // ── The machinery every step kind shares ────────────────────────

    /// Decide whether a call replays or runs: the history first (no round
    /// trip in practice), then the one read.
    pub(crate) async fn prepare(&self, call: &Call) -> Result<Checked, DurableError> {
        match self
            .history
            .take(&self.db, call.position, &call.key)
            .await?
        {
            AtPosition::Same(row) if row.kind != call.kind => return Err(self.mismatch(call, &row)),
            AtPosition::Same(row) if matches!(row.status, Status::Completed | Status::Failed) => {
                return Ok(Checked::Recorded(StepRecord {
                    status: row.status,
                    output: row.output,
                    error: row.error,
                    retry_count: row.retry_count,
                    kind: row.kind,
                }));
            }
            AtPosition::Other(other) => return Err(self.moved(call, &other)),
            AtPosition::Same(_) | AtPosition::Nothing => {}
        }
        self.check_fresh(call).await
    }

    /// The one read before new work: status of the workflow and its
    /// ancestors, deadline, lease, and a record written since we looked.
    pub(crate) async fn check_fresh(&self, call: &Call) -> Result<Checked, DurableError> {
        let epoch = self.owned_epoch(call)?;
        if self.executor.is_draining() {
            return Err(DurableError::Interrupted(format!(
                "executor {} is shutting down; step '{}' of workflow {} did not start",
                self.executor.id, call.key, self.task_id
            )));
        }
        let check = retry_transient(|| {
            store::step_check(
                &self.db,
                self.task_id,
                self.task_id == self.root_id,
                &call.key,
            )
        })
        .await?
        .ok_or(DurableError::NotFound(self.task_id))?;
        if let Some(record) = check.record.clone() {
            if record.kind != call.kind {
                return Err(DurableError::NonDeterminism {
                    workflow: self.task_id,
                    step: call.key.clone(),
                    detail: format!(
                        "recorded as a {} but called as a {}",
                        record.kind.as_str(),
                        call.kind.as_str()
                    ),
                });
            }
            if matches!(record.status, Status::Completed | Status::Failed) {
                return Ok(Checked::Recorded(record));
            }
        }
        match check.blocked {
            Some(Status::Cancelled) => {
                return Err(DurableError::Cancelled(format!(
                    "workflow {} is cancelled; step '{}' did not start",
                    self.task_id, call.key
                )));
            }
            Some(_) => {
                return Err(DurableError::Paused(format!(
                    "workflow {} is paused; step '{}' did not start",
                    self.task_id, call.key
                )));
            }
            None => {}
        }
        if let Some(deadline) = check.deadline_ms
            && check.now_ms > deadline
        {
            return Err(DurableError::Timeout(format!(
                "deadline of workflow {} passed {} ms ago; step '{}' did not start",
                self.task_id,
                check.now_ms - deadline,
                call.key
            )));
        }
        if check.status.is_terminal() {
            return Err(self.finished(call, check.status));
        }
        if check.owner_id != Some(self.executor.id) || check.lease_epoch != epoch {
            return Err(DurableError::LeaseLost {
                workflow: self.task_id,
            });
        }
        Ok(Checked::Run {
            started_ms: check.now_ms,
            retry_count: check.record.map_or(0, |r| r.retry_count),
        })
    }

    /// Return a recorded result: the saved output, or the saved error.
    fn replay<T: DeserializeOwned>(
        &self,
        call: &Call,
        record: StepRecord,
    ) -> Result<T, DurableError> {
        tracing::debug!(workflow.id = %self.task_id, step = %call.key, "replaying");
        match (record.status, record.output) {
            (Status::Completed, Some(text)) => codec::decode_output(&call.key, &text),
            _ => Err(DurableError::StepFailed {
                step: call.key.clone(),
                message: record.error.unwrap_or_default(),
            }),
        }
    }

    /// Record what the closure returned and hand it back.
    async fn settle<T: Serialize + DeserializeOwned>(
        &self,
        call: &Call,
        result: Result<T, DurableError>,
        started_ms: i64,
        retry_count: i32,
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
        let cp = Checkpoint {
            retry_count,
            max_retries,
            started_ms,
            ..self.checkpoint(call, status, output, error)?
        };
        if !retry_transient(|| store::commit_step(&self.db, &cp)).await? {
            return self.rejected(call).await;
        }
        tracing::debug!(workflow.id = %self.task_id, step = %call.key, status = status.as_str(), "step recorded");
        outcome
    }

    fn checkpoint<'a>(
        &self,
        call: &'a Call,
        status: Status,
        output: Option<String>,
        error: Option<String>,
    ) -> Result<Checkpoint<'a>, DurableError> {
        Ok(Checkpoint {
            root: self.root_id,
            parent: self.task_id,
            key: &call.key,
            name: &call.name,
            kind: call.kind,
            status,
            position: call.position,
            output,
            error,
            retry_count: 0,
            max_retries: 0,
            started_ms: 0,
            owner: self.executor.id,
            lease_epoch: self.owned_epoch(call)?,
        })
    }

    /// A checkpoint write was rejected: another writer recorded the step
    /// first (its result stands), or we lost the lease.
    async fn rejected<T: DeserializeOwned>(&self, call: &Call) -> Result<T, DurableError> {
        match store::task_by_key(&self.db, self.task_id, &call.key).await? {
            Some(row) if row.kind != call.kind => Err(self.mismatch(call, &row)),
            Some(row) if matches!(row.status, Status::Completed | Status::Failed) => self.replay(
                call,
                StepRecord {
                    status: row.status,
                    output: row.output,
                    error: row.error,
                    retry_count: row.retry_count,
                    kind: row.kind,
                },
            ),
            _ => Err(DurableError::LeaseLost {
                workflow: self.task_id,
            }),
        }
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
        ))
}

/// Begin a transaction that will write: on SQLite take the write lock up
/// front (`BEGIN IMMEDIATE`) so it cannot fail half-way with `SQLITE_BUSY`.
pub(crate) async fn begin_write(
    db: &sea_orm::DatabaseConnection,
) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            db.begin_with_options(sea_orm::TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        }
        _ => db.begin().await,
    }
}

/// Run one whole autocommitted operation again while it fails transiently
/// (never a statement inside an open transaction: after an error a
/// PostgreSQL transaction is dead). Every operation retried here is
/// idempotent, so a retry after an unknown outcome is safe.
pub(crate) async fn retry_transient<T, E, F, Fut>(mut op: F) -> Result<T, DurableError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<DurableError>,
{
    let mut attempt = 1;
    loop {
        match op().await.map_err(Into::into) {
            Err(DurableError::Db(err)) if attempt < TRANSIENT_ATTEMPTS && is_transient_db(&err) => {
                let wait = Duration::from_millis(50 << attempt);
                tracing::warn!(attempt, error = %err, "transient database error; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}
