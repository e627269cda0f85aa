//! The seed's management calls on `Ctx`, kept for compatibility: they
//! delegate to [`crate::Client`], where management lives now.

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::Ctx;
use crate::client::Client;
use crate::error::DurableError;

impl Ctx {
    /// Pause a workflow by id, and every PENDING or RUNNING descendant.
    /// Same as [`Client::pause`].
    ///
    /// # Errors
    /// As [`Client::pause`].
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// # #[allow(deprecated)]
    /// durable::Ctx::pause(&db, id).await?;
    /// # Ok(()) }
    /// ```
    #[deprecated(since = "0.2.0", note = "use `Client::new(&db).pause(id)`")]
    pub async fn pause(db: &DatabaseConnection, task_id: Uuid) -> Result<(), DurableError> {
        Client::new(db).pause(task_id).await
    }

    /// Resume a paused workflow by id. Same as [`Client::resume`].
    ///
    /// # Errors
    /// As [`Client::resume`].
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// # #[allow(deprecated)]
    /// durable::Ctx::resume(&db, id).await?;
    /// # Ok(()) }
    /// ```
    #[deprecated(since = "0.2.0", note = "use `Client::new(&db).resume(id)`")]
    pub async fn resume(db: &DatabaseConnection, task_id: Uuid) -> Result<(), DurableError> {
        Client::new(db).resume(task_id).await
    }

    /// Cancel a workflow by id, and every unfinished descendant. Same as
    /// [`Client::cancel`].
    ///
    /// # Errors
    /// As [`Client::cancel`].
    ///
    /// ```no_run
    /// # async fn demo(db: sea_orm::DatabaseConnection, id: uuid::Uuid) -> Result<(), durable::DurableError> {
    /// # #[allow(deprecated)]
    /// durable::Ctx::cancel(&db, id).await?;
    /// # Ok(()) }
    /// ```
    #[deprecated(since = "0.2.0", note = "use `Client::new(&db).cancel(id)`")]
    pub async fn cancel(db: &DatabaseConnection, task_id: Uuid) -> Result<(), DurableError> {
        Client::new(db).cancel(task_id).await
    }
}
