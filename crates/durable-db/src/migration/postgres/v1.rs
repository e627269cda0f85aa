//! Schema v1 on PostgreSQL: one table for the whole task tree. Kept as it
//! shipped: a new database goes through it, then through v2.

use crate::migration::Migration;

pub(in crate::migration) const V1: Migration = Migration {
    version: 1,
    parts: &[&[
        "CREATE TABLE durable_task (
            id            UUID PRIMARY KEY,
            root_id       UUID NOT NULL,
            parent_id     UUID NULL,
            task_key      TEXT NOT NULL,
            name          TEXT NOT NULL,
            kind          TEXT NOT NULL,
            status        TEXT NOT NULL,
            sequence      INTEGER NULL,
            input         TEXT NULL,
            output        TEXT NULL,
            error         TEXT NULL,
            retry_count   INTEGER NOT NULL DEFAULT 0,
            max_retries   INTEGER NOT NULL DEFAULT 0,
            timeout_ms    BIGINT NULL,
            deadline_ms   BIGINT NULL,
            owner_id      UUID NULL,
            lease_epoch   BIGINT NOT NULL DEFAULT 0,
            created_ms    BIGINT NOT NULL,
            started_ms    BIGINT NULL,
            completed_ms  BIGINT NULL,
            -- Enqueued workflows: which queue (NULL: started inline), order,
            -- concurrency group, earliest start, and the application version
            -- that may run them.
            queue            TEXT NULL,
            priority         INTEGER NOT NULL DEFAULT 0,
            concurrency_key  TEXT NULL,
            available_ms     BIGINT NULL,
            app_version      TEXT NULL
        )",
        // Roots are unique by key alone: a plain UNIQUE (parent_id, task_key)
        // would not do it, since NULL parent ids are distinct in SQL.
        "CREATE UNIQUE INDEX durable_task_root_key ON durable_task (task_key) WHERE parent_id IS NULL",
        "CREATE UNIQUE INDEX durable_task_child_key ON durable_task (parent_id, task_key) WHERE parent_id IS NOT NULL",
        // Whole trees by root, for workflows only: step rows stay cheap to write.
        "CREATE INDEX durable_task_root ON durable_task (root_id) WHERE kind = 'WORKFLOW'",
        // Histories are read in pages by call position.
        "CREATE INDEX durable_task_position ON durable_task (parent_id, sequence)",
        "CREATE INDEX durable_task_owned ON durable_task (owner_id) WHERE kind = 'WORKFLOW' AND status IN ('PENDING', 'RUNNING')",
        // The claimable set, kept narrow: roots not yet finished, by queue and order.
        "CREATE INDEX durable_task_claim ON durable_task (queue, priority DESC, created_ms) \
         WHERE parent_id IS NULL AND status IN ('PENDING', 'RUNNING')",
        // Rate limits count recent starts per queue.
        "CREATE INDEX durable_task_queue_started ON durable_task (queue, started_ms) \
         WHERE parent_id IS NULL AND queue IS NOT NULL",
        "CREATE TABLE durable_executor (
            id                UUID PRIMARY KEY,
            hostname          TEXT NOT NULL,
            pid               BIGINT NOT NULL,
            pid_started       BIGINT NOT NULL,
            started_ms        BIGINT NOT NULL,
            lease_expires_ms  BIGINT NOT NULL,
            lock_key          BIGINT NULL
        )",
        "CREATE TABLE durable_queue (
            name              TEXT PRIMARY KEY,
            concurrency       INTEGER NULL,
            rate_limit        INTEGER NULL,
            rate_period_ms    BIGINT NULL,
            key_concurrency   INTEGER NULL
        )",
        "INSERT INTO durable_queue (name) VALUES ('default')",
    ]],
};
