//! `Worker`: a long-running executor that claims enqueued workflows, runs
//! their registered functions, resumes the work of executors that died,
//! and shuts down gracefully.
//!
//! The loop: claim as much work as there is room for (per queue, within the
//! queue's limits, in one short transaction each), spawn it, then wait for a
//! wake-up (`LISTEN` on PostgreSQL), a finished workflow, or the poll
//! interval, whichever comes first. Notifications are only hints: the poll
//! always runs.

mod announce;
mod claim;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

use crate::client::Client;
use crate::ctx::Ctx;
use crate::error::DurableError;
use crate::executor::Executor;
use crate::queue::DEFAULT_QUEUE;
use crate::registry::Registry;
use crate::store::WorkflowRow;
use crate::store::sql::jittered;
use claim::{Claim, Claimer, Served};

/// How often a worker looks for owners on this host whose process is gone.
const OWNER_CHECK: Duration = Duration::from_secs(1);

/// An executor process's worker loop.
///
/// ```no_run
/// use durable::{Ctx, DurableError, Registry, Worker};
///
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), DurableError> {
/// let mut registry = Registry::new();
/// registry.register("double", |ctx: Ctx, n: u64| async move {
///     ctx.step("double", || async move { Ok(n * 2) }).await
/// });
/// Worker::new(&db, registry)
///     .concurrency(32)
///     .run(async { tokio::signal::ctrl_c().await.ok(); })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Worker {
    db: DatabaseConnection,
    executor: Executor,
    registry: Arc<Registry>,
    queues: Vec<Served>,
    slots: usize,
    poll: Duration,
    app_version: Option<String>,
    any_version: bool,
    grace: Duration,
    max_recoveries: u32,
    retention: Option<Duration>,
    fire_schedules: bool,
}

impl Worker {
    /// A worker for the `default` queue running the functions of
    /// `registry`: 16 workflows at a time, polling every 250 ms, 10 s of
    /// grace at shutdown, the default lease.
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry);
    /// # }
    /// ```
    pub fn new(db: &DatabaseConnection, registry: Registry) -> Self {
        Self::assemble(db, Executor::new(db), registry)
    }

    fn assemble(db: &DatabaseConnection, executor: Executor, registry: Registry) -> Self {
        Self {
            db: db.clone(),
            executor,
            registry: Arc::new(registry),
            queues: vec![Served {
                name: DEFAULT_QUEUE.to_string(),
                slots: None,
            }],
            slots: 16,
            poll: Duration::from_millis(250),
            app_version: None,
            any_version: false,
            grace: Duration::from_secs(10),
            max_recoveries: crate::DEFAULT_MAX_RECOVERIES,
            retention: None,
            fire_schedules: true,
        }
    }

    /// A worker on `store` under the executor `id` (the simulation's way
    /// in: an in-memory store, ids from a seed).
    #[cfg(any(test, feature = "testing"))]
    #[allow(dead_code)]
    pub(crate) fn on_store(
        store: Arc<dyn crate::store::Store>,
        registry: Registry,
        id: Uuid,
        lease: Duration,
    ) -> Self {
        let db = store.connection().clone();
        let executor = Executor {
            core: Arc::new(crate::identity::ExecutorCore::new(store, id, lease)),
        };
        Self::assemble(&db, executor, registry)
    }

    /// Take a workflow over from executors that died while running it at
    /// most this many times (default [`crate::DEFAULT_MAX_RECOVERIES`]);
    /// the next claim fails it with
    /// [`DurableError::MaxRecoveryExceeded`] instead of running it, so a
    /// workflow that crashes its process cannot crash every worker in
    /// turn. [`crate::Client::retry`] runs it again.
    ///
    /// ```no_run
    /// # fn demo(db: sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry).max_recoveries(5);
    /// # }
    /// ```
    pub fn max_recoveries(mut self, limit: u32) -> Self {
        self.max_recoveries = limit;
        self
    }

    /// Delete workflow trees that finished `older_than` ago or earlier, as
    /// [`crate::Client::purge_finished`] does, about once a minute while
    /// the worker runs (off by default). Any number of workers may do it:
    /// they share the batches.
    ///
    /// ```no_run
    /// # fn demo(db: sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let week = std::time::Duration::from_secs(7 * 86_400);
    /// let worker = durable::Worker::new(&db, registry).retention(week);
    /// # }
    /// ```
    pub fn retention(mut self, older_than: Duration) -> Self {
        self.retention = Some(older_than);
        self
    }

    /// Fire the cron schedules that are due (on by default): about twice a
    /// second the worker enqueues the workflows of due ticks, sharing the
    /// schedules with every other worker that fires them (each tick starts
    /// once, whichever worker fires it). Off, this worker only runs what
    /// others enqueue.
    ///
    /// ```no_run
    /// # fn demo(db: sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry).fire_schedules(false);
    /// # }
    /// ```
    pub fn fire_schedules(mut self, on: bool) -> Self {
        self.fire_schedules = on;
        self
    }

    /// Serve these queues (replacing the default list), without a limit of
    /// this worker's own. The order is the order of preference: a free
    /// slot goes to the first queue in the list that has work.
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry).queues(["payments", "emails"]);
    /// # }
    /// ```
    pub fn queues<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.queues = names
            .into_iter()
            .map(|name| Served {
                name: name.into(),
                slots: None,
            })
            .collect();
        self
    }

    /// Serve `name` too, running at most `limit` of its workflows at once in
    /// this worker (the queue's own limits hold across all workers).
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// // The `default` queue, and at most 2 of `gpu` at a time here.
    /// let worker = durable::Worker::new(&db, registry).queue_with_limit("gpu", 2);
    /// # }
    /// ```
    pub fn queue_with_limit(mut self, name: impl Into<String>, limit: usize) -> Self {
        let name = name.into();
        self.queues.retain(|q| q.name != name);
        self.queues.push(Served {
            name,
            slots: Some(Arc::new(Semaphore::new(limit))),
        });
        self
    }

    /// At most `n` workflows running in this worker (default 16).
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry).concurrency(64);
    /// # }
    /// ```
    pub fn concurrency(mut self, n: usize) -> Self {
        self.slots = n.max(1);
        self
    }

    /// How often to look for work without a wake-up (default 250 ms).
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry)
    ///     .poll_interval(std::time::Duration::from_secs(1));
    /// # }
    /// ```
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(10));
        self
    }

    /// The lease of this worker's executor (default [`crate::DEFAULT_LEASE`]).
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// // Other hosts take its work over about 10 s after it stops renewing.
    /// let worker = durable::Worker::new(&db, registry).lease(std::time::Duration::from_secs(10));
    /// # }
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.executor = Executor::with_lease(&self.db, lease);
        self
    }

    /// The application version this worker runs. It starts workflows
    /// without a version (recording its own) and resumes only workflows of
    /// its version, unless [`Worker::any_version`] is set.
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry).app_version("v2");
    /// # }
    /// ```
    pub fn app_version(mut self, version: impl Into<String>) -> Self {
        self.app_version = Some(version.into());
        self
    }

    /// Resume workflows recorded with any application version.
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry).app_version("v2").any_version(true);
    /// # }
    /// ```
    pub fn any_version(mut self, any: bool) -> Self {
        self.any_version = any;
        self
    }

    /// How long running workflows may take to reach a step boundary at
    /// shutdown before they are stopped and released (default 10 s).
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry)
    ///     .shutdown_grace(std::time::Duration::from_secs(30));
    /// # }
    /// ```
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The id of this worker's executor.
    ///
    /// ```no_run
    /// # fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) {
    /// let worker = durable::Worker::new(&db, registry);
    /// println!("worker {} starting", worker.id());
    /// # }
    /// ```
    pub fn id(&self) -> Uuid {
        self.executor.id()
    }

    /// A client that knows this worker's workflow functions.
    ///
    /// ```no_run
    /// # async fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) -> Result<(), durable::DurableError> {
    /// let worker = durable::Worker::new(&db, registry);
    /// // Enqueue refuses names the registry lacks; `run` runs one inline.
    /// let doubled: u64 = worker.client().run("double", "double-21", &21u64).await?;
    /// # Ok(()) }
    /// ```
    pub fn client(&self) -> Client {
        Client::with_registry(&self.db, self.registry.clone())
    }

    /// Run until `shutdown` completes, then stop claiming, let running
    /// workflows reach a step boundary within the grace period, stop the
    /// rest, and release everything this worker owns so other executors
    /// resume it at once.
    ///
    /// # Errors
    /// [`DurableError::UnknownQueue`] if a served queue was not declared;
    /// [`DurableError::Db`] if the executor cannot register at start.
    /// Errors while running are logged and retried, never fatal.
    ///
    /// ```no_run
    /// # async fn demo(db: durable::sea_orm::DatabaseConnection, registry: durable::Registry) -> Result<(), durable::DurableError> {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let worker = durable::Worker::new(&db, registry);
    /// let running = tokio::spawn(worker.run(async move {
    ///     stopped.await.ok();
    /// }));
    /// // Later: stop claiming, let running work reach a step boundary or
    /// // release it, and wait until that is done.
    /// stop.send(()).ok();
    /// running.await.expect("the worker task panicked")?;
    /// # Ok(()) }
    /// ```
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DurableError> {
        let inner = self.executor.core.clone();
        let store = inner.store.clone();
        for queue in &self.queues {
            if store.queue(&queue.name).await?.is_none() {
                return Err(DurableError::UnknownQueue(queue.name.clone()));
            }
        }
        inner.ensure_registered().await?;
        let wake = Arc::new(Notify::new());
        let announcer = Arc::new(announce::Announcer::new(store.clone()));
        let listener = {
            let (store, wake) = (store.clone(), wake.clone());
            tokio::spawn(async move { store.listen(wake).await }.instrument(
                tracing::info_span!(parent: None, "worker.listen", executor = %inner.id),
            ))
        };
        let retention = self.retention.map(|older_than| {
            let store = store.clone();
            tokio::spawn(
                async move { purge_now_and_then(store, older_than).await }.instrument(
                    tracing::info_span!(parent: None, "worker.retention", executor = %inner.id),
                ),
            )
        });
        let scheduler = self.fire_schedules.then(|| {
            let store = store.clone();
            tokio::spawn(async move { fire_now_and_then(store).await }.instrument(
                tracing::info_span!(parent: None, "worker.schedules", executor = %inner.id),
            ))
        });
        let claimer = Arc::new(Claimer::new(
            inner.clone(),
            self.queues.clone(),
            self.slots,
            self.registry.names_json(),
            (
                self.app_version.clone(),
                self.any_version || self.app_version.is_none(),
            ),
        ));
        tracing::info!(executor = %inner.id, queues = ?self.queues.iter().map(|q| &q.name).collect::<Vec<_>>(), "worker started");
        let mut tasks = JoinSet::new();
        // `shutdown` is polled alongside the rounds, not only between them:
        // whatever it awaits (a signal handler it installs on its first
        // poll, a query holding a pooled connection) makes progress while
        // the worker claims. It stores its end as a permit for the loop.
        let stop = Notify::new();
        let watch = async {
            shutdown.await;
            claimer.stop();
            stop.notify_one();
        };
        let rounds = async {
            let mut checked_owners = tokio::time::Instant::now() - OWNER_CHECK;
            // Inline roots to take over (of dead executors, or due to wake
            // up) are looked for after a wake-up from outside (a message or
            // a child's finish may have woken one) and otherwise once a poll
            // interval, not in every round: rounds follow every finished
            // workflow, and the look is a transaction of its own that almost
            // always finds nothing.
            let mut checked_orphans = tokio::time::Instant::now() - self.poll;
            let mut woken = false;
            loop {
                // On one host a dead process is known at once (elsewhere
                // only its lease tells): look once a second.
                if checked_owners.elapsed() >= OWNER_CHECK {
                    checked_owners = tokio::time::Instant::now();
                    if let Err(err) = inner.expire_gone_owners().await {
                        tracing::warn!(error = %err, "checking for dead owners failed");
                    }
                }
                // Claim only under a lease this executor can prove (after a
                // database restart or a stall its own work may look
                // orphaned to others until it has re-asserted itself).
                if !inner.lease_proven()
                    && let Err(err) = inner.beat().await
                {
                    tracing::warn!(error = %err, "cannot renew the lease; not claiming");
                    tokio::select! {
                        biased;
                        () = stop.notified() => break,
                        () = tokio::time::sleep(jittered(self.poll)) => {}
                    }
                    continue;
                }
                let mut claimed_any = false;
                let orphans = woken || checked_orphans.elapsed() >= self.poll;
                woken = false;
                if orphans {
                    checked_orphans = tokio::time::Instant::now();
                }
                // What a claim saw opens its workflow's start window.
                let claim_sent = crate::call::Sent::now(&inner);
                // A failed claim renews the lease now, and the next round
                // comes after a pause with jitter rather than with every
                // other worker at once.
                let (claims, failed) = claimer.round(orphans).await;
                for claimed in claims {
                    claimed_any = true;
                    let claim = claimer.accept(claimed, claim_sent);
                    tasks.spawn(
                        run_chain(
                            claimer.clone(),
                            self.registry.clone(),
                            claim,
                            (self.max_recoveries, announcer.clone()),
                        )
                        .in_current_span(),
                    );
                }
                // After the rows of this round are registered: they are ours.
                claimer.release_stray().await;
                if claimed_any && !failed && claimer.slots.available_permits() > 0 {
                    continue;
                }
                let pause = if failed {
                    jittered(self.poll * 2)
                } else {
                    self.poll
                };
                // `biased`: the order of the branches is fixed (stop first),
                // so a seeded simulation replays the same schedule.
                // A finished workflow wakes the loop through `join_next`.
                woken = tokio::select! {
                    biased;
                    () = stop.notified() => break,
                    () = wake.notified(), if !failed => true,
                    () = tokio::time::sleep(pause) => false,
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => false,
                };
            }
        };
        // Everything the loop logs names this worker's executor.
        let rounds = tracing::Instrument::instrument(
            rounds,
            tracing::info_span!(parent: None, "worker", executor = %inner.id),
        );
        tokio::join!(watch, rounds);
        tracing::info!(executor = %inner.id, running = tasks.len(), "worker shutting down");
        inner.drain();
        if tokio::time::timeout(self.grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        // Both retried while the database is unreachable (a lost
        // connection at shutdown must not leave the work owned by an
        // executor that looks alive until its lease runs out).
        inner.retire();
        let released = store.release_owned(inner.id).await?;
        store.expire_executor(inner.id).await?;
        if released > 0
            && let Err(err) = store.notify(DEFAULT_QUEUE).await
        {
            tracing::debug!(error = %err, "wake-up notification failed");
        }
        listener.abort();
        for duty in [retention, scheduler].into_iter().flatten() {
            duty.abort();
        }
        tracing::info!(executor = %inner.id, released, "worker stopped");
        Ok(())
    }
}

/// Run a claimed workflow, then the next one the task claims into the
/// same slot (see [`Claimer::next`]), until there is none; the loop learns
/// of the free slot when the task ends.
async fn run_chain(
    claimer: Arc<Claimer>,
    registry: Arc<Registry>,
    mut claim: Claim,
    (max_recoveries, announcer): (u32, Arc<announce::Announcer>),
) {
    loop {
        let Claim {
            row,
            sent,
            permits,
            registered,
        } = claim;
        let queue = row.queue.clone();
        run_one(&claimer, &registry, (row, sent), registered, max_recoveries).await;
        // A slot of the queue is free: other workers may claim now.
        if let Some(queue) = queue {
            announcer.slot_freed(&queue).await;
        }
        match claimer.next(permits).await {
            Some(next) => claim = next,
            None => return,
        }
    }
}

/// Run one claimed workflow's registered function to its end and record
/// the outcome (the runner shared with `Client::run`).
async fn run_one(
    claimer: &Claimer,
    registry: &Registry,
    (row, sent): (WorkflowRow, crate::call::Sent),
    registered: claim::Registered,
    max_recoveries: u32,
) {
    let (id, name) = (row.id, row.name.clone());
    tracing::debug!(workflow.id = %id, epoch = row.lease_epoch, "claimed");
    let _turn = registered.turn().await;
    let Some(workflow) = registry.get(&name) else {
        // Claims only select registered names; this is a bug if it happens.
        tracing::error!(workflow.id = %id, workflow.name = %name, "claimed a workflow with no function");
        return;
    };
    let history_empty = row.history_empty;
    let claimed_ms = row.claimed_ms;
    let ctx = Ctx::claimed(claimer.executor.clone(), row, history_empty);
    if let Some(now_ms) = claimed_ms {
        ctx.opened(sent, now_ms);
    }
    let result = match ctx.refuse_if_poisoned(max_recoveries).await {
        Ok(()) => crate::runner::run(workflow, ctx).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => tracing::debug!(workflow.id = %id, workflow.name = %name, "workflow finished"),
        Err(DurableError::Suspended { wake_at_ms, .. }) => {
            tracing::debug!(workflow.id = %id, workflow.name = %name, ?wake_at_ms, "workflow suspended");
        }
        Err(err) => {
            tracing::debug!(workflow.id = %id, workflow.name = %name, error = %err, "workflow stopped");
        }
    }
}

/// How often a worker with a retention purges.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// The retention duty: purge at start, then about every minute (jittered,
/// so workers started together do not purge together). A failure is
/// logged and tried again next time.
async fn purge_now_and_then(store: Arc<dyn crate::store::Store>, older_than: Duration) {
    loop {
        if let Err(err) = crate::client::retention::purge_all(store.as_ref(), older_than).await {
            tracing::warn!(error = %err, "purging finished workflows failed");
        }
        tokio::time::sleep(crate::store::sql::jittered(PURGE_EVERY)).await;
    }
}

/// How often a worker looks for due schedules.
const SCHEDULES_EVERY: Duration = Duration::from_millis(500);

/// The scheduler duty: fire what is due, about twice a second (jittered,
/// so workers started together spread their reads). A failure (the
/// database restarting) is logged and tried again next time.
async fn fire_now_and_then(store: Arc<dyn crate::store::Store>) {
    loop {
        match crate::client::schedules::fire_due(store.as_ref()).await {
            Ok(0) => {}
            Ok(started) => tracing::debug!(started, "fired due schedules"),
            Err(err) => tracing::warn!(error = %err, "firing due schedules failed"),
        }
        tokio::time::sleep(crate::store::sql::jittered(SCHEDULES_EVERY)).await;
    }
}
