//! Schema v4 on SQLite: `durable_executor.beat_ms`, the database time of
//! an executor's last heartbeat (see the PostgreSQL migration; SQLite has
//! no session locks, so it is informational here). One nullable column.

use crate::migration::Migration;

const COLUMNS: &[&str] = &["ALTER TABLE durable_executor ADD COLUMN beat_ms BIGINT"];

pub(in crate::migration) const V4: Migration = Migration {
    version: 4,
    parts: &[COLUMNS],
};
