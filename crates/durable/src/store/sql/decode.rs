//! Rows decoded by column name (never by position), with ids read the way
//! each backend stores them.

use sea_orm::{DbErr, QueryResult, TryGetable};
use uuid::Uuid;

use super::Dialect;
use crate::status::{Status, StepKind as Kind};
use crate::store::{Entry, ExecutorRow, WorkflowRow};

/// One result row and the dialect that wrote it.
pub(super) struct Row<'a> {
    row: &'a QueryResult,
    dialect: Dialect,
    /// Prefix of the column names (`c_` for a joined child row).
    prefix: &'static str,
}

impl<'a> Row<'a> {
    pub(super) fn new(row: &'a QueryResult, dialect: Dialect) -> Self {
        Self {
            row,
            dialect,
            prefix: "",
        }
    }

    pub(super) fn prefixed(row: &'a QueryResult, dialect: Dialect, prefix: &'static str) -> Self {
        Self {
            row,
            dialect,
            prefix,
        }
    }

    pub(super) fn get<T: TryGetable>(&self, column: &str) -> Result<T, DbErr> {
        self.row.try_get(self.prefix, column)
    }

    pub(super) fn opt_id(&self, column: &str) -> Result<Option<Uuid>, DbErr> {
        match self.dialect {
            Dialect::Postgres => self.get::<Option<Uuid>>(column),
            Dialect::Sqlite => self
                .get::<Option<String>>(column)?
                .map(|text| {
                    Uuid::parse_str(&text)
                        .map_err(|e| DbErr::Type(format!("column {column} holds {text:?}: {e}")))
                })
                .transpose(),
        }
    }

    pub(super) fn id(&self, column: &str) -> Result<Uuid, DbErr> {
        self.opt_id(column)?
            .ok_or_else(|| DbErr::Type(format!("column {column} is NULL")))
    }

    pub(super) fn status(&self, column: &str) -> Result<Status, DbErr> {
        Status::parse(&self.get::<String>(column)?)
    }

    pub(super) fn opt_status(&self, column: &str) -> Result<Option<Status>, DbErr> {
        self.get::<Option<String>>(column)?
            .as_deref()
            .map(Status::parse)
            .transpose()
    }

    pub(super) fn workflow(&self) -> Result<WorkflowRow, DbErr> {
        Ok(WorkflowRow {
            id: self.id("id")?,
            root_id: self.id("root_id")?,
            parent_id: self.opt_id("parent_id")?,
            parent_position: self.get("parent_position")?,
            key: self.get("workflow_key")?,
            name: self.get("name")?,
            status: self.status("status")?,
            input: self.get("input")?,
            output: self.get("output")?,
            error: self.get("error")?,
            owner_id: self.opt_id("owner_id")?,
            lease_epoch: self.get("lease_epoch")?,
            queue: self.get("queue")?,
            priority: self.get("priority")?,
            concurrency_key: self.get("concurrency_key")?,
            available_ms: self.get("available_ms")?,
            wait_for: self.get("wait_for")?,
            timeout_ms: self.get("timeout_ms")?,
            deadline_ms: self.get("deadline_ms")?,
            app_version: self.get("app_version")?,
            attempts: self.get("attempts")?,
            recoveries: self.get("recoveries")?,
            created_ms: self.get("created_ms")?,
            started_ms: self.get("started_ms")?,
            completed_ms: self.get("completed_ms")?,
            history_empty: false,
            claimed_ms: None,
        })
    }

    /// A row a claim returned, with its `history_empty` and `claimed_ms`
    /// columns.
    pub(super) fn claimed_workflow(&self) -> Result<WorkflowRow, DbErr> {
        Ok(WorkflowRow {
            history_empty: self.get("history_empty")?,
            claimed_ms: Some(self.get("claimed_ms")?),
            ..self.workflow()?
        })
    }

    /// A journal entry; with the child's row when the query joined it as
    /// `c_*` columns and there is one.
    pub(super) fn entry(&self, with_child: bool) -> Result<Entry, DbErr> {
        let child = if with_child {
            let child = Row::prefixed(self.row, self.dialect, "c_");
            match child.opt_id("id")? {
                Some(_) => Some(Box::new(child.workflow()?)),
                None => None,
            }
        } else {
            None
        };
        Ok(Entry {
            position: self.get("position")?,
            key: self.get("step_key")?,
            name: self.get("name")?,
            kind: Kind::parse(&self.get::<String>("kind")?)?,
            status: self.status("status")?,
            output: self.get("output")?,
            error: self.get("error")?,
            retry_count: self.get("retry_count")?,
            max_retries: self.get("max_retries")?,
            wake_ms: self.get("wake_ms")?,
            created_ms: self.get("created_ms")?,
            started_ms: self.get("started_ms")?,
            completed_ms: self.get("completed_ms")?,
            child,
        })
    }

    pub(super) fn executor(&self) -> Result<ExecutorRow, DbErr> {
        Ok(ExecutorRow {
            id: self.id("id")?,
            hostname: self.get("hostname")?,
            pid: self.get("pid")?,
            pid_started: self.get("pid_started")?,
        })
    }
}
