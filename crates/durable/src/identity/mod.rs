//! The identity that owns workflows: its id, lease and heartbeat, and the
//! liveness checks of other owners. `Ctx` holds one; the public
//! [`crate::Executor`] wraps one.
//!
//! Ownership is a lease held by an executor row: the executor is alive
//! while its lease (database clock) lies in the future, and a background
//! heartbeat pushes it forward every third of the lease. One heartbeat
//! serves every workflow of the executor, so the cost does not grow with
//! the number of workflows in flight.

mod process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::DurableError;
use crate::store::sql::SqlStore;
use crate::store::{ExecutorRow, Liveness, Store};

/// Lease of an executor unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// An executor's identity, lease and heartbeat.
pub(crate) struct ExecutorCore {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) id: Uuid,
    lease: Duration,
    /// What proves us alive besides the lease, set at registration.
    liveness: OnceCell<Option<Arc<dyn Liveness>>>,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
    /// Set when a worker shuts down: no new step starts.
    draining: AtomicBool,
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
        if let Some(task) = self.heartbeat.lock().ok().and_then(|mut h| h.take()) {
            task.abort();
        }
    }
}

impl ExecutorCore {
    pub(crate) fn new(store: Arc<dyn Store>, id: Uuid, lease: Duration) -> Self {
        Self {
            store,
            id,
            lease: lease.max(Duration::from_secs(1)),
            liveness: OnceCell::new(),
            heartbeat: Mutex::new(None),
            draining: AtomicBool::new(false),
        }
    }

    /// The executor `Ctx::start` uses: one id per process, one executor
    /// (and heartbeat) per connection pool while any workflow of it is in use.
    pub(crate) fn process_default(db: &DatabaseConnection) -> Arc<Self> {
        static PROCESS_ID: OnceLock<Uuid> = OnceLock::new();
        static REGISTRY: Mutex<Vec<(usize, Weak<ExecutorCore>)>> = Mutex::new(Vec::new());
        let id = *PROCESS_ID.get_or_init(Uuid::new_v4);
        let key = pool_key(db);
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(existing) = key.and_then(|key| {
            registry
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, weak)| weak.upgrade())
        }) {
            return existing;
        }
        let store: Arc<dyn Store> = Arc::new(SqlStore::new(db));
        let core = Arc::new(Self::new(store, id, DEFAULT_LEASE));
        if let Some(key) = key {
            registry.push((key, Arc::downgrade(&core)));
        }
        core
    }

    /// Stop starting steps: a worker is shutting down.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Open the liveness connection, write the executor row and start the
    /// heartbeat, once.
    pub(crate) async fn ensure_registered(self: &Arc<Self>) -> Result<(), DurableError> {
        self.liveness
            .get_or_try_init(|| async {
                let liveness = self.store.open_liveness().await?;
                self.beat_with(liveness.as_ref()).await?;
                let task = tokio::spawn(heartbeat(Arc::downgrade(self), self.lease / 3));
                *self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
                Ok::<_, DurableError>(liveness)
            })
            .await?;
        Ok(())
    }

    /// One heartbeat, on the liveness connection if there is one.
    async fn beat(&self) -> Result<(), DurableError> {
        self.beat_with(self.liveness.get().and_then(Option::as_ref))
            .await
    }

    async fn beat_with(&self, liveness: Option<&Arc<dyn Liveness>>) -> Result<(), DurableError> {
        let row = self.row(liveness.and_then(|l| l.lock_key()));
        match liveness {
            Some(l) => l.beat(&row, self.lease_ms()).await,
            None => self.store.heartbeat(&row, self.lease_ms()).await,
        }
    }

    fn row(&self, lock_key: Option<i64>) -> ExecutorRow {
        let me = process::this_process();
        ExecutorRow {
            id: self.id,
            hostname: me.hostname.clone(),
            pid: me.pid,
            pid_started: me.started,
            lock_key,
        }
    }

    fn lease_ms(&self) -> i64 {
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

/// Push the lease forward until the executor is dropped.
async fn heartbeat(executor: Weak<ExecutorCore>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(executor) = executor.upgrade() else {
            return;
        };
        if let Err(err) = executor.beat().await {
            tracing::warn!(executor = %executor.id, error = %err, "heartbeat failed");
        }
    }
}

/// Identity of the connection pool behind a `DatabaseConnection` (clones
/// share it), so one process keeps one executor per pool.
fn pool_key(db: &DatabaseConnection) -> Option<usize> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            Some(Arc::as_ptr(&db.get_postgres_connection_pool().connect_options()) as usize)
        }
        DbBackend::Sqlite => {
            Some(Arc::as_ptr(&db.get_sqlite_connection_pool().connect_options()) as usize)
        }
        _ => None,
    }
}
