//! Every SQL statement of the SDK, written once and instantiated per backend.
//!
//! The two backends speak the same SQL here except for a few fragments,
//! passed in as literals: the database clock in epoch milliseconds, row
//! locks (management calls, the fence of a checkpoint, claims), the
//! liveness of an executor's session, and how a JSON array parameter is
//! read as a set.
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
    /// live executor, finished, or runs another workflow name.
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
    /// `step_check` for a root workflow, which has no ancestors: the same
    /// columns from one primary-key lookup.
    pub(crate) step_check_root: &'static str,
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
    /// Enqueue a root workflow unless its key exists. `$1` id, `$2` key,
    /// `$3` name, `$4` input, `$5` queue, `$6` priority, `$7` concurrency
    /// key, `$8` delay ms or NULL, `$9` app version. Returns the id if created.
    pub(crate) enqueue: &'static str,
    /// A queue's limits, row-locked for the claim transaction. `$1` name.
    pub(crate) lock_queue: &'static str,
    /// A queue's limits, unlocked. `$1` name.
    pub(crate) queue_by_name: &'static str,
    /// Declare or change a queue. `$1` name, `$2` concurrency, `$3` rate
    /// limit, `$4` rate period ms, `$5` key concurrency.
    pub(crate) upsert_queue: &'static str,
    /// Workflows of a queue running under a live owner. `$1` queue.
    pub(crate) running_in_queue: &'static str,
    /// Workflows of a queue started in the last `$2` ms. `$1` queue.
    pub(crate) started_since: &'static str,
    /// Claimable workflows of a queue with a per-key limit, best first,
    /// leaving out those whose key is at its limit (counting the ones
    /// running and the better ones of the same key). Parameters as
    /// `queue_candidates`, and `$6` the per-key limit.
    pub(crate) keyed_candidates: &'static str,
    /// Claimable workflows of a queue, best first. `$1` queue, `$2` JSON
    /// array of the workflow names this executor runs, `$3` its app
    /// version, `$4` whether any version will do, `$5` limit.
    pub(crate) queue_candidates: &'static str,
    /// Workflows started inline whose owner died, for executors that run
    /// their function. `$1` names, `$2` app version, `$3` any version, `$4` limit.
    pub(crate) orphan_candidates: &'static str,
    /// Claim one workflow for an executor. `$1` id, `$2` owner, `$3` app
    /// version. Returns the task row and its input.
    pub(crate) claim_one: &'static str,
    /// Give up one workflow so another executor can run it. `$1` id, `$2`
    /// owner, `$3` lease epoch.
    pub(crate) release_one: &'static str,
    /// Give up every workflow an executor owns. `$1` owner.
    pub(crate) release_owned: &'static str,
}

/// Columns of a task row, in the order `TaskRow::from_row` reads them.
macro_rules! task_columns {
    () => {
        "id, task_key, name, kind, status, sequence, output, error, retry_count, lease_epoch, input, queue"
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

/// The owner of `durable_task` is alive: an executor row with a live lease
/// (and, on PostgreSQL, whose session still holds its advisory lock).
macro_rules! owner_alive {
    ($now:literal, $lock_held:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM durable_executor e WHERE e.id = durable_task.owner_id \
             AND e.lease_expires_ms > ",
            $now,
            $lock_held,
            ")"
        )
    };
}

/// The owner of `durable_task` is dead: the condition under which another
/// executor may take its workflows over.
macro_rules! owner_dead {
    ($now:literal, $lock_held:literal) => {
        concat!("NOT ", owner_alive!($now, $lock_held))
    };
}

/// Instantiate [`Statements`] for one backend.
macro_rules! statements {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, lock_held = $lock_held:literal, skip_locked = $skip_locked:literal, json_list = ($list_open:literal, $list_close:literal)) => {
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
                   AND durable_task.name = excluded.name \
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
            step_check_root: concat!(
                "SELECT w.owner_id, w.lease_epoch, w.status, \
                   CASE WHEN w.status IN ('CANCELLED', 'PAUSED') THEN w.status END, w.deadline_ms, ", $now, ", \
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
            enqueue: concat!(
                "INSERT INTO durable_task (id, root_id, task_key, name, kind, status, input, queue, priority, \
                 concurrency_key, available_ms, app_version, created_ms) \
                 VALUES ($1, $1, $2, $3, 'WORKFLOW', 'PENDING', $4, $5, $6, $7, \
                 CASE WHEN $8 IS NULL THEN NULL ELSE ", $now, " + $8 END, $9, ", $now, ") \
                 ON CONFLICT (task_key) WHERE parent_id IS NULL DO NOTHING RETURNING id"
            ),
            lock_queue: concat!(
                "SELECT concurrency, rate_limit, rate_period_ms, key_concurrency FROM durable_queue WHERE name = $1",
                $lock_row
            ),
            queue_by_name: "SELECT concurrency, rate_limit, rate_period_ms, key_concurrency FROM durable_queue WHERE name = $1",
            upsert_queue: "INSERT INTO durable_queue (name, concurrency, rate_limit, rate_period_ms, key_concurrency) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, \
                 rate_limit = excluded.rate_limit, rate_period_ms = excluded.rate_period_ms, \
                 key_concurrency = excluded.key_concurrency",
            running_in_queue: concat!(
                "SELECT COUNT(*) FROM durable_task WHERE parent_id IS NULL AND queue = $1 \
                 AND status = 'RUNNING' AND owner_id IS NOT NULL AND ", owner_alive!($now, $lock_held)
            ),
            started_since: concat!(
                "SELECT COUNT(*) FROM durable_task WHERE parent_id IS NULL AND queue = $1 AND started_ms > ",
                $now, " - $2"
            ),
            keyed_candidates: concat!(
                "SELECT id, concurrency_key FROM (SELECT id, concurrency_key, priority, created_ms, \
                   ROW_NUMBER() OVER (PARTITION BY concurrency_key ORDER BY priority DESC, created_ms, id) AS rank_in_key \
                   FROM durable_task WHERE parent_id IS NULL AND queue = $1 \
                   AND status IN ('PENDING', 'RUNNING') AND (owner_id IS NULL OR ", owner_dead!($now, $lock_held), ") \
                   AND (available_ms IS NULL OR available_ms <= ", $now, ") \
                   AND name IN ", $list_open, "$2", $list_close, " AND (app_version IS NULL OR app_version = $3 OR $4)) c \
                 WHERE c.concurrency_key IS NULL OR c.rank_in_key + (SELECT COUNT(*) FROM durable_task \
                   WHERE parent_id IS NULL AND queue = $1 AND status = 'RUNNING' \
                   AND concurrency_key = c.concurrency_key AND owner_id IS NOT NULL AND ",
                owner_alive!($now, $lock_held), ") <= $6 \
                 ORDER BY priority DESC, created_ms, id LIMIT $5"
            ),
            queue_candidates: concat!(
                "SELECT id, concurrency_key FROM durable_task WHERE parent_id IS NULL AND queue = $1 \
                 AND status IN ('PENDING', 'RUNNING') AND (owner_id IS NULL OR ", owner_dead!($now, $lock_held), ") \
                 AND (available_ms IS NULL OR available_ms <= ", $now, ") \
                 AND name IN ", $list_open, "$2", $list_close, " AND (app_version IS NULL OR app_version = $3 OR $4) \
                 ORDER BY priority DESC, created_ms, id LIMIT $5", $skip_locked
            ),
            orphan_candidates: concat!(
                "SELECT id, concurrency_key FROM durable_task WHERE parent_id IS NULL AND queue IS NULL \
                 AND status IN ('PENDING', 'RUNNING') AND (owner_id IS NULL OR ", owner_dead!($now, $lock_held), ") \
                 AND name IN ", $list_open, "$1", $list_close, " AND (app_version IS NULL OR app_version = $2 OR $3) \
                 ORDER BY created_ms, id LIMIT $4", $skip_locked
            ),
            claim_one: concat!(
                "UPDATE durable_task SET owner_id = $2, lease_epoch = lease_epoch + 1, status = 'RUNNING', \
                 started_ms = COALESCE(started_ms, ", $now, "), app_version = COALESCE(app_version, $3) \
                 WHERE id = $1 AND status IN ('PENDING', 'RUNNING') \
                 AND (owner_id IS NULL OR ", owner_dead!($now, $lock_held), ") RETURNING ", task_columns!()
            ),
            release_one: "UPDATE durable_task SET owner_id = NULL, \
                 status = CASE WHEN status = 'RUNNING' THEN 'PENDING' ELSE status END \
                 WHERE id = $1 AND owner_id = $2 AND lease_epoch = $3",
            release_owned: "UPDATE durable_task SET owner_id = NULL, \
                 status = CASE WHEN status = 'RUNNING' THEN 'PENDING' ELSE status END \
                 WHERE owner_id = $1 AND kind = 'WORKFLOW' AND status IN ('PENDING', 'RUNNING', 'PAUSED') RETURNING id",
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
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())))",
    skip_locked = " FOR UPDATE SKIP LOCKED",
    json_list = ("(SELECT jsonb_array_elements_text(", "::JSONB))")
);

/// PostgreSQL only: wake executors listening for new work. `$1` queue.
pub(crate) const PG_NOTIFY: &str = "SELECT pg_notify('durable_wakeup', $1)";

/// The channel executors `LISTEN` on.
pub(crate) const PG_WAKEUP_CHANNEL: &str = "durable_wakeup";

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
    lock_held = "",
    skip_locked = "",
    json_list = ("(SELECT value FROM json_each(", "))")
);
