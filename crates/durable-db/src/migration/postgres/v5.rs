//! Schema v5 on PostgreSQL, two indexes of claimable workflows, best first:
//! - `durable_workflow_key_claim`, by queue and concurrency key: a claim
//!   under a per-key limit walks the keys that have work and reads each
//!   key's best workflow, instead of ranking every waiting workflow of the
//!   queue (with 100,000 workflows behind one busy key, a workflow of
//!   another key was not claimed within a minute);
//! - `durable_workflow_name_claim`, by queue and function: a claim reads
//!   the ready work of each function it runs, so work of other functions
//!   waiting in the same queue is never read (100,000 of them made each
//!   claim take 0.4 s).
//!
//! No row rewritten; each build holds writes to the table off while it
//! runs (seconds per million rows).

use crate::migration::Migration;

const INDEXES: &[&str] = &[
    "SET LOCAL lock_timeout = '60s'",
    "CREATE INDEX durable_workflow_key_claim ON durable_workflow \
     (queue, concurrency_key, priority DESC, created_ms, id) \
     WHERE status IN ('PENDING', 'RUNNING') AND queue IS NOT NULL",
    "CREATE INDEX durable_workflow_name_claim ON durable_workflow \
     (queue, name, priority DESC, created_ms, id) \
     WHERE queue IS NOT NULL AND status IN ('PENDING', 'RUNNING') AND wait_for IS NULL",
];

pub(in crate::migration) const V5: Migration = Migration {
    version: 5,
    parts: &[INDEXES],
};
