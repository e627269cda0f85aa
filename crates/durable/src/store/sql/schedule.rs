//! Schedules: declaration, pause and resume, and firing.
//!
//! Firing is one transaction per batch: the due schedules are read and
//! row-locked (`SKIP LOCKED` on PostgreSQL, so executors firing at once
//! split the schedules between them and a stalled one holds up only its
//! own), the planner decides each one's ticks from the row and the clock
//! of the same statement, the ticks' workflows are enqueued (a key that
//! exists is skipped) and the cursor is moved. A fire that is retried
//! after an unknown commit plans again from the cursor it finds: what
//! committed is not fired twice.

use sea_orm::{DatabaseTransaction, Value};

use super::SqlStore;
use super::decode::Row;
use super::dialect::dialects;
use crate::store::{Planner, ScheduleRow, StoreResult};

pub(super) struct ScheduleSql {
    /// The clock. No parameters.
    clock: &'static str,
    /// Insert, or replace a different definition (see `Store::put_schedule`).
    /// `$1` name, `$2` workflow, `$3` cron, `$4` zone, `$5` input, `$6`
    /// queue, `$7` catch-up, `$8` its limit, `$9` cursor.
    put: &'static str,
    /// One schedule. `$1` name.
    one: &'static str,
    /// Every schedule, by name.
    all: &'static str,
    /// `$1` name, `$2` paused (`'PAUSED'`/`'ACTIVE'`), `$3` cursor (kept when NULL on pause).
    set_status: &'static str,
    /// `$1` name.
    delete: &'static str,
    /// At most `$1` due active schedules, earliest first, locked, with the clock.
    due: &'static str,
    /// After a firing: `$1` name, `$2` cursor, `$3` last tick, `$4` ticks fired.
    advance: &'static str,
}

/// The columns of a schedule row.
macro_rules! schedule_columns {
    () => {
        "name, workflow, cron, time_zone, input, queue, catch_up, catch_up_limit, status, \
         next_tick_ms, last_tick_ms, fired"
    };
}

macro_rules! schedule_sql {
    (now = $now:literal, lock_row = $lock_row:literal, fence_row = $fence_row:literal, skip_locked = $skip_locked:literal, clock_now = $clock_now:literal, owner_lock = $owner_lock:literal, json_list = ($lo:literal, $lc:literal), per_name = ($pn_from:literal, $pn_match:literal), id_list = ($il:literal, $ic:literal), child_join = $cj:literal) => {
        ScheduleSql {
            clock: concat!("SELECT ", $now, " AS now_ms"),
            put: concat!(
                "INSERT INTO durable_schedule (", schedule_columns!(), ", created_ms, updated_ms) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'ACTIVE', $9, NULL, 0, clock.ms, clock.ms \
                 FROM (SELECT ", $now, " AS ms) clock WHERE TRUE \
                 ON CONFLICT (name) DO UPDATE SET \
                   next_tick_ms = excluded.next_tick_ms, workflow = excluded.workflow, \
                   cron = excluded.cron, time_zone = excluded.time_zone, input = excluded.input, \
                   queue = excluded.queue, catch_up = excluded.catch_up, \
                   catch_up_limit = excluded.catch_up_limit, updated_ms = excluded.updated_ms \
                 WHERE NOT (durable_schedule.workflow = excluded.workflow \
                   AND durable_schedule.cron = excluded.cron \
                   AND durable_schedule.time_zone = excluded.time_zone \
                   AND durable_schedule.input = excluded.input \
                   AND durable_schedule.queue = excluded.queue \
                   AND durable_schedule.catch_up = excluded.catch_up \
                   AND durable_schedule.catch_up_limit = excluded.catch_up_limit)"
            ),
            one: concat!("SELECT ", schedule_columns!(), " FROM durable_schedule WHERE name = $1"),
            all: concat!("SELECT ", schedule_columns!(), " FROM durable_schedule ORDER BY name"),
            set_status: concat!(
                "UPDATE durable_schedule SET status = $2, \
                   next_tick_ms = CASE WHEN $2 = 'ACTIVE' THEN $3 ELSE next_tick_ms END, \
                   updated_ms = ", $now, " WHERE name = $1"
            ),
            delete: "DELETE FROM durable_schedule WHERE name = $1",
            due: concat!(
                "SELECT ", schedule_columns!(), ", ", $now, " AS now_ms FROM durable_schedule \
                 WHERE status = 'ACTIVE' AND next_tick_ms IS NOT NULL AND next_tick_ms <= ", $now, " \
                 ORDER BY next_tick_ms LIMIT $1",
                $skip_locked
            ),
            advance: concat!(
                "UPDATE durable_schedule SET next_tick_ms = $2, \
                   last_tick_ms = COALESCE($3, last_tick_ms), fired = fired + $4, updated_ms = ", $now,
                " WHERE name = $1"
            ),
        }
    };
}

dialects! { static SQL: ScheduleSql = schedule_sql; }

impl Row<'_> {
    fn schedule(&self) -> Result<ScheduleRow, sea_orm::DbErr> {
        Ok(ScheduleRow {
            name: self.get("name")?,
            workflow: self.get("workflow")?,
            cron: self.get("cron")?,
            time_zone: self.get("time_zone")?,
            input: self.get("input")?,
            queue: self.get("queue")?,
            catch_up: self.get("catch_up")?,
            catch_up_limit: self.get("catch_up_limit")?,
            paused: self.get::<String>("status")? == "PAUSED",
            next_tick_ms: self.get("next_tick_ms")?,
            last_tick_ms: self.get("last_tick_ms")?,
            fired: self.get("fired")?,
        })
    }
}

impl SqlStore {
    fn schedule_sql(&self) -> &'static ScheduleSql {
        &SQL[self.dialect as usize]
    }

    pub(super) async fn clock(&self) -> StoreResult<i64> {
        let row = self
            .query_one_alone(self.schedule_sql().clock, vec![])
            .await?;
        let row = row.ok_or_else(|| crate::error::DurableError::custom("the clock read no row"))?;
        Ok(Row::new(&row, self.dialect).get("now_ms")?)
    }

    pub(super) async fn put_schedule_row(&self, s: &ScheduleRow) -> StoreResult<ScheduleRow> {
        let values: Vec<Value> = vec![
            s.name.clone().into(),
            s.workflow.clone().into(),
            s.cron.clone().into(),
            s.time_zone.clone().into(),
            s.input.clone().into(),
            s.queue.clone().into(),
            s.catch_up.clone().into(),
            s.catch_up_limit.into(),
            s.next_tick_ms.into(),
        ];
        self.execute_alone(self.schedule_sql().put, values).await?;
        self.schedule_row(&s.name).await?.ok_or_else(|| {
            crate::error::DurableError::custom(format!(
                "schedule '{}' vanished while it was declared",
                s.name
            ))
        })
    }

    pub(super) async fn schedule_row(&self, name: &str) -> StoreResult<Option<ScheduleRow>> {
        let row = self
            .query_one_alone(self.schedule_sql().one, vec![name.into()])
            .await?;
        Ok(row
            .as_ref()
            .map(|r| Row::new(r, self.dialect).schedule())
            .transpose()?)
    }

    pub(super) async fn schedule_rows(&self) -> StoreResult<Vec<ScheduleRow>> {
        let rows = self
            .query_all_alone(self.schedule_sql().all, vec![])
            .await?;
        Ok(rows
            .iter()
            .map(|r| Row::new(r, self.dialect).schedule())
            .collect::<Result<_, _>>()?)
    }

    pub(super) async fn set_schedule_status(
        &self,
        name: &str,
        paused: bool,
        next_tick_ms: Option<i64>,
    ) -> StoreResult<bool> {
        let status = if paused { "PAUSED" } else { "ACTIVE" };
        let values = vec![name.into(), status.into(), next_tick_ms.into()];
        Ok(self
            .execute_alone(self.schedule_sql().set_status, values)
            .await?
            > 0)
    }

    pub(super) async fn delete_schedule_row(&self, name: &str) -> StoreResult<bool> {
        Ok(self
            .execute_alone(self.schedule_sql().delete, vec![name.into()])
            .await?
            > 0)
    }

    pub(super) async fn fire_due(
        &self,
        planner: Planner<'_>,
        limit: u32,
    ) -> StoreResult<(Vec<String>, u64)> {
        super::retry_transient(|| async {
            let txn = self.begin_write().await?;
            self.bound_claim(&txn).await?;
            let rows = self
                .query_all(&txn, self.schedule_sql().due, vec![i64::from(limit).into()])
                .await?;
            let mut queues: Vec<String> = Vec::new();
            let mut fired = 0;
            for row in &rows {
                let r = Row::new(row, self.dialect);
                let schedule = r.schedule()?;
                let now: i64 = r.get("now_ms")?;
                fired += self.fire_one(&txn, planner, &schedule, now).await?;
                if !queues.contains(&schedule.queue) {
                    queues.push(schedule.queue.clone());
                }
            }
            self.bounded(txn.commit()).await?;
            Ok::<_, crate::error::DurableError>((queues, fired))
        })
        .await
    }

    /// Enqueue one schedule's planned ticks and move its cursor; the ticks
    /// enqueued (a key that exists is not enqueued again).
    async fn fire_one(
        &self,
        txn: &DatabaseTransaction,
        planner: Planner<'_>,
        schedule: &ScheduleRow,
        now: i64,
    ) -> StoreResult<u64> {
        let firing = planner(schedule, now);
        let mut fired = 0;
        for (key, input, _) in &firing.ticks {
            let work = schedule.tick_work(key, input);
            if self.enqueue_in(txn, &work, self.fresh_id()).await? {
                fired += 1;
            }
        }
        let last = firing.ticks.last().map(|t| t.2);
        let values = vec![
            schedule.name.as_str().into(),
            firing.next_tick_ms.into(),
            last.into(),
            i64::try_from(firing.ticks.len()).unwrap_or(i64::MAX).into(),
        ];
        self.execute(txn, self.schedule_sql().advance, values)
            .await?;
        Ok(fired)
    }
}
