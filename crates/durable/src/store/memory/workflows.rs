//! Workflows: start a root or a child, fix deadlines, finish, release,
//! and the management transitions of a subtree (`sql/workflow.rs` and
//! `sql/manage.rs`). Each function is one SQL transaction of those files,
//! applied under the store's lock, so it is atomic in the same way.

use uuid::Uuid;

use super::state::{State, Step, pending_or_running, unfinished};
use crate::error::DurableError;
use crate::status::{Status, StepKind};
use crate::store::{
    ChildStart, Entry, Lease, NewChild, NewRoot, Retried, Started, StoreResult, Suspension,
    Transition,
};

impl State {
    /// `start_root`: create the root, or claim the existing one of the key
    /// if it is unfinished, runs the same name, and has no live owner
    /// other than the caller (a dead owner's is taken over: a recovery).
    /// As on SQL, a claim of an existing row leaves its wake-up time and
    /// what it waits for as they were.
    pub(super) fn start_root(&mut self, root: &NewRoot<'_>, new_id: Uuid, now: i64) -> Started {
        let Some(&id) = self.roots.get(root.key) else {
            let mut row = Self::blank_row(new_id, new_id, root.key, root.name, now);
            row.status = Status::Running;
            row.input = root.input.clone();
            row.owner_id = Some(root.owner);
            row.lease_epoch = 1;
            row.attempts = 1;
            row.started_ms = Some(now);
            self.insert_workflow(row.clone(), None);
            return Started::Claimed { row, created: true };
        };
        let current = self.workflows[&id].row.owner_id;
        let owner_dead = !self.owner_alive(current, now);
        let w = &mut self.workflows.get_mut(&id).expect("indexed root").row;
        let may_claim = unfinished(w.status)
            && w.name == root.name
            && (current.is_none() || current == Some(root.owner) || owner_dead);
        if !may_claim {
            return Started::Refused(w.clone());
        }
        if current != Some(root.owner) {
            w.lease_epoch += 1;
            w.attempts += 1;
            if current.is_some() {
                w.recoveries += 1;
            }
        }
        w.owner_id = Some(root.owner);
        if w.status == Status::Pending {
            w.status = Status::Running;
        }
        w.started_ms.get_or_insert(now);
        Started::Claimed {
            row: w.clone(),
            created: false,
        }
    }

    /// `insert_child` / `insert_spawned` and `child_entry` in one
    /// transaction: both rows or neither; then, if nothing was created,
    /// the entry at the position decides between `Recorded` and `Fenced`.
    pub(super) fn start_child(
        &mut self,
        child: &NewChild<'_>,
        new_id: Uuid,
        now: i64,
    ) -> ChildStart {
        let slot = (child.parent, child.position);
        let creates = self.fenced(&child.lease)
            && !self
                .children
                .contains_key(&(child.parent, child.key.to_string()))
            && !self.steps.contains_key(&slot);
        if !creates {
            return match self.steps.get(&slot) {
                Some(step) => ChildStart::Recorded(self.entry_of(step, true)),
                None => ChildStart::Fenced,
            };
        }
        let mut row = Self::blank_row(new_id, child.root, child.key, child.name, now);
        row.parent_id = Some(child.parent);
        row.parent_position = Some(child.position);
        row.input = child.input.clone();
        let (run_id, kind) = match child.spawn {
            Some(spawn) => {
                row.queue = Some(spawn.queue.to_string());
                row.app_version = spawn.app_version.map(str::to_string);
                (Some(new_id), StepKind::Spawn)
            }
            None => {
                row.status = Status::Running;
                row.attempts = 1;
                row.started_ms = Some(now);
                // Under a spawned child, the run unit is that child.
                let run_id = (child.lease.holder != child.root).then_some(child.lease.holder);
                (run_id, StepKind::Workflow)
            }
        };
        let entry = Entry {
            position: child.position,
            key: child.key.to_string(),
            name: child.name.to_string(),
            kind,
            status: Status::Completed,
            output: None,
            error: None,
            retry_count: 0,
            max_retries: 0,
            wake_ms: None,
            created_ms: now,
            started_ms: Some(child.started_ms),
            completed_ms: Some(now),
            child: None,
        };
        self.insert_workflow(row.clone(), run_id);
        self.steps.insert(
            slot,
            super::state::Step {
                entry,
                child_id: Some(new_id),
            },
        );
        ChildStart::Created(Box::new(row))
    }

    /// `set_timeout`: the timeout and deadline are fixed the first time;
    /// `false` for an unknown id.
    pub(super) fn set_timeout(&mut self, id: Uuid, timeout_ms: i64, now: i64) -> bool {
        let Some(w) = self.workflows.get_mut(&id) else {
            return false;
        };
        w.row.timeout_ms.get_or_insert(timeout_ms);
        w.row
            .deadline_ms
            .get_or_insert(now.saturating_add(timeout_ms));
        true
    }

    /// `finish`, fenced; a spawned child's finish wakes a parent joining it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish(
        &mut self,
        id: Uuid,
        lease: &Lease,
        status: Status,
        output: Option<String>,
        error: Option<String>,
        spawned_by: Option<Uuid>,
        now: i64,
    ) -> bool {
        let active = self
            .workflows
            .get(&id)
            .is_some_and(|w| pending_or_running(w.row.status));
        if !active || !self.fenced(lease) {
            return false;
        }
        let w = &mut self.workflows.get_mut(&id).expect("checked above").row;
        w.status = status;
        w.output = output;
        w.error = error;
        w.completed_ms = Some(now);
        if let Some(parent) = spawned_by {
            self.wake_parent(parent, id);
        }
        true
    }

    /// `release`, of the row we own under this epoch; with a suspension,
    /// not claimable before its wake-up unless what it waits for is there
    /// already (`is_ready`). As on SQL, the status is not checked: a
    /// finished row still owned loses its owner and keeps its status.
    pub(super) fn release(
        &mut self,
        id: Uuid,
        lease: &Lease,
        suspension: Option<&Suspension>,
    ) -> bool {
        if !self.owned_under(id, lease) {
            return false;
        }
        let (available, wait_for) = match suspension {
            None => (None, None),
            Some(s) => {
                // A wait without a time (a join) waits until it is woken.
                let wake = (!self.is_ready(s)).then(|| s.wake_ms.unwrap_or(i64::MAX));
                (wake, s.wait_for.clone())
            }
        };
        let w = &mut self.workflows.get_mut(&id).expect("owned").row;
        w.owner_id = None;
        if w.status == Status::Running {
            w.status = Status::Pending;
        }
        w.available_ms = available;
        w.wait_for = wait_for;
        true
    }

    /// `release_dead`: the unfinished workflows of dead owners, by id.
    pub(super) fn release_dead(&mut self, now: i64) -> Vec<Uuid> {
        let dead: Vec<Uuid> = self
            .workflows
            .values()
            .filter(|w| {
                w.row.owner_id.is_some()
                    && unfinished(w.row.status)
                    && !self.owner_alive(w.row.owner_id, now)
            })
            .map(|w| w.row.id)
            .collect();
        for id in &dead {
            let w = &mut self.workflows.get_mut(id).expect("listed").row;
            w.owner_id = None;
            w.recoveries += 1;
            if w.status == Status::Running {
                w.status = Status::Pending;
            }
        }
        dead
    }

    /// `release_owned`: every unfinished workflow of `owner`; how many.
    pub(super) fn release_owned(&mut self, owner: Uuid) -> u64 {
        self.release_stray(owner, &[])
    }

    /// `release_stray`: the unfinished workflows of `owner` other than
    /// those in `running`; how many.
    pub(super) fn release_stray(&mut self, owner: Uuid, running: &[Uuid]) -> u64 {
        let mut released = 0;
        for w in self.workflows.values_mut() {
            if w.row.owner_id == Some(owner)
                && unfinished(w.row.status)
                && !running.contains(&w.row.id)
            {
                w.row.owner_id = None;
                if w.row.status == Status::Running {
                    w.row.status = Status::Pending;
                }
                released += 1;
            }
        }
        released
    }

    /// `transition_subtree`: check the target's transition, cascade over
    /// its subtree; a spawned child cancelled on its own wakes a parent
    /// joining it.
    pub(super) fn transition(
        &mut self,
        id: Uuid,
        transition: Transition,
        now: i64,
    ) -> StoreResult<u64> {
        let w = self.workflows.get(&id).ok_or(DurableError::NotFound(id))?;
        let status = w.row.status;
        let spawned_by = if w.run_id == Some(id) {
            w.row.parent_id
        } else {
            None
        };
        if !transition.allowed_from(status) {
            return Err(DurableError::InvalidTransition {
                task: id,
                status: status.as_str().to_string(),
                action: transition.verb(),
            });
        }
        let mut changed = 0;
        for member in self.subtree(id) {
            let row = &mut self.workflows.get_mut(&member).expect("in the tree").row;
            let next = match transition {
                Transition::Pause => pending_or_running(row.status).then_some(Status::Paused),
                Transition::Resume => (row.status == Status::Paused).then_some(if member == id {
                    Status::Running
                } else {
                    Status::Pending
                }),
                Transition::Cancel => (!row.status.is_terminal()).then_some(Status::Cancelled),
            };
            if let Some(next) = next {
                row.status = next;
                if transition == Transition::Cancel {
                    row.completed_ms = Some(now);
                }
                changed += 1;
            }
        }
        if let (Transition::Cancel, Some(parent)) = (transition, spawned_by) {
            self.wake_parent(parent, id);
        }
        Ok(changed)
    }
}

impl State {
    /// As the SQL store's `retry_subtree`.
    pub(super) fn retry(&mut self, id: Uuid, from: &[Status], now: i64) -> StoreResult<Retried> {
        let w = self.workflows.get(&id).ok_or(DurableError::NotFound(id))?;
        if let Some(parent) = w.row.parent_id {
            return Err(DurableError::InvalidInput(format!(
                "workflow {id} is a child of {parent}: retry its root, which retries it"
            )));
        }
        if !from.contains(&w.row.status) {
            return Err(DurableError::InvalidTransition {
                task: id,
                status: w.row.status.as_str().to_string(),
                action: "retry",
            });
        }
        let tree = self.subtree(id);
        let round = self
            .history
            .keys()
            .filter(|(w, _, _)| tree.contains(w))
            .map(|(_, _, round)| *round)
            .max()
            .unwrap_or(0)
            + 1;
        let reset: Vec<Uuid> = tree
            .into_iter()
            .filter(|m| from.contains(&self.workflows[m].row.status))
            .collect();
        let failed: Vec<(Uuid, i32)> = self
            .steps
            .iter()
            .filter(|((w, _), step)| reset.contains(w) && step.entry.status == Status::Failed)
            .map(|(key, _)| *key)
            .collect();
        for (workflow, position) in &failed {
            let step = self.steps.remove(&(*workflow, *position)).expect("listed");
            self.history
                .insert((*workflow, *position, round), (step, now));
        }
        let mut queues = Vec::new();
        for member in &reset {
            let row = &mut self.workflows.get_mut(member).expect("in the tree").row;
            row.status = Status::Pending;
            row.output = None;
            row.error = None;
            row.completed_ms = None;
            row.owner_id = None;
            row.lease_epoch += 1;
            row.available_ms = None;
            row.wait_for = None;
            row.recoveries = 0;
            row.deadline_ms = None;
            queues.extend(row.queue.clone());
        }
        queues.sort();
        queues.dedup();
        Ok(Retried {
            workflows: reset.len() as u64,
            steps: failed.len() as u64,
            queues,
        })
    }
}

impl State {
    /// As the SQL store's `purge_batch`.
    pub(super) fn purge(&mut self, before_ms: i64, batch: u32) -> Vec<Uuid> {
        let mut roots: Vec<(i64, Uuid)> = self
            .workflows
            .values()
            .map(|w| &w.row)
            .filter(|r| r.parent_id.is_none() && r.status.is_terminal())
            .filter_map(|r| {
                r.completed_ms
                    .filter(|&t| t <= before_ms)
                    .map(|t| (t, r.id))
            })
            .filter(|(_, id)| {
                self.workflows
                    .values()
                    .all(|w| w.row.root_id != *id || w.row.status.is_terminal())
            })
            .collect();
        roots.sort_unstable();
        roots.truncate(batch as usize);
        let roots: Vec<Uuid> = roots.into_iter().map(|(_, id)| id).collect();
        let members: Vec<Uuid> = self
            .workflows
            .values()
            .filter(|w| roots.contains(&w.row.root_id))
            .map(|w| w.row.id)
            .collect();
        let gone = |w: &Uuid| members.contains(w);
        self.steps.retain(|(w, _), _| !gone(w));
        self.history.retain(|(w, _, _), _| !gone(w));
        self.messages.retain(|_, m| !gone(&m.workflow));
        self.message_keys.retain(|(w, _)| !gone(w));
        self.untaken.retain(|(w, _, _)| !gone(w));
        self.events.retain(|(w, _, _), _| !gone(w));
        self.streams.retain(|(w, _, _), _| !gone(w));
        self.roots.retain(|_, id| !gone(id));
        self.children.retain(|_, id| !gone(id));
        self.workflows.retain(|id, _| !gone(id));
        roots
    }
}

impl State {
    /// As the SQL store's `fork_root`.
    pub(super) fn fork(
        &mut self,
        id: Uuid,
        from_position: i32,
        fork: Uuid,
        now: i64,
    ) -> StoreResult<Uuid> {
        let source = self
            .workflows
            .get(&id)
            .ok_or(DurableError::NotFound(id))?
            .row
            .clone();
        let last = self
            .steps
            .range((id, i32::MIN)..=(id, i32::MAX))
            .map(|((_, p), _)| *p)
            .max()
            .unwrap_or(-1);
        let copied: Vec<(i32, Step)> = self
            .steps
            .range((id, i32::MIN)..(id, from_position))
            .map(|((_, p), step)| (*p, step.clone()))
            .collect();
        let entries: Vec<_> = copied
            .iter()
            .map(|(p, step)| (*p, step.entry.status, step.child_id))
            .collect();
        crate::store::sql::check_fork(id, source.parent_id, from_position, last, &entries)?;
        let mut row = Self::blank_row(
            fork,
            fork,
            &fork.hyphenated().to_string(),
            &source.name,
            now,
        );
        row.input = source.input;
        row.queue = source.queue;
        row.priority = source.priority;
        row.concurrency_key = source.concurrency_key;
        row.app_version = source.app_version;
        row.timeout_ms = source.timeout_ms;
        self.insert_workflow(row, None);
        for (position, step) in copied {
            self.steps.insert((fork, position), step);
        }
        Ok(fork)
    }
}
