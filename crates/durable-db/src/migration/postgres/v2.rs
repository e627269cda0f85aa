//! Schema v2 on PostgreSQL: workflows and their journal in two tables.
//!
//! The v1 task tree is copied over in the migration's one transaction,
//! which first locks the old tables, so no v1 write can slip in between
//! the copy and the drop. Every unfinished workflow loses its owner (and
//! its fencing epoch moves on): executors of the old version cannot write
//! to the new tables, so whoever runs a v2 executor (or re-runs the
//! program) takes them over at once.
//!
//! `durable_task` stays as a read-only view with the v1 columns, so reads
//! through `durable_db::entity::task` keep working; a v1 executor that is
//! still running gets the error raised by `durable_task_refuse_write` on
//! its first write.

use crate::migration::Migration;
use crate::migration::tables_v2::tables_v2;

const TABLES: [&str; 10] = tables_v2!(uuid = "UUID");

/// The lock waits for transactions of v1 processes still running (a
/// `ctx.transaction` among them); a bound turns a stuck one into an error
/// of `init` that names the lock, instead of a hang.
const BEFORE: &[&str] = &[
    "SET LOCAL lock_timeout = '60s'",
    "LOCK TABLE durable_task, durable_executor IN ACCESS EXCLUSIVE MODE",
];

const COPY: &[&str] = &[
    "INSERT INTO durable_workflow (id, root_id, parent_id, parent_position, workflow_key, name, status, \
       input, output, error, owner_id, lease_epoch, queue, priority, concurrency_key, available_ms, \
       timeout_ms, deadline_ms, app_version, attempts, created_ms, started_ms, completed_ms) \
     SELECT id, root_id, parent_id, sequence, task_key, name, \
       CASE WHEN status = 'RUNNING' THEN 'PENDING' ELSE status END, \
       input, output, error, NULL, lease_epoch + 1, queue, priority, concurrency_key, available_ms, \
       timeout_ms, deadline_ms, app_version, CASE WHEN started_ms IS NULL THEN 0 ELSE 1 END, \
       created_ms, started_ms, completed_ms \
     FROM durable_task WHERE kind = 'WORKFLOW'",
    // Steps, and one journal entry per child workflow at its call position.
    "INSERT INTO durable_step (workflow_id, position, step_key, name, kind, status, output, error, \
       retry_count, max_retries, child_id, created_ms, started_ms, completed_ms) \
     SELECT parent_id, sequence, task_key, name, kind, \
           CASE WHEN status IN ('COMPLETED', 'FAILED') THEN status ELSE 'PENDING' END, output, error, retry_count, max_retries, \
       NULL, created_ms, started_ms, completed_ms \
     FROM durable_task WHERE kind <> 'WORKFLOW' AND parent_id IS NOT NULL AND sequence IS NOT NULL \
     UNION ALL \
     SELECT parent_id, sequence, task_key, name, 'WORKFLOW', 'COMPLETED', NULL, NULL, 0, 0, \
       id, created_ms, created_ms, created_ms \
     FROM durable_task WHERE kind = 'WORKFLOW' AND parent_id IS NOT NULL AND sequence IS NOT NULL \
     ON CONFLICT DO NOTHING",
    "DROP TABLE durable_task",
];

/// The v1 shape, read-only. A step row's id is made from its workflow's id
/// and position (steps have no id of their own any more).
const COMPAT: &[&str] = &[
    "CREATE VIEW durable_task AS \
     SELECT id, root_id, parent_id, workflow_key AS task_key, name, 'WORKFLOW' AS kind, status, \
       parent_position AS sequence, input, output, error, 0 AS retry_count, 0 AS max_retries, \
       timeout_ms, deadline_ms, owner_id, lease_epoch, created_ms, started_ms, completed_ms, \
       queue, priority, concurrency_key, available_ms, app_version \
     FROM durable_workflow \
     UNION ALL \
     SELECT (substr(replace(s.workflow_id::TEXT, '-', ''), 1, 24) || lpad(to_hex(s.position), 8, '0'))::UUID, \
       w.root_id, s.workflow_id, s.step_key, s.name, s.kind, s.status, s.position, NULL, s.output, \
       s.error, s.retry_count, s.max_retries, NULL, NULL, NULL, 0, s.created_ms, s.started_ms, \
       s.completed_ms, NULL, 0, NULL, NULL, NULL \
     FROM durable_step s JOIN durable_workflow w ON w.id = s.workflow_id WHERE s.kind <> 'WORKFLOW'",
    "CREATE FUNCTION durable_task_refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
       RAISE EXCEPTION 'durable_task is a read-only view since durable schema v2; this process runs an older durable (schema v1): stop it and upgrade' \
       USING ERRCODE = 'feature_not_supported'; \
     END $$",
    "CREATE TRIGGER durable_task_refuse_write INSTEAD OF INSERT OR UPDATE OR DELETE ON durable_task \
     FOR EACH ROW EXECUTE FUNCTION durable_task_refuse_write()",
    // `durable_db::entity::executor` reads this view (ids are text on SQLite).
    "CREATE VIEW durable_executor_v1 AS \
     SELECT id, hostname, pid, pid_started, started_ms, lease_expires_ms, lock_key FROM durable_executor",
];

pub(in crate::migration) const V2: Migration = Migration {
    version: 2,
    parts: &[BEFORE, &TABLES, COPY, COMPAT],
};
