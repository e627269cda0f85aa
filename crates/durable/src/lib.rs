//! Durable workflows on PostgreSQL and SQLite.
//!
//! A workflow is ordinary async Rust. Each `ctx.step(...)` is checkpointed in
//! the database, so when the process dies, is redeployed or loses its
//! connection, running the workflow again resumes where it stopped:
//! completed steps return their saved output instead of running again.
//!
//! ```no_run
//! use durable::{Ctx, DurableError};
//!
//! # async fn demo() -> Result<(), DurableError> {
//! let db = durable::connect("sqlite://durable.db").await?;
//! durable::init(&db).await?;
//!
//! let ctx = Ctx::start(&db, "greet", None).await?;
//! let name: String = ctx.step("lookup", || async { Ok("world".to_string()) }).await?;
//! ctx.step("say", || async { println!("hello, {name}"); Ok(()) }).await?;
//! ctx.complete(&name).await?;
//! # Ok(()) }
//! ```
//!
//! The guarantees, the data model and the defects of the original design
//! that this crate avoids are described in the repository's README.

mod call; // the one protocol of every durable call, and its pure decision
mod client; // Client: enqueue, run inline, handles, management, the read model
mod codec; // checks on names and values users hand in
mod connect; // connect, init
mod ctx; // Ctx: start, steps, children, waits, finishing
mod error; // DurableError
mod executor; // Executor: an explicit identity, recovery
mod faults; // named fault points for the fault suite (feature `testing`)
mod history; // a workflow's journal, read in pages as it replays
mod identity; // the executor identity: lease, heartbeat, liveness
#[cfg(feature = "otlp")]
pub mod otlp; // OpenTelemetry export of spans (feature `otlp`)
mod query; // WorkflowQuery: filters, sort and pages of Client::list
mod queue; // Queue and its limits
mod read; // the read model's serde types
mod registry; // workflow functions by name
mod retry; // RetryPolicy
mod runner; // runs a registered workflow; one classification of outcomes
mod schedule; // cron schedules: Schedule, CatchUp, Tick, and which ticks fire
pub mod scratch; // for tests and benchmarks: scratch schemas, the wire counted, bulk seeds
#[cfg(test)]
mod sim; // deterministic simulation on the in-memory store
mod status; // Status, StepKind
mod store; // the storage interface, and its SQL implementation
mod telemetry; // metric names and spans the engine reports
#[cfg(test)]
mod testdb; // fresh SQLite files and PostgreSQL schemas for the unit tests
mod worker; // Worker: the claim loop

pub use client::{Client, Debounce, EnqueueOptions, PURGE_BATCH, TypedHandle, WorkflowHandle};
pub use connect::{connect, init};
pub use ctx::{ChildHandle, Ctx};
pub use error::DurableError;
pub use executor::{DEFAULT_LEASE, DEFAULT_MAX_RECOVERIES, Executor};
pub use query::{Cursor, DEFAULT_PAGE, Direction, MAX_PAGE, SortBy, WorkflowPage, WorkflowQuery};
pub use queue::{DEFAULT_QUEUE, Queue};
pub use read::{QueueInfo, RetriedStep, StepSummary, WorkflowSummary, WorkflowTree};
pub use registry::Registry;
pub use retry::RetryPolicy;
pub use schedule::{CatchUp, ON_TIME, Schedule, ScheduleInfo, Tick};
pub use status::{Status, StepKind};
pub use worker::Worker;

/// Register an `async fn` as a workflow: the function stays as written,
/// and a module of the same name holds what it needs to be run and
/// recovered, so no name is typed twice.
///
/// For `async fn charge(ctx: Ctx, input: I) -> Result<O, DurableError>`
/// (or `(ctx: Ctx)` with no input), the module `charge` beside it has:
/// - `NAME`: the name it is recorded under (the function's name, or
///   `#[durable::workflow(name = "billing.charge")]`);
/// - `register(&mut Registry)`: what workers need to run and recover it;
/// - `enqueue(&client, &input, options)`: a [`TypedHandle<O>`], whose
///   `result` needs no annotation;
/// - `run(&client, key, &input)`: run it in this process, typed.
///
/// It is a plain [`Registry::register`] underneath: workflows registered
/// by hand and by the attribute mix freely. Off with
/// `default-features = false` (feature `macros`).
///
/// The function must be an item of a module (the generated module reaches
/// it, and the types of its signature, through `super`), not one declared
/// inside a function body.
///
/// ```no_run
/// use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Worker};
/// use serde_json::Value as Document;
///
/// #[durable::workflow]
/// async fn summarize(ctx: Ctx, doc: Document) -> Result<String, DurableError> {
///     let title = doc["title"].as_str().unwrap_or("untitled").to_string();
///     ctx.step("compose", || async move { Ok(format!("summary of {title}")) }).await
/// }
///
/// async fn demo(db: durable::sea_orm::DatabaseConnection) -> Result<(), DurableError> {
///     let mut registry = Registry::new();
///     summarize::register(&mut registry);
///     let doc = serde_json::json!({"title": "Q3"});
///     let handle = summarize::enqueue(&Client::new(&db), &doc, EnqueueOptions::new()).await?;
///     let worker = Worker::new(&db, registry);
///     # let _ = worker;
///     let text = handle.result(std::time::Duration::from_secs(10)).await?; // a String
///     # let _: String = text;
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[cfg(feature = "macros")]
pub use durable_macros::workflow;

/// The SeaORM version `durable` is built with, for users' own queries.
pub use sea_orm;
pub use uuid::Uuid;

/// The README's code blocks compile as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The code blocks of `docs/versioning.md` compile as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/versioning.md")]
pub struct VersioningDoctests;
