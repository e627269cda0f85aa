//! The connection heartbeats go through: one of their own, never one of the
//! user's pooled connections, so a pool that the workflows' steps (or the
//! user's own queries) hold to the last connection cannot starve the beats
//! and let a busy, healthy executor's lease run out. After a beat that
//! failed it is given up, and the next beat opens a new one: a connection
//! whose statement was abandoned at its deadline would make the next
//! statement wait for the old one's answer (a silent server backend).

use std::sync::{Arc, Mutex};

use sea_orm::sqlx::pool::PoolOptions;
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr};

use super::{Dialect, STATEMENT_DEADLINE};

/// The beat connection of one store, opened on first use.
#[derive(Default)]
pub(super) struct BeatConnection {
    open: Mutex<Option<DatabaseConnection>>,
}

impl BeatConnection {
    /// The open connection, or a new one with the options of `db`'s pool.
    pub(super) async fn get(
        &self,
        db: &DatabaseConnection,
        dialect: Dialect,
    ) -> Result<DatabaseConnection, DbErr> {
        if let Some(open) = self.open.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(open);
        }
        let fresh = one_connection(db, dialect).await?;
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh.clone());
        Ok(fresh)
    }

    /// Give the connection up (a beat on it failed).
    pub(super) fn reset(&self) {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// A pool of one connection with the options of `db`'s pool (its hooks
/// included: a `search_path` set after connect applies to beats too).
async fn one_connection(
    db: &DatabaseConnection,
    dialect: Dialect,
) -> Result<DatabaseConnection, DbErr> {
    let err = |e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e)));
    Ok(match dialect {
        Dialect::Postgres => {
            let user = db.get_postgres_connection_pool();
            let pool = one_connection_pool(user.options())
                .connect_with((*user.connect_options()).clone())
                .await
                .map_err(err)?;
            sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
        }
        Dialect::Sqlite => {
            let user = db.get_sqlite_connection_pool();
            let pool = one_connection_pool(user.options())
                .connect_with((*user.connect_options()).clone())
                .await
                .map_err(err)?;
            sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
        }
    })
}

/// The user's pool options with at most one connection, no ping before
/// use (every beat has a deadline), no idle or lifetime limit.
fn one_connection_pool<DB: sea_orm::sqlx::Database>(user: &PoolOptions<DB>) -> PoolOptions<DB> {
    user.clone()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .acquire_timeout(STATEMENT_DEADLINE)
}
