//! Whether a finished workflow announces its free slot. On a queue with a
//! limit that spans executors (concurrency, or concurrency per key),
//! another worker may be waiting for the slot, so the finish is announced
//! (`NOTIFY` on PostgreSQL). On a queue without one nobody waits for a
//! slot (new work is announced when it is enqueued), and announcing would
//! cost a round trip and a claim round in every listening worker for each
//! finished workflow. What a queue's limits are is read from its row at
//! most every [`REFRESH`]; either way it is a hint, as workers also poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::Store;

/// How long what is known of a queue's limits is used.
const REFRESH: Duration = Duration::from_secs(10);

/// The queues' limits as last read.
#[derive(Debug)]
pub(super) struct Announcer {
    store: Arc<dyn Store>,
    known: Mutex<HashMap<String, (Instant, bool)>>,
}

impl Announcer {
    pub(super) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Announce that a slot of `queue` is free, if anyone may wait for it.
    pub(super) async fn slot_freed(&self, queue: &str) {
        if !self.shared_limit(queue).await {
            return;
        }
        if let Err(err) = self.store.notify(queue).await {
            tracing::debug!(queue, error = %err, "notify failed");
        }
    }

    /// Whether `queue` has a limit over all executors; when its row cannot
    /// be read, assume it has (an announcement too many costs little).
    async fn shared_limit(&self, queue: &str) -> bool {
        let cached = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(queue)
            .filter(|(at, _)| at.elapsed() < REFRESH)
            .map(|(_, limited)| *limited);
        if let Some(limited) = cached {
            return limited;
        }
        let limited = match self.store.queue(queue).await {
            Ok(Some(limits)) => limits.spans_executors(),
            Ok(None) => false,
            Err(_) => return true,
        };
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(queue.to_string(), (Instant::now(), limited));
        limited
    }
}
