//! What a workflow publishes for readers anywhere: events (the latest
//! value per key, every value kept) and streams (items in order, then a
//! close). Each write is a durable call whose value is stored in the
//! transaction of its checkpoint: written once, and a replay writes
//! nothing. Readers use [`Client::get_event`](crate::Client::get_event)
//! and [`Client::read_stream`](crate::Client::read_stream).

use serde::Serialize;

use super::Ctx;
use crate::call::Prepared;
use crate::codec;
use crate::error::DurableError;
use crate::status::{Status, StepKind};
use crate::store::Effect;

impl Ctx {
    /// Publish `value` as the event `key` of this workflow (its latest
    /// value from now on; earlier values are kept). For progress, state
    /// and answers that callers read with `Client::get_event`.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a bad key or a value that is not
    /// JSON or larger than 1 MiB; the errors of a step that may not start.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// ctx.set_event("progress", &serde_json::json!({"done": 40, "of": 100})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_event<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), DurableError> {
        codec::check_name("event key", key)?;
        let value = codec::encode_payload("event value", value)?;
        self.publish(key, StepKind::Event, Effect::Event { key, value: &value })
            .await
    }

    /// Append `value` to the stream `key` of this workflow: readers get the
    /// items in order, each once, from any offset.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a bad key, a value that is not
    /// JSON or larger than 1 MiB, or a closed stream; the errors of a step
    /// that may not start.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// for token in ["Dur", "able"] {
    ///     ctx.write_stream("tokens", token).await?;
    /// }
    /// ctx.close_stream("tokens").await?;
    /// # Ok(()) }
    /// ```
    pub async fn write_stream<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), DurableError> {
        codec::check_name("stream key", key)?;
        let value = codec::encode_payload("stream item", value)?;
        let effect = Effect::Stream {
            key,
            value: Some(&value),
        };
        self.publish(key, StepKind::Stream, effect).await
    }

    /// Close the stream `key`: readers stop after its last item, and it
    /// takes no more.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a bad key or a stream closed
    /// already; the errors of a step that may not start.
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// ctx.close_stream("tokens").await?;
    /// # Ok(()) }
    /// ```
    pub async fn close_stream(&self, key: &str) -> Result<(), DurableError> {
        codec::check_name("stream key", key)?;
        self.publish(key, StepKind::Stream, Effect::Stream { key, value: None })
            .await
    }

    /// The durable call of a publication: replayed, or written with its
    /// effect in one transaction.
    async fn publish(
        &self,
        key: &str,
        kind: StepKind,
        effect: Effect<'_>,
    ) -> Result<(), DurableError> {
        let call = self.take(key, kind)?;
        let run = match self.prepare(&call).await? {
            Prepared::Replay(_) => return Ok(()),
            Prepared::Run(run) => run,
        };
        let cp = self.checkpoint(&call, Status::Completed, None, None, run.started_ms)?;
        if self.store.commit_with(&cp, &effect).await? {
            return Ok(());
        }
        self.refused(&call).await.map(|_| ())
    }
}
