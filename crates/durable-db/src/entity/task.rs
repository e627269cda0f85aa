//! `durable_task`: one row per node of a workflow tree (workflow, child
//! workflow, step or transaction step), in the shape of schema v1.
//!
//! Since schema v2 this is a **read-only view** over `durable_workflow` and
//! `durable_step`, kept so that reads written against v1 keep working on
//! both backends (ids are blobs again on SQLite). Writes through it fail.
//! A step row's `id` is derived from its workflow's id and its position;
//! `retry_count` and `max_retries` are 0 on workflow rows. New code reads
//! the read model of the `durable` crate (`Client::workflow`,
//! `Client::tree`) instead.
//!
//! Identity: a root workflow is unique by `task_key` (its idempotency key,
//! the workflow name by default); every other node is unique by
//! `(parent_id, task_key)` where `task_key` is `name#n`, the n-th call of that
//! name inside its parent. Times are milliseconds since the Unix epoch, read
//! from the database clock. Inputs and outputs are JSON text, stored exactly
//! as serialized so a replay returns the same bytes.
#![allow(missing_docs)] // fields are documented on the struct; the derive adds items.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One task row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "durable_task")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The root workflow of this tree (equals `id` for a root).
    pub root_id: Uuid,
    /// The enclosing workflow; `None` for a root workflow.
    pub parent_id: Option<Uuid>,
    /// Identity inside the parent: the idempotency key of a root, `name#n` otherwise.
    pub task_key: String,
    pub name: String,
    /// `WORKFLOW`, `STEP` or `TRANSACTION`.
    pub kind: String,
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `PAUSED` or `CANCELLED`.
    pub status: String,
    /// Call position inside the parent (0-based); `None` for a root.
    pub sequence: Option<i32>,
    /// JSON text of the workflow input.
    pub input: Option<String>,
    /// JSON text of the result.
    pub output: Option<String>,
    /// Error message of a failed task (or of the last failed attempt of a retrying step).
    pub error: Option<String>,
    pub retry_count: i32,
    pub max_retries: i32,
    pub timeout_ms: Option<i64>,
    /// Absolute deadline (epoch ms, database clock), fixed when the timeout is first set.
    pub deadline_ms: Option<i64>,
    /// Executor that owns this workflow (holds its lease).
    pub owner_id: Option<Uuid>,
    /// Fencing token: incremented on every change of owner.
    pub lease_epoch: i64,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub completed_ms: Option<i64>,
    /// Queue of an enqueued workflow; `None` for one started inline.
    pub queue: Option<String>,
    /// Larger runs first within a queue.
    pub priority: i32,
    /// At most the queue's `key_concurrency` workflows of one key run at once.
    pub concurrency_key: Option<String>,
    /// Earliest start (epoch ms, database clock) of a delayed workflow.
    pub available_ms: Option<i64>,
    /// Application version recorded at the first start; only executors of
    /// the same version resume it (unless configured otherwise).
    pub app_version: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
