//! Schema v6 on SQLite: `durable_step_history` (see `tables_v6`), and the
//! indexes of `Client::list`, one per sort (see
//! the PostgreSQL migration). No row rewritten.

use crate::migration::Migration;
use crate::migration::tables_v6::tables_v6;

/// The journal of failed runs set aside by `Client::retry`.
const TABLES: [&str; 1] = tables_v6!(uuid = "TEXT");

const INDEXES: &[&str] = &[
    "CREATE INDEX durable_workflow_created ON durable_workflow (created_ms, id)",
    "CREATE INDEX durable_workflow_status_created ON durable_workflow (status, created_ms, id)",
    "CREATE INDEX durable_workflow_name_created ON durable_workflow (name, created_ms, id)",
    "CREATE INDEX durable_workflow_started ON durable_workflow (started_ms, id) \
     WHERE started_ms IS NOT NULL",
    "CREATE INDEX durable_workflow_finished ON durable_workflow (completed_ms, id) \
     WHERE completed_ms IS NOT NULL",
    // Retention deletes a tree's messages by recipient, taken or not.
    "CREATE INDEX durable_message_workflow ON durable_message (workflow_id)",
];

pub(in crate::migration) const V6: Migration = Migration {
    version: 6,
    parts: &[INDEXES, &TABLES],
};
