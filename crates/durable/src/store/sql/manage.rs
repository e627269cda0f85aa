//! Management of running work: pause, resume and cancel a subtree, and
//! wake a workflow that waits for a call to complete.

use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::{dialects, subtree};
use crate::error::DurableError;
use crate::status::Status;
use crate::store::{Retried, StoreResult, Transition};

#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(super) struct ManageSql {
    /// Status of a workflow and whether it is a spawned child (its own
    /// run unit, with a parent), row-locked. `$1` id.
    lock_status: &'static str,
    /// Pause a workflow and its active descendants. `$1` id.
    pause: &'static str,
    /// Resume a paused workflow (RUNNING) and its paused descendants (PENDING). `$1` id.
    resume: &'static str,
    /// Cancel a workflow and its unfinished descendants. `$1` id.
    cancel: &'static str,
    /// Complete a waiting call. `$1` workflow, `$2` call name, `$3` output.
    complete_wait: &'static str,
    /// Status and parent of a workflow, row-locked. `$1` id.
    lock_for_retry: &'static str,
    /// The next retry round of the subtree of `$1`.
    retry_round: &'static str,
    /// Set aside the failed entries of the workflows of the subtree of `$1`
    /// in status `$3` or `$4`, as round `$2`.
    archive_failed: &'static str,
    /// Delete the entries `archive_failed` set aside. `$1` root, `$2`, `$3` statuses.
    drop_failed: &'static str,
    /// Make the workflows of the subtree of `$1` in status `$2` or `$3`
    /// claimable again, fenced off from any handle of their failed run.
    /// Returns their queues.
    reset_failed: &'static str,
}

macro_rules! manage_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        ManageSql {
            lock_status: concat!(
                "SELECT status, CASE WHEN run_id = id THEN parent_id END AS spawned_by \
                 FROM durable_workflow WHERE id = $1", $lock_row
            ),
            pause: concat!(
                subtree!(),
                "UPDATE durable_workflow SET status = 'PAUSED' \
                 WHERE status IN ('PENDING', 'RUNNING') AND id IN (SELECT id FROM tree)"
            ),
            resume: concat!(
                subtree!(),
                "UPDATE durable_workflow SET status = CASE WHEN id = $1 THEN 'RUNNING' ELSE 'PENDING' END \
                 WHERE status = 'PAUSED' AND id IN (SELECT id FROM tree)"
            ),
            cancel: concat!(
                subtree!(),
                "UPDATE durable_workflow SET status = 'CANCELLED', completed_ms = ", $now,
                " WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') AND id IN (SELECT id FROM tree)"
            ),
            complete_wait: concat!(
                "UPDATE durable_step SET status = 'COMPLETED', output = $3, completed_ms = ", $now,
                " WHERE workflow_id = $1 AND name = $2 AND kind = 'WAIT' AND status = 'PENDING'"
            ),
            lock_for_retry: concat!(
                "SELECT status, parent_id FROM durable_workflow WHERE id = $1", $lock_row
            ),
            retry_round: concat!(
                subtree!(),
                "SELECT COALESCE(MAX(h.round), 0) + 1 AS round FROM durable_step_history h \
                 WHERE h.workflow_id IN (SELECT id FROM tree)"
            ),
            archive_failed: concat!(
                subtree!(),
                "INSERT INTO durable_step_history (workflow_id, position, round, step_key, name, kind, \
                   status, output, error, retry_count, max_retries, child_id, wake_ms, created_ms, \
                   started_ms, completed_ms, archived_ms) \
                 SELECT s.workflow_id, s.position, $2, s.step_key, s.name, s.kind, s.status, s.output, \
                   s.error, s.retry_count, s.max_retries, s.child_id, s.wake_ms, s.created_ms, \
                   s.started_ms, s.completed_ms, ", $now, " \
                 FROM durable_step s JOIN durable_workflow w ON w.id = s.workflow_id \
                 WHERE w.id IN (SELECT id FROM tree) AND w.status IN ($3, $4) AND s.status = 'FAILED'"
            ),
            drop_failed: concat!(
                subtree!(),
                "DELETE FROM durable_step WHERE status = 'FAILED' AND workflow_id IN \
                 (SELECT w.id FROM durable_workflow w WHERE w.id IN (SELECT id FROM tree) AND w.status IN ($2, $3))"
            ),
            reset_failed: concat!(
                subtree!(),
                "UPDATE durable_workflow SET status = 'PENDING', output = NULL, error = NULL, \
                   completed_ms = NULL, owner_id = NULL, lease_epoch = lease_epoch + 1, \
                   available_ms = NULL, wait_for = NULL, recoveries = 0, deadline_ms = NULL \
                 WHERE id IN (SELECT id FROM tree) AND status IN ($2, $3) RETURNING queue"
            ),
        }
    };
}

dialects! { static SQL: ManageSql = manage_sql; }

impl SqlStore {
    fn manage_sql(&self) -> &'static ManageSql {
        &SQL[self.dialect as usize]
    }

    /// Lock the target row, check the transition, cascade, commit: one
    /// transaction, retried whole on a transient failure (e.g. a deadlock
    /// between two cascades over one tree).
    pub(super) async fn transition_subtree(
        &self,
        id: Uuid,
        transition: Transition,
    ) -> StoreResult<u64> {
        let s = self.manage_sql();
        let (changed, woken) = super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            let row = self
                .query_one(&txn, s.lock_status, vec![self.id(id)])
                .await?
                .ok_or(DurableError::NotFound(id))?;
            let r = Row::new(&row, self.dialect);
            let (status, spawned_by) = (r.status("status")?, r.opt_id("spawned_by")?);
            if !transition.allowed_from(status) {
                return Err(DurableError::InvalidTransition {
                    task: id,
                    status: status.as_str().to_string(),
                    action: transition.verb(),
                });
            }
            let sql = match transition {
                Transition::Pause => s.pause,
                Transition::Resume => s.resume,
                Transition::Cancel => s.cancel,
            };
            let changed = self.execute(&txn, sql, vec![self.id(id)]).await?;
            // A spawned child cancelled on its own: a parent joining it
            // must hear of it (see `wakeup.rs`).
            let woken = match (transition, spawned_by) {
                (Transition::Cancel, Some(parent)) => self.wake_parent(&txn, parent, id).await?,
                _ => None,
            };
            self.bounded(txn.commit()).await?;
            Ok((changed, woken))
        })
        .await?;
        self.announce(woken).await;
        Ok(changed)
    }

    /// Lock the run unit, which a suspension locks too (so it sees either
    /// the completed call or our wake-up), complete the call, wake it.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(super) async fn wake_call(
        &self,
        workflow: Uuid,
        name: &str,
        output: &str,
    ) -> StoreResult<bool> {
        let s = self.manage_sql();
        super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            let locked = self
                .lock_run_unit(&txn, workflow)
                .await?
                .ok_or(DurableError::NotFound(workflow))?;
            if locked.status.is_terminal() {
                self.bounded(txn.rollback()).await?;
                return Ok(false);
            }
            let values = vec![self.id(workflow), name.into(), output.into()];
            if self.execute(&txn, s.complete_wait, values).await? == 0 {
                self.bounded(txn.rollback()).await?;
                return Ok(false);
            }
            self.wake_run_unit(&txn, locked.holder).await?;
            self.bounded(txn.commit()).await?;
            Ok::<_, DurableError>(true)
        })
        .await
    }
}

impl SqlStore {
    /// Check the root, set aside the failed entries, reset the failed
    /// workflows: one transaction, retried whole on a transient failure.
    pub(super) async fn retry_subtree(&self, id: Uuid, from: &[Status]) -> StoreResult<Retried> {
        let s = self.manage_sql();
        let first = from.first().copied().unwrap_or(Status::Failed);
        let second = from.get(1).copied().unwrap_or(first);
        let statuses = || [first.as_str().into(), second.as_str().into()];
        super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            let row = self
                .query_one(&txn, s.lock_for_retry, vec![self.id(id)])
                .await?
                .ok_or(DurableError::NotFound(id))?;
            let r = Row::new(&row, self.dialect);
            let (status, parent) = (r.status("status")?, r.opt_id("parent_id")?);
            if let Some(parent) = parent {
                return Err(DurableError::InvalidInput(format!(
                    "workflow {id} is a child of {parent}: retry its root, which retries it"
                )));
            }
            if !from.contains(&status) {
                return Err(DurableError::InvalidTransition {
                    task: id,
                    status: status.as_str().to_string(),
                    action: "retry",
                });
            }
            let round = self
                .query_one(&txn, s.retry_round, vec![self.id(id)])
                .await?
                .map(|row| Row::new(&row, self.dialect).get::<i32>("round"))
                .transpose()?
                .unwrap_or(1);
            let [a, b] = statuses();
            let values = vec![self.id(id), round.into(), a, b];
            let steps = self.execute(&txn, s.archive_failed, values).await?;
            let [a, b] = statuses();
            let dropped = self
                .execute(&txn, s.drop_failed, vec![self.id(id), a, b])
                .await?;
            debug_assert_eq!(steps, dropped);
            let [a, b] = statuses();
            let rows = self
                .query_all(&txn, s.reset_failed, vec![self.id(id), a, b])
                .await?;
            let mut queues = rows
                .iter()
                .map(|row| Row::new(row, self.dialect).get::<Option<String>>("queue"))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect::<Vec<_>>();
            queues.sort();
            queues.dedup();
            self.bounded(txn.commit()).await?;
            Ok(Retried {
                workflows: rows.len() as u64,
                steps,
                queues,
            })
        })
        .await
    }
}
