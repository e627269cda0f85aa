//! Child workflows: a durable call whose result is a workflow of its own,
//! run by the parent's code under the parent's lease.

use serde_json::Value as Json;

use super::Ctx;
use crate::call::{Call, Prepared, Run};
use crate::codec;
use crate::error::DurableError;
use crate::status::StepKind;
use crate::store::{ChildStart, Entry, NewChild, Spawn, WorkflowRow};

/// What [`Ctx::make_child`] found.
#[derive(Debug)]
pub(crate) enum Made {
    /// Created now.
    Created(Box<WorkflowRow>),
    /// Recorded before: this call's entry, to replay.
    Recorded(Entry),
}

impl Ctx {
    /// Start or resume a child workflow. Returns a new `Ctx` scoped to the child.
    ///
    /// A recorded child is returned without a round trip (its row comes
    /// with the parent's history); its steps replay. The child shares the
    /// parent's lease, and the tree's pause, cancel and deadline.
    ///
    /// # Errors
    /// [`DurableError::Paused`], [`DurableError::Cancelled`] or
    /// [`DurableError::Timeout`] if this workflow may not start new work;
    /// [`DurableError::LeaseLost`] if another executor took it over;
    /// [`DurableError::NonDeterminism`] if the history has something else
    /// at this point.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// let child = ctx.child("embed_batch", Some(serde_json::json!({"vectors": 1000}))).await?;
    /// child.step("embed", || async { Ok(()) }).await?;
    /// child.complete(&serde_json::json!({"done": true})).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "workflow.child", skip_all, fields(workflow.id = %self.id, child.name = name))]
    pub async fn child(&self, name: &str, input: Option<Json>) -> Result<Self, DurableError> {
        let call = self.take(name, StepKind::Workflow)?;
        let run = match self.prepare(&call).await? {
            Prepared::Replay(entry) => return self.recorded_child(&call, entry),
            Prepared::Run(run) => run,
        };
        if let Some(entry) = run.entry {
            // A child entry is written finished; this is not one of ours.
            return self.recorded_child(&call, entry);
        }
        let input = input
            .map(|v| codec::encode_value("child workflow input", &v))
            .transpose()?;
        match self.make_child(&call, &run, input, None).await? {
            Made::Created(row) => Ok(self.child_ctx(*row, true)),
            Made::Recorded(entry) => self.recorded_child(&call, entry),
        }
    }

    /// Create the child workflow of `call` (inline, or spawned when
    /// `spawn` says where), fenced by our lease; or the entry another
    /// handle recorded at its position first.
    pub(crate) async fn make_child(
        &self,
        call: &Call,
        run: &Run,
        input: Option<String>,
        spawn: Option<Spawn<'_>>,
    ) -> Result<Made, DurableError> {
        let lease = self
            .lease
            .ok_or_else(|| self.refusal(call, crate::call::decide::Refusal::LeaseLost))?;
        let child = NewChild {
            root: self.root_id,
            parent: self.id,
            position: call.position,
            key: &call.key,
            name: &call.name,
            input,
            started_ms: run.started_ms,
            lease,
            spawn,
        };
        match self.store.start_child(&child).await? {
            ChildStart::Created(row) => Ok(Made::Created(row)),
            ChildStart::Recorded(entry) => Ok(Made::Recorded(self.winner(call, Some(&entry))?)),
            ChildStart::Fenced => {
                crate::telemetry::lease_lost();
                Err(DurableError::LeaseLost { workflow: self.id })
            }
        }
    }

    /// A child call found recorded: the `Ctx` of the child it made.
    fn recorded_child(&self, call: &Call, entry: Entry) -> Result<Self, DurableError> {
        match entry.child {
            Some(row) => Ok(self.child_ctx(*row, false)),
            None => Err(DurableError::NonDeterminism {
                workflow: self.id,
                step: call.key.clone(),
                detail: "the history records this child call without its workflow".to_string(),
            }),
        }
    }

    /// The child's `Ctx`: under our lease while it may still run.
    fn child_ctx(&self, row: WorkflowRow, created: bool) -> Self {
        let lease = self.lease.filter(|_| !row.status.is_terminal());
        let mut child = Self::new(self.executor.clone(), lease, row, created);
        child.suspendable = self.suspendable;
        child
    }
}
