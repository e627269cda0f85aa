//! The bench's own statements (the SDK's live in `durable`). Every value is
//! bound; the only identifiers ever put into SQL text are the schema names
//! the bench generates itself (in `target.rs`).

/// The floor's table: a UUID key and a small JSON text, like a checkpoint row.
pub(crate) const FLOOR_TABLE_POSTGRES: &str =
    "CREATE TABLE IF NOT EXISTS bench_floor (id UUID PRIMARY KEY, body TEXT NOT NULL)";
/// As [`FLOOR_TABLE_POSTGRES`]; SQLite stores UUIDs as 16-byte blobs.
pub(crate) const FLOOR_TABLE_SQLITE: &str =
    "CREATE TABLE IF NOT EXISTS bench_floor (id BLOB PRIMARY KEY, body TEXT NOT NULL)";
/// One autocommitted row. `$1` id, `$2` JSON text.
pub(crate) const FLOOR_INSERT: &str = "INSERT INTO bench_floor (id, body) VALUES ($1, $2)";

/// Completed journal entries `noop#i` at positions `$4..=$5` of workflow
/// `$1` (its id as the backend stores it), each with output `$2` and
/// times `$3`, as the SDK's commit writes them.
pub(crate) const HISTORY_POSTGRES: &str = "INSERT INTO durable_step \
     (workflow_id, position, step_key, name, kind, status, output, created_ms, started_ms, completed_ms) \
     SELECT $1, i, 'noop#' || i, 'noop', 'STEP', 'COMPLETED', $2, $3, $3, $3 \
     FROM generate_series($4::INTEGER, $5::INTEGER) AS s(i)";
/// As [`HISTORY_POSTGRES`], with a recursive counter for `generate_series`.
pub(crate) const HISTORY_SQLITE: &str = "INSERT INTO durable_step \
     (workflow_id, position, step_key, name, kind, status, output, created_ms, started_ms, completed_ms) \
     WITH RECURSIVE s(i) AS (SELECT CAST($4 AS INTEGER) UNION ALL SELECT i + 1 FROM s WHERE i < $5) \
     SELECT $1, i, 'noop#' || i, 'noop', 'STEP', 'COMPLETED', $2, $3, $3, $3 FROM s";

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
/// from the position: exact, nothing to publish).
pub(crate) const POSTGRES_COUNTERS: &str = "SELECT d.xact_commit, \
     pg_snapshot_xmax(pg_current_snapshot())::TEXT::BIGINT, \
     (SELECT w.wal_sync FROM pg_stat_wal w), \
     (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::BIGINT \
     FROM pg_stat_database d, pg_stat_force_next_flush() \
     WHERE d.datname = current_database()";

/// Seed workflows in one statement (a million through `enqueue` would
/// take the run's whole budget): `$1` key prefix, `$2` name, `$3` queue,
/// `$4` concurrency key (or NULL), `$5` first number, `$6` last number,
/// `$7` status (`PENDING`: what `enqueue` writes; `COMPLETED`: finished,
/// with times and an output).
pub(crate) const POSTGRES_SEED: &str = "INSERT INTO durable_workflow \
     (id, root_id, workflow_key, name, status, input, output, queue, priority, concurrency_key, \
      created_ms, started_ms, completed_ms) \
     SELECT x.u, x.u, $1 || g, $2, $7, 'null', CASE WHEN $7 = 'COMPLETED' THEN 'null' END, $3, 0, $4, \
       c.ms, CASE WHEN $7 = 'COMPLETED' THEN c.ms END, CASE WHEN $7 = 'COMPLETED' THEN c.ms END \
     FROM generate_series($5::BIGINT, $6::BIGINT) g, \
       LATERAL (SELECT gen_random_uuid() AS u OFFSET 0 * g) x, \
       (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS ms) c";
/// As [`POSTGRES_SEED`] on SQLite (ids as hyphenated text).
pub(crate) const SQLITE_SEED: &str = "WITH RECURSIVE n(g) AS (SELECT $5 UNION ALL SELECT g + 1 FROM n WHERE g < $6), \
     ids(g, u) AS (SELECT g, lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || \
       substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))) FROM n), \
     c(ms) AS (SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)) \
     INSERT INTO durable_workflow \
     (id, root_id, workflow_key, name, status, input, output, queue, priority, concurrency_key, \
      created_ms, started_ms, completed_ms) \
     SELECT u, u, $1 || g, $2, $7, 'null', CASE WHEN $7 = 'COMPLETED' THEN 'null' END, $3, 0, $4, \
       c.ms, CASE WHEN $7 = 'COMPLETED' THEN c.ms END, CASE WHEN $7 = 'COMPLETED' THEN c.ms END FROM ids, c";

/// The database clock in epoch milliseconds.
pub(crate) const POSTGRES_NOW_MS: &str =
    "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";
/// As [`POSTGRES_NOW_MS`] on SQLite.
pub(crate) const SQLITE_NOW_MS: &str = "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)";
/// Workflows of `$1` created since `$2` (epoch ms) that completed, and the
/// last completion.
pub(crate) const SCALE_DONE: &str = "SELECT COUNT(*), COALESCE(MAX(completed_ms), 0) \
     FROM durable_workflow WHERE name = $1 AND status = 'COMPLETED' AND created_ms >= $2";

/// Seed finished workflows for the list workload, number `$1..=$2`, one
/// millisecond apart from `$3` (epoch ms): ten names (`bench-list-0`..),
/// keys `list-<n>`, 5% failed, 5% cancelled, the rest completed.
pub(crate) const POSTGRES_LIST_SEED: &str = "INSERT INTO durable_workflow \
     (id, root_id, workflow_key, name, status, input, output, error, attempts, \
      created_ms, started_ms, completed_ms) \
     SELECT x.u, x.u, 'list-' || g, 'bench-list-' || (g % 10), \
       CASE g % 20 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'CANCELLED' ELSE 'COMPLETED' END, \
       'null', CASE WHEN g % 20 > 1 THEN 'null' END, CASE WHEN g % 20 = 0 THEN 'bench failure' END, 1, \
       $3::BIGINT + g, $3::BIGINT + g, $3::BIGINT + g + 5 \
     FROM generate_series($1::BIGINT, $2::BIGINT) g, \
       LATERAL (SELECT gen_random_uuid() AS u OFFSET 0 * g) x";
/// As [`POSTGRES_LIST_SEED`] on SQLite (ids as hyphenated text).
pub(crate) const SQLITE_LIST_SEED: &str = "WITH RECURSIVE n(g) AS (SELECT $1 UNION ALL SELECT g + 1 FROM n WHERE g < $2), \
     ids(g, u) AS (SELECT g, lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || \
       substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))) FROM n) \
     INSERT INTO durable_workflow \
     (id, root_id, workflow_key, name, status, input, output, error, attempts, \
      created_ms, started_ms, completed_ms) \
     SELECT u, u, 'list-' || g, 'bench-list-' || (g % 10), \
       CASE g % 20 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'CANCELLED' ELSE 'COMPLETED' END, \
       'null', CASE WHEN g % 20 > 1 THEN 'null' END, CASE WHEN g % 20 = 0 THEN 'bench failure' END, 1, \
       $3 + g, $3 + g, $3 + g + 5 FROM ids";
