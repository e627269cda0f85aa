//! Queues and claims: enqueue, queue limits, claims of queued work and of
//! inline workflows whose owner died, and wake-up notifications.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use super::decode::Row;
use super::dialect::{dialects, owner_alive, owner_dead, workflow_columns};
use super::{Dialect, SqlStore};
use crate::error::DurableError;
use crate::faults::{self, Point};
use crate::store::{ClaimFilter, NewEnqueued, QueueLimits, StoreResult, WorkflowRow};

pub(super) struct QueueSql {
    /// Enqueue a root unless its key exists. `$1` id, `$2` key, `$3` name,
    /// `$4` input, `$5` queue, `$6` priority, `$7` concurrency key, `$8`
    /// delay ms or NULL, `$9` app version. Returns the id if created.
    enqueue: &'static str,
    /// A queue's limits. `$1` name.
    limits: &'static str,
    /// A queue's limits, row-locked for the claim transaction. `$1` name.
    lock_limits: &'static str,
    /// Declare or change a queue. `$1` name, `$2` concurrency, `$3` rate
    /// limit, `$4` rate period ms, `$5` key concurrency.
    upsert: &'static str,
    /// Workflows of a queue running under a live owner. `$1` queue.
    running: &'static str,
    /// Workflows of a queue started in the last `$2` ms. `$1` queue.
    started_since: &'static str,
    /// Claimable workflows of a queue, best first: the best of those ready
    /// and the earliest of the suspended ones that are due (two index
    /// ranges, so sleepers not yet due are never read). `$1` queue, `$2`
    /// JSON array of the names this executor runs, `$3` its app version,
    /// `$4` whether any version will do, `$5` limit, `$6` the claimer.
    candidates: &'static str,
    /// As `candidates` for a queue with a per-key limit (`$7`): the best
    /// claimable workflow of each key below its limit (running under a
    /// live owner), and the best ones without a key. At most one per key:
    /// the claim asks again after claiming, when a key may take more. Reads
    /// one index entry per key with work, whatever the backlog behind a key
    /// (index `durable_workflow_key_claim`).
    keyed_candidates: &'static str,
    /// Inline roots whose owner died, for executors that run their
    /// function. `$1` names, `$2` app version, `$3` any version, `$4`
    /// limit, `$5` the claimer.
    orphans: &'static str,
    /// Claim one workflow. `$1` id, `$2` owner, `$3` app version.
    claim_one: &'static str,
    /// Claim the best candidate of a queue without limits in one
    /// statement (no transaction, no lock on the queue's row: `SKIP
    /// LOCKED` keeps two claimers apart). Claims nothing if the queue has
    /// a limit by now. `$1` to `$4` as `candidates`, `$5` the claimer.
    ///
    /// Its limit is the literal 1, not a parameter: it runs on the
    /// engine's connections, which plan each statement once, generically
    /// (see `hot`), and a generic plan of a `LIMIT $n` is made for a tenth
    /// of the rows.
    claim_unlimited: &'static str,
}

/// Claimable by the executor `$me`: active, not owned by a live executor
/// nor by `$me` itself (its own work is running in its process, even when
/// its lease looks lapsed, as after a database restart: taking it again
/// would run it twice), and due.
macro_rules! claimable {
    ($now:literal, $owner_lock:literal, $me:literal) => {
        concat!(
            "status IN ('PENDING', 'RUNNING') AND (owner_id IS NULL OR owner_id <> ",
            $me,
            " AND ",
            owner_dead!($now, $owner_lock),
            ") AND (available_ms IS NULL OR available_ms <= ",
            $now,
            ")"
        )
    };
}

/// The suspended workflows of `range` that are due (`durable_workflow_due`),
/// as two index ranges whose bounds are index conditions: those woken
/// (`available_ms` NULL, which sorts after every time) and those whose
/// time has come, earliest first. (With `available_ms IS NULL OR
/// available_ms <= now` in one range, SQLite read every sleeper not yet due
/// on each claim: 10,000 asleep, 0.8 ms against 0.02 ms; PostgreSQL
/// combined two bitmap scans and sorted, 0.27 ms against 0.05 ms with
/// 3,000 asleep.) `cols` are selected; `$names`, `($version, $any)`,
/// `$limit` and `$me` are the claim's parameters.
macro_rules! due {
    ($now:literal, $skip_locked:literal, $owner_lock:literal, ($lo:literal, $lc:literal), $range:literal, $cols:literal, $names:literal, ($version:literal, $any:literal), $limit:literal, $me:literal) => {
        concat!(
            "SELECT ",
            $cols,
            " FROM (SELECT ",
            $cols,
            " FROM durable_workflow WHERE ",
            $range,
            " AND wait_for IS NOT NULL AND available_ms IS NULL AND ",
            claimable_by_name!($now, $owner_lock, $me, ($lo, $lc), $names, ($version, $any)),
            " LIMIT ",
            $limit,
            $skip_locked,
            ") woken UNION ALL ",
            "SELECT ",
            $cols,
            " FROM (SELECT ",
            $cols,
            " FROM durable_workflow WHERE ",
            $range,
            " AND wait_for IS NOT NULL AND available_ms <= ",
            $now,
            " AND ",
            claimable_by_name!($now, $owner_lock, $me, ($lo, $lc), $names, ($version, $any)),
            " ORDER BY available_ms LIMIT ",
            $limit,
            $skip_locked,
            ") timed"
        )
    };
}

/// Claimable by `$me` (see `claimable!`), of a function in the JSON
/// array `$names`, and of the executor's version (`$version`, or any with
/// `$any`) or of none.
macro_rules! claimable_by_name {
    ($now:literal, $owner_lock:literal, $me:literal, ($lo:literal, $lc:literal), $names:literal, ($version:literal, $any:literal)) => {
        concat!(
            claimable!($now, $owner_lock, $me),
            " AND name IN ",
            $lo,
            $names,
            $lc,
            " AND (app_version IS NULL OR app_version = ",
            $version,
            " OR ",
            $any,
            ")"
        )
    };
}

/// A queue's claimable workflows, best first: the best of those ready and
/// of the suspended ones that are due (index ranges only, so sleepers not
/// yet due are never read). Parameters as [`QueueSql::candidates`], the
/// limit `$limit` and the claimer `$me`.
macro_rules! candidates {
    ($now:literal, $skip_locked:literal, $owner_lock:literal, ($lo:literal, $lc:literal), ($pn_from:literal, $pn_match:literal), $limit:literal, $me:literal) => {
        concat!(
            "SELECT id FROM (SELECT id, priority, created_ms FROM ",
            $pn_from,
            "(SELECT id, priority, created_ms \
               FROM durable_workflow WHERE queue = $1 AND ",
            $pn_match,
            " AND wait_for IS NULL AND ",
            claimable!($now, $owner_lock, $me),
            "  AND (app_version IS NULL OR app_version = $3 OR $4) \
               ORDER BY priority DESC, created_ms, id LIMIT ",
            $limit,
            $skip_locked,
            ") ready \
                 UNION ALL ",
            due!(
                $now,
                $skip_locked,
                $owner_lock,
                ($lo, $lc),
                "queue = $1",
                "id, priority, created_ms",
                "$2",
                ("$3", "$4"),
                $limit,
                $me
            ),
            ") c ORDER BY priority DESC, created_ms, id LIMIT ",
            $limit
        )
    };
}

/// What claiming sets on a workflow row: the new owner (`$owner`), a new
/// lease epoch, RUNNING, one more attempt, a recovery when it had an
/// owner, the first start, and the app version (`$version`) if it had none.
macro_rules! claim_set {
    ($now:literal, $owner:literal, $version:literal) => {
        concat!(
            "owner_id = ",
            $owner,
            ", lease_epoch = lease_epoch + 1, status = 'RUNNING', wait_for = NULL, \
             attempts = attempts + 1, \
             recoveries = recoveries + CASE WHEN owner_id IS NULL THEN 0 ELSE 1 END, \
             started_ms = COALESCE(started_ms, ",
            $now,
            "), app_version = COALESCE(app_version, ",
            $version,
            ")"
        )
    };
}

/// Whether a workflow just claimed has no journal entry (see
/// `WorkflowRow::history_empty`), known only for a first claim: nobody ran
/// it before, so no entry can be committing beside the claim, and a fork's
/// copied entries committed with its row (which the claim saw).
macro_rules! history_empty {
    () => {
        "(attempts = 1 AND NOT EXISTS (SELECT 1 FROM durable_step s \
           WHERE s.workflow_id = durable_workflow.id)) AS history_empty"
    };
}

macro_rules! queue_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        QueueSql {
            enqueue: concat!(
                "INSERT INTO durable_workflow (id, root_id, workflow_key, name, status, input, queue, priority, \
                   concurrency_key, available_ms, app_version, created_ms) \
                 SELECT $1, $1, $2, $3, 'PENDING', $4, $5, $6, $7, \
                   CASE WHEN $8 IS NULL THEN NULL ELSE clock.ms + $8 END, $9, clock.ms \
                 FROM (SELECT ", $now, " AS ms) clock WHERE TRUE \
                 ON CONFLICT (workflow_key) WHERE parent_id IS NULL DO NOTHING RETURNING id"
            ),
            limits: "SELECT concurrency, rate_limit, rate_period_ms, key_concurrency FROM durable_queue WHERE name = $1",
            lock_limits: concat!(
                "SELECT concurrency, rate_limit, rate_period_ms, key_concurrency FROM durable_queue WHERE name = $1",
                $lock_row
            ),
            upsert: "INSERT INTO durable_queue (name, concurrency, rate_limit, rate_period_ms, key_concurrency) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, \
                 rate_limit = excluded.rate_limit, rate_period_ms = excluded.rate_period_ms, \
                 key_concurrency = excluded.key_concurrency",
            running: concat!(
                "SELECT COUNT(*) AS n FROM durable_workflow WHERE queue = $1 AND status = 'RUNNING' \
                 AND owner_id IS NOT NULL AND ", owner_alive!($now)
            ),
            started_since: concat!(
                "SELECT COUNT(*) AS n FROM durable_workflow WHERE queue = $1 AND started_ms > ", $now, " - $2"
            ),
            candidates: candidates!($now, $skip_locked, $owner_lock, ($lo, $lc), ($pn_from, $pn_match), "$5", "$6"),
            claim_unlimited: concat!(
                "WITH picked AS (SELECT id FROM (",
                candidates!($now, $skip_locked, $owner_lock, ($lo, $lc), ($pn_from, $pn_match), "1", "$5"),
                ") cand WHERE EXISTS (SELECT 1 FROM durable_queue q WHERE q.name = $1 \
                   AND q.concurrency IS NULL AND q.rate_limit IS NULL AND q.key_concurrency IS NULL)) \
                 UPDATE durable_workflow SET ", claim_set!($now, "$5", "$3"),
                // The picked row is claimable and locked by this very
                // statement (a locked row's conditions are checked again on
                // its newest version), so it is updated by its id alone:
                // one primary-key probe, whatever the planner knows of the
                // table (a repeated condition on the status, or several
                // ids at once, had it read a status index or the table).
                " WHERE id = (SELECT id FROM picked) RETURNING ", workflow_columns!(), ", ", history_empty!(),
                ", ", $now, " AS claimed_ms"
            ),
            keyed_candidates: concat!(
                // The keys with claimable work, one index probe each (a
                // walk of the distinct keys, not of their workflows)...
                "WITH RECURSIVE keys(k) AS ( \
                   SELECT (SELECT concurrency_key FROM durable_workflow WHERE queue = $1 \
                     AND status IN ('PENDING', 'RUNNING') AND concurrency_key IS NOT NULL \
                     ORDER BY concurrency_key LIMIT 1) \
                   UNION ALL SELECT (SELECT concurrency_key FROM durable_workflow WHERE queue = $1 \
                     AND status IN ('PENDING', 'RUNNING') AND concurrency_key > keys.k \
                     ORDER BY concurrency_key LIMIT 1) FROM keys WHERE keys.k IS NOT NULL), \
                 heads AS (SELECT (SELECT id FROM durable_workflow WHERE queue = $1 \
                     AND concurrency_key = keys.k AND ",
                claimable_by_name!($now, $owner_lock, "$6", ($lo, $lc), "$2", ("$3", "$4")),
                "    ORDER BY priority DESC, created_ms, id LIMIT 1) AS id \
                   FROM keys WHERE keys.k IS NOT NULL \
                   AND (SELECT COUNT(*) FROM durable_workflow WHERE queue = $1 AND status = 'RUNNING' \
                     AND concurrency_key = keys.k AND owner_id IS NOT NULL AND ", owner_alive!($now), ") < $7) \
                 SELECT id FROM (SELECT w.id, w.priority, w.created_ms \
                   FROM heads JOIN durable_workflow w ON w.id = heads.id \
                 UNION ALL SELECT id, priority, created_ms FROM (SELECT id, priority, created_ms \
                   FROM durable_workflow WHERE queue = $1 AND concurrency_key IS NULL \
                   AND ", claimable_by_name!($now, $owner_lock, "$6", ($lo, $lc), "$2", ("$3", "$4")),
                "  ORDER BY priority DESC, created_ms, id LIMIT $5) unkeyed) c \
                 ORDER BY priority DESC, created_ms, id LIMIT $5"
            ),
            orphans: concat!(
                "SELECT id FROM (SELECT id, created_ms FROM (SELECT id, created_ms FROM durable_workflow \
                   WHERE queue IS NULL AND parent_id IS NULL AND wait_for IS NULL AND ",
                claimable_by_name!($now, $owner_lock, "$5", ($lo, $lc), "$1", ("$2", "$3")),
                "  ORDER BY created_ms, id LIMIT $4", $skip_locked, ") ready \
                 UNION ALL ",
                due!($now, $skip_locked, $owner_lock, ($lo, $lc), "queue IS NULL AND parent_id IS NULL", "id, created_ms", "$1", ("$2", "$3"), "$4", "$5"),
                ") c ORDER BY created_ms, id LIMIT $4"
            ),
            claim_one: concat!(
                "UPDATE durable_workflow SET ", claim_set!($now, "$2", "$3"),
                " WHERE id = $1 AND ", claimable!($now, $owner_lock, "$2"), " RETURNING ", workflow_columns!(),
                ", ", history_empty!(), ", ", $now, " AS claimed_ms"
            ),
        }
    };
}

dialects! { static SQL: QueueSql = queue_sql; }

/// PostgreSQL only, first in a claim transaction: bounds on how long it
/// may wait for the queue's row lock (another claimer's) and sit idle
/// holding it (its claimer stopped or stalled: the server ends that
/// session and the lock goes with it). Claims take milliseconds; without
/// these, one stopped worker pinned a queue's row, and every other
/// worker of the queue, for as long as it was stopped. And no JIT: the
/// claim queries read a few index entries, but their cost estimates on a
/// large backlog pass `jit_above_cost`, and compiling them took 1.2 s of
/// every claim behind 100,000 waiting workflows. And generic plans, as on
/// the engine's own connections (see `hot`): these transactions run on the
/// user's pool, where PostgreSQL planned the claim queries afresh for a
/// quarter to nine tenths of their calls in a full bench run (1.0 to
/// 1.5 ms of planning each, against 0.04 to 0.3 ms of execution).
const PG_BOUND_CLAIM: &str = "SELECT set_config('lock_timeout', '2000', true), \
     set_config('idle_in_transaction_session_timeout', '2000', true), \
     set_config('jit', 'off', true), \
     set_config('plan_cache_mode', 'force_generic_plan', true)";

/// PostgreSQL only: wake executors listening for new work. `$1` queue.
const PG_NOTIFY: &str = "SELECT pg_notify('durable_wakeup', $1)";

/// The channel executors `LISTEN` on.
const PG_WAKEUP_CHANNEL: &str = "durable_wakeup";

/// The queues a store last saw without limits, so their claims can skip the
/// claim transaction. A queue that gets limits is noticed by the next claim
/// that finds nothing in one statement (the statement checks the limits
/// itself, so it never claims past them once they are committed).
#[derive(Debug, Default)]
pub(super) struct UnlimitedQueues(std::sync::Mutex<std::collections::HashSet<String>>);

impl UnlimitedQueues {
    fn seen(&self, queue: &str) -> bool {
        self.names().contains(queue)
    }

    fn note(&self, queue: &str, unlimited: bool) {
        let mut names = self.names();
        if !unlimited {
            names.remove(queue);
        } else if !names.contains(queue) {
            names.insert(queue.to_string());
        }
    }

    fn names(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SqlStore {
    fn queue_sql(&self) -> &'static QueueSql {
        &SQL[self.dialect as usize]
    }

    pub(super) async fn enqueue_workflow(
        &self,
        work: &NewEnqueued<'_>,
    ) -> StoreResult<Option<Uuid>> {
        let row = self
            .query_one_alone(
                self.queue_sql().enqueue,
                self.enqueue_values(work, self.fresh_id()),
            )
            .await?;
        Ok(row
            .as_ref()
            .map(|r| Row::new(r, self.dialect).id("id"))
            .transpose()?)
    }

    /// [`SqlStore::enqueue_workflow`] inside `txn` with id `id`; whether it
    /// was created (`false`: the key exists).
    pub(super) async fn enqueue_in(
        &self,
        txn: &DatabaseTransaction,
        work: &NewEnqueued<'_>,
        id: Uuid,
    ) -> StoreResult<bool> {
        let row = self
            .query_one(txn, self.queue_sql().enqueue, self.enqueue_values(work, id))
            .await?;
        Ok(row.is_some())
    }

    fn enqueue_values(&self, work: &NewEnqueued<'_>, id: Uuid) -> Vec<Value> {
        vec![
            self.id(id),
            work.key.into(),
            work.name.into(),
            work.input.clone().into(),
            work.queue.into(),
            work.priority.into(),
            work.concurrency_key.clone().into(),
            work.delay_ms.into(),
            work.app_version.clone().into(),
        ]
    }

    pub(super) async fn queue_limits(
        &self,
        db: &impl ConnectionTrait,
        name: &str,
        lock: bool,
    ) -> StoreResult<Option<QueueLimits>> {
        let s = self.queue_sql();
        let sql = if lock { s.lock_limits } else { s.limits };
        let Some(row) = self.query_one(db, sql, vec![name.into()]).await? else {
            return Ok(None);
        };
        let r = Row::new(&row, self.dialect);
        Ok(Some(QueueLimits {
            concurrency: r.get("concurrency")?,
            rate_limit: r.get("rate_limit")?,
            rate_period_ms: r.get("rate_period_ms")?,
            key_concurrency: r.get("key_concurrency")?,
        }))
    }

    pub(super) async fn upsert_queue(&self, name: &str, limits: &QueueLimits) -> StoreResult<()> {
        let values = vec![
            name.into(),
            limits.concurrency.into(),
            limits.rate_limit.into(),
            limits.rate_period_ms.into(),
            limits.key_concurrency.into(),
        ];
        self.execute_alone(self.queue_sql().upsert, values).await?;
        Ok(())
    }

    async fn count(
        &self,
        txn: &DatabaseTransaction,
        sql: &str,
        values: Vec<Value>,
    ) -> StoreResult<i64> {
        let row = self.query_one(txn, sql, values).await?;
        Ok(row
            .map(|r| Row::new(&r, self.dialect).get::<i64>("n"))
            .transpose()?
            .unwrap_or(0))
    }

    /// Claim up to `want` of a queue's best candidates. A queue last seen
    /// without limits is claimed from in one statement; if that finds
    /// nothing (no work, or the queue has limits by now), or the queue has
    /// limits, one short transaction locks the queue's row, measures its
    /// limits and takes the best candidates that fit.
    pub(super) async fn claim_queue(
        &self,
        queue: &str,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        if self.unlimited.seen(queue) {
            let claimed = self.claim_unlimited(queue, owner, want, filter).await?;
            if !claimed.is_empty() {
                return Ok(claimed);
            }
        }
        self.claim_measured(queue, owner, want, filter).await
    }

    /// One workflow for a slot just freed: on a queue last seen without
    /// limits, the one statement only (finding nothing, it does not go on
    /// to the claim transaction: slots freed at once would all queue on the
    /// queue's row lock to learn that the queue is empty; the worker's loop
    /// looks next); otherwise the claim transaction.
    pub(super) async fn claim_queue_next(
        &self,
        queue: &str,
        owner: Uuid,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Option<WorkflowRow>> {
        let claimed = if self.unlimited.seen(queue) {
            self.claim_unlimited(queue, owner, 1, filter).await?
        } else {
            self.claim_measured(queue, owner, 1, filter).await?
        };
        Ok(claimed.into_iter().next())
    }

    /// A queue without limits: one statement per workflow, on the engine's
    /// own connection (no transaction, no ping), not repeated once sent
    /// (its outcome may be unknown); best first, as a transaction claims.
    /// After a workflow ends there is one slot to fill, so this is mostly
    /// one statement.
    async fn claim_unlimited(
        &self,
        queue: &str,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        let mut values = self.candidate_values(queue, filter);
        values.push(self.id(owner)); // `$5`
        let mut claimed = Vec::new();
        while claimed.len() < want {
            let Some(row) = self
                .query_one_once(self.queue_sql().claim_unlimited, values.clone())
                .await?
            else {
                break;
            };
            claimed.push(Row::new(&row, self.dialect).claimed_workflow()?);
        }
        Ok(claimed)
    }

    /// `$1` to `$4` of `candidates` and the claims built on it: what is
    /// claimed (the queue and the executor's names and version).
    fn candidate_values(&self, queue: &str, filter: &ClaimFilter<'_>) -> Vec<Value> {
        vec![
            queue.into(),
            filter.names.into(),
            filter.app_version.into(),
            filter.any_version.into(),
        ]
    }

    /// The claim transaction (see [`SqlStore::claim_queue`]); it notes
    /// whether the queue has limits for the next claim.
    async fn claim_measured(
        &self,
        queue: &str,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        let s = self.queue_sql();
        // A claim is not repeated once begun (its outcome may be unknown);
        // only a busy BEGIN is retried.
        let txn = super::retry_transient(|| self.begin_write()).await?;
        self.bound_claim(&txn).await?;
        let limits = self
            .queue_limits(&txn, queue, true)
            .await?
            .ok_or_else(|| DurableError::UnknownQueue(queue.to_string()))?;
        self.unlimited.note(queue, limits.is_unlimited());
        faults::reach(Point::ClaimLocked);
        let mut room = i64::try_from(want).unwrap_or(i64::MAX);
        if let Some(limit) = limits.concurrency {
            room =
                room.min(i64::from(limit) - self.count(&txn, s.running, vec![queue.into()]).await?);
        }
        if let (Some(limit), Some(period)) = (limits.rate_limit, limits.rate_period_ms) {
            let started = self
                .count(&txn, s.started_since, vec![queue.into(), period.into()])
                .await?;
            room = room.min(i64::from(limit) - started);
        }
        if room <= 0 {
            self.bounded(txn.commit()).await?;
            return Ok(Vec::new());
        }
        let mut values = self.candidate_values(queue, filter);
        values.extend([room.into(), self.id(owner)]); // `$5`, `$6`
        let Some(per_key) = limits.key_concurrency else {
            let candidates = self.query_all(&txn, s.candidates, values).await?;
            let claimed = self
                .claim_each(&txn, &self.ids_of(&candidates)?, owner, filter)
                .await?;
            self.bounded(txn.commit()).await?;
            return Ok(claimed);
        };
        // One workflow per key at a time: ask again while claims succeed
        // and there is room (a key under a limit above one may take more;
        // each round counts the ones just claimed as running).
        values.push(per_key.into());
        let mut claimed = Vec::new();
        loop {
            values[4] = room.into(); // `$5`, the limit
            let candidates = self
                .query_all(&txn, s.keyed_candidates, values.clone())
                .await?;
            let round = self
                .claim_each(&txn, &self.ids_of(&candidates)?, owner, filter)
                .await?;
            let got = round.len();
            claimed.extend(round);
            room -= i64::try_from(got).unwrap_or(i64::MAX);
            // Under a limit of one a key is full once claimed: another
            // round would find nothing new.
            if got == 0 || room <= 0 || per_key <= 1 {
                break;
            }
        }
        self.bounded(txn.commit()).await?;
        Ok(claimed)
    }

    /// Inline roots whose owner died, for executors that have their
    /// function: no queue, no limits.
    pub(super) async fn claim_orphan_roots(
        &self,
        owner: Uuid,
        want: usize,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        // A claim is not repeated once begun (its outcome may be unknown);
        // only a busy BEGIN is retried.
        let txn = super::retry_transient(|| self.begin_write()).await?;
        self.bound_claim(&txn).await?;
        let values = vec![
            filter.names.into(),
            filter.app_version.into(),
            filter.any_version.into(),
            i64::try_from(want).unwrap_or(i64::MAX).into(),
            self.id(owner),
        ];
        let candidates = self
            .query_all(&txn, self.queue_sql().orphans, values)
            .await?;
        let claimed = self
            .claim_each(&txn, &self.ids_of(&candidates)?, owner, filter)
            .await?;
        self.bounded(txn.commit()).await?;
        Ok(claimed)
    }

    /// See [`PG_BOUND_CLAIM`].
    pub(super) async fn bound_claim(&self, txn: &DatabaseTransaction) -> StoreResult<()> {
        if self.dialect == Dialect::Postgres {
            self.query_one(txn, PG_BOUND_CLAIM, vec![]).await?;
        }
        Ok(())
    }

    async fn claim_each(
        &self,
        txn: &DatabaseTransaction,
        ids: &[Uuid],
        owner: Uuid,
        filter: &ClaimFilter<'_>,
    ) -> StoreResult<Vec<WorkflowRow>> {
        let mut claimed = Vec::new();
        for id in ids {
            let values = vec![self.id(*id), self.id(owner), filter.app_version.into()];
            if let Some(row) = self
                .query_one(txn, self.queue_sql().claim_one, values)
                .await?
            {
                claimed.push(Row::new(&row, self.dialect).claimed_workflow()?);
            }
        }
        Ok(claimed)
    }

    pub(super) async fn notify_queue(&self, queue: &str) -> StoreResult<()> {
        if self.dialect == Dialect::Postgres {
            self.query_one_once(PG_NOTIFY, vec![queue.into()]).await?;
        }
        Ok(())
    }

    /// A wake-up hint after a commit made work claimable. A lost hint
    /// costs latency only (workers poll), so a failure is logged, not returned.
    pub(super) async fn hint(&self, queue: Option<&str>) {
        let queue = queue.unwrap_or(crate::queue::DEFAULT_QUEUE);
        if let Err(err) = self.notify_queue(queue).await {
            tracing::debug!(queue, error = %err, "wake-up notification failed");
        }
    }

    /// PostgreSQL: `LISTEN durable_wakeup` on a connection of its own,
    /// reconnecting after errors. A hint only: workers poll as well, so a
    /// lost notification or listener costs latency, never work.
    pub(super) async fn listen_for_work(&self, wake: Arc<Notify>) {
        use sea_orm::sqlx::postgres::PgListener;
        if self.dialect != Dialect::Postgres {
            return;
        }
        let pool = self.db.get_postgres_connection_pool().clone();
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => {
                    if let Err(err) = listener.listen(PG_WAKEUP_CHANNEL).await {
                        tracing::warn!(error = %err, "LISTEN failed");
                    } else {
                        while listener.recv().await.is_ok() {
                            wake.notify_one();
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot open the LISTEN connection"),
            }
            tokio::time::sleep(super::jittered(Duration::from_secs(2))).await;
        }
    }
}
