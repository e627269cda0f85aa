//! Schema v4 on PostgreSQL: `durable_executor.beat_ms`, the database time
//! of an executor's last heartbeat. With the server's start time it tells
//! a session lock that is missing because the server restarted (every
//! lock is gone, and the owner has not had a chance to take it again)
//! from one missing because the owner died. One nullable column: no row is
//! rewritten, and executors of v3 (which never write it) are judged as
//! before.

use crate::migration::Migration;

/// `ALTER TABLE` waits for the executors' heartbeats; a bound turns a
/// stuck one into an error of `init`, not a hang.
const COLUMNS: &[&str] = &[
    "SET LOCAL lock_timeout = '60s'",
    "ALTER TABLE durable_executor ADD COLUMN beat_ms BIGINT",
];

pub(in crate::migration) const V4: Migration = Migration {
    version: 4,
    parts: &[COLUMNS],
};
