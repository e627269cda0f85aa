//! The connections the engine's own single statements go through on
//! PostgreSQL: the check before a step, its checkpoint, a finish, a claim.
//!
//! sqlx pings every pooled connection as it goes back to its pool (sqlx 0.9,
//! `Floating::return_to_pool`; no option turns it off), so a statement on
//! the user's pool costs two round trips on the wire, and a fresh step
//! (two statements) four. Here the engine keeps connections checked out of
//! a pool of its own and hands them from one statement to the next without
//! returning them, so nothing pings: one round trip per statement.
//!
//! - The pool is opened with the options of the user's pool (its hooks
//!   included: a `search_path` set after connect still applies), lazily, at
//!   most as many connections as that pool's maximum, and shared by every
//!   store on that pool (a program that starts a thousand inline workflows
//!   still has one set).
//! - A connection goes back to the idle stack after an answered statement
//!   (an error the server sent leaves it usable: autocommit has no
//!   transaction to abort). One whose statement failed on the wire or was
//!   abandoned at its deadline is closed, and with it every idle one (a
//!   server restart ends them all, and each would cost a failed attempt).
//! - An idle connection unused for [`IDLE_LIMIT`] is closed when next seen
//!   instead of used: a NAT or firewall may have dropped it silently.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sea_orm::sqlx::pool::{PoolConnection, PoolOptions};
use sea_orm::sqlx::{self, PgPool, Postgres};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a connection may sit idle and still be used.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Settings of the engine's sessions. Each statement of the engine reads or
/// writes a few rows by index, and its plan does not depend on its values:
///
/// - no JIT: an estimate on a large table can pass `jit_above_cost` and
///   compile for longer than the statement runs;
/// - generic plans only: each statement is planned once per connection,
///   not on every call. Left to choose, PostgreSQL plans a prepared
///   statement afresh on each call once its generic plan was costed above
///   its plans for values, and a cost drifts with the table's size: the
///   claim of a queue's next workflow (a lookup per served function name,
///   which the planner counts as 100) tipped over in about one benchmark
///   run in four and was then planned on every call of that connection,
///   1.1 to 1.45 ms of the server's time each (measured with
///   `pg_stat_statements.track_planning`), which cut throughput through
///   the queue at 8 slots from 0.58 to 0.38 times the floor. Reads whose
///   best plan depends on their values (listing with filters) go through
///   the user's pool instead.
const ENGINE_SETTINGS: [(&str, &str); 2] =
    [("jit", "off"), ("plan_cache_mode", "force_generic_plan")];

/// The engine's connections to one database, shared by the stores on one
/// user pool.
pub(crate) struct HotConnections {
    pool: PgPool,
    /// One permit per connection the set may have checked out at once
    /// (idle ones on the stack hold none): with a permit, either the stack
    /// has a connection or the pool has room for a new one.
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
}

impl HotConnections {
    /// The set for the user's pool `db` (PostgreSQL), made on first use.
    /// `deadline` bounds opening a connection.
    pub(crate) fn for_pool(db: &DatabaseConnection, deadline: Duration) -> Arc<Self> {
        static REGISTRY: super::PerPool<HotConnections> = Mutex::new(Vec::new());
        super::shared_per_pool(&REGISTRY, db, || {
            let user = db.get_postgres_connection_pool();
            let size = user.options().get_max_connections().max(1);
            let options: PoolOptions<Postgres> = user
                .options()
                .clone()
                .max_connections(size)
                .min_connections(0)
                .idle_timeout(None)
                .max_lifetime(None)
                .test_before_acquire(false)
                .acquire_timeout(deadline);
            Arc::new(Self {
                // The options `Arc` is the pool key: this pool holds it, so
                // the key cannot be reused by another pool while the set
                // lives. Session settings: see `ENGINE_SETTINGS`.
                pool: options
                    .connect_lazy_with((*user.connect_options()).clone().options(ENGINE_SETTINGS)),
                permits: Arc::new(Semaphore::new(size as usize)),
                idle: Mutex::new(Vec::new()),
            })
        })
    }

    /// A connection for one statement: an idle one, or a new one.
    /// The caller bounds the wait.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Hot, DbErr> {
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| {
                DbErr::Custom("durable: the engine's connections are closed".into())
            })?;
        let reused = loop {
            let next = self.idle_stack().pop();
            match next {
                Some((conn, since)) if since.elapsed() < IDLE_LIMIT => break Some(conn),
                Some((mut stale, _)) => stale.close_on_drop(),
                None => break None,
            }
        };
        let conn = match reused {
            Some(conn) => conn,
            None => self
                .pool
                .acquire()
                .await
                .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?,
        };
        Ok(Hot {
            set: self.clone(),
            conn: tokio::sync::Mutex::new(Some(conn)),
            _permit: permit,
        })
    }

    /// How often the server planned the statements prepared on the idle
    /// connections of the set, generically and for values: (generic,
    /// custom). For tests: each idle connection is checked out (as a
    /// statement would be), asked, and put back.
    pub(crate) async fn plans(self: &Arc<Self>) -> Result<(i64, i64), DbErr> {
        const PLANS: &str = "SELECT COALESCE(SUM(generic_plans), 0)::BIGINT AS generic, \
             COALESCE(SUM(custom_plans), 0)::BIGINT AS custom FROM pg_prepared_statements \
             WHERE statement NOT LIKE '%pg_prepared_statements%'";
        let idle = self.idle_stack().len();
        let mut held = Vec::with_capacity(idle);
        for _ in 0..idle {
            held.push(self.acquire().await?);
        }
        let mut total = (0, 0);
        for hot in &held {
            let row = hot
                .query_one_raw(Statement::from_string(DbBackend::Postgres, PLANS))
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("pg_prepared_statements".into()))?;
            total.0 += row.try_get::<i64>("", "generic")?;
            total.1 += row.try_get::<i64>("", "custom")?;
        }
        Ok(total)
    }

    fn idle_stack(&self) -> std::sync::MutexGuard<'_, Vec<(PoolConnection<Postgres>, Instant)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Close every idle connection (one of them just failed on the wire).
    fn close_idle(&self) {
        for (mut conn, _) in self.idle_stack().drain(..) {
            conn.close_on_drop();
        }
    }
}

/// One connection of the set, checked out for a statement; back on the
/// stack when dropped, unless its statement did not end cleanly.
pub(crate) struct Hot {
    set: Arc<HotConnections>,
    /// `None` once the connection is known to be unusable. A mutex because
    /// `ConnectionTrait` runs statements through `&self`; never contended.
    conn: tokio::sync::Mutex<Option<PoolConnection<Postgres>>>,
    _permit: OwnedSemaphorePermit,
}

impl Hot {
    /// Run one statement, keeping the connection only if it answered.
    async fn run<T>(
        &self,
        stmt: &Statement,
        run: impl AsyncFnOnce(
            &mut PoolConnection<Postgres>,
            sqlx::query::Query<'_, Postgres, SqlxValues>,
        ) -> Result<T, sqlx::Error>,
        into_err: fn(sqlx::Error) -> DbErr,
    ) -> Result<T, DbErr> {
        let mut slot = self.conn.lock().await;
        // Taken out while the statement runs, and closed unless it
        // answers: if this future is dropped half-way (its deadline
        // passed), the connection goes with it, closed, not returned to
        // sqlx's pool (whose ping on return would wait for the old answer
        // of a silent server for ever, holding a slot of the set).
        let Some(conn) = slot.take() else {
            return Err(into_err(sqlx::Error::PoolClosed));
        };
        let mut conn = CloseUnlessAnswered(Some(conn));
        let values = stmt
            .values
            .clone()
            .unwrap_or(sea_orm::sea_query::Values(Vec::new()));
        let query = sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values));
        let result = run(conn.0.as_mut().expect("taken above"), query).await;
        match &result {
            Ok(_) | Err(sqlx::Error::RowNotFound | sqlx::Error::Database(_)) => {
                *slot = conn.0.take();
            }
            Err(_) => self.set.close_idle(),
        }
        result.map_err(into_err)
    }
}

/// A connection closed when dropped, unless taken out first.
struct CloseUnlessAnswered(Option<PoolConnection<Postgres>>);

impl Drop for CloseUnlessAnswered {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.0 {
            conn.close_on_drop();
        }
    }
}

impl Drop for Hot {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.get_mut().take() {
            self.set.idle_stack().push((conn, Instant::now()));
        }
    }
}

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

#[async_trait]
impl ConnectionTrait for Hot {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.run(
            &stmt,
            async |conn, query| query.execute(&mut **conn).await,
            exec_err,
        )
        .await
        .map(Into::into)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.execute_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.run(
            &stmt,
            async |conn, query| query.fetch_optional(&mut **conn).await,
            query_err,
        )
        .await
        .map(|row| row.map(Into::into))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.run(
            &stmt,
            async |conn, query| query.fetch_all(&mut **conn).await,
            query_err,
        )
        .await
        .map(|rows| rows.into_iter().map(Into::into).collect())
    }
}
