//! `Queue`: a named queue and its limits.

use std::time::Duration;

use crate::store::QueueLimits;

/// The queue every database has, without limits.
pub const DEFAULT_QUEUE: &str = "default";

/// A named queue of workflows and its limits, which hold across every
/// executor (each claim locks the queue's row).
///
/// ```
/// use durable::Queue;
/// use std::time::Duration;
///
/// let queue = Queue::new("crawl")
///     .concurrency(20)                          // at most 20 running, over all executors
///     .rate_limit(100, Duration::from_secs(1))  // at most 100 starts per second
///     .concurrency_per_key(2);                  // at most 2 running per concurrency key
/// assert_eq!(queue.name(), "crawl");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    name: String,
    limits: QueueLimits,
}

impl Queue {
    /// A queue without limits.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// client.declare_queue(&durable::Queue::new("emails")).await?;
    /// # Ok(()) }
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            limits: QueueLimits::default(),
        }
    }

    /// At most `n` workflows of this queue run at once, over all executors.
    ///
    /// ```
    /// let queue = durable::Queue::new("crawl").concurrency(20);
    /// ```
    pub fn concurrency(mut self, n: u32) -> Self {
        self.limits.concurrency = Some(clamp(n));
        self
    }

    /// At most `starts` workflows start per `period`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let queue = durable::Queue::new("crawl").rate_limit(600, Duration::from_secs(60));
    /// ```
    pub fn rate_limit(mut self, starts: u32, period: Duration) -> Self {
        self.limits.rate_limit = Some(clamp(starts));
        self.limits.rate_period_ms =
            Some(i64::try_from(period.as_millis()).unwrap_or(i64::MAX).max(1));
        self
    }

    /// At most `n` running workflows per concurrency key.
    ///
    /// ```
    /// // Work enqueued with `EnqueueOptions::concurrency_key("customer-7")`
    /// // runs one at a time per customer.
    /// let queue = durable::Queue::new("payments").concurrency_per_key(1);
    /// ```
    pub fn concurrency_per_key(mut self, n: u32) -> Self {
        self.limits.key_concurrency = Some(clamp(n));
        self
    }

    /// The queue's name.
    ///
    /// ```
    /// assert_eq!(durable::Queue::new("crawl").name(), "crawl");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn limits(&self) -> &QueueLimits {
        &self.limits
    }
}

fn clamp(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
