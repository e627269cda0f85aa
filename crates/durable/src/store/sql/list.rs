//! Listing and counting workflows (`Client::list`, `Client::count`).
//!
//! The one statement here that is not a compile-time constant: which
//! filters a query sets decides which conditions it has. It is still made
//! only of the constant fragments below and numbered placeholders
//! ([`Select`] takes nothing else), so every value a user hands in is
//! bound. Each sort is a keyset: the cursor's key compared as a row value
//! `(name, created_ms, id) > ($1, $2, $3)`, which both backends answer from
//! an index range (schema v6: one index per sort, see the migration).

use std::fmt::Write;

use sea_orm::Value;

use super::decode::Row;
use super::dialect::workflow_columns;
use super::{Dialect, SqlStore};
use crate::query::{Direction, SortBy, WorkflowQuery};
use crate::store::{StoreResult, WorkflowRow};

/// `workflow_columns!` with the payloads left out.
const COLUMNS_WITHOUT_PAYLOADS: &str = "SELECT id, root_id, parent_id, parent_position, workflow_key, name, status, \
     NULL AS input, NULL AS output, error, owner_id, lease_epoch, queue, priority, concurrency_key, \
     available_ms, wait_for, timeout_ms, deadline_ms, app_version, attempts, recoveries, created_ms, \
     started_ms, completed_ms FROM durable_workflow";

/// SQL text built from constant fragments and placeholders only.
struct Select {
    sql: String,
    values: Vec<Value>,
    dialect: Dialect,
}

impl Select {
    fn new(dialect: Dialect, head: &'static str) -> Self {
        Self {
            sql: head.to_string(),
            values: Vec::new(),
            dialect,
        }
    }

    fn push(&mut self, fragment: &'static str) -> &mut Self {
        self.sql.push_str(fragment);
        self
    }

    /// The next placeholder, bound to `value`.
    fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        // Only the placeholder's number becomes text.
        let _ = write!(self.sql, "${}", self.values.len());
        self
    }

    /// `AND <column> <op> <value>`.
    fn and(&mut self, condition: &'static str, value: impl Into<Value>) -> &mut Self {
        self.push(" AND ").push(condition).bind(value)
    }

    /// Every filter of `query` (cursor and order apart).
    fn filters(&mut self, query: &WorkflowQuery) -> &mut Self {
        self.push(" WHERE 1 = 1");
        if !query.statuses.is_empty() {
            self.push(" AND status IN (");
            for (i, status) in query.statuses.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.bind(status.as_str());
            }
            self.push(")");
        }
        if let Some(name) = &query.name {
            self.and("name = ", name.as_str());
        }
        if let Some(prefix) = &query.key_prefix {
            // Case-sensitive on both backends (SQLite's LIKE is not), and no
            // wildcard in the prefix can match more than itself.
            let chars = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
            self.and("substr(workflow_key, 1, ", chars)
                .push(") = ")
                .bind(prefix.as_str());
        }
        if let Some(queue) = &query.queue {
            self.and("queue = ", queue.as_str());
        }
        if let Some(parent) = query.parent {
            let parent = self.dialect.id(parent);
            self.and("parent_id = ", parent);
        }
        if query.roots_only {
            self.push(" AND parent_id IS NULL");
        }
        if let Some(from) = query.created.from_ms {
            self.and("created_ms >= ", from);
        }
        if let Some(until) = query.created.until_ms {
            self.and("created_ms < ", until);
        }
        if let Some(from) = query.finished.from_ms {
            self.and("completed_ms >= ", from);
        }
        if let Some(until) = query.finished.until_ms {
            self.and("completed_ms < ", until);
        }
        if let Some(version) = &query.app_version {
            self.and("app_version = ", version.as_str());
        }
        self
    }

    /// The sort's own condition, the cursor, the order and the limit.
    fn page(&mut self, query: &WorkflowQuery, fetch: u32) -> &mut Self {
        let key = sort_key(query.sort);
        match query.sort {
            SortBy::Started => self.push(" AND started_ms IS NOT NULL"),
            SortBy::Finished => self.push(" AND completed_ms IS NOT NULL"),
            _ => self,
        };
        if let Some(cursor) = query.after.as_ref().map(|c| c.fields()) {
            self.push(" AND ")
                .push(key.tuple)
                .push(match query.direction {
                    Direction::Ascending => " > (",
                    Direction::Descending => " < (",
                });
            if let Some(text) = &cursor.text {
                self.bind(text.as_str()).push(", ");
            }
            let id = self.dialect.id(cursor.id);
            self.bind(cursor.time_ms).push(", ").bind(id).push(")");
        }
        self.push(" ORDER BY ").push(match query.direction {
            Direction::Ascending => key.ascending,
            Direction::Descending => key.descending,
        });
        self.push(" LIMIT ").bind(i64::from(fetch))
    }
}

/// A sort's columns: as a row value, and in order either way.
struct SortKey {
    tuple: &'static str,
    ascending: &'static str,
    descending: &'static str,
}

fn sort_key(sort: SortBy) -> SortKey {
    let (tuple, ascending, descending) = match sort {
        SortBy::Created => (
            "(created_ms, id)",
            "created_ms ASC, id ASC",
            "created_ms DESC, id DESC",
        ),
        SortBy::Started => (
            "(started_ms, id)",
            "started_ms ASC, id ASC",
            "started_ms DESC, id DESC",
        ),
        SortBy::Finished => (
            "(completed_ms, id)",
            "completed_ms ASC, id ASC",
            "completed_ms DESC, id DESC",
        ),
        SortBy::Name => (
            "(name, created_ms, id)",
            "name ASC, created_ms ASC, id ASC",
            "name DESC, created_ms DESC, id DESC",
        ),
        SortBy::Status => (
            "(status, created_ms, id)",
            "status ASC, created_ms ASC, id ASC",
            "status DESC, created_ms DESC, id DESC",
        ),
    };
    SortKey {
        tuple,
        ascending,
        descending,
    }
}

impl SqlStore {
    /// The statement of a page: at most `fetch` workflows matching
    /// `query`, after its cursor.
    fn list_select(&self, query: &WorkflowQuery, fetch: u32) -> Select {
        let mut select = if query.payloads {
            Select::new(
                self.dialect,
                concat!("SELECT ", workflow_columns!(), " FROM durable_workflow"),
            )
        } else {
            Select::new(self.dialect, COLUMNS_WITHOUT_PAYLOADS)
        };
        select.filters(query).page(query, fetch);
        select
    }

    /// At most `fetch` workflows matching `query`, after its cursor.
    pub(super) async fn list_workflows(
        &self,
        query: &WorkflowQuery,
        fetch: u32,
    ) -> StoreResult<Vec<WorkflowRow>> {
        let select = self.list_select(query, fetch);
        let rows = self.query_all_planned(&select.sql, select.values).await?;
        Ok(rows
            .iter()
            .map(|r| Row::new(r, self.dialect).workflow())
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// The backend's plan of a page of `query`, one line a row (for the
    /// bench, which proves each sort is read from its index).
    pub(crate) async fn explain_list(&self, query: &WorkflowQuery) -> StoreResult<Vec<String>> {
        let select = self.list_select(query, query.page_size() + 1);
        self.explain(&select.sql, select.values).await
    }

    /// How many workflows match `query`'s filters.
    pub(super) async fn count_workflows(&self, query: &WorkflowQuery) -> StoreResult<u64> {
        let mut select = Select::new(self.dialect, "SELECT COUNT(*) AS n FROM durable_workflow");
        select.filters(query);
        let row = self.query_one_planned(&select.sql, select.values).await?;
        let n = match row {
            Some(row) => Row::new(&row, self.dialect).get::<i64>("n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
