//! The recorded history of one workflow, read in pages as the workflow
//! replays, so a replayed call costs no round trip in practice (one query
//! per page) and memory stays bounded whatever the length of the history.
//!
//! Entries are indexed by call position; a call takes the entry at its own
//! position (the protocol then compares keys and kinds). An entry is handed
//! out once and then dropped.

use std::collections::BTreeMap;

use tokio::sync::Mutex;
use uuid::Uuid;

use crate::call::decide::AtPosition;
use crate::error::DurableError;
use crate::status::StepKind;
use crate::store::{Entry, Store};

/// Entries read per query.
pub(crate) const PAGE_SIZE: i64 = 500;

/// The not yet replayed entries of one workflow.
#[derive(Debug)]
pub(crate) struct History {
    workflow: Uuid,
    pages: Mutex<Pages>,
}

#[derive(Debug)]
struct Pages {
    entries: BTreeMap<i32, Entry>,
    /// Every entry at a position below this one has been read.
    loaded_below: i32,
    /// No entry at or after `loaded_below` exists.
    exhausted: bool,
}

impl History {
    /// The history of a workflow that may have entries.
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
                entries: BTreeMap::new(),
                loaded_below: 0,
                exhausted,
            }),
        }
    }

    /// Take the entry at `position`, reading the next page if needed.
    /// Read pages until `position` is loaded or the history ends.
    async fn load_through(
        &self,
        pages: &mut Pages,
        store: &dyn Store,
        position: i32,
    ) -> Result<(), DurableError> {
        while position >= pages.loaded_below && !pages.exhausted {
            let from = pages.loaded_below;
            let entries = store.history_page(self.workflow, from, PAGE_SIZE).await?;
            let full = i64::try_from(entries.len()).unwrap_or(i64::MAX) >= PAGE_SIZE;
            match entries.last() {
                Some(last) if full => pages.loaded_below = last.position.saturating_add(1),
                _ => pages.exhausted = true,
            }
            for entry in entries {
                pages.entries.insert(entry.position, entry);
            }
        }
        Ok(())
    }

    pub(crate) async fn take(
        &self,
        store: &dyn Store,
        position: i32,
    ) -> Result<AtPosition, DurableError> {
        let mut pages = self.pages.lock().await;
        self.load_through(&mut pages, store, position).await?;
        Ok(match pages.entries.remove(&position) {
            Some(entry) => AtPosition::Recorded(entry),
            None => AtPosition::Nothing,
        })
    }

    /// What the history holds at `position`, for `ctx.patched`, without
    /// handing anything out: a patch marker and its name; another call
    /// (or one at a later position: the run got past this point); or
    /// nothing at or after it (the run has not got here).
    pub(crate) async fn patch_at(
        &self,
        store: &dyn Store,
        position: i32,
    ) -> Result<PatchPoint, DurableError> {
        let mut pages = self.pages.lock().await;
        self.load_through(&mut pages, store, position).await?;
        Ok(match pages.entries.get(&position) {
            Some(entry) if entry.kind == StepKind::Patch => PatchPoint::Marker(entry.name.clone()),
            Some(_) => PatchPoint::Other,
            None if pages.entries.range(position..).next().is_some() || !pages.exhausted => {
                PatchPoint::Other
            }
            None => PatchPoint::Nothing,
        })
    }
}

/// What [`History::patch_at`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatchPoint {
    Marker(String),
    Other,
    Nothing,
}
