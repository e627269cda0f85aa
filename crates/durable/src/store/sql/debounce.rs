//! Debounce: one transaction per call.
//!
//! The key's row in `durable_debounce` is taken first: inserted (a new
//! burst, whose workflow is enqueued in the same transaction) or, if it
//! exists, row-locked, so concurrent calls of one key queue behind each
//! other and a burst never gets two workflows. The burst's workflow is
//! then updated only while no executor has claimed it (still PENDING,
//! unowned, never started); once it runs, the next call begins a new
//! burst with a new workflow.

use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::dialects;
use crate::store::{NewDebounce, StoreResult};

pub(super) struct DebounceSql {
    /// A new burst. `$1` key, `$2` workflow id.
    open: &'static str,
    /// The key's burst, locked, with the clock. `$1` key.
    current: &'static str,
    /// The latest input and the new start time of a workflow nobody has
    /// claimed. `$1` id, `$2` input, `$3` start time.
    gather: &'static str,
    /// Begin a new burst on an existing key. `$1` key, `$2` workflow id.
    reopen: &'static str,
}

macro_rules! debounce_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        DebounceSql {
            open: concat!(
                "INSERT INTO durable_debounce (debounce_key, workflow_id, first_ms) \
                 SELECT $1, $2, clock.ms FROM (SELECT ", $now, " AS ms) clock WHERE TRUE \
                 ON CONFLICT (debounce_key) DO NOTHING RETURNING workflow_id"
            ),
            current: concat!(
                "SELECT workflow_id, first_ms, ", $clock_now, " AS now_ms FROM durable_debounce \
                 WHERE debounce_key = $1",
                $lock_row
            ),
            gather: "UPDATE durable_workflow SET input = $2, available_ms = $3 \
                 WHERE id = $1 AND status = 'PENDING' AND owner_id IS NULL AND started_ms IS NULL",
            reopen: concat!(
                "UPDATE durable_debounce SET workflow_id = $2, first_ms = ", $now,
                " WHERE debounce_key = $1"
            ),
        }
    };
}

dialects! { static SQL: DebounceSql = debounce_sql; }

impl SqlStore {
    pub(super) async fn debounce_call(&self, d: &NewDebounce<'_>) -> StoreResult<(Uuid, bool)> {
        let s = &SQL[self.dialect as usize];
        super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            // The key's row lock: a caller stopped or stalled while holding
            // it must not hold up every other call of the key.
            self.bound_claim(&txn).await?;
            let fresh = self.fresh_id();
            let key = d.key.to_string();
            let opened = self
                .query_one(&txn, s.open, vec![key.clone().into(), self.id(fresh)])
                .await?
                .is_some();
            if !opened {
                let row = self
                    .query_one(&txn, s.current, vec![key.clone().into()])
                    .await?
                    .ok_or_else(|| {
                        crate::error::DurableError::custom(format!("debounce key '{key}' vanished"))
                    })?;
                let r = Row::new(&row, self.dialect);
                let (current, first_ms, now): (Uuid, i64, i64) =
                    (r.id("workflow_id")?, r.get("first_ms")?, r.get("now_ms")?);
                let start = d.start_ms(now, first_ms);
                let values = vec![self.id(current), d.work.input.clone().into(), start.into()];
                if self.execute(&txn, s.gather, values).await? > 0 {
                    self.bounded(txn.commit()).await?;
                    return Ok((current, false));
                }
                self.execute(&txn, s.reopen, vec![key.clone().into(), self.id(fresh)])
                    .await?;
            }
            // A burst's workflow has a key of its own: the debounce key and
            // its id.
            let work_key = d.burst_key(fresh);
            self.enqueue_in(&txn, &d.burst_work(&work_key), fresh)
                .await?;
            self.bounded(txn.commit()).await?;
            Ok::<_, crate::error::DurableError>((fresh, true))
        })
        .await
    }
}
