//! The table schema v6 adds on both backends: `durable_step_history`, the
//! journal entries of failed runs that `Client::retry` set aside so the
//! calls run again. One row per entry and retry round (1 for the first
//! retry of the tree, 2 for the next, ...), with the entry's columns as
//! they were and the time it was set aside.

/// `CREATE` statement of the v6 table; `$uuid` is the id type.
macro_rules! tables_v6 {
    (uuid = $uuid:literal) => {
        [concat!(
            "CREATE TABLE durable_step_history (
            workflow_id   ",
            $uuid,
            " NOT NULL,
            position      INTEGER NOT NULL,
            round         INTEGER NOT NULL,
            step_key      TEXT NOT NULL,
            name          TEXT NOT NULL,
            kind          TEXT NOT NULL,
            status        TEXT NOT NULL,
            output        TEXT NULL,
            error         TEXT NULL,
            retry_count   INTEGER NOT NULL,
            max_retries   INTEGER NOT NULL,
            child_id      ",
            $uuid,
            " NULL,
            wake_ms       BIGINT NULL,
            created_ms    BIGINT NOT NULL,
            started_ms    BIGINT NULL,
            completed_ms  BIGINT NULL,
            archived_ms   BIGINT NOT NULL,
            PRIMARY KEY (workflow_id, position, round)
        )"
        )]
    };
}

pub(super) use tables_v6;
