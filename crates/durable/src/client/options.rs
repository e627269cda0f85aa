//! `EnqueueOptions`: key, queue, priority, delay, concurrency key and
//! application version of one enqueue.

use std::time::Duration;

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
    pub(super) key: Option<String>,
    pub(super) queue: Option<String>,
    pub(super) priority: i32,
    pub(super) delay: Option<Duration>,
    pub(super) concurrency_key: Option<String>,
    pub(super) app_version: Option<String>,
}

impl EnqueueOptions {
    /// Defaults: a fresh key, the `default` queue, priority 0, no delay.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let handle = client.enqueue("resize", &640u32, durable::EnqueueOptions::new()).await?;
    /// # Ok(()) }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The workflow's key (idempotency key): enqueueing the same key again
    /// returns the existing workflow instead of a new one.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let options = durable::EnqueueOptions::new().key("order-42");
    /// let first = client.enqueue("charge", &1200u64, options.clone()).await?;
    /// let again = client.enqueue("charge", &1200u64, options).await?;
    /// assert_eq!(first.id(), again.id());
    /// assert!(!again.is_new());
    /// # Ok(()) }
    /// ```
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The queue (declared with [`crate::Client::declare_queue`]; `default` always exists).
    ///
    /// ```
    /// let options = durable::EnqueueOptions::new().queue("payments");
    /// ```
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Larger runs first within the queue (default 0); ties go by enqueue
    /// order (for enqueues from different processes in one millisecond, by
    /// the time each process read).
    ///
    /// ```
    /// let urgent = durable::EnqueueOptions::new().priority(100);
    /// let backfill = durable::EnqueueOptions::new().priority(-10);
    /// ```
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Not before this long from now (database clock).
    ///
    /// ```
    /// use std::time::Duration;
    /// let in_an_hour = durable::EnqueueOptions::new().delay(Duration::from_secs(3600));
    /// ```
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Group for the queue's per-key concurrency limit (e.g. a customer id).
    ///
    /// ```
    /// // With `Queue::concurrency_per_key(2)`, at most two of customer-7's run at once.
    /// let options = durable::EnqueueOptions::new().queue("payments").concurrency_key("customer-7");
    /// ```
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }

    /// Only executors of this application version run it (default: the
    /// first executor to start it records its own version).
    ///
    /// ```
    /// let options = durable::EnqueueOptions::new().app_version("v2");
    /// ```
    pub fn app_version(mut self, version: impl Into<String>) -> Self {
        self.app_version = Some(version.into());
        self
    }
}
