//! `WorkflowHandle`: a workflow's id and the means to follow it.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::codec;
use crate::error::DurableError;
use crate::status::Status;
use crate::store::{Store, WorkflowRow};

/// A workflow's id and the means to follow it: status and result.
#[derive(Debug, Clone)]
pub struct WorkflowHandle {
    pub(super) store: Arc<dyn Store>,
    pub(super) id: Uuid,
    pub(super) key: String,
    pub(super) name: String,
    pub(super) new: bool,
}

impl WorkflowHandle {
    /// The workflow's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The workflow's key (idempotency key).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if the enqueue that made this handle created the workflow;
    /// false if the key already existed.
    pub fn is_new(&self) -> bool {
        self.new
    }

    /// The workflow's status now.
    ///
    /// # Errors
    /// [`DurableError::NotFound`] if it was deleted.
    ///
    /// ```no_run
    /// # async fn demo(handle: durable::WorkflowHandle) -> Result<(), durable::DurableError> {
    /// if handle.status().await?.is_terminal() {
    ///     println!("done");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<Status, DurableError> {
        Ok(self.row().await?.status)
    }

    /// Wait up to `timeout` for the workflow to finish and return its output.
    ///
    /// # Errors
    /// [`DurableError::WaitTimeout`] if it has not finished after `timeout`
    /// (it goes on running);
    /// [`DurableError::WorkflowFailed`] if it failed;
    /// [`DurableError::Cancelled`] if it was cancelled;
    /// [`DurableError::InvalidInput`] if the output is not an `O`.
    ///
    /// ```no_run
    /// # async fn demo(handle: durable::WorkflowHandle) -> Result<(), durable::DurableError> {
    /// let total: u64 = handle.result(std::time::Duration::from_secs(10)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn result<O: DeserializeOwned>(&self, timeout: Duration) -> Result<O, DurableError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut wait = Duration::from_millis(10);
        loop {
            if let Some(output) = outcome(&self.row().await?)? {
                return Ok(output);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(DurableError::WaitTimeout {
                    workflow: self.id,
                    waited: timeout,
                });
            }
            tokio::time::sleep(wait.min(deadline - now)).await;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    async fn row(&self) -> Result<WorkflowRow, DurableError> {
        self.store
            .workflow(self.id)
            .await?
            .ok_or(DurableError::NotFound(self.id))
    }
}

/// A [`WorkflowHandle`] that knows its workflow's output type, so that
/// [`TypedHandle::result`] needs no annotation: what the helpers of
/// [`crate::workflow`] return. Everything else of the handle is reached
/// through `Deref`.
///
/// ```no_run
/// # async fn demo(handle: durable::WorkflowHandle) -> Result<(), durable::DurableError> {
/// let typed: durable::TypedHandle<u64> = durable::TypedHandle::new(handle);
/// println!("{} is {}", typed.id(), typed.status().await?);
/// let total = typed.result(std::time::Duration::from_secs(10)).await?; // a u64
/// # let _ = total; Ok(()) }
/// ```
pub struct TypedHandle<O> {
    handle: WorkflowHandle,
    output: PhantomData<fn() -> O>,
}

impl<O: DeserializeOwned> TypedHandle<O> {
    /// Type `handle`'s output as `O` (checked when the result is read).
    ///
    /// ```no_run
    /// # fn demo(handle: durable::WorkflowHandle) {
    /// let typed = durable::TypedHandle::<String>::new(handle);
    /// # let _ = typed; }
    /// ```
    pub fn new(handle: WorkflowHandle) -> Self {
        Self {
            handle,
            output: PhantomData,
        }
    }

    /// Wait up to `timeout` for the workflow to finish and return its
    /// output, as [`WorkflowHandle::result`].
    ///
    /// # Errors
    /// As [`WorkflowHandle::result`].
    ///
    /// ```no_run
    /// # async fn demo(typed: durable::TypedHandle<String>) -> Result<(), durable::DurableError> {
    /// let text = typed.result(std::time::Duration::from_secs(5)).await?;
    /// # let _ = text; Ok(()) }
    /// ```
    pub async fn result(&self, timeout: Duration) -> Result<O, DurableError> {
        self.handle.result(timeout).await
    }

    /// The untyped handle.
    ///
    /// ```no_run
    /// # fn demo(typed: durable::TypedHandle<u64>) {
    /// let handle: durable::WorkflowHandle = typed.into_inner();
    /// # let _ = handle; }
    /// ```
    pub fn into_inner(self) -> WorkflowHandle {
        self.handle
    }
}

impl<O> std::ops::Deref for TypedHandle<O> {
    type Target = WorkflowHandle;

    fn deref(&self) -> &WorkflowHandle {
        &self.handle
    }
}

impl<O> Clone for TypedHandle<O> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
            output: PhantomData,
        }
    }
}

impl<O> std::fmt::Debug for TypedHandle<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TypedHandle").field(&self.handle).finish()
    }
}

/// The result of a finished workflow; `None` while it is not finished.
pub(super) fn outcome<O: DeserializeOwned>(row: &WorkflowRow) -> Result<Option<O>, DurableError> {
    match row.status {
        Status::Completed => {
            let text = row.output.as_deref().unwrap_or("null");
            Ok(Some(codec::decode_output(&row.name, text)?))
        }
        Status::Failed
            if row
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with(codec::MAX_RECOVERIES_ERROR)) =>
        {
            Err(DurableError::MaxRecoveryExceeded {
                workflow: row.id,
                recoveries: u32::try_from(row.recoveries).unwrap_or(0),
            })
        }
        Status::Failed => Err(DurableError::WorkflowFailed {
            workflow: row.id,
            message: row.error.clone().unwrap_or_default(),
        }),
        Status::Cancelled => Err(DurableError::Cancelled(format!(
            "workflow {} was cancelled",
            row.id
        ))),
        _ => Ok(None),
    }
}
