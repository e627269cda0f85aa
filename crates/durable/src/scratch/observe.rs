//! Figures a benchmark reads from the engine's tables where the read
//! model (`Client::list`, `Client::tree`) has no query for them: how late
//! sleeps end, and how many workflows sleep without holding an executor.
//! The database recorded the times, so they are read on its clock.
//!
//! Each read is one statement, the same on both backends, with the
//! workflow name bound.
//!
//! ```no_run
//! # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
//! let now = durable::scratch::observe::sleepers(&db, "nightly").await?;
//! println!("{} asleep, {} owned", now.asleep, now.owned);
//! # Ok(()) }
//! ```

use sea_orm::{ConnectionTrait, Statement};

use crate::error::DurableError;

/// For each workflow named `$1`: its first sleep (key `sleep#0`), once it
/// ended, the end as recorded minus the time it was due, in ms.
const SLEEP_LATENESS: &str = "SELECT completed_ms - wake_ms FROM durable_step \
     WHERE kind = 'SLEEP' AND status = 'COMPLETED' AND step_key = 'sleep#0' \
     AND workflow_id IN (SELECT id FROM durable_workflow WHERE name = $1)";

/// Workflows named `$1` asleep now (suspended, waiting, no owner) and
/// owned now (by an executor, pending or running).
const SLEEPERS: &str = "SELECT \
     SUM(CASE WHEN owner_id IS NULL AND status = 'PENDING' AND wait_for IS NOT NULL THEN 1 ELSE 0 END), \
     SUM(CASE WHEN owner_id IS NOT NULL AND status IN ('PENDING', 'RUNNING') THEN 1 ELSE 0 END) \
     FROM durable_workflow WHERE name = $1";

/// How late the first sleep (`ctx.sleep`, `ctx.sleep_until`) of each
/// workflow named `name` ended, in ms after it was due, for those whose
/// first sleep has ended (in no order). Both times are the database's:
/// the wake-up time it recorded, and the time it recorded the sleep done.
///
/// # Errors
/// [`DurableError::Db`] if the database fails.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// let late = durable::scratch::observe::sleep_lateness_ms(&db, "nightly").await?;
/// println!("{} sleeps ended, the latest {:?} ms late", late.len(), late.iter().max());
/// # Ok(()) }
/// ```
pub async fn sleep_lateness_ms(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Vec<i64>, DurableError> {
    let rows = db
        .query_all_raw(statement(db, SLEEP_LATENESS, name))
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get_by_index::<i64>(0))
        .collect::<Result<_, _>>()?)
}

/// Workflows of one name asleep and owned at one moment (see
/// [`sleepers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sleepers {
    /// Suspended until a time or an event: pending, waiting, owned by no
    /// executor (they hold no slot).
    pub asleep: u64,
    /// Owned by an executor, pending or running (each holds a slot).
    pub owned: u64,
}

/// How many workflows named `name` are asleep and how many are owned now:
/// with many asleep and few owned, sleeping holds no executor's slots.
///
/// # Errors
/// [`DurableError::Db`] if the database fails.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// let now = durable::scratch::observe::sleepers(&db, "nightly").await?;
/// assert!(now.owned <= 8, "a worker of 8 slots owns at most 8");
/// # Ok(()) }
/// ```
pub async fn sleepers(db: &impl ConnectionTrait, name: &str) -> Result<Sleepers, DurableError> {
    let Some(row) = db.query_one_raw(statement(db, SLEEPERS, name)).await? else {
        return Ok(Sleepers::default());
    };
    // SUM of no rows is NULL.
    let count = |i: usize| -> Result<u64, DurableError> {
        let n: Option<i64> = row.try_get_by_index(i)?;
        Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
    };
    Ok(Sleepers {
        asleep: count(0)?,
        owned: count(1)?,
    })
}

fn statement(db: &impl ConnectionTrait, sql: &str, name: &str) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, [name.into()])
}
