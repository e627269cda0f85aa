//! Storage for queues and enqueued work: enqueue, queue limits, claims and
//! releases.

use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

use super::{TaskRow, one, query_all, query_one, statements, stmt};
use crate::error::DurableError;

/// A workflow to enqueue.
pub(crate) struct NewEnqueued<'a> {
    pub(crate) key: &'a str,
    pub(crate) name: &'a str,
    pub(crate) input: String,
    pub(crate) queue: &'a str,
    pub(crate) priority: i32,
    pub(crate) concurrency_key: Option<String>,
    pub(crate) delay_ms: Option<i64>,
    pub(crate) app_version: Option<String>,
}

/// Insert unless the key exists; the new id if it was created.
pub(crate) async fn enqueue(
    db: &impl ConnectionTrait,
    work: &NewEnqueued<'_>,
) -> Result<Option<Uuid>, DurableError> {
    let sql = statements(db)?.enqueue;
    let values = vec![
        Uuid::new_v4().into(),
        work.key.into(),
        work.name.into(),
        work.input.clone().into(),
        work.queue.into(),
        work.priority.into(),
        work.concurrency_key.clone().into(),
        work.delay_ms.into(),
        work.app_version.clone().into(),
    ];
    match query_one(db, sql, values).await? {
        Some(row) => Ok(Some(row.try_get_by_index(0)?)),
        None => Ok(None),
    }
}

/// Limits of a queue, as declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueueLimits {
    pub(crate) concurrency: Option<i32>,
    pub(crate) rate_limit: Option<i32>,
    pub(crate) rate_period_ms: Option<i64>,
    pub(crate) key_concurrency: Option<i32>,
}

/// Read (and on PostgreSQL row-lock) a queue's limits; `None` if undeclared.
pub(crate) async fn lock_queue(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<QueueLimits>, DurableError> {
    queue_limits(db, statements(db)?.lock_queue, name).await
}

/// A queue's limits without a lock; `None` if undeclared.
pub(crate) async fn queue_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<QueueLimits>, DurableError> {
    queue_limits(db, statements(db)?.queue_by_name, name).await
}

async fn queue_limits(
    db: &impl ConnectionTrait,
    sql: &str,
    name: &str,
) -> Result<Option<QueueLimits>, DurableError> {
    let Some(row) = query_one(db, sql, vec![name.into()]).await? else {
        return Ok(None);
    };
    Ok(Some(QueueLimits {
        concurrency: row.try_get_by_index(0)?,
        rate_limit: row.try_get_by_index(1)?,
        rate_period_ms: row.try_get_by_index(2)?,
        key_concurrency: row.try_get_by_index(3)?,
    }))
}

pub(crate) async fn upsert_queue(
    db: &impl ConnectionTrait,
    name: &str,
    limits: &QueueLimits,
) -> Result<(), DurableError> {
    let sql = statements(db)?.upsert_queue;
    let values = vec![
        name.into(),
        limits.concurrency.into(),
        limits.rate_limit.into(),
        limits.rate_period_ms.into(),
        limits.key_concurrency.into(),
    ];
    db.execute_raw(stmt(db, sql, values)).await?;
    Ok(())
}

async fn count(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<i64, DurableError> {
    let row = query_one(db, sql, values).await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

pub(crate) async fn running_in_queue(
    db: &impl ConnectionTrait,
    queue: &str,
) -> Result<i64, DurableError> {
    count(db, statements(db)?.running_in_queue, vec![queue.into()]).await
}

pub(crate) async fn started_since(
    db: &impl ConnectionTrait,
    queue: &str,
    period_ms: i64,
) -> Result<i64, DurableError> {
    count(
        db,
        statements(db)?.started_since,
        vec![queue.into(), period_ms.into()],
    )
    .await
}

/// Who may claim what: the names an executor runs and its version.
pub(crate) struct ClaimFilter<'a> {
    /// JSON array of workflow names.
    pub(crate) names: &'a str,
    pub(crate) app_version: Option<&'a str>,
    pub(crate) any_version: bool,
}

/// A claimable workflow: its id and concurrency key.
pub(crate) type Candidate = (Uuid, Option<String>);

fn candidates(rows: Vec<sea_orm::QueryResult>) -> Result<Vec<Candidate>, DurableError> {
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
        .collect::<Result<_, sea_orm::DbErr>>()?)
}

/// Claimable workflows of a queue, best first; with `per_key`, leaving out
/// those whose concurrency key is at that limit.
pub(crate) async fn queue_candidates(
    db: &impl ConnectionTrait,
    queue: &str,
    filter: &ClaimFilter<'_>,
    limit: i64,
    per_key: Option<i32>,
) -> Result<Vec<Candidate>, DurableError> {
    let s = statements(db)?;
    let mut values = vec![
        queue.into(),
        filter.names.into(),
        filter.app_version.into(),
        filter.any_version.into(),
        limit.into(),
    ];
    let sql = match per_key {
        None => s.queue_candidates,
        Some(per_key) => {
            values.push(per_key.into());
            s.keyed_candidates
        }
    };
    candidates(query_all(db, sql, values).await?)
}

pub(crate) async fn orphan_candidates(
    db: &impl ConnectionTrait,
    filter: &ClaimFilter<'_>,
    limit: i64,
) -> Result<Vec<Candidate>, DurableError> {
    let sql = statements(db)?.orphan_candidates;
    let values = vec![
        filter.names.into(),
        filter.app_version.into(),
        filter.any_version.into(),
        limit.into(),
    ];
    candidates(query_all(db, sql, values).await?)
}

pub(crate) async fn claim_one(
    db: &impl ConnectionTrait,
    id: Uuid,
    owner: Uuid,
    app_version: Option<&str>,
) -> Result<Option<TaskRow>, DurableError> {
    let sql = statements(db)?.claim_one;
    let values = vec![id.into(), owner.into(), app_version.into()];
    Ok(one(query_one(db, sql, values).await?)?)
}

pub(crate) async fn release_one(
    db: &impl ConnectionTrait,
    id: Uuid,
    owner: Uuid,
    lease_epoch: i64,
) -> Result<(), DurableError> {
    let sql = statements(db)?.release_one;
    let values = vec![id.into(), owner.into(), lease_epoch.into()];
    db.execute_raw(stmt(db, sql, values)).await?;
    Ok(())
}

pub(crate) async fn release_owned(
    db: &impl ConnectionTrait,
    owner: Uuid,
) -> Result<u64, DurableError> {
    let sql = statements(db)?.release_owned;
    Ok(query_all(db, sql, vec![owner.into()]).await?.len() as u64)
}

/// PostgreSQL: wake the executors waiting on `LISTEN durable_wakeup`.
pub(crate) async fn notify(db: &impl ConnectionTrait, queue: &str) -> Result<(), DurableError> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_raw(stmt(db, super::sql::PG_NOTIFY, vec![queue.into()]))
            .await?;
    }
    Ok(())
}
