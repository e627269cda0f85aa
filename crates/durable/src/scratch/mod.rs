//! What tests and benchmarks need beyond the API: throwaway PostgreSQL
//! schemas, plans of the engine's statements, the wire counted
//! ([`wire`]), tables seeded in bulk ([`seed`]) and figures read from
//! them ([`observe`]).
//!
//! Tests and benchmarks that share one server each get a schema of their
//! own, reached through `search_path` in the URL, and drop it when done.
//!
//! A schema's name is an identifier, which SQL cannot bind as a value, so it
//! is the one name this crate ever writes into SQL text: only after
//! [`check_identifier`] accepted it, and quoted. This module is the single
//! place that does it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), durable::DurableError> {
//! let base = "postgres://postgres@127.0.0.1:5432/postgres";
//! let url = durable::scratch::create_schema(base, "test_orders_1").await?;
//! let db = durable::connect(&url).await?;
//! durable::init(&db).await?; // the tables land in `test_orders_1`
//! // ... run the test ...
//! durable::scratch::drop_schema(base, "test_orders_1").await?;
//! # Ok(()) }
//! ```

pub mod observe;
pub mod seed;
#[cfg(test)]
mod seeded;
pub mod wire;

use sea_orm::{ConnectionTrait, Database};

use crate::error::DurableError;

/// Longest identifier PostgreSQL keeps whole (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER: usize = 63;

/// Set how long after a checkpoint a root workflow's next step may start
/// without reading its state, in this process (50 ms by default). Pause and
/// cancel in this process wait as long before they return, so the promise
/// that no step starts after they returned holds; a test that counts
/// statements sets it long, so that a slow machine adds no reads.
///
/// ```
/// durable::scratch::set_start_window(std::time::Duration::from_secs(600));
/// ```
#[cfg(feature = "testing")]
pub fn set_start_window(window: std::time::Duration) {
    crate::call::set_start_window(window);
}

/// Accept `name` as a schema or database name only if it is a plain
/// identifier: ASCII lower-case letters, digits and `_`, starting with a
/// letter or `_`, at most 63 bytes.
///
/// # Errors
/// [`DurableError::InvalidInput`] naming what is wrong with it.
///
/// ```
/// assert!(durable::scratch::check_identifier("bench_42").is_ok());
/// assert!(durable::scratch::check_identifier("x; DROP TABLE t").is_err());
/// ```
pub fn check_identifier(name: &str) -> Result<(), DurableError> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !plain || !starts_well || name.len() > MAX_IDENTIFIER {
        return Err(DurableError::InvalidInput(format!(
            "{name:?} is not a plain identifier (a-z, 0-9 and _, starting with a letter \
             or _, at most {MAX_IDENTIFIER} bytes)"
        )));
    }
    Ok(())
}

/// Create schema `name` on the server of `base_url` and return `base_url`
/// with its `search_path` set to it.
///
/// # Errors
/// [`DurableError::InvalidInput`] for a name [`check_identifier`] refuses;
/// [`DurableError::Db`] if the server cannot be reached or the schema exists.
pub async fn create_schema(base_url: &str, name: &str) -> Result<String, DurableError> {
    run_ddl(base_url, "CREATE SCHEMA", name, "").await?;
    with_search_path(base_url, name)
}

/// Drop schema `name` and everything in it, if it exists. The server's
/// own schemas (`public`, `information_schema`, `pg_*`) are refused.
///
/// # Errors
/// As [`create_schema`].
pub async fn drop_schema(base_url: &str, name: &str) -> Result<(), DurableError> {
    if name == "public" || name == "information_schema" || name.starts_with("pg_") {
        return Err(DurableError::InvalidInput(format!(
            "schema {name:?} is not a scratch schema; refusing to drop it"
        )));
    }
    run_ddl(base_url, "DROP SCHEMA IF EXISTS", name, " CASCADE").await
}

/// Create database `name` on the server of `admin_url`.
///
/// # Errors
/// As [`create_schema`].
pub async fn create_database(admin_url: &str, name: &str) -> Result<(), DurableError> {
    run_ddl(admin_url, "CREATE DATABASE", name, "").await
}

/// `base_url` with `search_path` set to `schema` (as a connection option).
///
/// # Errors
/// [`DurableError::InvalidInput`] for a name [`check_identifier`] refuses
/// (anything else could add options to the URL).
pub fn with_search_path(base_url: &str, schema: &str) -> Result<String, DurableError> {
    check_identifier(schema)?;
    let sep = if base_url.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{base_url}{sep}options=-c%20search_path%3D{schema}"
    ))
}

/// How long a scratch statement may wait for a lock (a session idle in a
/// transaction on the schema would otherwise hold a drop for ever).
const LOCK_TIMEOUT: &str = "SET lock_timeout = '10s'";

/// `<command> "<name>"<suffix>` on a connection of its own. The name was
/// checked to be a plain identifier and is quoted, so it cannot be
/// anything but one name.
async fn run_ddl(url: &str, command: &str, name: &str, suffix: &str) -> Result<(), DurableError> {
    check_identifier(name)?;
    let admin = Database::connect(url).await?;
    let done = match admin.execute_unprepared(LOCK_TIMEOUT).await {
        Ok(_) => admin
            .execute_unprepared(&format!("{command} \"{name}\"{suffix}"))
            .await
            .map(|_| ()),
        Err(err) => Err(err),
    };
    admin.close().await.ok();
    Ok(done?)
}

/// How the database would read a page of [`crate::Client::list`]: the
/// lines of PostgreSQL's `EXPLAIN` or SQLite's `EXPLAIN QUERY PLAN` of the
/// very statement the list runs (the bench checks with it that each sort
/// is read from its index, at millions of rows).
///
/// # Errors
/// As [`crate::Client::list`].
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// let plan = durable::scratch::explain_list(&db, &durable::WorkflowQuery::new()).await?;
/// assert!(plan.iter().any(|line| line.contains("durable_workflow_created")));
/// # Ok(()) }
/// ```
pub async fn explain_list(
    db: &sea_orm::DatabaseConnection,
    query: &crate::WorkflowQuery,
) -> Result<Vec<String>, DurableError> {
    query.check()?;
    crate::store::sql::SqlStore::new(db)
        .explain_list(query)
        .await
}

/// How the database would choose one batch of
/// [`crate::Client::purge_finished`] (as [`explain_list`] for a list).
///
/// # Errors
/// [`DurableError::Db`] if the database fails.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// let plan = durable::scratch::explain_purge(&db, std::time::Duration::from_secs(86_400)).await?;
/// # Ok(()) }
/// ```
pub async fn explain_purge(
    db: &sea_orm::DatabaseConnection,
    older_than: std::time::Duration,
) -> Result<Vec<String>, DurableError> {
    let age_ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    crate::store::sql::SqlStore::new(db)
        .explain_purge(age_ms)
        .await
}

/// How often PostgreSQL planned the statements of the engine's own
/// connections on `db`'s pool that are idle now: generic plans (one per
/// statement and connection, reused) and plans made for a call's values
/// (made on every call; the engine's connections should never make one).
/// `None` on SQLite, which has no plan cache to choose from.
///
/// # Errors
/// [`DurableError::Db`] if the database fails.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// if let Some(plans) = durable::scratch::engine_plans(&db).await? {
///     assert_eq!(plans.custom, 0);
/// }
/// # Ok(()) }
/// ```
pub async fn engine_plans(db: &sea_orm::DatabaseConnection) -> Result<Option<Plans>, DurableError> {
    let plans = crate::store::sql::SqlStore::new(db).engine_plans().await?;
    Ok(plans.map(|(generic, custom)| Plans {
        generic: u64::try_from(generic).unwrap_or(0),
        custom: u64::try_from(custom).unwrap_or(0),
    }))
}

/// Plans PostgreSQL made of prepared statements (see [`engine_plans`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plans {
    /// Calls that ran a statement's generic plan.
    pub generic: u64,
    /// Calls planned for their values.
    pub custom: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_pass() {
        for good in ["t_1", "_x", "bench_0123abcd"] {
            assert!(check_identifier(good).is_ok(), "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "", "1abc", "Abc", "a-b", "a b", "a\"b", "a;b", "a\0b", "é", &long,
        ] {
            let err = check_identifier(bad).unwrap_err();
            assert!(
                matches!(err, DurableError::InvalidInput(_)),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn the_search_path_is_added_as_an_option() {
        assert_eq!(
            with_search_path("postgres://h/db", "s").unwrap(),
            "postgres://h/db?options=-c%20search_path%3Ds"
        );
        assert_eq!(
            with_search_path("postgres://h/db?sslmode=disable", "s").unwrap(),
            "postgres://h/db?sslmode=disable&options=-c%20search_path%3Ds"
        );
        assert!(with_search_path("postgres://h/db", "x&host=evil").is_err());
    }

    #[tokio::test]
    async fn server_schemas_are_not_dropped() {
        for name in ["public", "information_schema", "pg_catalog"] {
            let err = drop_schema("postgres://unused", name).await.unwrap_err();
            assert!(
                matches!(err, DurableError::InvalidInput(_)),
                "{name}: {err:?}"
            );
        }
    }
}
