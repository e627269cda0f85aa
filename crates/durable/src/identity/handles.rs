//! The live handles (`Ctx`) of each workflow this executor writes: two
//! handles of one workflow in one process share its lease, so one may
//! write at a position the other's history does not show. A root's call
//! starts without the check read only while its handle is the only one
//! (see `call::window`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::ExecutorCore;

/// Counts of live handles by workflow.
#[derive(Debug, Default)]
pub(super) struct Handles(Mutex<HashMap<Uuid, u32>>);

impl Handles {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, u32>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One live handle of a workflow; counted until dropped.
#[derive(Debug)]
pub(crate) struct Handle {
    executor: Arc<ExecutorCore>,
    workflow: Uuid,
}

impl ExecutorCore {
    /// Count a new handle of `workflow` until the guard is dropped.
    pub(crate) fn handle(self: &Arc<Self>, workflow: Uuid) -> Handle {
        *self.handles.counts().entry(workflow).or_insert(0) += 1;
        Handle {
            executor: self.clone(),
            workflow,
        }
    }

    /// Whether `workflow` has exactly one live handle here.
    pub(crate) fn sole_handle(&self, workflow: Uuid) -> bool {
        self.handles.counts().get(&workflow) == Some(&1)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut counts = self.executor.handles.counts();
        if let Some(n) = counts.get_mut(&self.workflow) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.workflow);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[test]
    fn counts_live_handles() {
        let store: Arc<dyn crate::store::Store> = Arc::new(MemoryStore::default());
        let core = Arc::new(ExecutorCore::new(
            store,
            Uuid::nil(),
            std::time::Duration::from_secs(30),
        ));
        let w = Uuid::from_u128(7);
        assert!(!core.sole_handle(w));
        let first = core.handle(w);
        assert!(core.sole_handle(w));
        let second = core.handle(w);
        assert!(!core.sole_handle(w));
        drop(first);
        assert!(core.sole_handle(w));
        drop(second);
        assert!(!core.sole_handle(w));
        assert!(core.handles.counts().is_empty());
    }
}
