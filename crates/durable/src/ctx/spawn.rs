//! Spawned children: a child workflow started without waiting for it. It
//! is queued and claimed by any executor that has its function, under a
//! lease of its own; the parent joins it later (suspending meanwhile) or
//! selects the first of several to finish. The child's id is recorded at
//! the spawn, so a replay returns the same child; pause and cancel of the
//! parent reach it as they reach every descendant.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::Ctx;
use super::child::Made;
use super::wait::{Backoff, Budget, Waiting};
use crate::call::{Call, Prepared, Run};
use crate::codec;
use crate::error::DurableError;
use crate::queue::DEFAULT_QUEUE;
use crate::status::{Status, StepKind};
use crate::store::{Entry, Spawn, WorkflowRow};

/// A spawned child workflow, from [`Ctx::spawn`].
#[derive(Debug, Clone)]
pub struct ChildHandle<'a> {
    ctx: &'a Ctx,
    id: Uuid,
    key: String,
}

impl ChildHandle<'_> {
    /// The child workflow's id.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let child = ctx.spawn("embed", &1u32).await?;
    /// println!("spawned {}", child.id());
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Wait for the child to finish and return its output. A durable
    /// call: a replay returns the recorded result without waiting. On an
    /// executor, a wait past a second suspends the parent; the child's end
    /// wakes it.
    ///
    /// # Errors
    /// [`DurableError::ChildFailed`] if the child failed or was cancelled;
    /// [`DurableError::InvalidInput`] if its output does not deserialize
    /// into `T`; [`DurableError::Suspended`] while waiting on an executor;
    /// the errors of a step that may not start.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let child = ctx.spawn("embed", &1u32).await?;
    /// let vectors: u64 = child.join().await?;
    /// # Ok(()) }
    /// ```
    pub async fn join<T: DeserializeOwned>(&self) -> Result<T, DurableError> {
        let call = self.ctx.take("join", StepKind::Join)?;
        let joined = self.ctx.join_call(&call, self).await?;
        match joined.status {
            Status::Completed => {
                codec::decode_output(&self.key, joined.output.as_deref().unwrap_or("null"))
            }
            _ => Err(DurableError::ChildFailed {
                child: self.id,
                status: joined.child_status,
                message: joined.error.unwrap_or_default(),
            }),
        }
    }
}

impl Ctx {
    /// Start registered workflow `name` as a child of this one without
    /// waiting for it. It is queued on the default queue and any executor
    /// with its function runs it, under its own lease. The spawn is
    /// recorded: a replay returns the same child and starts nothing.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a bad name or input; the errors
    /// of a step that may not start.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let mut children = Vec::new();
    /// for batch in 0..4u32 {
    ///     children.push(ctx.spawn("embed_batch", &batch).await?);
    /// }
    /// let counts: Vec<u64> = ctx.join_all(&children).await?;
    /// # Ok(()) }
    /// ```
    pub async fn spawn<I: Serialize + ?Sized>(
        &self,
        name: &str,
        input: &I,
    ) -> Result<ChildHandle<'_>, DurableError> {
        let call = self.take(name, StepKind::Spawn)?;
        let run = match self.prepare(&call).await? {
            Prepared::Replay(entry) => return self.spawned(&call, entry),
            Prepared::Run(run) => run,
        };
        if let Some(entry) = run.entry {
            return self.spawned(&call, entry);
        }
        let input = codec::encode_value("spawned workflow input", input)?;
        let spawn = Spawn {
            queue: DEFAULT_QUEUE,
            app_version: self.found.app_version.as_deref(),
        };
        match self
            .make_child(&call, &run, Some(input), Some(spawn))
            .await?
        {
            Made::Created(row) => {
                if let Err(err) = self.store.notify(DEFAULT_QUEUE).await {
                    tracing::debug!(error = %err, "notify failed");
                }
                Ok(self.handle(*row))
            }
            Made::Recorded(entry) => self.spawned(&call, entry),
        }
    }

    /// Wait for every child, in order, and return their outputs.
    ///
    /// # Errors
    /// The first error of [`ChildHandle::join`], in the order given.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let a = ctx.spawn("double", &1u64).await?;
    /// let b = ctx.spawn("double", &2u64).await?;
    /// let sums: Vec<u64> = ctx.join_all(&[a, b]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn join_all<T: DeserializeOwned>(
        &self,
        children: &[ChildHandle<'_>],
    ) -> Result<Vec<T>, DurableError> {
        let mut outputs = Vec::with_capacity(children.len());
        for child in children {
            outputs.push(child.join().await?);
        }
        Ok(outputs)
    }

    /// Wait for the first of `children` to finish (completed, failed or
    /// cancelled) and return its index; join it for its result. Recorded:
    /// a replay returns the same index.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for an empty list;
    /// [`DurableError::Suspended`] while waiting on an executor; the errors
    /// of a step that may not start.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let mirrors = [ctx.spawn("fetch", "eu").await?, ctx.spawn("fetch", "us").await?];
    /// let first = ctx.select(&mirrors).await?;
    /// let page: String = mirrors[first].join().await?;
    /// # Ok(()) }
    /// ```
    pub async fn select(&self, children: &[ChildHandle<'_>]) -> Result<usize, DurableError> {
        if children.is_empty() {
            return Err(DurableError::InvalidInput(
                "select needs at least one child".into(),
            ));
        }
        let call = self.take("select", StepKind::Select)?;
        let run = match self.prepare(&call).await? {
            Prepared::Replay(entry) => return selected(&call, &entry),
            Prepared::Run(run) => run,
        };
        let ids: Vec<Uuid> = children.iter().map(|c| c.id).collect();
        let candidates = serde_json::to_string(&ids)?;
        if let Waiting::Settled(entry) = self
            .start_wait(&call, &run, None, None, Some(candidates))
            .await?
        {
            return selected(&call, &entry);
        }
        let budget = self.budget(None, std::time::Duration::ZERO);
        let mut backoff = Backoff::new();
        loop {
            for (index, id) in ids.iter().enumerate() {
                let row = self
                    .store
                    .workflow(*id)
                    .await?
                    .ok_or(DurableError::NotFound(*id))?;
                if row.status.is_terminal() {
                    let output = serde_json::json!({ "index": index }).to_string();
                    return match self
                        .end_wait(&call, &run, Status::Completed, Some(output), None, None)
                        .await?
                    {
                        Some(entry) => selected(&call, &entry),
                        None => Ok(index),
                    };
                }
            }
            self.wait_or_suspend(&call, budget, &mut backoff).await?;
        }
    }

    /// The join of one child: how it ended (recorded now or before).
    async fn join_call(
        &self,
        call: &Call,
        child: &ChildHandle<'_>,
    ) -> Result<Joined, DurableError> {
        let run = match self.prepare(call).await? {
            Prepared::Replay(entry) => return Ok(Joined::from(entry)),
            Prepared::Run(run) => run,
        };
        if let Waiting::Settled(entry) = self
            .start_wait(call, &run, None, Some(child.id), None)
            .await?
        {
            return Ok(Joined::from(entry));
        }
        let budget = self.budget(None, std::time::Duration::ZERO);
        let mut backoff = Backoff::new();
        loop {
            let row = self
                .store
                .workflow(child.id)
                .await?
                .ok_or(DurableError::NotFound(child.id))?;
            if row.status.is_terminal() {
                return self.record_join(call, &run, &row).await;
            }
            self.wait_or_suspend(call, budget, &mut backoff).await?;
        }
    }

    async fn record_join(
        &self,
        call: &Call,
        run: &Run,
        row: &WorkflowRow,
    ) -> Result<Joined, DurableError> {
        let joined = Joined::of(row);
        let (status, output, error) = (joined.status, joined.output.clone(), joined.error.clone());
        match self
            .end_wait(call, run, status, output, error, Some(row.id))
            .await?
        {
            Some(entry) => Ok(Joined::from(entry)),
            None => Ok(joined),
        }
    }

    /// Between two looks at what a wait waits for: pause, or suspend once
    /// the budget is spent.
    async fn wait_or_suspend(
        &self,
        call: &Call,
        budget: Budget,
        backoff: &mut Backoff,
    ) -> Result<(), DurableError> {
        if tokio::time::Instant::now() >= budget.until()
            && let Budget::ThenSuspend(_) = budget
        {
            return Err(self.suspend(call, None, format!("{} of spawned children", call.name)));
        }
        backoff.pause(budget.until()).await;
        Ok(())
    }

    /// The handle of a recorded spawn.
    fn spawned(&self, call: &Call, entry: Entry) -> Result<ChildHandle<'_>, DurableError> {
        match entry.child {
            Some(row) => Ok(self.handle(*row)),
            None => Err(DurableError::NonDeterminism {
                workflow: self.id,
                step: call.key.clone(),
                detail: "the history records this spawn without its workflow".to_string(),
            }),
        }
    }

    fn handle(&self, row: WorkflowRow) -> ChildHandle<'_> {
        ChildHandle {
            ctx: self,
            id: row.id,
            key: row.key,
        }
    }
}

/// How a joined child ended, as the join records it: `COMPLETED` with the
/// child's output, or `FAILED` with its error (also for a cancelled child).
#[derive(Debug)]
struct Joined {
    status: Status,
    output: Option<String>,
    error: Option<String>,
    /// The child's own status (`FAILED` or `CANCELLED` for a failed join).
    child_status: Status,
}

impl Joined {
    /// The record of a join of the finished child `row`.
    fn of(row: &WorkflowRow) -> Self {
        let (status, output, error) = match row.status {
            Status::Completed => (Status::Completed, row.output.clone(), None),
            Status::Cancelled => (
                Status::Failed,
                None,
                Some(format!(
                    "child workflow {} ({}) was cancelled",
                    row.id, row.key
                )),
            ),
            _ => (Status::Failed, None, row.error.clone()),
        };
        Self {
            status,
            output,
            error,
            child_status: row.status,
        }
    }
}

impl From<Entry> for Joined {
    fn from(entry: Entry) -> Self {
        Self {
            child_status: entry
                .child
                .as_ref()
                .map_or(Status::Failed, |row| row.status),
            status: entry.status,
            output: entry.output,
            error: entry.error,
        }
    }
}

/// The index a recorded select chose.
fn selected(call: &Call, entry: &Entry) -> Result<usize, DurableError> {
    entry
        .output
        .as_deref()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|value| value.get("index").and_then(serde_json::Value::as_u64))
        .map(|index| index as usize)
        .ok_or_else(|| {
            DurableError::InvalidInput(format!("select '{}' recorded no index", call.key))
        })
}
