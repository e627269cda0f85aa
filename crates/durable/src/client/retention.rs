//! Retention on `Client`: deleting finished workflow trees past an age.

use std::time::Duration;

use super::Client;
use crate::error::DurableError;
use crate::store::Store;

/// Roots deleted per transaction by [`Client::purge_finished`].
pub const PURGE_BATCH: u32 = 500;

impl Client {
    /// Delete every workflow tree that finished `older_than` ago or earlier
    /// (database clock), with its steps, messages, events, streams and
    /// retried calls; the number of root workflows deleted.
    ///
    /// A tree goes only when its root and every workflow under it are
    /// finished (COMPLETED, FAILED or CANCELLED): running work is never
    /// touched, and neither is a finished root with a child still running.
    /// It deletes [`PURGE_BATCH`] trees per transaction, oldest first, so
    /// it holds no lock for long and two callers (or workers with
    /// [`crate::Worker::retention`]) share the work without meeting.
    ///
    /// # Errors
    /// [`DurableError::Db`] if the database fails; the batches before it
    /// stay deleted.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let deleted = client.purge_finished(std::time::Duration::from_secs(30 * 86_400)).await?;
    /// println!("deleted {deleted} workflows finished over 30 days ago");
    /// # Ok(()) }
    /// ```
    pub async fn purge_finished(&self, older_than: Duration) -> Result<u64, DurableError> {
        purge_all(self.store.as_ref(), older_than).await
    }

    /// One batch of [`Client::purge_finished`]: at most [`PURGE_BATCH`]
    /// trees, the oldest, in one transaction; the number deleted (fewer
    /// than a batch: nothing of that age is left).
    ///
    /// # Errors
    /// [`DurableError::Db`] if the database fails; nothing is deleted then.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let day = std::time::Duration::from_secs(86_400);
    /// while client.purge_batch(day).await? == u64::from(durable::PURGE_BATCH) {
    ///     tokio::time::sleep(std::time::Duration::from_millis(100)).await; // go easy on the database
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn purge_batch(&self, older_than: Duration) -> Result<u64, DurableError> {
        let roots = self.store.purge(age_ms(older_than), PURGE_BATCH).await?;
        Ok(roots.len() as u64)
    }
}

fn age_ms(older_than: Duration) -> i64 {
    i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX)
}

/// Purge batch after batch until one comes back short.
pub(crate) async fn purge_all(
    store: &dyn Store,
    older_than: Duration,
) -> Result<u64, DurableError> {
    let mut deleted = 0u64;
    loop {
        let roots = store.purge(age_ms(older_than), PURGE_BATCH).await?;
        deleted += roots.len() as u64;
        if roots.len() < PURGE_BATCH as usize {
            break;
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, ?older_than, "finished workflows purged");
    }
    Ok(deleted)
}
