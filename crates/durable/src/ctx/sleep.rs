//! Durable sleep: the wake-up time is fixed once, from the database clock,
//! and recorded; after a restart only the remainder is slept. A sleep past
//! [`SUSPEND_AFTER`](super::wait::SUSPEND_AFTER) suspends a workflow that
//! runs on an executor (no slot, connection or task while it sleeps); an
//! inline workflow sleeps in its process.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Ctx;
use super::wait::{Budget, Waiting};
use crate::call::Prepared;
use crate::error::DurableError;
use crate::status::{Status, StepKind};

/// When a sleep ends.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// This long after the sleep first ran.
    After(i64),
    /// At this time (epoch ms).
    At(i64),
}

impl Ctx {
    /// Sleep for `duration`, durably: the workflow wakes at the time fixed
    /// when this call first ran, even across restarts (a restarted
    /// workflow sleeps only for what remains). A zero duration returns at
    /// once. Each call is a checkpoint named `sleep`.
    ///
    /// On an executor (`Worker`, `Client::run`), a sleep longer than a
    /// second suspends the workflow: it returns
    /// [`DurableError::Suspended`], which the workflow function hands back
    /// with `?`, and an executor resumes it when it is due. An inline
    /// workflow (`Ctx::start`) sleeps in its process.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for more than 100 years;
    /// [`DurableError::Suspended`] as above; the errors of a step that may
    /// not start (paused, cancelled, timed out, lease lost).
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// use std::time::Duration;
    ///
    /// ctx.step("send_reminder", || async { Ok(()) }).await?;
    /// ctx.sleep(Duration::from_secs(24 * 3600)).await?; // holds no executor meanwhile
    /// ctx.step("send_second_reminder", || async { Ok(()) }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn sleep(&self, duration: Duration) -> Result<(), DurableError> {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        if ms > super::MAX_TIMEOUT_MS {
            return Err(DurableError::InvalidInput(format!(
                "sleep of {duration:?} is longer than 100 years"
            )));
        }
        self.sleep_call(Until::After(ms)).await
    }

    /// Sleep until `time` (a wall-clock time, compared with the database
    /// clock), durably; a time in the past returns at once. As
    /// [`Ctx::sleep`] otherwise.
    ///
    /// # Errors
    /// [`DurableError::InvalidInput`] for a time before 1970 or more than
    /// 100 years from now; otherwise as [`Ctx::sleep`].
    ///
    /// ```no_run
    /// # async fn demo(ctx: durable::Ctx) -> Result<(), durable::DurableError> {
    /// use std::time::{Duration, SystemTime};
    ///
    /// let tomorrow = SystemTime::now() + Duration::from_secs(24 * 3600);
    /// ctx.sleep_until(tomorrow).await?;
    /// # Ok(()) }
    /// ```
    pub async fn sleep_until(&self, time: SystemTime) -> Result<(), DurableError> {
        let at = time.duration_since(UNIX_EPOCH).map_err(|_| {
            DurableError::InvalidInput(format!("cannot sleep until {time:?}: it is before 1970"))
        })?;
        let at = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
        let latest = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX)
        .saturating_add(super::MAX_TIMEOUT_MS);
        if at > latest {
            return Err(DurableError::InvalidInput(format!(
                "cannot sleep until {time:?}: it is more than 100 years away"
            )));
        }
        self.sleep_call(Until::At(at)).await
    }

    async fn sleep_call(&self, until: Until) -> Result<(), DurableError> {
        let call = self.take("sleep", StepKind::Sleep)?;
        let run = match self.prepare(&call).await? {
            Prepared::Replay(_) => return Ok(()),
            Prepared::Run(run) => run,
        };
        let now = run.started_ms;
        let wake_ms = match until {
            Until::After(ms) => now.saturating_add(ms),
            Until::At(at) => at,
        };
        let wake_ms = match self
            .start_wait(&call, &run, Some(wake_ms), None, None)
            .await?
        {
            Waiting::Open(fixed) => fixed.unwrap_or(wake_ms),
            Waiting::Settled(_) => return Ok(()),
        };
        let remaining = wake_ms.saturating_sub(now);
        if remaining > 0 {
            match self.budget(Some(remaining), super::wait::SUSPEND_AFTER) {
                Budget::InProcess(at) => tokio::time::sleep_until(at).await,
                Budget::ThenSuspend(_) => {
                    return Err(self.suspend(&call, Some(wake_ms), "sleep".into()));
                }
            }
        }
        self.end_wait(&call, &run, Status::Completed, None, None, None)
            .await
            .map(|_| ())
    }
}
