//! SeaORM entities, one per table.

pub mod executor;
pub mod task;
