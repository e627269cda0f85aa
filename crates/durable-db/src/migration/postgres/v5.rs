//! Schema v5 on PostgreSQL: `durable_workflow_key_claim`, the claimable
//! workflows of a queue by concurrency key, best first. A claim under a
//! per-key limit walks the keys that have work and reads each key's best
//! workflow, instead of ranking every waiting workflow of the queue: with
//! 100,000 workflows behind one busy key, a workflow of another key was not
//! claimed within a minute. One index, no row rewritten; the build holds
//! writes to the table off while it runs (seconds per million rows).

use crate::migration::Migration;

const INDEXES: &[&str] = &[
    "SET LOCAL lock_timeout = '60s'",
    "CREATE INDEX durable_workflow_key_claim ON durable_workflow \
     (queue, concurrency_key, priority DESC, created_ms, id) \
     WHERE status IN ('PENDING', 'RUNNING') AND queue IS NOT NULL",
];

pub(in crate::migration) const V5: Migration = Migration {
    version: 5,
    parts: &[INDEXES],
};
