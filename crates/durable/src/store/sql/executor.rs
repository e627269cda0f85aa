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

/// PostgreSQL only: ask the server to end the other sessions that hold the
/// advisory lock `(1685418593, $1)`: earlier sessions of this executor that
/// went silent (a stopped backend, a black-holed connection).
const PG_END_EARLIER_SESSIONS: &str = "SELECT COUNT(pg_terminate_backend(pid)) AS ended FROM pg_locks \
     WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid::BIGINT = 1685418593 \
     AND objid::BIGINT = $1 AND pid <> pg_backend_pid() \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// PostgreSQL only: wait for the advisory lock `(1685418593, $1)`.
const PG_WAIT_FOR_LOCK: &str = "SELECT pg_advisory_lock(1685418593, $1::INT)::TEXT AS taken";

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
    /// The user's store, for its connect options and ids, and for beats
    /// while the session waits for its lock.
    store: SqlStore,
    /// The open session, if any; `None` after a failure.
    open: tokio::sync::Mutex<Option<SqlStore>>,
    lock_key: i64,
    /// A wait for the lock on the open session, while an earlier session
    /// of ours still holds it (see [`Session::beat_on`]).
    waiter: std::sync::Mutex<Option<tokio::task::JoinHandle<Result<(), DbErr>>>>,
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
                    waiter: std::sync::Mutex::new(None),
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
            deadline: store.deadline,
        })
    }

    /// On the open session (opening one if needed): confirm or retake the
    /// lock, then register or renew the lease.
    ///
    /// After a reconnect the lock may still be held by our earlier session
    /// (silent, but not yet ended by the server). Then the new session asks
    /// the server to end that one and *waits* for the lock, so it passes
    /// to us the moment the old session ends: with a try-lock at the next
    /// beat instead, there would be a window in which the lock is held by
    /// nobody and others would take us for dead. While it waits, the beats
    /// go through the user's pool.
    async fn beat_on(
        &self,
        open: &mut Option<SqlStore>,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool> {
        if let Some(waited) = self.finished_wait() {
            if let Err(err) = waited {
                // The session died while it waited: start afresh.
                close(open.take());
                tracing::debug!(error = %err, "waiting for the liveness lock failed");
            }
        } else if self.is_waiting() {
            return self.beat_on_pool(executor, lease_ms, renew).await;
        }
        if open.is_none() {
            *open = Some(Self::connect(&self.store).await?);
        }
        let session = open.as_ref().expect("opened above");
        if session.hold_lock(self.lock_key).await? {
            return session
                .upsert_executor(&session.db, executor, lease_ms, renew)
                .await;
        }
        tracing::warn!(executor = %executor.id, "an earlier session still holds the liveness lock: ending it, and waiting for the lock");
        session
            .query_one(
                &session.db,
                PG_END_EARLIER_SESSIONS,
                vec![self.lock_key.into()],
            )
            .await?;
        let (db, key) = (session.db.clone(), self.lock_key);
        let wait = tokio::spawn(async move {
            // Not bounded by a deadline: it waits, on the server, for as
            // long as the old session lives (the server's keepalives end a
            // vanished one).
            let stmt = sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                PG_WAIT_FOR_LOCK,
                vec![key.into()],
            );
            db.query_one_raw(stmt).await.map(|_| ())
        });
        *self.waiter.lock().unwrap_or_else(|e| e.into_inner()) = Some(wait);
        self.beat_on_pool(executor, lease_ms, renew).await
    }

    async fn beat_on_pool(
        &self,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool> {
        self.store
            .upsert_executor(&self.store.db, executor, lease_ms, renew)
            .await
    }

    fn is_waiting(&self) -> bool {
        self.waiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|w| !w.is_finished())
    }

    /// The outcome of a wait for the lock that has ended, once.
    fn finished_wait(&self) -> Option<Result<(), DbErr>> {
        let mut waiter = self.waiter.lock().unwrap_or_else(|e| e.into_inner());
        if !waiter.as_ref().is_some_and(|w| w.is_finished()) {
            return None;
        }
        let wait = waiter.take()?;
        // Finished: `now_or_never` returns at once.
        match futures::FutureExt::now_or_never(wait) {
            Some(Ok(result)) => Some(result),
            Some(Err(join)) => Some(Err(DbErr::Custom(join.to_string()))),
            None => None,
        }
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
        if beat.is_err() && !self.is_waiting() {
            // Whatever failed, the next beat starts on a new connection
            // (unless the session waits for the lock: then the beat went
            // through the user's pool, and the session is fine).
            close(open.take());
        }
        beat
    }

    fn reset(&self) {
        if self.is_waiting() {
            return;
        }
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
        if let Some(wait) = self
            .waiter
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            wait.abort();
        }
        close(self.open.get_mut().take());
    }
}
