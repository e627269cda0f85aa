//! `Client`: enqueue workflows from anywhere, run registered workflows
//! inline, declare queues, follow workflows through a `WorkflowHandle`;
//! management and the read model in `manage.rs`.

mod debounce;
mod handle;
mod list;
mod manage;
mod options;
pub(crate) mod retention;
pub(crate) mod schedules;
mod signals;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::codec;
use crate::ctx::Ctx;
use crate::error::DurableError;
use crate::identity::ExecutorCore;
use crate::queue::{DEFAULT_QUEUE, Queue};
use crate::read::QueueInfo;
use crate::registry::Registry;
use crate::store::sql::SqlStore;
use crate::store::{NewEnqueued, Store};

pub use debounce::Debounce;
pub use handle::{TypedHandle, WorkflowHandle};
pub use options::EnqueueOptions;
pub use retention::PURGE_BATCH;

/// Enqueues workflows, manages and reads them; needs no executor in this
/// process.
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
    store: Arc<dyn Store>,
    registry: Option<Arc<Registry>>,
}

impl Client {
    /// A client on this database. It cannot check workflow names (any
    /// executor may know them); [`Client::with_registry`] can.
    ///
    /// ```no_run
    /// # fn demo(db: sea_orm::DatabaseConnection) {
    /// let client = durable::Client::new(&db);
    /// # }
    /// ```
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            db: db.clone(),
            store: Arc::new(SqlStore::new(db)),
            registry: None,
        }
    }

    /// A client on `store` (the simulation's way in).
    #[cfg(any(test, feature = "testing"))]
    #[allow(dead_code)]
    pub(crate) fn on_store(store: Arc<dyn Store>) -> Self {
        Self {
            db: store.connection().clone(),
            store,
            registry: None,
        }
    }

    /// A client that knows the workflow functions: enqueue refuses unknown
    /// names, and [`Client::run`] can run workflows inline.
    ///
    /// ```no_run
    /// # fn demo(db: sea_orm::DatabaseConnection) {
    /// let client = durable::Client::with_registry(&db, std::sync::Arc::new(durable::Registry::new()));
    /// # }
    /// ```
    pub fn with_registry(db: &DatabaseConnection, registry: Arc<Registry>) -> Self {
        Self {
            registry: Some(registry),
            ..Self::new(db)
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
        if self.store.queue(queue).await?.is_none() {
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
        if let Some(id) = self.store.enqueue(&work).await? {
            self.store.notify(queue).await?;
            tracing::debug!(workflow.id = %id, workflow.name = name, queue, "enqueued");
            return Ok(self.handle_of(id, key, name.to_string(), true));
        }
        let existing = self.store.root_by_key(&key).await?.ok_or_else(|| {
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
    /// workflow returns its saved output (or error) without running. It
    /// runs as a worker would run it: a panic is recorded as a failure.
    ///
    /// # Errors
    /// [`DurableError::UnknownWorkflow`] without a registry that has `name`;
    /// [`DurableError::WorkflowFailed`] if it failed (or panicked);
    /// [`DurableError::Suspended`] if it stopped to wait (a worker with the
    /// function resumes it when it is due); anything the workflow returns.
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
            ExecutorCore::process_default(&self.db),
            name,
            key,
            Some(input),
        )
        .await?;
        let id = ctx.id;
        if !ctx.found.status.is_terminal() {
            crate::runner::run(workflow, ctx).await?;
        }
        let row = self
            .store
            .workflow(id)
            .await?
            .ok_or(DurableError::NotFound(id))?;
        handle::outcome(&row)?
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
        self.store.declare_queue(queue.name(), queue.limits()).await
    }

    /// Every queue: those declared and those with unfinished work, by
    /// name, with their limits and how many of their workflows run, are
    /// ready to be claimed, wait for a time, or are paused.
    ///
    /// Two reads; the second counts the unfinished workflows of every
    /// queue, so it costs in proportion to the work waiting.
    ///
    /// # Errors
    /// [`DurableError::Db`] when the database cannot be read.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// for q in client.queues().await? {
    ///     println!("{}: {} running (limit {:?}), {} queued", q.name, q.running, q.concurrency, q.queued);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn queues(&self) -> Result<Vec<QueueInfo>, DurableError> {
        self.store.queues().await
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
        let row = self
            .store
            .workflow(id)
            .await?
            .ok_or(DurableError::NotFound(id))?;
        Ok(self.handle_of(row.id, row.key, row.name, false))
    }

    /// A handle on an existing root workflow by key.
    ///
    /// # Errors
    /// [`DurableError::KeyNotFound`] if no workflow has this key.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let handle = client.handle_by_key("order-42").await?;
    /// # Ok(()) }
    /// ```
    pub async fn handle_by_key(&self, key: &str) -> Result<WorkflowHandle, DurableError> {
        codec::check_name("workflow key", key)?;
        let row = self
            .store
            .root_by_key(key)
            .await?
            .ok_or_else(|| DurableError::KeyNotFound(key.to_string()))?;
        Ok(self.handle_of(row.id, row.key, row.name, false))
    }

    fn handle_of(&self, id: Uuid, key: String, name: String, new: bool) -> WorkflowHandle {
        WorkflowHandle {
            store: self.store.clone(),
            id,
            key,
            name,
            new,
        }
    }
}
