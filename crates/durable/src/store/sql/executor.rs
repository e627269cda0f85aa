//! Executors: lease rows and heartbeats.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::dialects;
use crate::store::{ExecutorRow, Renewal, StoreResult};

pub(super) struct ExecutorSql {
    /// Register an executor or renew its lease, recording the database time
    /// of the beat: the time once the executor's row is locked, not when
    /// the statement arrived, so a beat that waited behind a lock (or was
    /// given up by its client and ran later) judges and extends the lease
    /// as of when it ran; an abandoned beat cannot revive a lease that
    /// expired while it waited. `$1` id, `$2` hostname, `$3` pid, `$4` pid start time,
    /// `$5` lease ms, `$6` whether to register anew (else a lease that has already expired is not
    /// renewed: others may have taken the work over). Returns the id when
    /// the lease is live afterwards.
    upsert: &'static str,
    /// Mark an executor dead at once. `$1` id.
    expire: &'static str,
    /// Liveness facts of the executor owning a workflow. `$1` workflow id.
    owner_of: &'static str,
    /// Executors that look alive by lease and own unfinished workflows
    /// (for the same-host process check).
    live_owners: &'static str,
}

macro_rules! executor_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        ExecutorSql {
            upsert: concat!(
                "INSERT INTO durable_executor (id, hostname, pid, pid_started, started_ms, lease_expires_ms, lock_key, beat_ms) \
                 VALUES ($1, $2, $3, $4, ", $now, ", ", $now, " + $5, NULL, ", $now, ") \
                 ON CONFLICT (id) DO UPDATE SET lease_expires_ms = ", $clock_now, " + $5, \
                   lock_key = NULL, beat_ms = ", $clock_now, " \
                 WHERE $6 OR durable_executor.lease_expires_ms > ", $clock_now, " RETURNING id"
            ),
            expire: "UPDATE durable_executor SET lease_expires_ms = 0 WHERE id = $1",
            owner_of: concat!(
                "SELECT e.id, e.hostname, e.pid, e.pid_started, \
                   CASE WHEN e.lease_expires_ms > ", $now, " THEN 1 ELSE 0 END AS alive \
                 FROM durable_workflow JOIN durable_executor e ON e.id = durable_workflow.owner_id \
                 WHERE durable_workflow.id = $1"
            ),
            live_owners: concat!(
                "SELECT e.id, e.hostname, e.pid, e.pid_started FROM durable_executor e \
                 WHERE e.lease_expires_ms > ", $now,
                " AND EXISTS (SELECT 1 FROM durable_workflow w WHERE w.owner_id = e.id \
                   AND w.status IN ('PENDING', 'RUNNING', 'PAUSED'))"
            ),
        }
    };
}

dialects! { static SQL: ExecutorSql = executor_sql; }

impl SqlStore {
    fn executor_sql(&self) -> &'static ExecutorSql {
        &SQL[self.dialect as usize]
    }

    /// Register or renew (see `upsert`); whether the lease is live now.
    pub(super) async fn upsert_executor(
        &self,
        db: &impl ConnectionTrait,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
    ) -> StoreResult<bool> {
        let values = vec![
            self.id(executor.id),
            executor.hostname.clone().into(),
            executor.pid.into(),
            executor.pid_started.into(),
            lease_ms.into(),
            (renew == Renewal::Register).into(),
        ];
        let row = self
            .query_one(db, self.executor_sql().upsert, values)
            .await?;
        Ok(row.is_some())
    }

    pub(super) async fn expire_executor_row(&self, id: Uuid) -> StoreResult<()> {
        self.execute_alone(self.executor_sql().expire, vec![self.id(id)])
            .await?;
        Ok(())
    }

    pub(super) async fn owner_of_workflow(
        &self,
        workflow: Uuid,
    ) -> StoreResult<Option<(ExecutorRow, bool)>> {
        let sql = self.executor_sql().owner_of;
        let Some(row) = self.query_one_once(sql, vec![self.id(workflow)]).await? else {
            return Ok(None);
        };
        let row = Row::new(&row, self.dialect);
        Ok(Some((row.executor()?, row.get::<i32>("alive")? == 1)))
    }

    pub(super) async fn live_owner_rows(&self) -> StoreResult<Vec<ExecutorRow>> {
        let rows = self
            .query_all_once(self.executor_sql().live_owners, vec![])
            .await?;
        Ok(rows
            .iter()
            .map(|r| Row::new(r, self.dialect).executor())
            .collect::<Result<_, _>>()?)
    }
}
