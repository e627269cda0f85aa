//! `Registry`: workflow functions by name, so executors can start enqueued
//! work and resume the work of processes that died.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::ctx::Ctx;
use crate::error::DurableError;

/// The output of a run, as JSON text.
type RunFuture = Pin<Box<dyn Future<Output = Result<String, DurableError>> + Send>>;

/// A registered function with its input and output types erased: it takes
/// the workflow's `Ctx` and its input as JSON text.
pub(crate) type ErasedWorkflow = Arc<dyn Fn(Ctx, Option<String>) -> RunFuture + Send + Sync>;

/// Workflow functions by name, with typed input and output.
///
/// ```no_run
/// use durable::{Ctx, DurableError, Registry};
///
/// async fn greet(ctx: Ctx, name: String) -> Result<String, DurableError> {
///     let greeting = ctx.step("compose", || async move { Ok(format!("hello, {name}")) }).await?;
///     Ok(greeting)
/// }
///
/// let mut registry = Registry::new();
/// registry.register("greet", greet);
/// assert!(registry.contains("greet"));
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    workflows: BTreeMap<String, ErasedWorkflow>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.workflows.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    ///
    /// ```
    /// let registry = durable::Registry::new();
    /// assert_eq!(registry.names().count(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `workflow` under `name`, replacing any function of that name.
    ///
    /// The function receives the workflow's [`Ctx`] and its input; what it
    /// returns becomes the workflow's output (the executor completes the
    /// workflow with it, or fails it with the error).
    ///
    /// # Panics
    /// If `name` is empty, longer than 1024 bytes or contains NUL: names
    /// are fixed in code, so this is a programming error.
    ///
    /// ```no_run
    /// # use durable::{Ctx, DurableError, Registry};
    /// let mut registry = Registry::new();
    /// registry.register("double", |ctx: Ctx, n: u64| async move {
    ///     ctx.step("double", || async move { Ok(n * 2) }).await
    /// });
    /// ```
    pub fn register<I, O, F, Fut>(&mut self, name: &str, workflow: F) -> &mut Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(Ctx, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, DurableError>> + Send + 'static,
    {
        if let Err(err) = codec::check_name("workflow", name) {
            panic!("cannot register workflow: {err}");
        }
        let workflow = Arc::new(workflow);
        let owned_name = name.to_string();
        let erased: ErasedWorkflow = Arc::new(move |ctx: Ctx, input: Option<String>| {
            let workflow = workflow.clone();
            let name = owned_name.clone();
            Box::pin(async move {
                let input: I = serde_json::from_str(input.as_deref().unwrap_or("null")).map_err(|e| {
                    DurableError::InvalidInput(format!(
                        "input of workflow '{name}' does not deserialize into its input type: {e}"
                    ))
                })?;
                let output = workflow(ctx, input).await?;
                codec::encode_value("workflow output", &output)
            }) as RunFuture
        });
        self.workflows.insert(name.to_string(), erased);
        self
    }

    /// Whether a function is registered under `name`.
    ///
    /// ```
    /// use durable::{Ctx, DurableError, Registry};
    ///
    /// async fn ping(_ctx: Ctx, _input: ()) -> Result<(), DurableError> {
    ///     Ok(())
    /// }
    ///
    /// let mut registry = Registry::new();
    /// registry.register("ping", ping);
    /// assert!(registry.contains("ping"));
    /// assert!(!registry.contains("pong"));
    /// ```
    pub fn contains(&self, name: &str) -> bool {
        self.workflows.contains_key(name)
    }

    /// The registered names, in order.
    ///
    /// ```
    /// use durable::{Ctx, DurableError, Registry};
    ///
    /// async fn ping(_ctx: Ctx, _input: ()) -> Result<(), DurableError> {
    ///     Ok(())
    /// }
    ///
    /// let mut registry = Registry::new();
    /// registry.register("ping", ping).register("alpha", ping);
    /// assert_eq!(registry.names().collect::<Vec<_>>(), ["alpha", "ping"]);
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.workflows.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, name: &str) -> Option<ErasedWorkflow> {
        self.workflows.get(name).cloned()
    }

    /// The names as a JSON array, the form claims bind.
    pub(crate) fn names_json(&self) -> String {
        serde_json::to_string(&self.workflows.keys().collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into())
    }
}
