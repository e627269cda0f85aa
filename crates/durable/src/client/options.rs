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
    pub fn new() -> Self {
        Self::default()
    }

    /// The workflow's key (idempotency key): enqueueing the same key again
    /// returns the existing workflow instead of a new one.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The queue (declared with [`crate::Client::declare_queue`]; `default` always exists).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Larger runs first within the queue (default 0).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Not before this long from now (database clock).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Group for the queue's per-key concurrency limit (e.g. a customer id).
    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }

    /// Only executors of this application version run it (default: the
    /// first executor to start it records its own version).
    pub fn app_version(mut self, version: impl Into<String>) -> Self {
        self.app_version = Some(version.into());
        self
    }
}
