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
/// Whichever you use, on PostgreSQL the engine runs its single statements
/// on connections of its own made with your pool's options (at most its
/// maximum, opened as needed: sqlx pings a pooled connection each time it
/// goes back, a round trip per statement otherwise), and heartbeats on one
/// more; size the server's `max_connections` for twice your pool plus one
/// per process.
///
/// # Errors
/// [`DurableError::InvalidInput`] for a URL of another kind (a bare file
/// name gets the `sqlite://` form suggested);
/// [`DurableError::ConnectFailed`] within 10 s when a PostgreSQL server
/// cannot be reached or refuses the connection (it names the server and
/// the cause); [`DurableError::Db`] if the database cannot be opened.
///
/// ```no_run
/// # async fn demo() -> Result<(), durable::DurableError> {
/// let sqlite = durable::connect("sqlite://durable.db").await?;
/// let pg = durable::connect("postgres://app@localhost/app").await?;
/// assert!(matches!(
///     durable::connect("durable.db").await,
///     Err(durable::DurableError::InvalidInput(_))
/// ));
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<DatabaseConnection, DurableError> {
    check_url(url)?;
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        probe_postgres(url).await?;
    }
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

/// How long the first connection to a PostgreSQL server may take.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// One connection, made and closed before the pool is built: a server
/// that is down, a wrong host, port, user or database fails here at once,
/// naming the server and the cause, instead of after the pool's acquire
/// timeout as "pool timed out".
async fn probe_postgres(url: &str) -> Result<(), DurableError> {
    use sea_orm::sqlx::Connection;
    use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
    use std::str::FromStr;

    let options = PgConnectOptions::from_str(url).map_err(|e| {
        DurableError::InvalidInput(format!("the PostgreSQL URL cannot be read: {e}"))
    })?;
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let failed = |reason: String, transient: bool| DurableError::ConnectFailed {
        server: server.clone(),
        reason,
        transient,
    };
    match tokio::time::timeout(CONNECT_DEADLINE, PgConnection::connect_with(&options)).await {
        Err(_) => Err(failed(
            format!("no answer within {} s", CONNECT_DEADLINE.as_secs()),
            true,
        )),
        Ok(Err(err)) => Err(failed(
            err.to_string(),
            crate::error::is_transient_sqlx(&err),
        )),
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
    }
}

/// Only the backends durable runs on, named the way sqlx reads them. A URL
/// with another scheme is not echoed whole (it may carry a password).
fn check_url(url: &str) -> Result<(), DurableError> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("postgres" | "postgresql" | "sqlite") => Ok(()),
        Some(other) => Err(DurableError::InvalidInput(format!(
            "durable runs on PostgreSQL (postgres://user@host/db) and SQLite \
             (sqlite://path/to/file.db); a {other}:// URL is neither"
        ))),
        None if url.starts_with("sqlite:") => Ok(()), // sqlite::memory:, sqlite:file.db
        None => Err(DurableError::InvalidInput(format!(
            "{url:?} is not a database URL; for a SQLite file write \"sqlite://{url}\", \
             for PostgreSQL \"postgres://user@host/db\""
        ))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_gets_the_sqlite_form_suggested() {
        let err = check_url("app.db").unwrap_err().to_string();
        assert!(err.contains("sqlite://app.db"), "{err}");
    }

    #[test]
    fn other_schemes_are_refused_without_echoing_the_url() {
        let err = check_url("mysql://root:secret@db/app")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql://") && !err.contains("secret"), "{err}");
    }

    #[test]
    fn the_supported_forms_pass() {
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h/db",
            "sqlite://a.db",
            "sqlite::memory:",
            "sqlite:a.db",
        ] {
            assert!(check_url(url).is_ok(), "{url}");
        }
    }
}
