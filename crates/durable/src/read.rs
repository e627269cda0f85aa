//! The read model: what a workflow and its steps look like from outside,
//! as plain serde types (for a CLI, a web UI, logs, or tests).
//!
//! Read them with [`crate::Client::workflow`], [`crate::Client::workflow_by_key`]
//! and [`crate::Client::tree`]. Times are milliseconds since the Unix
//! epoch by the database clock; inputs and outputs are the JSON the
//! workflow recorded.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::status::{Status, StepKind};
use crate::store::{Entry, WorkflowRow};

/// One workflow: identity, state, ownership, queue fields, times.
///
/// ```no_run
/// # async fn demo(client: durable::Client, id: durable::Uuid) -> Result<(), durable::DurableError> {
/// let w = client.workflow(id).await?;
/// println!("{} ({}) is {}, {} attempt(s)", w.key, w.name, w.status, w.attempts);
/// println!("{}", serde_json::to_string_pretty(&w).unwrap());
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowSummary {
    /// The workflow's id.
    pub id: Uuid,
    /// The root of its tree (its own id for a root).
    pub root_id: Uuid,
    /// The workflow that started it as a child, if any.
    pub parent_id: Option<Uuid>,
    /// Position of the call in the parent that started it.
    pub parent_position: Option<i32>,
    /// The idempotency key of a root; `name#n` for a child.
    pub key: String,
    /// The workflow's name (its registered function, if any).
    pub name: String,
    /// Its status now.
    pub status: Status,
    /// The queue it is claimed from; `None` if it runs where it was started.
    pub queue: Option<String>,
    /// Larger runs first within its queue.
    pub priority: i32,
    /// Its group for a queue's per-key limit.
    pub concurrency_key: Option<String>,
    /// The application version that runs it.
    pub app_version: Option<String>,
    /// The executor that owns it now, if any.
    pub owner: Option<Uuid>,
    /// How often an executor claimed it.
    pub attempts: u32,
    /// How often it was taken over from an executor that died.
    pub recoveries: u32,
    /// When it was created.
    pub created_at_ms: i64,
    /// When it first started.
    pub started_at_ms: Option<i64>,
    /// When it finished (completed, failed or cancelled).
    pub finished_at_ms: Option<i64>,
    /// Its timeout, as first set.
    pub timeout_ms: Option<i64>,
    /// The deadline after which no new step starts.
    pub deadline_ms: Option<i64>,
    /// Not run again before this time: a delayed start, or a suspended
    /// workflow's wake-up.
    pub wake_at_ms: Option<i64>,
    /// What a suspended workflow waits for.
    pub waiting_for: Option<String>,
    /// Its input.
    pub input: Option<Json>,
    /// Its output, once completed.
    pub output: Option<Json>,
    /// Its error, once failed.
    pub error: Option<String>,
}

/// One durable call of a workflow (a step, a transaction step, a child
/// workflow, a wait), in call order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepSummary {
    /// Call position in the workflow (0-based).
    pub position: i32,
    /// `name#n`: the n-th call of this name in the workflow.
    pub key: String,
    /// The step's name.
    pub name: String,
    /// What kind of call it is.
    pub kind: StepKind,
    /// `COMPLETED`, `FAILED`, or `PENDING` (between retries, or waiting).
    pub status: Status,
    /// Attempts so far (1 plus the retries).
    pub attempts: u32,
    /// Retries its policy allows.
    pub max_retries: u32,
    /// When it was first recorded.
    pub created_at_ms: i64,
    /// When its (last) attempt started.
    pub started_at_ms: Option<i64>,
    /// When it finished.
    pub finished_at_ms: Option<i64>,
    /// A waiting call's wake-up time.
    pub wake_at_ms: Option<i64>,
    /// Its saved output.
    pub output: Option<Json>,
    /// Its error: of the step that failed, or of the last failed attempt
    /// of a step between retries (a completed step has none).
    pub error: Option<String>,
    /// The child workflow a child call started, with its own steps.
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub child: Option<Box<WorkflowTree>>,
}

/// A workflow with its steps, and each child workflow's tree under the
/// step that started it.
///
/// ```no_run
/// # async fn demo(client: durable::Client, id: durable::Uuid) -> Result<(), durable::DurableError> {
/// fn show(tree: &durable::WorkflowTree, depth: usize) {
///     println!("{:depth$}{} {}", "", tree.workflow.key, tree.workflow.status);
///     for step in &tree.steps {
///         println!("{:depth$}  {} {} x{}", "", step.key, step.status, step.attempts);
///         if let Some(child) = &step.child {
///             show(child, depth + 4);
///         }
///     }
/// }
/// show(&client.tree(id).await?, 0);
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowTree {
    /// The workflow.
    pub workflow: WorkflowSummary,
    /// Its durable calls in call order.
    pub steps: Vec<StepSummary>,
    /// Calls of its earlier runs that failed, set aside by
    /// [`crate::Client::retry`] so they ran again: by position, then round.
    #[serde(default)]
    pub retried: Vec<RetriedStep>,
}

/// A failed call of an earlier run, as it was when
/// [`crate::Client::retry`] set it aside.
///
/// ```no_run
/// # async fn demo(client: durable::Client, id: durable::Uuid) -> Result<(), durable::DurableError> {
/// for old in &client.tree(id).await?.retried {
///     println!("retry {}: {} had failed: {:?}", old.round, old.step.key, old.step.error);
/// }
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetriedStep {
    /// Which retry of the tree set it aside (1 for the first).
    pub round: u32,
    /// When it was set aside.
    pub retried_at_ms: i64,
    /// The call as it was.
    pub step: StepSummary,
}

/// A set-aside entry of one workflow of a tree: the workflow, the round,
/// when, and the entry.
/// A queue as an operator sees it: its limits (`None`: no limit) and
/// where its unfinished work is. Read with [`crate::Client::queues`].
///
/// ```
/// # fn show(queue: &durable::QueueInfo) {
/// let room = queue.concurrency.map(|limit| u64::from(limit).saturating_sub(queue.running));
/// println!("{}: {} running, {} queued (room {room:?})", queue.name, queue.running, queue.queued);
/// # }
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueueInfo {
    /// The queue's name.
    pub name: String,
    /// Whether it was declared ([`crate::Client::declare_queue`], or the
    /// `default` queue every database has); an undeclared queue that has
    /// work has no limits.
    pub declared: bool,
    /// At most this many running at once, over all executors.
    pub concurrency: Option<u32>,
    /// At most this many running per concurrency key.
    pub concurrency_per_key: Option<u32>,
    /// At most this many starts per `rate_period_ms`.
    pub rate_limit: Option<u32>,
    /// The period of `rate_limit`, in milliseconds.
    pub rate_period_ms: Option<i64>,
    /// Workflows running (claimed by an executor).
    pub running: u64,
    /// Workflows ready to be claimed now.
    pub queued: u64,
    /// Workflows waiting for a time: delayed, or suspended in a sleep, a
    /// receive or a join.
    pub waiting: u64,
    /// Workflows paused.
    pub paused: u64,
}

/// Where an unfinished workflow of a queue counts in [`QueueInfo`] at
/// `now_ms`: the one rule both stores follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueBucket {
    Running,
    Queued,
    Waiting,
    Paused,
}

impl QueueBucket {
    /// The rule as the in-memory store applies it (the SQL store says the
    /// same in `queue_counts`).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn of(status: Status, available_ms: Option<i64>, now_ms: i64) -> Option<Self> {
        match status {
            Status::Running => Some(Self::Running),
            Status::Paused => Some(Self::Paused),
            Status::Pending if available_ms.is_none_or(|at| at <= now_ms) => Some(Self::Queued),
            Status::Pending => Some(Self::Waiting),
            _ => None,
        }
    }
}

impl QueueInfo {
    /// A queue with its limits and no work counted yet.
    pub(crate) fn new(name: String, limits: Option<&crate::store::QueueLimits>) -> Self {
        let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
        Self {
            name,
            declared: limits.is_some(),
            concurrency: count(limits.and_then(|l| l.concurrency)),
            concurrency_per_key: count(limits.and_then(|l| l.key_concurrency)),
            rate_limit: count(limits.and_then(|l| l.rate_limit)),
            rate_period_ms: limits.and_then(|l| l.rate_period_ms),
            running: 0,
            queued: 0,
            waiting: 0,
            paused: 0,
        }
    }

    pub(crate) fn add(&mut self, bucket: QueueBucket, n: u64) {
        match bucket {
            QueueBucket::Running => self.running += n,
            QueueBucket::Queued => self.queued += n,
            QueueBucket::Waiting => self.waiting += n,
            QueueBucket::Paused => self.paused += n,
        }
    }
}

pub(crate) type Archived = (Uuid, i32, i64, Entry);

/// JSON text as a value; text that is not JSON (never written by durable)
/// is shown as a string rather than lost.
fn json(text: Option<&str>) -> Option<Json> {
    text.map(|t| serde_json::from_str(t).unwrap_or_else(|_| Json::String(t.to_string())))
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

impl WorkflowSummary {
    pub(crate) fn from_row(row: &WorkflowRow) -> Self {
        let waiting = row.owner_id.is_none() && !row.status.is_terminal();
        Self {
            id: row.id,
            root_id: row.root_id,
            parent_id: row.parent_id,
            parent_position: row.parent_position,
            key: row.key.clone(),
            name: row.name.clone(),
            status: row.status,
            queue: row.queue.clone(),
            priority: row.priority,
            concurrency_key: row.concurrency_key.clone(),
            app_version: row.app_version.clone(),
            owner: row.owner_id.filter(|_| !row.status.is_terminal()),
            attempts: count(row.attempts),
            recoveries: count(row.recoveries),
            created_at_ms: row.created_ms,
            started_at_ms: row.started_ms,
            finished_at_ms: row.completed_ms,
            timeout_ms: row.timeout_ms,
            deadline_ms: row.deadline_ms,
            wake_at_ms: row.available_ms.filter(|_| waiting),
            waiting_for: row.wait_for.clone().filter(|_| waiting),
            input: json(row.input.as_deref()),
            output: json(row.output.as_deref()),
            error: row.error.clone(),
        }
    }
}

impl StepSummary {
    pub(crate) fn from_entry(entry: &Entry) -> Self {
        Self {
            position: entry.position,
            key: entry.key.clone(),
            name: entry.name.clone(),
            kind: entry.kind,
            status: entry.status,
            attempts: count(entry.retry_count) + 1,
            max_retries: count(entry.max_retries),
            created_at_ms: entry.created_ms,
            started_at_ms: entry.started_ms,
            finished_at_ms: entry.completed_ms,
            wake_at_ms: entry.wake_ms,
            output: json(entry.output.as_deref()),
            error: entry.error.clone(),
            child: None,
        }
    }
}

impl WorkflowTree {
    /// Assemble the tree of `root` from every workflow of its subtree and
    /// all their entries.
    pub(crate) fn assemble(
        root: Uuid,
        workflows: &[WorkflowRow],
        entries: Vec<(Uuid, Entry)>,
        archived: Vec<Archived>,
    ) -> Option<Self> {
        use std::collections::HashMap;
        let mut steps: HashMap<Uuid, Vec<Entry>> = HashMap::new();
        for (workflow, entry) in entries {
            steps.entry(workflow).or_default().push(entry);
        }
        let mut retried: HashMap<Uuid, Vec<RetriedStep>> = HashMap::new();
        for (workflow, round, at_ms, entry) in archived {
            retried.entry(workflow).or_default().push(RetriedStep {
                round: count(round),
                retried_at_ms: at_ms,
                step: StepSummary::from_entry(&entry),
            });
        }
        let rows: HashMap<Uuid, &WorkflowRow> = workflows.iter().map(|w| (w.id, w)).collect();
        struct Parts<'a> {
            rows: HashMap<Uuid, &'a WorkflowRow>,
            steps: HashMap<Uuid, Vec<Entry>>,
            retried: HashMap<Uuid, Vec<RetriedStep>>,
        }
        fn build(id: Uuid, parts: &mut Parts<'_>) -> Option<WorkflowTree> {
            let row = *parts.rows.get(&id)?;
            let mut entries = parts.steps.remove(&id).unwrap_or_default();
            entries.sort_by_key(|e| e.position);
            let calls = entries
                .iter()
                .map(|entry| {
                    let mut step = StepSummary::from_entry(entry);
                    if let Some(child) = &entry.child {
                        step.child = build(child.id, parts).map(Box::new);
                    }
                    step
                })
                .collect();
            let mut retried = parts.retried.remove(&id).unwrap_or_default();
            retried.sort_by_key(|r| (r.step.position, r.round));
            Some(WorkflowTree {
                workflow: WorkflowSummary::from_row(row),
                steps: calls,
                retried,
            })
        }
        build(
            root,
            &mut Parts {
                rows,
                steps,
                retried,
            },
        )
    }
}
