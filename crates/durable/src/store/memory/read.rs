//! The read model: a workflow's summary and a whole tree with its
//! journal (`sql/read.rs`), assembled by the same code as on SQL
//! ([`WorkflowTree::assemble`]) from the same rows.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use uuid::Uuid;

use super::state::State;
use crate::query::{Direction, SortBy, WorkflowQuery};
use crate::read::{QueueBucket, QueueInfo, WorkflowSummary, WorkflowTree};
use crate::store::WorkflowRow;

/// A row's key under a sort, as the SQL store orders it: text (name or
/// status), then time, then id.
fn sort_key(row: &WorkflowRow, sort: SortBy) -> (Option<&str>, Option<i64>, Uuid) {
    match sort {
        SortBy::Created => (None, Some(row.created_ms), row.id),
        SortBy::Started => (None, row.started_ms, row.id),
        SortBy::Finished => (None, row.completed_ms, row.id),
        SortBy::Name => (Some(row.name.as_str()), Some(row.created_ms), row.id),
        SortBy::Status => (Some(row.status.as_str()), Some(row.created_ms), row.id),
    }
}

/// Whether `row` passes every filter of `query` (cursor and order apart).
fn matches(row: &WorkflowRow, q: &WorkflowQuery) -> bool {
    (q.statuses.is_empty() || q.statuses.contains(&row.status))
        && q.name.as_ref().is_none_or(|n| *n == row.name)
        && q.key_prefix
            .as_ref()
            .is_none_or(|p| row.key.starts_with(p.as_str()))
        && q.queue
            .as_ref()
            .is_none_or(|n| row.queue.as_ref() == Some(n))
        && q.parent.is_none_or(|p| row.parent_id == Some(p))
        && (!q.roots_only || row.parent_id.is_none())
        && q.created.contains(Some(row.created_ms))
        && q.finished.contains(row.completed_ms)
        && q.app_version
            .as_ref()
            .is_none_or(|v| row.app_version.as_ref() == Some(v))
}

impl State {
    /// `queues`: the declared queues and those with unfinished work.
    pub(super) fn queues(&self, now_ms: i64) -> Vec<QueueInfo> {
        let mut queues: BTreeMap<&str, QueueInfo> = self
            .queues
            .iter()
            .map(|(name, limits)| (name.as_str(), QueueInfo::new(name.clone(), Some(limits))))
            .collect();
        for w in self.workflows.values() {
            let (Some(queue), Some(bucket)) = (
                w.row.queue.as_deref(),
                QueueBucket::of(w.row.status, w.row.available_ms, now_ms),
            ) else {
                continue;
            };
            queues
                .entry(queue)
                .or_insert_with(|| QueueInfo::new(queue.to_string(), None))
                .add(bucket, 1);
        }
        queues.into_values().collect()
    }

    pub(super) fn summary(&self, id: Uuid) -> Option<WorkflowSummary> {
        self.workflows
            .get(&id)
            .map(|w| WorkflowSummary::from_row(&w.row))
    }

    /// Every workflow of the subtree of `id` and all their entries.
    pub(super) fn tree(&self, id: Uuid) -> Option<WorkflowTree> {
        let members = self.subtree(id);
        if members.is_empty() {
            return None;
        }
        let workflows: Vec<_> = members
            .iter()
            .map(|m| self.workflows[m].row.clone())
            .collect();
        let entries = members
            .iter()
            .flat_map(|m| {
                self.steps_of(*m)
                    .map(move |step| (*m, self.entry_of(step, true)))
            })
            .collect();
        let archived = self
            .history
            .iter()
            .filter(|((w, _, _), _)| members.contains(w))
            .map(|((w, _, round), (step, at_ms))| (*w, *round, *at_ms, self.entry_of(step, false)))
            .collect();
        WorkflowTree::assemble(id, &workflows, entries, archived)
    }
}

impl State {
    /// As the SQL store's `list_workflows`.
    pub(super) fn list(&self, q: &WorkflowQuery, fetch: u32) -> Vec<WorkflowRow> {
        let after = q.after.as_ref().map(|c| c.fields());
        let after = after.map(|c| (c.text.as_deref(), Some(c.time_ms), c.id));
        let mut rows: Vec<&WorkflowRow> = self
            .workflows
            .values()
            .map(|w| &w.row)
            .filter(|row| matches(row, q))
            .filter(|row| match q.sort {
                SortBy::Started => row.started_ms.is_some(),
                SortBy::Finished => row.completed_ms.is_some(),
                _ => true,
            })
            .filter(|row| {
                after.is_none_or(|after| {
                    let order = sort_key(row, q.sort).cmp(&after);
                    match q.direction {
                        Direction::Ascending => order == Ordering::Greater,
                        Direction::Descending => order == Ordering::Less,
                    }
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            let order = sort_key(a, q.sort).cmp(&sort_key(b, q.sort));
            match q.direction {
                Direction::Ascending => order,
                Direction::Descending => order.reverse(),
            }
        });
        rows.into_iter()
            .take(fetch as usize)
            .map(|row| {
                let mut row = row.clone();
                if !q.payloads {
                    row.input = None;
                    row.output = None;
                }
                row
            })
            .collect()
    }

    /// As the SQL store's `count_workflows`.
    pub(super) fn count(&self, q: &WorkflowQuery) -> u64 {
        self.workflows
            .values()
            .filter(|w| matches(&w.row, q))
            .count() as u64
    }
}
