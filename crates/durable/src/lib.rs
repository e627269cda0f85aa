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

mod client;
mod codec;
mod connect;
mod control;
mod ctx;
mod error;
mod executor;
mod finish;
mod history;
mod liveness;
mod queue;
mod registry;
mod retry;
mod status;
mod step;
mod store;
mod worker;

pub use client::{Client, EnqueueOptions, WorkflowHandle};
pub use connect::{connect, init};
pub use ctx::Ctx;
pub use error::DurableError;
pub use executor::{DEFAULT_LEASE, Executor};
pub use queue::{DEFAULT_QUEUE, Queue};
pub use registry::Registry;
pub use retry::RetryPolicy;
pub use status::Status;
pub use worker::Worker;

/// The SeaORM version `durable` is built with, for users' own queries.
pub use sea_orm;
pub use uuid::Uuid;

/// The README's code blocks compile as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
