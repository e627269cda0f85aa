//! A pool whose statements are counted. On PostgreSQL every connection of
//! the pool's options (the engine's own connections too) goes through
//! [`durable::scratch::wire`], which counts round trips, statements and
//! writes on the wire (pings and prepares included) and times each kind
//! of statement. On SQLite (no wire) SeaORM's metric callback counts the
//! statements: there the engine runs them on the pool.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use durable::sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::error::Result;
use crate::target::{Backend, Target};
use durable::scratch::wire::{self, WireProxy};

/// A counted pool of one connection (statements run one after another).
pub(crate) struct Counted {
    pub(crate) db: DatabaseConnection,
    statements: Arc<Statements>,
    wire: Option<WireProxy>,
}

#[derive(Debug, Default)]
struct Statements {
    total: AtomicU64,
    writes: AtomicU64,
    /// Client-side time per statement text (round trip, execution and,
    /// for autocommitted writes, the commit), since the last reset.
    timings: Mutex<BTreeMap<String, (u64, Duration)>>,
}

/// Where the time of a window went, per statement.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatementTime {
    /// The statement's first words.
    pub(crate) sql: String,
    pub(crate) count: u64,
    /// Mean time from sending it to its result, as the client sees it.
    pub(crate) mean_us: f64,
}

/// Counts at one moment; subtract two with [`Counts::since`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) statements: u64,
    /// Statements other than reads (`SELECT`, `WITH`).
    pub(crate) writes: u64,
    /// Client messages that wait for the server (PostgreSQL `Sync` and
    /// simple `Query`): round trips. `None` when not counted.
    pub(crate) round_trips: Option<u64>,
    /// Transactions that ended, as the server reported them on the wire
    /// (PostgreSQL). `None` when not counted.
    pub(crate) transactions: Option<u64>,
}

impl Counts {
    pub(crate) fn since(self, before: Counts) -> Counts {
        Counts {
            statements: self.statements - before.statements,
            writes: self.writes - before.writes,
            round_trips: self.round_trips.zip(before.round_trips).map(|(a, b)| a - b),
            transactions: self
                .transactions
                .zip(before.transactions)
                .map(|(a, b)| a - b),
        }
    }
}

impl Counted {
    /// Open the counted pool on the run's database.
    pub(crate) async fn open(target: &Target) -> Result<Self> {
        let mut options = ConnectOptions::new(target.url.clone());
        options
            .max_connections(1)
            .test_before_acquire(false)
            .sqlx_logging(false)
            .acquire_timeout(Duration::from_secs(30));
        let mut counter = None;
        match target.backend {
            Backend::Sqlite => {
                options.map_sqlx_sqlite_opts(|o| {
                    o.journal_mode(durable::sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                        .busy_timeout(Duration::from_secs(5))
                        .foreign_keys(true)
                });
            }
            Backend::Postgres => {
                if let Some(proxy) = WireProxy::start(&target.url).await? {
                    counter = Some(proxy.clone());
                    options.map_sqlx_postgres_opts(move |o| proxy.apply(o));
                }
            }
        }
        let mut db = Database::connect(options).await?;
        let statements = Arc::new(Statements::default());
        let s = statements.clone();
        db.set_metric_callback(move |info| {
            s.total.fetch_add(1, Ordering::SeqCst);
            if !is_read(&info.statement.sql) {
                s.writes.fetch_add(1, Ordering::SeqCst);
            }
            let mut timings = s.timings.lock().unwrap_or_else(|e| e.into_inner());
            let entry = timings.entry(wire::label(&info.statement.sql)).or_default();
            entry.0 += 1;
            entry.1 += info.elapsed;
        });
        Ok(Self {
            db,
            statements,
            wire: counter,
        })
    }

    /// Forget the statement timings so far.
    pub(crate) fn reset_timings(&self) {
        if let Some(wire) = &self.wire {
            wire.reset_timings();
        }
        self.statements
            .timings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Time per statement since the last reset, most frequent first.
    pub(crate) fn timings(&self) -> Vec<StatementTime> {
        if let Some(wire) = &self.wire {
            return wire
                .timings()
                .into_iter()
                .filter(|t| t.sql != "(sync)")
                .map(|t| StatementTime {
                    sql: t.sql,
                    count: t.count,
                    mean_us: t.total.as_secs_f64() * 1e6 / t.count.max(1) as f64,
                })
                .collect();
        }
        let timings = self
            .statements
            .timings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<StatementTime> = timings
            .iter()
            .map(|(sql, (count, total))| StatementTime {
                sql: sql.clone(),
                count: *count,
                mean_us: total.as_secs_f64() * 1e6 / (*count).max(1) as f64,
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.sql.cmp(&b.sql)));
        out
    }

    /// The counts so far.
    pub(crate) fn counts(&self) -> Counts {
        if let Some(wire) = &self.wire {
            let c = wire.counts();
            return Counts {
                statements: c.statements,
                writes: c.writes,
                round_trips: Some(c.round_trips),
                transactions: Some(c.transactions),
            };
        }
        Counts {
            statements: self.statements.total.load(Ordering::SeqCst),
            writes: self.statements.writes.load(Ordering::SeqCst),
            round_trips: None,
            transactions: None,
        }
    }
}

/// A statement that only reads (the SDK's reads start with these words).
fn is_read(sql: &str) -> bool {
    let sql = sql.trim_start().as_bytes();
    let starts =
        |word: &[u8]| sql.len() >= word.len() && sql[..word.len()].eq_ignore_ascii_case(word);
    starts(b"SELECT") || starts(b"WITH")
}
