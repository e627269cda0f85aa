//! Every SQL statement of the SDK, written once and instantiated per backend.
//!
//! The two backends speak the same SQL here except for three fragments,
//! passed in as literals: the database clock in epoch milliseconds, the row
//! lock taken by management calls, and the lock that fences a checkpoint.
//! Values are always bound (`$1`, `$2`, ... on both backends); the statements
//! are compile-time constants, so no value ever becomes SQL text.

/// The statements, as instantiated for one backend.
pub(crate) struct Statements {
    /// Register or heartbeat an executor.
    /// `$1` id, `$2` hostname, `$3` pid, `$4` pid start time, `$5` lease ms,
    /// `$6` advisory lock key (PostgreSQL) or NULL.
    pub(crate) upsert_executor: &'static str,
    /// Mark an executor dead at once. `$1` id.
    pub(crate) expire_executor: &'static str,
    /// Liveness facts of the executor owning a task. `$1` task id.
    pub(crate) owner_of: &'static str,
    /// Create or claim a root workflow. `$1` new id, `$2` key, `$3` name,
    /// `$4` input, `$5` owner. Returns a task row; none if it is owned by a
    /// live executor or finished.
    pub(crate) claim_root: &'static str,
    /// Create or claim a child workflow, fenced by the parent's lease.
    /// `$1` new id, `$2` root id, `$3` parent id, `$4` key, `$5` name,
    /// `$6` position, `$7` input, `$8` owner, `$9` parent lease epoch.
    pub(crate) claim_child: &'static str,
    /// A task row by root key. `$1` key.
    pub(crate) root_by_key: &'static str,
    /// A task row by id. `$1` id.
    pub(crate) task_by_id: &'static str,
    /// A task row by parent and key. `$1` parent id, `$2` key.
    pub(crate) task_by_key: &'static str,
    /// One page of a workflow's history by call position. `$1` workflow
    /// id, `$2` first position, `$3` page size.
    pub(crate) history_page: &'static str,
    /// The one read before a fresh step: the workflow's own lease, the most
    /// blocking status and the earliest deadline along its ancestor chain,
    /// the database clock, and any record of the step made since history
    /// was loaded. `$1` workflow id, `$2` step key.
    pub(crate) step_check: &'static str,
    /// Write a step's checkpoint, fenced by the workflow's lease; never
    /// overwrites a finished record. `$1` id, `$2` root, `$3` parent, `$4`
    /// key, `$5` name, `$6` kind, `$7` status, `$8` position, `$9` output,
    /// `$10` error, `$11` retry count, `$12` max retries, `$13` started ms,
    /// `$14` owner, `$15` lease epoch. Returns the id when written.
    pub(crate) commit_step: &'static str,
    /// Finish a workflow, fenced by its lease. `$1` id, `$2` status, `$3`
    /// output, `$4` error, `$5` owner, `$6` lease epoch.
    pub(crate) finish_workflow: &'static str,
    /// Fix the deadline the first time a timeout is set. `$1` id, `$2` timeout ms.
    pub(crate) set_timeout: &'static str,
    /// Status of a task, row-locked for a management call. `$1` id.
    pub(crate) lock_status: &'static str,
    /// Pause a task and its active descendants. `$1` id.
    pub(crate) pause_tree: &'static str,
    /// Resume a paused task (RUNNING) and its paused descendants (PENDING). `$1` id.
    pub(crate) resume_tree: &'static str,
    /// Cancel a task and its unfinished descendants. `$1` id.
    pub(crate) cancel_tree: &'static str,
    /// Release the workflows of dead executors. Returns their ids.
    pub(crate) release_dead: &'static str,
    /// Executors that look alive by lease but own active workflows (for the
    /// same-host process check).
    pub(crate) live_owners: &'static str,
}

/// Columns of a task row, in the order `TaskRow::from_row` reads them.
macro_rules! task_columns {
    () => {
        "id, task_key, name, kind, status, sequence, output, error, retry_count, lease_epoch"
    };
}

/// Rows of a subtree: `tree(id)` holds `$1` and all its descendants.
macro_rules! subtree {
    () => {
        "WITH RECURSIVE tree(id) AS (SELECT id FROM durable_task WHERE id = $1 \
         UNION ALL SELECT t.id FROM durable_task t JOIN tree ON t.parent_id = tree.id) \
         SELECT id FROM tree"
    };
}

/// The owner of `durable_task` is dead: no executor row with a live lease
/// (and, on PostgreSQL, whose session still holds its advisory lock). The
/// condition under which another executor may take its workflows over.
macro_rules! owner_dead {
    ($now:literal, $lock_held:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM durable_executor e WHERE e.id = durable_task.owner_id \
             AND e.lease_expires_ms > ",
            $now,
            $lock_held,
            ")"
        )
    };
}

/// Instantiate [`Statements`] for one backend.
macro_rules! statements {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, lock_held = $lock_held:literal) => {
        $crate::store::sql::Statements {
            upsert_executor: concat!(
                "INSERT INTO durable_executor (id, hostname, pid, pid_started, started_ms, lease_expires_ms, lock_key) \
                 VALUES ($1, $2, $3, $4, ", $now, ", ", $now, " + $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET lease_expires_ms = excluded.lease_expires_ms, \
                   lock_key = excluded.lock_key"
            ),
            expire_executor: "UPDATE durable_executor SET lease_expires_ms = 0 WHERE id = $1",
            owner_of: concat!(
                "SELECT e.id, e.hostname, e.pid, e.pid_started, e.lease_expires_ms > ", $now,
                " FROM durable_task t JOIN durable_executor e ON e.id = t.owner_id WHERE t.id = $1"
            ),
            claim_root: concat!(
                "INSERT INTO durable_task (id, root_id, task_key, name, kind, status, input, owner_id, lease_epoch, created_ms, started_ms) \
                 VALUES ($1, $1, $2, $3, 'WORKFLOW', 'RUNNING', $4, $5, 1, ", $now, ", ", $now, ") \
                 ON CONFLICT (task_key) WHERE parent_id IS NULL DO UPDATE SET \
                   owner_id = excluded.owner_id, \
                   lease_epoch = CASE WHEN durable_task.owner_id = excluded.owner_id \
                     THEN durable_task.lease_epoch ELSE durable_task.lease_epoch + 1 END, \
                   status = CASE WHEN durable_task.status = 'PENDING' THEN 'RUNNING' ELSE durable_task.status END, \
                   started_ms = COALESCE(durable_task.started_ms, excluded.started_ms) \
                 WHERE durable_task.status IN ('PENDING', 'RUNNING', 'PAUSED') \
                   AND (durable_task.owner_id IS NULL OR durable_task.owner_id = excluded.owner_id OR ",
                owner_dead!($now, $lock_held), ") \
                 RETURNING ", task_columns!()
            ),
            claim_child: concat!(
                "INSERT INTO durable_task (id, root_id, parent_id, task_key, name, kind, status, sequence, input, owner_id, lease_epoch, created_ms, started_ms) \
                 SELECT $1, $2, $3, $4, $5, 'WORKFLOW', 'RUNNING', $6, $7, $8, 1, ", $now, ", ", $now,
                " WHERE EXISTS (SELECT 1 FROM durable_task p WHERE p.id = $3 AND p.owner_id = $8 AND p.lease_epoch = $9) \
                 ON CONFLICT (parent_id, task_key) WHERE parent_id IS NOT NULL DO UPDATE SET \
                   owner_id = excluded.owner_id, \
                   lease_epoch = CASE WHEN durable_task.owner_id = excluded.owner_id \
                     THEN durable_task.lease_epoch ELSE durable_task.lease_epoch + 1 END, \
                   status = CASE WHEN durable_task.status = 'PENDING' THEN 'RUNNING' ELSE durable_task.status END, \
                   started_ms = COALESCE(durable_task.started_ms, excluded.started_ms) \
                 WHERE durable_task.kind = 'WORKFLOW' AND durable_task.status IN ('PENDING', 'RUNNING', 'PAUSED') \
                   AND (durable_task.owner_id IS NULL OR durable_task.owner_id = excluded.owner_id OR ",
                owner_dead!($now, $lock_held), ") \
                 RETURNING ", task_columns!()
            ),
            root_by_key: concat!("SELECT ", task_columns!(), " FROM durable_task WHERE parent_id IS NULL AND task_key = $1"),
            task_by_id: concat!("SELECT ", task_columns!(), " FROM durable_task WHERE id = $1"),
            task_by_key: concat!("SELECT ", task_columns!(), " FROM durable_task WHERE parent_id = $1 AND task_key = $2"),
            history_page: concat!(
                "SELECT ", task_columns!(), " FROM durable_task \
                 WHERE parent_id = $1 AND sequence >= $2 ORDER BY sequence LIMIT $3"
            ),
            step_check: concat!(
                "WITH RECURSIVE chain(id, parent_id, status, deadline_ms) AS ( \
                   SELECT id, parent_id, status, deadline_ms FROM durable_task WHERE id = $1 \
                   UNION ALL SELECT t.id, t.parent_id, t.status, t.deadline_ms \
                   FROM durable_task t JOIN chain c ON t.id = c.parent_id) \
                 SELECT w.owner_id, w.lease_epoch, w.status, \
                   (SELECT c.status FROM chain c WHERE c.status IN ('CANCELLED', 'PAUSED') \
                     ORDER BY CASE c.status WHEN 'CANCELLED' THEN 0 ELSE 1 END LIMIT 1), \
                   (SELECT MIN(c.deadline_ms) FROM chain c), ", $now, ", \
                   s.status, s.output, s.error, s.retry_count, s.kind \
                 FROM durable_task w LEFT JOIN durable_task s ON s.parent_id = w.id AND s.task_key = $2 \
                 WHERE w.id = $1"
            ),
            commit_step: concat!(
                "INSERT INTO durable_task (id, root_id, parent_id, task_key, name, kind, status, sequence, output, error, retry_count, max_retries, created_ms, started_ms, completed_ms) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, ", $now, ", $13, \
                   CASE WHEN $7 IN ('COMPLETED', 'FAILED') THEN ", $now, " END \
                 WHERE EXISTS (SELECT 1 FROM durable_task w WHERE w.id = $3 AND w.owner_id = $14 AND w.lease_epoch = $15", $fence_row, ") \
                 ON CONFLICT (parent_id, task_key) WHERE parent_id IS NOT NULL DO UPDATE SET \
                   status = excluded.status, output = excluded.output, error = excluded.error, \
                   retry_count = excluded.retry_count, completed_ms = excluded.completed_ms \
                 WHERE durable_task.status NOT IN ('COMPLETED', 'FAILED') AND durable_task.kind = excluded.kind \
                 RETURNING id"
            ),
            finish_workflow: concat!(
                "UPDATE durable_task SET status = $2, output = $3, error = $4, completed_ms = ", $now,
                " WHERE id = $1 AND owner_id = $5 AND lease_epoch = $6 AND status IN ('PENDING', 'RUNNING') RETURNING id"
            ),
            set_timeout: concat!(
                "UPDATE durable_task SET timeout_ms = COALESCE(timeout_ms, $2), \
                 deadline_ms = COALESCE(deadline_ms, ", $now, " + $2) WHERE id = $1 RETURNING deadline_ms"
            ),
            lock_status: concat!("SELECT status FROM durable_task WHERE id = $1", $lock_row),
            pause_tree: concat!(
                "UPDATE durable_task SET status = 'PAUSED' WHERE status IN ('PENDING', 'RUNNING') AND id IN (",
                subtree!(), ")"
            ),
            resume_tree: concat!(
                "UPDATE durable_task SET status = CASE WHEN id = $1 THEN 'RUNNING' ELSE 'PENDING' END \
                 WHERE status = 'PAUSED' AND id IN (", subtree!(), ")"
            ),
            cancel_tree: concat!(
                "UPDATE durable_task SET status = 'CANCELLED', completed_ms = ", $now,
                " WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') AND id IN (", subtree!(), ")"
            ),
            release_dead: concat!(
                "UPDATE durable_task SET owner_id = NULL, \
                   status = CASE WHEN status = 'RUNNING' THEN 'PENDING' ELSE status END \
                 WHERE kind = 'WORKFLOW' AND status IN ('PENDING', 'RUNNING', 'PAUSED') \
                   AND owner_id IS NOT NULL AND ", owner_dead!($now, $lock_held), " RETURNING id"
            ),
            live_owners: concat!(
                "SELECT e.id, e.hostname, e.pid, e.pid_started FROM durable_executor e \
                 WHERE e.lease_expires_ms > ", $now,
                " AND EXISTS (SELECT 1 FROM durable_task t WHERE t.owner_id = e.id \
                   AND t.kind = 'WORKFLOW' AND t.status IN ('PENDING', 'RUNNING', 'PAUSED'))"
            ),
        }
    };
}

/// PostgreSQL: the clock is `clock_timestamp()`. A checkpoint write holds
/// the workflow row `FOR SHARE` while it checks the lease, so a takeover (an
/// `UPDATE` of that row) waits for it, or it sees the new epoch and writes
/// nothing; management calls lock the row `FOR UPDATE`.
pub(crate) static POSTGRES: Statements = statements!(
    now = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
    lock_row = " FOR UPDATE",
    fence_row = " FOR SHARE",
    lock_held = " AND (e.lock_key IS NULL OR EXISTS (SELECT 1 FROM pg_locks l \
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
        AND l.classid::BIGINT = 1685418593 AND l.objid::BIGINT = e.lock_key \
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())))"
);

/// PostgreSQL only: take (or confirm) this session's advisory lock
/// `(1685418593, $1)`; the first number is the namespace of `durable`.
/// True when this session holds it afterwards.
pub(crate) const PG_HOLD_LOCK: &str = "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks \
     WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() AND objsubid = 2 \
     AND classid::BIGINT = 1685418593 AND objid::BIGINT = $1) \
     THEN TRUE ELSE pg_try_advisory_lock(1685418593, $1::INT) END";

/// SQLite: one writer at a time, so statements are already serialized and
/// need no row locks.
pub(crate) static SQLITE: Statements = statements!(
    now = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    lock_row = "",
    fence_row = "",
    lock_held = ""
);
