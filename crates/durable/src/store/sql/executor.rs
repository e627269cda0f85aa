//! Executors: lease rows, heartbeats, and the PostgreSQL session that
//! proves a process alive.

use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DbErr, RuntimeErr};
use uuid::Uuid;

use super::decode::Row;
use super::dialect::dialects;
use super::{Dialect, SqlStore};
use crate::store::{ExecutorRow, Liveness, Renewal, StoreResult};

pub(super) struct ExecutorSql {
    /// Register an executor or renew its lease, recording the database time
    /// of the beat. `$1` id, `$2` hostname, `$3` pid, `$4` pid start time,
    /// `$5` lease ms, `$6` advisory lock key or NULL, `$7` whether to
    /// register anew (else a lease that has already expired is not
    /// renewed: others may have taken the work over). Returns the id when
    /// the lease is live afterwards.
    upsert: &'static str,
    /// Mark an executor dead at once. `$1` id.
    expire: &'static str,
    /// Liveness facts of the executor owning a workflow. `$1` workflow id.
    owner_of: &'static str,
    /// Executors that look alive by lease and own unfinished workflows
    /// (for the same-host process check).
    live_owners: &'static str,
}

macro_rules! executor_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, lock_held = $lock_held:literal, skip_locked = $skip_locked:literal, json_list = ($lo:literal, $lc:literal)) => {
        ExecutorSql {
            upsert: concat!(
                "INSERT INTO durable_executor (id, hostname, pid, pid_started, started_ms, lease_expires_ms, lock_key, beat_ms) \
                 VALUES ($1, $2, $3, $4, ", $now, ", ", $now, " + $5, $6, ", $now, ") \
                 ON CONFLICT (id) DO UPDATE SET lease_expires_ms = excluded.lease_expires_ms, \
                   lock_key = excluded.lock_key, beat_ms = excluded.beat_ms \
                 WHERE $7 OR durable_executor.lease_expires_ms > excluded.beat_ms RETURNING id"
            ),
            expire: "UPDATE durable_executor SET lease_expires_ms = 0 WHERE id = $1",
            owner_of: concat!(
                "SELECT e.id, e.hostname, e.pid, e.pid_started, e.lock_key, \
                   CASE WHEN e.lease_expires_ms > ", $now, " THEN 1 ELSE 0 END AS alive \
                 FROM durable_workflow JOIN durable_executor e ON e.id = durable_workflow.owner_id \
                 WHERE durable_workflow.id = $1"
            ),
            live_owners: concat!(
                "SELECT e.id, e.hostname, e.pid, e.pid_started, e.lock_key FROM durable_executor e \
                 WHERE e.lease_expires_ms > ", $now,
                " AND EXISTS (SELECT 1 FROM durable_workflow w WHERE w.owner_id = e.id \
                   AND w.status IN ('PENDING', 'RUNNING', 'PAUSED'))"
            ),
        }
    };
}

dialects! { static SQL: ExecutorSql = executor_sql; }

/// PostgreSQL only: take (or confirm) this session's advisory lock
/// `(1685418593, $1)`; the first number is the namespace of `durable`.
/// True when this session holds it afterwards.
const PG_HOLD_LOCK: &str = "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks \
     WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() AND objsubid = 2 \
     AND classid::BIGINT = 1685418593 AND objid::BIGINT = $1) \
     THEN TRUE ELSE pg_try_advisory_lock(1685418593, $1::INT) END AS held";

impl SqlStore {
    fn executor_sql(&self) -> &'static ExecutorSql {
        &SQL[self.dialect as usize]
    }

    /// Register or renew (see `upsert`); whether the lease is live now.
    pub(super) async fn upsert_executor(
        &self,
        db: &impl ConnectionTrait,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool> {
        let values = vec![
            self.id(executor.id),
            executor.hostname.clone().into(),
            executor.pid.into(),
            executor.pid_started.into(),
            lease_ms.into(),
            executor.lock_key.into(),
            (renew == Renewal::Register).into(),
        ];
        let row = self
            .query_one(db, self.executor_sql().upsert, values)
            .await?;
        Ok(row.is_some())
    }

    pub(super) async fn expire_executor_row(&self, id: Uuid) -> StoreResult<()> {
        self.execute_alone(self.executor_sql().expire, vec![self.id(id)])
            .await?;
        Ok(())
    }

    pub(super) async fn owner_of_workflow(
        &self,
        workflow: Uuid,
    ) -> StoreResult<Option<(ExecutorRow, bool)>> {
        let sql = self.executor_sql().owner_of;
        let Some(row) = self
            .query_one(&self.db, sql, vec![self.id(workflow)])
            .await?
        else {
            return Ok(None);
        };
        let row = Row::new(&row, self.dialect);
        Ok(Some((row.executor()?, row.get::<i32>("alive")? == 1)))
    }

    pub(super) async fn live_owner_rows(&self) -> StoreResult<Vec<ExecutorRow>> {
        let rows = self
            .query_all(&self.db, self.executor_sql().live_owners, vec![])
            .await?;
        Ok(rows
            .iter()
            .map(|r| Row::new(r, self.dialect).executor())
            .collect::<Result<_, _>>()?)
    }
}

/// PostgreSQL: a connection the executor opens for itself (never one of the
/// user's pooled connections). It holds the session advisory lock
/// `lock_key`; when the process dies the server ends the session and drops
/// the lock, which tells every other executor at once. It also carries the
/// heartbeats, so they never wait for a pooled connection. After any
/// failure (a server restart, a terminated backend, a beat past its
/// deadline) the connection is dropped and the next beat opens a new one
/// and takes the lock again. Behind PgBouncer in transaction pooling,
/// point the URL at PostgreSQL directly: a session lock needs a session.
#[derive(Debug)]
pub(super) struct Session {
    /// The user's store, for its connect options and ids.
    store: SqlStore,
    /// The open session, if any; `None` after a failure.
    open: tokio::sync::Mutex<Option<SqlStore>>,
    lock_key: i64,
}

impl Session {
    /// Open the session and take a free advisory lock key on it.
    pub(super) async fn open(store: &SqlStore) -> StoreResult<Self> {
        let session = Self::connect(store).await?;
        loop {
            // A random positive 31-bit key; on the rare collision, draw again.
            let bytes = Uuid::new_v4().into_bytes();
            let lock_key =
                i64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) >> 1);
            if lock_key != 0 && session.hold_lock(lock_key).await? {
                return Ok(Self {
                    store: store.clone(),
                    open: tokio::sync::Mutex::new(Some(session)),
                    lock_key,
                });
            }
        }
    }

    /// A one-connection pool with the user's connect options.
    async fn connect(store: &SqlStore) -> StoreResult<SqlStore> {
        use sea_orm::sqlx::postgres::PgPoolOptions;
        let options = (*store.db.get_postgres_connection_pool().connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(super::STATEMENT_DEADLINE)
            .connect_with(options)
            .await
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
        Ok(SqlStore {
            db: sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
            dialect: Dialect::Postgres,
            ids: store.ids.clone(),
            unsupported: None,
        })
    }

    /// On the open session (opening one if needed): confirm or retake the
    /// lock, then register or renew the lease.
    async fn beat_on(
        &self,
        open: &mut Option<SqlStore>,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool> {
        if open.is_none() {
            *open = Some(Self::connect(&self.store).await?);
        }
        let session = open.as_ref().expect("opened above");
        if !session.hold_lock(self.lock_key).await? {
            // Our own earlier session (silent, not yet ended by the server)
            // still holds it: it counts for us until it ends.
            tracing::warn!(executor = %executor.id, "advisory lock held by another session");
        }
        session
            .upsert_executor(&session.db, executor, lease_ms, renew)
            .await
    }
}

impl SqlStore {
    async fn hold_lock(&self, key: i64) -> StoreResult<bool> {
        let row = self
            .query_one(&self.db, PG_HOLD_LOCK, vec![key.into()])
            .await?;
        Ok(row
            .map(|r| r.try_get::<bool>("", "held"))
            .transpose()?
            .unwrap_or(false))
    }
}

#[async_trait]
impl Liveness for Session {
    fn lock_key(&self) -> Option<i64> {
        Some(self.lock_key)
    }

    async fn beat(
        &self,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool> {
        let mut open = self.open.lock().await;
        let beat = self.beat_on(&mut open, executor, lease_ms, renew).await;
        if beat.is_err() {
            // Whatever failed, the next beat starts on a new connection.
            close(open.take());
        }
        beat
    }

    fn reset(&self) {
        if let Ok(mut open) = self.open.try_lock() {
            close(open.take());
        }
    }
}

/// Close a session's pool in the background (a silent connection must not
/// hold up the caller).
fn close(session: Option<SqlStore>) {
    if let Some(session) = session
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        runtime.spawn(async move { session.db.close().await });
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        close(self.open.get_mut().take());
    }
}
