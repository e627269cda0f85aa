//! `floor`: the raw database. A loop of one-row `INSERT`s, each its own
//! autocommitted transaction, on the same driver and the same kind of pool
//! as the SDK (`durable::connect`), at several concurrency levels; and, at
//! one at a time, the same on one bare connection with no pool (sqlx pings
//! a pooled connection as it goes back: two round trips per insert on the
//! pool, one here). A durable step cannot be cheaper than one such commit.

use std::time::Duration;

use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::Serialize;

use crate::drive::{self, micros};
use crate::error::Result;
use crate::sql;
use crate::stats::Spread;

/// The floor at one concurrency level.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FloorLevel {
    /// Tasks inserting at once (they share the pool's connections).
    pub(crate) concurrency: usize,
    /// Mean time of one insert as its task sees it (wall time x tasks / inserts).
    pub(crate) us_per_insert: Spread,
    pub(crate) inserts_per_s: Spread,
}

/// The floor at every level measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FloorReport {
    /// Inserts per measurement.
    pub(crate) inserts: u32,
    pub(crate) levels: Vec<FloorLevel>,
    /// µs per insert on one bare connection (no pool), one at a time.
    pub(crate) bare_us_per_insert: Option<Spread>,
}

impl FloorReport {
    /// The floor at a concurrency level, if measured.
    pub(crate) fn at(&self, concurrency: usize) -> Option<&FloorLevel> {
        self.levels.iter().find(|l| l.concurrency == concurrency)
    }
}

/// One measurement: (µs per insert as a task sees it, inserts per second).
pub(crate) async fn sample(
    db: &DatabaseConnection,
    concurrency: usize,
    inserts: u32,
) -> Result<(f64, f64)> {
    let elapsed = inserts_by(db, concurrency, inserts).await?;
    Ok((
        micros(elapsed) * concurrency as f64 / f64::from(inserts),
        f64::from(inserts) / elapsed.as_secs_f64(),
    ))
}

/// Open the pool's connections for a level (connecting is not the floor).
pub(crate) async fn warm(db: &DatabaseConnection, concurrency: usize) -> Result<()> {
    let inserts = u32::try_from(concurrency * 2).unwrap_or(u32::MAX);
    inserts_by(db, concurrency, inserts).await.map(|_| ())
}

/// `inserts` autocommitted inserts by `concurrency` tasks; the wall time.
async fn inserts_by(db: &DatabaseConnection, concurrency: usize, inserts: u32) -> Result<Duration> {
    let db = db.clone();
    drive::concurrently(concurrency, inserts, move |i| {
        let db = db.clone();
        async move { insert(&db, i).await }
    })
    .await
}

/// One measurement on a bare connection opened with the pool's options:
/// µs per insert, one at a time.
pub(crate) async fn bare_sample(db: &DatabaseConnection, inserts: u32) -> Result<f64> {
    use durable::sea_orm::sqlx::{self, Connection};
    async fn run<C: Connection>(
        mut conn: C,
        inserts: u32,
        insert: impl AsyncFn(&mut C, u32) -> std::result::Result<(), sqlx::Error>,
    ) -> std::result::Result<Duration, sqlx::Error> {
        insert(&mut conn, u32::MAX).await?; // prepare
        let started = std::time::Instant::now();
        for i in 0..inserts {
            insert(&mut conn, i).await?;
        }
        let elapsed = started.elapsed();
        conn.close().await?;
        Ok(elapsed)
    }
    let body = |i: u32| format!("{{\"i\":{i}}}");
    let db_err = |e: sqlx::Error| {
        durable::sea_orm::DbErr::Conn(durable::sea_orm::RuntimeErr::SqlxError(
            std::sync::Arc::new(e),
        ))
    };
    // The same loop on either driver's connection type (sqlx's generic
    // bounds for "a connection that binds a UUID and a text" would be
    // longer than the loop).
    macro_rules! on_bare {
        ($connection:ty, $pool:ident) => {{
            let options = db.$pool().connect_options();
            let conn = <$connection>::connect_with(&options)
                .await
                .map_err(db_err)?;
            run(conn, inserts, async |c, i| {
                sqlx::query(sql::FLOOR_INSERT)
                    .bind(uuid::Uuid::new_v4())
                    .bind(body(i))
                    .execute(&mut *c)
                    .await
                    .map(|_| ())
            })
            .await
            .map_err(db_err)?
        }};
    }
    let elapsed = match db.get_database_backend() {
        durable::sea_orm::DbBackend::Postgres => {
            on_bare!(sqlx::PgConnection, get_postgres_connection_pool)
        }
        _ => on_bare!(sqlx::SqliteConnection, get_sqlite_connection_pool),
    };
    Ok(micros(elapsed) / f64::from(inserts))
}

/// One row like a checkpoint: a UUID and a small JSON text.
pub(crate) async fn insert(db: &DatabaseConnection, i: u32) -> Result<()> {
    let stmt = Statement::from_sql_and_values(
        db.get_database_backend(),
        sql::FLOOR_INSERT,
        [uuid::Uuid::new_v4().into(), format!("{{\"i\":{i}}}").into()],
    );
    db.execute_raw(stmt).await?;
    Ok(())
}
