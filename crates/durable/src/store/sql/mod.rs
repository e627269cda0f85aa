//! [`Store`] on PostgreSQL and SQLite, through SeaORM with bound values.
//!
//! One module per area, each with its statements (written once, the
//! backend differences in [`dialect`]) and the functions that run them:
//! `executor` (leases and liveness), `workflow` (start, finish, release,
//! timeouts), `journal` (history, the check read, commits), `queue`
//! (enqueue and claims), `manage` (transitions and wake-ups), `read` (the
//! read model). Rows are decoded by column name in `decode`.

mod beats;
mod debounce;
mod decode;
mod dialect;
mod executor;
mod feeds;
mod fork;
mod hot;
mod journal;
mod list;
mod manage;
mod messages;
mod queue;
mod read;
mod retention;
mod schedule;
mod wakeup;
mod workflow;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, QueryResult,
    Statement, TransactionTrait, Value,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{
    Check, Checkpoint, ChildStart, ClaimFilter, Effect, Entry, ExecutorRow, Lease, NewChild,
    NewDebounce, NewEnqueued, NewMessage, NewRoot, Planner, QueueLimits, Received, Renewal,
    Retried, ScheduleRow, Seen, Started, Store, StoreResult, StreamItem, Suspension, Transition,
    WorkflowRow,
};
use crate::error::{DurableError, is_transient_db};
use crate::query::WorkflowQuery;
use crate::read::{QueueInfo, WorkflowSummary, WorkflowTree};
use crate::status::Status;

/// The backend of a connection, as an index into the statement arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres = 0,
    Sqlite = 1,
}

impl Dialect {
    fn of(backend: DbBackend) -> Option<Self> {
        match backend {
            DbBackend::Postgres => Some(Dialect::Postgres),
            DbBackend::Sqlite => Some(Dialect::Sqlite),
            _ => None,
        }
    }

    fn backend(self) -> DbBackend {
        match self {
            Dialect::Postgres => DbBackend::Postgres,
            Dialect::Sqlite => DbBackend::Sqlite,
        }
    }

    /// An id as the backend stores it: `UUID` on PostgreSQL, hyphenated
    /// text on SQLite.
    pub(crate) fn id(self, id: Uuid) -> Value {
        match self {
            Dialect::Postgres => id.into(),
            Dialect::Sqlite => id.hyphenated().to_string().into(),
        }
    }
}

/// Makes new ids; tests and simulations may inject a deterministic one.
pub(crate) type IdSource = Arc<dyn Fn() -> Uuid + Send + Sync>;

/// The SQL store on one connection pool.
#[derive(Clone)]
pub(crate) struct SqlStore {
    db: DatabaseConnection,
    dialect: Dialect,
    ids: IdSource,
    /// A backend durable does not support: every operation fails with a
    /// typed error (constructors such as `Client::new` cannot fail).
    unsupported: Option<DbBackend>,
    /// How long one statement may take (see [`STATEMENT_DEADLINE`]).
    deadline: Duration,
    /// The heartbeats' own connection (see `beats`).
    beats: Arc<beats::BeatConnection>,
    /// The engine's own connections for its single statements, on
    /// PostgreSQL (see `hot`); SQLite uses the pool.
    hot: Option<Arc<hot::HotConnections>>,
    /// Queues last seen without limits (see `queue`).
    unlimited: Arc<queue::UnlimitedQueues>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// The store on `db`, with random (v4) ids.
    pub(crate) fn new(db: &DatabaseConnection) -> Self {
        let backend = db.get_database_backend();
        let (dialect, unsupported) = match Dialect::of(backend) {
            Some(dialect) => (dialect, None),
            None => (Dialect::Sqlite, Some(backend)),
        };
        let deadline = Self::default_deadline(dialect);
        let hot = (unsupported.is_none() && dialect == Dialect::Postgres)
            .then(|| hot::HotConnections::for_pool(db, deadline));
        Self {
            db: db.clone(),
            dialect,
            // Time-ordered ids (UUIDv7, ordered by creation within the
            // process): workflows of one priority enqueued in the same
            // millisecond are claimed in enqueue order (claims order by
            // priority, creation time, id), and new rows land at the end
            // of the primary key's index.
            ids: Arc::new(Uuid::now_v7),
            unsupported,
            deadline,
            beats: Arc::default(),
            hot,
            unlimited: Arc::default(),
        }
    }

    /// SQLite is a local file: no connection goes silent, and giving up on
    /// a statement that waits for the file's lock does not stop it (sqlx
    /// runs it to its end on the connection's worker thread); it only has
    /// the caller try again behind it. Its statements get a minute, a bound
    /// for a hung file system only; the busy timeout bounds lock waits.
    fn default_deadline(dialect: Dialect) -> Duration {
        match dialect {
            Dialect::Postgres => STATEMENT_DEADLINE,
            Dialect::Sqlite => LOCAL_STATEMENT_DEADLINE,
        }
    }

    /// The same store with statements bounded by `deadline_for(lease)`:
    /// an executor's statements give a silent connection up well within
    /// its lease, so its work moves on before the lease would tell.
    pub(crate) fn for_lease(mut self, lease: Duration) -> Self {
        if self.dialect == Dialect::Postgres {
            self.deadline = deadline_for(lease);
        }
        self
    }

    /// Run one database call under this store's deadline.
    pub(crate) async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, DbErr>>,
    ) -> Result<T, DbErr> {
        within(self.deadline, call).await
    }

    /// Every database access passes here first.
    fn supported(&self) -> Result<(), DbErr> {
        match self.unsupported {
            None => Ok(()),
            Some(backend) => Err(DbErr::Custom(format!(
                "durable supports PostgreSQL and SQLite, not {backend:?}"
            ))),
        }
    }

    /// The same store with ids from `ids`.
    #[allow(dead_code)] // the seam for deterministic tests and simulations
    pub(crate) fn with_ids(mut self, ids: IdSource) -> Self {
        self.ids = ids;
        self
    }

    fn fresh_id(&self) -> Uuid {
        (self.ids)()
    }

    fn stmt(&self, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.dialect.backend(), sql, values)
    }

    fn id(&self, id: Uuid) -> Value {
        self.dialect.id(id)
    }

    /// A NULL of the id type.
    fn null_id(&self) -> Value {
        match self.dialect {
            Dialect::Postgres => Value::Uuid(None),
            Dialect::Sqlite => Value::String(None),
        }
    }

    async fn query_one(
        &self,
        db: &impl ConnectionTrait,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<QueryResult>, DbErr> {
        self.supported()?;
        self.bounded(db.query_one_raw(self.stmt(sql, values))).await
    }

    async fn query_all(
        &self,
        db: &impl ConnectionTrait,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<QueryResult>, DbErr> {
        self.supported()?;
        self.bounded(db.query_all_raw(self.stmt(sql, values))).await
    }

    async fn execute(
        &self,
        db: &impl ConnectionTrait,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<u64, DbErr> {
        self.supported()?;
        Ok(self
            .bounded(db.execute_raw(self.stmt(sql, values)))
            .await?
            .rows_affected())
    }

    /// The connection for one statement on its own (autocommit): the
    /// engine's own on PostgreSQL (no ping after it), else the pool.
    async fn engine(&self) -> Result<Engine<'_>, DbErr> {
        self.supported()?;
        Ok(match &self.hot {
            Some(hot) => Engine::Own(self.bounded(hot.acquire()).await?),
            None => Engine::Pool(&self.db),
        })
    }

    /// One statement on its own, once.
    async fn query_one_once(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<QueryResult>, DbErr> {
        self.query_one(&self.engine().await?, sql, values).await
    }

    /// As [`SqlStore::query_one_once`], all rows.
    async fn query_all_once(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<QueryResult>, DbErr> {
        self.query_all(&self.engine().await?, sql, values).await
    }

    /// How often PostgreSQL planned the statements prepared on the
    /// engine's idle connections (see [`crate::scratch::engine_plans`]);
    /// `None` on SQLite.
    pub(crate) async fn engine_plans(&self) -> StoreResult<Option<(i64, i64)>> {
        match &self.hot {
            Some(hot) => Ok(Some(self.bounded(hot.plans()).await?)),
            None => Ok(None),
        }
    }

    /// The backend's plan of `sql`, a line a row (PostgreSQL's `EXPLAIN`,
    /// SQLite's `EXPLAIN QUERY PLAN`), planned for `values` as the reads
    /// the bench checks by it are: what the bench checks statements by.
    pub(crate) async fn explain(&self, sql: &str, values: Vec<Value>) -> StoreResult<Vec<String>> {
        let (explain, column) = match self.dialect {
            Dialect::Postgres => ("EXPLAIN ", "QUERY PLAN"),
            Dialect::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
        };
        let mut text = explain.to_string();
        text.push_str(sql);
        let rows = self.query_all_planned(&text, values).await?;
        Ok(rows
            .iter()
            .map(|r| decode::Row::new(r, self.dialect).get::<String>(column))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// One idempotent statement on its own (autocommit), tried again
    /// while it fails transiently (a busy SQLite, a lost connection).
    async fn query_one_alone(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> StoreResult<Option<QueryResult>> {
        retry_transient(|| self.query_one_once(sql, values.clone())).await
    }

    /// As [`SqlStore::query_one_alone`], all rows.
    async fn query_all_alone(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> StoreResult<Vec<QueryResult>> {
        retry_transient(|| self.query_all_once(sql, values.clone())).await
    }

    /// As [`SqlStore::query_all_alone`], on the user's pool: for a read
    /// whose best plan depends on its values (a listing's filters and
    /// page), which PostgreSQL plans for them there; the engine's own
    /// connections use one generic plan per statement (see `hot`).
    async fn query_all_planned(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> StoreResult<Vec<QueryResult>> {
        retry_transient(|| self.query_all(&self.db, sql, values.clone())).await
    }

    /// As [`SqlStore::query_all_planned`], one row.
    async fn query_one_planned(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> StoreResult<Option<QueryResult>> {
        retry_transient(|| self.query_one(&self.db, sql, values.clone())).await
    }

    /// As [`SqlStore::query_one_alone`], for a statement without rows.
    async fn execute_alone(&self, sql: &str, values: Vec<Value>) -> StoreResult<u64> {
        retry_transient(|| async {
            self.execute(&self.engine().await?, sql, values.clone())
                .await
        })
        .await
    }

    /// Begin a transaction that will write. On SQLite the write lock is
    /// taken up front (`BEGIN IMMEDIATE`), so it cannot fail half-way with
    /// `SQLITE_BUSY`. Callers retry the whole operation while the database
    /// is busy (or only this `BEGIN`, where repeating the rest is not safe).
    async fn begin_write(&self) -> Result<DatabaseTransaction, DurableError> {
        self.supported()?;
        let txn = match self.dialect {
            Dialect::Sqlite => {
                self.bounded(self.db.begin_with_options(sea_orm::TransactionOptions {
                    sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                    ..Default::default()
                }))
                .await
            }
            Dialect::Postgres => self.bounded(self.db.begin()).await,
        };
        Ok(txn?)
    }
}

/// PostgreSQL: how long the transaction of a transaction step may sit
/// idle before the server ends it. `$1` milliseconds, as text.
const PG_IDLE_LIMIT: &str = "SELECT set_config('idle_in_transaction_session_timeout', $1, true)";

/// Where one statement on its own runs (see [`SqlStore::engine`]).
enum Engine<'a> {
    Pool(&'a DatabaseConnection),
    Own(hot::Hot),
}

/// Each call goes to the connection the statement was given.
#[async_trait]
impl ConnectionTrait for Engine<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Engine::Pool(db) => db.get_database_backend(),
            Engine::Own(hot) => hot.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<sea_orm::ExecResult, DbErr> {
        match self {
            Engine::Pool(db) => db.execute_raw(stmt).await,
            Engine::Own(hot) => hot.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        match self {
            Engine::Pool(db) => db.execute_unprepared(sql).await,
            Engine::Own(hot) => hot.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Engine::Pool(db) => db.query_one_raw(stmt).await,
            Engine::Own(hot) => hot.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Engine::Pool(db) => db.query_all_raw(stmt).await,
            Engine::Own(hot) => hot.query_all_raw(stmt).await,
        }
    }
}

/// A key for the pool behind `db` (the address of its connect options,
/// which every clone of the pool shares): one executor and one set of the
/// engine's connections per pool.
pub(crate) fn pool_key(db: &DatabaseConnection) -> Option<usize> {
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

/// Things made once per connection pool and shared while in use: a
/// registry of them by [`pool_key`].
pub(crate) type PerPool<T> = std::sync::Mutex<Vec<(usize, std::sync::Weak<T>)>>;

/// The `T` of `registry` for the pool behind `db`, made by `make` if none
/// is alive. A pool without a key (an unsupported backend) shares nothing.
pub(crate) fn shared_per_pool<T>(
    registry: &PerPool<T>,
    db: &DatabaseConnection,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T> {
    let key = pool_key(db);
    let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
    registry.retain(|(_, weak)| weak.strong_count() > 0);
    if let Some(existing) = key.and_then(|key| {
        registry
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, weak)| weak.upgrade())
    }) {
        return existing;
    }
    let made = make();
    if let Some(key) = key {
        registry.push((key, Arc::downgrade(&made)));
    }
    made
}

/// How long any one statement of the engine (and a `BEGIN` or `COMMIT`)
/// may take at most before its connection is given up as silent: the
/// bound for stores without an executor's lease, and for the default
/// lease. Engine statements touch a few rows by index, so this is far
/// above their worst case under load and below a lease: a stopped server
/// backend or a black-holed network costs one deadline, then the
/// operation is retried or the workflow released, instead of hanging for
/// ever (sqlx has no client-side statement timeout, and a statement sent
/// on a socket the kernel has acknowledged waits for an answer
/// indefinitely).
pub(crate) const STATEMENT_DEADLINE: Duration = Duration::from_secs(10);

/// The deadline of a statement on SQLite (see `SqlStore::default_deadline`).
pub(crate) const LOCAL_STATEMENT_DEADLINE: Duration = Duration::from_secs(60);

/// The statement deadline of an executor with `lease` on PostgreSQL: a third of it,
/// between 2 s (a busy SQLite or a loaded server may take a moment) and
/// [`STATEMENT_DEADLINE`].
pub(crate) fn deadline_for(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_secs(2), STATEMENT_DEADLINE)
}

/// Run one database call under `deadline`. Past it, the call fails as an
/// I/O time-out: transient (the whole operation may be tried again) and,
/// for a `COMMIT`, of unknown outcome, exactly like a lost connection,
/// which is what it is treated as.
pub(crate) async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, DbErr>>,
) -> Result<T, DbErr> {
    match tokio::time::timeout(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(deadline_passed(deadline)),
    }
}

/// The error of a database call that did not answer within `after`.
pub(crate) fn deadline_passed(after: Duration) -> DbErr {
    let io = std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("durable: no answer from the database within {after:?}; connection given up"),
    );
    DbErr::Conn(sea_orm::RuntimeErr::SqlxError(Arc::new(
        sea_orm::sqlx::Error::Io(io),
    )))
}

/// How long an operation that fails transiently is tried again: about a
/// lease, so a database restart or a failover is ridden out, while an
/// outage longer than that surfaces as the error.
const RETRY_BUDGET: Duration = Duration::from_secs(30);

/// Run one whole operation again while it fails transiently (never a
/// statement inside an open transaction: after an error a PostgreSQL
/// transaction is dead), for up to [`RETRY_BUDGET`], waiting longer each
/// time (50 ms doubling to 2 s, with jitter, so workers that failed
/// together do not retry together). Every operation retried here is
/// idempotent, so a retry after an unknown outcome is safe.
pub(crate) async fn retry_transient<T, E, F, Fut>(mut op: F) -> Result<T, DurableError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: Into<DurableError>,
{
    let began = tokio::time::Instant::now();
    let mut attempt = 0u32;
    loop {
        match op().await.map_err(Into::into) {
            Err(DurableError::Db(err))
                if is_transient_db(&err) && began.elapsed() < RETRY_BUDGET =>
            {
                attempt += 1;
                let wait =
                    jittered(Duration::from_millis(50 << attempt.min(6)).min(MAX_RETRY_WAIT));
                tracing::warn!(attempt, error = %err, "transient database error; retrying");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// The longest wait between two attempts of [`retry_transient`].
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);

/// A random duration between half of `wait` and all of it ("equal
/// jitter"): retries of many workers spread out instead of arriving as a
/// storm.
pub(crate) fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(0.5 + 0.5 * chance::unit())
}

/// Where the jitter's randomness comes from: v4 ids (already a
/// dependency), or, in a seeded simulation, the simulation's generator
/// for this thread, so a seed replays the same waits.
#[cfg(any(test, feature = "testing"))]
pub(crate) use fork::check_fork;

pub(crate) mod chance {
    use std::cell::Cell;

    thread_local! {
        static SEEDED: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// Draw from a generator seeded with `seed` on this thread from now
    /// on (`None`: random again).
    #[cfg(test)]
    pub(crate) fn seed(seed: Option<u64>) {
        SEEDED.with(|s| s.set(seed));
    }

    /// A number in `[0, 1]`.
    pub(crate) fn unit() -> f64 {
        let seeded = SEEDED.with(|s| {
            s.get().map(|state| {
                // splitmix64: tiny, and good enough for jitter.
                let state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                s.set(Some(state));
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            })
        });
        let bits = seeded.unwrap_or_else(|| {
            let bytes = uuid::Uuid::new_v4().into_bytes();
            u64::from_le_bytes([
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            ])
        });
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[async_trait]
impl Store for SqlStore {
    fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    fn statement_deadline(&self) -> Duration {
        self.deadline
    }

    fn is_local(&self) -> bool {
        self.dialect == Dialect::Sqlite
    }

    async fn heartbeat(
        &self,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool> {
        // On the beat connection; if that fails, it is given up and the
        // beat goes through the pool (whatever answers first proves it).
        self.supported()?;
        match self.beats.get(&self.db, self.dialect).await {
            Ok(db) => match self.upsert_executor(&db, executor, lease_ms, renew).await {
                Ok(renewed) => return Ok(renewed),
                Err(err) => {
                    self.beats.reset();
                    tracing::debug!(error = %err, "heartbeat on its own connection failed; through the pool");
                }
            },
            Err(err) => {
                tracing::debug!(error = %err, "cannot open the heartbeat connection; through the pool")
            }
        }
        retry_transient(|| self.upsert_executor(&self.db, executor, lease_ms, renew)).await
    }

    async fn expire_executor(&self, id: Uuid) -> StoreResult<()> {
        self.expire_executor_row(id).await
    }

    async fn owner_of(&self, workflow: Uuid) -> StoreResult<Option<(ExecutorRow, bool)>> {
        self.owner_of_workflow(workflow).await
    }

    async fn live_owners(&self) -> StoreResult<Vec<ExecutorRow>> {
        self.live_owner_rows().await
    }

    async fn start_root(&self, root: &NewRoot<'_>) -> StoreResult<Started> {
        self.start_root_workflow(root).await
    }

    async fn start_child(&self, child: &NewChild<'_>) -> StoreResult<ChildStart> {
        self.start_child_workflow(child).await
    }

    async fn workflow(&self, id: Uuid) -> StoreResult<Option<WorkflowRow>> {
        self.workflow_by_id(id).await
    }

    async fn root_by_key(&self, key: &str) -> StoreResult<Option<WorkflowRow>> {
        self.root_with_key(key).await
    }

    async fn set_timeout(&self, id: Uuid, timeout_ms: i64) -> StoreResult<bool> {
        self.fix_deadline(id, timeout_ms).await
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
        self.finish_workflow(id, lease, status, output, error, spawned_by)
            .await
    }

    async fn release(
        &self,
        id: Uuid,
        lease: &Lease,
        suspension: Option<&Suspension>,
    ) -> StoreResult<bool> {
        self.release_workflow(id, lease, suspension).await
    }

    async fn transition(&self, id: Uuid, transition: Transition) -> StoreResult<u64> {
        self.transition_subtree(id, transition).await
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    async fn wake(&self, workflow: Uuid, name: &str, output: &str) -> StoreResult<bool> {
        self.wake_call(workflow, name, output).await
    }

    async fn history_page(
        &self,
        workflow: Uuid,
        from_position: i32,
        limit: i64,
    ) -> StoreResult<Vec<Entry>> {
        self.journal_page(workflow, from_position, limit).await
    }

    async fn check(
        &self,
        workflow: Uuid,
        root: bool,
        holder: Uuid,
        position: i32,
    ) -> StoreResult<Option<Check>> {
        self.check_call(workflow, root, holder, position).await
    }

    async fn commit(&self, checkpoint: &Checkpoint<'_>) -> StoreResult<Option<Seen>> {
        retry_transient(|| async { self.commit_entry(&self.engine().await?, checkpoint).await })
            .await
    }

    async fn commit_with(
        &self,
        checkpoint: &Checkpoint<'_>,
        effect: &Effect<'_>,
    ) -> StoreResult<bool> {
        self.commit_with_effect(checkpoint, effect).await
    }

    async fn receive(&self, checkpoint: &Checkpoint<'_>, topic: &str) -> StoreResult<Received> {
        self.receive_message(checkpoint, topic).await
    }

    async fn has_message(&self, workflow: Uuid, topic: &str) -> StoreResult<bool> {
        self.message_waits(workflow, topic).await
    }

    async fn send(&self, message: &NewMessage<'_>) -> StoreResult<bool> {
        self.send_message(message).await
    }

    async fn event(&self, workflow: Uuid, key: &str) -> StoreResult<Option<String>> {
        self.latest_event(workflow, key).await
    }

    async fn stream_page(
        &self,
        workflow: Uuid,
        key: &str,
        from_offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<StreamItem>> {
        self.stream_items(workflow, key, from_offset, limit).await
    }

    async fn entry(&self, workflow: Uuid, position: i32) -> StoreResult<Option<Entry>> {
        self.entry_at(workflow, position).await
    }

    async fn begin_user_transaction(&self, idle_limit_ms: i64) -> StoreResult<DatabaseTransaction> {
        retry_transient(|| async {
            let txn = self.begin_write().await?;
            // One more round trip per transaction step on PostgreSQL: a
            // transaction left open by a stopped process otherwise holds
            // the workflow's rows until it runs again, and no executor can
            // take the workflow over in the meantime (the fault suite's
            // `worker_stop_past_lease` caught it).
            if self.dialect == Dialect::Postgres {
                let limit = idle_limit_ms.clamp(1, i64::from(i32::MAX)).to_string();
                self.query_one(&txn, PG_IDLE_LIMIT, vec![limit.into()])
                    .await?;
            }
            Ok::<_, DurableError>(txn)
        })
        .await
    }

    async fn commit_in(
        &self,
        tx: &DatabaseTransaction,
        checkpoint: &Checkpoint<'_>,
    ) -> StoreResult<bool> {
        Ok(self.commit_entry(tx, checkpoint).await?.is_some())
    }

    async fn enqueue(&self, work: &NewEnqueued<'_>) -> StoreResult<Option<Uuid>> {
        self.enqueue_workflow(work).await
    }

    async fn queue(&self, name: &str) -> StoreResult<Option<QueueLimits>> {
        self.queue_limits(&self.engine().await?, name, false).await
    }

    async fn declare_queue(&self, name: &str, limits: &QueueLimits) -> StoreResult<()> {
        self.upsert_queue(name, limits).await
    }

    async fn claim_from_queue(
        &self,
        queue: &str,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        self.claim_queue(queue, owner, want, filter).await
    }

    async fn claim_next(
        &self,
        queue: &str,
        owner: Uuid,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Option<WorkflowRow>> {
        self.claim_queue_next(queue, owner, filter).await
    }

    async fn claim_orphans(
        &self,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        self.claim_orphan_roots(owner, want, filter).await
    }

    async fn release_dead(&self) -> StoreResult<Vec<Uuid>> {
        self.release_dead_owners().await
    }

    async fn release_owned(&self, owner: Uuid) -> StoreResult<u64> {
        self.release_all_owned(owner).await
    }

    async fn release_stray(&self, owner: Uuid, running: &[Uuid]) -> StoreResult<u64> {
        self.release_stray_owned(owner, running).await
    }

    async fn notify(&self, queue: &str) -> StoreResult<()> {
        self.notify_queue(queue).await
    }

    async fn listen(&self, wake: Arc<Notify>) {
        self.listen_for_work(wake).await
    }

    async fn summary(&self, id: Uuid) -> StoreResult<Option<WorkflowSummary>> {
        self.read_summary(id).await
    }

    async fn tree(&self, id: Uuid) -> StoreResult<Option<WorkflowTree>> {
        self.read_tree(id).await
    }

    async fn queues(&self) -> StoreResult<Vec<QueueInfo>> {
        self.read_queues().await
    }

    async fn list(&self, query: &WorkflowQuery, fetch: u32) -> StoreResult<Vec<WorkflowRow>> {
        self.list_workflows(query, fetch).await
    }

    async fn count(&self, query: &WorkflowQuery) -> StoreResult<u64> {
        self.count_workflows(query).await
    }

    async fn retry(&self, id: Uuid, from: &[Status]) -> StoreResult<Retried> {
        self.retry_subtree(id, from).await
    }

    async fn fork(&self, id: Uuid, from_position: i32) -> StoreResult<Uuid> {
        self.fork_root(id, from_position).await
    }

    async fn purge(&self, age_ms: i64, batch: u32) -> StoreResult<Vec<Uuid>> {
        self.purge_batch(age_ms, batch).await
    }

    async fn clock_ms(&self) -> StoreResult<i64> {
        self.clock().await
    }

    async fn put_schedule(&self, schedule: &ScheduleRow) -> StoreResult<ScheduleRow> {
        self.put_schedule_row(schedule).await
    }

    async fn schedule(&self, name: &str) -> StoreResult<Option<ScheduleRow>> {
        self.schedule_row(name).await
    }

    async fn schedules(&self) -> StoreResult<Vec<ScheduleRow>> {
        self.schedule_rows().await
    }

    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_tick_ms: Option<i64>,
    ) -> StoreResult<bool> {
        self.set_schedule_status(name, paused, next_tick_ms).await
    }

    async fn delete_schedule(&self, name: &str) -> StoreResult<bool> {
        self.delete_schedule_row(name).await
    }

    async fn fire_schedules(
        &self,
        planner: Planner<'_>,
        limit: u32,
    ) -> StoreResult<(Vec<String>, u64)> {
        self.fire_due(planner, limit).await
    }

    async fn debounce(&self, debounce: &NewDebounce<'_>) -> StoreResult<(Uuid, bool)> {
        self.debounce_call(debounce).await
    }
}
