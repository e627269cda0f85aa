//! The tables of the in-memory store and the predicates its operations
//! share (the counterparts of `sql/dialect.rs`: owner liveness, the
//! fence, the claimable set, the run unit of a workflow, a subtree).
//!
//! Every table is a `BTreeMap`, so every scan visits rows in one order
//! (by id, by position, by sequence number): a seeded simulation replays
//! exactly. Indexes that SQL keeps as unique constraints (root keys, child
//! keys per parent, message keys per recipient) are maps of their own, so
//! the "ON CONFLICT" of each statement is one lookup here.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::status::{Status, StepKind};
use crate::store::{Entry, ExecutorRow, Lease, QueueLimits, ScheduleRow, WorkflowRow};

/// A `durable_executor` row.
#[derive(Debug, Clone)]
pub(super) struct Executor {
    pub(super) row: ExecutorRow,
    pub(super) lease_expires_ms: i64,
}

/// A `durable_workflow` row: what the engine reads, and the run unit
/// (`run_id`: a spawned child and the inline children under it; `None`
/// means the root), which the row type does not carry.
#[derive(Debug, Clone)]
pub(super) struct Workflow {
    pub(super) row: WorkflowRow,
    pub(super) run_id: Option<Uuid>,
}

/// A `durable_step` row: the entry (without its child's row, which is
/// joined when it is read) and the child it refers to.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) entry: Entry,
    pub(super) child_id: Option<Uuid>,
}

/// A `durable_message` row.
#[derive(Debug, Clone)]
pub(super) struct Message {
    pub(super) workflow: Uuid,
    pub(super) topic: String,
    pub(super) payload: String,
}

/// Everything the store holds, behind the store's one mutex.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) executors: BTreeMap<Uuid, Executor>,
    pub(super) workflows: BTreeMap<Uuid, Workflow>,
    /// Roots by key (`durable_workflow_root_key`).
    pub(super) roots: BTreeMap<String, Uuid>,
    /// Children by (parent, key) (`durable_workflow_child_key`); also the
    /// walk down a subtree.
    pub(super) children: BTreeMap<(Uuid, String), Uuid>,
    /// The journal by (workflow, position).
    pub(super) steps: BTreeMap<(Uuid, i32), Step>,
    /// Messages by sequence number (send order).
    pub(super) messages: BTreeMap<i64, Message>,
    pub(super) last_seq: i64,
    /// Keys of messages by recipient (`durable_message_key`).
    pub(super) message_keys: BTreeSet<(Uuid, String)>,
    /// Untaken messages by (recipient, topic, seq) (`durable_message_waiting`).
    pub(super) untaken: BTreeSet<(Uuid, String, i64)>,
    /// Event values by (workflow, key, position of the publishing call).
    pub(super) events: BTreeMap<(Uuid, String, i32), String>,
    /// Stream items by (workflow, key, offset); `None` closes the stream.
    pub(super) streams: BTreeMap<(Uuid, String, i64), Option<String>>,
    pub(super) queues: BTreeMap<String, QueueLimits>,
    /// Entries set aside by retries, by (workflow, position, round), with
    /// the time they were (`durable_step_history`).
    pub(super) history: BTreeMap<(Uuid, i32, i32), (Step, i64)>,
    /// Schedules by name (`durable_schedule`).
    pub(super) schedules: BTreeMap<String, ScheduleRow>,
    /// Bursts by debounce key: their workflow and first call
    /// (`durable_debounce`).
    pub(super) debounces: BTreeMap<String, (Uuid, i64)>,
}

/// Whether `status` is one a claim or a finish treats as active.
pub(super) fn pending_or_running(status: Status) -> bool {
    matches!(status, Status::Pending | Status::Running)
}

/// Active in the sense of the `owned` index: not finished.
pub(super) fn unfinished(status: Status) -> bool {
    matches!(status, Status::Pending | Status::Running | Status::Paused)
}

impl State {
    /// `owner_alive`: an executor row with a live lease by the store
    /// clock. (No renewal is ever in flight here: operations are atomic.)
    pub(super) fn owner_alive(&self, owner: Option<Uuid>, now: i64) -> bool {
        owner
            .and_then(|id| self.executors.get(&id))
            .is_some_and(|e| e.lease_expires_ms > now)
    }

    /// `fenced!`: the lease holder is owned by the lease's owner under its epoch.
    pub(super) fn fenced(&self, lease: &Lease) -> bool {
        self.workflows.get(&lease.holder).is_some_and(|h| {
            h.row.owner_id == Some(lease.owner) && h.row.lease_epoch == lease.epoch
        })
    }

    /// `lock_owned`: workflow `id` is owned by the lease's owner under its
    /// epoch (unlike [`State::fenced`], of the row itself, not its holder).
    pub(super) fn owned_under(&self, id: Uuid, lease: &Lease) -> bool {
        self.workflows.get(&id).is_some_and(|w| {
            w.row.owner_id == Some(lease.owner) && w.row.lease_epoch == lease.epoch
        })
    }

    /// `claimable!`: active, not owned by a live executor nor by `me`,
    /// and due.
    pub(super) fn claimable(&self, w: &WorkflowRow, me: Uuid, now: i64) -> bool {
        pending_or_running(w.status)
            && match w.owner_id {
                None => true,
                Some(owner) => owner != me && !self.owner_alive(Some(owner), now),
            }
            && w.available_ms.is_none_or(|at| at <= now)
    }

    /// An entry as read, with its child's row as it is now (`with_child`,
    /// the `LEFT JOIN` of `entry_with_child!`).
    pub(super) fn entry_of(&self, step: &Step, with_child: bool) -> Entry {
        let mut entry = step.entry.clone();
        entry.child = if with_child {
            step.child_id
                .and_then(|id| self.workflows.get(&id))
                .map(|c| Box::new(c.row.clone()))
        } else {
            None
        };
        entry
    }

    /// `lock_run_unit`: the run unit of `workflow` (its spawned ancestor,
    /// or its root) and the workflow's own status; `None` for an unknown
    /// id (or a run unit that does not exist).
    pub(super) fn run_unit(&self, workflow: Uuid) -> Option<(Uuid, Status)> {
        let w = self.workflows.get(&workflow)?;
        let holder = w.run_id.unwrap_or(w.row.root_id);
        self.workflows.get(&holder)?;
        Some((holder, w.row.status))
    }

    /// `wake`: make a suspended run unit claimable now (the wait stays
    /// recorded in `wait_for` until a claim clears it).
    pub(super) fn wake_run_unit(&mut self, holder: Uuid) {
        if let Some(w) = self.workflows.get_mut(&holder)
            && w.row.owner_id.is_none()
            && pending_or_running(w.row.status)
        {
            w.row.available_ms = None;
        }
    }

    /// The entries of `workflow`, by position.
    pub(super) fn steps_of(&self, workflow: Uuid) -> impl Iterator<Item = &Step> {
        self.steps
            .range((workflow, i32::MIN)..=(workflow, i32::MAX))
            .map(|(_, step)| step)
    }

    /// `waiting_recv`: a `recv` of `topic` waits in `workflow`.
    pub(super) fn recv_waits(&self, workflow: Uuid, topic: &str) -> bool {
        self.steps_of(workflow).any(|s| {
            s.entry.kind == StepKind::Recv
                && s.entry.status == Status::Pending
                && s.entry.name == topic
        })
    }

    /// `waiting_join`: a `join` of `child`, or a `select`, waits in `workflow`.
    pub(super) fn join_waits(&self, workflow: Uuid, child: Uuid) -> bool {
        self.steps_of(workflow).any(|s| {
            s.entry.status == Status::Pending
                && ((s.entry.kind == StepKind::Join && s.child_id == Some(child))
                    || s.entry.kind == StepKind::Select)
        })
    }

    /// The direct children of `parent`, by key.
    pub(super) fn children_of(&self, parent: Uuid) -> impl Iterator<Item = Uuid> + '_ {
        self.children
            .range((parent, String::new())..)
            .take_while(move |((p, _), _)| *p == parent)
            .map(|(_, id)| *id)
    }

    /// `subtree!`: `id` and all its descendants (parents before children);
    /// empty for an unknown id.
    pub(super) fn subtree(&self, id: Uuid) -> Vec<Uuid> {
        if !self.workflows.contains_key(&id) {
            return Vec::new();
        }
        let mut tree = vec![id];
        let mut next = 0;
        while next < tree.len() {
            let parent = tree[next];
            tree.extend(self.children_of(parent));
            next += 1;
        }
        tree
    }

    /// A new workflow row with the column defaults of `durable_workflow`.
    pub(super) fn blank_row(
        id: Uuid,
        root_id: Uuid,
        key: &str,
        name: &str,
        now: i64,
    ) -> WorkflowRow {
        WorkflowRow {
            id,
            root_id,
            parent_id: None,
            parent_position: None,
            key: key.to_string(),
            name: name.to_string(),
            status: Status::Pending,
            input: None,
            output: None,
            error: None,
            owner_id: None,
            lease_epoch: 0,
            queue: None,
            priority: 0,
            concurrency_key: None,
            available_ms: None,
            wait_for: None,
            timeout_ms: None,
            deadline_ms: None,
            app_version: None,
            attempts: 0,
            recoveries: 0,
            created_ms: now,
            started_ms: None,
            completed_ms: None,
            history_empty: false,
            claimed_ms: None,
        }
    }

    /// Insert a workflow row, with its key in the index of its kind.
    pub(super) fn insert_workflow(&mut self, row: WorkflowRow, run_id: Option<Uuid>) {
        match row.parent_id {
            None => self.roots.insert(row.key.clone(), row.id),
            Some(parent) => self.children.insert((parent, row.key.clone()), row.id),
        };
        self.workflows.insert(row.id, Workflow { row, run_id });
    }
}
