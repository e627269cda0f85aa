//! Messages between workflows: `recv` takes the oldest message of a topic
//! sent to this workflow (at most once: the message is marked taken in the
//! transaction that records the call) or waits for one; `send` is a
//! durable call whose message is stored in the transaction of its
//! checkpoint, so it is sent exactly once.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::Ctx;
use super::wait::{Backoff, Budget, Waited, timeout_ms, waited};
use crate::call::{Call, Prepared, Run};
use crate::codec;
use crate::error::DurableError;
use crate::status::{Status, StepKind};
use crate::store::{Checkpoint, Effect, NewMessage, Received};

impl Ctx {
    /// Receive the next message sent to this workflow on `topic`, waiting
    /// at most `timeout` (fixed when this call first ran, database clock);
    /// `None` if none came in time. Each message is received once: taking
    /// it and recording this call are one transaction. The answer is
    /// recorded, so a replay returns the same message (or the same
    /// `None`); messages that arrive later wait for the next `recv`.
    ///
    /// While it waits past a second, a workflow on an executor suspends
    /// (see [`Ctx::sleep`]) and is woken when a message arrives; an inline
    /// workflow polls in its process.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a bad topic, or a message that
    /// does not deserialize into `T` (it stays recorded: fix the type);
    /// [`DurableError::Suspended`] while it waits on an executor; the
    /// errors of a step that may not start.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// use std::time::Duration;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Approval { approved: bool }
    ///
    /// match ctx.recv::<Approval>("approval", Duration::from_secs(3 * 24 * 3600)).await? {
    ///     Some(a) if a.approved => { /* go on */ }
    ///     _ => { /* rejected, or nobody answered in three days */ }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn recv<T: DeserializeOwned>(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<T>, DurableError> {
        codec::check_name("topic", topic)?;
        let call = self.take(topic, StepKind::Recv)?;
        match self.recv_call(&call, timeout).await? {
            Waited::Woken(payload) => serde_json::from_value(payload).map(Some).map_err(|e| {
                DurableError::InvalidInput(format!(
                    "message received by '{}' does not deserialize into the requested type: {e}",
                    call.key
                ))
            }),
            Waited::TimedOut => Ok(None),
        }
    }

    async fn recv_call(&self, call: &Call, timeout: Duration) -> Result<Waited, DurableError> {
        let run = match self.prepare(call).await? {
            Prepared::Replay(entry) => return Ok(waited(entry.output.as_deref())),
            Prepared::Run(run) => run,
        };
        let now = run.started_ms;
        let wake_ms = run
            .entry
            .as_ref()
            .and_then(|e| e.wake_ms)
            .unwrap_or_else(|| now.saturating_add(timeout_ms(timeout)));
        let mut waiting = self.checkpoint(call, Status::Pending, None, None, now)?;
        waiting.wake_ms = Some(wake_ms);
        let budget = self.budget(
            Some(wake_ms.saturating_sub(now)),
            super::wait::SUSPEND_AFTER,
        );
        let mut backoff = Backoff::new();
        loop {
            match self.store.receive(&waiting, &call.name).await? {
                Received::Message(payload) => return received(&payload),
                Received::Refused => {
                    let entry = self.refused(call).await?;
                    return Ok(waited(entry.output.as_deref()));
                }
                Received::Waiting => {}
            }
            // Wait for a message to show up, then take it (above).
            loop {
                if tokio::time::Instant::now() >= budget.until() {
                    return match budget {
                        Budget::ThenSuspend(_) => Err(self.suspend(
                            call,
                            Some(wake_ms),
                            format!("message on '{}'", call.name),
                        )),
                        Budget::InProcess(_) => self.recv_timed_out(call, &run, &waiting).await,
                    };
                }
                backoff.pause(budget.until()).await;
                if self.store.has_message(self.id, &call.name).await? {
                    break;
                }
            }
        }
    }

    /// The time is up: record the timeout, unless a message came at the
    /// last moment (then take it).
    async fn recv_timed_out(
        &self,
        call: &Call,
        run: &Run,
        waiting: &Checkpoint<'_>,
    ) -> Result<Waited, DurableError> {
        if self.store.has_message(self.id, &call.name).await?
            && let Received::Message(payload) = self.store.receive(waiting, &call.name).await?
        {
            return received(&payload);
        }
        self.time_out(call, run).await
    }

    /// Send `message` to workflow `to` on `topic`, exactly once: the send
    /// is a durable call of this workflow, and the message is stored in the
    /// transaction that records it. A replay sends nothing.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown workflow;
    /// [`DurableError::InvalidTransition`] for one that has finished (both
    /// recorded: a replay returns [`DurableError::StepFailed`]);
    /// [`DurableError::InvalidInput`] for a bad topic or a message that is
    /// not JSON or larger than 1 MiB (nothing recorded); the errors of a
    /// step that may not start.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx, order_workflow: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// ctx.send(order_workflow, "payment", &serde_json::json!({"paid": true})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        to: Uuid,
        topic: &str,
        message: &T,
    ) -> Result<(), DurableError> {
        codec::check_name("topic", topic)?;
        let payload = codec::encode_payload("message", message)?;
        let call = self.take(topic, StepKind::Send)?;
        let run = match self.prepare(&call).await? {
            Prepared::Replay(entry) => return self.replay::<bool>(&call, entry).map(|_| ()),
            Prepared::Run(run) => run,
        };
        let cp = self.checkpoint(
            &call,
            Status::Completed,
            Some("true".into()),
            None,
            run.started_ms,
        )?;
        let message = NewMessage {
            to,
            topic,
            key: None,
            payload: &payload,
        };
        match self.store.commit_with(&cp, &Effect::Send(message)).await {
            Ok(true) => Ok(()),
            Ok(false) => self
                .refused(&call)
                .await
                .and_then(|e| self.replay::<bool>(&call, e))
                .map(|_| ()),
            Err(err @ (DurableError::NotFound(_) | DurableError::InvalidTransition { .. })) => {
                let failed = self.checkpoint(
                    &call,
                    Status::Failed,
                    None,
                    Some(codec::error_text(&err)),
                    run.started_ms,
                )?;
                if let Some(entry) = self.commit(&call, &failed).await? {
                    return self.replay::<bool>(&call, entry).map(|_| ());
                }
                Err(err)
            }
            Err(err) => Err(err),
        }
    }
}

/// What a recv that took `payload` (JSON text it stored) returns.
fn received(payload: &str) -> Result<Waited, DurableError> {
    Ok(Waited::Woken(serde_json::from_str(payload)?))
}
