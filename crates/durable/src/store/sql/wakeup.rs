//! Wake-ups of suspended workflows, and the one rule that keeps them from
//! being lost.
//!
//! A waiting workflow is released by its runner (`release` in
//! `workflow.rs`), and something else brings what it waits for: a message
//! (`send`), a spawned child finishing, a waker. Both sides **lock the row
//! of the run unit first** (the workflow whose claim runs the waiting one:
//! its root, or the spawned child it lives under). The runner then looks
//! whether what it waits for is there ([`SqlStore::is_ready`]) and stays
//! claimable if so; the other side stores what it brings and then, if the
//! workflow waits for it, makes the run unit claimable
//! ([`SqlStore::wake_if_waiting`]). Whoever locks second sees the other's
//! commit, so the wake-up is never lost.

use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::dialects;
use crate::error::DurableError;
use crate::status::{Status, StepKind};
use crate::store::{StoreResult, Suspension};

pub(super) struct WakeupSql {
    /// The run unit of workflow `$1` and the workflow's status.
    holder_of: &'static str,
    /// Lock a run unit's row. `$1` id. Returns its queue.
    lock_holder: &'static str,
    /// Status of workflow `$1`.
    status_of: &'static str,
    /// Make a suspended run unit claimable now. `$1` id.
    wake: &'static str,
    /// A `recv` of topic `$2` waits in workflow `$1`.
    waiting_recv: &'static str,
    /// A `join` of child `$2`, or a `select`, waits in workflow `$1`.
    waiting_join: &'static str,
    /// The waiting entry of a released workflow. `$1` workflow, `$2` position.
    waiting_entry: &'static str,
    /// A message of topic `$2` waits to be taken by workflow `$1`.
    message_waiting: &'static str,
}

macro_rules! wakeup_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        WakeupSql {
            holder_of: "SELECT COALESCE(run_id, root_id) AS holder, status FROM durable_workflow WHERE id = $1",
            lock_holder: concat!("SELECT queue FROM durable_workflow WHERE id = $1", $lock_row),
            status_of: "SELECT status FROM durable_workflow WHERE id = $1",
            wake: "UPDATE durable_workflow SET available_ms = NULL \
                 WHERE id = $1 AND owner_id IS NULL AND status IN ('PENDING', 'RUNNING')",
            waiting_recv: "SELECT 1 AS found FROM durable_step WHERE workflow_id = $1 AND kind = 'RECV' \
                 AND status = 'PENDING' AND name = $2",
            waiting_join: "SELECT 1 AS found FROM durable_step WHERE workflow_id = $1 AND status = 'PENDING' \
                 AND ((kind = 'JOIN' AND child_id = $2) OR kind = 'SELECT')",
            waiting_entry: "SELECT kind, name, status, output, child_id FROM durable_step \
                 WHERE workflow_id = $1 AND position = $2",
            message_waiting: "SELECT 1 AS found FROM durable_message WHERE workflow_id = $1 AND topic = $2 \
                 AND consumed_position IS NULL LIMIT 1",
        }
    };
}

dialects! { static SQL: WakeupSql = wakeup_sql; }

/// What was brought to a workflow that may be waiting for it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arrival<'a> {
    /// A message of this topic.
    Message(&'a str),
    /// This spawned child finished.
    Child(Uuid),
}

/// A run unit made claimable: its queue's workers are told after the
/// commit ([`SqlStore::announce`]).
#[derive(Debug)]
pub(super) struct Woken {
    queue: Option<String>,
}

/// The run unit of a workflow, locked.
#[derive(Debug)]
pub(super) struct Locked {
    pub(super) holder: Uuid,
    /// The status of the workflow itself (not of its run unit).
    pub(super) status: Status,
    pub(super) queue: Option<String>,
}

impl SqlStore {
    fn wakeup_sql(&self) -> &'static WakeupSql {
        &SQL[self.dialect as usize]
    }

    /// Lock the run unit of `workflow` inside `txn` and read the
    /// workflow's status after the lock; `None` for an unknown id.
    pub(super) async fn lock_run_unit(
        &self,
        txn: &DatabaseTransaction,
        workflow: Uuid,
    ) -> StoreResult<Option<Locked>> {
        let s = self.wakeup_sql();
        let Some(row) = self
            .query_one(txn, s.holder_of, vec![self.id(workflow)])
            .await?
        else {
            return Ok(None);
        };
        let holder = Row::new(&row, self.dialect).id("holder")?;
        let Some(row) = self
            .query_one(txn, s.lock_holder, vec![self.id(holder)])
            .await?
        else {
            return Ok(None);
        };
        let queue = Row::new(&row, self.dialect).get("queue")?;
        // Read again under the lock: a finish fenced by this run unit has
        // committed before it, or waits for us.
        let Some(row) = self
            .query_one(txn, s.status_of, vec![self.id(workflow)])
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Locked {
            holder,
            status: Row::new(&row, self.dialect).status("status")?,
            queue,
        }))
    }

    /// After storing `arrival` for `workflow` (whose run unit `locked` is
    /// locked in `txn`): make the run unit claimable if the workflow waits
    /// for it.
    pub(super) async fn wake_if_waiting(
        &self,
        txn: &DatabaseTransaction,
        workflow: Uuid,
        locked: &Locked,
        arrival: Arrival<'_>,
    ) -> StoreResult<Option<Woken>> {
        let s = self.wakeup_sql();
        let (sql, values) = match arrival {
            Arrival::Message(topic) => (s.waiting_recv, vec![self.id(workflow), topic.into()]),
            Arrival::Child(child) => (s.waiting_join, vec![self.id(workflow), self.id(child)]),
        };
        if self.query_one(txn, sql, values).await?.is_none() {
            return Ok(None);
        }
        self.wake_run_unit(txn, locked.holder).await?;
        Ok(Some(Woken {
            queue: locked.queue.clone(),
        }))
    }

    /// A spawned child of `parent` ended (finished, or cancelled on its
    /// own): wake the parent if it waits to join it.
    pub(super) async fn wake_parent(
        &self,
        txn: &DatabaseTransaction,
        parent: Uuid,
        child: Uuid,
    ) -> StoreResult<Option<Woken>> {
        match self.lock_run_unit(txn, parent).await? {
            Some(locked) => {
                self.wake_if_waiting(txn, parent, &locked, Arrival::Child(child))
                    .await
            }
            None => Ok(None),
        }
    }

    /// Tell the workers of a run unit's queue that it woke (after the
    /// commit that woke it).
    pub(super) async fn announce(&self, woken: Option<Woken>) {
        if let Some(woken) = woken {
            self.hint(woken.queue.as_deref()).await;
        }
    }

    /// Make a locked, suspended run unit claimable now.
    pub(super) async fn wake_run_unit(
        &self,
        txn: &DatabaseTransaction,
        holder: Uuid,
    ) -> StoreResult<()> {
        self.execute(txn, self.wakeup_sql().wake, vec![self.id(holder)])
            .await?;
        Ok(())
    }

    /// Whether what a released workflow waits for is already there (read
    /// under the lock of its run unit): then it stays claimable.
    pub(super) async fn is_ready(
        &self,
        txn: &DatabaseTransaction,
        suspension: &Suspension,
    ) -> StoreResult<bool> {
        let s = self.wakeup_sql();
        let values = vec![self.id(suspension.workflow), suspension.position.into()];
        let Some(row) = self.query_one(txn, s.waiting_entry, values).await? else {
            return Ok(false);
        };
        let r = Row::new(&row, self.dialect);
        if r.status("status")? != Status::Pending {
            return Ok(true);
        }
        let kind = StepKind::parse(&r.get::<String>("kind")?)?;
        match kind {
            StepKind::Recv => {
                let values = vec![
                    self.id(suspension.workflow),
                    r.get::<String>("name")?.into(),
                ];
                Ok(self
                    .query_one(txn, s.message_waiting, values)
                    .await?
                    .is_some())
            }
            StepKind::Join => match r.opt_id("child_id")? {
                Some(child) => self.any_finished(txn, &[child]).await,
                None => Ok(false),
            },
            StepKind::Select => {
                let output: Option<String> = r.get("output")?;
                let candidates: Vec<Uuid> = output
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or_default();
                self.any_finished(txn, &candidates).await
            }
            _ => Ok(false),
        }
    }

    async fn any_finished(&self, txn: &DatabaseTransaction, ids: &[Uuid]) -> StoreResult<bool> {
        for id in ids {
            let row = self
                .query_one(txn, self.wakeup_sql().status_of, vec![self.id(*id)])
                .await?;
            if let Some(row) = row
                && Row::new(&row, self.dialect).status("status")?.is_terminal()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether a message of `topic` waits for `workflow`.
    pub(super) async fn message_waits(&self, workflow: Uuid, topic: &str) -> StoreResult<bool> {
        let values = vec![self.id(workflow), topic.into()];
        Ok(self
            .query_one_once(self.wakeup_sql().message_waiting, values)
            .await?
            .is_some())
    }
}

/// The error for a message to a workflow that has finished.
pub(super) fn finished_recipient(workflow: Uuid, status: Status) -> DurableError {
    DurableError::InvalidTransition {
        task: workflow,
        status: status.as_str().to_string(),
        action: "send a message to",
    }
}
