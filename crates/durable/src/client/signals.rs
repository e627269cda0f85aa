//! Talking to running workflows from anywhere: send them messages, read
//! the events they publish, follow their streams. Reads poll the database
//! (the source of truth), quickly at first and then once a second.

use std::time::Duration;

use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::Client;
use crate::codec;
use crate::ctx::{Backoff, never};
use crate::error::DurableError;
use crate::store::NewMessage;

/// Stream items read per query.
const STREAM_PAGE: i64 = 100;

impl Client {
    /// Send `message` to workflow `workflow` on `topic`; its next
    /// [`Ctx::recv`](crate::Ctx::recv) of that topic receives it (a
    /// waiting workflow is woken). Messages of a topic are received in the
    /// order sent, each once. Each call sends a message: use
    /// [`Client::send_with_key`] to make retries of one send idempotent.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown workflow;
    /// [`DurableError::InvalidTransition`] for one that has finished;
    /// [`DurableError::InvalidInput`] for a bad topic or a message that is
    /// not JSON or larger than 1 MiB. Nothing is stored on an error.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// client.send(id, "approval", &serde_json::json!({"approved": true})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        workflow: Uuid,
        topic: &str,
        message: &T,
    ) -> Result<(), DurableError> {
        self.send_message(workflow, topic, None, message)
            .await
            .map(|_| ())
    }

    /// [`Client::send`] with an idempotency key: a message whose key this
    /// workflow has had before is not stored again (also after the
    /// workflow finished, so a retried send succeeds). Returns whether this
    /// call stored it.
    ///
    /// # Errors
    /// As [`Client::send`], and [`DurableError::InvalidInput`] for a bad key.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// // A webhook delivered twice is received once.
    /// let stored = client.send_with_key(id, "payment", "evt_123", &"paid").await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_with_key<T: Serialize + ?Sized>(
        &self,
        workflow: Uuid,
        topic: &str,
        key: &str,
        message: &T,
    ) -> Result<bool, DurableError> {
        codec::check_name("message key", key)?;
        self.send_message(workflow, topic, Some(key), message).await
    }

    async fn send_message<T: Serialize + ?Sized>(
        &self,
        workflow: Uuid,
        topic: &str,
        key: Option<&str>,
        message: &T,
    ) -> Result<bool, DurableError> {
        codec::check_name("topic", topic)?;
        let payload = codec::encode_payload("message", message)?;
        self.store
            .send(&NewMessage {
                to: workflow,
                topic,
                key,
                payload: &payload,
            })
            .await
    }

    /// The latest value workflow `workflow` published as event `key`
    /// ([`Ctx::set_event`](crate::Ctx::set_event)), waiting up to `timeout`
    /// for a first one; `None` if there is none by then, or the workflow
    /// finished without one.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] for an unknown workflow;
    /// [`DurableError::InvalidInput`] if the value does not deserialize
    /// into `T`.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// use std::time::Duration;
    ///
    /// let progress: Option<serde_json::Value> =
    ///     client.get_event(id, "progress", Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_event<T: DeserializeOwned>(
        &self,
        workflow: Uuid,
        key: &str,
        timeout: Duration,
    ) -> Result<Option<T>, DurableError> {
        codec::check_name("event key", key)?;
        let until = tokio::time::Instant::now() + timeout;
        let mut backoff = Backoff::new();
        loop {
            // The status first: a value published before the workflow
            // finished is seen by the read after it.
            let finished = self.finished(workflow).await?;
            if let Some(text) = self.store.event(workflow, key).await? {
                return codec::decode_output(key, &text).map(Some);
            }
            if finished || tokio::time::Instant::now() >= until {
                return Ok(None);
            }
            backoff.pause(until).await;
        }
    }

    /// Follow stream `key` of workflow `workflow` from its first item; see
    /// [`Client::read_stream_from`].
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// use futures::StreamExt;
    ///
    /// let mut tokens = Box::pin(client.read_stream::<String>(id, "tokens"));
    /// while let Some(token) = tokens.next().await {
    ///     print!("{}", token?);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn read_stream<T: DeserializeOwned + Send + 'static>(
        &self,
        workflow: Uuid,
        key: &str,
    ) -> impl Stream<Item = Result<T, DurableError>> + Send + 'static {
        self.read_stream_from(workflow, key, 0)
    }

    /// Follow stream `key` of workflow `workflow` from item `offset` (0 is
    /// the first): each item once, in order, as it is written. The stream
    /// ends after the last item once the stream is closed or the workflow
    /// has finished; an error (an unknown workflow, an item that does not
    /// deserialize into `T`, a database that cannot be reached) is the last
    /// item: read on from the offset reached to carry on.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// use futures::StreamExt;
    ///
    /// // Carry on after the 10 items read before a reconnect.
    /// let rest: Vec<_> = client.read_stream_from::<u32>(id, "progress", 10).collect().await;
    /// # Ok(()) }
    /// ```
    pub fn read_stream_from<T: DeserializeOwned + Send + 'static>(
        &self,
        workflow: Uuid,
        key: &str,
        offset: u64,
    ) -> impl Stream<Item = Result<T, DurableError>> + Send + 'static {
        let client = self.clone();
        let key = key.to_string();
        let state = Reader {
            next: i64::try_from(offset).unwrap_or(i64::MAX),
            buffered: std::collections::VecDeque::new(),
            done: false,
        };
        futures::stream::unfold(state, move |mut reader| {
            let (client, key) = (client.clone(), key.clone());
            async move {
                if reader.done {
                    return None;
                }
                match client.next_item(workflow, &key, &mut reader).await {
                    Ok(Some(text)) => Some((codec::decode_output(&key, &text), reader)),
                    Ok(None) => None,
                    Err(err) => {
                        reader.done = true;
                        Some((Err(err), reader))
                    }
                }
            }
        })
    }

    /// The next item's JSON text, waiting for it; `None` at the end.
    async fn next_item(
        &self,
        workflow: Uuid,
        key: &str,
        reader: &mut Reader,
    ) -> Result<Option<String>, DurableError> {
        let mut backoff = Backoff::new();
        loop {
            if let Some(item) = reader.buffered.pop_front() {
                reader.next = item.offset + 1;
                return match item.value {
                    Some(text) => Ok(Some(text)),
                    None => {
                        reader.done = true;
                        Ok(None)
                    }
                };
            }
            let finished = self.finished(workflow).await?;
            let page = self
                .store
                .stream_page(workflow, key, reader.next, STREAM_PAGE)
                .await?;
            if page.is_empty() {
                if finished {
                    reader.done = true;
                    return Ok(None);
                }
                backoff.pause(never()).await;
                continue;
            }
            reader.buffered.extend(page);
            backoff = Backoff::new();
        }
    }

    /// Whether a workflow has finished; [`DurableError::NotFound`] if unknown.
    async fn finished(&self, workflow: Uuid) -> Result<bool, DurableError> {
        let row = self
            .store
            .workflow(workflow)
            .await?
            .ok_or(DurableError::NotFound(workflow))?;
        Ok(row.status.is_terminal())
    }
}

/// Where a stream reader is.
#[derive(Debug)]
struct Reader {
    next: i64,
    buffered: std::collections::VecDeque<crate::store::StreamItem>,
    done: bool,
}
