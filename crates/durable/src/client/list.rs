//! Listing and counting workflows on `Client` (see [`crate::WorkflowQuery`]).

use super::Client;
use crate::error::DurableError;
use crate::query::{WorkflowPage, WorkflowQuery};

impl Client {
    /// One page of the workflows `query` selects, in its order, and the
    /// cursor of the next page.
    ///
    /// One read, served from an index for each sort (schema v6), so a page
    /// deep into millions of workflows costs what the first one does.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a limit outside 1 to
    /// [`crate::MAX_PAGE`], an empty name, a NUL byte, a time range that
    /// ends before it starts, `roots_only` with a `parent`, or a cursor of
    /// another sort; nothing is read then.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// use durable::{Status, WorkflowQuery};
    ///
    /// let page = client
    ///     .list(&WorkflowQuery::new().status(Status::Failed).limit(20))
    ///     .await?;
    /// for w in &page.workflows {
    ///     println!("{} {} failed: {:?}", w.id, w.key, w.error);
    /// }
    /// if let Some(next) = page.next {
    ///     let more = client.list(&WorkflowQuery::new().status(Status::Failed).limit(20).after(next)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, query: &WorkflowQuery) -> Result<WorkflowPage, DurableError> {
        WorkflowPage::read(self.store.as_ref(), query).await
    }

    /// How many workflows `query`'s filters select (its sort, limit and
    /// cursor do not count).
    ///
    /// A count reads every matching index entry: without a filter, on
    /// millions of rows, it takes a while.
    ///
    /// # Errors
    /// As [`Client::list`].
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// use durable::{Status, WorkflowQuery};
    ///
    /// let running = client.count(&WorkflowQuery::new().status(Status::Running)).await?;
    /// println!("{running} running");
    /// # Ok(()) }
    /// ```
    pub async fn count(&self, query: &WorkflowQuery) -> Result<u64, DurableError> {
        query.check()?;
        self.store.count(query).await
    }
}
