//! `durable_executor`: one row per executor (a process that owns workflows),
//! read through the view `durable_executor_v1` (read-only; on SQLite the
//! table holds ids as text since schema v2, the view gives the blobs this
//! entity decodes).
//!
//! An executor is alive while `lease_expires_ms` lies in the future by the
//! database clock; its heartbeat pushes the expiry forward. `hostname`
//! (the host name with its boot id and pid namespace, `name boot=<id>
//! pidns=<ns>`), `pid` and `pid_started` let an executor on the same host
//! notice at once that the owner process is gone, without waiting for the
//! lease.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One executor row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "durable_executor_v1")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub hostname: String,
    pub pid: i64,
    /// Start time of the process as the OS reports it (guards against pid reuse).
    pub pid_started: i64,
    pub started_ms: i64,
    pub lease_expires_ms: i64,
    /// Written by earlier versions (a session advisory lock they held on
    /// PostgreSQL); NULL from this one on, and read by nothing.
    pub lock_key: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
