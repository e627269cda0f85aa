//! Schema v6 on PostgreSQL: `durable_step_history` (see `tables_v6`), and
//! the indexes of `Client::list`, one per sort,
//! each ending in the id so a keyset page is one index range:
//! - `durable_workflow_created` (created_ms, id): newest first, a creation
//!   time range, and retention's walk of old work;
//! - `durable_workflow_status_created` and `durable_workflow_name_created`:
//!   a status or a name filter (the most common ones), and the sorts by
//!   status and by name (both break ties by creation time);
//! - `durable_workflow_started` and `durable_workflow_finished`: the sorts
//!   and ranges by first start and by finish, over the rows that have one
//!   (and retention's walk of finished roots);
//! - `durable_message_workflow`: a tree's messages, for retention.
//!
//! No row rewritten; each build holds writes to the table off while it
//! runs (seconds per million rows).

use crate::migration::Migration;
use crate::migration::tables_v6::tables_v6;

/// The journal of failed runs set aside by `Client::retry`.
const TABLES: [&str; 1] = tables_v6!(uuid = "UUID");

const INDEXES: &[&str] = &[
    "SET LOCAL lock_timeout = '60s'",
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
