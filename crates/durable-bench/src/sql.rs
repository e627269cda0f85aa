//! The bench's own statements: its floor's table, and what it reads of the
//! server (settings, statistics, the clock). Statements on the SDK's
//! tables live in the SDK (`durable::scratch::seed` writes them in bulk,
//! `durable::scratch::observe` reads what the read model does not).
//! Every value is bound.

/// The floor's table: a UUID key and a small JSON text, like a checkpoint row.
pub(crate) const FLOOR_TABLE_POSTGRES: &str =
    "CREATE TABLE IF NOT EXISTS bench_floor (id UUID PRIMARY KEY, body TEXT NOT NULL)";
/// As [`FLOOR_TABLE_POSTGRES`]; SQLite stores UUIDs as 16-byte blobs.
pub(crate) const FLOOR_TABLE_SQLITE: &str =
    "CREATE TABLE IF NOT EXISTS bench_floor (id BLOB PRIMARY KEY, body TEXT NOT NULL)";
/// One autocommitted row. `$1` id, `$2` JSON text.
pub(crate) const FLOOR_INSERT: &str = "INSERT INTO bench_floor (id, body) VALUES ($1, $2)";

/// Server version and durability settings.
pub(crate) const POSTGRES_SETTINGS: &str = "SELECT current_setting('server_version'), \
     current_setting('fsync'), current_setting('synchronous_commit'), \
     current_setting('wal_sync_method'), current_setting('full_page_writes')";
/// Library version and durability settings of this connection.
pub(crate) const SQLITE_VERSION: &str = "SELECT sqlite_version()";
/// Journal mode of the open database.
pub(crate) const SQLITE_JOURNAL: &str = "PRAGMA journal_mode";
/// Sync level of this connection (0 off, 1 normal, 2 full, 3 extra).
pub(crate) const SQLITE_SYNCHRONOUS: &str = "PRAGMA synchronous";

/// Whether the server can flush a session's statistics on demand (15+).
pub(crate) const POSTGRES_HAS_FORCE_FLUSH: &str =
    "SELECT to_regproc('pg_stat_force_next_flush') IS NOT NULL";
/// Make this session publish its pending statistics (this statement's
/// transaction included) before it answers the next query.
pub(crate) const POSTGRES_FLUSH_STATS: &str = "SELECT 1 FROM pg_stat_force_next_flush()";
/// Database-wide counters, read by a session that publishes its own
/// statistics at once (so each read adds exactly one transaction):
/// committed transactions, the next transaction id (ids go to writing
/// transactions only), WAL syncs and the WAL position (its bytes, read
/// from the position: exact, nothing to publish). Then what tells a
/// window that the server's own maintenance wrote in it (its transaction
/// ids and WAL count with ours): the vacuums and analyzes done so far in
/// this database, and whether an autovacuum worker is at work anywhere.
pub(crate) const POSTGRES_COUNTERS: &str = "SELECT d.xact_commit, \
     pg_snapshot_xmax(pg_current_snapshot())::TEXT::BIGINT, \
     (SELECT w.wal_sync FROM pg_stat_wal w), \
     (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::BIGINT, \
     (SELECT COALESCE(SUM(t.vacuum_count + t.autovacuum_count \
        + t.analyze_count + t.autoanalyze_count), 0)::BIGINT \
        FROM pg_stat_all_tables t), \
     EXISTS (SELECT 1 FROM pg_stat_activity a \
        WHERE a.backend_type = 'autovacuum worker') \
     FROM pg_stat_database d, pg_stat_force_next_flush() \
     WHERE d.datname = current_database()";

/// The database clock in epoch milliseconds.
pub(crate) const POSTGRES_NOW_MS: &str =
    "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";
/// As [`POSTGRES_NOW_MS`] on SQLite.
pub(crate) const SQLITE_NOW_MS: &str = "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)";
