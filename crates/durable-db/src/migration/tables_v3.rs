//! Schema v3, written once for both backends: messages, events and
//! streams get tables of their own, and a workflow row names the run unit
//! it belongs to. `$uuid` is the id type; `$serial` an ever-growing
//! integer key (`GENERATED ... AS IDENTITY` on PostgreSQL, SQLite's
//! `AUTOINCREMENT`).
//!
//! - `durable_workflow.run_id`: the workflow whose claim runs this one
//!   when that is not its root: a spawned child (its own id) and the
//!   inline children under it. NULL means the root, so v2 rows need no
//!   rewrite.
//! - `durable_message`: messages sent to a workflow, by topic, in the order
//!   sent; taken by the `recv` call at `consumed_position`, exactly once.
//! - `durable_event`: each value a workflow published under a key; the
//!   latest (highest call position) is the event's value.
//! - `durable_stream`: the items of a workflow's streams by offset; a row
//!   without a value closes the stream.
//! - an index on the journal entries that wait, so a sender or a finished
//!   child finds the call waiting for it without reading a long history;
//! - suspended workflows leave the claim indexes for one of their own by
//!   wake-up time: a claim reads the work that is ready plus the sleepers
//!   that are due, never the thousands still asleep.

/// `CREATE`/`ALTER` statements of schema v3.
macro_rules! tables_v3 {
    (uuid = $uuid:literal, serial = $serial:literal) => {
        [
            concat!("ALTER TABLE durable_workflow ADD COLUMN run_id ", $uuid, " NULL"),
            concat!(
                "CREATE TABLE durable_message (
                seq                ", $serial, ",
                workflow_id        ", $uuid, " NOT NULL,
                topic              TEXT NOT NULL,
                -- Idempotency key: a second send with it is a no-op.
                message_key        TEXT NULL,
                payload            TEXT NOT NULL,
                -- The recv call (journal position of workflow_id) that took it.
                consumed_position  INTEGER NULL,
                created_ms         BIGINT NOT NULL,
                consumed_ms        BIGINT NULL
            )"
            ),
            "CREATE UNIQUE INDEX durable_message_key ON durable_message (workflow_id, message_key) \
             WHERE message_key IS NOT NULL",
            "CREATE INDEX durable_message_waiting ON durable_message (workflow_id, topic, seq) \
             WHERE consumed_position IS NULL",
            concat!(
                "CREATE TABLE durable_event (
                workflow_id  ", $uuid, " NOT NULL,
                event_key    TEXT NOT NULL,
                -- The set_event call that published this value.
                position     INTEGER NOT NULL,
                value        TEXT NOT NULL,
                created_ms   BIGINT NOT NULL,
                PRIMARY KEY (workflow_id, event_key, position)
            )"
            ),
            concat!(
                "CREATE TABLE durable_stream (
                workflow_id  ", $uuid, " NOT NULL,
                stream_key   TEXT NOT NULL,
                item_offset  BIGINT NOT NULL,
                -- NULL: the stream was closed here.
                value        TEXT NULL,
                -- The write_stream or close_stream call that wrote it.
                position     INTEGER NOT NULL,
                created_ms   BIGINT NOT NULL,
                PRIMARY KEY (workflow_id, stream_key, item_offset)
            )"
            ),
            "CREATE INDEX durable_step_waiting ON durable_step (workflow_id, kind) WHERE status = 'PENDING'",
            "DROP INDEX durable_workflow_claim",
            "CREATE INDEX durable_workflow_claim ON durable_workflow (queue, priority DESC, created_ms) \
             WHERE queue IS NOT NULL AND status IN ('PENDING', 'RUNNING') AND wait_for IS NULL",
            "DROP INDEX durable_workflow_orphan",
            "CREATE INDEX durable_workflow_orphan ON durable_workflow (created_ms) \
             WHERE queue IS NULL AND parent_id IS NULL AND status IN ('PENDING', 'RUNNING') AND wait_for IS NULL",
            "CREATE INDEX durable_workflow_due ON durable_workflow (queue, available_ms) \
             WHERE wait_for IS NOT NULL AND status IN ('PENDING', 'RUNNING')",
        ]
    };
}

pub(super) use tables_v3;
