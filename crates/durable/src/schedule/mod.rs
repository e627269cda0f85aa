//! Cron schedules: a registered workflow started at every tick of a cron
//! expression, exactly once per tick across any number of workers.
//!
//! A [`Schedule`] is declared with [`crate::Client::declare_schedule`]
//! (from code at start-up, or `durable schedules` on the command line)
//! and lives in the database, so every worker sees it. Workers fire it
//! ([`crate::Worker::fire_schedules`], on by default): each tick enqueues
//! the workflow under a key that holds the tick time
//! (`schedule:{name}@{tick}`), in the same transaction that moves the
//! schedule's cursor past it. Two workers never fire one tick: the
//! schedule's row is locked while it fires (`SKIP LOCKED` on PostgreSQL),
//! and the key is unique besides. A worker killed while firing leaves
//! nothing half done (the transaction rolls back and the next worker fires
//! the tick).
//!
//! The workflow receives a [`Tick`]: the schedule's name, the tick time
//! and the schedule's input.
//!
//! Ticks that nobody fired in time (every worker was down) are handled by
//! the [`CatchUp`] policy. A tick fired within [`ON_TIME`] of its time is
//! on time and always fires.

mod plan;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DurableError;

pub(crate) use plan::{Compiled, plan};

/// How late a tick may be fired and still count as on time (not missed):
/// workers look for due ticks about twice a second, so this leaves room
/// for a restart or a slow database.
pub const ON_TIME: Duration = Duration::from_secs(10);

/// What happens to ticks that were missed (more than [`ON_TIME`] late
/// when a worker came to fire them: no worker was running, or the schedule
/// was just declared with a past cursor).
///
/// Ticks that pass while a schedule is paused are not missed: resuming
/// starts from the next tick after the resume.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Drop missed ticks (the default): the schedule carries on with the
    /// ticks to come.
    Skip,
    /// Fire the latest missed tick only.
    Once,
    /// Fire every missed tick, oldest first (in batches of 100, so a long
    /// outage of a fast schedule is caught up in steps).
    All,
    /// Fire at most this many of the latest missed ticks.
    Bounded(u32),
}

impl CatchUp {
    /// Its name in the database and on the command line, and its bound.
    pub(crate) fn to_parts(self) -> (&'static str, i32) {
        match self {
            CatchUp::Skip => ("SKIP", 0),
            CatchUp::Once => ("ONCE", 1),
            CatchUp::All => ("ALL", 0),
            CatchUp::Bounded(n) => ("BOUNDED", i32::try_from(n).unwrap_or(i32::MAX)),
        }
    }

    pub(crate) fn from_parts(name: &str, limit: i32) -> Result<Self, DurableError> {
        Ok(match name {
            "SKIP" => CatchUp::Skip,
            "ONCE" => CatchUp::Once,
            "ALL" => CatchUp::All,
            "BOUNDED" => CatchUp::Bounded(u32::try_from(limit).unwrap_or(0)),
            other => {
                return Err(DurableError::custom(format!(
                    "schedule has an unknown catch-up policy {other:?}"
                )));
            }
        })
    }
}

impl FromStr for CatchUp {
    type Err = DurableError;

    /// `skip`, `once`, `all` or `bounded:N`.
    ///
    /// ```
    /// use durable::CatchUp;
    /// assert_eq!("bounded:3".parse::<CatchUp>().unwrap(), CatchUp::Bounded(3));
    /// assert!("sometimes".parse::<CatchUp>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            DurableError::InvalidInput(format!(
                "catch-up policy {text:?}: expected skip, once, all or bounded:N"
            ))
        };
        match text {
            "skip" => Ok(CatchUp::Skip),
            "once" => Ok(CatchUp::Once),
            "all" => Ok(CatchUp::All),
            _ => {
                let n = text.strip_prefix("bounded:").ok_or_else(bad)?;
                Ok(CatchUp::Bounded(n.parse().map_err(|_| bad())?))
            }
        }
    }
}

impl std::fmt::Display for CatchUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatchUp::Skip => f.write_str("skip"),
            CatchUp::Once => f.write_str("once"),
            CatchUp::All => f.write_str("all"),
            CatchUp::Bounded(n) => write!(f, "bounded:{n}"),
        }
    }
}

/// A cron schedule to declare: which registered workflow to start, when,
/// with what input, on which queue.
///
/// The expression has six or seven fields: seconds, minutes, hours, day of
/// month, month, day of week and, optionally, year (`0 30 9 * * Mon-Fri`:
/// 9:30:00 on weekdays). It is read in the schedule's time zone (an IANA
/// name, default `UTC`), so daylight saving time moves the ticks with the
/// wall clock.
///
/// ```
/// use durable::{CatchUp, Schedule};
///
/// let nightly = Schedule::new("nightly-report", "0 0 3 * * *", "report")
///     .time_zone("Europe/Berlin")
///     .input(&("eu", 7))
///     .catch_up(CatchUp::Once);
/// let ticks = nightly.next_ticks("2026-03-28T12:00:00Z".parse().unwrap(), 2).unwrap();
/// // 03:00 in Berlin is 01:00 UTC in summer time (from 29 March 2026).
/// assert_eq!(ticks[0].to_rfc3339(), "2026-03-29T01:00:00+00:00");
/// assert_eq!(ticks[1].to_rfc3339(), "2026-03-30T01:00:00+00:00");
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    pub(crate) name: String,
    pub(crate) cron: String,
    pub(crate) workflow: String,
    pub(crate) time_zone: String,
    /// JSON text, or why the value could not be encoded.
    pub(crate) input: Result<String, String>,
    pub(crate) queue: Option<String>,
    pub(crate) catch_up: CatchUp,
}

impl Schedule {
    /// Schedule `name`: start registered workflow `workflow` at every tick
    /// of `cron`, in UTC, with input `null`, on the `default` queue,
    /// dropping missed ticks. Checked when declared.
    ///
    /// ```
    /// let every_five_minutes = durable::Schedule::new("sweep", "0 */5 * * * *", "sweep");
    /// assert_eq!(every_five_minutes.name(), "sweep");
    /// ```
    pub fn new(
        name: impl Into<String>,
        cron: impl Into<String>,
        workflow: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            cron: cron.into(),
            workflow: workflow.into(),
            time_zone: "UTC".to_string(),
            input: Ok("null".to_string()),
            queue: None,
            catch_up: CatchUp::Skip,
        }
    }

    /// Read the expression in this IANA time zone (`America/New_York`).
    ///
    /// ```
    /// let s = durable::Schedule::new("s", "0 0 9 * * *", "w").time_zone("Asia/Tokyo");
    /// assert!(s.next_ticks(chrono::Utc::now(), 1).is_ok());
    /// ```
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.time_zone = zone.into();
        self
    }

    /// The input of every tick's workflow ([`Tick::input`]). A value that
    /// cannot be stored (NaN, a map with non-string keys) makes the
    /// declaration fail with [`DurableError::InvalidInput`].
    ///
    /// ```
    /// let s = durable::Schedule::new("s", "0 0 * * * *", "w").input(&vec!["a", "b"]);
    /// ```
    pub fn input<T: Serialize + ?Sized>(mut self, input: &T) -> Self {
        self.input = crate::codec::encode_value("schedule input", input).map_err(|e| e.to_string());
        self
    }

    /// Enqueue the ticks' workflows on this queue (declared beforehand)
    /// instead of `default`.
    ///
    /// ```
    /// let s = durable::Schedule::new("s", "0 0 * * * *", "w").queue("reports");
    /// ```
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// What to do with missed ticks (default [`CatchUp::Skip`]).
    ///
    /// ```
    /// let s = durable::Schedule::new("s", "0 0 * * * *", "w").catch_up(durable::CatchUp::All);
    /// ```
    pub fn catch_up(mut self, policy: CatchUp) -> Self {
        self.catch_up = policy;
        self
    }

    /// The schedule's name.
    ///
    /// ```
    /// assert_eq!(durable::Schedule::new("hourly", "0 0 * * * *", "w").name(), "hourly");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next `n` ticks after `after`, as the schedule will fire them.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for an invalid expression or an
    /// unknown time zone.
    ///
    /// ```
    /// let s = durable::Schedule::new("s", "*/15 * * * * *", "w");
    /// let ticks = s.next_ticks("2026-01-01T00:00:07Z".parse().unwrap(), 2).unwrap();
    /// assert_eq!(ticks[0].to_rfc3339(), "2026-01-01T00:00:15+00:00");
    /// assert_eq!(ticks[1].to_rfc3339(), "2026-01-01T00:00:30+00:00");
    /// assert!(durable::Schedule::new("s", "every day", "w").next_ticks(chrono::Utc::now(), 1).is_err());
    /// ```
    pub fn next_ticks(
        &self,
        after: DateTime<Utc>,
        n: usize,
    ) -> Result<Vec<DateTime<Utc>>, DurableError> {
        let compiled = Compiled::new(&self.cron, &self.time_zone)?;
        Ok(compiled
            .ticks_after(after.timestamp_millis())
            .take(n)
            .filter_map(|ms| Utc.timestamp_millis_opt(ms).single())
            .collect())
    }
}

/// What a scheduled workflow receives as its input: which schedule fired
/// it, for which tick, and the schedule's input.
///
/// ```no_run
/// use durable::{Ctx, Registry, Tick};
///
/// let mut registry = Registry::new();
/// registry.register("report", |ctx: Ctx, tick: Tick<String>| async move {
///     let day = tick.at.format("%Y-%m-%d").to_string();
///     ctx.step("render", || async move { Ok(format!("{} report for {day}", tick.input)) }).await
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick<I = serde_json::Value> {
    /// The schedule's name.
    pub schedule: String,
    /// The tick's time (for a manual trigger, when it was triggered).
    pub at: DateTime<Utc>,
    /// Started by [`crate::Client::trigger_schedule`], not by a tick.
    #[serde(default)]
    pub manual: bool,
    /// The schedule's input.
    pub input: I,
}

/// A declared schedule, as [`crate::Client::schedules`] reads it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ScheduleInfo {
    /// Its name.
    pub name: String,
    /// The registered workflow it starts.
    pub workflow: String,
    /// Its cron expression.
    pub cron: String,
    /// The time zone the expression is read in.
    pub time_zone: String,
    /// The input of each tick's workflow.
    pub input: serde_json::Value,
    /// The queue its workflows are enqueued on.
    pub queue: String,
    /// What happens to missed ticks.
    pub catch_up: CatchUp,
    /// Paused: no tick fires until it is resumed.
    pub paused: bool,
    /// The next tick to fire (`None`: the expression has no tick left).
    pub next_tick: Option<DateTime<Utc>>,
    /// The last tick fired.
    pub last_tick: Option<DateTime<Utc>>,
    /// Ticks fired so far (manual triggers not counted).
    pub fired: u64,
}

/// The key of the workflow of a tick: the schedule's name and the tick's
/// time in UTC, to the second (the resolution of cron).
pub(crate) fn tick_key(schedule: &str, at_ms: i64) -> String {
    let at = Utc
        .timestamp_millis_opt(at_ms)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| at_ms.to_string());
    format!("schedule:{schedule}@{at}")
}

/// The input of a tick's workflow: a [`Tick`] around the schedule's input
/// (JSON text).
pub(crate) fn tick_input(
    schedule: &str,
    at_ms: i64,
    manual: bool,
    input: &str,
) -> Result<String, DurableError> {
    let at = Utc
        .timestamp_millis_opt(at_ms)
        .single()
        .ok_or_else(|| DurableError::InvalidInput(format!("tick time {at_ms} is out of range")))?;
    let tick = Tick {
        schedule: schedule.to_string(),
        at,
        manual,
        input: serde_json::from_str::<serde_json::Value>(input)?,
    };
    Ok(serde_json::to_string(&tick)?)
}
