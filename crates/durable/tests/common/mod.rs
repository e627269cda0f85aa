//! Test harness: a fresh database per test, on either backend.
//!
//! SQLite: a new file in the temp directory. PostgreSQL: a new schema in the
//! database named by `DATABASE_URL`, reached through `search_path`, so tests
//! run in parallel without seeing each other. A PostgreSQL test without
//! `DATABASE_URL` fails: it never skips silently.
//!
//! Also the helpers the test files share: rows of the task table read back,
//! and step bodies. The example crate's tests (`examples/tests/`) include
//! this module through `#[path]`.
#![allow(dead_code, unreachable_pub)]

use std::future::{Ready, ready};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use durable::scratch::wire::WireProxy;
use durable::sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    EntityTrait, PaginatorTrait, QueryFilter, QueryResult, Statement, Value,
};
use durable::{DurableError, Uuid};
use durable_db::entity::task;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test, with the durable schema created.
pub struct TestDb {
    pub db: DatabaseConnection,
    /// URL that opens the same database (for child processes).
    pub url: String,
    pub backend: Backend,
}

pub fn postgres_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must point at PostgreSQL for the postgres tests; \
         run them with scripts/test, which starts a throwaway server",
    )
}

/// A name no other test uses (`t_` and a random UUID), valid as an SQL identifier.
pub fn unique_name() -> String {
    format!("t_{}", Uuid::new_v4().simple())
}

/// The URL of a fresh, empty database (no durable schema yet). SQLite: the
/// file `sqlite_file`, created on first connect. PostgreSQL: a new schema
/// `name` (from [`unique_name`]) in the database named by `DATABASE_URL`,
/// reached through `search_path`.
pub async fn empty_database(backend: Backend, name: &str, sqlite_file: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", sqlite_file.display()),
        Backend::Postgres => durable::scratch::create_schema(&postgres_url(), name)
            .await
            .expect("create test schema"),
    }
}

/// A SQLite test database is a file of the temp directory (with its `-wal`
/// and `-shm`): removed when the test passes, so repeated runs do not fill
/// the disk (about 400 MB a run); kept for a look when it fails. A
/// PostgreSQL schema goes with the throwaway server.
impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let Some(path) = self.url.strip_prefix("sqlite://") else {
            return;
        };
        let file = Path::new(path.split('?').next().unwrap_or(path));
        if !file.starts_with(std::env::temp_dir()) {
            return;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let name = unique_name();
        let file = std::env::temp_dir().join(format!("durable-{name}.db"));
        let url = empty_database(backend, &name, &file).await;
        let db = Self::connect(&url).await;
        durable::init(&db).await.expect("init schema");
        TestDb { db, url, backend }
    }

    /// Another pool on the same database (as a second process would have).
    pub async fn connect(url: &str) -> DatabaseConnection {
        durable::connect(url).await.expect("connect")
    }

    /// The same database with every statement counted: on PostgreSQL on
    /// the wire, through a proxy that every connection of this pool (the
    /// engine's own ones too) goes through; on SQLite (where the engine
    /// runs its statements on the pool) by SeaORM's metric callback.
    pub async fn counted(&self) -> (DatabaseConnection, Arc<Counter>) {
        let mut options = ConnectOptions::new(self.url.clone());
        options.test_before_acquire(false).sqlx_logging(false);
        let count = Arc::new(Counter::default());
        if self.backend == Backend::Postgres {
            let proxy = WireProxy::start(&self.url)
                .await
                .expect("start the wire proxy")
                .expect("PostgreSQL over TCP");
            let _ = count.wire.set(proxy.clone());
            options.map_sqlx_postgres_opts(move |o| proxy.apply(o));
        }
        let mut db = Database::connect(options).await.expect("connect");
        let c = count.clone();
        db.set_metric_callback(move |info| {
            c.total.fetch_add(1, Ordering::SeqCst);
            let sql = info.statement.sql.trim_start().to_ascii_uppercase();
            if !sql.starts_with("SELECT") && !sql.starts_with("WITH") {
                c.writes.fetch_add(1, Ordering::SeqCst);
            }
        });
        (db, count)
    }
}

/// Statements seen on a counted connection.
#[derive(Debug, Default)]
pub struct Counter {
    /// PostgreSQL: the counts on the wire.
    wire: std::sync::OnceLock<WireProxy>,
    total: AtomicU64,
    /// Statements other than plain reads.
    writes: AtomicU64,
}

impl Counter {
    /// Statements executed (transaction control apart).
    pub fn total(&self) -> u64 {
        match self.wire.get() {
            Some(wire) => wire.counts().statements,
            None => self.total.load(Ordering::SeqCst),
        }
    }
    /// Statements other than reads.
    pub fn writes(&self) -> u64 {
        match self.wire.get() {
            Some(wire) => wire.counts().writes,
            None => self.writes.load(Ordering::SeqCst),
        }
    }
    /// Round trips on the wire (PostgreSQL only).
    pub fn round_trips(&self) -> Option<u64> {
        self.wire.get().map(|wire| wire.counts().round_trips)
    }
}

/// The task row with this id, read back from the database.
pub async fn row(db: &DatabaseConnection, id: Uuid) -> task::Model {
    task::Entity::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no task {id}"))
}

/// The root workflow row with this key; fails the test if there is none.
pub async fn root(db: &DatabaseConnection, key: &str) -> task::Model {
    task::Entity::find()
        .filter(task::Column::ParentId.is_null())
        .filter(task::Column::TaskKey.eq(key))
        .one(db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no root with key {key:?}"))
}

/// How many root workflows the database holds.
pub async fn root_count(db: &DatabaseConnection) -> u64 {
    task::Entity::find()
        .filter(task::Column::ParentId.is_null())
        .count(db)
        .await
        .unwrap()
}

/// The row `key` (such as `step#0`) under `parent`, if any.
pub async fn child_row(db: &DatabaseConnection, parent: Uuid, key: &str) -> Option<task::Model> {
    task::Entity::find()
        .filter(task::Column::ParentId.eq(parent))
        .filter(task::Column::TaskKey.eq(key))
        .one(db)
        .await
        .unwrap()
}

/// The row `key` under `parent`; fails the test if there is none.
pub async fn row_under(db: &DatabaseConnection, parent: Uuid, key: &str) -> task::Model {
    child_row(db, parent, key)
        .await
        .unwrap_or_else(|| panic!("no task {key:?} under {parent}"))
}

/// Every row directly under `parent` (its steps and child workflows).
pub async fn children(db: &DatabaseConnection, parent: Uuid) -> Vec<task::Model> {
    task::Entity::find()
        .filter(task::Column::ParentId.eq(parent))
        .all(db)
        .await
        .unwrap()
}

/// An id bound the way the backend stores it: `UUID` on PostgreSQL,
/// hyphenated text on SQLite (schema v2).
pub fn id_value(db: &DatabaseConnection, id: Uuid) -> Value {
    match db.get_database_backend() {
        DbBackend::Sqlite => id.hyphenated().to_string().into(),
        _ => id.into(),
    }
}

/// An id column of a raw query's row, read the way the backend stores it.
pub fn id_at(db: &DatabaseConnection, row: &QueryResult, index: usize) -> Uuid {
    opt_id_at(db, row, index).expect("a non-NULL id")
}

/// A nullable id column of a raw query's row.
pub fn opt_id_at(db: &DatabaseConnection, row: &QueryResult, index: usize) -> Option<Uuid> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let text: Option<String> = row.try_get_by_index(index).unwrap();
            text.map(|t| Uuid::parse_str(&t).unwrap())
        }
        _ => row.try_get_by_index(index).unwrap(),
    }
}

/// Run one statement with bound values; the rows it changed.
pub async fn execute(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> u64 {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    db.execute_raw(stmt).await.unwrap().rows_affected()
}

/// Declare an executor dead at once, as an expired lease would (as if it
/// had stalled past its lease).
pub async fn expire(db: &DatabaseConnection, executor: Uuid) {
    let sql = "UPDATE durable_executor SET lease_expires_ms = 0 WHERE id = $1";
    assert_eq!(execute(db, sql, vec![id_value(db, executor)]).await, 1);
    // This stands for a stall longer than the lease, which also outlasts
    // the 50 ms in which a root may start its next step without reading
    // its state after a checkpoint: let that pass too.
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
}

/// A step body that counts its runs in `calls` and returns `value`.
pub fn counted<T>(
    calls: &Arc<AtomicU32>,
    value: T,
) -> impl FnOnce() -> Ready<Result<T, DurableError>> {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        ready(Ok(value))
    }
}

/// The step key and message of a `StepFailed` error (a failed step,
/// replayed); anything else fails the test.
pub fn step_failed<T: std::fmt::Debug>(result: Result<T, DurableError>) -> (String, String) {
    match result {
        Err(DurableError::StepFailed { step, message }) => (step, message),
        other => panic!("expected StepFailed, got {other:?}"),
    }
}

/// Run each named async test function on both backends:
/// `both_backends!(replays_completed_step, ...)` expects
/// `async fn replays_completed_step(backend: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

/// The one number a statement without parameters returns (`COUNT(*)`,
/// `MAX(..)`; `NULL` reads as 0).
pub async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .expect("a row");
    row.try_get_by_index::<Option<i64>>(0).unwrap().unwrap_or(0)
}

// ── Shared by the tests that run workers ────────────────────────────

/// How often each step body ran, by a label such as `key/step`.
pub type Runs = Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>;

/// Count one run of `what`.
pub fn ran(runs: &Runs, what: String) {
    *runs.lock().unwrap().entry(what).or_insert(0) += 1;
}

/// How often `what` ran.
pub fn count(runs: &Runs, what: &str) -> u32 {
    runs.lock().unwrap().get(what).copied().unwrap_or(0)
}

/// A worker running in a task of its own until [`RunningWorker::stop`].
pub struct RunningWorker {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Result<(), DurableError>>,
}

/// Start `worker` in a task.
pub fn run_worker(worker: durable::Worker) -> RunningWorker {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run(async move {
        stopped.await.ok();
    }));
    RunningWorker { stop, handle }
}

impl RunningWorker {
    /// Shut it down and check it stopped cleanly.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.handle.await.unwrap().unwrap();
    }
}

/// Poll a workflow's read model until `done` holds (fails after 30 s).
pub async fn until_id(
    client: &durable::Client,
    id: Uuid,
    done: impl Fn(&durable::WorkflowSummary) -> bool,
) {
    for _ in 0..1500 {
        if done(&client.workflow(id).await.unwrap()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{id} never reached the expected state");
}

/// [`until_id`] for the root workflow of `key`.
pub async fn until_key(
    client: &durable::Client,
    key: &str,
    done: impl Fn(&durable::WorkflowSummary) -> bool,
) {
    for _ in 0..1500 {
        if done(&client.workflow_by_key(key).await.unwrap()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{key} never reached the expected state");
}

/// The database clock in epoch ms, as the SDK reads it.
pub fn db_now(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

/// Whether the executor's lease is live (database clock).
pub async fn lease_live(t: &TestDb, id: Uuid) -> bool {
    let sql = format!(
        "SELECT COUNT(*) FROM durable_executor WHERE id = $1 AND lease_expires_ms > {}",
        db_now(t.backend)
    );
    let stmt =
        Statement::from_sql_and_values(t.db.get_database_backend(), &sql, [id_value(&t.db, id)]);
    let row = t.db.query_one_raw(stmt).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap() == 1
}
