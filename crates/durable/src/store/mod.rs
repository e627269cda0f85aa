//! The storage interface: one typed function per statement of [`sql`].
//!
//! Nothing outside this module writes SQL. Each function takes the
//! connection to run on (the pool, or the user's transaction inside
//! `ctx.transaction`), binds its values and decodes the rows.

mod queue;
pub(crate) mod sql;

pub(crate) use queue::*;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};
use uuid::Uuid;

use crate::error::DurableError;
use crate::status::{Kind, Status};
use sql::Statements;

/// The statements of the connection's backend.
pub(crate) fn statements(db: &impl ConnectionTrait) -> Result<&'static Statements, DurableError> {
    match db.get_database_backend() {
        DbBackend::Postgres => Ok(&sql::POSTGRES),
        DbBackend::Sqlite => Ok(&sql::SQLITE),
        other => Err(DurableError::InvalidInput(format!(
            "durable supports PostgreSQL and SQLite, not {other:?}"
        ))),
    }
}

pub(super) fn stmt(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

pub(super) async fn query_one(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<QueryResult>, DbErr> {
    db.query_one_raw(stmt(db, sql, values)).await
}

pub(super) async fn query_all(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(stmt(db, sql, values)).await
}

/// A task row as the SDK reads it (the columns of `task_columns!`).
#[derive(Debug, Clone)]
pub(crate) struct TaskRow {
    pub(crate) id: Uuid,
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) status: Status,
    pub(crate) sequence: Option<i32>,
    pub(crate) output: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) retry_count: i32,
    pub(crate) lease_epoch: i64,
    /// JSON text of the workflow input.
    pub(crate) input: Option<String>,
    /// Queue of an enqueued workflow.
    pub(crate) queue: Option<String>,
}

impl TaskRow {
    pub(super) fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.try_get_by_index(0)?,
            key: row.try_get_by_index(1)?,
            name: row.try_get_by_index(2)?,
            kind: Kind::parse(&row.try_get_by_index::<String>(3)?)?,
            status: Status::parse(&row.try_get_by_index::<String>(4)?)?,
            sequence: row.try_get_by_index(5)?,
            output: row.try_get_by_index(6)?,
            error: row.try_get_by_index(7)?,
            retry_count: row.try_get_by_index(8)?,
            lease_epoch: row.try_get_by_index(9)?,
            input: row.try_get_by_index(10)?,
            queue: row.try_get_by_index(11)?,
        })
    }
}

fn rows(result: Vec<QueryResult>) -> Result<Vec<TaskRow>, DbErr> {
    result.iter().map(TaskRow::from_row).collect()
}

pub(super) fn one(result: Option<QueryResult>) -> Result<Option<TaskRow>, DbErr> {
    result.as_ref().map(TaskRow::from_row).transpose()
}

/// Facts about a process that owns work, for liveness checks.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorRow {
    pub(crate) id: Uuid,
    pub(crate) hostname: String,
    pub(crate) pid: i64,
    pub(crate) pid_started: i64,
    /// PostgreSQL: key of the advisory lock the executor's session holds.
    pub(crate) lock_key: Option<i64>,
}

impl ExecutorRow {
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.try_get_by_index(0)?,
            hostname: row.try_get_by_index(1)?,
            pid: row.try_get_by_index(2)?,
            pid_started: row.try_get_by_index(3)?,
            lock_key: None,
        })
    }
}

pub(crate) async fn upsert_executor(
    db: &impl ConnectionTrait,
    executor: &ExecutorRow,
    lease_ms: i64,
) -> Result<(), DurableError> {
    let sql = statements(db)?.upsert_executor;
    let values = vec![
        executor.id.into(),
        executor.hostname.clone().into(),
        executor.pid.into(),
        executor.pid_started.into(),
        lease_ms.into(),
        executor.lock_key.into(),
    ];
    db.execute_raw(stmt(db, sql, values)).await?;
    Ok(())
}

/// PostgreSQL: take or confirm the session advisory lock `key`; false if
/// another session holds it.
pub(crate) async fn hold_lock(db: &impl ConnectionTrait, key: i64) -> Result<bool, DurableError> {
    let row = query_one(db, sql::PG_HOLD_LOCK, vec![key.into()]).await?;
    Ok(row
        .map(|r| r.try_get_by_index::<bool>(0))
        .transpose()?
        .unwrap_or(false))
}

pub(crate) async fn expire_executor(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<(), DurableError> {
    let sql = statements(db)?.expire_executor;
    db.execute_raw(stmt(db, sql, vec![id.into()])).await?;
    Ok(())
}

/// The owner of a task, if any, and whether its lease is still live.
pub(crate) async fn owner_of(
    db: &impl ConnectionTrait,
    task: Uuid,
) -> Result<Option<(ExecutorRow, bool)>, DurableError> {
    let sql = statements(db)?.owner_of;
    let Some(row) = query_one(db, sql, vec![task.into()]).await? else {
        return Ok(None);
    };
    Ok(Some((
        ExecutorRow::from_row(&row)?,
        row.try_get_by_index::<bool>(4)?,
    )))
}

pub(crate) async fn live_owners(
    db: &impl ConnectionTrait,
) -> Result<Vec<ExecutorRow>, DurableError> {
    let sql = statements(db)?.live_owners;
    let result = query_all(db, sql, vec![]).await?;
    Ok(result
        .iter()
        .map(ExecutorRow::from_row)
        .collect::<Result<_, _>>()?)
}

/// Arguments of a root claim.
pub(crate) struct NewRoot<'a> {
    pub(crate) key: &'a str,
    pub(crate) name: &'a str,
    pub(crate) input: Option<String>,
    pub(crate) owner: Uuid,
}

/// A claimed workflow row, and whether the claim created it just now.
pub(crate) struct Claimed {
    pub(crate) row: TaskRow,
    pub(crate) created: bool,
}

pub(crate) async fn claim_root(
    db: &impl ConnectionTrait,
    root: &NewRoot<'_>,
) -> Result<Option<Claimed>, DurableError> {
    let sql = statements(db)?.claim_root;
    let new_id = Uuid::new_v4();
    let values = vec![
        new_id.into(),
        root.key.into(),
        root.name.into(),
        root.input.clone().into(),
        root.owner.into(),
    ];
    Ok(claimed(one(query_one(db, sql, values).await?)?, new_id))
}

fn claimed(row: Option<TaskRow>, new_id: Uuid) -> Option<Claimed> {
    row.map(|row| Claimed {
        created: row.id == new_id,
        row,
    })
}

/// Arguments of a child claim.
pub(crate) struct NewChild<'a> {
    pub(crate) root: Uuid,
    pub(crate) parent: Uuid,
    pub(crate) key: &'a str,
    pub(crate) name: &'a str,
    pub(crate) position: i32,
    pub(crate) input: Option<String>,
    pub(crate) owner: Uuid,
    pub(crate) parent_epoch: i64,
}

pub(crate) async fn claim_child(
    db: &impl ConnectionTrait,
    child: &NewChild<'_>,
) -> Result<Option<Claimed>, DurableError> {
    let sql = statements(db)?.claim_child;
    let new_id = Uuid::new_v4();
    let values = vec![
        new_id.into(),
        child.root.into(),
        child.parent.into(),
        child.key.into(),
        child.name.into(),
        child.position.into(),
        child.input.clone().into(),
        child.owner.into(),
        child.parent_epoch.into(),
    ];
    Ok(claimed(one(query_one(db, sql, values).await?)?, new_id))
}

pub(crate) async fn root_by_key(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<TaskRow>, DurableError> {
    let sql = statements(db)?.root_by_key;
    Ok(one(query_one(db, sql, vec![key.into()]).await?)?)
}

pub(crate) async fn task_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<TaskRow>, DurableError> {
    let sql = statements(db)?.task_by_id;
    Ok(one(query_one(db, sql, vec![id.into()]).await?)?)
}

pub(crate) async fn task_by_key(
    db: &impl ConnectionTrait,
    parent: Uuid,
    key: &str,
) -> Result<Option<TaskRow>, DurableError> {
    let sql = statements(db)?.task_by_key;
    Ok(one(
        query_one(db, sql, vec![parent.into(), key.into()]).await?
    )?)
}

pub(crate) async fn history_page(
    db: &impl ConnectionTrait,
    workflow: Uuid,
    from_position: i32,
    limit: i64,
) -> Result<Vec<TaskRow>, DurableError> {
    let sql = statements(db)?.history_page;
    let values = vec![workflow.into(), from_position.into(), limit.into()];
    Ok(rows(query_all(db, sql, values).await?)?)
}

/// What a step learns from its one read before it runs.
#[derive(Debug)]
pub(crate) struct StepCheck {
    pub(crate) owner_id: Option<Uuid>,
    pub(crate) lease_epoch: i64,
    pub(crate) status: Status,
    /// `CANCELLED` or `PAUSED` if the workflow or an ancestor is.
    pub(crate) blocked: Option<Status>,
    pub(crate) deadline_ms: Option<i64>,
    pub(crate) now_ms: i64,
    /// The step's record, if one was written since history was loaded.
    pub(crate) record: Option<StepRecord>,
}

/// A step's record as the check read returns it.
#[derive(Debug, Clone)]
pub(crate) struct StepRecord {
    pub(crate) status: Status,
    pub(crate) output: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) retry_count: i32,
    pub(crate) kind: Kind,
}

/// `root` says the workflow has no ancestors, so one row lookup will do.
pub(crate) async fn step_check(
    db: &impl ConnectionTrait,
    workflow: Uuid,
    root: bool,
    key: &str,
) -> Result<Option<StepCheck>, DurableError> {
    let s = statements(db)?;
    let sql = if root {
        s.step_check_root
    } else {
        s.step_check
    };
    let Some(row) = query_one(db, sql, vec![workflow.into(), key.into()]).await? else {
        return Ok(None);
    };
    let blocked: Option<String> = row.try_get_by_index(3)?;
    let record_status: Option<String> = row.try_get_by_index(6)?;
    let record = match record_status {
        Some(status) => Some(StepRecord {
            status: Status::parse(&status)?,
            output: row.try_get_by_index(7)?,
            error: row.try_get_by_index(8)?,
            retry_count: row.try_get_by_index(9)?,
            kind: Kind::parse(&row.try_get_by_index::<String>(10)?)?,
        }),
        None => None,
    };
    Ok(Some(StepCheck {
        owner_id: row.try_get_by_index(0)?,
        lease_epoch: row.try_get_by_index(1)?,
        status: Status::parse(&row.try_get_by_index::<String>(2)?)?,
        blocked: blocked.as_deref().map(Status::parse).transpose()?,
        deadline_ms: row.try_get_by_index(4)?,
        now_ms: row.try_get_by_index(5)?,
        record,
    }))
}

/// A checkpoint to write.
pub(crate) struct Checkpoint<'a> {
    pub(crate) root: Uuid,
    pub(crate) parent: Uuid,
    pub(crate) key: &'a str,
    pub(crate) name: &'a str,
    pub(crate) kind: Kind,
    pub(crate) status: Status,
    pub(crate) position: i32,
    pub(crate) output: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) retry_count: i32,
    pub(crate) max_retries: i32,
    pub(crate) started_ms: i64,
    pub(crate) owner: Uuid,
    pub(crate) lease_epoch: i64,
}

/// Write a checkpoint; `false` when the fence or an existing finished record rejected it.
pub(crate) async fn commit_step(
    db: &impl ConnectionTrait,
    cp: &Checkpoint<'_>,
) -> Result<bool, DbErr> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => sql::POSTGRES.commit_step,
        _ => sql::SQLITE.commit_step,
    };
    let values = vec![
        Uuid::new_v4().into(),
        cp.root.into(),
        cp.parent.into(),
        cp.key.into(),
        cp.name.into(),
        cp.kind.as_str().into(),
        cp.status.as_str().into(),
        cp.position.into(),
        cp.output.clone().into(),
        cp.error.clone().into(),
        cp.retry_count.into(),
        cp.max_retries.into(),
        cp.started_ms.into(),
        cp.owner.into(),
        cp.lease_epoch.into(),
    ];
    Ok(query_one(db, sql, values).await?.is_some())
}

/// Finish a workflow; `false` when it was not RUNNING/PENDING under this lease.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish_workflow(
    db: &impl ConnectionTrait,
    id: Uuid,
    status: Status,
    output: Option<String>,
    error: Option<String>,
    owner: Uuid,
    lease_epoch: i64,
) -> Result<bool, DurableError> {
    let sql = statements(db)?.finish_workflow;
    let values = vec![
        id.into(),
        status.as_str().into(),
        output.into(),
        error.into(),
        owner.into(),
        lease_epoch.into(),
    ];
    Ok(query_one(db, sql, values).await?.is_some())
}

pub(crate) async fn set_timeout(
    db: &impl ConnectionTrait,
    id: Uuid,
    timeout_ms: i64,
) -> Result<bool, DurableError> {
    let sql = statements(db)?.set_timeout;
    Ok(query_one(db, sql, vec![id.into(), timeout_ms.into()])
        .await?
        .is_some())
}

pub(crate) async fn lock_status(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<Status>, DurableError> {
    let sql = statements(db)?.lock_status;
    match query_one(db, sql, vec![id.into()]).await? {
        Some(row) => Ok(Some(Status::parse(&row.try_get_by_index::<String>(0)?)?)),
        None => Ok(None),
    }
}

/// Which cascade a management call runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cascade {
    Pause,
    Resume,
    Cancel,
}

pub(crate) async fn cascade(
    db: &impl ConnectionTrait,
    id: Uuid,
    which: Cascade,
) -> Result<u64, DurableError> {
    let s = statements(db)?;
    let sql = match which {
        Cascade::Pause => s.pause_tree,
        Cascade::Resume => s.resume_tree,
        Cascade::Cancel => s.cancel_tree,
    };
    Ok(db
        .execute_raw(stmt(db, sql, vec![id.into()]))
        .await?
        .rows_affected())
}

pub(crate) async fn release_dead(db: &impl ConnectionTrait) -> Result<Vec<Uuid>, DurableError> {
    let sql = statements(db)?.release_dead;
    let result = query_all(db, sql, vec![]).await?;
    Ok(result
        .iter()
        .map(|row| row.try_get_by_index::<Uuid>(0))
        .collect::<Result<_, _>>()?)
}
