//! Executors: lease rows and heartbeats (`sql/executor.rs`): an owner is
//! alive exactly while its lease is.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::state::{Executor, State, unfinished};
use crate::store::{ExecutorRow, Renewal};

impl State {
    /// `upsert`: register, or renew unless a renewal finds the lease
    /// expired; whether the lease is live afterwards. Only the lease of an
    /// existing row changes, as on SQL.
    pub(super) fn heartbeat(
        &mut self,
        executor: &ExecutorRow,
        lease_ms: i64,
        renew: Renewal,
        now: i64,
    ) -> bool {
        let expires = now.saturating_add(lease_ms);
        match self.executors.get_mut(&executor.id) {
            None => {
                self.executors.insert(
                    executor.id,
                    Executor {
                        row: executor.clone(),
                        lease_expires_ms: expires,
                    },
                );
                true
            }
            Some(row) if renew == Renewal::Register || row.lease_expires_ms > now => {
                row.lease_expires_ms = expires;
                true
            }
            Some(_) => false,
        }
    }

    /// `expire`: dead at once; an unknown id is no error.
    pub(super) fn expire_executor(&mut self, id: Uuid) {
        if let Some(row) = self.executors.get_mut(&id) {
            row.lease_expires_ms = 0;
        }
    }

    /// `owner_of`: the owner's row and whether its lease is live; `None`
    /// for an unknown workflow, one without an owner, or an owner without
    /// an executor row (the `JOIN`).
    pub(super) fn owner_of(&self, workflow: Uuid, now: i64) -> Option<(ExecutorRow, bool)> {
        let owner = self.workflows.get(&workflow)?.row.owner_id?;
        let e = self.executors.get(&owner)?;
        Some((e.row.clone(), e.lease_expires_ms > now))
    }

    /// `live_owners`, by id.
    pub(super) fn live_owners(&self, now: i64) -> Vec<ExecutorRow> {
        let owning: BTreeSet<Uuid> = self
            .workflows
            .values()
            .filter(|w| unfinished(w.row.status))
            .filter_map(|w| w.row.owner_id)
            .collect();
        self.executors
            .values()
            .filter(|e| e.lease_expires_ms > now && owning.contains(&e.row.id))
            .map(|e| e.row.clone())
            .collect()
    }
}
