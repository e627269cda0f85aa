//! Fork: a new root workflow with a copy of another root's history before
//! a position, so it runs on from there (`Client::fork`).

use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::dialects;
use crate::error::DurableError;
use crate::status::Status;
use crate::store::StoreResult;

pub(super) struct ForkSql {
    /// The parent of `$1` (NULL for a root), the row held shared.
    lock_source: &'static str,
    /// Status and child of every entry of `$1` before position `$2`.
    copied: &'static str,
    /// The last position of `$1`'s history (-1 when empty).
    last: &'static str,
    /// The fork `$2` with key `$3`: `$1`'s name, input and queue fields, PENDING.
    insert_workflow: &'static str,
    /// `$1`'s entries before `$3`, as `$2`'s.
    copy_steps: &'static str,
}

macro_rules! fork_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        ForkSql {
            lock_source: concat!("SELECT parent_id FROM durable_workflow WHERE id = $1", $fence_row),
            copied: "SELECT position, status, child_id FROM durable_step \
                 WHERE workflow_id = $1 AND position < $2 ORDER BY position",
            last: "SELECT COALESCE(MAX(position), -1) AS last FROM durable_step WHERE workflow_id = $1",
            insert_workflow: concat!(
                "INSERT INTO durable_workflow (id, root_id, workflow_key, name, status, input, queue, \
                   priority, concurrency_key, app_version, timeout_ms, created_ms) \
                 SELECT $2, $2, $3, name, 'PENDING', input, queue, priority, concurrency_key, \
                   app_version, timeout_ms, ", $now, " FROM durable_workflow WHERE id = $1"
            ),
            copy_steps: "INSERT INTO durable_step (workflow_id, position, step_key, name, kind, status, \
                   output, error, retry_count, max_retries, child_id, wake_ms, created_ms, started_ms, \
                   completed_ms) \
                 SELECT $2, position, step_key, name, kind, status, output, error, retry_count, \
                   max_retries, child_id, wake_ms, created_ms, started_ms, completed_ms \
                 FROM durable_step WHERE workflow_id = $1 AND position < $3",
        }
    };
}

dialects! { static SQL: ForkSql = fork_sql; }

impl SqlStore {
    /// Check the source and the position, insert the fork and its copied
    /// history: one transaction. The fork's id.
    pub(super) async fn fork_root(&self, id: Uuid, from_position: i32) -> StoreResult<Uuid> {
        let s = &SQL[self.dialect as usize];
        let fork = self.fresh_id();
        super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            let row = self
                .query_one(&txn, s.lock_source, vec![self.id(id)])
                .await?
                .ok_or(DurableError::NotFound(id))?;
            let parent = Row::new(&row, self.dialect).opt_id("parent_id")?;
            let last = self
                .query_one(&txn, s.last, vec![self.id(id)])
                .await?
                .map(|r| Row::new(&r, self.dialect).get::<i32>("last"))
                .transpose()?
                .unwrap_or(-1);
            let rows = self
                .query_all(&txn, s.copied, vec![self.id(id), from_position.into()])
                .await?;
            let entries = rows
                .iter()
                .map(|r| {
                    let r = Row::new(r, self.dialect);
                    Ok((
                        r.get::<i32>("position")?,
                        r.status("status")?,
                        r.opt_id("child_id")?,
                    ))
                })
                .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
            check_fork(id, parent, from_position, last, &entries)?;
            let key = fork.hyphenated().to_string();
            self.execute(
                &txn,
                s.insert_workflow,
                vec![self.id(id), self.id(fork), key.into()],
            )
            .await?;
            self.execute(
                &txn,
                s.copy_steps,
                vec![self.id(id), self.id(fork), from_position.into()],
            )
            .await?;
            self.bounded(txn.commit()).await?;
            Ok::<_, DurableError>(fork)
        })
        .await
    }
}

/// Whether `id` can be forked at `from_position`: a root, a position
/// within its history (at most one past its last call), and only finished
/// calls of its own before it (a child belongs to the original's tree).
pub(crate) fn check_fork(
    id: Uuid,
    parent: Option<Uuid>,
    from_position: i32,
    last: i32,
    entries: &[(i32, Status, Option<Uuid>)],
) -> Result<(), DurableError> {
    if let Some(parent) = parent {
        return Err(DurableError::InvalidInput(format!(
            "workflow {id} is a child of {parent}: fork its root"
        )));
    }
    if from_position < 0 || from_position > last.saturating_add(1) {
        return Err(DurableError::InvalidInput(format!(
            "cannot fork workflow {id} at position {from_position}: its history has positions 0 to {last}"
        )));
    }
    for (position, status, child) in entries {
        if child.is_some() {
            return Err(DurableError::InvalidInput(format!(
                "cannot fork workflow {id} at {from_position}: the call at {position} started a child \
                 workflow, which belongs to the original; fork at {position} or before"
            )));
        }
        if !matches!(status, Status::Completed | Status::Failed) {
            return Err(DurableError::InvalidInput(format!(
                "cannot fork workflow {id} at {from_position}: the call at {position} has not finished; \
                 fork at {position} or before"
            )));
        }
    }
    Ok(())
}
