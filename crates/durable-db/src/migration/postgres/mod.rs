//! PostgreSQL DDL, one module per schema version.

mod v1;
mod v2;
mod v3;
mod v4;
mod v5;
mod v6;
mod v7;

use super::Migration;

/// Serializes concurrent `migrate` calls on one database (an arbitrary constant key).
pub(super) const LOCK: &str = "SELECT pg_advisory_xact_lock(7305437826951731553)";

pub(super) const MIGRATIONS: &[Migration] =
    &[v1::V1, v2::V2, v3::V3, v4::V4, v5::V5, v6::V6, v7::V7];
