//! Schedules and debounce in memory: `sql/schedule.rs` and
//! `sql/debounce.rs`, one operation under the lock each.

use uuid::Uuid;

use super::state::State;
use crate::status::Status;
use crate::store::{NewDebounce, Planner, ScheduleRow};

impl State {
    /// `put`: insert, or replace a different definition and its cursor.
    pub(super) fn put_schedule(&mut self, schedule: &ScheduleRow) -> ScheduleRow {
        let stored = self
            .schedules
            .entry(schedule.name.clone())
            .or_insert_with(|| ScheduleRow {
                paused: false,
                last_tick_ms: None,
                fired: 0,
                ..schedule.clone()
            });
        if !same_definition(stored, schedule) {
            *stored = ScheduleRow {
                paused: stored.paused,
                last_tick_ms: stored.last_tick_ms,
                fired: stored.fired,
                ..schedule.clone()
            };
        }
        stored.clone()
    }

    /// `set_status`.
    pub(super) fn set_schedule_paused(
        &mut self,
        name: &str,
        paused: bool,
        next: Option<i64>,
    ) -> bool {
        let Some(row) = self.schedules.get_mut(name) else {
            return false;
        };
        row.paused = paused;
        if !paused {
            row.next_tick_ms = next;
        }
        true
    }

    /// `due`, then each schedule fired as planned and its cursor moved.
    pub(super) fn fire_schedules(
        &mut self,
        planner: Planner<'_>,
        limit: u32,
        now: i64,
        mut fresh_id: impl FnMut() -> Uuid,
    ) -> (Vec<String>, u64) {
        let mut due: Vec<ScheduleRow> = self
            .schedules
            .values()
            .filter(|s| !s.paused && s.next_tick_ms.is_some_and(|t| t <= now))
            .cloned()
            .collect();
        due.sort_by_key(|s| s.next_tick_ms);
        due.truncate(limit as usize);
        let (mut queues, mut fired) = (Vec::new(), 0);
        for schedule in due {
            let firing = planner(&schedule, now);
            for (key, input, _) in &firing.ticks {
                if self
                    .enqueue(&schedule.tick_work(key, input), fresh_id(), now)
                    .is_some()
                {
                    fired += 1;
                }
            }
            let row = self
                .schedules
                .get_mut(&schedule.name)
                .expect("a due schedule");
            row.next_tick_ms = firing.next_tick_ms;
            if let Some(last) = firing.ticks.last() {
                row.last_tick_ms = Some(last.2);
            }
            row.fired += i64::try_from(firing.ticks.len()).unwrap_or(i64::MAX);
            if !queues.contains(&schedule.queue) {
                queues.push(schedule.queue.clone());
            }
        }
        (queues, fired)
    }

    /// `debounce_call`: gather into the key's unclaimed workflow, or open a
    /// new burst.
    pub(super) fn debounce(&mut self, d: &NewDebounce<'_>, fresh: Uuid, now: i64) -> (Uuid, bool) {
        if let Some(&(current, first_ms)) = self.debounces.get(d.key)
            && let Some(w) = self.workflows.get_mut(&current)
            && w.row.status == Status::Pending
            && w.row.owner_id.is_none()
            && w.row.started_ms.is_none()
        {
            w.row.input = Some(d.work.input.clone());
            w.row.available_ms = Some(d.start_ms(now, first_ms));
            return (current, false);
        }
        self.debounces.insert(d.key.to_string(), (fresh, now));
        let work_key = d.burst_key(fresh);
        self.enqueue(&d.burst_work(&work_key), fresh, now);
        (fresh, true)
    }
}

/// The same definition (what a declaration may change): the `WHERE` of
/// `put`'s update.
fn same_definition(a: &ScheduleRow, b: &ScheduleRow) -> bool {
    a.workflow == b.workflow
        && a.cron == b.cron
        && a.time_zone == b.time_zone
        && a.input == b.input
        && a.queue == b.queue
        && a.catch_up == b.catch_up
        && a.catch_up_limit == b.catch_up_limit
}
