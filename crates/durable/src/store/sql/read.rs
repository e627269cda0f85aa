//! The read model: a workflow, and a whole tree with its journal.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::{dialects, entry_with_child, subtree, workflow_columns};
use crate::read::{QueueBucket, QueueInfo, WorkflowSummary, WorkflowTree};
use crate::store::{QueueLimits, StoreResult};

pub(super) struct ReadSql {
    /// Every workflow of the subtree of `$1`.
    tree_workflows: &'static str,
    /// Every entry of every workflow of the subtree of `$1`.
    tree_entries: &'static str,
    /// Every entry set aside by a retry in the subtree of `$1`.
    tree_history: &'static str,
    /// Every declared queue with its limits.
    declared_queues: &'static str,
    /// Unfinished workflows of each queue, by [`QueueBucket`] (the same
    /// rule, as SQL), with the statement's clock.
    queue_counts: &'static str,
}

macro_rules! read_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        ReadSql {
            tree_workflows: concat!(
                subtree!(),
                "SELECT ",
                workflow_columns!(),
                " FROM durable_workflow WHERE id IN (SELECT id FROM tree)"
            ),
            tree_entries: concat!(
                subtree!(),
                entry_with_child!($cj),
                "WHERE s.workflow_id IN (SELECT id FROM tree) ORDER BY s.workflow_id, s.position"
            ),
            tree_history: concat!(
                subtree!(),
                "SELECT workflow_id, position, round, archived_ms, step_key, name, kind, status, output, \
                   error, retry_count, max_retries, wake_ms, created_ms, started_ms, completed_ms \
                 FROM durable_step_history WHERE workflow_id IN (SELECT id FROM tree) \
                 ORDER BY workflow_id, position, round"
            ),
            declared_queues: "SELECT name, concurrency, rate_limit, rate_period_ms, key_concurrency \
                 FROM durable_queue ORDER BY name",
            queue_counts: concat!(
                "SELECT queue, \
                   COUNT(CASE WHEN status = 'RUNNING' THEN 1 END) AS running, \
                   COUNT(CASE WHEN status = 'PENDING' AND (available_ms IS NULL OR available_ms <= clock.ms) THEN 1 END) AS queued, \
                   COUNT(CASE WHEN status = 'PENDING' AND available_ms > clock.ms THEN 1 END) AS waiting, \
                   COUNT(CASE WHEN status = 'PAUSED' THEN 1 END) AS paused \
                 FROM durable_workflow, (SELECT ", $now, " AS ms) clock \
                 WHERE queue IS NOT NULL AND status IN ('PENDING', 'RUNNING', 'PAUSED') GROUP BY queue"
            ),
        }
    };
}

dialects! { static SQL: ReadSql = read_sql; }

impl SqlStore {
    fn read_sql(&self) -> &'static ReadSql {
        &SQL[self.dialect as usize]
    }

    pub(super) async fn read_summary(&self, id: Uuid) -> StoreResult<Option<WorkflowSummary>> {
        Ok(self
            .workflow_by_id(id)
            .await?
            .map(|row| WorkflowSummary::from_row(&row)))
    }

    /// Three reads: the subtree's workflows, all their entries, and the
    /// entries retries set aside.
    pub(super) async fn read_tree(&self, id: Uuid) -> StoreResult<Option<WorkflowTree>> {
        let s = self.read_sql();
        let rows = self
            .query_all_once(s.tree_workflows, vec![self.id(id)])
            .await?;
        let workflows = rows
            .iter()
            .map(|r| Row::new(r, self.dialect).workflow())
            .collect::<Result<Vec<_>, _>>()?;
        if workflows.is_empty() {
            return Ok(None);
        }
        let rows = self
            .query_all_once(s.tree_entries, vec![self.id(id)])
            .await?;
        let entries = rows
            .iter()
            .map(|r| {
                let row = Row::new(r, self.dialect);
                Ok((row.id("workflow_id")?, row.entry(true)?))
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
        let rows = self
            .query_all_once(s.tree_history, vec![self.id(id)])
            .await?;
        let archived = rows
            .iter()
            .map(|r| {
                let row = Row::new(r, self.dialect);
                Ok((
                    row.id("workflow_id")?,
                    row.get::<i32>("round")?,
                    row.get::<i64>("archived_ms")?,
                    row.entry(false)?,
                ))
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
        Ok(WorkflowTree::assemble(id, &workflows, entries, archived))
    }

    /// Two reads: the declared queues, and the work of every queue.
    pub(super) async fn read_queues(&self) -> StoreResult<Vec<QueueInfo>> {
        let s = self.read_sql();
        let mut queues = BTreeMap::new();
        for r in self.query_all_alone(s.declared_queues, vec![]).await? {
            let row = Row::new(&r, self.dialect);
            let name: String = row.get("name")?;
            let limits = QueueLimits {
                concurrency: row.get("concurrency")?,
                rate_limit: row.get("rate_limit")?,
                rate_period_ms: row.get("rate_period_ms")?,
                key_concurrency: row.get("key_concurrency")?,
            };
            queues.insert(name.clone(), QueueInfo::new(name, Some(&limits)));
        }
        for r in self.query_all_alone(s.queue_counts, vec![]).await? {
            let row = Row::new(&r, self.dialect);
            let name: String = row.get("queue")?;
            let queue = queues
                .entry(name.clone())
                .or_insert_with(|| QueueInfo::new(name, None));
            for (column, bucket) in [
                ("running", QueueBucket::Running),
                ("queued", QueueBucket::Queued),
                ("waiting", QueueBucket::Waiting),
                ("paused", QueueBucket::Paused),
            ] {
                queue.add(bucket, u64::try_from(row.get::<i64>(column)?).unwrap_or(0));
            }
        }
        Ok(queues.into_values().collect())
    }
}
