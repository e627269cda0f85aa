//! Schema v2 on SQLite: workflows and their journal in two tables, ids as
//! hyphenated text (v1 stored 16-byte blobs, unreadable in the `sqlite3`
//! shell).
//!
//! The migration runs under `BEGIN IMMEDIATE`, so no other writer can
//! slip in between the copy and the drop. As on PostgreSQL, unfinished
//! workflows lose their owner, `durable_task` stays as a read-only view
//! with the v1 columns (ids as blobs again, so v1 readers keep working),
//! and a v1 executor that is still running fails on its first write.

use crate::migration::Migration;
use crate::migration::tables_v2::tables_v2;

const TABLES: [&str; 10] = tables_v2!(uuid = "TEXT");

/// A v1 blob id as hyphenated lowercase text (NULL stays NULL).
macro_rules! text_id {
    ($column:literal) => {
        concat!(
            "CASE WHEN ",
            $column,
            " IS NULL THEN NULL ELSE lower(",
            "substr(hex(",
            $column,
            "), 1, 8) || '-' || substr(hex(",
            $column,
            "), 9, 4) || '-' || ",
            "substr(hex(",
            $column,
            "), 13, 4) || '-' || substr(hex(",
            $column,
            "), 17, 4) || '-' || ",
            "substr(hex(",
            $column,
            "), 21, 12)) END"
        )
    };
}

/// A text id as the 16-byte blob v1 stored.
macro_rules! blob_id {
    ($column:literal) => {
        concat!("unhex(replace(", $column, ", '-', ''))")
    };
}

const COPY: &[&str] = &[
    concat!(
        "INSERT INTO durable_workflow (id, root_id, parent_id, parent_position, workflow_key, name, status, \
           input, output, error, owner_id, lease_epoch, queue, priority, concurrency_key, available_ms, \
           timeout_ms, deadline_ms, app_version, attempts, created_ms, started_ms, completed_ms) \
         SELECT ",
        text_id!("id"),
        ", ",
        text_id!("root_id"),
        ", ",
        text_id!("parent_id"),
        ", sequence, task_key, name, \
           CASE WHEN status = 'RUNNING' THEN 'PENDING' ELSE status END, \
           input, output, error, NULL, lease_epoch + 1, queue, priority, concurrency_key, available_ms, \
           timeout_ms, deadline_ms, app_version, CASE WHEN started_ms IS NULL THEN 0 ELSE 1 END, \
           created_ms, started_ms, completed_ms \
         FROM durable_task WHERE kind = 'WORKFLOW'"
    ),
    concat!(
        "INSERT OR IGNORE INTO durable_step (workflow_id, position, step_key, name, kind, status, output, error, \
           retry_count, max_retries, child_id, created_ms, started_ms, completed_ms) \
         SELECT ",
        text_id!("parent_id"),
        ", sequence, task_key, name, kind, \
           CASE WHEN status IN ('COMPLETED', 'FAILED') THEN status ELSE 'PENDING' END, output, error, \
           retry_count, max_retries, NULL, created_ms, started_ms, completed_ms \
         FROM durable_task WHERE kind <> 'WORKFLOW' AND parent_id IS NOT NULL AND sequence IS NOT NULL \
         UNION ALL \
         SELECT ",
        text_id!("parent_id"),
        ", sequence, task_key, name, 'WORKFLOW', 'COMPLETED', NULL, NULL, 0, 0, ",
        text_id!("id"),
        ", created_ms, created_ms, created_ms \
         FROM durable_task WHERE kind = 'WORKFLOW' AND parent_id IS NOT NULL AND sequence IS NOT NULL"
    ),
    "DROP TABLE durable_task",
    "CREATE TABLE durable_executor_v2 (
        id                TEXT PRIMARY KEY,
        hostname          TEXT NOT NULL,
        pid               INTEGER NOT NULL,
        pid_started       INTEGER NOT NULL,
        started_ms        INTEGER NOT NULL,
        lease_expires_ms  INTEGER NOT NULL,
        lock_key          INTEGER NULL
    )",
    concat!(
        "INSERT INTO durable_executor_v2 (id, hostname, pid, pid_started, started_ms, lease_expires_ms, lock_key) \
         SELECT ",
        text_id!("id"),
        ", hostname, pid, pid_started, started_ms, lease_expires_ms, lock_key \
         FROM durable_executor"
    ),
    "DROP TABLE durable_executor",
    "ALTER TABLE durable_executor_v2 RENAME TO durable_executor",
];

/// The v1 shapes, read-only, with blob ids. A step row's id is made from
/// its workflow's id and position (steps have no id of their own any more).
const COMPAT: &[&str] = &[
    concat!(
        "CREATE VIEW durable_task AS \
         SELECT ",
        blob_id!("id"),
        " AS id, ",
        blob_id!("root_id"),
        " AS root_id, ",
        blob_id!("parent_id"),
        " AS parent_id, workflow_key AS task_key, name, 'WORKFLOW' AS kind, status, \
           parent_position AS sequence, input, output, error, 0 AS retry_count, 0 AS max_retries, \
           timeout_ms, deadline_ms, ",
        blob_id!("owner_id"),
        " AS owner_id, lease_epoch, created_ms, \
           started_ms, completed_ms, queue, priority, concurrency_key, available_ms, app_version \
         FROM durable_workflow \
         UNION ALL \
         SELECT unhex(substr(replace(s.workflow_id, '-', ''), 1, 24) || printf('%08x', s.position)), ",
        blob_id!("w.root_id"),
        ", ",
        blob_id!("s.workflow_id"),
        ", s.step_key, s.name, s.kind, s.status, \
           s.position, NULL, s.output, s.error, s.retry_count, s.max_retries, NULL, NULL, NULL, 0, \
           s.created_ms, s.started_ms, s.completed_ms, NULL, 0, NULL, NULL, NULL \
         FROM durable_step s JOIN durable_workflow w ON w.id = s.workflow_id WHERE s.kind <> 'WORKFLOW'"
    ),
    "CREATE TRIGGER durable_task_refuse_insert INSTEAD OF INSERT ON durable_task BEGIN \
       SELECT RAISE(ABORT, 'durable_task is a read-only view since durable schema v2; this process runs an older durable (schema v1): stop it and upgrade'); END",
    "CREATE TRIGGER durable_task_refuse_update INSTEAD OF UPDATE ON durable_task BEGIN \
       SELECT RAISE(ABORT, 'durable_task is a read-only view since durable schema v2; this process runs an older durable (schema v1): stop it and upgrade'); END",
    "CREATE TRIGGER durable_task_refuse_delete INSTEAD OF DELETE ON durable_task BEGIN \
       SELECT RAISE(ABORT, 'durable_task is a read-only view since durable schema v2; this process runs an older durable (schema v1): stop it and upgrade'); END",
    // `durable_db::entity::executor` reads this view.
    concat!(
        "CREATE VIEW durable_executor_v1 AS SELECT ",
        blob_id!("id"),
        " AS id, hostname, pid, pid_started, started_ms, lease_expires_ms, lock_key FROM durable_executor"
    ),
];

pub(in crate::migration) const V2: Migration = Migration {
    version: 2,
    parts: &[&TABLES, COPY, COMPAT],
};
