//! Versioned, forward-only schema migrations.
//!
//! Written by hand rather than with `sea-orm-migration` because `init` must be
//! safe when several processes call it at once: the whole run happens in one
//! transaction that first takes a lock (`pg_advisory_xact_lock` on PostgreSQL,
//! `BEGIN IMMEDIATE` on SQLite), so exactly one process applies each version
//! and the others see it applied. PostgreSQL DDL is transactional, so a failed
//! migration leaves nothing half-applied.

mod postgres;
mod sqlite;
mod tables_v2;
mod tables_v3;
mod tables_v6;
mod tables_v7;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait,
    sea_query::Value,
};

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 7;

/// One migration: its version and the statements that bring the schema to
/// it, in groups run one after the other.
struct Migration {
    version: i64,
    parts: &'static [&'static [&'static str]],
}

/// Create the `durable` tables or bring them up to [`SCHEMA_VERSION`].
///
/// Idempotent and safe to call from several processes at once.
///
/// # Errors
/// Returns the database error if a statement fails (the transaction is rolled
/// back), or [`DbErr::Custom`] if the database carries a schema newer than
/// this build (an older binary must not write to a newer schema).
///
/// ```no_run
/// # async fn demo() -> Result<(), sea_orm::DbErr> {
/// let db = sea_orm::Database::connect("sqlite://app.db?mode=rwc").await?;
/// durable_db::migrate(&db).await?;
/// # Ok(()) }
/// ```
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let (lock, migrations): (Option<&str>, &[Migration]) = match backend {
        DbBackend::Postgres => (Some(postgres::LOCK), postgres::MIGRATIONS),
        DbBackend::Sqlite => (None, sqlite::MIGRATIONS),
        other => {
            return Err(DbErr::Custom(format!(
                "durable supports PostgreSQL and SQLite, not {other:?}"
            )));
        }
    };
    let txn = match backend {
        DbBackend::Sqlite => {
            db.begin_with_options(sea_orm::TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?
        }
        _ => db.begin().await?,
    };
    if let Some(lock) = lock {
        txn.execute_unprepared(lock).await?;
    }
    txn.execute_unprepared(CREATE_VERSION_TABLE).await?;
    let current: i64 = txn
        .query_one_raw(Statement::from_string(backend, CURRENT_VERSION))
        .await?
        .map(|row| row.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(DbErr::Custom(format!(
            "database schema version {current} is newer than this build's {SCHEMA_VERSION}; upgrade durable"
        )));
    }
    for migration in migrations.iter().filter(|m| m.version > current) {
        for statement in migration.parts.iter().flat_map(|part| part.iter()) {
            txn.execute_unprepared(statement).await?;
        }
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            RECORD_VERSION,
            [Value::from(migration.version)],
        ))
        .await?;
    }
    txn.commit().await
}

const CREATE_VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS durable_schema_version (version BIGINT PRIMARY KEY)";
const CURRENT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM durable_schema_version";
const RECORD_VERSION: &str = "INSERT INTO durable_schema_version (version) VALUES ($1)";
