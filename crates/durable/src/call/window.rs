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
//! The statement that creates an inline root or claims a queued one opens
//! the window in the same way (`Ctx::opened`): it set the workflow RUNNING.
//!
//! Only roots use it: a child's check also reads its ancestors, whose
//! states its own checkpoint does not see. Its clock counts the time a
//! suspended machine sleeps (std's `Instant` does not): a laptop that
//! sleeps between a checkpoint and the next step reads again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    /// Shut while this many changes of the workflow's own row are in
    /// flight (a deadline being set, the workflow finishing).
    shut: u32,
    /// Statements sent before this moment open no window: the row may
    /// have changed since.
    closed_at: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    /// When calls must go back to the check.
    closes: Duration,
    /// The proven lease when the statement was sent: a call may start in
    /// the window only while it still holds (nobody took the workflow over).
    proof: Proof,
    /// The database clock the statement read, and when its answer came:
    /// a call's start time is estimated from them.
    now_ms: i64,
    answered: Duration,
}

/// Now on a clock that never goes back and keeps counting while the
/// machine is suspended, as time since an arbitrary start. The library's
/// own tests read tokio's clock instead, which the simulation pauses and
/// moves on (`sim`): a run must depend on its seed only.
pub(crate) fn now() -> Duration {
    #[cfg(not(test))]
    return boot_clock();
    #[cfg(test)]
    return {
        static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let base = *BASE.get_or_init(std::time::Instant::now);
        let now: std::time::Instant = tokio::time::Instant::now().into_std();
        Duration::from_secs(1) + now.saturating_duration_since(base)
    };
}

/// The time since boot, sleep included.
fn boot_clock() -> Duration {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let clock = nix::time::ClockId::CLOCK_BOOTTIME;
    // Elsewhere (macOS among them) CLOCK_MONOTONIC counts sleep too.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let clock = nix::time::ClockId::CLOCK_MONOTONIC;
    // It cannot fail for a clock the system has; were it to, every
    // moment reads as zero, and no window opens at zero (`saw_at`).
    nix::time::clock_gettime(clock).map_or(Duration::ZERO, Duration::from)
}

/// When a statement that may open a window was sent, on the window's
/// clock, and the proven lease it was sent under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    at: Duration,
    proof: Proof,
}

impl Sent {
    /// Taken just before the statement is sent.
    pub(crate) fn now(executor: &ExecutorCore) -> Self {
        Self {
            at: now(),
            proof: executor.proof(),
        }
    }
}

impl StartWindow {
    /// A statement `sent` wrote and saw `seen`: open the window, or keep
    /// the one that closes later. A workflow not RUNNING (paused,
    /// cancelled, finished) closes it, as does a deadline already passed.
    pub(crate) fn saw(&self, sent: Sent, seen: &Seen) {
        self.saw_at(sent.at, sent.proof, seen, now());
    }

    fn saw_at(&self, sent: Duration, proof: Proof, seen: &Seen, answered: Duration) {
        let mut state = self.state();
        if state.shut > 0 || state.closed_at.is_some_and(|closed| sent < closed) || sent.is_zero() {
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
            answered,
        };
        if state.open.is_none_or(|old| old.closes < open.closes) {
            state.open = Some(open);
        }
    }

    /// Shut the window while the workflow's own row changes (its deadline
    /// is set, it finishes): no call starts in it until the guard is
    /// dropped, and what statements sent before then saw opens none.
    pub(crate) fn shut(&self) -> Shut<'_> {
        let mut state = self.state();
        state.open = None;
        state.shut += 1;
        Shut(self)
    }

    /// If a call may start now without the check: the estimated database
    /// time of its start and the proof it starts under.
    pub(crate) fn admits(&self, executor: &ExecutorCore) -> Option<(i64, Proof)> {
        self.admits_at(now(), |proof| executor.holds(proof))
    }

    fn admits_at(&self, now: Duration, holds: impl Fn(&Proof) -> bool) -> Option<(i64, Proof)> {
        let state = self.state();
        if state.shut > 0 {
            return None;
        }
        let open = state.open?;
        drop(state);
        if now >= open.closes || !holds(&open.proof) {
            return None;
        }
        let since =
            i64::try_from(now.saturating_sub(open.answered).as_millis()).unwrap_or(i64::MAX);
        Some((open.now_ms.saturating_add(since), open.proof))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The window shut by [`StartWindow::shut`].
#[must_use]
pub(crate) struct Shut<'a>(&'a StartWindow);

impl Drop for Shut<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.shut -= 1;
        state.closed_at = Some(now());
    }
}

/// Wait out the windows that statements sent before now may have opened:
/// what a pause or cancel does after its commit, so that no call that
/// missed it starts after it returned. Timed on the windows' own clock
/// (tokio's, which a test may pause, could end the wait early).
pub(crate) async fn outlast() {
    let until = now() + start_window();
    loop {
        let left = until.saturating_sub(now());
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn seen(status: Status, deadline_ms: Option<i64>) -> Seen {
        Seen {
            status,
            deadline_ms,
            now_ms: 1_000,
        }
    }

    /// When a window opened by a statement sent at 100 ms closes.
    fn closes_after(seen: &Seen) -> Option<Duration> {
        let w = StartWindow::default();
        w.saw_at(100 * MS, Proof::forever(), seen, 101 * MS);
        w.state().open.map(|o| o.closes)
    }

    #[test]
    fn opens_for_running_only_and_never_past_the_deadline() {
        let sent = 100 * MS;
        assert_eq!(
            closes_after(&seen(Status::Running, None)),
            Some(sent + START_WINDOW)
        );
        assert_eq!(
            closes_after(&seen(Status::Running, Some(1_010))),
            Some(sent + 10 * MS)
        );
        for status in [Status::Paused, Status::Cancelled, Status::Completed] {
            assert_eq!(closes_after(&seen(status, None)), None);
        }
        assert_eq!(closes_after(&seen(Status::Running, Some(1_000))), None);
        assert_eq!(closes_after(&seen(Status::Running, Some(900))), None);
    }

    #[test]
    fn admits_until_it_closes_while_the_proof_holds() {
        let w = StartWindow::default();
        assert_eq!(w.admits_at(100 * MS, |_| true).map(|a| a.0), None);
        w.saw_at(
            100 * MS,
            Proof::forever(),
            &seen(Status::Running, None),
            102 * MS,
        );
        // The start time: the statement's clock, plus the time since its answer.
        assert_eq!(w.admits_at(110 * MS, |_| true).map(|a| a.0), Some(1_008));
        assert!(
            w.admits_at(110 * MS, |_| false).is_none(),
            "the proof ran out"
        );
        assert!(w.admits_at(149 * MS, |_| true).is_some());
        assert!(w.admits_at(150 * MS, |_| true).is_none(), "closed");
    }

    #[test]
    fn a_paused_answer_closes_and_a_shut_ignores_what_was_sent_before_its_end() {
        let proof = Proof::forever();
        let w = StartWindow::default();
        let sent = now();
        assert!(!sent.is_zero());
        w.saw_at(sent, proof, &seen(Status::Running, None), sent);
        assert!(w.state().open.is_some());
        w.saw_at(sent, proof, &seen(Status::Paused, None), sent);
        assert!(w.state().open.is_none());

        w.saw_at(sent, proof, &seen(Status::Running, None), sent);
        let shut = w.shut();
        assert!(w.admits_at(sent, |_| true).is_none(), "shut");
        let during = now();
        w.saw_at(during, proof, &seen(Status::Running, None), during);
        assert!(w.state().open.is_none(), "sent while shut");
        std::thread::sleep(MS);
        drop(shut);
        w.saw_at(during, proof, &seen(Status::Running, None), during);
        assert!(w.state().open.is_none(), "sent before the shut ended");
        let later = now() + MS;
        w.saw_at(later, proof, &seen(Status::Running, None), later);
        assert!(w.state().open.is_some(), "sent after");
    }

    #[test]
    fn the_boot_clock_moves_on() {
        let first = boot_clock();
        assert!(!first.is_zero());
        std::thread::sleep(2 * MS);
        let then = boot_clock();
        assert!(then >= first + 2 * MS, "{first:?} then {then:?}");
    }
}
