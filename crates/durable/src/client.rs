//! `Client`: enqueue workflows from anywhere, run registered workflows
//! inline, declare queues, and wait for results through a `WorkflowHandle`.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::codec;
use crate::ctx::Ctx;
use crate::error::DurableError;
use crate::executor::ExecutorInner;
use crate::queue::{DEFAULT_QUEUE, Queue};
use crate::registry::Registry;
use crate::status::Status;
use crate::store::{self, NewEnqueued, TaskRow};

/// Enqueues workflows and looks them up; needs no executor in this process.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), durable::DurableError> {
/// use durable::{Client, EnqueueOptions};
/// use std::time::Duration;
///
/// let client = Client::new(&db);
/// let handle = client
///     .enqueue("charge", &serde_json::json!({"cents": 1200}), EnqueueOptions::new().key("order-42"))
///     .await?;
/// let receipt: String = handle.result(Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    db: DatabaseConnection,
    registry: Option<Arc<Registry>>,
}

/// Options of one enqueue: key, queue, priority, delay, concurrency key.
///
/// ```
/// use durable::EnqueueOptions;
/// use std::time::Duration;
///
/// let options = EnqueueOptions::new()
///     .key("invoice-2026-11")
///     .queue("billing")
///     .priority(10)
///     .delay(Duration::from_secs(60))
///     .concurrency_key("customer-7");
/// ```
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    key: Option<String>,
    queue: Option<String>,
    priority: i32,
    delay: Option<Duration>,
    concurrency_key: Option<String>,
    app_version: Option<String>,
}

impl EnqueueOptions {
    /// Defaults: a fresh key, the `default` queue, priority 0, no delay.
    pub fn new() -> Self {
        Self::default()
    }

    /// The workflow's key (idempotency key): enqueueing the same key again
    /// returns the existing workflow instead of a new one.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The queue (declared with [`Client::declare_queue`]; `default` always exists).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Larger runs first within the queue (default 0).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Not before this long from now (database clock).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Group for the queue's per-key concurrency limit (e.g. a customer id).
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }

    /// Only executors of this application version run it (default: the
    /// first executor to start it records its own version).
    pub fn app_version(mut self, version: impl Into<String>) -> Self {
        self.app_version = Some(version.into());
        self
    }
}

impl Client {
    /// A client on this database. It cannot check workflow names (any
    /// executor may know them); [`Client::with_registry`] can.
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            db: db.clone(),
            registry: None,
        }
    }

    /// A client that knows the workflow functions: enqueue refuses unknown
    /// names, and [`Client::run`] can run workflows inline.
    pub fn with_registry(db: &DatabaseConnection, registry: Arc<Registry>) -> Self {
        Self {
            db: db.clone(),
            registry: Some(registry),
        }
    }

    /// Enqueue workflow `name` with `input`. Executors that registered
    /// `name` and serve the queue will run it.
    ///
    /// With a key that already names a workflow, nothing new is created:
    /// the handle is the existing one and [`WorkflowHandle::is_new`] says so.
    ///
    /// # Errors
    /// [`DurableError::UnknownQueue`]; [`DurableError::UnknownWorkflow`]
    /// (with a registry); [`DurableError::Conflict`] if the key is taken by
    /// another workflow name, queue or input; [`DurableError::InvalidInput`]
    /// for bad names or input.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let handle = client.enqueue("resize", &("photo.jpg", 640), durable::EnqueueOptions::new()).await?;
    /// println!("enqueued {}", handle.id());
    /// # Ok(()) }
    /// ```
    pub async fn enqueue<I: Serialize + ?Sized>(
        &self,
        name: &str,
        input: &I,
        options: EnqueueOptions,
    ) -> Result<WorkflowHandle, DurableError> {
        codec::check_name("workflow", name)?;
        if let Some(registry) = &self.registry
            && !registry.contains(name)
        {
            return Err(DurableError::UnknownWorkflow(name.to_string()));
        }
        let key = options.key.unwrap_or_else(|| Uuid::new_v4().to_string());
        codec::check_name("workflow key", &key)?;
        let queue = options.queue.as_deref().unwrap_or(DEFAULT_QUEUE);
        if store::queue_by_name(&self.db, queue).await?.is_none() {
            return Err(DurableError::UnknownQueue(queue.to_string()));
        }
        let input = codec::encode_value("workflow input", input)?;
        let delay_ms = options.delay.map(|d| {
            i64::try_from(d.as_millis())
                .unwrap_or(i64::MAX)
                .min(crate::ctx::MAX_TIMEOUT_MS)
        });
        let work = NewEnqueued {
            key: &key,
            name,
            input: input.clone(),
            queue,
            priority: options.priority,
            concurrency_key: options.concurrency_key,
            delay_ms,
            app_version: options.app_version,
        };
        if let Some(id) = store::enqueue(&self.db, &work).await? {
            store::notify(&self.db, queue).await?;
            tracing::debug!(workflow.id = %id, workflow.name = name, queue, "enqueued");
            return Ok(self.handle_of(id, key, name.to_string(), true));
        }
        let existing = store::root_by_key(&self.db, &key).await?.ok_or_else(|| {
            DurableError::custom(format!("workflow '{key}' vanished while enqueueing"))
        })?;
        let detail = if existing.name != name {
            Some(format!(
                "it runs workflow '{}', not '{name}'",
                existing.name
            ))
        } else if existing.queue.as_deref() != Some(queue) {
            Some(format!(
                "it is on queue {:?}, not '{queue}'",
                existing.queue
            ))
        } else if !codec::same_json(existing.input.as_deref(), Some(&input)) {
            Some("its input differs".to_string())
        } else {
            None
        };
        match detail {
            Some(detail) => Err(DurableError::Conflict { key, detail }),
            None => Ok(self.handle_of(existing.id, key, existing.name, false)),
        }
    }

    /// Run registered workflow `name` under `key` in this process, as
    /// [`Ctx::start_with_key`] would, and return its output. A finished
    /// workflow returns its saved output (or error) without running.
    ///
    /// # Errors
    /// [`DurableError::UnknownWorkflow`] without a registry that has `name`;
    /// [`DurableError::WorkflowFailed`] if it failed; anything the
    /// workflow returns.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let doubled: u64 = client.run("double", "double-21", &21u64).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        name: &str,
        key: &str,
        input: &I,
    ) -> Result<O, DurableError> {
        let workflow = self
            .registry
            .as_ref()
            .and_then(|r| r.get(name))
            .ok_or_else(|| DurableError::UnknownWorkflow(name.to_string()))?;
        let input = serde_json::to_value(input).map_err(|e| {
            DurableError::InvalidInput(format!("workflow input cannot be serialized: {e}"))
        })?;
        let ctx = Ctx::start_on(
            ExecutorInner::process_default(&self.db),
            name,
            key,
            Some(input),
        )
        .await?;
        let found = ctx.found.clone();
        if !found.status.is_terminal() {
            let finisher = ctx.finisher();
            let result = workflow(ctx, found.input.clone()).await;
            crate::worker::settle_workflow(&finisher, result).await?;
        }
        let row = store::task_by_id(&self.db, found.id)
            .await?
            .ok_or(DurableError::NotFound(found.id))?;
        outcome(&row)?
            .ok_or_else(|| DurableError::custom(format!("workflow '{key}' did not finish")))
    }

    /// Declare a queue or change its limits. Idempotent.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a bad name; [`DurableError::Db`].
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// use durable::Queue;
    /// use std::time::Duration;
    ///
    /// client
    ///     .declare_queue(&Queue::new("emails").concurrency(10).rate_limit(100, Duration::from_secs(60)))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn declare_queue(&self, queue: &Queue) -> Result<(), DurableError> {
        codec::check_name("queue", queue.name())?;
        store::upsert_queue(&self.db, queue.name(), queue.limits()).await
    }

    /// A handle on an existing workflow by id.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// let handle = client.handle(id).await?;
    /// println!("{}", handle.status().await?);
    /// # Ok(()) }
    /// ```
    pub async fn handle(&self, id: Uuid) -> Result<WorkflowHandle, DurableError> {
        let row = store::task_by_id(&self.db, id)
            .await?
            .ok_or(DurableError::NotFound(id))?;
        Ok(self.handle_of(row.id, row.key, row.name, false))
    }

    /// A handle on an existing root workflow by key.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] if no workflow has this key.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let handle = client.handle_by_key("order-42").await?;
    /// # Ok(()) }
    /// ```
    pub async fn handle_by_key(&self, key: &str) -> Result<WorkflowHandle, DurableError> {
        let row = store::root_by_key(&self.db, key)
            .await?
            .ok_or_else(|| DurableError::InvalidInput(format!("no workflow has key '{key}'")))?;
        Ok(self.handle_of(row.id, row.key, row.name, false))
    }

    fn handle_of(&self, id: Uuid, key: String, name: String, new: bool) -> WorkflowHandle {
        WorkflowHandle {
            db: self.db.clone(),
            id,
            key,
            name,
            new,
        }
    }
}

/// A workflow's id and the means to follow it: status and result.
#[derive(Debug, Clone)]
pub struct WorkflowHandle {
    db: DatabaseConnection,
    id: Uuid,
    key: String,
    name: String,
    new: bool,
}

impl WorkflowHandle {
    /// The workflow's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The workflow's key (idempotency key).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if the enqueue that made this handle created the workflow;
    /// false if the key already existed.
    pub fn is_new(&self) -> bool {
        self.new
    }

    /// The workflow's status now.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] if it was deleted.
    ///
    /// ```no_run
    /// # async fn demo(handle: durable::WorkflowHandle) -> Result<(), durable::DurableError> {
    /// if handle.status().await?.is_terminal() {
    ///     println!("done");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<Status, DurableError> {
        Ok(self.row().await?.status)
    }

    /// Wait up to `timeout` for the workflow to finish and return its output.
    ///
    /// # Errors
    /// [`DurableError::Timeout`] if it is still running after `timeout`;
    /// [`DurableError::WorkflowFailed`] if it failed;
    /// [`DurableError::Cancelled`] if it was cancelled;
    /// [`DurableError::InvalidInput`] if the output is not an `O`.
    ///
    /// ```no_run
    /// # async fn demo(handle: durable::WorkflowHandle) -> Result<(), durable::DurableError> {
    /// let total: u64 = handle.result(std::time::Duration::from_secs(10)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn result<O: DeserializeOwned>(&self, timeout: Duration) -> Result<O, DurableError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut wait = Duration::from_millis(10);
        loop {
            if let Some(output) = outcome(&self.row().await?)? {
                return Ok(output);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(DurableError::Timeout(format!(
                    "workflow {} did not finish within {timeout:?}",
                    self.id
                )));
            }
            tokio::time::sleep(wait.min(deadline - now)).await;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    async fn row(&self) -> Result<TaskRow, DurableError> {
        store::task_by_id(&self.db, self.id)
            .await?
            .ok_or(DurableError::NotFound(self.id))
    }
}

/// The result of a finished workflow; `None` while it is not finished.
fn outcome<O: DeserializeOwned>(row: &TaskRow) -> Result<Option<O>, DurableError> {
    match row.status {
        Status::Completed => {
            let text = row.output.as_deref().unwrap_or("null");
            Ok(Some(codec::decode_output(&row.name, text)?))
        }
        Status::Failed => Err(DurableError::WorkflowFailed {
            workflow: row.id,
            message: row.error.clone().unwrap_or_default(),
        }),
        Status::Cancelled => Err(DurableError::Cancelled(format!(
            "workflow {} was cancelled",
            row.id
        ))),
        _ => Ok(None),
    }
}
