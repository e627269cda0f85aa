//! Events and streams: what a workflow publishes for readers anywhere.
//! Both are written inside the transaction of the durable call that
//! publishes them (so exactly once, fenced by the lease) and read by
//! polling, the database being the source of truth.

use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use super::SqlStore;
use super::decode::Row;
use super::dialect::dialects;
use crate::error::DurableError;
use crate::store::{StoreResult, StreamItem};

pub(super) struct FeedSql {
    /// Publish a value. `$1` workflow, `$2` key, `$3` position, `$4` value.
    insert_event: &'static str,
    /// The latest value of an event. `$1` workflow, `$2` key.
    latest_event: &'static str,
    /// Lock the writing workflow's row, so its stream writes take offsets
    /// one at a time. `$1` id.
    lock_writer: &'static str,
    /// The last item of a stream. `$1` workflow, `$2` key.
    last_item: &'static str,
    /// Append an item (or the close, with a NULL value). `$1` workflow,
    /// `$2` key, `$3` offset, `$4` value, `$5` position.
    insert_item: &'static str,
    /// Items from an offset. `$1` workflow, `$2` key, `$3` offset, `$4` limit.
    page: &'static str,
}

macro_rules! feed_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        FeedSql {
            insert_event: concat!(
                "INSERT INTO durable_event (workflow_id, event_key, position, value, created_ms) \
                 VALUES ($1, $2, $3, $4, ", $now, ") ON CONFLICT DO NOTHING"
            ),
            latest_event: "SELECT value FROM durable_event WHERE workflow_id = $1 AND event_key = $2 \
                 ORDER BY position DESC LIMIT 1",
            lock_writer: concat!("SELECT id FROM durable_workflow WHERE id = $1", $lock_row),
            last_item: "SELECT item_offset, value FROM durable_stream WHERE workflow_id = $1 AND stream_key = $2 \
                 ORDER BY item_offset DESC LIMIT 1",
            insert_item: concat!(
                "INSERT INTO durable_stream (workflow_id, stream_key, item_offset, value, position, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, ", $now, ")"
            ),
            page: "SELECT item_offset, value FROM durable_stream WHERE workflow_id = $1 AND stream_key = $2 \
                 AND item_offset >= $3 ORDER BY item_offset LIMIT $4",
        }
    };
}

dialects! { static SQL: FeedSql = feed_sql; }

impl SqlStore {
    fn feed_sql(&self) -> &'static FeedSql {
        &SQL[self.dialect as usize]
    }

    pub(super) async fn publish_event(
        &self,
        txn: &DatabaseTransaction,
        workflow: Uuid,
        position: i32,
        key: &str,
        value: &str,
    ) -> StoreResult<()> {
        let values = vec![self.id(workflow), key.into(), position.into(), value.into()];
        self.execute(txn, self.feed_sql().insert_event, values)
            .await?;
        Ok(())
    }

    pub(super) async fn latest_event(
        &self,
        workflow: Uuid,
        key: &str,
    ) -> StoreResult<Option<String>> {
        let values = vec![self.id(workflow), key.into()];
        let row = self
            .query_one_once(self.feed_sql().latest_event, values)
            .await?;
        Ok(row
            .map(|r| Row::new(&r, self.dialect).get::<String>("value"))
            .transpose()?)
    }

    /// Append to a stream at the next offset; a closed stream takes nothing.
    pub(super) async fn append_item(
        &self,
        txn: &DatabaseTransaction,
        workflow: Uuid,
        position: i32,
        key: &str,
        value: Option<&str>,
    ) -> StoreResult<()> {
        let s = self.feed_sql();
        self.query_one(txn, s.lock_writer, vec![self.id(workflow)])
            .await?;
        let last = self
            .query_one(txn, s.last_item, vec![self.id(workflow), key.into()])
            .await?;
        let next = match last {
            None => 0,
            Some(row) => {
                let r = Row::new(&row, self.dialect);
                if r.get::<Option<String>>("value")?.is_none() {
                    return Err(DurableError::InvalidInput(format!(
                        "stream '{key}' of workflow {workflow} is closed"
                    )));
                }
                r.get::<i64>("item_offset")? + 1
            }
        };
        let values = vec![
            self.id(workflow),
            key.into(),
            next.into(),
            value.map(str::to_string).into(),
            position.into(),
        ];
        self.execute(txn, s.insert_item, values).await?;
        Ok(())
    }

    pub(super) async fn stream_items(
        &self,
        workflow: Uuid,
        key: &str,
        from_offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<StreamItem>> {
        let values = vec![
            self.id(workflow),
            key.into(),
            from_offset.into(),
            limit.into(),
        ];
        let rows = self.query_all_once(self.feed_sql().page, values).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let r = Row::new(row, self.dialect);
                Ok(StreamItem {
                    offset: r.get("item_offset")?,
                    value: r.get("value")?,
                })
            })
            .collect::<Result<_, sea_orm::DbErr>>()?)
    }
}
