//! SQLite: another process holds the database's write lock longer than
//! the busy timeout (5 s), while a worker runs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Backend, Harness, Suite};
use crate::ledger::{FaultKind, Report};
use crate::workload::now_ms;

/// One worker on SQLite; another process (`fault-worker hold-lock`) takes
/// the write lock with `BEGIN IMMEDIATE` and holds it for 10 s, twice the
/// busy timeout. Every write that meets the lock must be retried, not fail:
/// nothing fails, everything completes. Short: one hold; long: 5.
pub async fn sqlite_lock_holder(suite: &Suite) -> Report {
    let holds = suite.pick(1, 5);
    let hold = Duration::from_secs(10);
    let gap = Duration::from_secs(4);
    let mut h = Harness::new(suite, "sqlite_lock_holder", Backend::Sqlite).await;
    h.add_worker(&[]);
    let phase = (hold + gap) * holds as u32 + Duration::from_secs(2);
    h.feed(suite.pick(150, 1500), phase).await;
    let mut progress_after = Vec::new();
    for i in 0..holds {
        h.sleep_until(Duration::from_secs(2) + (hold + gap) * i as u32)
            .await;
        let (bin, url) = (h.worker_bin().to_path_buf(), h.url().to_string());
        let (from, to) = tokio::task::spawn_blocking(move || hold_lock(&bin, &url, hold))
            .await
            .expect("the lock holder thread");
        h.record(FaultKind::LockHeld, None, from, to);
        progress_after.push(to);
    }
    let (mut report, ev) = h.finish(Duration::from_secs(suite.pick(90, 300))).await;
    let worst = progress_after
        .iter()
        .map(|&to| {
            ev.first_checkpoint_after(to, None, None)
                .map_or(-1, |at| at - to)
        })
        .max()
        .unwrap_or(-1);
    report
        .figures
        .insert("lock released -> next checkpoint ms (max)".into(), worst);
    report
}

/// Run the lock holder and wait for it: when it had the lock (it printed
/// `locked`) and when it let go (it exited).
///
/// # Panics
/// If the holder cannot take the lock or fails.
fn hold_lock(bin: &std::path::Path, url: &str, hold: Duration) -> (i64, i64) {
    let mut child = Command::new(bin)
        .args(["hold-lock", &hold.as_millis().to_string()])
        .env("DATABASE_URL", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the lock holder");
    let stdout = child.stdout.take().expect("its stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok);
    assert_eq!(
        first.as_deref(),
        Some("locked"),
        "the lock holder did not get the lock"
    );
    let from = now_ms();
    let status = child.wait().expect("wait for the lock holder");
    let to = now_ms();
    assert!(status.success(), "the lock holder failed: {status}");
    (from, to)
}
