//! Retention: finished trees older than a cutoff are deleted, a batch of
//! roots per transaction, with every row that belongs to them.
//!
//! A batch is chosen from `durable_workflow_finished` (finish time, id):
//! roots finished before the cutoff whose every workflow is finished
//! (`durable_workflow_root` answers that per root: the check is a scalar
//! subquery, so PostgreSQL runs it per root read instead of turning it into
//! an anti-join, which at a million rows it planned as two scans of the
//! table and a sort), locked `SKIP LOCKED`
//! on PostgreSQL so two purgers never pick the same root and a retry of
//! one of them (which locks the root) waits or is skipped. Each table is
//! then cleared by the tree's workflow ids through its own index.

use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::dialects;
use crate::store::StoreResult;

pub(super) struct RetentionSql {
    /// At most `$2` roots finished more than `$1` ms ago (database clock)
    /// with nothing unfinished in their trees, oldest first, locked.
    batch: &'static str,
    /// Rows of the trees of the roots in the JSON array `$1`, table by
    /// table, the workflow rows last.
    deletes: [&'static str; 6],
}

macro_rules! retention_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        RetentionSql {
            batch: concat!(
                "SELECT r.id FROM durable_workflow r \
                 WHERE r.completed_ms IS NOT NULL AND r.completed_ms <= ", $now, " - $1 AND r.parent_id IS NULL \
                   AND r.status IN ('COMPLETED', 'FAILED', 'CANCELLED') \
                   AND NOT (SELECT EXISTS (SELECT 1 FROM durable_workflow d WHERE d.root_id = r.id \
                     AND d.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))) \
                 ORDER BY r.completed_ms, r.id LIMIT $2",
                $skip_locked
            ),
            deletes: [
                concat!(
                    "DELETE FROM durable_step WHERE workflow_id IN (SELECT id FROM durable_workflow \
                     WHERE root_id IN ", $il, "$1", $ic, ")"
                ),
                concat!(
                    "DELETE FROM durable_step_history WHERE workflow_id IN (SELECT id FROM durable_workflow \
                     WHERE root_id IN ", $il, "$1", $ic, ")"
                ),
                concat!(
                    "DELETE FROM durable_message WHERE workflow_id IN (SELECT id FROM durable_workflow \
                     WHERE root_id IN ", $il, "$1", $ic, ")"
                ),
                concat!(
                    "DELETE FROM durable_event WHERE workflow_id IN (SELECT id FROM durable_workflow \
                     WHERE root_id IN ", $il, "$1", $ic, ")"
                ),
                concat!(
                    "DELETE FROM durable_stream WHERE workflow_id IN (SELECT id FROM durable_workflow \
                     WHERE root_id IN ", $il, "$1", $ic, ")"
                ),
                concat!("DELETE FROM durable_workflow WHERE root_id IN ", $il, "$1", $ic),
            ],
        }
    };
}

dialects! { static SQL: RetentionSql = retention_sql; }

/// PostgreSQL only, first in a purge transaction.
const PG_NO_JIT: &str = "SELECT set_config('jit', 'off', true)";

impl SqlStore {
    /// Delete at most `batch` finished trees whose roots finished more
    /// than `age_ms` ago, in one transaction; the roots deleted.
    pub(super) async fn purge_batch(&self, age_ms: i64, batch: u32) -> StoreResult<Vec<Uuid>> {
        let s = &SQL[self.dialect as usize];
        super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            if self.dialect == super::Dialect::Postgres {
                // The estimates of a walk over millions of finished rows
                // pass `jit_above_cost`; compiling would cost more than
                // the batch.
                self.query_one(&txn, PG_NO_JIT, vec![]).await?;
            }
            let rows = self
                .query_all(&txn, s.batch, vec![age_ms.into(), i64::from(batch).into()])
                .await?;
            let roots = rows
                .iter()
                .map(|r| Row::new(r, self.dialect).id("id"))
                .collect::<Result<Vec<_>, _>>()?;
            if roots.is_empty() {
                self.bounded(txn.rollback()).await?;
                return Ok(roots);
            }
            let ids: Vec<String> = roots.iter().map(|id| id.hyphenated().to_string()).collect();
            let ids = serde_json::to_string(&ids)?;
            for delete in s.deletes {
                self.execute(&txn, delete, vec![ids.clone().into()]).await?;
            }
            self.bounded(txn.commit()).await?;
            Ok::<_, crate::error::DurableError>(roots)
        })
        .await
    }
}

impl SqlStore {
    /// The backend's plan of one purge batch (for the bench).
    pub(crate) async fn explain_purge(&self, age_ms: i64) -> StoreResult<Vec<String>> {
        let s = &SQL[self.dialect as usize];
        let values = vec![age_ms.into(), i64::from(crate::PURGE_BATCH).into()];
        self.explain(s.batch, values).await
    }
}
