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
mod query; // WorkflowQuery: filters, sort and pages of Client::list
mod queue; // Queue and its limits
mod read; // the read model's serde types
mod registry; // workflow functions by name
mod retry; // RetryPolicy
mod runner; // runs a registered workflow; one classification of outcomes
mod schedule; // cron schedules: Schedule, CatchUp, Tick, and which ticks fire
pub mod scratch; // throwaway PostgreSQL schemas for tests and benchmarks
#[cfg(test)]
mod sim; // deterministic simulation on the in-memory store
mod status; // Status, StepKind
mod store; // the storage interface, and its SQL implementation
mod worker; // Worker: the claim loop

pub use client::{Client, Debounce, EnqueueOptions, PURGE_BATCH, WorkflowHandle};
pub use connect::{connect, init};
pub use ctx::{ChildHandle, Ctx};
pub use error::DurableError;
pub use executor::{DEFAULT_LEASE, DEFAULT_MAX_RECOVERIES, Executor};
pub use query::{Cursor, DEFAULT_PAGE, Direction, MAX_PAGE, SortBy, WorkflowPage, WorkflowQuery};
pub use queue::{DEFAULT_QUEUE, Queue};
pub use read::{RetriedStep, StepSummary, WorkflowSummary, WorkflowTree};
pub use registry::Registry;
pub use retry::RetryPolicy;
pub use schedule::{CatchUp, ON_TIME, Schedule, ScheduleInfo, Tick};
pub use status::{Status, StepKind};
pub use worker::Worker;

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
