//! Suspension: a durable call that stops the workflow until a time or an
//! event. The workflow returns [`DurableError::Suspended`] up through its
//! code; the runner releases it with a wake-up time, so it holds no
//! executor slot, connection or memory while it waits, and an executor
//! claims it again when it is due (or woken) and replays up to the wait.
//!
//! Every waiting primitive (sleep, recv, join, select, and the test-only
//! wait) uses the pieces here: the wake-up time is fixed once from the
//! database clock and recorded with the waiting entry, so a restart waits
//! only for what remains; a short wait, or any wait of a workflow that no
//! executor would resume (an inline `Ctx::start`), is waited out in the
//! process instead.

use std::time::Duration;

use super::Ctx;
use crate::call::{Call, Run};
use crate::error::DurableError;
use crate::status::{Status, StepKind};
use crate::store::{Checkpoint, Entry};

/// Sleeps and message waits up to this long are waited out in the process;
/// longer ones suspend the workflow (when it runs on an executor that
/// resumes it). A join suspends at once: the children it waits for may
/// need the very slot it would hold.
pub(crate) const SUSPEND_AFTER: Duration = Duration::from_secs(1);

/// What a waiting call ended with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Waited {
    /// Woken by its event, with the waker's payload.
    Woken(serde_json::Value),
    /// Its time came first.
    TimedOut,
}

/// The output recorded for a wait that timed out; one that was woken
/// records `{"woken": payload}` (see [`woken_output_text`]).
const TIMED_OUT: &str = r#"{"timed_out":true}"#;

/// The output a waker records for `payload`.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn woken_output(payload: &serde_json::Value) -> String {
    woken_output_text(&payload.to_string())
}

/// The output recorded for a call woken with `payload` (JSON text).
pub(crate) fn woken_output_text(payload: &str) -> String {
    format!(r#"{{"woken":{payload}}}"#)
}

/// The recorded output of a finished wait.
pub(crate) fn waited(output: Option<&str>) -> Waited {
    let woken = output
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|mut value| value.get_mut("woken").map(serde_json::Value::take));
    match woken {
        Some(payload) => Waited::Woken(payload),
        None => Waited::TimedOut,
    }
}

/// Milliseconds of a timeout, at most 100 years.
pub(crate) fn timeout_ms(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis())
        .unwrap_or(i64::MAX)
        .min(super::MAX_TIMEOUT_MS)
}

/// An instant no wait reaches: as far off as the longest timeout, near
/// enough for `Instant` arithmetic.
pub(crate) fn never() -> tokio::time::Instant {
    let longest = u64::try_from(super::MAX_TIMEOUT_MS).unwrap_or(u64::MAX);
    tokio::time::Instant::now() + Duration::from_millis(longest)
}

/// Polling intervals of a wait in the process: short at first (a reply
/// often comes quickly), at most [`Backoff::EARLY`] for the first ten
/// seconds (a wait that lingers before it suspends, a reader following a
/// live stream), then at most a second (a long wait costs one read a
/// second). Measured by `durable bench --only primitives`.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    started: tokio::time::Instant,
}

impl Backoff {
    /// The longest interval of the first ten seconds.
    const EARLY: Duration = Duration::from_millis(50);

    pub(crate) fn new() -> Self {
        Self {
            next: Duration::from_millis(5),
            started: tokio::time::Instant::now(),
        }
    }

    /// Sleep for the next interval, but not past `until`.
    pub(crate) async fn pause(&mut self, until: tokio::time::Instant) {
        let now = tokio::time::Instant::now();
        let wait = self.next.min(until.saturating_duration_since(now));
        tokio::time::sleep(wait).await;
        let cap = if self.started.elapsed() < Duration::from_secs(10) {
            Self::EARLY
        } else {
            Duration::from_secs(1)
        };
        self.next = (self.next * 2).min(cap);
    }
}

/// How a wait continues once its entry is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Wait in the process until this instant.
    InProcess(tokio::time::Instant),
    /// Wait in the process until this instant, then suspend.
    ThenSuspend(tokio::time::Instant),
}

impl Budget {
    pub(crate) fn until(self) -> tokio::time::Instant {
        match self {
            Budget::InProcess(at) | Budget::ThenSuspend(at) => at,
        }
    }
}

/// A waiting call's entry once [`Ctx::start_wait`] has seen to it.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// Recorded as waiting, until this wake-up time (if it has one).
    Open(Option<i64>),
    /// Another handle finished the call meanwhile: replay this.
    Settled(Entry),
}

impl Ctx {
    /// The waiting entry of `call`: fixed at the first run (database clock,
    /// `wake_ms` from `now`), read back after that.
    pub(crate) async fn start_wait(
        &self,
        call: &Call,
        run: &Run,
        wake_ms: Option<i64>,
        child: Option<uuid::Uuid>,
        output: Option<String>,
    ) -> Result<Waiting, DurableError> {
        if let Some(entry) = &run.entry {
            return Ok(Waiting::Open(entry.wake_ms));
        }
        let mut cp = self.checkpoint(call, Status::Pending, output, None, run.started_ms)?;
        cp.wake_ms = wake_ms;
        cp.child = child;
        match self.commit(call, &cp).await? {
            Some(entry) => Ok(Waiting::Settled(entry)),
            None => Ok(Waiting::Open(wake_ms)),
        }
    }

    /// How long to wait in the process before suspending (or for good),
    /// given `remaining_ms` until the wake-up time (`None`: no time), and
    /// how long a suspendable workflow lingers before it suspends.
    pub(crate) fn budget(&self, remaining_ms: Option<i64>, linger: Duration) -> Budget {
        let now = tokio::time::Instant::now();
        let remaining =
            remaining_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
        let at = |d: Option<Duration>| d.map_or_else(never, |d| now + d);
        if !self.suspendable {
            return Budget::InProcess(at(remaining));
        }
        match remaining {
            Some(d) if d <= linger => Budget::InProcess(now + d),
            _ => Budget::ThenSuspend(now + linger),
        }
    }

    /// The error that suspends this workflow at `call`.
    pub(crate) fn suspend(
        &self,
        call: &Call,
        wake_ms: Option<i64>,
        waiting_for: String,
    ) -> DurableError {
        tracing::debug!(workflow.id = %self.id, step = %call.key, ?wake_ms, "suspending");
        DurableError::Suspended {
            workflow: self.id,
            position: call.position,
            wake_at_ms: wake_ms,
            waiting_for: Some(waiting_for),
        }
    }

    /// Finish a waiting call with `output`; `Some(entry)` if another
    /// handle finished it first (replay that).
    pub(crate) async fn end_wait(
        &self,
        call: &Call,
        run: &Run,
        status: Status,
        output: Option<String>,
        error: Option<String>,
        child: Option<uuid::Uuid>,
    ) -> Result<Option<Entry>, DurableError> {
        let mut cp: Checkpoint<'_> =
            self.checkpoint(call, status, output, error, run.started_ms)?;
        cp.wake_ms = run.entry.as_ref().and_then(|e| e.wake_ms);
        cp.child = child;
        self.commit(call, &cp).await
    }

    /// A call that waits until `timeout` has passed or a waker completes
    /// it (the test-only wait).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) async fn suspend_call(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Waited, DurableError> {
        let call = self.take(name, StepKind::Wait)?;
        let run = match self.prepare(&call).await? {
            crate::call::Prepared::Replay(entry) => return Ok(waited(entry.output.as_deref())),
            crate::call::Prepared::Run(run) => run,
        };
        let now = run.started_ms;
        let wake_ms = match self
            .start_wait(
                &call,
                &run,
                Some(now.saturating_add(timeout_ms(timeout))),
                None,
                None,
            )
            .await?
        {
            Waiting::Open(wake_ms) => wake_ms.unwrap_or(now),
            Waiting::Settled(entry) => return Ok(waited(entry.output.as_deref())),
        };
        if now < wake_ms {
            return Err(self.suspend(&call, Some(wake_ms), call.name.clone()));
        }
        self.time_out(&call, &run).await
    }

    /// Record that a waiting call's time came first.
    pub(crate) async fn time_out(&self, call: &Call, run: &Run) -> Result<Waited, DurableError> {
        let output = Some(TIMED_OUT.into());
        match self
            .end_wait(call, run, Status::Completed, output, None, None)
            .await?
        {
            Some(entry) => Ok(waited(entry.output.as_deref())),
            None => Ok(Waited::TimedOut),
        }
    }

    /// Test-only: wait until `timeout` passes or `Client::wake_for_test`
    /// wakes the call `name`; returns the waker's payload, `None` on
    /// timeout. The workflow suspends meanwhile, so it must run on a
    /// `Worker` (or `Client::run`) that will claim it again.
    ///
    /// # Errors
    /// [`DurableError::Suspended`] while it waits: return it from the
    /// workflow function (`?` does).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub async fn wait_for_test(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<serde_json::Value>, DurableError> {
        match self.suspend_call(name, timeout).await? {
            Waited::Woken(payload) => Ok(Some(payload)),
            Waited::TimedOut => Ok(None),
        }
    }
}
