//! Management and the read model on `Client`: pause, resume, cancel and
//! retry a workflow's subtree; read a workflow and its tree by id or key.

use uuid::Uuid;

use super::Client;
use crate::codec;
use crate::error::DurableError;
use crate::read::{WorkflowSummary, WorkflowTree};
use crate::status::Status;
use crate::store::Transition;

impl Client {
    /// Pause a workflow, and every PENDING or RUNNING descendant.
    ///
    /// Once this returns, no new step of the subtree starts in any process
    /// (a step already running finishes and is saved). It returns 50 ms
    /// after the change commits (also when it fails): a running workflow
    /// may start a step that long after a checkpoint without reading its
    /// state again. A workflow run by a
    /// worker is released, and goes on after [`Client::resume`] on any
    /// worker. Only PENDING or RUNNING workflows can be paused.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id;
    /// [`DurableError::InvalidTransition`] from any other status.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// client.pause(id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause(&self, id: Uuid) -> Result<(), DurableError> {
        self.transition(id, Transition::Pause).await
    }

    /// Resume a paused workflow: it becomes RUNNING again and its paused
    /// descendants PENDING, ready to go on.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id;
    /// [`DurableError::InvalidTransition`] unless it is PAUSED.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// client.resume(id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume(&self, id: Uuid) -> Result<(), DurableError> {
        self.transition(id, Transition::Resume).await
    }

    /// Cancel a workflow, and every unfinished descendant. Cancellation is
    /// terminal: a cancelled workflow cannot be resumed. As with
    /// [`Client::pause`], no new step starts once this returns, 50 ms after
    /// the change commits.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id;
    /// [`DurableError::InvalidTransition`] if it already finished
    /// (COMPLETED, FAILED or CANCELLED).
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// client.cancel(id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, id: Uuid) -> Result<(), DurableError> {
        self.transition(id, Transition::Cancel).await
    }

    /// Run a FAILED root workflow again from its failed calls.
    ///
    /// Every FAILED workflow of its tree becomes PENDING; its failed calls
    /// (a step whose retries ran out, a join of a failed child) are set
    /// aside, kept in [`crate::WorkflowTree::retried`], and run again with
    /// their attempts counted afresh; every completed call replays. A
    /// queued workflow goes back to its queue for a worker; one started
    /// inline is taken by a worker that has its function, or goes on
    /// where [`crate::Ctx::from_id`] reattaches to it. Its count of
    /// recoveries starts again at zero. A handle of the failed run can
    /// write nothing more (the workflow's lease epoch moves on).
    ///
    /// Deploy the fix first: code that fails the same way fails again.
    /// The deadlines of the workflows it runs again start afresh: each is
    /// fixed anew, from its timeout, when the run sets it
    /// ([`crate::Ctx::set_timeout`]), so a workflow that timed out gets its
    /// whole timeout again.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id;
    /// [`DurableError::InvalidInput`] for a child workflow (retry its
    /// root); [`DurableError::InvalidTransition`] unless it is FAILED.
    /// Nothing is written then.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// client.retry(id).await?;
    /// let outcome: String = client.handle(id).await?.result(std::time::Duration::from_secs(60)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn retry(&self, id: Uuid) -> Result<(), DurableError> {
        self.retry_from(id, &[Status::Failed]).await
    }

    /// As [`Client::retry`], for a root that was FAILED or CANCELLED:
    /// cancelled workflows of its tree run again too.
    ///
    /// # Errors
    /// As [`Client::retry`], with CANCELLED allowed.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// client.cancel(id).await?;
    /// client.retry_cancelled(id).await?; // changed our mind
    /// # Ok(()) }
    /// ```
    pub async fn retry_cancelled(&self, id: Uuid) -> Result<(), DurableError> {
        self.retry_from(id, &[Status::Failed, Status::Cancelled])
            .await
    }

    /// Start a new workflow that copies `id`'s history before the call at
    /// `from_position` and runs on from there: the copied calls replay,
    /// the one at `from_position` and all after it run anew. The fork is a
    /// PENDING root with the same name, input, queue, priority,
    /// concurrency key and app version, and its own id as its key; it is
    /// run by a worker that has the function (or reattached to with
    /// [`crate::Ctx::from_id`]). The original is not changed. Messages,
    /// events and streams of the original are not copied.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id;
    /// [`DurableError::InvalidInput`] for a child workflow, a position
    /// below 0 or past the end of the history (one past the last call is
    /// the end), or one after a call that started a child workflow or has
    /// not finished. Nothing is written then.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// let fork = client.fork(id, 3).await?; // calls 0..3 replay, 3 runs again
    /// println!("forked as {fork}");
    /// # Ok(()) }
    /// ```
    pub async fn fork(&self, id: Uuid, from_position: i32) -> Result<Uuid, DurableError> {
        let fork = self.store.fork(id, from_position).await?;
        tracing::info!(workflow.id = %id, fork = %fork, from_position, "workflow forked");
        self.store.notify(crate::queue::DEFAULT_QUEUE).await?;
        Ok(fork)
    }

    async fn retry_from(&self, id: Uuid, from: &[Status]) -> Result<(), DurableError> {
        let retried = self.store.retry(id, from).await?;
        tracing::info!(
            workflow.id = %id,
            workflows = retried.workflows,
            steps = retried.steps,
            "workflow retried"
        );
        self.store.notify(crate::queue::DEFAULT_QUEUE).await?;
        for queue in &retried.queues {
            if queue != crate::queue::DEFAULT_QUEUE {
                self.store.notify(queue).await?;
            }
        }
        Ok(())
    }

    async fn transition(&self, id: Uuid, transition: Transition) -> Result<(), DurableError> {
        let changed = self.store.transition(id, transition).await;
        if transition != Transition::Resume {
            // A running root may start a step shortly after a checkpoint
            // that saw it RUNNING, without reading its state again: once
            // this returns, none that missed the change can start. Waited
            // out on failure too: an error may hide a commit (a lost
            // answer, or a refusal because a racing call did the same).
            crate::call::outlast().await;
        }
        let changed = changed?;
        tracing::info!(workflow.id = %id, action = transition.verb(), changed, "workflow {}d", transition.verb());
        if transition == Transition::Resume {
            // Workers waiting for work may take it now.
            self.store.notify(crate::queue::DEFAULT_QUEUE).await?;
        }
        Ok(())
    }

    /// A workflow by id, as the read model shows it.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// let summary = client.workflow(id).await?;
    /// println!("{} is {}", summary.key, summary.status);
    /// # Ok(()) }
    /// ```
    pub async fn workflow(&self, id: Uuid) -> Result<WorkflowSummary, DurableError> {
        self.store
            .summary(id)
            .await?
            .ok_or(DurableError::NotFound(id))
    }

    /// A root workflow by key, as the read model shows it.
    ///
    /// # Errors
    /// [`DurableError::KeyNotFound`] if no root workflow has this key.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let summary = client.workflow_by_key("order-42").await?;
    /// # Ok(()) }
    /// ```
    pub async fn workflow_by_key(&self, key: &str) -> Result<WorkflowSummary, DurableError> {
        codec::check_name("workflow key", key)?;
        let row = self
            .store
            .root_by_key(key)
            .await?
            .ok_or_else(|| DurableError::KeyNotFound(key.to_string()))?;
        Ok(WorkflowSummary::from_row(&row))
    }

    /// A workflow with its steps, its child workflows' trees, and the calls
    /// of earlier runs that a retry set aside, in three reads.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown id.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// let tree = client.tree(id).await?;
    /// for step in &tree.steps {
    ///     println!("{} {} ({} attempts)", step.key, step.status, step.attempts);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn tree(&self, id: Uuid) -> Result<WorkflowTree, DurableError> {
        self.store.tree(id).await?.ok_or(DurableError::NotFound(id))
    }

    /// Test-only: wake the call `name` of `workflow` that waits in
    /// `Ctx::wait_for_test`, handing it `payload`; false if none waits.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown workflow.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub async fn wake_for_test(
        &self,
        workflow: Uuid,
        name: &str,
        payload: &serde_json::Value,
    ) -> Result<bool, DurableError> {
        let output = crate::ctx::woken_output(payload);
        let woken = self.store.wake(workflow, name, &output).await?;
        if woken {
            self.store.notify(crate::queue::DEFAULT_QUEUE).await?;
        }
        Ok(woken)
    }
}
