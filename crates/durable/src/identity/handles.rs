//! The live handles (`Ctx`) of each workflow in this process that may
//! write. Two handles of one workflow share its lease (every executor of
//! the process that owns it by the same id, the handles of one executor
//! alike), so one may write at a position the other's history does not
//! show, or give the workflow up while the other runs on. A root's call
//! starts without the check read only if its handle has been the only one
//! of its workflow since it was made (see `call::window`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use uuid::Uuid;

/// Per workflow: handles alive, and handles ever made while any lived.
#[derive(Debug, Default, Clone, Copy)]
struct Count {
    live: u32,
    made: u64,
}

static HANDLES: Mutex<Option<HashMap<Uuid, Count>>> = Mutex::new(None);

fn counts() -> MutexGuard<'static, Option<HashMap<Uuid, Count>>> {
    HANDLES.lock().unwrap_or_else(|e| e.into_inner())
}

/// One live handle of a workflow; counted until dropped.
#[derive(Debug)]
pub(crate) struct Handle {
    workflow: Uuid,
    /// The count of handles made when this one was, or `None` if another
    /// was alive then.
    made_alone: Option<u64>,
}

impl Handle {
    /// Count a new handle of `workflow`.
    pub(crate) fn new(workflow: Uuid) -> Self {
        let mut counts = counts();
        let count = counts
            .get_or_insert_with(HashMap::new)
            .entry(workflow)
            .or_default();
        let alone = count.live == 0;
        count.live += 1;
        count.made += 1;
        Self {
            workflow,
            made_alone: alone.then_some(count.made),
        }
    }

    /// Whether this handle has been its workflow's only one since it was
    /// made: no other handle was alive then, and none was made since.
    pub(crate) fn sole(&self) -> bool {
        let Some(made) = self.made_alone else {
            return false;
        };
        counts()
            .as_ref()
            .and_then(|counts| counts.get(&self.workflow))
            .is_some_and(|count| count.made == made)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut counts = counts();
        let Some(map) = counts.as_mut() else {
            return;
        };
        if let Some(count) = map.get_mut(&self.workflow) {
            count.live -= 1;
            if count.live == 0 {
                map.remove(&self.workflow);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_sole_until_another_is_made_even_after_that_one_is_gone() {
        let w = Uuid::new_v4();
        let first = Handle::new(w);
        assert!(first.sole());
        let second = Handle::new(w);
        assert!(!first.sole(), "two alive");
        assert!(!second.sole(), "made beside another");
        drop(second);
        assert!(!first.sole(), "another was made since");
        drop(first);
        let again = Handle::new(w);
        assert!(again.sole(), "the first of a new set");
        assert!(Handle::new(Uuid::new_v4()).sole(), "another workflow's");
    }
}
