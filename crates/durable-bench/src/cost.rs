//! `cost`: what one step costs the database, counted exactly rather than
//! timed. On PostgreSQL statements, writes, round trips and the
//! transactions the server reported ended (its `ReadyForQuery`) are counted
//! on the wire ([`durable::scratch::wire`]), for every connection of the
//! process; on SQLite statements and writes come from SeaORM's metric
//! callback. On PostgreSQL also the
//! server's own counters: transactions that wrote (transaction ids
//! assigned), WAL syncs (`pg_stat_wal`) and WAL bytes (the WAL position).
//!
//! Everything runs on one pooled connection under an executor whose lease is
//! an hour, so no heartbeat falls inside a measured window. The server's
//! counters are the whole cluster's: a window in which autovacuum worked is
//! measured again (up to five times), so its analyzes are not counted as
//! the engine's writes. Other clients writing to the same server still count.

use std::time::{Duration, Instant};

use durable::sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use durable::{Ctx, Executor};
use serde::Serialize;

use crate::counted::{Counted, Counts, StatementTime};
use crate::drive::micros;
use crate::error::{BenchError, Result};
use crate::floor;
use crate::progress::Progress;
use crate::sql;
use crate::target::{Backend, Target};
use crate::workflow;

/// Per-step costs of fresh and replayed steps.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CostReport {
    /// Steps per measured window.
    pub(crate) steps: u32,
    /// Per fresh step.
    pub(crate) fresh: PerStep,
    /// Per replayed step (the history is read in pages, so a few reads are
    /// spread over the steps).
    pub(crate) replayed: PerStep,
    /// Statements of `start` on a completed workflow (before its replay).
    pub(crate) replay_start_statements: u64,
    /// Statements of `complete` at the end of a replay.
    pub(crate) replay_complete_statements: u64,
    /// Every statement of the replay (start, steps, complete).
    pub(crate) replay_statements: Vec<StatementTime>,
    /// Where the time of a fresh step goes, on this one connection.
    pub(crate) breakdown: Breakdown,
}

/// Time of fresh steps and floor inserts on the same single connection,
/// and of each statement they issue (client side: send to result).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Breakdown {
    pub(crate) fresh_step_us: f64,
    pub(crate) floor_insert_us: f64,
    /// The costs of one floor insert, counted as for steps.
    pub(crate) floor: PerStep,
    pub(crate) statements: Vec<StatementTime>,
}

/// Counts over a window divided by its steps. Server counters are `None`
/// where the backend has none (SQLite, or PostgreSQL before 15).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct PerStep {
    /// Statements issued by the SDK.
    pub(crate) statements: f64,
    /// Of those, statements that are not reads.
    pub(crate) writes: f64,
    /// Client messages after which it waits for the server (`Sync`, `Query`).
    pub(crate) round_trips: Option<f64>,
    /// Transactions that ended, as the server reported them on the wire:
    /// every autocommitted statement is one, reads included.
    pub(crate) transactions: Option<f64>,
    /// Transactions that wrote (were assigned a transaction id): the
    /// commits that must reach disk.
    pub(crate) write_transactions: Option<f64>,
    /// WAL flushes to disk (`pg_stat_wal.wal_sync`).
    pub(crate) wal_syncs: Option<f64>,
    /// Bytes of WAL written (the WAL insert position moved on by them).
    pub(crate) wal_bytes: Option<f64>,
}

/// The server's counters at one moment.
#[derive(Debug, Clone, Copy)]
struct ServerCounters {
    next_xid: i64,
    wal_syncs: Option<i64>,
    wal_bytes: Option<i64>,
    /// Vacuums and analyzes done so far in this database.
    maintenance: i64,
    /// An autovacuum worker was at work (in any database) at the reading.
    maintaining: bool,
}

/// Reads server counters (PostgreSQL 15+) once the measured connections
/// published their statistics (see `read`). Transaction ids and the WAL
/// position need no publishing; WAL syncs do.
struct ServerReader {
    admin: DatabaseConnection,
}

impl ServerReader {
    async fn open(target: &Target) -> Result<Option<Self>> {
        if target.backend != Backend::Postgres {
            return Ok(None);
        }
        let admin = target.single().await?;
        let has = admin
            .query_one_raw(raw(&admin, sql::POSTGRES_HAS_FORCE_FLUSH))
            .await?
            .map(|r| r.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(false);
        Ok(has.then_some(Self { admin }))
    }

    /// Publish the statistics of `measured`'s connections, then read the
    /// counters.
    ///
    /// The engine runs its statements on connections of its own, where
    /// `pg_stat_force_next_flush` cannot be called; a backend publishes by
    /// itself when it goes idle at least a second after its last
    /// publication (`PGSTAT_MIN_INTERVAL`). So: wait that second, then
    /// have the engine run one read (one more transaction) on its
    /// connection (the counted pool has one connection, so the engine has
    /// one too), after which it publishes.
    async fn read(&self, measured: &DatabaseConnection) -> Result<ServerCounters> {
        tokio::time::sleep(STATS_INTERVAL).await;
        let _ = durable::Client::new(measured)
            .workflow(uuid::Uuid::nil())
            .await;
        measured
            .execute_raw(raw(measured, sql::POSTGRES_FLUSH_STATS))
            .await?;
        let row = self
            .admin
            .query_one_raw(raw(&self.admin, sql::POSTGRES_COUNTERS))
            .await?
            .ok_or_else(|| BenchError::Internal("pg_stat_database has no row".into()))?;
        Ok(ServerCounters {
            next_xid: row.try_get_by_index(1)?,
            wal_syncs: row.try_get_by_index(2)?,
            wal_bytes: row.try_get_by_index(3)?,
            maintenance: row.try_get_by_index(4)?,
            maintaining: row.try_get_by_index(5)?,
        })
    }

    /// Counters after minus before (the readings write nothing).
    fn delta(after: ServerCounters, before: ServerCounters) -> ServerCounters {
        ServerCounters {
            next_xid: after.next_xid - before.next_xid,
            wal_syncs: after.wal_syncs.zip(before.wal_syncs).map(|(a, b)| a - b),
            wal_bytes: after.wal_bytes.zip(before.wal_bytes).map(|(a, b)| a - b),
            maintenance: after.maintenance - before.maintenance,
            maintaining: after.maintaining || before.maintaining,
        }
    }
}

/// Whether the server's own maintenance may have written between two
/// readings: transaction ids and the WAL position are the cluster's, so an
/// autovacuum pass (an analyze takes a transaction id per table) counts
/// with the engine's. SQLite has no such neighbour.
fn disturbed(before: Option<ServerCounters>, after: Option<ServerCounters>) -> bool {
    before
        .zip(after)
        .is_some_and(|(b, a)| b.maintaining || a.maintaining || a.maintenance != b.maintenance)
}

/// Windows tried before one that no maintenance disturbed is given up on
/// (and the last one reported as it is).
const WINDOW_ATTEMPTS: u32 = 5;

/// A little more than PostgreSQL's `PGSTAT_MIN_INTERVAL` (1 s).
const STATS_INTERVAL: Duration = Duration::from_millis(1100);

fn raw(db: &DatabaseConnection, sql: &str) -> Statement {
    Statement::from_string(db.get_database_backend(), sql)
}

fn per_step(counts: Counts, server: Option<ServerCounters>, steps: u32) -> PerStep {
    let n = f64::from(steps);
    let div = |v: i64| v as f64 / n;
    PerStep {
        statements: counts.statements as f64 / n,
        writes: counts.writes as f64 / n,
        round_trips: counts.round_trips.map(|v| v as f64 / n),
        transactions: counts.transactions.map(|v| v as f64 / n),
        write_transactions: server.map(|s| div(s.next_xid)),
        wal_syncs: server.and_then(|s| s.wal_syncs).map(div),
        wal_bytes: server.and_then(|s| s.wal_bytes).map(div),
    }
}

/// Count `steps` fresh steps, then their replay.
pub(crate) async fn run(target: &Target, steps: u32, progress: &Progress) -> Result<CostReport> {
    progress.phase(format!("cost: counting {steps} fresh and replayed steps"));
    let counted = Counted::open(target).await?;
    let db = &counted.db;
    let server = ServerReader::open(target).await?;
    let executor = Executor::with_lease(db, Duration::from_secs(3600));
    let run = uuid::Uuid::new_v4().simple().to_string();

    // Warm-up: register the executor, prepare every statement involved.
    let warm = format!("cost-warm-{run}");
    let ctx = executor.start("bench-cost", &warm, None).await?;
    workflow::fresh_steps(&ctx, 1).await?;
    ctx.complete(&1).await?;
    drop(ctx);
    replay(&executor, &warm, 1).await?;

    // Prime the counter reading.
    read(&server, db).await?;

    // A window that the server's maintenance wrote in is measured again,
    // on a workflow of its own (fresh) or replayed once more.
    let mut attempt = 0;
    let fresh = loop {
        attempt += 1;
        let key = format!("cost-{run}-{attempt}");
        let window = fresh_window(&counted, &server, &executor, key, steps).await?;
        if !window.disturbed || attempt == WINDOW_ATTEMPTS {
            break window;
        }
    };
    let mut attempt = 0;
    let replayed = loop {
        attempt += 1;
        let window = replay_window(&counted, &server, &executor, &fresh.key, steps).await?;
        if !window.disturbed || attempt == WINDOW_ATTEMPTS {
            break window;
        }
    };
    let mut statements = fresh.statements;

    // The floor on the same connection, for the breakdown.
    let s5 = read(&server, db).await?;
    counted.reset_timings();
    let before = counted.counts();
    let started = Instant::now();
    for i in 0..steps {
        floor::insert(db, i).await?;
    }
    let floor_insert_us = micros(started.elapsed()) / f64::from(steps);
    let floor_counts = counted.counts().since(before);
    statements.extend(counted.timings());
    let s6 = read(&server, db).await?;
    let floor = per_step(floor_counts, delta(s6, s5), steps);
    progress.tick();
    Ok(CostReport {
        steps,
        fresh: fresh.per_step,
        replayed: replayed.per_step,
        replay_start_statements: replayed.start_statements,
        replay_complete_statements: replayed.complete_statements,
        replay_statements: replayed.statements,
        breakdown: Breakdown {
            fresh_step_us: fresh.step_us,
            floor_insert_us,
            floor,
            statements,
        },
    })
}

/// `steps` fresh steps of a workflow of their own, counted.
struct FreshWindow {
    key: String,
    per_step: PerStep,
    step_us: f64,
    statements: Vec<StatementTime>,
    /// The server's maintenance may have written in it.
    disturbed: bool,
}

async fn fresh_window(
    counted: &Counted,
    server: &Option<ServerReader>,
    executor: &Executor,
    key: String,
    steps: u32,
) -> Result<FreshWindow> {
    let db = &counted.db;
    let ctx = executor.start("bench-cost", &key, None).await?;
    let s0 = read(server, db).await?;
    let c0 = counted.counts();
    counted.reset_timings();
    let started = Instant::now();
    workflow::fresh_steps(&ctx, steps).await?;
    let step_us = micros(started.elapsed()) / f64::from(steps);
    let statements = counted.timings();
    let c1 = counted.counts();
    let s1 = read(server, db).await?;
    ctx.complete(&steps).await?;
    Ok(FreshWindow {
        key,
        per_step: per_step(c1.since(c0), delta(s1, s0), steps),
        step_us,
        statements,
        disturbed: disturbed(s0, s1),
    })
}

/// The replay of the workflow `key`: start, the steps, complete; the steps
/// counted per step, start and complete on their own.
struct ReplayWindow {
    per_step: PerStep,
    start_statements: u64,
    complete_statements: u64,
    /// Every statement of the replay.
    statements: Vec<StatementTime>,
    /// The server's maintenance may have written in it.
    disturbed: bool,
}

async fn replay_window(
    counted: &Counted,
    server: &Option<ServerReader>,
    executor: &Executor,
    key: &str,
    steps: u32,
) -> Result<ReplayWindow> {
    let db = &counted.db;
    let c2 = counted.counts();
    counted.reset_timings();
    let ctx = executor.start("bench-cost", key, None).await?;
    let c3 = counted.counts();
    let mut statements = counted.timings();
    let s3 = read(server, db).await?;
    let c3_after_read = counted.counts();
    counted.reset_timings();
    workflow::replay_steps(&ctx, steps).await?;
    let c4 = counted.counts();
    statements.extend(counted.timings());
    let s4 = read(server, db).await?;
    let c4_after_read = counted.counts();
    counted.reset_timings();
    ctx.complete(&steps).await?;
    let c5 = counted.counts();
    statements.extend(counted.timings());
    Ok(ReplayWindow {
        per_step: per_step(c4.since(c3_after_read), delta(s4, s3), steps),
        start_statements: c3.since(c2).statements,
        complete_statements: c5.since(c4_after_read).statements,
        statements,
        disturbed: disturbed(s3, s4),
    })
}

async fn read(
    server: &Option<ServerReader>,
    db: &DatabaseConnection,
) -> Result<Option<ServerCounters>> {
    match server {
        Some(s) => Ok(Some(s.read(db).await?)),
        None => Ok(None),
    }
}

fn delta(after: Option<ServerCounters>, before: Option<ServerCounters>) -> Option<ServerCounters> {
    after.zip(before).map(|(a, b)| ServerReader::delta(a, b))
}

async fn replay(executor: &Executor, key: &str, steps: u32) -> Result<()> {
    let ctx: Ctx = executor.start("bench-cost", key, None).await?;
    workflow::replay_steps(&ctx, steps).await?;
    ctx.complete(&steps).await?;
    Ok(())
}
