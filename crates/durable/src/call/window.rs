//! The start window: when a root workflow's next call may start without
//! the check read, so that a fresh step costs one round trip (its
//! checkpoint) instead of two.
//!
//! The check before a call exists for one promise: no call starts after
//! `pause` or `cancel` returned, nor after the deadline (the lease is
//! proven locally, see [`crate::identity`]). A checkpoint's statement reads
//! the workflow's status and deadline in its own snapshot, which is taken
//! after the statement was sent. If it saw the workflow RUNNING, then any
//! pause or cancel it did not see committed after that snapshot, and
//! [`crate::Client::pause`] and [`crate::Client::cancel`] wait
//! [`START_WINDOW`] after their commit before they return. So a call that
//! starts less than `START_WINDOW` after the checkpoint was sent (this
//! process's monotonic clock) starts before any pause it missed returned.
//! The same reasoning bounds the window by the deadline the statement saw.
//!
//! Only roots use it: a child's check also reads its ancestors, whose
//! states its own checkpoint does not see.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::identity::{ExecutorCore, Proof};
use crate::status::Status;
use crate::store::Seen;

/// How long after a checkpoint was sent its root workflow's next call may
/// start without the check, and how long a pause or cancel that changed
/// something waits before it returns. It only has to cover a round trip
/// and the code between two calls; a pause that takes 50 ms longer is not
/// felt by an operator.
pub(crate) const START_WINDOW: Duration = Duration::from_millis(50);

/// [`START_WINDOW`], unless a test of this process set another length
/// (`scratch::set_start_window`): pause, cancel and the window read it
/// alike, so their promise holds whatever it is.
static WINDOW_MS: AtomicU64 = AtomicU64::new(START_WINDOW.as_millis() as u64);

/// The start window of this process.
pub(crate) fn start_window() -> Duration {
    Duration::from_millis(WINDOW_MS.load(Ordering::Relaxed))
}

/// Set the start window of this process (tests only).
#[cfg(feature = "testing")]
pub(crate) fn set_start_window(window: Duration) {
    let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    WINDOW_MS.store(ms, Ordering::Relaxed);
}

/// The window of one workflow handle.
#[derive(Debug, Default)]
pub(crate) struct StartWindow(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    open: Option<Open>,
    /// Statements sent before this moment no longer open a window (the
    /// deadline changed since).
    closed_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    /// When calls must go back to the check.
    closes: Instant,
    /// The proven lease when the statement was sent: a call may start in
    /// the window only while it still holds (nobody took the workflow over).
    proof: Proof,
    /// The database clock the statement read, and when its answer came:
    /// a call's start time is estimated from them.
    now_ms: i64,
    answered: Instant,
}

impl StartWindow {
    /// A statement sent at `sent`, under `proof`, wrote and saw `seen`:
    /// open the window, or keep the one that closes later. A workflow not
    /// RUNNING (paused, cancelled, finished) closes it, as does a deadline
    /// already passed.
    pub(crate) fn saw(&self, sent: Instant, proof: Proof, seen: &Seen) {
        let mut state = self.state();
        if state.closed_at.is_some_and(|closed| sent < closed) {
            return;
        }
        let left = match seen.deadline_ms {
            Some(deadline) => u64::try_from(deadline - seen.now_ms).unwrap_or(0),
            None => u64::MAX,
        };
        let length = start_window().min(Duration::from_millis(left));
        if seen.status != Status::Running || length.is_zero() {
            state.open = None;
            return;
        }
        let open = Open {
            closes: sent + length,
            proof,
            now_ms: seen.now_ms,
            answered: Instant::now(),
        };
        if state.open.is_none_or(|old| old.closes < open.closes) {
            state.open = Some(open);
        }
    }

    /// Close the window, and ignore what statements sent before now saw
    /// (the workflow's deadline is being changed).
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.open = None;
        state.closed_at = Some(Instant::now());
    }

    /// If a call may start now without the check: the estimated database
    /// time of its start and the proof it starts under.
    pub(crate) fn admits(&self, executor: &ExecutorCore) -> Option<(i64, Proof)> {
        let open = self.state().open?;
        let now = Instant::now();
        if now >= open.closes || !executor.holds(&open.proof) {
            return None;
        }
        let since = i64::try_from((now - open.answered).as_millis()).unwrap_or(i64::MAX);
        Some((open.now_ms.saturating_add(since), open.proof))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(status: Status, deadline_ms: Option<i64>) -> Seen {
        Seen {
            status,
            deadline_ms,
            now_ms: 1_000,
        }
    }

    fn window_after(seen: &Seen, sent: Instant, proof: Proof) -> Option<Instant> {
        let w = StartWindow::default();
        w.saw(sent, proof, seen);
        w.state().open.map(|o| o.closes)
    }

    #[tokio::test(start_paused = true)]
    async fn opens_for_running_only_and_never_past_the_deadline() {
        let proof = Proof::forever();
        let sent = Instant::now();
        assert_eq!(
            window_after(&seen(Status::Running, None), sent, proof),
            Some(sent + START_WINDOW)
        );
        assert_eq!(
            window_after(&seen(Status::Running, Some(1_010)), sent, proof),
            Some(sent + Duration::from_millis(10))
        );
        for status in [Status::Paused, Status::Cancelled, Status::Completed] {
            assert_eq!(window_after(&seen(status, None), sent, proof), None);
        }
        assert_eq!(
            window_after(&seen(Status::Running, Some(1_000)), sent, proof),
            None
        );
        assert_eq!(
            window_after(&seen(Status::Running, Some(900)), sent, proof),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_answer_closes_and_a_close_ignores_older_statements() {
        let proof = Proof::forever();
        let w = StartWindow::default();
        let first = Instant::now();
        w.saw(first, proof, &seen(Status::Running, None));
        assert!(w.state().open.is_some());
        w.saw(first, proof, &seen(Status::Paused, None));
        assert!(w.state().open.is_none());

        tokio::time::advance(Duration::from_millis(5)).await;
        w.close();
        w.saw(first, proof, &seen(Status::Running, None));
        assert!(w.state().open.is_none(), "sent before the close");
        w.saw(Instant::now(), proof, &seen(Status::Running, None));
        assert!(w.state().open.is_some(), "sent after the close");
    }
}
