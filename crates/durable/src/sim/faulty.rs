//! `FaultyStore`: one executor's view of the shared store in a simulation,
//! with the faults of a real network and process between them.
//!
//! Every operation may, by the seeded generator: fail before it reaches
//! the store (a refused connection: nothing happened), reach it and lose
//! its answer (it happened, the caller hears an error: the unknown outcome
//! of a lost `COMMIT` reply), or be delayed. While the executor is
//! *stalled* (a stopped process) its operations wait until the stall ends;
//! once it *crashed* they fail for good. Every fault is a transient error,
//! as the SQL store reports a lost connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::rng::Rng;
use super::{Event, Log};
use crate::query::WorkflowQuery;
use crate::read::{WorkflowSummary, WorkflowTree};
use crate::status::Status;
use crate::store::{
    Check, Checkpoint, ChildStart, ClaimFilter, Effect, Entry, ExecutorRow, Lease, NewChild,
    NewDebounce, NewEnqueued, NewMessage, NewRoot, Planner, QueueLimits, Received, Renewal,
    Retried, ScheduleRow, Seen, Started, Store, StoreResult, StreamItem, Suspension, Transition,
    WorkflowRow,
};

/// How often each fault happens, per operation.
#[derive(Debug, Clone, Copy)]
pub(super) struct FaultRates {
    pub(super) fail_before: f64,
    pub(super) lose_reply: f64,
    pub(super) delay: f64,
    /// Longest delay of one operation.
    pub(super) max_delay: Duration,
}

/// What the simulation controls about one executor's connection.
#[derive(Debug, Default)]
pub(super) struct Link {
    /// Operations wait until then (a stopped process).
    stalled_until: Mutex<Option<Instant>>,
    crashed: std::sync::atomic::AtomicBool,
    /// No more random faults (the network healed).
    healed: std::sync::atomic::AtomicBool,
}

impl Link {
    pub(super) fn stall_until(&self, until: Instant) {
        *self.stalled_until.lock().unwrap() = Some(until);
    }

    pub(super) fn crash(&self) {
        self.crashed
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub(super) fn heal(&self) {
        self.healed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn is_healed(&self) -> bool {
        self.healed.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn is_crashed(&self) -> bool {
        self.crashed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The shared store as one executor sees it.
#[derive(Debug)]
pub(super) struct FaultyStore {
    pub(super) inner: Arc<dyn Store>,
    pub(super) rng: Arc<Mutex<Rng>>,
    pub(super) rates: FaultRates,
    pub(super) link: Arc<Link>,
    /// Faults injected, for the report.
    pub(super) injected: Arc<Mutex<u64>>,
    /// Where accepted step commits are logged.
    pub(super) log: Arc<Log>,
}

/// A lost connection, as sqlx reports it.
fn lost() -> crate::error::DurableError {
    let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated fault");
    sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(Arc::new(
        sea_orm::sqlx::Error::Io(io),
    )))
    .into()
}

impl FaultyStore {
    /// Before an operation: wait out a stall, then maybe a delay; `Err`
    /// if it fails before reaching the store.
    async fn before(&self) -> StoreResult<()> {
        loop {
            if self.link.is_crashed() {
                return Err(lost());
            }
            let stalled = *self.link.stalled_until.lock().unwrap();
            match stalled {
                Some(until) if Instant::now() < until => tokio::time::sleep_until(until).await,
                _ => break,
            }
        }
        if self.link.is_healed() {
            return Ok(());
        }
        let (fail, delay) = {
            let mut rng = self.rng.lock().unwrap();
            let fail = rng.chance(self.rates.fail_before);
            let delay = rng
                .chance(self.rates.delay)
                .then(|| self.rates.max_delay.mul_f64(rng.unit()));
            (fail, delay)
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if fail || self.link.is_crashed() {
            *self.injected.lock().unwrap() += 1;
            return Err(lost());
        }
        Ok(())
    }

    /// After an operation reached the store: its answer waits out a stall
    /// that began meanwhile (a reply held up on a silent connection, a
    /// process stopped before it read it), and may be lost.
    async fn after<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        let stalled = *self.link.stalled_until.lock().unwrap();
        if let Some(until) = stalled
            && Instant::now() < until
        {
            tokio::time::sleep_until(until).await;
        }
        let lose = !self.link.is_healed() && self.rng.lock().unwrap().chance(self.rates.lose_reply);
        if lose || self.link.is_crashed() {
            *self.injected.lock().unwrap() += 1;
            return Err(lost());
        }
        result
    }
}

/// `self.inner.$op(args)` between the faults.
macro_rules! faulty {
    ($self:ident . $op:ident ( $($arg:expr),* )) => {{
        $self.before().await?;
        let result = $self.inner.$op($($arg),*).await;
        $self.after(result).await
    }};
}

#[async_trait]
impl Store for FaultyStore {
    fn connection(&self) -> &DatabaseConnection {
        self.inner.connection()
    }

    fn statement_deadline(&self) -> Duration {
        self.inner.statement_deadline()
    }

    async fn heartbeat(
        &self,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool> {
        faulty!(self.heartbeat(executor, lease_ms, renew))
    }

    async fn expire_executor(&self, id: Uuid) -> StoreResult<()> {
        faulty!(self.expire_executor(id))
    }

    async fn owner_of(&self, workflow: Uuid) -> StoreResult<Option<(ExecutorRow, bool)>> {
        faulty!(self.owner_of(workflow))
    }

    async fn live_owners(&self) -> StoreResult<Vec<ExecutorRow>> {
        faulty!(self.live_owners())
    }

    async fn start_root(&self, root: &NewRoot<'_>) -> StoreResult<Started> {
        faulty!(self.start_root(root))
    }

    async fn start_child(&self, child: &NewChild<'_>) -> StoreResult<ChildStart> {
        faulty!(self.start_child(child))
    }

    async fn workflow(&self, id: Uuid) -> StoreResult<Option<WorkflowRow>> {
        faulty!(self.workflow(id))
    }

    async fn root_by_key(&self, key: &str) -> StoreResult<Option<WorkflowRow>> {
        faulty!(self.root_by_key(key))
    }

    async fn set_timeout(&self, id: Uuid, timeout_ms: i64) -> StoreResult<bool> {
        faulty!(self.set_timeout(id, timeout_ms))
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
        faulty!(self.finish(id, lease, status, output, error, spawned_by))
    }

    async fn release(
        &self,
        id: Uuid,
        lease: &Lease,
        suspension: Option<&Suspension>,
    ) -> StoreResult<bool> {
        faulty!(self.release(id, lease, suspension))
    }

    async fn transition(&self, id: Uuid, transition: Transition) -> StoreResult<u64> {
        faulty!(self.transition(id, transition))
    }

    async fn wake(&self, workflow: Uuid, name: &str, output: &str) -> StoreResult<bool> {
        faulty!(self.wake(workflow, name, output))
    }

    async fn history_page(
        &self,
        workflow: Uuid,
        from_position: i32,
        limit: i64,
    ) -> StoreResult<Vec<Entry>> {
        faulty!(self.history_page(workflow, from_position, limit))
    }

    async fn check(
        &self,
        workflow: Uuid,
        root: bool,
        holder: Uuid,
        position: i32,
    ) -> StoreResult<Option<Check>> {
        faulty!(self.check(workflow, root, holder, position))
    }

    async fn commit(&self, checkpoint: &Checkpoint<'_>) -> StoreResult<Option<Seen>> {
        self.before().await?;
        let result = self.inner.commit(checkpoint).await;
        // Logged when the store accepted it, whether or not the answer
        // then reaches the executor.
        if matches!(result, Ok(Some(_)))
            && checkpoint.status == Status::Completed
            && checkpoint.kind == crate::status::StepKind::Step
        {
            self.log.push(Event::Committed {
                workflow: checkpoint.workflow,
                position: checkpoint.position,
            });
        }
        self.after(result).await
    }

    async fn commit_with(
        &self,
        checkpoint: &Checkpoint<'_>,
        effect: &Effect<'_>,
    ) -> StoreResult<bool> {
        faulty!(self.commit_with(checkpoint, effect))
    }

    async fn receive(&self, checkpoint: &Checkpoint<'_>, topic: &str) -> StoreResult<Received> {
        faulty!(self.receive(checkpoint, topic))
    }

    async fn has_message(&self, workflow: Uuid, topic: &str) -> StoreResult<bool> {
        faulty!(self.has_message(workflow, topic))
    }

    async fn entry(&self, workflow: Uuid, position: i32) -> StoreResult<Option<Entry>> {
        faulty!(self.entry(workflow, position))
    }

    async fn begin_user_transaction(&self, idle_limit_ms: i64) -> StoreResult<DatabaseTransaction> {
        faulty!(self.begin_user_transaction(idle_limit_ms))
    }

    async fn commit_in(
        &self,
        tx: &DatabaseTransaction,
        checkpoint: &Checkpoint<'_>,
    ) -> StoreResult<bool> {
        faulty!(self.commit_in(tx, checkpoint))
    }

    async fn send(&self, message: &NewMessage<'_>) -> StoreResult<bool> {
        faulty!(self.send(message))
    }

    async fn event(&self, workflow: Uuid, key: &str) -> StoreResult<Option<String>> {
        faulty!(self.event(workflow, key))
    }

    async fn stream_page(
        &self,
        workflow: Uuid,
        key: &str,
        from_offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<StreamItem>> {
        faulty!(self.stream_page(workflow, key, from_offset, limit))
    }

    async fn enqueue(&self, work: &NewEnqueued<'_>) -> StoreResult<Option<Uuid>> {
        faulty!(self.enqueue(work))
    }

    async fn queue(&self, name: &str) -> StoreResult<Option<QueueLimits>> {
        faulty!(self.queue(name))
    }

    async fn declare_queue(&self, name: &str, limits: &QueueLimits) -> StoreResult<()> {
        faulty!(self.declare_queue(name, limits))
    }

    async fn claim_from_queue(
        &self,
        queue: &str,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        faulty!(self.claim_from_queue(queue, owner, want, filter))
    }

    async fn claim_next(
        &self,
        queue: &str,
        owner: Uuid,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Option<WorkflowRow>> {
        faulty!(self.claim_next(queue, owner, filter))
    }

    async fn claim_orphans(
        &self,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        faulty!(self.claim_orphans(owner, want, filter))
    }

    async fn release_dead(&self) -> StoreResult<Vec<Uuid>> {
        faulty!(self.release_dead())
    }

    async fn release_owned(&self, owner: Uuid) -> StoreResult<u64> {
        faulty!(self.release_owned(owner))
    }

    async fn release_stray(&self, owner: Uuid, running: &[Uuid]) -> StoreResult<u64> {
        faulty!(self.release_stray(owner, running))
    }

    async fn notify(&self, queue: &str) -> StoreResult<()> {
        self.inner.notify(queue).await
    }

    async fn listen(&self, wake: Arc<Notify>) {
        self.inner.listen(wake).await;
    }

    async fn summary(&self, id: Uuid) -> StoreResult<Option<WorkflowSummary>> {
        faulty!(self.summary(id))
    }

    async fn tree(&self, id: Uuid) -> StoreResult<Option<WorkflowTree>> {
        faulty!(self.tree(id))
    }

    async fn list(&self, query: &WorkflowQuery, fetch: u32) -> StoreResult<Vec<WorkflowRow>> {
        faulty!(self.list(query, fetch))
    }

    async fn count(&self, query: &WorkflowQuery) -> StoreResult<u64> {
        faulty!(self.count(query))
    }

    async fn queues(&self) -> StoreResult<Vec<crate::read::QueueInfo>> {
        faulty!(self.queues())
    }

    async fn retry(&self, id: Uuid, from: &[Status]) -> StoreResult<Retried> {
        faulty!(self.retry(id, from))
    }

    async fn fork(&self, id: Uuid, from_position: i32) -> StoreResult<Uuid> {
        faulty!(self.fork(id, from_position))
    }

    async fn purge(&self, age_ms: i64, batch: u32) -> StoreResult<Vec<Uuid>> {
        faulty!(self.purge(age_ms, batch))
    }

    async fn clock_ms(&self) -> StoreResult<i64> {
        faulty!(self.clock_ms())
    }

    async fn put_schedule(&self, schedule: &ScheduleRow) -> StoreResult<ScheduleRow> {
        faulty!(self.put_schedule(schedule))
    }

    async fn schedule(&self, name: &str) -> StoreResult<Option<ScheduleRow>> {
        faulty!(self.schedule(name))
    }

    async fn schedules(&self) -> StoreResult<Vec<ScheduleRow>> {
        faulty!(self.schedules())
    }

    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_tick_ms: Option<i64>,
    ) -> StoreResult<bool> {
        faulty!(self.set_schedule_paused(name, paused, next_tick_ms))
    }

    async fn delete_schedule(&self, name: &str) -> StoreResult<bool> {
        faulty!(self.delete_schedule(name))
    }

    async fn fire_schedules(
        &self,
        planner: Planner<'_>,
        limit: u32,
    ) -> StoreResult<(Vec<String>, u64)> {
        faulty!(self.fire_schedules(planner, limit))
    }

    async fn debounce(&self, debounce: &NewDebounce<'_>) -> StoreResult<(Uuid, bool)> {
        faulty!(self.debounce(debounce))
    }
}
