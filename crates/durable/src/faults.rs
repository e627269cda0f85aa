//! Named fault points for the fault suite (`crates/durable-faults`).
//!
//! With the feature `testing`, a process started with
//! `DURABLE_FAULT_AT=<point>[:<n>]` and `DURABLE_FAULT_DO=stop|abort`
//! stops itself (`SIGSTOP`, as `kill -STOP` would) or dies
//! (`std::process::abort`, as `kill -9` would) the `n`-th time (default 1)
//! it reaches `point`. The suite uses them to stop a worker inside its
//! claim transaction, or to kill one between a step's body and its
//! checkpoint, which random kills hit too rarely. Without the feature
//! every point is an empty inline function.

/// Where a fault can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// Inside a claim transaction, right after the queue's row is locked.
    ClaimLocked,
    /// A step's body returned; its checkpoint is not written yet.
    StepRan,
    /// A step's checkpoint was committed.
    StepCommitted,
}

#[cfg(feature = "testing")]
mod armed {
    use super::Point;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    impl Point {
        fn name(self) -> &'static str {
            match self {
                Point::ClaimLocked => "claim-locked",
                Point::StepRan => "step-ran",
                Point::StepCommitted => "step-committed",
            }
        }
    }

    /// The armed point, its count, and whether to stop (else abort).
    struct Armed {
        point: String,
        nth: u64,
        stop: bool,
        reached: AtomicU64,
    }

    fn armed() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let at = std::env::var("DURABLE_FAULT_AT").ok()?;
                let (point, nth) = match at.split_once(':') {
                    Some((point, n)) => (point.to_string(), n.parse().unwrap_or(1)),
                    None => (at, 1),
                };
                let stop = std::env::var("DURABLE_FAULT_DO").is_ok_and(|d| d == "stop");
                Some(Armed {
                    point,
                    nth,
                    stop,
                    reached: AtomicU64::new(0),
                })
            })
            .as_ref()
    }

    pub(crate) fn reach(point: Point) {
        let Some(armed) = armed() else { return };
        if armed.point != point.name()
            || armed.reached.fetch_add(1, Ordering::SeqCst) + 1 != armed.nth
        {
            return;
        }
        if armed.stop {
            eprintln!(
                "durable fault point {}: stopping pid {}",
                point.name(),
                std::process::id()
            );
            // The whole process stops here, its runtime threads included,
            // as a SIGSTOP from outside would stop it.
            let _ = std::process::Command::new("kill")
                .args(["-STOP", &std::process::id().to_string()])
                .status();
        } else {
            eprintln!(
                "durable fault point {}: aborting pid {}",
                point.name(),
                std::process::id()
            );
            std::process::abort();
        }
    }
}

/// Reach a fault point: nothing happens unless it is armed (feature
/// `testing` and `DURABLE_FAULT_AT`).
#[inline]
pub(crate) fn reach(point: Point) {
    #[cfg(feature = "testing")]
    armed::reach(point);
    #[cfg(not(feature = "testing"))]
    let _ = point;
}
