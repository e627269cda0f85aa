//! `durable_queue`: one row per named queue and its limits. Every claim of
//! work from a queue locks its row, so the limits hold across executors.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One queue row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "durable_queue")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// At most this many workflows of the queue run at once, over all executors.
    pub concurrency: Option<i32>,
    /// At most `rate_limit` starts per `rate_period_ms`.
    pub rate_limit: Option<i32>,
    pub rate_period_ms: Option<i64>,
    /// At most this many running workflows per concurrency key.
    pub key_concurrency: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
