//! SeaORM entities, one per table.

pub mod executor;
pub mod queue;
pub mod task;
