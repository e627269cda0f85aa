//! Debounce on `Client`: start a workflow once a key has been quiet.

use std::time::Duration;

use serde::Serialize;

use super::Client;
use crate::codec;
use crate::error::DurableError;
use crate::store::{NewDebounce, NewEnqueued};

/// How [`Client::debounce`] waits: the quiet period, the bound on the
/// whole wait, and the queue.
///
/// ```
/// use std::time::Duration;
/// let d = durable::Debounce::new(Duration::from_secs(5))
///     .max_wait(Duration::from_secs(60))
///     .queue("indexing");
/// ```
#[derive(Debug, Clone)]
pub struct Debounce {
    period: Duration,
    max_wait: Option<Duration>,
    queue: Option<String>,
}

impl Debounce {
    /// Start once no call came for `period`, at the latest ten periods
    /// after a burst's first call, on the `default` queue.
    ///
    /// ```
    /// let quiet_for_two_seconds = durable::Debounce::new(std::time::Duration::from_secs(2));
    /// ```
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            max_wait: None,
            queue: None,
        }
    }

    /// Start at the latest this long after a burst's first call, however
    /// busy the key stays (at least the period).
    ///
    /// ```
    /// use std::time::Duration;
    /// let d = durable::Debounce::new(Duration::from_secs(2)).max_wait(Duration::from_secs(30));
    /// ```
    pub fn max_wait(mut self, bound: Duration) -> Self {
        self.max_wait = Some(bound);
        self
    }

    /// Enqueue on this (declared) queue instead of `default`.
    ///
    /// ```
    /// let d = durable::Debounce::new(std::time::Duration::from_secs(2)).queue("indexing");
    /// ```
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis())
        .unwrap_or(i64::MAX)
        .min(crate::ctx::MAX_TIMEOUT_MS)
}

impl Client {
    /// Start registered workflow `name` once `key` has been quiet for the
    /// debounce period, with the input of the latest call.
    ///
    /// The first call of a burst enqueues the workflow, delayed by the
    /// period; each later call while it has not started gives it its input
    /// and pushes its start back to a period after the call, but never
    /// past [`Debounce::max_wait`] after the burst's first call. A call
    /// after the workflow started begins a new burst and a new workflow.
    /// Calls of one key from any number of processes are serialized in
    /// the database; keys of different workflow names are apart. Returns the burst's workflow (`is_new` for the call
    /// that began it).
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a zero period, a bound shorter
    /// than the period, a bad name, key or input;
    /// [`DurableError::UnknownQueue`]; [`DurableError::UnknownWorkflow`]
    /// (with a registry). Nothing is written then.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// use std::time::Duration;
    /// // Re-index a document once its edits have stopped for 2 s (within a minute).
    /// let rule = durable::Debounce::new(Duration::from_secs(2)).max_wait(Duration::from_secs(60));
    /// let handle = client.debounce("reindex", "doc-17", &"doc-17 rev 9", &rule).await?;
    /// # Ok(()) }
    /// ```
    pub async fn debounce<I: Serialize + ?Sized>(
        &self,
        name: &str,
        key: &str,
        input: &I,
        rule: &Debounce,
    ) -> Result<crate::WorkflowHandle, DurableError> {
        codec::check_name("workflow", name)?;
        codec::check_name("debounce key", key)?;
        if rule.period.is_zero() {
            return Err(DurableError::InvalidInput(
                "debounce period must be longer than zero".to_string(),
            ));
        }
        let max_wait = rule.max_wait.unwrap_or(rule.period.saturating_mul(10));
        if max_wait < rule.period {
            return Err(DurableError::InvalidInput(format!(
                "debounce max wait {max_wait:?} is shorter than its period {:?}",
                rule.period
            )));
        }
        if let Some(registry) = &self.registry
            && !registry.contains(name)
        {
            return Err(DurableError::UnknownWorkflow(name.to_string()));
        }
        let queue = rule.queue.as_deref().unwrap_or(crate::DEFAULT_QUEUE);
        if self.store.queue(queue).await?.is_none() {
            return Err(DurableError::UnknownQueue(queue.to_string()));
        }
        let input = codec::encode_value("workflow input", input)?;
        // Bursts are per workflow name and key (the name's length first,
        // so no two pairs make one text).
        let burst = format!("{}:{name}:{key}", name.len());
        let call = NewDebounce {
            key: &burst,
            period_ms: millis(rule.period),
            max_wait_ms: millis(max_wait),
            work: NewEnqueued {
                key: "",
                name,
                input,
                queue,
                priority: 0,
                concurrency_key: None,
                delay_ms: None,
                app_version: None,
            },
        };
        let (id, new) = self.store.debounce(&call).await?;
        if new {
            self.store.notify(queue).await?;
        }
        let row = self
            .store
            .workflow(id)
            .await?
            .ok_or(DurableError::NotFound(id))?;
        Ok(self.handle_of(id, row.key, row.name, new))
    }
}
