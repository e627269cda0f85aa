//! What differs between the backends, in one place.
//!
//! Every statement of the store is written once, as a `concat!` of SQL
//! text and the fragments below, and instantiated per backend by
//! [`dialects!`]. Values are always bound (`$1`, `$2`, ... on both
//! backends); statements are compile-time constants, so no value ever
//! becomes SQL text.
//!
//! The fragments: the database clock in epoch milliseconds (one reading
//! per statement, so a statement never sees two different times), row
//! locks (management calls and claims lock, a checkpoint holds the
//! workflow row shared while it checks the lease), the time at the moment
//! of reading (for a decision taken after a row lock was waited for),
//! how a JSON array parameter is read as a set (of text, or of ids), how
//! the ready work of a queue is read per function, and how a journal
//! entry's child row is joined.

/// Instantiate a statements struct for both backends: `$builder` is a macro
/// taking the fragments and returning the struct; the result is indexed by
/// [`super::Dialect`].
macro_rules! dialects {
    ($vis:vis static $name:ident: $ty:ty = $builder:ident;) => {
        $vis static $name: [$ty; 2] = [
            // PostgreSQL: `statement_timestamp()` is read once per
            // statement. A checkpoint holds the workflow row `FOR SHARE`
            // while it checks the lease, so a takeover (an `UPDATE` of that
            // row) waits for it, or it sees the new epoch and writes nothing.
            $builder!(
                now = "(EXTRACT(EPOCH FROM statement_timestamp()) * 1000)::BIGINT",
                lock_row = " FOR UPDATE",
                fence_row = " FOR SHARE",
                skip_locked = " FOR UPDATE SKIP LOCKED",
                // The time now, not at the statement's start: for what a
                // statement decides after waiting for a row lock.
                clock_now = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
                // See `owner_dead`.
                owner_lock = " FOR SHARE SKIP LOCKED",
                json_list = ("(SELECT jsonb_array_elements_text(", "::JSONB))"),
                // The ready workflows of a queue, one index range per
                // function this executor runs (the names in `$2`, LATERAL),
                // so work of functions it does not run is never read
                // (index `durable_workflow_name_claim`).
                per_name = (
                    "(SELECT jsonb_array_elements_text($2::JSONB) AS served) n CROSS JOIN LATERAL ",
                    "name = n.served"
                ),
                // A JSON array parameter of ids as a set of the id type
                // (so an index on an id column serves `IN`).
                id_list = ("(SELECT CAST(t.v AS UUID) FROM jsonb_array_elements_text(", "::JSONB) AS t(v))"),
                // A journal entry's child (`c`), looked up by its id for
                // each entry: a LATERAL subquery with a LIMIT is never
                // turned into a join the planner may hash. With statistics
                // older than a burst of inserts it hashed the whole
                // workflow table for a page of 500 entries that had no
                // child (15,000 workflows, 11 ms a page, against 0.6 ms).
                child_join = "LEFT JOIN LATERAL (SELECT * FROM durable_workflow w1 WHERE w1.id = s.child_id LIMIT 1) c ON TRUE "
            ),
            // SQLite: one writer at a time, so statements are already
            // serialized and need no row locks; `julianday('now')` is fixed
            // for the duration of a statement.
            $builder!(
                now = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
                lock_row = "",
                fence_row = "",
                skip_locked = "",
                clock_now = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
                owner_lock = "",
                json_list = ("(SELECT value FROM json_each(", "))"),
                // SQLite has no LATERAL: one range of the queue, names
                // filtered (it serves one process; others' work in its
                // queues is rare).
                per_name = ("", "name IN (SELECT value FROM json_each($2))"),
                id_list = ("(SELECT value FROM json_each(", "))"),
                // SQLite joins by nested loops: one primary-key probe per entry.
                child_join = "LEFT JOIN durable_workflow c ON c.id = s.child_id "
            ),
        ];
    };
}

/// The owner of a `durable_workflow` row (unaliased) is alive: an executor
/// row with a live lease by the database clock. (Nothing else counts: a
/// lost connection is no proof that its process died; see `identity`.)
macro_rules! owner_alive {
    ($now:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM durable_executor e WHERE e.id = durable_workflow.owner_id \
             AND e.lease_expires_ms > ",
            $now,
            ")"
        )
    };
}

/// The owner of a `durable_workflow` row is dead: the condition under which
/// another executor may take it over. No executor row, or one whose lease
/// has expired, read from the row as it is now, not as the statement's
/// snapshot had it: on PostgreSQL the executor row is locked for the read
/// (`$owner_lock`, `FOR SHARE SKIP LOCKED`), so a renewal that is still
/// committing (its lock held) makes the owner count as alive this time,
/// and one that committed since the snapshot is seen. Without it a
/// takeover could read an old expiry while the owner's renewal commits,
/// and the owner, proven by that renewal, would run on beside it.
/// (SQLite runs one writer at a time: nothing is in flight.)
macro_rules! owner_dead {
    ($now:literal, $owner_lock:literal) => {
        concat!(
            "(NOT EXISTS (SELECT 1 FROM durable_executor e WHERE e.id = durable_workflow.owner_id) \
             OR EXISTS (SELECT 1 FROM (SELECT e.lease_expires_ms FROM durable_executor e \
               WHERE e.id = durable_workflow.owner_id",
            $owner_lock,
            ") l WHERE l.lease_expires_ms <= ",
            $now,
            "))"
        )
    };
}

/// `tree(id)`: workflow `$1` and all its descendants.
macro_rules! subtree {
    () => {
        "WITH RECURSIVE tree(id) AS (SELECT id FROM durable_workflow WHERE id = $1 \
         UNION ALL SELECT w.id FROM durable_workflow w JOIN tree ON w.parent_id = tree.id) "
    };
}

/// The lease holder `$h` is owned by `$o` under epoch `$e`, held shared
/// while the statement runs (`$fence_row`).
macro_rules! fenced {
    ($h:literal, $o:literal, $e:literal, $fence_row:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM durable_workflow h WHERE h.id = ",
            $h,
            " AND h.owner_id = ",
            $o,
            " AND h.lease_epoch = ",
            $e,
            $fence_row,
            ")"
        )
    };
}

/// Columns of a workflow row, in the names `WorkflowRow` is decoded by.
macro_rules! workflow_columns {
    () => {
        "id, root_id, parent_id, parent_position, workflow_key, name, status, input, output, error, \
         owner_id, lease_epoch, queue, priority, concurrency_key, available_ms, wait_for, timeout_ms, \
         deadline_ms, app_version, attempts, recoveries, created_ms, started_ms, completed_ms"
    };
}

/// An entry's columns, and its child's workflow columns as `c_*`.
macro_rules! entry_with_child {
    ($child_join:literal) => {
        concat!("SELECT s.workflow_id, s.position, s.step_key, s.name, s.kind, s.status, s.output, s.error, s.retry_count, \
           s.max_retries, s.wake_ms, s.created_ms, s.started_ms, s.completed_ms, \
           c.id AS c_id, c.root_id AS c_root_id, c.parent_id AS c_parent_id, \
           c.parent_position AS c_parent_position, c.workflow_key AS c_workflow_key, c.name AS c_name, \
           c.status AS c_status, c.input AS c_input, c.output AS c_output, c.error AS c_error, \
           c.owner_id AS c_owner_id, c.lease_epoch AS c_lease_epoch, c.queue AS c_queue, \
           c.priority AS c_priority, c.concurrency_key AS c_concurrency_key, \
           c.available_ms AS c_available_ms, c.wait_for AS c_wait_for, c.timeout_ms AS c_timeout_ms, \
           c.deadline_ms AS c_deadline_ms, c.app_version AS c_app_version, c.attempts AS c_attempts, \
           c.recoveries AS c_recoveries, c.created_ms AS c_created_ms, c.started_ms AS c_started_ms, \
           c.completed_ms AS c_completed_ms \
         FROM durable_step s ", $child_join)
    };
}

pub(super) use {
    dialects, entry_with_child, fenced, owner_alive, owner_dead, subtree, workflow_columns,
};
