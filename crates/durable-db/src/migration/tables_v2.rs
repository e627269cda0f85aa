//! The tables of schema v2, written once for both backends: only the type
//! of an id differs (`UUID` on PostgreSQL; `TEXT` on SQLite, in the
//! hyphenated form, so the `sqlite3` shell can read and search them).
//!
//! Workflows and their journal are different things:
//! - `durable_workflow`: one row per workflow, root or child: identity and
//!   key, status, ownership (on the rows an executor claims: roots and,
//!   later, spawned children), queue fields, deadline, the time before
//!   which it may not be claimed (a delay or a suspension), what a
//!   suspended workflow waits for, input, output and counters.
//! - `durable_step`: one row per durable call of a workflow, by call
//!   position: its key (`name#n`), kind, outcome, retries, times, and the
//!   child workflow a `child` call made.
//!
//! Messages, events, streams and schedules get tables of their own in
//! later versions.

/// `CREATE` statements of the v2 tables and indexes; `$uuid` is the id type.
macro_rules! tables_v2 {
    (uuid = $uuid:literal) => {
        [
            concat!(
                "CREATE TABLE durable_workflow (
                id               ", $uuid, " PRIMARY KEY,
                root_id          ", $uuid, " NOT NULL,
                parent_id        ", $uuid, " NULL,
                -- Position of the call in the parent's journal that made it.
                parent_position  INTEGER NULL,
                -- The idempotency key of a root; name#n for a child.
                workflow_key     TEXT NOT NULL,
                name             TEXT NOT NULL,
                status           TEXT NOT NULL,
                input            TEXT NULL,
                output           TEXT NULL,
                error            TEXT NULL,
                -- Executor that runs it, and the fencing epoch of that claim.
                owner_id         ", $uuid, " NULL,
                lease_epoch      BIGINT NOT NULL DEFAULT 0,
                -- Claimed from this queue; NULL: run by the code that started it.
                queue            TEXT NULL,
                priority         INTEGER NOT NULL DEFAULT 0,
                concurrency_key  TEXT NULL,
                -- Not claimable before this time (a delay, or a suspension's wake-up).
                available_ms     BIGINT NULL,
                -- What a suspended workflow waits for; its arrival wakes it early.
                wait_for         TEXT NULL,
                timeout_ms       BIGINT NULL,
                deadline_ms      BIGINT NULL,
                app_version      TEXT NULL,
                -- Claims of it, and of those the takeovers from an owner that died.
                attempts         INTEGER NOT NULL DEFAULT 0,
                recoveries       INTEGER NOT NULL DEFAULT 0,
                created_ms       BIGINT NOT NULL,
                started_ms       BIGINT NULL,
                completed_ms     BIGINT NULL
            )"
            ),
            // Roots are unique by key alone (NULL parent ids are distinct in SQL).
            "CREATE UNIQUE INDEX durable_workflow_root_key ON durable_workflow (workflow_key) WHERE parent_id IS NULL",
            // Children by parent: identity, and the walk down a subtree.
            "CREATE UNIQUE INDEX durable_workflow_child_key ON durable_workflow (parent_id, workflow_key) WHERE parent_id IS NOT NULL",
            "CREATE INDEX durable_workflow_root ON durable_workflow (root_id)",
            // The claimable set of each queue, best first; kept narrow.
            "CREATE INDEX durable_workflow_claim ON durable_workflow (queue, priority DESC, created_ms) \
             WHERE queue IS NOT NULL AND status IN ('PENDING', 'RUNNING')",
            // Inline roots whose owner may have died.
            "CREATE INDEX durable_workflow_orphan ON durable_workflow (created_ms) \
             WHERE queue IS NULL AND parent_id IS NULL AND status IN ('PENDING', 'RUNNING')",
            // Unfinished work by owner (release at shutdown, liveness checks);
            // finished rows keep their last owner but leave the index.
            "CREATE INDEX durable_workflow_owned ON durable_workflow (owner_id) \
             WHERE owner_id IS NOT NULL AND status IN ('PENDING', 'RUNNING', 'PAUSED')",
            // Rate limits count recent starts per queue.
            "CREATE INDEX durable_workflow_queue_started ON durable_workflow (queue, started_ms) WHERE queue IS NOT NULL",
            // Per-key limits count the running workflows of one key.
            "CREATE INDEX durable_workflow_key_running ON durable_workflow (queue, concurrency_key) \
             WHERE status = 'RUNNING' AND concurrency_key IS NOT NULL",
            concat!(
                "CREATE TABLE durable_step (
                workflow_id   ", $uuid, " NOT NULL,
                position      INTEGER NOT NULL,
                step_key      TEXT NOT NULL,
                name          TEXT NOT NULL,
                -- STEP, TRANSACTION, WORKFLOW (a child call), WAIT.
                kind          TEXT NOT NULL,
                -- PENDING (between retries, or waiting), COMPLETED or FAILED.
                status        TEXT NOT NULL,
                output        TEXT NULL,
                error         TEXT NULL,
                retry_count   INTEGER NOT NULL DEFAULT 0,
                max_retries   INTEGER NOT NULL DEFAULT 0,
                child_id      ", $uuid, " NULL,
                -- A waiting call's wake-up time, fixed when it first ran.
                wake_ms       BIGINT NULL,
                created_ms    BIGINT NOT NULL,
                started_ms    BIGINT NULL,
                completed_ms  BIGINT NULL,
                PRIMARY KEY (workflow_id, position)
            )"
            ),
        ]
    };
}

pub(super) use tables_v2;
