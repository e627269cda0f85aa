//! `Executor`: the identity that owns workflows, its lease and heartbeat,
//! and recovery of the work of executors that died.
//!
//! Ownership is a lease held by an executor row in `durable_executor`: the
//! executor is alive while its `lease_expires_ms` (database clock) lies in
//! the future, and a background heartbeat pushes it forward every third of
//! the lease. A workflow row names its owner and carries a fencing epoch
//! that changes with every change of owner; every checkpoint write checks
//! both, so an executor that stalls past its lease and wakes up late writes
//! nothing. One heartbeat serves every workflow of the executor, so the cost
//! does not grow with the number of workflows in flight.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend, DbErr, RuntimeErr};
use serde_json::Value as Json;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::ctx::Ctx;
use crate::error::DurableError;
use crate::liveness;
use crate::store::{self, ExecutorRow};

/// Lease of an executor unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// An executor: a process's claim on the workflows it runs.
///
/// `Ctx::start` uses one executor per process and database connection pool,
/// created on first use; create your own to run workflows under an explicit
/// identity and lease, or to recover the work of executors that died.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// use durable::Executor;
///
/// let executor = Executor::new(&db);
/// let revived = executor.recover().await?;
/// println!("{} workflows of dead executors are runnable again", revived.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Executor {
    pub(crate) inner: Arc<ExecutorInner>,
}

pub(crate) struct ExecutorInner {
    pub(crate) db: DatabaseConnection,
    pub(crate) id: Uuid,
    lease: Duration,
    /// PostgreSQL: the executor's own session, set at registration.
    session: OnceCell<Option<Session>>,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
    /// Set when a worker shuts down: no new step starts.
    draining: AtomicBool,
}

/// PostgreSQL: a connection the executor opens for itself (never one of the
/// user's pooled connections) and keeps for its whole life. It holds the
/// session advisory lock `lock_key`; when the process dies the server ends
/// the session and drops the lock, which tells every other executor at once.
/// It also carries the heartbeats, so they never wait for a pooled
/// connection. Behind PgBouncer in transaction pooling, point the URL at
/// PostgreSQL directly: a session lock needs a session.
struct Session {
    db: DatabaseConnection,
    lock_key: i64,
}

impl Drop for ExecutorInner {
    fn drop(&mut self) {
        if let Some(task) = self.heartbeat.lock().ok().and_then(|mut h| h.take()) {
            task.abort();
        }
        if let Some(Some(session)) = self.session.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { session.db.close().await });
        }
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("id", &self.inner.id)
            .field("lease", &self.inner.lease)
            .finish()
    }
}

impl Executor {
    /// A new executor with a fresh id and the [`DEFAULT_LEASE`].
    ///
    /// Nothing is written until it first starts or recovers work.
    ///
    /// ```no_run
    /// # fn demo(db: sea_orm::DatabaseConnection) {
    /// let executor = durable::Executor::new(&db);
    /// println!("executor {}", executor.id());
    /// # }
    /// ```
    pub fn new(db: &DatabaseConnection) -> Self {
        Self::with_lease(db, DEFAULT_LEASE)
    }

    /// A new executor with a fresh id and the given lease (at least one second).
    ///
    /// A shorter lease lets other hosts take over sooner when this process
    /// hangs or its host dies, at the price of more frequent heartbeats.
    ///
    /// ```no_run
    /// # fn demo(db: sea_orm::DatabaseConnection) {
    /// let executor = durable::Executor::with_lease(&db, std::time::Duration::from_secs(5));
    /// # }
    /// ```
    pub fn with_lease(db: &DatabaseConnection, lease: Duration) -> Self {
        Self {
            inner: Arc::new(ExecutorInner::new(
                db.clone(),
                Uuid::new_v4(),
                lease.max(Duration::from_secs(1)),
            )),
        }
    }

    /// This executor's id, as recorded in `owner_id` of the workflows it owns.
    pub fn id(&self) -> Uuid {
        self.inner.id
    }

    /// Start or resume a root workflow under this executor, identified by
    /// `key` (its idempotency key). See [`Ctx::start_with_key`].
    ///
    /// # Errors
    /// As [`Ctx::start_with_key`].
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
    /// let executor = durable::Executor::new(&db);
    /// let ctx = executor.start("charge", "order-42", None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(
        &self,
        name: &str,
        key: &str,
        input: Option<Json>,
    ) -> Result<Ctx, DurableError> {
        Ctx::start_on(self.inner.clone(), name, key, input).await
    }

    /// Make the work of dead executors runnable again and return the ids of
    /// the workflows released.
    ///
    /// An executor is dead when its lease has expired, or, on this host, when
    /// its process no longer exists. Its unfinished workflows lose their
    /// owner (RUNNING ones go back to PENDING); the next `Ctx::start` (or
    /// executor) that runs them claims them under a new fencing epoch.
    ///
    /// # Errors
    /// [`DurableError::Db`] if the database cannot be reached.
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
    /// for id in durable::Executor::new(&db).recover().await? {
    ///     println!("recovered workflow {id}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn recover(&self) -> Result<Vec<Uuid>, DurableError> {
        let db = &self.inner.db;
        self.inner.expire_gone_owners().await?;
        let released = store::release_dead(db).await?;
        if !released.is_empty() {
            tracing::info!(
                count = released.len(),
                "released workflows of dead executors"
            );
        }
        Ok(released)
    }
}

impl ExecutorInner {
    fn new(db: DatabaseConnection, id: Uuid, lease: Duration) -> Self {
        Self {
            db,
            id,
            lease,
            session: OnceCell::new(),
            heartbeat: Mutex::new(None),
            draining: AtomicBool::new(false),
        }
    }

    /// The executor `Ctx::start` uses: one id per process, one heartbeat per
    /// connection pool while any workflow of it is in use.
    pub(crate) fn process_default(db: &DatabaseConnection) -> Arc<Self> {
        static PROCESS_ID: OnceLock<Uuid> = OnceLock::new();
        static REGISTRY: Mutex<Vec<(usize, Weak<ExecutorInner>)>> = Mutex::new(Vec::new());
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
        let inner = Arc::new(Self::new(db.clone(), id, DEFAULT_LEASE));
        if let Some(key) = key {
            registry.push((key, Arc::downgrade(&inner)));
        }
        inner
    }

    /// Stop starting steps: a worker is shutting down.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Open the session (PostgreSQL), write the executor row and start the
    /// heartbeat, once.
    pub(crate) async fn ensure_registered(self: &Arc<Self>) -> Result<(), DurableError> {
        self.session
            .get_or_try_init(|| async {
                let session = match self.db.get_database_backend() {
                    DbBackend::Postgres => Some(Session::open(&self.db).await?),
                    _ => None,
                };
                let db = session.as_ref().map_or(&self.db, |s| &s.db);
                let lock_key = session.as_ref().map(|s| s.lock_key);
                store::upsert_executor(db, &self.row(lock_key), self.lease_ms()).await?;
                let task = tokio::spawn(heartbeat(Arc::downgrade(self), self.lease / 3));
                *self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
                Ok::<_, DurableError>(session)
            })
            .await?;
        Ok(())
    }

    /// One heartbeat: confirm the advisory lock (taking it again if the
    /// session was replaced), then push the lease forward.
    async fn beat(&self) -> Result<(), DurableError> {
        let session = self.session.get().and_then(Option::as_ref);
        if let Some(session) = session
            && !store::hold_lock(&session.db, session.lock_key).await?
        {
            tracing::warn!(executor = %self.id, "advisory lock held by another session");
        }
        let db = session.map_or(&self.db, |s| &s.db);
        store::upsert_executor(db, &self.row(session.map(|s| s.lock_key)), self.lease_ms()).await
    }

    fn row(&self, lock_key: Option<i64>) -> ExecutorRow {
        let me = liveness::this_process();
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
        for owner in store::live_owners(&self.db).await? {
            self.expire_owner_if_gone(&owner).await?;
        }
        Ok(())
    }

    /// If the live-looking owner of `task` is a process on this host that no
    /// longer exists, expire it so its work can be taken over now. Returns
    /// whether it did.
    pub(crate) async fn expire_if_gone(&self, task: Uuid) -> Result<bool, DurableError> {
        match store::owner_of(&self.db, task).await? {
            Some((owner, true)) => self.expire_owner_if_gone(&owner).await,
            _ => Ok(false),
        }
    }

    /// Expire `owner` if it is another process on this host that is gone.
    async fn expire_owner_if_gone(&self, owner: &ExecutorRow) -> Result<bool, DurableError> {
        if owner.id == self.id || !liveness::is_gone(&owner.hostname, owner.pid, owner.pid_started)
        {
            return Ok(false);
        }
        tracing::info!(executor = %owner.id, pid = owner.pid, "owner process is gone; its work may be taken over");
        store::expire_executor(&self.db, owner.id).await?;
        Ok(true)
    }
}

/// Push the lease forward until the executor is dropped.
async fn heartbeat(executor: Weak<ExecutorInner>, every: Duration) {
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

impl Session {
    /// Open a one-connection pool with the user's connect options and take
    /// a free advisory lock key on it.
    async fn open(db: &DatabaseConnection) -> Result<Self, DurableError> {
        use sea_orm::sqlx::postgres::PgPoolOptions;
        let options = (*db.get_postgres_connection_pool().connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
        let session = sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
        loop {
            // A random positive 31-bit key; on the rare collision, draw again.
            let bytes = Uuid::new_v4().into_bytes();
            let lock_key =
                i64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) >> 1);
            if lock_key != 0 && store::hold_lock(&session, lock_key).await? {
                return Ok(Self {
                    db: session,
                    lock_key,
                });
            }
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
