//! The read model: a workflow's summary and a whole tree with its
//! journal (`sql/read.rs`), assembled by the same code as on SQL
//! ([`WorkflowTree::assemble`]) from the same rows.

use uuid::Uuid;

use super::state::State;
use crate::read::{WorkflowSummary, WorkflowTree};

impl State {
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
        WorkflowTree::assemble(id, &workflows, entries)
    }
}
