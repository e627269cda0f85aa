//! The identity that owns workflows: its id, lease and heartbeat, and the
//! same-host check that another owner's process is gone. `Ctx` holds one; the public
//! [`crate::Executor`] wraps one.
//!
//! Ownership is a lease held by an executor row: the executor is alive
//! while its lease (database clock) lies in the future, and a background
//! heartbeat pushes it forward every third of the lease. One heartbeat
//! serves every workflow of the executor, so the cost does not grow with
//! the number of workflows in flight.
//!
//! Faults: every beat has a deadline and a failed one is retried soon
//! (with jitter), on a new connection. The executor knows until when its
//! lease is *proven*: a lease the database renewed at a moment no earlier
//! than the beat was sent ends no earlier than that moment plus the
//! lease, so `sent + lease` (less a margin) is a bound read off the
//! database's answer, never a guess of this process's clock. Past it no
//! step starts until a beat answers. A beat that finds the lease already
//! expired by the database clock (the process stalled, or the database
//! was unreachable, for longer than the lease) does not renew it: others
//! may have taken the work over, so the executor releases everything it
//! still owns and registers again.
//!
//! Nothing but the lease says an executor on another host is dead: no
//! session lock, no connection. A connection can be lost (terminated by an
//! administrator, cut by a proxy or a server restart) while its process
//! runs on, and a takeover on that signal would have two live executors
//! run one step; a lease that expired by the database clock is one the
//! owner knows it cannot prove (it stops starting steps before then). On
//! the same host a process that no longer exists is proof enough
//! (`process`), so a restarted or neighbouring process takes over at once.

mod handles;
mod process;

pub(crate) use handles::Handle;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, OnceCell};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::DurableError;
use crate::store::sql::SqlStore;
use crate::store::sql::{PerPool, deadline_passed, jittered, shared_per_pool};
use crate::store::{ExecutorRow, Renewal, Store};

/// Lease of an executor unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// An executor's identity, lease and heartbeat.
pub(crate) struct ExecutorCore {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) id: Uuid,
    lease: Duration,
    /// Set once the executor row is written and the heartbeat runs.
    registered: OnceCell<()>,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
    /// Set when a worker shuts down: no new step starts.
    draining: AtomicBool,
    /// Until when the lease is proven (see the module docs).
    proven: Proven,
    /// Wakes the heartbeat early (a worker saw the database fail).
    nudge: Arc<Notify>,
}

/// The end of the proven lease, as milliseconds after `base` (0: never
/// proven), and a signal for those waiting for a beat to prove it.
struct Proven {
    base: Instant,
    until_ms: AtomicU64,
    renewed: Notify,
    /// Bumped when the lease lapsed and the executor registered again:
    /// proofs of one generation say nothing about reads of an earlier one.
    generation: AtomicU64,
}

impl Proven {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            until_ms: AtomicU64::new(0),
            renewed: Notify::new(),
            generation: AtomicU64::new(0),
        }
    }

    fn prove_until(&self, until: Instant) {
        let ms = u64::try_from(until.saturating_duration_since(self.base).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.until_ms.fetch_max(ms, Ordering::SeqCst);
        self.renewed.notify_waiters();
    }

    fn holds(&self) -> bool {
        self.elapsed_ms() < self.until_ms.load(Ordering::SeqCst)
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A snapshot of the proven lease (see [`ExecutorCore::proof`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proof {
    until_ms: u64,
    generation: u64,
}

#[cfg(test)]
impl Proof {
    /// A proof for tests of code that only carries one along.
    pub(crate) fn forever() -> Self {
        Self {
            until_ms: u64::MAX,
            generation: 0,
        }
    }
}

impl std::fmt::Debug for ExecutorCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorCore")
            .field("id", &self.id)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Drop for ExecutorCore {
    fn drop(&mut self) {
        self.retire();
    }
}

impl ExecutorCore {
    pub(crate) fn new(store: Arc<dyn Store>, id: Uuid, lease: Duration) -> Self {
        Self {
            store,
            id,
            lease: lease.max(Duration::from_secs(1)),
            registered: OnceCell::new(),
            heartbeat: Mutex::new(None),
            draining: AtomicBool::new(false),
            proven: Proven::new(),
            nudge: Arc::new(Notify::new()),
        }
    }

    /// The executor `Ctx::start` uses: one id per process, one executor
    /// (and heartbeat) per connection pool while any workflow of it is in use.
    pub(crate) fn process_default(db: &DatabaseConnection) -> Arc<Self> {
        static PROCESS_ID: OnceLock<Uuid> = OnceLock::new();
        static REGISTRY: PerPool<ExecutorCore> = Mutex::new(Vec::new());
        let id = *PROCESS_ID.get_or_init(Uuid::new_v4);
        shared_per_pool(&REGISTRY, db, || {
            let store: Arc<dyn Store> = Arc::new(SqlStore::new(db).for_lease(DEFAULT_LEASE));
            Arc::new(Self::new(store, id, DEFAULT_LEASE))
        })
    }

    /// Stop the heartbeat for good: the executor is about to expire its
    /// own row (a later beat must not bring it back).
    pub(crate) fn retire(&self) {
        if let Some(task) = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }

    /// Stop starting steps: a worker is shutting down.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Write the executor row and start the heartbeat, once.
    pub(crate) async fn ensure_registered(self: &Arc<Self>) -> Result<(), DurableError> {
        self.registered
            .get_or_try_init(|| async {
                let sent = Instant::now();
                self.beat_with(Renewal::Register).await?;
                self.prove_from(sent);
                let task = tokio::spawn(tracing::Instrument::instrument(
                    heartbeat(Arc::downgrade(self), self.lease / 3, self.nudge.clone()),
                    tracing::info_span!(parent: None, "heartbeat", executor = %self.id),
                ));
                *self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
                Ok::<_, DurableError>(())
            })
            .await?;
        Ok(())
    }

    /// How long one statement of this executor may take: well within its
    /// lease (see `store::sql::deadline_for`).
    pub(crate) fn statement_deadline(&self) -> Duration {
        self.store.statement_deadline()
    }

    /// The generation of the lease: it changes when the lease lapsed and
    /// the executor registered again. A read is known to have happened
    /// under a live lease if the lease is proven when its answer arrives
    /// and the generation is the one it was sent in.
    pub(crate) fn lease_generation(&self) -> u64 {
        self.proven.generation.load(Ordering::SeqCst)
    }

    /// Whether the lease is proven now (see the module docs).
    pub(crate) fn lease_proven(&self) -> bool {
        self.proven.holds()
    }

    /// The proof of the lease as it stands now: until when, in which
    /// generation. A read sent now is known to have run under a live lease
    /// if its answer arrives while this proof [`holds`](Self::holds): the
    /// proof came from beats answered, so committed, before the read was
    /// sent, and no one can take the work over before it runs out. (A
    /// proof renewed by a beat answered after the read was sent says
    /// nothing of when the read ran.)
    pub(crate) fn proof(&self) -> Proof {
        Proof {
            until_ms: self.proven.until_ms.load(Ordering::SeqCst),
            generation: self.lease_generation(),
        }
    }

    /// Whether `proof` still holds: its time has not run out and the
    /// lease has not lapsed since.
    pub(crate) fn holds(&self, proof: &Proof) -> bool {
        self.proven.elapsed_ms() < proof.until_ms && self.lease_generation() == proof.generation
    }

    /// Wait until the lease is proven, at most one lease long (a beat
    /// that answers proves it). Steps start only under a proven lease.
    ///
    /// # Errors
    /// [`DurableError::Interrupted`] if no beat answered in that time: the
    /// workflow is released for whichever executor can reach the database.
    pub(crate) async fn await_proven_lease(&self) -> Result<(), DurableError> {
        if self.lease_proven() {
            return Ok(());
        }
        self.nudge.notify_one();
        let give_up = Instant::now() + self.lease;
        loop {
            let renewed = self.proven.renewed.notified();
            if self.lease_proven() {
                return Ok(());
            }
            if tokio::time::timeout_at(give_up, renewed).await.is_err() {
                return Err(DurableError::Interrupted(format!(
                    "executor {} could not renew its lease for {:?}; no step starts until it does",
                    self.id, self.lease
                )));
            }
        }
    }

    /// Beat now rather than at the next interval (the caller saw the
    /// database fail, or needs a proven lease).
    pub(crate) fn nudge_heartbeat(&self) {
        self.nudge.notify_one();
    }

    /// One heartbeat within its deadline; after a lapse, release our work
    /// and register again.
    pub(crate) async fn beat(&self) -> Result<(), DurableError> {
        let sent = Instant::now();
        let deadline = self.beat_deadline();
        let renewed = tokio::time::timeout(deadline, self.beat_with(Renewal::Renew))
            .await
            .unwrap_or_else(|_| Err(deadline_passed(deadline).into()))?;
        if sent.elapsed() > self.lease / 3 {
            tracing::info!(executor = %self.id, took = ?sent.elapsed(), renewed, "slow beat");
        }
        if renewed {
            self.prove_from(sent);
            return Ok(());
        }
        // Whatever was read under the lapsed lease is void from now on.
        self.proven.generation.fetch_add(1, Ordering::SeqCst);
        crate::telemetry::lease_lost();
        let released = self.store.release_owned(self.id).await?;
        tracing::warn!(
            executor = %self.id,
            released,
            "the lease had expired by the database clock (others may have taken the work over): released what this executor still owned and registered again"
        );
        let sent = Instant::now();
        self.beat_with(Renewal::Register).await?;
        self.prove_from(sent);
        Ok(())
    }

    async fn beat_with(&self, renew: Renewal) -> Result<bool, DurableError> {
        self.store
            .heartbeat(&self.row(), self.lease_ms(), renew)
            .await
    }

    /// A lease renewed by a beat sent at `sent` holds until `sent + lease`
    /// at the earliest; a tenth of it is kept as a margin for clock rates.
    fn prove_from(&self, sent: Instant) {
        self.proven.prove_until(sent + self.lease - self.lease / 10);
    }

    /// How long one beat may take: a sixth of the lease (at least 500 ms),
    /// so a few failed beats still fit in one lease; on a local database,
    /// whose statements must not be cancelled, its statement deadline.
    fn beat_deadline(&self) -> Duration {
        if self.store.is_local() {
            return self.store.statement_deadline();
        }
        (self.lease / 6).max(Duration::from_millis(500))
    }

    fn row(&self) -> ExecutorRow {
        let me = process::this_process();
        ExecutorRow {
            id: self.id,
            hostname: me.host.clone(),
            pid: me.pid,
            pid_started: me.started,
        }
    }

    /// The lease, in milliseconds.
    pub(crate) fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Expire every executor that owns work and looks alive by its lease but
    /// is a process on this host that no longer exists.
    pub(crate) async fn expire_gone_owners(&self) -> Result<(), DurableError> {
        for owner in self.store.live_owners().await? {
            self.expire_owner_if_gone(&owner).await?;
        }
        Ok(())
    }

    /// If the live-looking owner of `workflow` is a process on this host
    /// that no longer exists, expire it so its work can be taken over now.
    /// Returns whether it did.
    pub(crate) async fn expire_if_gone(&self, workflow: Uuid) -> Result<bool, DurableError> {
        match self.store.owner_of(workflow).await? {
            Some((owner, true)) => self.expire_owner_if_gone(&owner).await,
            _ => Ok(false),
        }
    }

    /// Expire `owner` if it is another process on this host that is gone.
    async fn expire_owner_if_gone(&self, owner: &ExecutorRow) -> Result<bool, DurableError> {
        if owner.id == self.id || !process::is_gone(&owner.hostname, owner.pid, owner.pid_started) {
            return Ok(false);
        }
        tracing::info!(executor = %owner.id, pid = owner.pid, "owner process is gone; its work may be taken over");
        self.store.expire_executor(owner.id).await?;
        Ok(true)
    }
}

/// Push the lease forward until the executor is dropped: every `every`,
/// or at once when nudged; after a failure again soon (100 ms doubling up
/// to `every`, with jitter, so executors that lost the database together
/// do not come back together).
async fn heartbeat(executor: Weak<ExecutorCore>, every: Duration, nudge: Arc<Notify>) {
    let mut failures = 0u32;
    loop {
        let wait = match failures {
            0 => every,
            n => jittered(Duration::from_millis(100 << n.min(6)).min(every)),
        };
        // Only the `Notify` is held across the wait, never the executor,
        // so dropping the executor ends this task.
        tokio::select! {
            biased;
            () = tokio::time::sleep(wait) => {}
            () = nudge.notified() => {}
        }
        let Some(executor) = executor.upgrade() else {
            return;
        };
        match executor.beat().await {
            Ok(()) => failures = 0,
            Err(err) => {
                failures += 1;
                tracing::warn!(executor = %executor.id, failures, error = %err, "heartbeat failed");
            }
        }
    }
}
