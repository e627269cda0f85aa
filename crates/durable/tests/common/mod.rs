//! Test harness: a fresh database per test, on either backend.
//!
//! SQLite: a new file in the temp directory. PostgreSQL: a new schema in the
//! database named by `DATABASE_URL`, reached through `search_path`, so tests
//! run in parallel without seeing each other. A PostgreSQL test without
//! `DATABASE_URL` fails: it never skips silently.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use durable::sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test, with the durable schema created.
pub struct TestDb {
    pub db: DatabaseConnection,
    /// URL that opens the same database (for child processes).
    pub url: String,
    pub backend: Backend,
}

pub fn postgres_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must point at PostgreSQL for the postgres tests; \
         run them with scripts/test, which starts a throwaway server",
    )
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let url = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("durable-{name}.db"));
                format!("sqlite://{}", path.display())
            }
            Backend::Postgres => {
                let base = postgres_url();
                let admin = Database::connect(base.as_str())
                    .await
                    .expect("connect to DATABASE_URL");
                // The schema name is generated here, never user input.
                admin
                    .execute_unprepared(&format!("CREATE SCHEMA {name}"))
                    .await
                    .expect("create test schema");
                admin.close().await.ok();
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}options=-c%20search_path%3D{name}")
            }
        };
        let db = Self::connect(&url).await;
        durable::init(&db).await.expect("init schema");
        TestDb { db, url, backend }
    }

    /// Another pool on the same database (as a second process would have).
    pub async fn connect(url: &str) -> DatabaseConnection {
        durable::connect(url).await.expect("connect")
    }

    /// The same database with every statement counted.
    pub async fn counted(&self) -> (DatabaseConnection, Arc<Counter>) {
        let mut options = ConnectOptions::new(self.url.clone());
        options.test_before_acquire(false).sqlx_logging(false);
        let mut db = Database::connect(options).await.expect("connect");
        let count = Arc::new(Counter::default());
        let c = count.clone();
        db.set_metric_callback(move |info| {
            c.total.fetch_add(1, Ordering::SeqCst);
            let sql = info.statement.sql.trim_start().to_ascii_uppercase();
            if !sql.starts_with("SELECT") && !sql.starts_with("WITH") {
                c.writes.fetch_add(1, Ordering::SeqCst);
            }
        });
        (db, count)
    }
}

/// Statements seen on a counted connection.
#[derive(Debug, Default)]
pub struct Counter {
    pub total: AtomicU64,
    /// Statements other than plain reads.
    pub writes: AtomicU64,
}

impl Counter {
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
}

/// Run each named async test function on both backends:
/// `both_backends!(replays_completed_step, ...)` expects
/// `async fn replays_completed_step(backend: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
