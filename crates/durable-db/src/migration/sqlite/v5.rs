//! Schema v5 on SQLite: `durable_workflow_key_claim`, the claimable
//! workflows of a queue by concurrency key, best first (see the PostgreSQL
//! migration). One index, no row rewritten.

use crate::migration::Migration;

const INDEXES: &[&str] = &[
    "CREATE INDEX durable_workflow_key_claim ON durable_workflow \
     (queue, concurrency_key, priority DESC, created_ms, id) \
     WHERE status IN ('PENDING', 'RUNNING') AND queue IS NOT NULL",
];

pub(in crate::migration) const V5: Migration = Migration {
    version: 5,
    parts: &[INDEXES],
};
