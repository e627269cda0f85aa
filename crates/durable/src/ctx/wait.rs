//! Suspension: a durable call that stops the workflow until a time or an
//! event. The workflow returns [`DurableError::Suspended`] up through its
//! code; the runner releases it with a wake-up time, so it holds no
//! executor slot, connection or memory while it waits, and an executor
//! claims it again when it is due and replays up to the wait.
//!
//! The primitives of the roadmap (sleep, recv, join) are built on
//! [`Ctx::suspend_call`]. Until they land, a test-only wait exercises it
//! (behind the `testing` feature).

use std::time::Duration;

use super::Ctx;
use crate::call::{Call, Prepared};
use crate::error::DurableError;
use crate::status::{Status, StepKind};

/// What a waiting call ended with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Waited {
    /// Woken by its event, with the waker's payload.
    Woken(serde_json::Value),
    /// Its time came first.
    TimedOut,
}

/// The output recorded for a wait that timed out; a waker records
/// `{"woken": payload}` (see [`woken_output`]).
const TIMED_OUT: &str = r#"{"timed_out":true}"#;

/// The output a waker records for `payload`.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn woken_output(payload: &serde_json::Value) -> String {
    serde_json::json!({ "woken": payload }).to_string()
}

impl Ctx {
    /// A call that waits until `timeout` has passed (database clock, fixed
    /// at the first run) or until a waker completes it. Suspends the
    /// workflow while it waits.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) async fn suspend_call(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Waited, DurableError> {
        let call = self.take(name, StepKind::Wait)?;
        let run = match self.prepare(&call).await? {
            Prepared::Replay(entry) => return Ok(waited(entry.output)),
            Prepared::Run(run) => run,
        };
        let now = run.started_ms;
        let wake_ms = match run.entry.as_ref().and_then(|e| e.wake_ms) {
            Some(wake_ms) => wake_ms,
            None => {
                let timeout = i64::try_from(timeout.as_millis())
                    .unwrap_or(i64::MAX)
                    .min(super::MAX_TIMEOUT_MS);
                let wake_ms = now.saturating_add(timeout);
                let mut cp = self.checkpoint(&call, Status::Pending, None, None, now)?;
                cp.wake_ms = Some(wake_ms);
                if let Some(entry) = self.commit(&call, &cp).await? {
                    return Ok(waited(entry.output));
                }
                wake_ms
            }
        };
        if now >= wake_ms {
            return self.time_out(&call, now).await;
        }
        tracing::debug!(workflow.id = %self.id, step = %call.key, wake_ms, "suspending");
        Err(DurableError::Suspended {
            workflow: self.id,
            position: call.position,
            wake_at_ms: Some(wake_ms),
            waiting_for: Some(call.name.clone()),
        })
    }

    async fn time_out(&self, call: &Call, now: i64) -> Result<Waited, DurableError> {
        let cp = self.checkpoint(call, Status::Completed, Some(TIMED_OUT.into()), None, now)?;
        match self.commit(call, &cp).await? {
            Some(entry) => Ok(waited(entry.output)),
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

/// The recorded output of a finished wait.
fn waited(output: Option<String>) -> Waited {
    let woken = output
        .as_deref()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|mut value| value.get_mut("woken").map(serde_json::Value::take));
    match woken {
        Some(payload) => Waited::Woken(payload),
        None => Waited::TimedOut,
    }
}
