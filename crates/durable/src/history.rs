//! The recorded history of one workflow, read in pages as the workflow
//! replays, so a replayed step costs no round trip in practice (one query
//! per page) and memory stays bounded whatever the length of the history.
//!
//! Records are indexed by call position. A call finds the record at its own
//! position; a record there with another key means the code changed
//! (non-determinism). A record is handed out once and then dropped.

use std::collections::BTreeMap;

use sea_orm::DatabaseConnection;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::DurableError;
use crate::store::{self, TaskRow};

/// Records read per query.
pub(crate) const PAGE_SIZE: i64 = 500;

/// What the history holds at one call position.
pub(crate) enum AtPosition {
    /// Nothing was recorded there: the call is new.
    Nothing,
    /// The record of this very call.
    Same(TaskRow),
    /// A record of another call (its key): the code no longer matches.
    Other(String),
}

/// The not yet replayed records of one workflow.
pub(crate) struct History {
    workflow: Uuid,
    pages: Mutex<Pages>,
}

struct Pages {
    records: BTreeMap<i32, TaskRow>,
    /// Every record at a position below this one has been read.
    loaded_below: i32,
    /// No record at or after `loaded_below` exists.
    exhausted: bool,
}

impl History {
    /// The history of a workflow that may have records.
    pub(crate) fn recorded(workflow: Uuid) -> Self {
        Self::with(workflow, false)
    }

    /// The history of a workflow created just now: nothing to read.
    pub(crate) fn empty(workflow: Uuid) -> Self {
        Self::with(workflow, true)
    }

    fn with(workflow: Uuid, exhausted: bool) -> Self {
        Self {
            workflow,
            pages: Mutex::new(Pages {
                records: BTreeMap::new(),
                loaded_below: 0,
                exhausted,
            }),
        }
    }

    /// Take the record at `position`, reading the next page if needed.
    pub(crate) async fn take(
        &self,
        db: &DatabaseConnection,
        position: i32,
        key: &str,
    ) -> Result<AtPosition, DurableError> {
        let mut pages = self.pages.lock().await;
        while position >= pages.loaded_below && !pages.exhausted {
            let rows =
                store::history_page(db, self.workflow, pages.loaded_below, PAGE_SIZE).await?;
            let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= PAGE_SIZE;
            match rows.last().and_then(|r| r.sequence) {
                Some(last) if full => pages.loaded_below = last.saturating_add(1),
                _ => pages.exhausted = true,
            }
            for row in rows {
                if let Some(p) = row.sequence {
                    pages.records.insert(p, row);
                }
            }
        }
        Ok(match pages.records.remove(&position) {
            None => AtPosition::Nothing,
            Some(row) if row.key == key => AtPosition::Same(row),
            Some(row) => {
                let other = row.key.clone();
                // Leave it for the call it belongs to, if any.
                pages.records.insert(position, row);
                AtPosition::Other(other)
            }
        })
    }
}
