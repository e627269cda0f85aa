//! What one workflow brings another: messages (`send`, `receive`),
//! events and streams, and the wake-ups of suspended run units
//! (`sql/messages.rs`, `sql/feeds.rs`, `sql/wakeup.rs`, the waker of
//! `sql/manage.rs`).
//!
//! The SQL store keeps wake-ups from being lost by having both sides lock
//! the run unit's row first. Here every operation runs under the one lock
//! of the whole store, so the same rule holds trivially: a release sees
//! what was brought before it, and whatever is brought after it sees the
//! release.

use uuid::Uuid;

use super::state::{Message, State};
use crate::error::DurableError;
use crate::status::{Status, StepKind};
use crate::store::{Checkpoint, NewMessage, Received, StoreResult, StreamItem, Suspension};

/// The error for a message to a workflow that has finished (as `sql/wakeup.rs`).
fn finished_recipient(workflow: Uuid, status: Status) -> DurableError {
    DurableError::InvalidTransition {
        task: workflow,
        status: status.as_str().to_string(),
        action: "send a message to",
    }
}

impl State {
    /// Whether `deliver` would store `message` (`false`: its key was used
    /// before); the errors it would return. Nothing is changed.
    pub(super) fn can_deliver(&self, message: &NewMessage<'_>) -> StoreResult<bool> {
        let (_, status) = self
            .run_unit(message.to)
            .ok_or(DurableError::NotFound(message.to))?;
        let key_used = message
            .key
            .is_some_and(|key| self.message_keys.contains(&(message.to, key.to_string())));
        if status.is_terminal() {
            // A retry of a keyed send that got through before is no error.
            return if key_used {
                Ok(false)
            } else {
                Err(finished_recipient(message.to, status))
            };
        }
        Ok(!key_used)
    }

    /// `deliver`: store the message and wake its recipient's run unit if a
    /// `recv` of the topic waits; whether it was stored.
    pub(super) fn deliver(&mut self, message: &NewMessage<'_>, _now: i64) -> StoreResult<bool> {
        if !self.can_deliver(message)? {
            return Ok(false);
        }
        let (holder, _) = self.run_unit(message.to).expect("checked above");
        self.last_seq += 1;
        let seq = self.last_seq;
        if let Some(key) = message.key {
            self.message_keys.insert((message.to, key.to_string()));
        }
        self.untaken
            .insert((message.to, message.topic.to_string(), seq));
        self.messages.insert(
            seq,
            Message {
                workflow: message.to,
                topic: message.topic.to_string(),
                payload: message.payload.to_string(),
            },
        );
        if self.recv_waits(message.to, message.topic) {
            self.wake_run_unit(holder);
        }
        Ok(true)
    }

    /// The oldest untaken message of `topic` for `workflow`: its seq.
    fn oldest(&self, workflow: Uuid, topic: &str) -> Option<i64> {
        self.untaken
            .range(
                (workflow, topic.to_string(), i64::MIN)..=(workflow, topic.to_string(), i64::MAX),
            )
            .next()
            .map(|(_, _, seq)| *seq)
    }

    /// `has_message` (`message_waiting`).
    pub(super) fn has_message(&self, workflow: Uuid, topic: &str) -> bool {
        self.oldest(workflow, topic).is_some()
    }

    /// `receive_message`: under the lease of the run unit, take the oldest
    /// message and complete the entry with it, or record the wait; the
    /// message is taken only if the entry is written.
    pub(super) fn receive(&mut self, waiting: &Checkpoint<'_>, topic: &str, now: i64) -> Received {
        if !self.fenced(&waiting.lease) {
            return Received::Refused;
        }
        let oldest = self.oldest(waiting.workflow, topic);
        let mut checkpoint = waiting.clone();
        let mut received = Received::Waiting;
        if let Some(seq) = oldest {
            let payload = self.messages[&seq].payload.clone();
            checkpoint.status = Status::Completed;
            checkpoint.output = Some(crate::ctx::woken_output_text(&payload));
            received = Received::Message(payload);
        }
        if !self.commit(&checkpoint, now) {
            return Received::Refused;
        }
        if let Some(seq) = oldest {
            // Taken by this call: it leaves the untaken set for good.
            let m = &self.messages[&seq];
            self.untaken.remove(&(m.workflow, m.topic.clone(), seq));
        }
        received
    }

    /// `insert_event`: a value under `key` by the call at `position`
    /// (once: `ON CONFLICT DO NOTHING`).
    pub(super) fn publish_event(&mut self, workflow: Uuid, position: i32, key: &str, value: &str) {
        self.events
            .entry((workflow, key.to_string(), position))
            .or_insert_with(|| value.to_string());
    }

    /// `latest_event`: the value of the highest call position.
    pub(super) fn event(&self, workflow: Uuid, key: &str) -> Option<String> {
        self.events
            .range((workflow, key.to_string(), i32::MIN)..=(workflow, key.to_string(), i32::MAX))
            .next_back()
            .map(|(_, value)| value.clone())
    }

    /// The offset the next item of a stream takes; a closed stream takes
    /// none (the error of `append_item`).
    pub(super) fn next_offset(&self, workflow: Uuid, key: &str) -> StoreResult<i64> {
        let last = self
            .streams
            .range((workflow, key.to_string(), i64::MIN)..=(workflow, key.to_string(), i64::MAX))
            .next_back();
        match last {
            None => Ok(0),
            Some((_, None)) => Err(DurableError::InvalidInput(format!(
                "stream '{key}' of workflow {workflow} is closed"
            ))),
            Some(((_, _, offset), Some(_))) => Ok(offset + 1),
        }
    }

    /// `page` of a stream: items from `from_offset` on.
    pub(super) fn stream_page(
        &self,
        workflow: Uuid,
        key: &str,
        from_offset: i64,
        limit: i64,
    ) -> Vec<StreamItem> {
        self.streams
            .range((workflow, key.to_string(), from_offset)..=(workflow, key.to_string(), i64::MAX))
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|((_, _, offset), value)| StreamItem {
                offset: *offset,
                value: value.clone(),
            })
            .collect()
    }

    /// `wake_parent`: a spawned child of `parent` ended; wake the parent's
    /// run unit if it waits to join it (or selects).
    pub(super) fn wake_parent(&mut self, parent: Uuid, child: Uuid) {
        if let Some((holder, _)) = self.run_unit(parent)
            && self.join_waits(parent, child)
        {
            self.wake_run_unit(holder);
        }
    }

    /// `is_ready`: what a released workflow waits for is there already.
    pub(super) fn is_ready(&self, suspension: &Suspension) -> bool {
        let Some(step) = self.steps.get(&(suspension.workflow, suspension.position)) else {
            return false;
        };
        if step.entry.status != Status::Pending {
            return true;
        }
        match step.entry.kind {
            StepKind::Recv => self.has_message(suspension.workflow, &step.entry.name),
            StepKind::Join => step
                .child_id
                .is_some_and(|child| self.any_finished(&[child])),
            StepKind::Select => {
                let candidates: Vec<Uuid> = step
                    .entry
                    .output
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or_default();
                self.any_finished(&candidates)
            }
            _ => false,
        }
    }

    fn any_finished(&self, ids: &[Uuid]) -> bool {
        ids.iter().any(|id| {
            self.workflows
                .get(id)
                .is_some_and(|w| w.row.status.is_terminal())
        })
    }

    /// `wake_call` (the test-only waker): complete the waiting calls named
    /// `name` of `workflow` and wake its run unit.
    pub(super) fn wake(
        &mut self,
        workflow: Uuid,
        name: &str,
        output: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let (holder, status) = self
            .run_unit(workflow)
            .ok_or(DurableError::NotFound(workflow))?;
        if status.is_terminal() {
            return Ok(false);
        }
        let mut completed = 0;
        for (_, step) in self
            .steps
            .range_mut((workflow, i32::MIN)..=(workflow, i32::MAX))
        {
            let e = &mut step.entry;
            if e.name == name && e.kind == StepKind::Wait && e.status == Status::Pending {
                e.status = Status::Completed;
                e.output = Some(output.to_string());
                e.completed_ms = Some(now);
                completed += 1;
            }
        }
        if completed == 0 {
            return Ok(false);
        }
        self.wake_run_unit(holder);
        Ok(true)
    }
}
