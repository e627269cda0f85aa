//! The tables schema v7 adds on both backends:
//! - `durable_schedule`: cron schedules. One row per schedule name with its
//!   definition (registered workflow, expression, time zone, input, queue,
//!   catch-up policy) and its cursor: `next_tick_ms`, the earliest tick not
//!   yet fired (NULL when the expression has no tick left). Firing a tick
//!   enqueues its workflow and moves the cursor in one transaction.
//! - `durable_debounce`: one row per debounce key, naming the workflow that
//!   gathers the current burst of calls and when the burst began (for the
//!   bound on the total wait).

/// `CREATE` statements of the v7 tables; `$uuid` is the id type.
macro_rules! tables_v7 {
    (uuid = $uuid:literal) => {
        [
            "CREATE TABLE durable_schedule (
            name            TEXT PRIMARY KEY,
            workflow        TEXT NOT NULL,
            cron            TEXT NOT NULL,
            time_zone       TEXT NOT NULL,
            input           TEXT NOT NULL,
            queue           TEXT NOT NULL,
            catch_up        TEXT NOT NULL,
            catch_up_limit  INTEGER NOT NULL,
            status          TEXT NOT NULL,
            next_tick_ms    BIGINT NULL,
            last_tick_ms    BIGINT NULL,
            fired           BIGINT NOT NULL,
            created_ms      BIGINT NOT NULL,
            updated_ms      BIGINT NOT NULL
        )",
            // The scheduler's read: active schedules that are due, earliest first.
            "CREATE INDEX durable_schedule_due ON durable_schedule (next_tick_ms) \
             WHERE status = 'ACTIVE'",
            concat!(
                "CREATE TABLE durable_debounce (
            debounce_key    TEXT PRIMARY KEY,
            workflow_id     ",
                $uuid,
                " NOT NULL,
            first_ms        BIGINT NOT NULL
        )"
            ),
        ]
    };
}

pub(super) use tables_v7;
