//! The values that cross the store interface.

use uuid::Uuid;

use crate::status::{Status, StepKind as Kind};

/// A workflow row as the engine reads it.
#[derive(Debug, Clone)]
pub(crate) struct WorkflowRow {
    pub(crate) id: Uuid,
    pub(crate) root_id: Uuid,
    pub(crate) parent_id: Option<Uuid>,
    pub(crate) parent_position: Option<i32>,
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) status: Status,
    /// JSON text.
    pub(crate) input: Option<String>,
    /// JSON text.
    pub(crate) output: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) owner_id: Option<Uuid>,
    pub(crate) lease_epoch: i64,
    pub(crate) queue: Option<String>,
    pub(crate) priority: i32,
    pub(crate) concurrency_key: Option<String>,
    pub(crate) available_ms: Option<i64>,
    pub(crate) wait_for: Option<String>,
    pub(crate) timeout_ms: Option<i64>,
    pub(crate) deadline_ms: Option<i64>,
    pub(crate) app_version: Option<String>,
    pub(crate) attempts: i32,
    pub(crate) recoveries: i32,
    pub(crate) created_ms: i64,
    pub(crate) started_ms: Option<i64>,
    pub(crate) completed_ms: Option<i64>,
    /// Known to have no journal entry, as told by a claim: claimed for the
    /// first time and not a fork (whose copied entries came with its row).
    /// Its run then reads no history page before its first call. `false`
    /// wherever it is not known.
    pub(crate) history_empty: bool,
    /// The database clock of the claim that returned this row (claims
    /// from a queue only): the claim set it RUNNING under a new lease, so
    /// it opens the start window as a checkpoint does.
    pub(crate) claimed_ms: Option<i64>,
}

/// One journal entry: the record of one durable call.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) position: i32,
    /// `name#n`.
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) status: Status,
    pub(crate) output: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) retry_count: i32,
    pub(crate) max_retries: i32,
    pub(crate) wake_ms: Option<i64>,
    pub(crate) created_ms: i64,
    pub(crate) started_ms: Option<i64>,
    pub(crate) completed_ms: Option<i64>,
    /// The child workflow a `child` call made, as it is now.
    pub(crate) child: Option<Box<WorkflowRow>>,
}

impl Entry {
    /// Completed or failed: the call's result is known for good.
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.status, Status::Completed | Status::Failed)
    }
}

/// The lease under which a workflow's writes are fenced: the executor that
/// owns the workflow `holder` (the root, or the nearest claimable
/// ancestor) and the epoch of its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) holder: Uuid,
    pub(crate) owner: Uuid,
    pub(crate) epoch: i64,
}

/// What the one read before a new durable call returns.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// Owner and epoch of the lease holder, as they are now.
    pub(crate) holder_owner: Option<Uuid>,
    pub(crate) holder_epoch: i64,
    /// The workflow's own status.
    pub(crate) status: Status,
    /// `CANCELLED` or `PAUSED` if the workflow or an ancestor is (cancel wins).
    pub(crate) blocked: Option<Status>,
    /// The earliest deadline along the ancestor chain.
    pub(crate) deadline_ms: Option<i64>,
    /// The database clock.
    pub(crate) now_ms: i64,
    /// The entry at the call's position, if one was written since the
    /// history was read.
    pub(crate) entry: Option<Entry>,
}

/// What a written entry saw of its own workflow, read by the statement
/// that wrote it (so at a moment after the write was sent): a root whose
/// workflow was RUNNING may start its next call without the check read
/// for a short while (see `call::window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The workflow's own status.
    pub(crate) status: Status,
    /// The workflow's own deadline.
    pub(crate) deadline_ms: Option<i64>,
    /// The database clock.
    pub(crate) now_ms: i64,
}

/// An entry to write.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint<'a> {
    pub(crate) workflow: Uuid,
    pub(crate) position: i32,
    pub(crate) key: &'a str,
    pub(crate) name: &'a str,
    pub(crate) kind: Kind,
    pub(crate) status: Status,
    pub(crate) output: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) retry_count: i32,
    pub(crate) max_retries: i32,
    pub(crate) wake_ms: Option<i64>,
    /// The spawned child a `JOIN` call waits for.
    pub(crate) child: Option<Uuid>,
    pub(crate) started_ms: i64,
    pub(crate) lease: Lease,
}

/// A root workflow to create or claim.
#[derive(Debug)]
pub(crate) struct NewRoot<'a> {
    pub(crate) key: &'a str,
    pub(crate) name: &'a str,
    pub(crate) input: Option<String>,
    pub(crate) owner: Uuid,
}

/// A child workflow to create at `position` of its parent.
#[derive(Debug)]
pub(crate) struct NewChild<'a> {
    pub(crate) root: Uuid,
    pub(crate) parent: Uuid,
    pub(crate) position: i32,
    pub(crate) key: &'a str,
    pub(crate) name: &'a str,
    pub(crate) input: Option<String>,
    pub(crate) started_ms: i64,
    /// The parent's lease, which fences the creation.
    pub(crate) lease: Lease,
    /// `Some` for a spawned child: the queue it waits on for any executor
    /// to claim it (it holds its own lease), and the app version it runs.
    pub(crate) spawn: Option<Spawn<'a>>,
}

/// Where a spawned child is run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spawn<'a> {
    pub(crate) queue: &'a str,
    pub(crate) app_version: Option<&'a str>,
}

/// What a durable call writes besides its journal entry, in the same
/// transaction (so it happens exactly once, fenced by the lease).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Effect<'a> {
    /// `ctx.send`: a message to another workflow.
    Send(NewMessage<'a>),
    /// `ctx.set_event`: a value published under a key.
    Event { key: &'a str, value: &'a str },
    /// `ctx.write_stream` (`Some` value) or `ctx.close_stream` (`None`).
    Stream {
        key: &'a str,
        value: Option<&'a str>,
    },
}

/// A message to a workflow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewMessage<'a> {
    pub(crate) to: Uuid,
    pub(crate) topic: &'a str,
    /// Idempotency key: a second message with it is not stored.
    pub(crate) key: Option<&'a str>,
    /// JSON text.
    pub(crate) payload: &'a str,
}

/// What a `recv` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Received {
    /// It took this message (JSON text) and recorded it.
    Message(String),
    /// No message yet: the call is recorded as waiting.
    Waiting,
    /// Not written: the lease is gone, or the entry was finished by
    /// another handle (read it back).
    Refused,
}

/// One item of a stream; `value` is `None` where the stream was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamItem {
    pub(crate) offset: i64,
    pub(crate) value: Option<String>,
}

/// A workflow to enqueue.
#[derive(Debug)]
pub(crate) struct NewEnqueued<'a> {
    pub(crate) key: &'a str,
    pub(crate) name: &'a str,
    pub(crate) input: String,
    pub(crate) queue: &'a str,
    pub(crate) priority: i32,
    pub(crate) concurrency_key: Option<String>,
    pub(crate) delay_ms: Option<i64>,
    pub(crate) app_version: Option<String>,
}

/// Limits of a queue, as declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueueLimits {
    pub(crate) concurrency: Option<i32>,
    pub(crate) rate_limit: Option<i32>,
    pub(crate) rate_period_ms: Option<i64>,
    pub(crate) key_concurrency: Option<i32>,
}

impl QueueLimits {
    /// No limit of any kind is declared (a rate without its period counts
    /// as one here, though it limits nothing).
    pub(crate) fn is_unlimited(&self) -> bool {
        self.concurrency.is_none() && self.rate_limit.is_none() && self.key_concurrency.is_none()
    }

    /// A limit that spans executors (concurrency, or concurrency per key):
    /// another worker may be waiting for a slot this one frees.
    pub(crate) fn spans_executors(&self) -> bool {
        self.concurrency.is_some() || self.key_concurrency.is_some()
    }
}

/// Who may claim what: the names an executor runs and its version.
#[derive(Debug)]
pub(crate) struct ClaimFilter<'a> {
    /// JSON array of workflow names.
    pub(crate) names: &'a str,
    pub(crate) app_version: Option<&'a str>,
    pub(crate) any_version: bool,
}

/// Facts about a process that owns work, for liveness checks.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorRow {
    pub(crate) id: Uuid,
    /// The host as `identity::process` records it.
    pub(crate) hostname: String,
    pub(crate) pid: i64,
    pub(crate) pid_started: i64,
}

/// A management transition of a subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Pause,
    Resume,
    Cancel,
}

impl Transition {
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Transition::Pause => "pause",
            Transition::Resume => "resume",
            Transition::Cancel => "cancel",
        }
    }

    /// Whether a workflow in `status` may take this transition.
    pub(crate) fn allowed_from(self, status: Status) -> bool {
        match self {
            Transition::Pause => matches!(status, Status::Pending | Status::Running),
            Transition::Resume => status == Status::Paused,
            Transition::Cancel => !status.is_terminal(),
        }
    }
}

/// What a retry of a tree did: workflows made claimable again, failed
/// entries set aside, and the queues that now hold work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Retried {
    pub(crate) workflows: u64,
    pub(crate) steps: u64,
    pub(crate) queues: Vec<String>,
}

/// A workflow stopping to wait: not claimable before `wake_ms` (database
/// clock), unless what the waiting call (at `position` of `workflow`, the
/// released workflow or an inline child of it) waits for comes first: the
/// kind of its journal entry says what that is (a message on its topic, a
/// spawned child finishing, a waker completing it), and whoever brings it
/// makes the workflow claimable at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Suspension {
    pub(crate) workflow: Uuid,
    pub(crate) position: i32,
    pub(crate) wake_ms: Option<i64>,
    /// What it waits for, for the read model and for wakers.
    pub(crate) wait_for: Option<String>,
}

/// A schedule as stored (see `durable_db`'s `tables_v7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScheduleRow {
    pub(crate) name: String,
    pub(crate) workflow: String,
    pub(crate) cron: String,
    pub(crate) time_zone: String,
    /// JSON text.
    pub(crate) input: String,
    pub(crate) queue: String,
    /// `SKIP`, `ONCE`, `ALL` or `BOUNDED` (with `catch_up_limit`).
    pub(crate) catch_up: String,
    pub(crate) catch_up_limit: i32,
    pub(crate) paused: bool,
    pub(crate) next_tick_ms: Option<i64>,
    pub(crate) last_tick_ms: Option<i64>,
    pub(crate) fired: i64,
}

impl ScheduleRow {
    /// The workflow of one of its ticks.
    pub(crate) fn tick_work<'a>(&'a self, key: &'a str, input: &str) -> NewEnqueued<'a> {
        NewEnqueued {
            key,
            name: &self.workflow,
            input: input.to_string(),
            queue: &self.queue,
            priority: 0,
            concurrency_key: None,
            delay_ms: None,
            app_version: None,
        }
    }
}

/// What firing a due schedule does, decided by the scheduler from the row
/// and the store clock: the ticks' workflows to enqueue and the cursor's
/// new place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Firing {
    /// `(key, input JSON, tick ms)` of each tick, oldest first.
    pub(crate) ticks: Vec<(String, String, i64)>,
    pub(crate) next_tick_ms: Option<i64>,
}

/// The scheduler's decision for one due schedule (a pure function).
pub(crate) type Planner<'a> = &'a (dyn Fn(&ScheduleRow, i64) -> Firing + Send + Sync);

/// A debounced start: the workflow to start once `key` has been quiet for
/// `period_ms`, at the latest `max_wait_ms` after the burst's first call.
#[derive(Debug)]
pub(crate) struct NewDebounce<'a> {
    pub(crate) key: &'a str,
    pub(crate) period_ms: i64,
    pub(crate) max_wait_ms: i64,
    /// The workflow (its `key` unused: a burst's workflow gets a fresh one).
    pub(crate) work: NewEnqueued<'a>,
}

impl NewDebounce<'_> {
    /// When a burst that began at `first_ms` starts after a call at
    /// `now`: a quiet period later, never past the bound.
    pub(crate) fn start_ms(&self, now: i64, first_ms: i64) -> i64 {
        now.saturating_add(self.period_ms)
            .min(first_ms.saturating_add(self.max_wait_ms))
    }

    /// The key of a new burst's workflow `id`: the debounce key and the id.
    pub(crate) fn burst_key(&self, id: Uuid) -> String {
        format!("debounce:{}#{}", self.key, id.simple())
    }

    /// A new burst's workflow, under `key` ([`Self::burst_key`]), delayed by
    /// the quiet period (never past the bound).
    pub(crate) fn burst_work<'k>(&'k self, key: &'k str) -> NewEnqueued<'k> {
        NewEnqueued {
            key,
            delay_ms: Some(self.period_ms.min(self.max_wait_ms)),
            concurrency_key: self.work.concurrency_key.clone(),
            app_version: self.work.app_version.clone(),
            input: self.work.input.clone(),
            ..self.work
        }
    }
}
