//! Schema of the `durable` workflow engine: SeaORM entities and the versioned,
//! forward-only migrations for PostgreSQL and SQLite.
//!
//! Most users never touch this crate directly: `durable::init(&db)` runs the
//! migrations, and the entities are there for reading with ordinary SeaORM
//! queries (dashboards, reports, tests). The `durable` crate's read model
//! (`Client::workflow`, `Client::tree`) is the supported way to read a
//! workflow; the tables are `durable_workflow` (one row per workflow) and
//! `durable_step` (one row per durable call of a workflow).
//!
//! ```no_run
//! # async fn demo(db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
//! use durable_db::entity::task::{Column, Entity as Task};
//! use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
//!
//! durable_db::migrate(db).await?;
//! let failed = Task::find().filter(Column::Status.eq("FAILED")).all(db).await?;
//! println!("{} failed tasks", failed.len());
//! # Ok(()) }
//! ```

pub mod entity;
mod migration;

pub use migration::{SCHEMA_VERSION, migrate};
