//! The database a bench run measures: a fresh SQLite file in a temp
//! directory, or a fresh schema in the PostgreSQL database of a URL, so runs
//! never see each other's rows. Also what is known about it and the machine.

use std::path::PathBuf;
use std::time::Duration;

use durable::sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use serde::Serialize;

use crate::error::{BenchError, Result};
use crate::sql;

/// Which database engine a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The database of one run, removed again by [`Target::remove`].
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) backend: Backend,
    /// Opens the run's database (for PostgreSQL: with `search_path` set to
    /// the run's schema).
    pub(crate) url: String,
    /// PostgreSQL: the URL as given, and the schema made for this run.
    base_url: Option<String>,
    schema: Option<String>,
    /// SQLite: the temp directory holding the file.
    dir: Option<PathBuf>,
}

impl Target {
    /// A fresh database: a schema in `postgres_url`, or a SQLite file.
    ///
    /// # Errors
    /// The URL is not PostgreSQL, or the schema cannot be created.
    pub(crate) async fn create(postgres_url: Option<&str>) -> Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let target = match postgres_url {
            Some(base) => {
                if !(base.starts_with("postgres://") || base.starts_with("postgresql://")) {
                    return Err(BenchError::Usage(format!(
                        "--database-url must be a postgres:// URL (or leave it out, or pass \
                         --sqlite, for a fresh SQLite file); got '{}'",
                        base.split(':').next().unwrap_or_default()
                    )));
                }
                let schema = format!("bench_{id}");
                let url = durable::scratch::create_schema(base, &schema).await?;
                Self {
                    backend: Backend::Postgres,
                    url,
                    base_url: Some(base.to_string()),
                    schema: Some(schema),
                    dir: None,
                }
            }
            None => {
                let dir = std::env::temp_dir().join(format!("durable-bench-{id}"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| BenchError::io(format!("create {}", dir.display()), e))?;
                Self {
                    backend: Backend::Sqlite,
                    url: format!("sqlite://{}", dir.join("bench.db").display()),
                    base_url: None,
                    schema: None,
                    dir: Some(dir),
                }
            }
        };
        let db = target.connect().await?;
        durable::init(&db).await?;
        let floor_table = match target.backend {
            Backend::Postgres => sql::FLOOR_TABLE_POSTGRES,
            Backend::Sqlite => sql::FLOOR_TABLE_SQLITE,
        };
        db.execute_unprepared(floor_table).await?;
        db.close().await?;
        Ok(target)
    }

    /// The database of another run, as its URL names it (the child
    /// processes of the memory workload use the parent's database).
    pub(crate) fn existing(url: &str) -> Self {
        Self {
            backend: if url.starts_with("sqlite:") {
                Backend::Sqlite
            } else {
                Backend::Postgres
            },
            url: url.to_string(),
            base_url: None,
            schema: None,
            dir: None,
        }
    }

    /// A pool made the way users make one: [`durable::connect`].
    pub(crate) async fn connect(&self) -> Result<DatabaseConnection> {
        Ok(durable::connect(&self.url).await?)
    }

    /// A one-connection pool for reading server counters (no ping).
    pub(crate) async fn single(&self) -> Result<DatabaseConnection> {
        let mut options = ConnectOptions::new(self.url.clone());
        options
            .max_connections(1)
            .test_before_acquire(false)
            .sqlx_logging(false)
            .acquire_timeout(Duration::from_secs(30));
        Ok(Database::connect(options).await?)
    }

    /// Where the run's files or schema are, for `--keep`.
    pub(crate) fn location(&self) -> String {
        match (&self.schema, &self.dir) {
            (Some(schema), _) => format!("schema {schema}"),
            (_, Some(dir)) => dir.display().to_string(),
            _ => self.url.clone(),
        }
    }

    /// Drop the run's schema or delete its directory.
    ///
    /// # Errors
    /// The schema cannot be dropped or the files deleted.
    pub(crate) async fn remove(self) -> Result<()> {
        if let (Some(base), Some(schema)) = (&self.base_url, &self.schema) {
            // CASCADE takes the tables with it.
            durable::scratch::drop_schema(base, schema).await?;
        }
        if let Some(dir) = &self.dir {
            std::fs::remove_dir_all(dir)
                .map_err(|e| BenchError::io(format!("remove {}", dir.display()), e))?;
        }
        Ok(())
    }
}

/// The database engine and its durability settings.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DatabaseInfo {
    pub(crate) backend: Backend,
    pub(crate) version: String,
    /// Settings that decide what a commit costs, as `name = value`.
    pub(crate) settings: Vec<(String, String)>,
    /// Connections in a pool made by `durable::connect`.
    pub(crate) pool_size: u32,
}

impl DatabaseInfo {
    /// Ask the database.
    pub(crate) async fn read(db: &DatabaseConnection) -> Result<Self> {
        let backend = db.get_database_backend();
        let raw = |sql: &str| Statement::from_string(backend, sql);
        match backend {
            DbBackend::Postgres => {
                let row = db
                    .query_one_raw(raw(sql::POSTGRES_SETTINGS))
                    .await?
                    .ok_or_else(|| BenchError::Internal("no server settings".into()))?;
                let get = |i: usize| row.try_get_by_index::<String>(i);
                let names = [
                    "fsync",
                    "synchronous_commit",
                    "wal_sync_method",
                    "full_page_writes",
                ];
                let mut settings = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    settings.push(((*name).to_string(), get(i + 1)?));
                }
                Ok(Self {
                    backend: Backend::Postgres,
                    version: format!("PostgreSQL {}", get(0)?),
                    settings,
                    pool_size: db
                        .get_postgres_connection_pool()
                        .options()
                        .get_max_connections(),
                })
            }
            _ => {
                let text = |row: Option<durable::sea_orm::QueryResult>| -> Result<String> {
                    let row =
                        row.ok_or_else(|| BenchError::Internal("no sqlite settings".into()))?;
                    Ok(row
                        .try_get_by_index::<String>(0)
                        .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))?)
                };
                let version = text(db.query_one_raw(raw(sql::SQLITE_VERSION)).await?)?;
                let journal = text(db.query_one_raw(raw(sql::SQLITE_JOURNAL)).await?)?;
                let sync = text(db.query_one_raw(raw(sql::SQLITE_SYNCHRONOUS)).await?)?;
                let sync = match sync.as_str() {
                    "0" => "OFF".to_string(),
                    "1" => "NORMAL".to_string(),
                    "2" => "FULL".to_string(),
                    "3" => "EXTRA".to_string(),
                    other => other.to_string(),
                };
                Ok(Self {
                    backend: Backend::Sqlite,
                    version: format!("SQLite {version}"),
                    settings: vec![
                        ("journal_mode".into(), journal),
                        ("synchronous".into(), sync),
                    ],
                    pool_size: db
                        .get_sqlite_connection_pool()
                        .options()
                        .get_max_connections(),
                })
            }
        }
    }
}

/// The machine a run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    /// 1-minute load average when the run began and ended: other work on
    /// the machine makes every timing noisier.
    pub(crate) load_before: f64,
    pub(crate) load_after: f64,
}

impl Machine {
    /// Read `/proc` (Linux; elsewhere the fields stay empty).
    pub(crate) fn read() -> Self {
        let file = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let meminfo = file("/proc/meminfo");
        let mem_kib: f64 = field(&meminfo, "MemTotal")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: field(&file("/proc/cpuinfo"), "model name"),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: file("/proc/sys/kernel/osrelease").trim().to_string(),
            load_before: load_average(),
            load_after: 0.0,
        }
    }
}

/// The 1-minute load average (0 where unknown).
pub(crate) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

impl Machine {
    /// Note the load at the end of the run.
    pub(crate) fn finish(&mut self) {
        self.load_after = load_average();
    }
}
