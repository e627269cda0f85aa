//! Rows written in bulk, for benchmarks that need what would take hours
//! to make through the API: a million queued or finished workflows, a
//! history of 100,000 steps. Each batch is one `INSERT ... SELECT` that
//! numbers its rows in the database, so a million rows cost one statement,
//! not a million calls of `enqueue`.
//!
//! The rows are those the engine writes (the same columns, statuses, key
//! forms and clock), so it reads them as its own: a seeded queue is
//! claimed, a seeded history replays, a seeded table is listed and
//! purged. They bypass what the API does besides: no queue is checked to
//! exist, no worker is woken, no lease is taken. Not for production data.
//!
//! The statements of each backend are in one place (`POSTGRES`,
//! `SQLITE` below); every value is bound.
//!
//! ```no_run
//! # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
//! use durable::scratch::seed::{self, Roots};
//! // 100,000 workflows of `report` waiting in queue `batch`, keys `r-1` ...
//! let roots = Roots::new("report").key_prefix("r-").queue("batch");
//! seed::pending(&db, &roots, 1..=100_000).await?;
//! seed::analyze(&db).await?;
//! # Ok(()) }
//! ```

use std::ops::RangeInclusive;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use serde::Serialize;
use uuid::Uuid;

use crate::codec;
use crate::error::DurableError;
use crate::queue::DEFAULT_QUEUE;
use crate::status::Status;
use crate::store::sql::Dialect;

/// Steps written per statement by [`history`] (each its own transaction).
pub const HISTORY_CHUNK: u32 = 5_000;

/// The seeding statements of one backend.
struct SeedSql {
    /// Root workflows number `$5..=$6`: key `$1 || n`, name `$2`, queue
    /// `$3`, concurrency key `$4` (or NULL), status `$7` (`PENDING` as
    /// `enqueue` writes it; `COMPLETED` with start, finish and output),
    /// input `null`, priority 0, created now (database clock).
    roots: &'static str,
    /// Finished root workflows number `$1..=$2`: created at `$3 + n` (epoch
    /// ms), started then and finished 5 ms later; key `$4 || n`, name
    /// `$5 || (n % $6)`; `n % 20 = 0` FAILED, `n % 20 = 1` CANCELLED, the
    /// rest COMPLETED with output `null`; one attempt each.
    finished: &'static str,
    /// Completed steps of workflow `$1` at positions `$4..=$5`: step `$2`,
    /// key `$2#<position>`, output `$3`, recorded now (database clock).
    history: &'static str,
}

/// The statements on PostgreSQL: `generate_series` numbers the rows, a
/// `LATERAL` subquery draws a fresh id per row.
const POSTGRES: SeedSql = SeedSql {
    roots: "INSERT INTO durable_workflow \
         (id, root_id, workflow_key, name, status, input, output, queue, priority, concurrency_key, \
          created_ms, started_ms, completed_ms) \
         SELECT x.u, x.u, $1 || g, $2, $7, 'null', CASE WHEN $7 = 'COMPLETED' THEN 'null' END, $3, 0, $4, \
           c.ms, CASE WHEN $7 = 'COMPLETED' THEN c.ms END, CASE WHEN $7 = 'COMPLETED' THEN c.ms END \
         FROM generate_series($5::BIGINT, $6::BIGINT) g, \
           LATERAL (SELECT gen_random_uuid() AS u OFFSET 0 * g) x, \
           (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS ms) c",
    finished: "INSERT INTO durable_workflow \
         (id, root_id, workflow_key, name, status, input, output, error, attempts, \
          created_ms, started_ms, completed_ms) \
         SELECT x.u, x.u, $4 || g, $5 || (g % $6::BIGINT), \
           CASE g % 20 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'CANCELLED' ELSE 'COMPLETED' END, \
           'null', CASE WHEN g % 20 > 1 THEN 'null' END, CASE WHEN g % 20 = 0 THEN 'seeded failure' END, 1, \
           $3::BIGINT + g, $3::BIGINT + g, $3::BIGINT + g + 5 \
         FROM generate_series($1::BIGINT, $2::BIGINT) g, \
           LATERAL (SELECT gen_random_uuid() AS u OFFSET 0 * g) x",
    history: "INSERT INTO durable_step \
         (workflow_id, position, step_key, name, kind, status, output, created_ms, started_ms, completed_ms) \
         SELECT $1, i, $2 || '#' || i, $2, 'STEP', 'COMPLETED', $3, c.ms, c.ms, c.ms \
         FROM generate_series($4::INTEGER, $5::INTEGER) AS s(i), \
           (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS ms) c",
};

/// SQLite's numbered rows: the common table expressions `n(g)`, the
/// numbers from placeholder `$first` to `$last` (a recursive counter), and
/// `ids(g, u)`, each with a random version-4 UUID as hyphenated text (as
/// SQLite stores ids). `ids` is `MATERIALIZED`: folded into the `INSERT`,
/// SQLite would copy the `randomblob` expression into each column that
/// reads `u`, and a row's `id` and `root_id` would differ.
macro_rules! numbered_ids {
    ($first:literal, $last:literal) => {
        concat!(
            "WITH RECURSIVE n(g) AS (SELECT ",
            $first,
            " UNION ALL SELECT g + 1 FROM n WHERE g < ",
            $last,
            "), ids(g, u) AS MATERIALIZED (SELECT g, lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || \
             substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || \
             hex(randomblob(6))) FROM n)"
        )
    };
}

/// The statements on SQLite: numbered rows with fresh ids from
/// [`numbered_ids!`].
const SQLITE: SeedSql = SeedSql {
    roots: concat!(
        numbered_ids!("$5", "$6"),
        ", c(ms) AS (SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)) \
         INSERT INTO durable_workflow \
         (id, root_id, workflow_key, name, status, input, output, queue, priority, concurrency_key, \
          created_ms, started_ms, completed_ms) \
         SELECT u, u, $1 || g, $2, $7, 'null', CASE WHEN $7 = 'COMPLETED' THEN 'null' END, $3, 0, $4, \
           c.ms, CASE WHEN $7 = 'COMPLETED' THEN c.ms END, CASE WHEN $7 = 'COMPLETED' THEN c.ms END FROM ids, c"
    ),
    finished: concat!(
        numbered_ids!("$1", "$2"),
        " INSERT INTO durable_workflow \
         (id, root_id, workflow_key, name, status, input, output, error, attempts, \
          created_ms, started_ms, completed_ms) \
         SELECT u, u, $4 || g, $5 || (g % $6), \
           CASE g % 20 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'CANCELLED' ELSE 'COMPLETED' END, \
           'null', CASE WHEN g % 20 > 1 THEN 'null' END, CASE WHEN g % 20 = 0 THEN 'seeded failure' END, 1, \
           $3 + g, $3 + g, $3 + g + 5 FROM ids"
    ),
    history: "INSERT INTO durable_step \
         (workflow_id, position, step_key, name, kind, status, output, created_ms, started_ms, completed_ms) \
         WITH RECURSIVE s(i) AS (SELECT CAST($4 AS INTEGER) UNION ALL SELECT i + 1 FROM s WHERE i < $5), \
           c(ms) AS (SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)) \
         SELECT $1, i, $2 || '#' || i, $2, 'STEP', 'COMPLETED', $3, c.ms, c.ms, c.ms FROM s, c",
};

/// Indexed by [`Dialect`].
static SQL: [SeedSql; 2] = [POSTGRES, SQLITE];

/// Root workflows of one function to seed with [`pending`] or
/// [`completed`]: workflow number `n` is keyed `<key prefix><n>`.
///
/// ```
/// use durable::scratch::seed::Roots;
/// // Keys `hot-1`, `hot-2` ... of `bench-hold` in queue `keyed`, all on one key.
/// let roots = Roots::new("bench-hold").key_prefix("hot-").queue("keyed").concurrency_key("hot");
/// # let _ = roots;
/// ```
#[derive(Debug, Clone)]
pub struct Roots {
    name: String,
    key_prefix: String,
    queue: String,
    concurrency_key: Option<String>,
}

impl Roots {
    /// Workflows of the registered function `name`, keyed `<name>-<n>`,
    /// in the default queue, without a concurrency key.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            key_prefix: format!("{name}-"),
            name,
            queue: DEFAULT_QUEUE.to_string(),
            concurrency_key: None,
        }
    }

    /// Key workflow number `n` as `<prefix><n>` (keys of roots are unique:
    /// seed each number once).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Put them in `queue` (declare it with `Client::declare_queue` for
    /// its limits; seeding does not check it).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Give them all the concurrency key `key`.
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }
}

/// Insert workflows number `numbers` of `roots` as `PENDING`, as
/// `Client::enqueue` writes them (input `null`, priority 0, created now by
/// the database clock, available at once), in one statement. A worker
/// that runs the function claims them like any enqueued work; none is
/// woken by the insert. Returns the rows inserted.
///
/// # Errors
/// [`DurableError::InvalidInput`] for an empty name, a NUL byte in a name,
/// prefix, queue or key, or numbers above `i64::MAX`; [`DurableError::Db`]
/// if a key is taken or the database fails.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// use durable::scratch::seed::{self, Roots};
/// let queued = seed::pending(&db, &Roots::new("resize"), 1..=10_000).await?;
/// assert_eq!(queued, 10_000);
/// # Ok(()) }
/// ```
pub async fn pending(
    db: &impl ConnectionTrait,
    roots: &Roots,
    numbers: RangeInclusive<u64>,
) -> Result<u64, DurableError> {
    insert_roots(db, roots, numbers, Status::Pending).await
}

/// As [`pending`], but `COMPLETED`: started and finished now, output
/// `null`, as if each had run (the finished work a table holds after a
/// while).
///
/// # Errors
/// As [`pending`].
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// use durable::scratch::seed::{self, Roots};
/// let roots = Roots::new("resize").key_prefix("done-");
/// seed::completed(&db, &roots, 1..=1_000_000).await?;
/// # Ok(()) }
/// ```
pub async fn completed(
    db: &impl ConnectionTrait,
    roots: &Roots,
    numbers: RangeInclusive<u64>,
) -> Result<u64, DurableError> {
    insert_roots(db, roots, numbers, Status::Completed).await
}

async fn insert_roots(
    db: &impl ConnectionTrait,
    roots: &Roots,
    numbers: RangeInclusive<u64>,
    status: Status,
) -> Result<u64, DurableError> {
    let sql = statements(db)?;
    codec::check_name("workflow", &roots.name)?;
    check_text("key prefix", &roots.key_prefix)?;
    check_text("queue", &roots.queue)?;
    check_text(
        "concurrency key",
        roots.concurrency_key.as_deref().unwrap_or_default(),
    )?;
    let Some((first, last)) = bounds(&numbers)? else {
        return Ok(0);
    };
    let values: Vec<Value> = vec![
        roots.key_prefix.clone().into(),
        roots.name.clone().into(),
        roots.queue.clone().into(),
        roots.concurrency_key.clone().into(),
        first.into(),
        last.into(),
        status.as_str().into(),
    ];
    execute(db, sql.roots, values).await
}

/// Finished root workflows for [`finished`]: the table of a system that
/// has run for a while, spread over several names and outcomes, one
/// millisecond apart.
///
/// ```
/// use durable::scratch::seed::Finished;
/// // `report-0` ... `report-9`, keys `old-1` ..., created from 2026-01-01.
/// let rows = Finished::new("report-", 1_767_225_600_000).names(10).key_prefix("old-");
/// # let _ = rows;
/// ```
#[derive(Debug, Clone)]
pub struct Finished {
    name_prefix: String,
    names: u32,
    key_prefix: String,
    created_from_ms: i64,
}

impl Finished {
    /// Workflows named `<name_prefix>0`, keyed `<name_prefix><n>`, number
    /// `n` created at `created_from_ms + n` (epoch milliseconds).
    pub fn new(name_prefix: impl Into<String>, created_from_ms: i64) -> Self {
        let name_prefix = name_prefix.into();
        Self {
            key_prefix: name_prefix.clone(),
            name_prefix,
            names: 1,
            created_from_ms,
        }
    }

    /// Spread them over `names` names: number `n` is named
    /// `<name_prefix><n % names>` (at least one).
    pub fn names(mut self, names: u32) -> Self {
        self.names = names.max(1);
        self
    }

    /// Key number `n` as `<prefix><n>`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }
}

/// Insert workflows number `numbers` of `rows`, finished: number `n` is
/// created and started at `created_from_ms + n` and finished 5 ms later;
/// one in twenty (`n % 20 == 0`) FAILED with the error `seeded failure`,
/// one in twenty (`n % 20 == 1`) CANCELLED, the rest COMPLETED with
/// output `null`. One statement (one transaction): callers seed millions
/// in batches of a million or so. Returns the rows inserted.
///
/// # Errors
/// [`DurableError::InvalidInput`] for a NUL byte in a prefix, or numbers
/// above `i64::MAX`; [`DurableError::Db`] if a key is taken or
/// the database fails.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// use durable::scratch::seed::{self, Finished};
/// let rows = Finished::new("report-", 1_767_225_600_000).names(10);
/// for batch in 0..10u64 {
///     seed::finished(&db, &rows, batch * 1_000_000 + 1..=(batch + 1) * 1_000_000).await?;
/// }
/// seed::analyze(&db).await?;
/// # Ok(()) }
/// ```
pub async fn finished(
    db: &impl ConnectionTrait,
    rows: &Finished,
    numbers: RangeInclusive<u64>,
) -> Result<u64, DurableError> {
    let sql = statements(db)?;
    check_text("name prefix", &rows.name_prefix)?;
    check_text("key prefix", &rows.key_prefix)?;
    let Some((first, last)) = bounds(&numbers)? else {
        return Ok(0);
    };
    let values: Vec<Value> = vec![
        first.into(),
        last.into(),
        rows.created_from_ms.into(),
        rows.key_prefix.clone().into(),
        rows.name_prefix.clone().into(),
        i64::from(rows.names).into(),
    ];
    execute(db, sql.finished, values).await
}

/// Record `steps` completed steps of the started workflow `workflow`, as
/// its checkpoints would have: positions `0..steps`, each a call of the
/// step `name` (keys `<name>#0`, `<name>#1` ...) that returned `output`,
/// recorded now (database clock). In statements of [`HISTORY_CHUNK`]
/// steps. Replaying the workflow with `steps` calls of
/// `ctx.step(name, ...)` then returns `output` from each without running
/// its body.
///
/// The workflow must have no steps yet (start it with `Ctx::start` and
/// call nothing), or the positions collide.
///
/// # Errors
/// [`DurableError::InvalidInput`] for an empty or NUL-bearing name, an
/// output that JSON cannot hold as it is (NaN, say), or more than
/// `i32::MAX` steps; [`DurableError::Db`] if the workflow already has one
/// of the positions or the database fails.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// use durable::Ctx;
/// let ctx = Ctx::start_with_key(&db, "long", "long-1", None).await?;
/// durable::scratch::seed::history(&db, ctx.task_id(), "fetch", &"x".repeat(1024), 100_000).await?;
/// // A new run of `long-1` replays 100,000 `fetch` steps.
/// # Ok(()) }
/// ```
pub async fn history<O: Serialize + ?Sized>(
    db: &impl ConnectionTrait,
    workflow: Uuid,
    name: &str,
    output: &O,
    steps: u32,
) -> Result<(), DurableError> {
    let dialect = dialect(db)?;
    codec::check_name("step", name)?;
    let output = codec::encode_value("the seeded steps' output", output)?;
    let steps = i32::try_from(steps).map_err(|_| {
        DurableError::InvalidInput(format!("{steps} steps: positions end at i32::MAX"))
    })?;
    let chunk = i32::try_from(HISTORY_CHUNK).unwrap_or(i32::MAX);
    let mut first = 0i32;
    while first < steps {
        let last = first.saturating_add(chunk).min(steps) - 1;
        let values = vec![
            dialect.id(workflow),
            name.into(),
            output.clone().into(),
            first.into(),
            last.into(),
        ];
        execute(db, SQL[dialect as usize].history, values).await?;
        first = last + 1;
    }
    Ok(())
}

/// Bring the planner's statistics of the workflow table up to date, as
/// autovacuum would within a minute of a large insert: plans measured
/// after a seed are then those of a table whose statistics are current.
///
/// # Errors
/// [`DurableError::Db`] if the database fails.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// durable::scratch::seed::analyze(&db).await?;
/// # Ok(()) }
/// ```
pub async fn analyze(db: &impl ConnectionTrait) -> Result<(), DurableError> {
    dialect(db)?;
    db.execute_unprepared("ANALYZE durable_workflow").await?;
    Ok(())
}

/// The backend of `db`, as the store knows it.
fn dialect(db: &impl ConnectionTrait) -> Result<Dialect, DurableError> {
    match db.get_database_backend() {
        DbBackend::Postgres => Ok(Dialect::Postgres),
        DbBackend::Sqlite => Ok(Dialect::Sqlite),
        other => Err(DbErr::Custom(format!(
            "durable supports PostgreSQL and SQLite, not {other:?}"
        ))
        .into()),
    }
}

fn statements(db: &impl ConnectionTrait) -> Result<&'static SeedSql, DurableError> {
    Ok(&SQL[dialect(db)? as usize])
}

/// Text that goes into a row as it is: PostgreSQL's `text` rejects NUL,
/// so it is refused on both backends, with a clear error.
fn check_text(what: &str, text: &str) -> Result<(), DurableError> {
    if text.contains('\0') {
        return Err(DurableError::InvalidInput(format!(
            "{what} {text:?} contains a NUL byte"
        )));
    }
    Ok(())
}

/// The first and last number of a range as the database takes them, or
/// `None` for an empty range.
fn bounds(numbers: &RangeInclusive<u64>) -> Result<Option<(i64, i64)>, DurableError> {
    if numbers.is_empty() {
        return Ok(None);
    }
    let int = |n: u64| {
        i64::try_from(n).map_err(|_| {
            DurableError::InvalidInput(format!("workflow number {n} is above i64::MAX"))
        })
    };
    Ok(Some((int(*numbers.start())?, int(*numbers.end())?)))
}

async fn execute(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, DurableError> {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    Ok(db.execute_raw(stmt).await?.rows_affected())
}
