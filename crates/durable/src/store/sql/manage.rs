//! Management of running work: pause, resume and cancel a subtree, and
//! wake a workflow that waits for a call to complete.

use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::{dialects, subtree};
use crate::error::DurableError;
use crate::store::{StoreResult, Transition};

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
}

macro_rules! manage_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal)) => {
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
