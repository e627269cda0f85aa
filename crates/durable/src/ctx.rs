//! `Ctx`: the handle a workflow runs with. Starting, children, completion,
//! timeouts and accessors live here; steps in `step.rs`, management calls
//! (pause, resume, cancel) in `control.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use sea_orm::DatabaseConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::codec;
use crate::error::DurableError;
use crate::executor::ExecutorInner;
pub(crate) use crate::finish::Finisher;
use crate::history::{AtPosition, History};
use crate::status::{Kind, Status};
use crate::step::Checked;

use crate::store::{self, NewChild, NewRoot, TaskRow};

/// Longest accepted timeout: 100 years (keeps `now + timeout` far from overflow).
pub(crate) const MAX_TIMEOUT_MS: i64 = 100 * 366 * 24 * 3600 * 1000;

/// Context threaded through every workflow and step.
///
/// A `Ctx` is a running (or finished, replaying) workflow: a root started
/// with [`Ctx::start`] or a child from [`Ctx::child`]. Each step checkpoints
/// its result; when the program runs again, completed steps return their
/// saved output without running. The n-th call of a step name in a workflow
/// is identified as `name#n`, so loops and `join_all` of one step name get a
/// checkpoint each.
///
/// ```no_run
/// # async fn demo() -> Result<(), durable::DurableError> {
/// use durable::Ctx;
/// use serde_json::json;
///
/// let db = durable::connect("sqlite://app.db").await?;
/// durable::init(&db).await?;
/// let ctx = Ctx::start(&db, "ingest", Some(json!({"crawl": "CC-2026"}))).await?;
/// let pages: u32 = ctx.step("fetch", || async { Ok(42) }).await?;
/// ctx.complete(&pages).await?;
/// # Ok(()) }
/// ```
pub struct Ctx {
    pub(crate) db: DatabaseConnection,
    pub(crate) task_id: Uuid,
    pub(crate) root_id: Uuid,
    pub(crate) executor: Arc<ExecutorInner>,
    /// Fencing epoch of our lease; `None` when the workflow was already
    /// finished at start (pure replay: nothing may be written).
    pub(crate) lease_epoch: Option<i64>,
    /// Status and output as found when this handle was made.
    pub(crate) found: TaskRow,
    pub(crate) history: History,
    sequence: AtomicI32,
    calls_by_name: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("task_id", &self.task_id)
            .field("name", &self.found.name)
            .field("executor", &self.executor.id)
            .field("lease_epoch", &self.lease_epoch)
            .finish()
    }
}

/// Identity of one call inside a workflow.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) name: String,
    /// `name#n`: the n-th call of this name in the workflow.
    pub(crate) key: String,
    pub(crate) position: i32,
    pub(crate) kind: Kind,
}

impl Ctx {
    // ── Workflow lifecycle ──────────────────────────────────────────

    /// Start or resume the root workflow `name` (its key is its name).
    ///
    /// Finds the workflow if it exists (ignoring `input`) or creates it,
    /// claims it for this process; its history is read as it replays, a
    /// page of records per query. Use
    /// [`Ctx::start_with_key`] to run the same workflow name more than once.
    ///
    /// # Errors
    /// [`DurableError::StepLocked`] if another live process owns the
    /// workflow; [`DurableError::InvalidInput`] for a bad name or input;
    /// [`DurableError::Db`] if the database fails.
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
    /// let ctx = durable::Ctx::start(&db, "ingest", Some(serde_json::json!({"crawl": "CC-2026"}))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(
        db: &DatabaseConnection,
        name: &str,
        input: Option<Json>,
    ) -> Result<Self, DurableError> {
        Self::start_with_key(db, name, name, input).await
    }

    /// Start or resume the root workflow identified by `key` (an
    /// idempotency key such as an order id), running workflow `name`.
    ///
    /// # Errors
    /// As [`Ctx::start`], and [`DurableError::InvalidInput`] if `key`
    /// already names a workflow with another name.
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
    /// let ctx = durable::Ctx::start_with_key(&db, "charge", "order-42", None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_with_key(
        db: &DatabaseConnection,
        name: &str,
        key: &str,
        input: Option<Json>,
    ) -> Result<Self, DurableError> {
        Self::start_on(ExecutorInner::process_default(db), name, key, input).await
    }

    /// Start or resume a root workflow with a timeout in milliseconds:
    /// [`Ctx::start`] followed by [`Ctx::set_timeout`].
    ///
    /// # Errors
    /// As [`Ctx::start`] and [`Ctx::set_timeout`].
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
    /// let ctx = durable::Ctx::start_with_timeout(&db, "report", None, 60_000).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_with_timeout(
        db: &DatabaseConnection,
        name: &str,
        input: Option<Json>,
        timeout_ms: i64,
    ) -> Result<Self, DurableError> {
        let ctx = Self::start(db, name, input).await?;
        ctx.set_timeout(timeout_ms).await?;
        Ok(ctx)
    }

    #[tracing::instrument(name = "workflow.start", skip_all, fields(workflow.name = name, workflow.key = key))]
    pub(crate) async fn start_on(
        executor: Arc<ExecutorInner>,
        name: &str,
        key: &str,
        input: Option<Json>,
    ) -> Result<Self, DurableError> {
        codec::check_name("workflow", name)?;
        codec::check_name("workflow key", key)?;
        let input = input
            .map(|v| codec::encode_value("workflow input", &v))
            .transpose()?;
        executor.ensure_registered().await?;
        let db = executor.db.clone();
        let root = NewRoot {
            key,
            name,
            input,
            owner: executor.id,
        };
        let mut claimed = store::claim_root(&db, &root).await?;
        let mut existing = None;
        if claimed.is_none() {
            let row = store::root_by_key(&db, key).await?;
            if let Some(row) = &row
                && row.name != name
            {
                return Err(DurableError::InvalidInput(format!(
                    "key '{key}' belongs to workflow '{}', not '{name}'",
                    row.name
                )));
            }
            // A previous owner on this host that no longer exists: take over now.
            if let Some(row) = &row
                && !row.status.is_terminal()
                && executor.expire_if_gone(row.id).await?
            {
                claimed = store::claim_root(&db, &root).await?;
            }
            existing = row;
        }
        let (found, lease_epoch, created) = match (claimed, existing) {
            (Some(claimed), _) => {
                let epoch = claimed.row.lease_epoch;
                (claimed.row, Some(epoch), claimed.created)
            }
            (None, Some(row)) if row.status.is_terminal() => (row, None, false),
            (None, Some(_)) => {
                return Err(DurableError::StepLocked(format!(
                    "workflow '{key}' is owned by another live executor"
                )));
            }
            (None, None) => {
                return Err(DurableError::custom(format!(
                    "workflow '{key}' vanished while starting"
                )));
            }
        };
        tracing::debug!(workflow.id = %found.id, status = found.status.as_str(), created, "workflow started");
        Ok(Self::new(
            db,
            found.id,
            executor,
            lease_epoch,
            found,
            created,
        ))
    }

    /// A root workflow an executor just claimed from a queue or a dead owner.
    pub(crate) fn claimed(executor: Arc<ExecutorInner>, row: TaskRow) -> Self {
        let db = executor.db.clone();
        let epoch = row.lease_epoch;
        Self::new(db, row.id, executor, Some(epoch), row, false)
    }

    fn new(
        db: DatabaseConnection,
        root_id: Uuid,
        executor: Arc<ExecutorInner>,
        lease_epoch: Option<i64>,
        found: TaskRow,
        created: bool,
    ) -> Self {
        let history = if created {
            History::empty(found.id)
        } else {
            History::recorded(found.id)
        };
        Self {
            db,
            task_id: found.id,
            root_id,
            executor,
            lease_epoch,
            found,
            history,
            sequence: AtomicI32::new(0),
            calls_by_name: Mutex::new(HashMap::new()),
        }
    }

    /// Start or resume a child workflow. Returns a new `Ctx` scoped to the child.
    ///
    /// A finished child is returned as recorded, without a round trip; its
    /// steps replay. The child shares the tree's pause, cancel and deadline.
    ///
    /// # Errors
    /// [`DurableError::Paused`], [`DurableError::Cancelled`] or
    /// [`DurableError::Timeout`] if this workflow may not start new work;
    /// [`DurableError::LeaseLost`] if another executor took it over;
    /// [`DurableError::NonDeterminism`] if the history has something else
    /// at this point.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let child = ctx.child("embed_batch", Some(serde_json::json!({"vectors": 1000}))).await?;
    /// child.step("embed", || async { Ok(()) }).await?;
    /// child.complete(&serde_json::json!({"done": true})).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "workflow.child", skip_all, fields(workflow.id = %self.task_id, child.name = name))]
    pub async fn child(&self, name: &str, input: Option<Json>) -> Result<Self, DurableError> {
        let call = self.begin_call(name, Kind::Workflow)?;
        match self
            .history
            .take(&self.db, call.position, &call.key)
            .await?
        {
            AtPosition::Same(row) if row.kind != Kind::Workflow => {
                return Err(self.mismatch(&call, &row));
            }
            AtPosition::Same(row) if row.status.is_terminal() => {
                return Ok(self.child_ctx(row, None, false));
            }
            AtPosition::Other(other) => return Err(self.moved(&call, &other)),
            _ => {}
        }
        let input = input
            .map(|v| codec::encode_value("child workflow input", &v))
            .transpose()?;
        let lease_epoch = self.owned_epoch(&call)?;
        if let Checked::Recorded(_) = self.check_fresh(&call).await?
            && let Some(row) = store::task_by_key(&self.db, self.task_id, &call.key).await?
        {
            return Ok(self.child_ctx(row, None, false));
        }
        let child = NewChild {
            root: self.root_id,
            parent: self.task_id,
            key: &call.key,
            name: &call.name,
            position: call.position,
            input,
            owner: self.executor.id,
            parent_epoch: lease_epoch,
        };
        match store::claim_child(&self.db, &child).await? {
            Some(claimed) => {
                let epoch = claimed.row.lease_epoch;
                Ok(self.child_ctx(claimed.row, Some(epoch), claimed.created))
            }
            None => match store::task_by_key(&self.db, self.task_id, &call.key).await? {
                Some(row) if row.status.is_terminal() => Ok(self.child_ctx(row, None, false)),
                Some(row) if row.kind != Kind::Workflow => Err(self.mismatch(&call, &row)),
                _ => Err(DurableError::LeaseLost {
                    workflow: self.task_id,
                }),
            },
        }
    }

    fn child_ctx(&self, row: TaskRow, lease_epoch: Option<i64>, created: bool) -> Self {
        Self::new(
            self.db.clone(),
            self.root_id,
            self.executor.clone(),
            lease_epoch,
            row,
            created,
        )
    }

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

    async fn current_row(&self) -> Result<TaskRow, DurableError> {
        store::task_by_id(&self.db, self.task_id)
            .await?
            .ok_or(DurableError::NotFound(self.task_id))
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
        self.finish(Status::Completed, Some(text), None).await
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
        self.finish(Status::Failed, None, Some(codec::error_text(error)))
            .await
    }

    async fn finish(
        &self,
        status: Status,
        output: Option<String>,
        error: Option<String>,
    ) -> Result<(), DurableError> {
        self.finisher().finish(status, output, error).await
    }

    /// What it takes to finish this workflow after the `Ctx` itself was
    /// handed to a registered function.
    pub(crate) fn finisher(&self) -> Finisher {
        Finisher {
            db: self.db.clone(),
            task_id: self.task_id,
            owner: self.executor.id,
            lease_epoch: self.lease_epoch,
            found: self.found.clone(),
        }
    }

    /// Set the timeout of this workflow in milliseconds.
    ///
    /// The deadline is fixed the first time a timeout is set (database clock)
    /// and never moves again: a restart does not extend it, and later calls
    /// leave it as it is. Once it has passed, no new step of this workflow or
    /// of its children starts; they return [`DurableError::Timeout`].
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] unless 1 ms <= `timeout_ms` <= 100 years.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// ctx.set_timeout(5 * 60 * 1000).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_timeout(&self, timeout_ms: i64) -> Result<(), DurableError> {
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(DurableError::InvalidInput(format!(
                "timeout must be between 1 ms and 100 years, got {timeout_ms} ms"
            )));
        }
        if self.lease_epoch.is_none() {
            // Finished when this handle was made: a replay writes nothing.
            return Ok(());
        }
        if !store::set_timeout(&self.db, self.task_id, timeout_ms).await? {
            return Err(DurableError::NotFound(self.task_id));
        }
        Ok(())
    }

    // ── Accessors ───────────────────────────────────────────────────

    /// The database connection this workflow runs on.
    ///
    /// ```no_run
    /// # fn demo(ctx: &durable::Ctx) {
    /// let db: &sea_orm::DatabaseConnection = ctx.db();
    /// # }
    /// ```
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The id of this workflow's task row.
    ///
    /// ```no_run
    /// # fn demo(ctx: &durable::Ctx) {
    /// println!("workflow {}", ctx.task_id());
    /// # }
    /// ```
    pub fn task_id(&self) -> Uuid {
        self.task_id
    }

    /// The workflow's name.
    ///
    /// ```no_run
    /// # fn demo(ctx: &durable::Ctx) {
    /// assert_eq!(ctx.name(), "ingest");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.found.name
    }

    /// The workflow's key: its idempotency key for a root (the name unless
    /// started with a key), `name#n` for a child.
    ///
    /// ```no_run
    /// # fn demo(ctx: &durable::Ctx) {
    /// println!("running {}", ctx.key());
    /// # }
    /// ```
    pub fn key(&self) -> &str {
        &self.found.key
    }

    /// Take the next call position (what each step, transaction and child
    /// does). Call it only in the same place on every run.
    ///
    /// ```no_run
    /// # fn demo(ctx: &durable::Ctx) {
    /// let position = ctx.next_sequence();
    /// # }
    /// ```
    pub fn next_sequence(&self) -> i32 {
        self.sequence.fetch_add(1, Ordering::SeqCst)
    }

    // ── Shared by steps and children ────────────────────────────────

    /// Give a call its identity (`name#n` and position), synchronously, so
    /// concurrent calls are numbered in call order.
    pub(crate) fn begin_call(&self, name: &str, kind: Kind) -> Result<Call, DurableError> {
        codec::check_name("step", name)?;
        let position = self.next_sequence();
        let n = {
            let mut calls = self.calls_by_name.lock().unwrap_or_else(|e| e.into_inner());
            let counter = calls.entry(name.to_string()).or_insert(0);
            let n = *counter;
            *counter += 1;
            n
        };
        Ok(Call {
            name: name.to_string(),
            key: format!("{name}#{n}"),
            position,
            kind,
        })
    }

    /// The lease epoch, or an error if this handle may not write (the
    /// workflow was finished when the handle was made).
    pub(crate) fn owned_epoch(&self, call: &Call) -> Result<i64, DurableError> {
        self.lease_epoch
            .ok_or_else(|| self.finished(call, self.found.status))
    }

    /// The error for new work in a workflow that has finished with `status`.
    pub(crate) fn finished(&self, call: &Call, status: Status) -> DurableError {
        match status {
            Status::Cancelled => DurableError::Cancelled(format!(
                "workflow {} is cancelled; step '{}' did not start",
                self.task_id, call.key
            )),
            Status::Failed => DurableError::InvalidTransition {
                task: self.task_id,
                status: status.as_str().to_string(),
                action: "start a step in",
            },
            _ => DurableError::NonDeterminism {
                workflow: self.task_id,
                step: call.key.clone(),
                detail: format!(
                    "the workflow is already {} and has no record of this call",
                    status.as_str()
                ),
            },
        }
    }

    /// The history has another call at this call's position.
    pub(crate) fn moved(&self, call: &Call, other: &str) -> DurableError {
        DurableError::NonDeterminism {
            workflow: self.task_id,
            step: call.key.clone(),
            detail: format!(
                "the history has '{other}' at position {}; was a step renamed or inserted?",
                call.position
            ),
        }
    }

    pub(crate) fn mismatch(&self, call: &Call, row: &TaskRow) -> DurableError {
        DurableError::NonDeterminism {
            workflow: self.task_id,
            step: call.key.clone(),
            detail: format!(
                "recorded as a {} but called as a {}",
                row.kind.as_str(),
                call.kind.as_str()
            ),
        }
    }
}
