//! The journal: history pages, the check read before a new durable call,
//! and the fenced commit of an entry, alone or with its effect
//! (`sql/journal.rs`).

use uuid::Uuid;

use super::state::{State, Step};
use crate::status::Status;
use crate::store::{Check, Checkpoint, Effect, Entry, Seen, StoreResult};

impl State {
    /// `page`: entries from `from_position` on, with their children's rows.
    /// A negative `limit` reads no entry (PostgreSQL refuses one; SQLite
    /// reads all: no caller passes one).
    pub(super) fn history_page(
        &self,
        workflow: Uuid,
        from_position: i32,
        limit: i64,
    ) -> Vec<Entry> {
        let limit = usize::try_from(limit).unwrap_or(0);
        self.steps
            .range((workflow, from_position)..=(workflow, i32::MAX))
            .take(limit)
            .map(|(_, step)| self.entry_of(step, true))
            .collect()
    }

    /// `entry`: one entry with its child's row.
    pub(super) fn entry(&self, workflow: Uuid, position: i32) -> Option<Entry> {
        self.steps
            .get(&(workflow, position))
            .map(|step| self.entry_of(step, true))
    }

    /// `check_root` / `check_child`. A root is its own lease holder (the
    /// `holder` argument is not read); a child's check needs its holder
    /// to exist (the `JOIN`). The entry comes without its child's row.
    pub(super) fn check(
        &self,
        workflow: Uuid,
        root: bool,
        holder: Uuid,
        position: i32,
        now: i64,
    ) -> Option<Check> {
        let me = &self.workflows.get(&workflow)?.row;
        let entry = self
            .steps
            .get(&(workflow, position))
            .map(|step| self.entry_of(step, false));
        if root {
            return Some(Check {
                holder_owner: me.owner_id,
                holder_epoch: me.lease_epoch,
                status: me.status,
                blocked: matches!(me.status, Status::Cancelled | Status::Paused)
                    .then_some(me.status),
                deadline_ms: me.deadline_ms,
                now_ms: now,
                entry,
            });
        }
        let h = &self.workflows.get(&holder)?.row;
        // The ancestor chain, the workflow first.
        let mut chain = Vec::new();
        let mut at = Some(workflow);
        while let Some(id) = at {
            let Some(w) = self.workflows.get(&id) else {
                break;
            };
            chain.push(&w.row);
            at = w.row.parent_id;
        }
        let blocked = if chain.iter().any(|w| w.status == Status::Cancelled) {
            Some(Status::Cancelled)
        } else if chain.iter().any(|w| w.status == Status::Paused) {
            Some(Status::Paused)
        } else {
            None
        };
        Some(Check {
            holder_owner: h.owner_id,
            holder_epoch: h.lease_epoch,
            status: me.status,
            blocked,
            deadline_ms: chain.iter().filter_map(|w| w.deadline_ms).min(),
            now_ms: now,
            entry,
        })
    }

    /// What a written entry saw of its workflow (as `commit` on SQL returns).
    pub(super) fn seen(&self, workflow: Uuid, now: i64) -> Option<Seen> {
        let row = &self.workflows.get(&workflow)?.row;
        Some(Seen {
            status: row.status,
            deadline_ms: row.deadline_ms,
            now_ms: now,
        })
    }

    /// Whether `commit` would write `cp` (nothing is changed).
    pub(super) fn accepts(&self, cp: &Checkpoint<'_>) -> bool {
        if !self.fenced(&cp.lease) {
            return false;
        }
        match self.steps.get(&(cp.workflow, cp.position)) {
            None => true,
            Some(old) => {
                !old.entry.is_finished() && old.entry.key == cp.key && old.entry.kind == cp.kind
            }
        }
    }

    /// `commit`: insert the entry, or update an unfinished one of the same
    /// call; fenced. As on SQL, an update keeps the entry's name, retry
    /// limit, creation and start times, and its first wake-up time and child.
    pub(super) fn commit(&mut self, cp: &Checkpoint<'_>, now: i64) -> bool {
        if !self.accepts(cp) {
            return false;
        }
        let completed_ms = matches!(cp.status, Status::Completed | Status::Failed).then_some(now);
        match self.steps.get_mut(&(cp.workflow, cp.position)) {
            Some(old) => {
                let e = &mut old.entry;
                e.status = cp.status;
                e.output = cp.output.clone();
                e.error = cp.error.clone();
                e.retry_count = cp.retry_count;
                e.completed_ms = completed_ms;
                e.wake_ms = e.wake_ms.or(cp.wake_ms);
                old.child_id = old.child_id.or(cp.child);
            }
            None => {
                let entry = Entry {
                    position: cp.position,
                    key: cp.key.to_string(),
                    name: cp.name.to_string(),
                    kind: cp.kind,
                    status: cp.status,
                    output: cp.output.clone(),
                    error: cp.error.clone(),
                    retry_count: cp.retry_count,
                    max_retries: cp.max_retries,
                    wake_ms: cp.wake_ms,
                    created_ms: now,
                    started_ms: Some(cp.started_ms),
                    completed_ms,
                    child: None,
                };
                self.steps.insert(
                    (cp.workflow, cp.position),
                    Step {
                        entry,
                        child_id: cp.child,
                    },
                );
            }
        }
        true
    }

    /// `commit_with_effect`: the effect, then the entry; both or neither.
    /// The effect is checked first (its error wins, as on SQL, where it
    /// runs first and the transaction is rolled back), then the commit;
    /// only when both go through is anything written.
    pub(super) fn commit_with(
        &mut self,
        cp: &Checkpoint<'_>,
        effect: &Effect<'_>,
        now: i64,
    ) -> StoreResult<bool> {
        match effect {
            Effect::Send(message) => {
                if !self.can_deliver(message)? {
                    // A keyed message that was stored before: nothing to
                    // store, the entry is written alone.
                    return Ok(self.commit(cp, now));
                }
                if !self.accepts(cp) {
                    return Ok(false);
                }
                self.deliver(message, now)?;
            }
            Effect::Event { key, value } => {
                if !self.accepts(cp) {
                    return Ok(false);
                }
                self.publish_event(cp.workflow, cp.position, key, value);
            }
            Effect::Stream { key, value } => {
                let offset = self.next_offset(cp.workflow, key)?;
                if !self.accepts(cp) {
                    return Ok(false);
                }
                self.streams.insert(
                    (cp.workflow, key.to_string(), offset),
                    value.map(str::to_string),
                );
            }
        }
        Ok(self.commit(cp, now))
    }
}
