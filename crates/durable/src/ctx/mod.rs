//! `Ctx`: the handle a workflow runs with. Starting and accessors live
//! here; children in `child.rs`, steps in `steps.rs`, finishing in
//! `finish.rs`, waits in `wait.rs`, the seed's management calls in
//! `control.rs`. Every durable call goes through the protocol of
//! `crate::call`.

mod child;
mod control;
mod feeds;
mod finish;
mod messages;
mod patch;
mod sleep;
mod spawn;
mod steps;
mod wait;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::call::Calls;
use crate::codec;
use crate::error::DurableError;
use crate::history::History;
use crate::identity::ExecutorCore;
use crate::store::{Lease, NewRoot, Started, Store, WorkflowRow};

pub(crate) use finish::Finisher;
pub use spawn::ChildHandle;
#[cfg(feature = "testing")]
pub(crate) use wait::woken_output;
pub(crate) use wait::{Backoff, never, woken_output_text};

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
    pub(crate) store: Arc<dyn Store>,
    pub(crate) executor: Arc<ExecutorCore>,
    pub(crate) id: Uuid,
    pub(crate) root_id: Uuid,
    /// The lease this workflow's writes are fenced by; `None` when it was
    /// already finished when this handle was made (a pure replay: nothing
    /// may be written).
    pub(crate) lease: Option<Lease>,
    /// The workflow's row as found when this handle was made.
    pub(crate) found: WorkflowRow,
    pub(crate) history: History,
    pub(crate) calls: Calls,
    /// Whether an executor resumes this workflow after it suspends (it runs
    /// a registered function under a runner); an inline workflow waits in
    /// its process instead.
    pub(crate) suspendable: bool,
    /// How long a call refused because the tree is paused waits for a
    /// resume before it fails with `Paused` ([`Ctx::wait_when_paused`]).
    pub(crate) pause_wait: Option<std::time::Duration>,
    /// When the next call of a root may start without the check read.
    pub(crate) window: crate::call::StartWindow,
    /// Counts this handle among the workflow's live ones in this process
    /// (a handle that may write).
    pub(crate) handle: Option<crate::identity::Handle>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("workflow", &self.id)
            .field("name", &self.found.name)
            .field("executor", &self.executor.id)
            .field("lease", &self.lease)
            .finish()
    }
}

impl Ctx {
    // ── Workflow lifecycle ──────────────────────────────────────────

    /// Start or resume the root workflow `name` (its key is its name).
    ///
    /// Finds the workflow if it exists (ignoring `input`) or creates it,
    /// claims it for this process; its history is read as it replays, a
    /// page of records per query. Use [`Ctx::start_with_key`] to run the
    /// same workflow name more than once.
    ///
    /// # Errors
    /// [`DurableError::StepLocked`] if another live process owns the
    /// workflow; [`DurableError::InvalidInput`] for a bad name or input, or
    /// a key that belongs to another workflow name; [`DurableError::Db`] if
    /// the database fails.
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
    /// As [`Ctx::start`].
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
        Self::start_on(ExecutorCore::process_default(db), name, key, input).await
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

    /// Reattach to the root workflow `id`, found with
    /// [`crate::Client::list`] say: as [`Ctx::start_with_key`] with its
    /// name and key. An unfinished one is claimed for this process and
    /// goes on from its history (a queued one runs here, not on a worker);
    /// a finished one replays and writes nothing.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id;
    /// [`DurableError::InvalidInput`] for a child workflow (it goes on when
    /// its parent replays); otherwise as [`Ctx::start`].
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// let ctx = durable::Ctx::from_id(&db, id).await?;
    /// let order: serde_json::Value = ctx.input()?;
    /// # Ok(()) }
    /// ```
    pub async fn from_id(db: &DatabaseConnection, id: Uuid) -> Result<Self, DurableError> {
        let executor = ExecutorCore::process_default(db);
        let row = executor
            .store
            .workflow(id)
            .await?
            .ok_or(DurableError::NotFound(id))?;
        if let Some(parent) = row.parent_id {
            return Err(DurableError::InvalidInput(format!(
                "workflow {id} is a child of {parent}: it goes on when its parent replays"
            )));
        }
        Self::start_on(executor, &row.name, &row.key, None).await
    }

    /// The workflow's input, as `T` (JSON `null` if it was started without
    /// one, so `Option<_>` reads that as `None`).
    ///
    /// # Errors
    /// [`DurableError::Serialization`] if the input does not read as `T`.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// #[derive(serde::Deserialize)]
    /// struct Order { id: u64, cents: i64 }
    /// let order: Order = ctx.input()?;
    /// # Ok(()) }
    /// ```
    pub fn input<T: serde::de::DeserializeOwned>(&self) -> Result<T, DurableError> {
        Ok(serde_json::from_str(
            self.found.input.as_deref().unwrap_or("null"),
        )?)
    }

    #[tracing::instrument(name = "workflow.start", skip_all, fields(workflow.name = name, workflow.key = key))]
    pub(crate) async fn start_on(
        executor: Arc<ExecutorCore>,
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
        let root = NewRoot {
            key,
            name,
            input,
            owner: executor.id,
        };
        let sent = crate::call::Sent::now(&executor);
        let mut started = executor.store.start_root(&root).await?;
        // A previous owner on this host that no longer exists: take over now.
        if let Started::Refused(row) = &started
            && row.name == name
            && !row.status.is_terminal()
            && executor.expire_if_gone(row.id).await?
        {
            started = executor.store.start_root(&root).await?;
        }
        let ctx = match started {
            Started::Claimed { row, created } => {
                // A row this statement created carries its clock.
                let created_ms = created.then_some(row.created_ms);
                let ctx = Self::claimed(executor, row, created);
                if let Some(now_ms) = created_ms {
                    ctx.opened(sent, now_ms);
                }
                // Inline too: a workflow that kills its process is not run
                // again by every restart.
                ctx.refuse_if_poisoned(crate::DEFAULT_MAX_RECOVERIES)
                    .await?;
                ctx
            }
            Started::Refused(row) if row.name != name => {
                return Err(DurableError::InvalidInput(format!(
                    "key '{key}' belongs to workflow '{}', not '{name}'",
                    row.name
                )));
            }
            Started::Refused(row) if row.status.is_terminal() => Self::finished(executor, row),
            Started::Refused(_) => {
                return Err(DurableError::StepLocked(format!(
                    "workflow '{key}' is owned by another live executor"
                )));
            }
        };
        tracing::debug!(workflow.id = %ctx.id, status = ctx.found.status.as_str(), "workflow started");
        Ok(ctx)
    }

    /// A workflow this executor just claimed: it holds its own lease.
    pub(crate) fn claimed(executor: Arc<ExecutorCore>, row: WorkflowRow, created: bool) -> Self {
        let lease = Lease {
            holder: row.id,
            owner: executor.id,
            epoch: row.lease_epoch,
        };
        Self::new(executor, Some(lease), row, created)
    }

    /// The statement that claimed or created this workflow, `sent` before,
    /// set it RUNNING at `now_ms` (the database clock): it opens the start
    /// window, as a checkpoint does, so the first step need not read the
    /// state it just wrote.
    pub(crate) fn opened(&self, sent: crate::call::Sent, now_ms: i64) {
        if self.is_root() && self.lease.is_some() {
            let seen = crate::store::Seen {
                status: self.found.status,
                deadline_ms: self.found.deadline_ms,
                now_ms,
            };
            self.window.saw(sent, &seen);
        }
    }

    /// A workflow that was finished when found: replay only.
    fn finished(executor: Arc<ExecutorCore>, row: WorkflowRow) -> Self {
        Self::new(executor, None, row, false)
    }

    pub(crate) fn new(
        executor: Arc<ExecutorCore>,
        lease: Option<Lease>,
        found: WorkflowRow,
        created: bool,
    ) -> Self {
        let history = if created {
            History::empty(found.id)
        } else {
            History::recorded(found.id)
        };
        let handle = lease
            .is_some()
            .then(|| crate::identity::Handle::new(found.id));
        Self {
            store: executor.store.clone(),
            executor,
            id: found.id,
            root_id: found.root_id,
            lease,
            found,
            history,
            calls: Calls::default(),
            suspendable: false,
            pause_wait: None,
            window: crate::call::StartWindow::default(),
            handle,
        }
    }

    /// Make this workflow wait, up to `timeout` per call, when it is paused
    /// from outside ([`crate::Client::pause`]), and go on once it is
    /// resumed, instead of failing its next call with
    /// [`DurableError::Paused`]. Meant for workflows run inline: a worker
    /// gives a paused workflow up and takes it again after the resume,
    /// without this.
    ///
    /// Each refused call (and `complete` or `fail`) looks again, at most a
    /// second apart, until the tree is resumed (the call then runs where
    /// it stopped: nothing ran meanwhile), cancelled (it fails with
    /// [`DurableError::Cancelled`]), or `timeout` passed (it fails with
    /// `Paused`, as without this).
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
    /// use std::time::Duration;
    /// let ctx = durable::Ctx::start(&db, "import", None)
    ///     .await?
    ///     .wait_when_paused(Duration::from_secs(3600));
    /// // An operator's `durable workflows pause ID` holds the next step
    /// // until `durable workflows resume ID`.
    /// let rows: u64 = ctx.step("load", || async { Ok(1200) }).await?;
    /// ctx.complete(&rows).await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn wait_when_paused(mut self, timeout: std::time::Duration) -> Self {
        self.pause_wait = Some(timeout.min(std::time::Duration::from_millis(
            MAX_TIMEOUT_MS.unsigned_abs(),
        )));
        self
    }

    /// When a call refused as paused looks again: `None` when this
    /// workflow does not wait ([`Ctx::wait_when_paused`]).
    pub(crate) fn pause_deadline(&self) -> Option<tokio::time::Instant> {
        self.pause_wait
            .map(|wait| tokio::time::Instant::now() + wait)
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
        if self.lease.is_none() {
            // Finished when this handle was made: a replay writes nothing.
            return Ok(());
        }
        // No call starts without reading the deadline while it changes.
        let shut = self.window.shut();
        let set = self.store.set_timeout(self.id, timeout_ms).await?;
        drop(shut);
        if !set {
            return Err(DurableError::NotFound(self.id));
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
        self.store.connection()
    }

    /// The id of this workflow.
    ///
    /// ```no_run
    /// # fn demo(ctx: &durable::Ctx) {
    /// println!("workflow {}", ctx.task_id());
    /// # }
    /// ```
    pub fn task_id(&self) -> Uuid {
        self.id
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
        self.calls.next_position()
    }

    /// Whether this workflow has no parent (its own row holds its lease and
    /// has no ancestors to check).
    pub(crate) fn is_root(&self) -> bool {
        self.found.parent_id.is_none()
    }

    /// The workflow whose lease fences our writes.
    pub(crate) fn holder(&self) -> Uuid {
        self.lease.map_or(self.id, |l| l.holder)
    }
}
