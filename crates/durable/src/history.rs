//! The recorded history of a workflow tree, loaded once when the root starts,
//! so replayed steps cost no round trip.
//!
//! Records are grouped by parent workflow and keyed by step key (`name#n`);
//! a second index by call position lets a fresh call notice that the code
//! asks for something other than what was recorded at that position.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use uuid::Uuid;

use crate::store::TaskRow;

/// Records of one tree, shared by the root `Ctx` and its children.
#[derive(Default)]
pub(crate) struct History {
    by_parent: Mutex<HashMap<Uuid, Recorded>>,
}

#[derive(Default)]
struct Recorded {
    by_key: HashMap<String, TaskRow>,
    by_position: BTreeMap<i32, String>,
}

impl History {
    pub(crate) fn from_rows(rows: Vec<TaskRow>) -> Self {
        let history = Self::default();
        {
            let mut map = history.lock();
            for row in rows {
                if let Some(parent) = row.parent_id {
                    let recorded = map.entry(parent).or_default();
                    if let Some(position) = row.sequence {
                        recorded.by_position.insert(position, row.key.clone());
                    }
                    recorded.by_key.insert(row.key.clone(), row);
                }
            }
        }
        history
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Recorded>> {
        self.by_parent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record of `key` under `parent`, if one was loaded.
    pub(crate) fn get(&self, parent: Uuid, key: &str) -> Option<TaskRow> {
        self.lock().get(&parent)?.by_key.get(key).cloned()
    }

    /// The key recorded at `position` under `parent`, if it differs from `key`.
    pub(crate) fn other_at(&self, parent: Uuid, position: i32, key: &str) -> Option<String> {
        let map = self.lock();
        let recorded = map.get(&parent)?.by_position.get(&position)?;
        (recorded != key).then(|| recorded.clone())
    }
}
