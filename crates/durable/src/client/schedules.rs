//! Cron schedules on `Client`: declare, read, pause, resume, delete,
//! trigger, and fire what is due (what workers do on their own).

use chrono::{TimeZone, Utc};

use super::Client;
use crate::codec;
use crate::error::DurableError;
use crate::schedule::{CatchUp, Compiled, Schedule, ScheduleInfo, plan, tick_input, tick_key};
use crate::store::{Firing, ScheduleRow, Store};

/// Schedules fired per transaction by [`Client::fire_due_schedules`].
const FIRE_BATCH: u32 = 16;

impl Client {
    /// Declare a schedule, or change the one of that name: its ticks start
    /// from the first one after now. Declaring the same definition again
    /// (every process at start-up) changes nothing, so its cursor and its
    /// paused state stay; a changed definition keeps the paused state.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a bad name, cron expression, time
    /// zone or input; [`DurableError::UnknownQueue`];
    /// [`DurableError::UnknownWorkflow`] (with a registry). Nothing is
    /// written then.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// use durable::{CatchUp, Schedule};
    /// let info = client
    ///     .declare_schedule(
    ///         &Schedule::new("nightly-report", "0 0 3 * * *", "report")
    ///             .time_zone("Europe/Berlin")
    ///             .catch_up(CatchUp::Once),
    ///     )
    ///     .await?;
    /// println!("next report at {:?}", info.next_tick);
    /// # Ok(()) }
    /// ```
    pub async fn declare_schedule(
        &self,
        schedule: &Schedule,
    ) -> Result<ScheduleInfo, DurableError> {
        codec::check_name("schedule", &schedule.name)?;
        codec::check_name("workflow", &schedule.workflow)?;
        let compiled = Compiled::new(&schedule.cron, &schedule.time_zone)?;
        let input = schedule.input.clone().map_err(DurableError::InvalidInput)?;
        if let Some(registry) = &self.registry
            && !registry.contains(&schedule.workflow)
        {
            return Err(DurableError::UnknownWorkflow(schedule.workflow.clone()));
        }
        let queue = schedule.queue.as_deref().unwrap_or(crate::DEFAULT_QUEUE);
        if self.store.queue(queue).await?.is_none() {
            return Err(DurableError::UnknownQueue(queue.to_string()));
        }
        let (catch_up, catch_up_limit) = schedule.catch_up.to_parts();
        let now = self.store.clock_ms().await?;
        let row = ScheduleRow {
            name: schedule.name.clone(),
            workflow: schedule.workflow.clone(),
            cron: schedule.cron.clone(),
            time_zone: schedule.time_zone.clone(),
            input,
            queue: queue.to_string(),
            catch_up: catch_up.to_string(),
            catch_up_limit,
            paused: false,
            next_tick_ms: compiled.next_after(now),
            last_tick_ms: None,
            fired: 0,
        };
        info(self.store.put_schedule(&row).await?)
    }

    /// Every schedule, by name.
    ///
    /// # Errors
    /// [`DurableError::Db`] if the database fails.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// for s in client.schedules().await? {
    ///     println!("{} {} next {:?}", s.name, s.cron, s.next_tick);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn schedules(&self) -> Result<Vec<ScheduleInfo>, DurableError> {
        self.store
            .schedules()
            .await?
            .into_iter()
            .map(info)
            .collect()
    }

    /// One schedule.
    ///
    /// # Errors
    /// [`DurableError::ScheduleNotFound`] for an unknown name.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let nightly = client.schedule("nightly-report").await?;
    /// assert!(!nightly.paused);
    /// # Ok(()) }
    /// ```
    pub async fn schedule(&self, name: &str) -> Result<ScheduleInfo, DurableError> {
        info(self.schedule_row(name).await?)
    }

    /// Stop firing a schedule until [`Client::resume_schedule`]; pausing a
    /// paused one changes nothing. Workflows already started go on.
    ///
    /// # Errors
    /// [`DurableError::ScheduleNotFound`] for an unknown name.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// client.pause_schedule("nightly-report").await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause_schedule(&self, name: &str) -> Result<(), DurableError> {
        codec::check_name("schedule", name)?;
        if !self.store.set_schedule_paused(name, true, None).await? {
            return Err(DurableError::ScheduleNotFound(name.to_string()));
        }
        Ok(())
    }

    /// Fire a paused schedule again, from its first tick after now (ticks
    /// of the pause are not caught up); resuming an active one changes
    /// nothing.
    ///
    /// # Errors
    /// [`DurableError::ScheduleNotFound`] for an unknown name.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// client.resume_schedule("nightly-report").await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume_schedule(&self, name: &str) -> Result<(), DurableError> {
        let row = self.schedule_row(name).await?;
        if !row.paused {
            return Ok(());
        }
        let compiled = Compiled::new(&row.cron, &row.time_zone)?;
        let next = compiled.next_after(self.store.clock_ms().await?);
        if !self.store.set_schedule_paused(name, false, next).await? {
            return Err(DurableError::ScheduleNotFound(name.to_string()));
        }
        Ok(())
    }

    /// Delete a schedule. Workflows it started stay.
    ///
    /// # Errors
    /// [`DurableError::ScheduleNotFound`] for an unknown name.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// client.delete_schedule("nightly-report").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_schedule(&self, name: &str) -> Result<(), DurableError> {
        codec::check_name("schedule", name)?;
        if !self.store.delete_schedule(name).await? {
            return Err(DurableError::ScheduleNotFound(name.to_string()));
        }
        Ok(())
    }

    /// Start the schedule's workflow now, outside its ticks (paused or
    /// not): its [`crate::Tick`] has `manual` set and the time of the call.
    ///
    /// # Errors
    /// [`DurableError::ScheduleNotFound`] for an unknown name; what
    /// [`Client::enqueue`] returns.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let handle = client.trigger_schedule("nightly-report").await?;
    /// println!("started {}", handle.key());
    /// # Ok(()) }
    /// ```
    pub async fn trigger_schedule(
        &self,
        name: &str,
    ) -> Result<crate::WorkflowHandle, DurableError> {
        let row = self.schedule_row(name).await?;
        let now = self.store.clock_ms().await?;
        let input: serde_json::Value =
            serde_json::from_str(&tick_input(&row.name, now, true, &row.input)?)?;
        let key = format!(
            "schedule:{}@manual:{}",
            row.name,
            uuid::Uuid::new_v4().simple()
        );
        self.enqueue(
            &row.workflow,
            &input,
            crate::EnqueueOptions::new().key(key).queue(row.queue),
        )
        .await
    }

    /// Fire every schedule that is due now, as workers do about twice a
    /// second ([`crate::Worker::fire_schedules`]): for a process without a
    /// worker, or a test. The number of workflows started.
    ///
    /// # Errors
    /// [`DurableError::Db`] if the database fails; what fired before stays
    /// fired.
    ///
    /// ```no_run
    /// # async fn demo(client: durable::Client) -> Result<(), durable::DurableError> {
    /// let started = client.fire_due_schedules().await?;
    /// # Ok(()) }
    /// ```
    pub async fn fire_due_schedules(&self) -> Result<u64, DurableError> {
        fire_due(self.store.as_ref()).await
    }

    async fn schedule_row(&self, name: &str) -> Result<ScheduleRow, DurableError> {
        codec::check_name("schedule", name)?;
        self.store
            .schedule(name)
            .await?
            .ok_or_else(|| DurableError::ScheduleNotFound(name.to_string()))
    }
}

/// Fire what is due, batch after batch, and wake the queues that got work;
/// the workflows started.
pub(crate) async fn fire_due(store: &dyn Store) -> Result<u64, DurableError> {
    let mut started = 0;
    loop {
        let (queues, fired) = store.fire_schedules(&firing, FIRE_BATCH).await?;
        started += fired;
        for queue in &queues {
            if let Err(err) = store.notify(queue).await {
                tracing::debug!(error = %err, "wake-up notification failed");
            }
        }
        // A batch that fired nothing new (every schedule's ticks were
        // there already, or none was due) ends it; a full one may have
        // left more.
        if queues.is_empty() || fired == 0 {
            return Ok(started);
        }
    }
}

/// The planner of a due schedule: its ticks by its policy, each with its
/// key and input. A row that no longer compiles (written by other code)
/// fires nothing and stops: its cursor is cleared, and the error logged.
fn firing(row: &ScheduleRow, now: i64) -> Firing {
    let planned = Compiled::new(&row.cron, &row.time_zone).and_then(|compiled| {
        let policy = CatchUp::from_parts(&row.catch_up, row.catch_up_limit)?;
        Ok(plan(
            &compiled,
            policy,
            row.next_tick_ms.unwrap_or(now),
            now,
        ))
    });
    let planned = match planned {
        Ok(planned) => planned,
        Err(err) => {
            tracing::error!(schedule = %row.name, error = %err, "schedule cannot fire; it stops");
            return Firing {
                ticks: Vec::new(),
                next_tick_ms: None,
            };
        }
    };
    let mut ticks = Vec::with_capacity(planned.ticks.len());
    for at in planned.ticks {
        match tick_input(&row.name, at, false, &row.input) {
            Ok(input) => ticks.push((tick_key(&row.name, at), input, at)),
            Err(err) => {
                tracing::error!(schedule = %row.name, error = %err, "schedule input cannot be read; it stops");
                return Firing {
                    ticks: Vec::new(),
                    next_tick_ms: None,
                };
            }
        }
    }
    Firing {
        ticks,
        next_tick_ms: planned.next,
    }
}

fn info(row: ScheduleRow) -> Result<ScheduleInfo, DurableError> {
    let at = |ms: Option<i64>| ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    Ok(ScheduleInfo {
        catch_up: CatchUp::from_parts(&row.catch_up, row.catch_up_limit)?,
        input: serde_json::from_str(&row.input)?,
        next_tick: at(row.next_tick_ms),
        last_tick: at(row.last_tick_ms),
        fired: u64::try_from(row.fired).unwrap_or(0),
        paused: row.paused,
        name: row.name,
        workflow: row.workflow,
        cron: row.cron,
        time_zone: row.time_zone,
        queue: row.queue,
    })
}
