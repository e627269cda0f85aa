//! Workflows: start a root or a child, read them, fix deadlines, finish
//! and release them.

use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::{dialects, fenced, owner_dead, workflow_columns};
use crate::status::Status;
use crate::store::{
    ChildStart, Lease, NewChild, NewRoot, Started, StoreResult, Suspension, WorkflowRow,
};

pub(super) struct WorkflowSql {
    /// Create or claim a root. `$1` new id, `$2` key, `$3` name, `$4`
    /// input, `$5` owner. Returns the row; none if it is owned by a live
    /// executor, finished, or runs another workflow name.
    start_root: &'static str,
    /// Create an inline child, fenced by the parent's lease. `$1` new id,
    /// `$2` root, `$3` parent, `$4` position, `$5` key, `$6` name, `$7`
    /// input, `$8` lease holder, `$9` owner, `$10` epoch, `$11` run unit
    /// (NULL: the root). Returns the row if created.
    insert_child: &'static str,
    /// Create a spawned child, queued to be claimed on its own, fenced by
    /// the parent's lease. As `insert_child`, with `$11` queue and `$12`
    /// app version.
    insert_spawned: &'static str,
    /// The parent's journal entry for a new child. `$1` parent, `$2`
    /// position, `$3` key, `$4` name, `$5` child id, `$6` started ms, `$7` kind.
    child_entry: &'static str,
    by_id: &'static str,
    root_by_key: &'static str,
    /// Fix the deadline the first time a timeout is set. `$1` id, `$2` ms.
    set_timeout: &'static str,
    /// Complete or fail, fenced. `$1` id, `$2` status, `$3` output, `$4`
    /// error, `$5` holder, `$6` owner, `$7` epoch.
    finish: &'static str,
    /// Lock the row of a workflow we own. `$1` id, `$2` owner, `$3` epoch.
    lock_owned: &'static str,
    /// Give a workflow up, maybe until a time or an event. `$1` id, `$2`
    /// owner, `$3` epoch, `$4` available from (ms) or NULL, `$5` waits for.
    release: &'static str,
    /// Release the workflows of dead executors. Returns their ids.
    release_dead: &'static str,
    /// Release every workflow an executor owns. `$1` owner. Returns ids.
    release_owned: &'static str,
    /// Release the workflows an executor owns but does not run. `$1`
    /// owner, `$2` JSON array of the ids it runs. Returns ids.
    release_stray: &'static str,
}

macro_rules! workflow_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        WorkflowSql {
            start_root: concat!(
                "INSERT INTO durable_workflow (id, root_id, workflow_key, name, status, input, owner_id, \
                   lease_epoch, attempts, created_ms, started_ms) \
                 VALUES ($1, $1, $2, $3, 'RUNNING', $4, $5, 1, 1, ", $now, ", ", $now, ") \
                 ON CONFLICT (workflow_key) WHERE parent_id IS NULL DO UPDATE SET \
                   owner_id = excluded.owner_id, \
                   lease_epoch = CASE WHEN durable_workflow.owner_id = excluded.owner_id \
                     THEN durable_workflow.lease_epoch ELSE durable_workflow.lease_epoch + 1 END, \
                   attempts = durable_workflow.attempts + CASE WHEN durable_workflow.owner_id = excluded.owner_id \
                     THEN 0 ELSE 1 END, \
                   recoveries = durable_workflow.recoveries + CASE WHEN durable_workflow.owner_id IS NOT NULL \
                     AND durable_workflow.owner_id <> excluded.owner_id THEN 1 ELSE 0 END, \
                   status = CASE WHEN durable_workflow.status = 'PENDING' THEN 'RUNNING' ELSE durable_workflow.status END, \
                   started_ms = COALESCE(durable_workflow.started_ms, excluded.started_ms) \
                 WHERE durable_workflow.status IN ('PENDING', 'RUNNING', 'PAUSED') \
                   AND durable_workflow.name = excluded.name \
                   AND (durable_workflow.owner_id IS NULL OR durable_workflow.owner_id = excluded.owner_id OR ",
                owner_dead!($now, $owner_lock), ") \
                 RETURNING ", workflow_columns!()
            ),
            insert_child: concat!(
                "INSERT INTO durable_workflow (id, root_id, run_id, parent_id, parent_position, workflow_key, name, \
                   status, input, attempts, created_ms, started_ms) \
                 SELECT $1, $2, $11, $3, $4, $5, $6, 'RUNNING', $7, 1, ", $now, ", ", $now,
                " WHERE ", fenced!("$8", "$9", "$10", $fence_row),
                " ON CONFLICT (parent_id, workflow_key) WHERE parent_id IS NOT NULL DO NOTHING \
                 RETURNING ", workflow_columns!()
            ),
            insert_spawned: concat!(
                "INSERT INTO durable_workflow (id, root_id, run_id, parent_id, parent_position, workflow_key, name, \
                   status, input, queue, app_version, created_ms) \
                 SELECT $1, $2, $1, $3, $4, $5, $6, 'PENDING', $7, $11, $12, ", $now,
                " WHERE ", fenced!("$8", "$9", "$10", $fence_row),
                " ON CONFLICT (parent_id, workflow_key) WHERE parent_id IS NOT NULL DO NOTHING \
                 RETURNING ", workflow_columns!()
            ),
            child_entry: concat!(
                "INSERT INTO durable_step (workflow_id, position, step_key, name, kind, status, child_id, \
                   created_ms, started_ms, completed_ms) \
                 VALUES ($1, $2, $3, $4, $7, 'COMPLETED', $5, ", $now, ", $6, ", $now, ") \
                 ON CONFLICT (workflow_id, position) DO NOTHING RETURNING position"
            ),
            by_id: concat!("SELECT ", workflow_columns!(), " FROM durable_workflow WHERE id = $1"),
            root_by_key: concat!(
                "SELECT ", workflow_columns!(), " FROM durable_workflow WHERE parent_id IS NULL AND workflow_key = $1"
            ),
            set_timeout: concat!(
                "UPDATE durable_workflow SET timeout_ms = COALESCE(timeout_ms, $2), \
                 deadline_ms = COALESCE(deadline_ms, ", $now, " + $2) WHERE id = $1 RETURNING deadline_ms"
            ),
            finish: concat!(
                "UPDATE durable_workflow SET status = $2, output = $3, error = $4, completed_ms = ", $now,
                " WHERE id = $1 AND status IN ('PENDING', 'RUNNING') AND ",
                fenced!("$5", "$6", "$7", $fence_row), " RETURNING id"
            ),
            lock_owned: concat!(
                "SELECT id FROM durable_workflow WHERE id = $1 AND owner_id = $2 AND lease_epoch = $3",
                $lock_row
            ),
            release: "UPDATE durable_workflow SET owner_id = NULL, \
                 status = CASE WHEN status = 'RUNNING' THEN 'PENDING' ELSE status END, \
                 available_ms = $4, wait_for = $5 \
                 WHERE id = $1 AND owner_id = $2 AND lease_epoch = $3",
            release_dead: concat!(
                "UPDATE durable_workflow SET owner_id = NULL, recoveries = recoveries + 1, \
                   status = CASE WHEN status = 'RUNNING' THEN 'PENDING' ELSE status END \
                 WHERE owner_id IS NOT NULL AND status IN ('PENDING', 'RUNNING', 'PAUSED') AND ",
                owner_dead!($now, $owner_lock), " RETURNING id"
            ),
            release_owned: "UPDATE durable_workflow SET owner_id = NULL, \
                 status = CASE WHEN status = 'RUNNING' THEN 'PENDING' ELSE status END \
                 WHERE owner_id = $1 AND status IN ('PENDING', 'RUNNING', 'PAUSED') RETURNING id",
            release_stray: concat!(
                "UPDATE durable_workflow SET owner_id = NULL, \
                 status = CASE WHEN status = 'RUNNING' THEN 'PENDING' ELSE status END \
                 WHERE owner_id = $1 AND status IN ('PENDING', 'RUNNING', 'PAUSED') \
                   AND CAST(id AS TEXT) NOT IN ", $lo, "$2", $lc, " RETURNING id"
            ),
        }
    };
}

dialects! { static SQL: WorkflowSql = workflow_sql; }

impl SqlStore {
    fn workflow_sql(&self) -> &'static WorkflowSql {
        &SQL[self.dialect as usize]
    }

    fn workflow_row(&self, row: &sea_orm::QueryResult) -> Result<WorkflowRow, sea_orm::DbErr> {
        Row::new(row, self.dialect).workflow()
    }

    pub(super) async fn start_root_workflow(&self, root: &NewRoot<'_>) -> StoreResult<Started> {
        let new_id = self.fresh_id();
        let values = vec![
            self.id(new_id),
            root.key.into(),
            root.name.into(),
            root.input.clone().into(),
            self.id(root.owner),
        ];
        let claimed = self
            .query_one_alone(self.workflow_sql().start_root, values)
            .await?;
        if let Some(row) = claimed {
            let row = self.workflow_row(&row)?;
            let created = row.id == new_id;
            return Ok(Started::Claimed { row, created });
        }
        match self.root_with_key(root.key).await? {
            Some(row) => Ok(Started::Refused(row)),
            None => Err(crate::error::DurableError::custom(format!(
                "workflow '{}' vanished while starting",
                root.key
            ))),
        }
    }

    pub(super) async fn start_child_workflow(
        &self,
        child: &NewChild<'_>,
    ) -> StoreResult<ChildStart> {
        let created = super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            let created = self.insert_child(&txn, child).await?;
            if created.is_some() {
                self.bounded(txn.commit()).await?;
            } else {
                self.bounded(txn.rollback()).await?;
            }
            Ok::<_, crate::error::DurableError>(created)
        })
        .await?;
        if let Some(row) = created {
            return Ok(ChildStart::Created(Box::new(row)));
        }
        match self.entry_at(child.parent, child.position).await? {
            Some(entry) => Ok(ChildStart::Recorded(entry)),
            None => Ok(ChildStart::Fenced),
        }
    }

    /// The child row and its journal entry; `None` (and the caller rolls
    /// back) unless both were written.
    async fn insert_child(
        &self,
        txn: &DatabaseTransaction,
        child: &NewChild<'_>,
    ) -> StoreResult<Option<WorkflowRow>> {
        let s = self.workflow_sql();
        let new_id = self.fresh_id();
        let mut values = vec![
            self.id(new_id),
            self.id(child.root),
            self.id(child.parent),
            child.position.into(),
            child.key.into(),
            child.name.into(),
            child.input.clone().into(),
            self.id(child.lease.holder),
            self.id(child.lease.owner),
            child.lease.epoch.into(),
        ];
        let (sql, kind) = match child.spawn {
            Some(spawn) => {
                values.push(spawn.queue.into());
                values.push(spawn.app_version.map(str::to_string).into());
                (s.insert_spawned, crate::status::StepKind::Spawn)
            }
            None => {
                // Under a spawned child, the run unit is that child.
                values.push(if child.lease.holder == child.root {
                    self.null_id()
                } else {
                    self.id(child.lease.holder)
                });
                (s.insert_child, crate::status::StepKind::Workflow)
            }
        };
        let Some(row) = self.query_one(txn, sql, values).await? else {
            return Ok(None);
        };
        let row = self.workflow_row(&row)?;
        let values = vec![
            self.id(child.parent),
            child.position.into(),
            child.key.into(),
            child.name.into(),
            self.id(row.id),
            child.started_ms.into(),
            kind.as_str().into(),
        ];
        Ok(self
            .query_one(txn, s.child_entry, values)
            .await?
            .map(|_| row))
    }

    pub(super) async fn workflow_by_id(&self, id: Uuid) -> StoreResult<Option<WorkflowRow>> {
        let row = self
            .query_one_once(self.workflow_sql().by_id, vec![self.id(id)])
            .await?;
        Ok(row.as_ref().map(|r| self.workflow_row(r)).transpose()?)
    }

    pub(super) async fn root_with_key(&self, key: &str) -> StoreResult<Option<WorkflowRow>> {
        let row = self
            .query_one_once(self.workflow_sql().root_by_key, vec![key.into()])
            .await?;
        Ok(row.as_ref().map(|r| self.workflow_row(r)).transpose()?)
    }

    pub(super) async fn fix_deadline(&self, id: Uuid, timeout_ms: i64) -> StoreResult<bool> {
        let values = vec![self.id(id), timeout_ms.into()];
        Ok(self
            .query_one_alone(self.workflow_sql().set_timeout, values)
            .await?
            .is_some())
    }

    pub(super) async fn finish_workflow(
        &self,
        id: Uuid,
        lease: &Lease,
        status: Status,
        output: Option<String>,
        error: Option<String>,
        spawned_by: Option<Uuid>,
    ) -> StoreResult<bool> {
        let values = vec![
            self.id(id),
            status.as_str().into(),
            output.into(),
            error.into(),
            self.id(lease.holder),
            self.id(lease.owner),
            lease.epoch.into(),
        ];
        let finish = self.workflow_sql().finish;
        let Some(parent) = spawned_by else {
            return super::retry_transient(|| async {
                self.query_one_once(finish, values.clone())
                    .await
                    .map(|row| row.is_some())
            })
            .await;
        };
        // A spawned child: the parent may wait to join it, so it is woken
        // in the same transaction (see `wakeup.rs`).
        let (finished, woken) = super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            if self
                .query_one(&txn, finish, values.clone())
                .await?
                .is_none()
            {
                self.bounded(txn.rollback()).await?;
                return Ok((false, None));
            }
            let woken = self.wake_parent(&txn, parent, id).await?;
            self.bounded(txn.commit()).await?;
            Ok::<_, crate::error::DurableError>((true, woken))
        })
        .await?;
        self.announce(woken).await;
        Ok(finished)
    }

    /// Lock the row of workflow `id` inside `txn` if `lease`'s owner still
    /// holds it under that epoch; `false` if the lease is gone.
    pub(super) async fn lock_leased(
        &self,
        txn: &DatabaseTransaction,
        id: Uuid,
        lease: &Lease,
    ) -> StoreResult<bool> {
        let values = vec![self.id(id), self.id(lease.owner), lease.epoch.into()];
        Ok(self
            .query_one(txn, self.workflow_sql().lock_owned, values)
            .await?
            .is_some())
    }

    pub(super) async fn release_workflow(
        &self,
        id: Uuid,
        lease: &Lease,
        suspension: Option<&Suspension>,
    ) -> StoreResult<bool> {
        let s = self.workflow_sql();
        let owned = vec![self.id(id), self.id(lease.owner), lease.epoch.into()];
        let Some(suspension) = suspension else {
            let mut values = owned;
            values.extend([sea_orm::Value::BigInt(None), sea_orm::Value::String(None)]);
            return self.execute_alone(s.release, values).await.map(|n| n > 0);
        };
        // Lock our row first: whoever brings what we wait for locks it too
        // (see `wakeup.rs`), so either it sees us suspended (and makes us
        // claimable), or we see what it brought here and stay claimable.
        super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            if !self.lock_leased(&txn, id, lease).await? {
                self.bounded(txn.rollback()).await?;
                return Ok(false);
            }
            let ready = self.is_ready(&txn, suspension).await?;
            // A wait without a time (a join) waits until it is woken.
            let wake = if ready {
                None
            } else {
                Some(suspension.wake_ms.unwrap_or(i64::MAX))
            };
            let mut values = owned.clone();
            values.extend([wake.into(), suspension.wait_for.clone().into()]);
            self.execute(&txn, s.release, values).await?;
            self.bounded(txn.commit()).await?;
            Ok::<_, crate::error::DurableError>(true)
        })
        .await
    }

    pub(super) async fn release_dead_owners(&self) -> StoreResult<Vec<Uuid>> {
        let rows = self
            .query_all_alone(self.workflow_sql().release_dead, vec![])
            .await?;
        Ok(self.ids_of(&rows)?)
    }

    pub(super) async fn release_all_owned(&self, owner: Uuid) -> StoreResult<u64> {
        let rows = self
            .query_all_alone(self.workflow_sql().release_owned, vec![self.id(owner)])
            .await?;
        Ok(rows.len() as u64)
    }

    pub(super) async fn release_stray_owned(
        &self,
        owner: Uuid,
        running: &[Uuid],
    ) -> StoreResult<u64> {
        let running: Vec<String> = running
            .iter()
            .map(|id| id.hyphenated().to_string())
            .collect();
        let running = serde_json::to_string(&running)?;
        let rows = self
            .query_all_alone(
                self.workflow_sql().release_stray,
                vec![self.id(owner), running.into()],
            )
            .await?;
        Ok(rows.len() as u64)
    }

    pub(super) fn ids_of(
        &self,
        rows: &[sea_orm::QueryResult],
    ) -> Result<Vec<Uuid>, sea_orm::DbErr> {
        rows.iter()
            .map(|r| Row::new(r, self.dialect).id("id"))
            .collect()
    }
}
