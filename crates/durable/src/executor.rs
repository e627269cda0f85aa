//! `Executor`: a process's claim on the workflows it runs, under an
//! explicit identity and lease, and recovery of the work of executors that
//! died. The identity itself (lease, heartbeat, liveness) is in
//! `crate::identity`, which `Ctx` uses without knowing this wrapper.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use serde_json::Value as Json;
use uuid::Uuid;

use crate::ctx::Ctx;
use crate::error::DurableError;
use crate::store::sql::SqlStore;

pub use crate::identity::DEFAULT_LEASE;

/// How often a workflow is taken over from executors that died while
/// running it before it is failed with
/// [`DurableError::MaxRecoveryExceeded`] instead (a workflow that kills
/// its process would otherwise kill every executor in turn). Set per
/// worker with [`crate::Worker::max_recoveries`].
///
/// ```
/// assert_eq!(durable::DEFAULT_MAX_RECOVERIES, 50);
/// ```
pub const DEFAULT_MAX_RECOVERIES: u32 = 50;
use crate::identity::ExecutorCore;

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
    pub(crate) core: Arc<ExecutorCore>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
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
            core: Arc::new(ExecutorCore::new(
                Arc::new(SqlStore::new(db).for_lease(lease)),
                Uuid::new_v4(),
                lease,
            )),
        }
    }

    /// This executor's id, as recorded as the owner of the workflows it owns.
    ///
    /// ```no_run
    /// # fn demo(db: sea_orm::DatabaseConnection) {
    /// let id: durable::Uuid = durable::Executor::new(&db).id();
    /// # }
    /// ```
    pub fn id(&self) -> Uuid {
        self.core.id
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
        Ctx::start_on(self.core.clone(), name, key, input).await
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
    #[tracing::instrument(name = "recovery", skip_all, fields(executor = %self.core.id))]
    pub async fn recover(&self) -> Result<Vec<Uuid>, DurableError> {
        self.core.expire_gone_owners().await?;
        let released = self.core.store.release_dead().await?;
        crate::telemetry::recovered(released.len());
        if !released.is_empty() {
            tracing::info!(
                count = released.len(),
                "released workflows of dead executors"
            );
        }
        Ok(released)
    }
}
