//! Opening a database the way `durable` wants it, and creating its schema.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::error::DurableError;

/// Open a connection pool with settings fit for durable workflows.
///
/// - no ping before each use of a pooled connection (`test_before_acquire`
///   off): that would be a hidden round trip on every step;
/// - SQLite: the file is created if missing, WAL journal, a 5 s busy
///   timeout, foreign keys on, and SeaORM's pool of one connection;
/// - PostgreSQL: server-side TCP keepalives on every connection (probe after
///   10 s idle, every 5 s, give up after 3), so the server ends the session
///   of a client that vanished without closing its socket, with the locks
///   it held. (sqlx has no client-side keepalive; durable bounds every one
///   of its own statements with a client-side deadline instead.) A
///   statement timeout is *not* set (your steps may run long queries); set
///   one in the URL (`options=-c statement_timeout=...`) if you want it.
///
/// Any `DatabaseConnection` works with `durable`; this is a convenience.
///
/// # Errors
/// [`DurableError::Db`] if the database cannot be opened.
///
/// ```no_run
/// # async fn demo() -> Result<(), durable::DurableError> {
/// let sqlite = durable::connect("sqlite://durable.db").await?;
/// let pg = durable::connect("postgres://app@localhost/app").await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<DatabaseConnection, DurableError> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .test_before_acquire(false)
        .sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        options.map_sqlx_postgres_opts(|o| o.options(SERVER_KEEPALIVES));
    }
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    }
    Ok(Database::connect(options).await?)
}

/// The server-side keepalive settings `connect` asks for.
const SERVER_KEEPALIVES: [(&str, &str); 3] = [
    ("tcp_keepalives_idle", "10"),
    ("tcp_keepalives_interval", "5"),
    ("tcp_keepalives_count", "3"),
];

/// Create the `durable` tables, or migrate them to this version.
///
/// Idempotent, and safe when several processes call it at once.
///
/// # Errors
/// [`DurableError::Db`] if a statement fails or the schema is newer than this build.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// durable::init(&db).await?;
/// # Ok(()) }
/// ```
pub async fn init(db: &DatabaseConnection) -> Result<(), DurableError> {
    durable_db::migrate(db).await?;
    Ok(())
}
