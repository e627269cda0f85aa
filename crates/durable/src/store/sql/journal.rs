//! The journal: a workflow's history in pages, the one read before a new
//! durable call, and the fenced commit of an entry.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::{dialects, entry_with_child, fenced};
use crate::store::{Check, Checkpoint, Effect, Entry, Seen, StoreResult};

pub(super) struct JournalSql {
    /// One page of history by position, with each child call's workflow
    /// row. `$1` workflow, `$2` first position, `$3` page size.
    page: &'static str,
    /// One entry with its child's row. `$1` workflow, `$2` position.
    entry: &'static str,
    /// The check read of a root: its own row is the lease holder and has
    /// no ancestors, so one primary-key lookup will do. `$1` workflow,
    /// `$2` position.
    check_root: &'static str,
    /// The check read of a child: the most blocking status and the
    /// earliest deadline along its ancestor chain, and the lease holder's
    /// lease. `$1` workflow, `$2` position, `$3` lease holder.
    check_child: &'static str,
    /// Write an entry, fenced by the lease; never overwrites a finished
    /// entry or another call's. `$1` workflow, `$2` position, `$3` key,
    /// `$4` name, `$5` kind, `$6` status, `$7` output, `$8` error, `$9`
    /// retry count, `$10` max retries, `$11` wake ms, `$12` started ms,
    /// `$13` holder, `$14` owner, `$15` epoch, `$16` child (a join's).
    /// Returns, if written, the workflow's status and deadline as this
    /// statement's snapshot has them, and the clock.
    commit: &'static str,
}

/// An entry's columns as `s_*` (beside the workflow's in a check read).
macro_rules! entry_as_s {
    () => {
        "s.position AS s_position, s.step_key AS s_step_key, s.name AS s_name, s.kind AS s_kind, \
         s.status AS s_status, s.output AS s_output, s.error AS s_error, s.retry_count AS s_retry_count, \
         s.max_retries AS s_max_retries, s.wake_ms AS s_wake_ms, s.created_ms AS s_created_ms, \
         s.started_ms AS s_started_ms, s.completed_ms AS s_completed_ms"
    };
}

macro_rules! journal_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        JournalSql {
            page: concat!(
                entry_with_child!($cj),
                "WHERE s.workflow_id = $1 AND s.position >= $2 ORDER BY s.position LIMIT $3"
            ),
            entry: concat!(entry_with_child!($cj), "WHERE s.workflow_id = $1 AND s.position = $2"),
            check_root: concat!(
                "SELECT w.owner_id AS holder_owner, w.lease_epoch AS holder_epoch, w.status, \
                   CASE WHEN w.status IN ('CANCELLED', 'PAUSED') THEN w.status END AS blocked, \
                   w.deadline_ms, ", $now, " AS now_ms, ", entry_as_s!(),
                " FROM durable_workflow w LEFT JOIN durable_step s ON s.workflow_id = w.id AND s.position = $2 \
                 WHERE w.id = $1"
            ),
            check_child: concat!(
                "WITH RECURSIVE chain(id, parent_id, status, deadline_ms) AS ( \
                   SELECT id, parent_id, status, deadline_ms FROM durable_workflow WHERE id = $1 \
                   UNION ALL SELECT w.id, w.parent_id, w.status, w.deadline_ms \
                   FROM durable_workflow w JOIN chain c ON w.id = c.parent_id) \
                 SELECT h.owner_id AS holder_owner, h.lease_epoch AS holder_epoch, me.status, \
                   (SELECT c.status FROM chain c WHERE c.status IN ('CANCELLED', 'PAUSED') \
                     ORDER BY CASE c.status WHEN 'CANCELLED' THEN 0 ELSE 1 END LIMIT 1) AS blocked, \
                   (SELECT MIN(c.deadline_ms) FROM chain c) AS deadline_ms, ", $now, " AS now_ms, ",
                entry_as_s!(),
                " FROM durable_workflow me JOIN durable_workflow h ON h.id = $3 \
                 LEFT JOIN durable_step s ON s.workflow_id = me.id AND s.position = $2 \
                 WHERE me.id = $1"
            ),
            commit: concat!(
                "INSERT INTO durable_step (workflow_id, position, step_key, name, kind, status, output, error, \
                   retry_count, max_retries, wake_ms, child_id, created_ms, started_ms, completed_ms) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $16, ", $now, ", $12, \
                   CASE WHEN $6 IN ('COMPLETED', 'FAILED') THEN ", $now, " END \
                 WHERE ", fenced!("$13", "$14", "$15", $fence_row),
                " ON CONFLICT (workflow_id, position) DO UPDATE SET \
                   status = excluded.status, output = excluded.output, error = excluded.error, \
                   retry_count = excluded.retry_count, completed_ms = excluded.completed_ms, \
                   wake_ms = COALESCE(durable_step.wake_ms, excluded.wake_ms), \
                   child_id = COALESCE(durable_step.child_id, excluded.child_id) \
                 WHERE durable_step.status NOT IN ('COMPLETED', 'FAILED') \
                   AND durable_step.step_key = excluded.step_key AND durable_step.kind = excluded.kind \
                 RETURNING (SELECT w.status FROM durable_workflow w WHERE w.id = $1) AS seen_status, \
                   (SELECT w.deadline_ms FROM durable_workflow w WHERE w.id = $1) AS seen_deadline_ms, ",
                $now, " AS now_ms"
            ),
        }
    };
}

dialects! { static SQL: JournalSql = journal_sql; }

impl SqlStore {
    fn journal_sql(&self) -> &'static JournalSql {
        &SQL[self.dialect as usize]
    }

    pub(super) async fn journal_page(
        &self,
        workflow: Uuid,
        from_position: i32,
        limit: i64,
    ) -> StoreResult<Vec<Entry>> {
        let values = vec![self.id(workflow), from_position.into(), limit.into()];
        let rows = self
            .query_all_alone(self.journal_sql().page, values)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Row::new(r, self.dialect).entry(true))
            .collect::<Result<_, _>>()?)
    }

    pub(super) async fn entry_at(
        &self,
        workflow: Uuid,
        position: i32,
    ) -> StoreResult<Option<Entry>> {
        let values = vec![self.id(workflow), position.into()];
        let row = self
            .query_one_alone(self.journal_sql().entry, values)
            .await?;
        Ok(row
            .as_ref()
            .map(|r| Row::new(r, self.dialect).entry(true))
            .transpose()?)
    }

    pub(super) async fn check_call(
        &self,
        workflow: Uuid,
        root: bool,
        holder: Uuid,
        position: i32,
    ) -> StoreResult<Option<Check>> {
        let s = self.journal_sql();
        let mut values = vec![self.id(workflow), position.into()];
        let sql = if root {
            s.check_root
        } else {
            values.push(self.id(holder));
            s.check_child
        };
        let row = self.query_one_alone(sql, values).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let r = Row::new(&row, self.dialect);
        let entry = match r.get::<Option<String>>("s_step_key")? {
            Some(_) => Some(Row::prefixed(&row, self.dialect, "s_").entry(false)?),
            None => None,
        };
        Ok(Some(Check {
            holder_owner: r.opt_id("holder_owner")?,
            holder_epoch: r.get("holder_epoch")?,
            status: r.status("status")?,
            blocked: r.opt_status("blocked")?,
            deadline_ms: r.get("deadline_ms")?,
            now_ms: r.get("now_ms")?,
            entry,
        }))
    }

    pub(super) async fn commit_entry(
        &self,
        db: &impl ConnectionTrait,
        cp: &Checkpoint<'_>,
    ) -> StoreResult<Option<Seen>> {
        let values = vec![
            self.id(cp.workflow),
            cp.position.into(),
            cp.key.into(),
            cp.name.into(),
            cp.kind.as_str().into(),
            cp.status.as_str().into(),
            cp.output.clone().into(),
            cp.error.clone().into(),
            cp.retry_count.into(),
            cp.max_retries.into(),
            cp.wake_ms.into(),
            cp.started_ms.into(),
            self.id(cp.lease.holder),
            self.id(cp.lease.owner),
            cp.lease.epoch.into(),
            match cp.child {
                Some(child) => self.id(child),
                None => self.null_id(),
            },
        ];
        let Some(row) = self
            .query_one(db, self.journal_sql().commit, values)
            .await?
        else {
            return Ok(None);
        };
        let r = Row::new(&row, self.dialect);
        Ok(Some(Seen {
            status: r.status("seen_status")?,
            deadline_ms: r.get("seen_deadline_ms")?,
            now_ms: r.get("now_ms")?,
        }))
    }
}

impl SqlStore {
    /// The entry and the call's effect in one transaction, retried whole.
    pub(super) async fn commit_with_effect(
        &self,
        cp: &Checkpoint<'_>,
        effect: &Effect<'_>,
    ) -> StoreResult<bool> {
        let (written, woken) = super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            let done = async {
                let woken = match effect {
                    Effect::Send(message) => self.deliver(&txn, message).await?.1,
                    Effect::Event { key, value } => {
                        self.publish_event(&txn, cp.workflow, cp.position, key, value)
                            .await?;
                        None
                    }
                    Effect::Stream { key, value } => {
                        self.append_item(&txn, cp.workflow, cp.position, key, *value)
                            .await?;
                        None
                    }
                };
                let written = self.commit_entry(&txn, cp).await?.is_some();
                Ok::<_, crate::error::DurableError>((written, woken))
            }
            .await;
            match done {
                Ok((true, woken)) => {
                    self.bounded(txn.commit()).await?;
                    Ok((true, woken))
                }
                Ok((false, _)) => {
                    self.bounded(txn.rollback()).await?;
                    Ok((false, None))
                }
                Err(err) => {
                    self.bounded(txn.rollback()).await?;
                    Err(err)
                }
            }
        })
        .await?;
        self.announce(woken).await;
        Ok(written)
    }
}
