//! The storage interface: one method per atomic operation of the engine.
//!
//! Everything the SDK keeps in the database goes through [`Store`]. Each
//! method is one atomic operation (a claim from a queue, the commit of a
//! durable call, a transition of a subtree, finishing a workflow, a page of
//! history) and the implementation owns its transactions: no caller opens
//! one around a group of methods. The one exception is the transaction
//! step, whose point is that the user's writes and the checkpoint share a
//! transaction: [`Store::begin_user_transaction`] and [`Store::commit_in`].
//!
//! `sql/` implements it for PostgreSQL and SQLite. The interface is what an
//! in-memory model would implement to run the same behaviour suite, so it
//! speaks in the engine's terms (rows, leases, positions), never in SQL.

#[cfg(test)]
mod conformance;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod memory;
mod rows;
pub(crate) mod sql;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::DatabaseTransaction;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::DurableError;
use crate::query::WorkflowQuery;
#[cfg(doc)]
use crate::read::QueueBucket;
use crate::read::{QueueInfo, WorkflowSummary, WorkflowTree};
use crate::status::Status;

pub(crate) use rows::{
    Check, Checkpoint, ClaimFilter, Effect, Entry, ExecutorRow, Firing, Lease, NewChild,
    NewDebounce, NewEnqueued, NewMessage, NewRoot, Planner, QueueLimits, Received, Retried,
    ScheduleRow, Seen, Spawn, StreamItem, Suspension, Transition, WorkflowRow,
};

/// Shorthand for the results of store methods.
pub(crate) type StoreResult<T> = Result<T, DurableError>;

/// What a root start found: a claim of it (new or existing), or the row of
/// a workflow this executor may not claim (finished, another name, or owned
/// by a live executor).
#[derive(Debug)]
pub(crate) enum Started {
    /// Claimed for the caller; `created` when this call made the row.
    Claimed { row: WorkflowRow, created: bool },
    /// Exists and was not claimed.
    Refused(WorkflowRow),
}

/// Where a step may run: the outcome of [`Store::start_child`].
#[derive(Debug)]
pub(crate) enum ChildStart {
    /// Created now.
    Created(Box<WorkflowRow>),
    /// The parent's lease is gone: nothing was written.
    Fenced,
    /// A journal entry exists at that position already (another handle of
    /// the same workflow recorded it first).
    Recorded(Entry),
}

/// The database behind the engine, as atomic operations.
#[async_trait]
pub(crate) trait Store: Send + Sync + Debug {
    /// The user's database connection, for `ctx.db()` and transaction steps.
    fn connection(&self) -> &sea_orm::DatabaseConnection;

    /// How long one statement may take before it is given up.
    fn statement_deadline(&self) -> std::time::Duration {
        sql::STATEMENT_DEADLINE
    }

    /// Whether the database is a local file (SQLite): no connection can
    /// go silent, and giving up on a statement that waits for the file's
    /// lock does not stop it (it only queues the retry behind it), so
    /// heartbeats get the long deadline of [`Store::statement_deadline`].
    fn is_local(&self) -> bool {
        false
    }

    // ── Executors ───────────────────────────────────────────────────

    /// Register an executor or push its lease forward (`lease_ms` from the
    /// database clock now); whether the lease is live afterwards (a
    /// [`Renewal::Renew`] of a lease that already expired is refused).
    async fn heartbeat(
        &self,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool>;
    /// Declare an executor dead at once.
    async fn expire_executor(&self, id: Uuid) -> StoreResult<()>;
    /// The owner of a workflow, and whether its lease is live.
    async fn owner_of(&self, workflow: Uuid) -> StoreResult<Option<(ExecutorRow, bool)>>;
    /// Executors that look alive and own unfinished workflows.
    async fn live_owners(&self) -> StoreResult<Vec<ExecutorRow>>;

    // ── Workflows ───────────────────────────────────────────────────

    /// Create a root workflow or claim the existing one of that key.
    async fn start_root(&self, root: &NewRoot<'_>) -> StoreResult<Started>;
    /// Create a child workflow and its journal entry in the parent, fenced
    /// by the parent's lease.
    async fn start_child(&self, child: &NewChild<'_>) -> StoreResult<ChildStart>;
    async fn workflow(&self, id: Uuid) -> StoreResult<Option<WorkflowRow>>;
    async fn root_by_key(&self, key: &str) -> StoreResult<Option<WorkflowRow>>;
    /// Fix the deadline the first time a timeout is set; `false` for an unknown id.
    async fn set_timeout(&self, id: Uuid, timeout_ms: i64) -> StoreResult<bool>;
    /// Complete or fail a workflow, fenced; `false` if it was not active
    /// under this lease. `spawned_by`: the parent of a spawned child,
    /// woken in the same transaction if it waits to join it.
    async fn finish(
        &self,
        id: Uuid,
        lease: &Lease,
        status: crate::status::Status,
        output: Option<String>,
        error: Option<String>,
        spawned_by: Option<Uuid>,
    ) -> StoreResult<bool>;
    /// Give a workflow up so another executor (or a later run) takes it;
    /// with a suspension, not before its wake-up time (or its event).
    async fn release(
        &self,
        id: Uuid,
        lease: &Lease,
        suspension: Option<&Suspension>,
    ) -> StoreResult<bool>;
    /// Pause, resume or cancel a workflow and its subtree, checking the
    /// transition; returns the number of workflows changed.
    async fn transition(&self, id: Uuid, transition: Transition) -> StoreResult<u64>;
    /// Complete a waiting call (kind `WAIT`) named `name` of `workflow` with
    /// `output`, and make the workflow claimable now if it is suspended.
    /// `false` if no such call waits. (The test-only waker; the primitives
    /// wake through what they bring: `send`, a child's `finish`.)
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    async fn wake(&self, workflow: Uuid, name: &str, output: &str) -> StoreResult<bool>;

    // ── The journal ─────────────────────────────────────────────────

    /// Entries of a workflow from `from_position` on, by position.
    async fn history_page(
        &self,
        workflow: Uuid,
        from_position: i32,
        limit: i64,
    ) -> StoreResult<Vec<Entry>>;
    /// The one read before a new durable call: states along the ancestor
    /// chain, deadline, the lease holder's lease, the clock, and any entry
    /// at the call's position.
    async fn check(
        &self,
        workflow: Uuid,
        root: bool,
        holder: Uuid,
        position: i32,
    ) -> StoreResult<Option<Check>>;
    /// Write an entry, fenced by the lease, and say what the write saw of
    /// its workflow; `None` when the fence or a finished entry refused it.
    async fn commit(&self, checkpoint: &Checkpoint<'_>) -> StoreResult<Option<Seen>>;
    /// [`Store::commit`] and the call's effect in one transaction: both or
    /// neither. Errors of the effect (an unknown or finished recipient, a
    /// closed stream) leave nothing written.
    async fn commit_with(
        &self,
        checkpoint: &Checkpoint<'_>,
        effect: &Effect<'_>,
    ) -> StoreResult<bool>;
    /// A `recv` call: take the oldest message of `topic` sent to the
    /// checkpoint's workflow and complete the entry with it, or record the
    /// entry as waiting (`checkpoint` is the waiting entry, with its
    /// wake-up time). One transaction, fenced.
    async fn receive(&self, checkpoint: &Checkpoint<'_>, topic: &str) -> StoreResult<Received>;
    /// Whether a message of `topic` waits to be taken by `workflow`.
    async fn has_message(&self, workflow: Uuid, topic: &str) -> StoreResult<bool>;
    /// One entry of a workflow.
    async fn entry(&self, workflow: Uuid, position: i32) -> StoreResult<Option<Entry>>;
    /// Begin the transaction of a transaction step. On PostgreSQL the
    /// server ends it (and frees its locks) once it sits idle for
    /// `idle_limit_ms`: a stopped or hung executor must not hold the rows
    /// its successor needs past its lease.
    async fn begin_user_transaction(&self, idle_limit_ms: i64) -> StoreResult<DatabaseTransaction>;
    /// [`Store::commit`] inside the user's transaction.
    async fn commit_in(
        &self,
        tx: &DatabaseTransaction,
        checkpoint: &Checkpoint<'_>,
    ) -> StoreResult<bool>;

    // ── Messages, events, streams ───────────────────────────────────

    /// Store a message for a workflow and wake it if it waits for the
    /// topic; `false` if its key was used before (nothing stored).
    /// [`DurableError::NotFound`] for an unknown workflow,
    /// [`DurableError::InvalidTransition`] for a finished one.
    async fn send(&self, message: &NewMessage<'_>) -> StoreResult<bool>;
    /// The latest value a workflow published under `key` (JSON text).
    async fn event(&self, workflow: Uuid, key: &str) -> StoreResult<Option<String>>;
    /// Items of a stream from `from_offset` on, by offset.
    async fn stream_page(
        &self,
        workflow: Uuid,
        key: &str,
        from_offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<StreamItem>>;

    // ── Queues and claims ───────────────────────────────────────────

    /// Insert unless the key exists; the new id if it was created.
    async fn enqueue(&self, work: &NewEnqueued<'_>) -> StoreResult<Option<Uuid>>;
    async fn queue(&self, name: &str) -> StoreResult<Option<QueueLimits>>;
    async fn declare_queue(&self, name: &str, limits: &QueueLimits) -> StoreResult<()>;
    /// Claim up to `want` workflows of `queue` within its limits.
    async fn claim_from_queue(
        &self,
        queue: &str,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>>;
    /// Claim the next workflow of `queue` into a slot just freed: as
    /// [`claim_from_queue`](Self::claim_from_queue) with room for one, but
    /// a store may answer nothing where looking further would cost more
    /// than one statement (a queue without limits found empty: the worker's
    /// loop looks again, and notices limits declared since).
    async fn claim_next(
        &self,
        queue: &str,
        owner: Uuid,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Option<WorkflowRow>> {
        Ok(self
            .claim_from_queue(queue, owner, 1, filter)
            .await?
            .into_iter()
            .next())
    }
    /// Claim inline roots whose owner died.
    async fn claim_orphans(
        &self,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>>;
    /// Release the workflows of dead executors; their ids.
    async fn release_dead(&self) -> StoreResult<Vec<Uuid>>;
    /// Release every workflow an executor owns; how many.
    async fn release_owned(&self, owner: Uuid) -> StoreResult<u64>;
    /// Release the workflows an executor owns but is not running (not in
    /// `running`): those of a claim whose reply was lost; how many.
    async fn release_stray(&self, owner: Uuid, running: &[Uuid]) -> StoreResult<u64>;
    /// Wake executors waiting for work on `queue` (a hint).
    async fn notify(&self, queue: &str) -> StoreResult<()>;
    /// Notify `wake` whenever work may have arrived, until dropped; returns
    /// at once where the backend has no notifications (polling covers it).
    async fn listen(&self, wake: Arc<Notify>);

    // ── The read model ──────────────────────────────────────────────

    async fn summary(&self, id: Uuid) -> StoreResult<Option<WorkflowSummary>>;
    async fn tree(&self, id: Uuid) -> StoreResult<Option<WorkflowTree>>;
    /// At most `fetch` workflows matching `query` (checked), in its order,
    /// after its cursor.
    async fn list(&self, query: &WorkflowQuery, fetch: u32) -> StoreResult<Vec<WorkflowRow>>;
    /// How many workflows match `query`'s filters.
    async fn count(&self, query: &WorkflowQuery) -> StoreResult<u64>;
    /// Every declared queue and every queue with unfinished work, by
    /// name, with its limits and its work counted by [`QueueBucket`] at
    /// the store clock.
    async fn queues(&self) -> StoreResult<Vec<QueueInfo>>;
    /// Run the root `id` again from its failed calls: if its status is one
    /// of `from`, every workflow of its tree in one of those statuses
    /// becomes PENDING and unowned (a new lease epoch, no deadline), and their FAILED
    /// entries move to the history, so those calls run again.
    async fn retry(&self, id: Uuid, from: &[Status]) -> StoreResult<Retried>;
    /// A new PENDING root with `id`'s name, input and queue fields and a
    /// copy of its entries before `from_position` (see `sql/fork.rs` for
    /// what may be forked); its id.
    async fn fork(&self, id: Uuid, from_position: i32) -> StoreResult<Uuid>;
    /// Delete at most `batch` finished trees (every workflow of the tree
    /// finished) whose roots finished more than `age_ms` ago (store
    /// clock), oldest first,
    /// with all their rows, in one transaction; the roots deleted.
    async fn purge(&self, age_ms: i64, batch: u32) -> StoreResult<Vec<Uuid>>;

    // ── Schedules and debounce ──────────────────────────────────────

    /// The store's clock, epoch ms.
    async fn clock_ms(&self) -> StoreResult<i64>;
    /// Insert `schedule` (active, its cursor as given), or, if one of
    /// that name exists with another definition, replace the definition
    /// and the cursor (its paused state and counters kept); an identical
    /// declaration changes nothing. The row as stored afterwards.
    async fn put_schedule(&self, schedule: &ScheduleRow) -> StoreResult<ScheduleRow>;
    async fn schedule(&self, name: &str) -> StoreResult<Option<ScheduleRow>>;
    /// Every schedule, by name.
    async fn schedules(&self) -> StoreResult<Vec<ScheduleRow>>;
    /// Pause (`next_tick_ms` ignored) or resume with the cursor at
    /// `next_tick_ms`; `false` for an unknown name.
    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_tick_ms: Option<i64>,
    ) -> StoreResult<bool>;
    async fn delete_schedule(&self, name: &str) -> StoreResult<bool>;
    /// Fire at most `limit` active schedules that are due by the store
    /// clock, earliest first, each as `planner` decides: its ticks'
    /// workflows enqueued (a key that exists is skipped) and its cursor
    /// moved, in one transaction; schedules another executor is firing
    /// are skipped. The queues that got work, and the ticks enqueued.
    async fn fire_schedules(
        &self,
        planner: Planner<'_>,
        limit: u32,
    ) -> StoreResult<(Vec<String>, u64)>;
    /// A debounced start: if the key's current workflow has not been
    /// claimed yet, give it `debounce`'s input and push its start to the
    /// end of the quiet period (never past the burst's bound); otherwise
    /// enqueue a new workflow, delayed by the period, as the key's
    /// current one. Its id, and whether it is new.
    async fn debounce(&self, debounce: &NewDebounce<'_>) -> StoreResult<(Uuid, bool)>;
}

/// What a heartbeat asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// Push a live lease forward; an expired one stays expired.
    Renew,
    /// Register (again): the lease is live afterwards whatever it was.
    Register,
}
