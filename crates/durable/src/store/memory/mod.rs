//! [`Store`] in memory: the model of the SQL store, for the conformance
//! suite (`store/conformance.rs`, which runs one behaviour suite against
//! this and both SQL backends) and for deterministic simulations of many
//! executors.
//!
//! It mirrors [`super::sql::SqlStore`] operation by operation: the same
//! results, the same errors for the same bad inputs and wrong states, the
//! same fencing (every write checks the lease holder's owner and epoch),
//! the same claim rules and the same wake-ups. Each operation is one SQL
//! transaction of `sql/`, applied to the tables of [`state::State`] under
//! one `std::sync::Mutex` (never held across an `await`: no operation
//! awaits anything), so operations are atomic and serialized as on SQLite.
//! Tables are `BTreeMap`s, never hash maps, so a seeded simulation visits
//! rows in one order every run.
//!
//! What it has no counterpart for:
//! - **the clock**: the "database clock" is `base_ms` plus the time elapsed
//!   on a `tokio::time::Instant` taken at creation (deterministic under a
//!   paused tokio clock), plus whatever [`MemoryStore::step_clock`] added;
//!   one reading per operation (SQL reads it once per statement);
//! - **the user's database**: [`Store::connection`] is a disconnected
//!   SeaORM handle, and transaction steps (`ctx.transaction`) fail with
//!   [`DurableError::InvalidInput`]: they need a SQL database, the point of
//!   them being that the user's writes share the checkpoint's transaction;
//! - **notifications**: `notify` does nothing and `listen` returns at once
//!   (workers poll, as they do anyway);
//! - **transient errors and deadlines**: nothing here fails transiently,
//!   so nothing is retried.

mod executors;
mod journal;
mod queues;
mod read;
mod schedules;
mod signals;
mod state;
#[cfg(test)]
mod tests;
mod workflows;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use tokio::sync::Notify;
use uuid::Uuid;

use super::sql::IdSource;
use super::{
    Check, Checkpoint, ChildStart, ClaimFilter, Effect, Entry, ExecutorRow, Lease, NewChild,
    NewDebounce, NewEnqueued, NewMessage, NewRoot, Planner, QueueLimits, Received, Renewal,
    Retried, ScheduleRow, Seen, Started, Store, StoreResult, StreamItem, Suspension, Transition,
    WorkflowRow,
};
use crate::error::DurableError;
use crate::query::WorkflowQuery;
use crate::read::{QueueInfo, WorkflowSummary, WorkflowTree};
use crate::status::Status;
use state::State;

/// The store in memory.
pub(crate) struct MemoryStore {
    state: Mutex<State>,
    clock: Clock,
    ids: IdSource,
    /// Disconnected: there is no user database here.
    db: DatabaseConnection,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("now_ms", &self.clock.now_ms())
            .finish_non_exhaustive()
    }
}

/// The store's clock: `base_ms` plus the elapsed time of a tokio instant,
/// plus the steps taken.
#[derive(Debug)]
struct Clock {
    base_ms: i64,
    origin: tokio::time::Instant,
    stepped_ms: AtomicI64,
}

impl Clock {
    fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.base_ms
            .saturating_add(elapsed)
            .saturating_add(self.stepped_ms.load(Ordering::SeqCst))
    }
}

/// The error of a transaction step on the in-memory store.
fn no_sql_database() -> DurableError {
    DurableError::InvalidInput(
        "transaction steps need a SQL database; the in-memory store has none".to_string(),
    )
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(dead_code)] // the seams for simulations: ids, clock base and steps
impl MemoryStore {
    /// An empty store, with random (v4) ids and the clock starting at the
    /// system time.
    pub(crate) fn new() -> Self {
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // As the schema's first migration, the default queue exists.
        let mut state = State::default();
        state.queues.insert(
            crate::queue::DEFAULT_QUEUE.to_string(),
            QueueLimits::default(),
        );
        Self {
            state: Mutex::new(state),
            clock: Clock {
                base_ms,
                origin: tokio::time::Instant::now(),
                stepped_ms: AtomicI64::new(0),
            },
            ids: Arc::new(Uuid::new_v4),
            db: DatabaseConnection::default(),
        }
    }

    /// The same store with ids from `ids` (as [`super::sql::SqlStore::with_ids`]).
    pub(crate) fn with_ids(mut self, ids: IdSource) -> Self {
        self.ids = ids;
        self
    }

    /// The same store with its clock reading `base_ms` now.
    pub(crate) fn with_base_ms(mut self, base_ms: i64) -> Self {
        self.clock.base_ms = base_ms;
        self.clock.origin = tokio::time::Instant::now();
        self.clock.stepped_ms.store(0, Ordering::SeqCst);
        self
    }

    /// Jump the clock by `delta_ms` (negative: back), as a clock step of
    /// the database server would.
    pub(crate) fn step_clock(&self, delta_ms: i64) {
        self.clock.stepped_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }

    /// The database clock now, epoch ms.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run one operation on the tables, with the clock read once, under
    /// the lock (so operations see the clock in the order they run).
    fn with<T>(&self, op: impl FnOnce(&mut State, i64) -> T) -> T {
        let mut state = self.lock();
        let now = self.now_ms();
        op(&mut state, now)
    }

    fn fresh_id(&self) -> Uuid {
        (self.ids)()
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn heartbeat(
        &self,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool> {
        self.with(|state, now| Ok(state.heartbeat(executor, lease_ms, renew, now)))
    }

    async fn expire_executor(&self, id: Uuid) -> StoreResult<()> {
        self.lock().expire_executor(id);
        Ok(())
    }

    async fn owner_of(&self, workflow: Uuid) -> StoreResult<Option<(ExecutorRow, bool)>> {
        self.with(|state, now| Ok(state.owner_of(workflow, now)))
    }

    async fn live_owners(&self) -> StoreResult<Vec<ExecutorRow>> {
        self.with(|state, now| Ok(state.live_owners(now)))
    }

    async fn start_root(&self, root: &NewRoot<'_>) -> StoreResult<Started> {
        self.with(|state, now| Ok(state.start_root(root, self.fresh_id(), now)))
    }

    async fn start_child(&self, child: &NewChild<'_>) -> StoreResult<ChildStart> {
        self.with(|state, now| Ok(state.start_child(child, self.fresh_id(), now)))
    }

    async fn workflow(&self, id: Uuid) -> StoreResult<Option<WorkflowRow>> {
        Ok(self.lock().workflows.get(&id).map(|w| w.row.clone()))
    }

    async fn root_by_key(&self, key: &str) -> StoreResult<Option<WorkflowRow>> {
        let state = self.lock();
        Ok(state
            .roots
            .get(key)
            .map(|id| state.workflows[id].row.clone()))
    }

    async fn set_timeout(&self, id: Uuid, timeout_ms: i64) -> StoreResult<bool> {
        self.with(|state, now| Ok(state.set_timeout(id, timeout_ms, now)))
    }

    async fn finish(
        &self,
        id: Uuid,
        lease: &Lease,
        status: Status,
        output: Option<String>,
        error: Option<String>,
        spawned_by: Option<Uuid>,
    ) -> StoreResult<bool> {
        self.with(|state, now| Ok(state.finish(id, lease, status, output, error, spawned_by, now)))
    }

    async fn release(
        &self,
        id: Uuid,
        lease: &Lease,
        suspension: Option<&Suspension>,
    ) -> StoreResult<bool> {
        Ok(self.lock().release(id, lease, suspension))
    }

    async fn transition(&self, id: Uuid, transition: Transition) -> StoreResult<u64> {
        self.with(|state, now| state.transition(id, transition, now))
    }

    async fn wake(&self, workflow: Uuid, name: &str, output: &str) -> StoreResult<bool> {
        self.with(|state, now| state.wake(workflow, name, output, now))
    }

    async fn history_page(
        &self,
        workflow: Uuid,
        from_position: i32,
        limit: i64,
    ) -> StoreResult<Vec<Entry>> {
        Ok(self.lock().history_page(workflow, from_position, limit))
    }

    async fn check(
        &self,
        workflow: Uuid,
        root: bool,
        holder: Uuid,
        position: i32,
    ) -> StoreResult<Option<Check>> {
        self.with(|state, now| Ok(state.check(workflow, root, holder, position, now)))
    }

    async fn commit(&self, checkpoint: &Checkpoint<'_>) -> StoreResult<Option<Seen>> {
        self.with(|state, now| {
            let written = state.commit(checkpoint, now);
            Ok(written
                .then(|| state.seen(checkpoint.workflow, now))
                .flatten())
        })
    }

    async fn commit_with(
        &self,
        checkpoint: &Checkpoint<'_>,
        effect: &Effect<'_>,
    ) -> StoreResult<bool> {
        self.with(|state, now| state.commit_with(checkpoint, effect, now))
    }

    async fn receive(&self, checkpoint: &Checkpoint<'_>, topic: &str) -> StoreResult<Received> {
        self.with(|state, now| Ok(state.receive(checkpoint, topic, now)))
    }

    async fn has_message(&self, workflow: Uuid, topic: &str) -> StoreResult<bool> {
        Ok(self.lock().has_message(workflow, topic))
    }

    async fn entry(&self, workflow: Uuid, position: i32) -> StoreResult<Option<Entry>> {
        Ok(self.lock().entry(workflow, position))
    }

    async fn begin_user_transaction(
        &self,
        _idle_limit_ms: i64,
    ) -> StoreResult<DatabaseTransaction> {
        Err(no_sql_database())
    }

    async fn commit_in(
        &self,
        _tx: &DatabaseTransaction,
        _checkpoint: &Checkpoint<'_>,
    ) -> StoreResult<bool> {
        Err(no_sql_database())
    }

    async fn send(&self, message: &NewMessage<'_>) -> StoreResult<bool> {
        self.with(|state, now| state.deliver(message, now))
    }

    async fn event(&self, workflow: Uuid, key: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().event(workflow, key))
    }

    async fn stream_page(
        &self,
        workflow: Uuid,
        key: &str,
        from_offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<StreamItem>> {
        Ok(self.lock().stream_page(workflow, key, from_offset, limit))
    }

    async fn enqueue(&self, work: &NewEnqueued<'_>) -> StoreResult<Option<Uuid>> {
        self.with(|state, now| Ok(state.enqueue(work, self.fresh_id(), now)))
    }

    async fn queue(&self, name: &str) -> StoreResult<Option<QueueLimits>> {
        Ok(self.lock().queues.get(name).cloned())
    }

    async fn declare_queue(&self, name: &str, limits: &QueueLimits) -> StoreResult<()> {
        self.lock().declare_queue(name, limits);
        Ok(())
    }

    async fn claim_from_queue(
        &self,
        queue: &str,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        self.with(|state, now| state.claim_from_queue(queue, owner, want, filter, now))
    }

    async fn claim_orphans(
        &self,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        self.with(|state, now| state.claim_orphans(owner, want, filter, now))
    }

    async fn release_dead(&self) -> StoreResult<Vec<Uuid>> {
        self.with(|state, now| Ok(state.release_dead(now)))
    }

    async fn release_owned(&self, owner: Uuid) -> StoreResult<u64> {
        Ok(self.lock().release_owned(owner))
    }

    async fn release_stray(&self, owner: Uuid, running: &[Uuid]) -> StoreResult<u64> {
        Ok(self.lock().release_stray(owner, running))
    }

    async fn notify(&self, _queue: &str) -> StoreResult<()> {
        Ok(())
    }

    async fn listen(&self, _wake: Arc<Notify>) {}

    async fn summary(&self, id: Uuid) -> StoreResult<Option<WorkflowSummary>> {
        Ok(self.lock().summary(id))
    }

    async fn tree(&self, id: Uuid) -> StoreResult<Option<WorkflowTree>> {
        Ok(self.lock().tree(id))
    }

    async fn queues(&self) -> StoreResult<Vec<QueueInfo>> {
        let now = self.now_ms();
        Ok(self.lock().queues(now))
    }

    async fn list(&self, query: &WorkflowQuery, fetch: u32) -> StoreResult<Vec<WorkflowRow>> {
        Ok(self.lock().list(query, fetch))
    }

    async fn count(&self, query: &WorkflowQuery) -> StoreResult<u64> {
        Ok(self.lock().count(query))
    }

    async fn retry(&self, id: Uuid, from: &[Status]) -> StoreResult<Retried> {
        self.with(|state, now| state.retry(id, from, now))
    }

    async fn fork(&self, id: Uuid, from_position: i32) -> StoreResult<Uuid> {
        let fork = self.fresh_id();
        self.with(|state, now| state.fork(id, from_position, fork, now))
    }

    async fn purge(&self, age_ms: i64, batch: u32) -> StoreResult<Vec<Uuid>> {
        self.with(|state, now| Ok(state.purge(now.saturating_sub(age_ms), batch)))
    }

    async fn clock_ms(&self) -> StoreResult<i64> {
        Ok(self.clock.now_ms())
    }

    async fn put_schedule(&self, schedule: &ScheduleRow) -> StoreResult<ScheduleRow> {
        Ok(self.lock().put_schedule(schedule))
    }

    async fn schedule(&self, name: &str) -> StoreResult<Option<ScheduleRow>> {
        Ok(self.lock().schedules.get(name).cloned())
    }

    async fn schedules(&self) -> StoreResult<Vec<ScheduleRow>> {
        Ok(self.lock().schedules.values().cloned().collect())
    }

    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_tick_ms: Option<i64>,
    ) -> StoreResult<bool> {
        Ok(self.lock().set_schedule_paused(name, paused, next_tick_ms))
    }

    async fn delete_schedule(&self, name: &str) -> StoreResult<bool> {
        Ok(self.lock().schedules.remove(name).is_some())
    }

    async fn fire_schedules(
        &self,
        planner: Planner<'_>,
        limit: u32,
    ) -> StoreResult<(Vec<String>, u64)> {
        self.with(|state, now| Ok(state.fire_schedules(planner, limit, now, || self.fresh_id())))
    }

    async fn debounce(&self, debounce: &NewDebounce<'_>) -> StoreResult<(Uuid, bool)> {
        self.with(|state, now| Ok(state.debounce(debounce, self.fresh_id(), now)))
    }
}
