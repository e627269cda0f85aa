//! Messages: `send` stores one for a workflow and wakes it if it waits for
//! the topic (see `wakeup.rs` for why nothing is lost between the two);
//! `receive` takes the oldest one for a `recv` call, or records the call
//! as waiting, in one fenced transaction.

use sea_orm::DatabaseTransaction;

use super::SqlStore;
use super::decode::Row;
use super::dialect::dialects;
use super::wakeup::{Arrival, Woken, finished_recipient};
use crate::error::DurableError;
use crate::status::Status;
use crate::store::{Checkpoint, NewMessage, Received, StoreResult};

pub(super) struct MessageSql {
    /// Store a message unless its key was used. `$1` workflow, `$2` topic,
    /// `$3` key or NULL, `$4` payload. Returns its sequence number if stored.
    insert: &'static str,
    /// The oldest message of a topic not yet taken, row-locked. `$1`
    /// workflow, `$2` topic.
    oldest: &'static str,
    /// Take a message for the `recv` call at a position. `$1` seq, `$2` position.
    consume: &'static str,
    /// Whether a key was used for a workflow. `$1` workflow, `$2` key.
    key_used: &'static str,
}

macro_rules! message_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        MessageSql {
            insert: concat!(
                "INSERT INTO durable_message (workflow_id, topic, message_key, payload, created_ms) \
                 VALUES ($1, $2, $3, $4, ", $now, ") \
                 ON CONFLICT (workflow_id, message_key) WHERE message_key IS NOT NULL DO NOTHING RETURNING seq"
            ),
            oldest: concat!(
                "SELECT seq, payload FROM durable_message WHERE workflow_id = $1 AND topic = $2 \
                 AND consumed_position IS NULL ORDER BY seq LIMIT 1", $lock_row
            ),
            consume: concat!(
                "UPDATE durable_message SET consumed_position = $2, consumed_ms = ", $now,
                " WHERE seq = $1 AND consumed_position IS NULL"
            ),
            key_used: "SELECT 1 AS found FROM durable_message WHERE workflow_id = $1 AND message_key = $2",
        }
    };
}

dialects! { static SQL: MessageSql = message_sql; }

impl SqlStore {
    fn message_sql(&self) -> &'static MessageSql {
        &SQL[self.dialect as usize]
    }

    /// `Client::send`: one transaction, retried whole; the recipient's
    /// workers are told after the commit if it woke.
    pub(super) async fn send_message(&self, message: &NewMessage<'_>) -> StoreResult<bool> {
        let (stored, woken) = super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            match self.deliver(&txn, message).await {
                Ok(result) => {
                    self.bounded(txn.commit()).await?;
                    Ok(result)
                }
                Err(err) => {
                    self.bounded(txn.rollback()).await?;
                    Err(err)
                }
            }
        })
        .await?;
        self.announce(woken).await;
        Ok(stored)
    }

    /// Store `message` inside `txn` and wake its recipient if it waits for
    /// the topic. Returns whether it was stored, and the recipient's run
    /// unit if it woke.
    pub(super) async fn deliver(
        &self,
        txn: &DatabaseTransaction,
        message: &NewMessage<'_>,
    ) -> StoreResult<(bool, Option<Woken>)> {
        let locked = self
            .lock_run_unit(txn, message.to)
            .await?
            .ok_or(DurableError::NotFound(message.to))?;
        if locked.status.is_terminal() {
            // A retry of a keyed send that got through before is no error.
            if let Some(key) = message.key {
                let values = vec![self.id(message.to), key.into()];
                if self
                    .query_one(txn, self.message_sql().key_used, values)
                    .await?
                    .is_some()
                {
                    return Ok((false, None));
                }
            }
            return Err(finished_recipient(message.to, locked.status));
        }
        let values = vec![
            self.id(message.to),
            message.topic.into(),
            message.key.map(str::to_string).into(),
            message.payload.into(),
        ];
        if self
            .query_one(txn, self.message_sql().insert, values)
            .await?
            .is_none()
        {
            return Ok((false, None));
        }
        let woken = self
            .wake_if_waiting(txn, message.to, &locked, Arrival::Message(message.topic))
            .await?;
        Ok((true, woken))
    }

    /// The `recv` call: under the lock of our run unit (which a sender
    /// takes too), take the oldest message or record the wait.
    pub(super) async fn receive_message(
        &self,
        waiting: &Checkpoint<'_>,
        topic: &str,
    ) -> StoreResult<Received> {
        let s = self.message_sql();
        super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            let lease = &waiting.lease;
            if !self.lock_leased(&txn, lease.holder, lease).await? {
                self.bounded(txn.rollback()).await?;
                return Ok(Received::Refused);
            }
            let values = vec![self.id(waiting.workflow), topic.into()];
            let (checkpoint, received) = match self.query_one(&txn, s.oldest, values).await? {
                Some(row) => {
                    let r = Row::new(&row, self.dialect);
                    let (seq, payload): (i64, String) = (r.get("seq")?, r.get("payload")?);
                    let values = vec![seq.into(), waiting.position.into()];
                    self.execute(&txn, s.consume, values).await?;
                    let mut done = waiting.clone();
                    done.status = Status::Completed;
                    done.output = Some(crate::ctx::woken_output_text(&payload));
                    (done, Received::Message(payload))
                }
                None => (waiting.clone(), Received::Waiting),
            };
            if self.commit_entry(&txn, &checkpoint).await?.is_none() {
                self.bounded(txn.rollback()).await?;
                return Ok(Received::Refused);
            }
            self.bounded(txn.commit()).await?;
            Ok::<_, DurableError>(received)
        })
        .await
    }
}
