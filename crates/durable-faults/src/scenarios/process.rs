//! Faults of worker processes: stopped past their lease, stopped inside a
//! claim transaction, killed at random, killed at named points.

use std::time::{Duration, Instant};

use super::{Backend, Harness, LEASE_MS, Suite, move_on_ms, zombie_commits};
use crate::ledger::{FaultKind, Report};
use crate::workload::now_ms;

/// SIGSTOP one of 3 workers for two leases, then SIGCONT. The others must
/// take its work over while it is stopped (its lease ran out), and it must
/// not commit, after it wakes, anything it had started before: a stopped
/// executor that wakes up late is fenced off. Short: one stop; long: 20,
/// on rotating workers.
pub async fn worker_stop_past_lease(suite: &Suite) -> Report {
    let stops = suite.pick(1, 20);
    let hold = Duration::from_millis((LEASE_MS * 2) as u64);
    let gap = Duration::from_secs(3);
    let mut h = Harness::new(suite, "worker_stop_past_lease", Backend::Postgres).await;
    for _ in 0..3 {
        h.add_worker(&[]);
    }
    let phase = (hold + gap) * stops as u32 + Duration::from_secs(3);
    h.feed(suite.pick(400, 6000), phase).await;
    let mut stopped = Vec::new();
    for i in 0..stops {
        h.sleep_until(Duration::from_secs(2) + (hold + gap) * i as u32)
            .await;
        let slot = i % h.fleet.len();
        let Some(pid) = h.fleet.pid(slot) else {
            continue;
        };
        h.wait_busy(pid).await;
        let from = now_ms();
        h.fleet.stop(slot);
        tokio::time::sleep(hold).await;
        h.fleet.cont(slot);
        let to = now_ms();
        h.record(FaultKind::ProcessStopped, Some(pid), from, to);
        stopped.push((pid, from, to));
    }
    let (mut report, ev) = h.finish(Duration::from_secs(suite.pick(60, 300))).await;
    let (mut worst, mut zombies, mut late, mut idle) = (-1, 0, 0, 0);
    for &(pid, from, to) in &stopped {
        let (moved, keys) = move_on_ms(&ev, pid, from);
        worst = worst.max(moved);
        if keys.is_empty() {
            idle += 1;
        } else if from + moved > to {
            late += 1;
        }
        zombies += zombie_commits(&ev, pid, from, to);
    }
    let f = &mut report.figures;
    f.insert("stop: its work taken over after ms (max)".into(), worst);
    f.insert(
        "stop: stops whose work was not taken over before SIGCONT".into(),
        late as i64,
    );
    f.insert(
        "stop: checkpoints by the stopped worker after waking".into(),
        zombies as i64,
    );
    f.insert("stop: stops that met no work in flight".into(), idle as i64);
    report
}

/// A fourth worker stops itself (fault point `claim-locked`, SIGSTOP)
/// inside its claim transaction, right after it locked the queue's row,
/// and stays stopped for two leases. The other three must keep completing
/// steps meanwhile: their longest silence is the figure. Short: one stop;
/// long: 10 (the stopped worker is killed and a new one armed each time).
pub async fn worker_stop_in_claim(suite: &Suite) -> Report {
    let stops = suite.pick(1, 10);
    let hold = Duration::from_millis((LEASE_MS * 2) as u64);
    let mut h = Harness::new(suite, "worker_stop_in_claim", Backend::Postgres).await;
    for _ in 0..3 {
        h.add_worker(&[]);
    }
    let phase = (hold + Duration::from_secs(4)) * stops as u32 + Duration::from_secs(3);
    h.feed(suite.pick(400, 5000), phase).await;
    let arm = |nth: u64| {
        [
            ("DURABLE_FAULT_AT", format!("claim-locked:{nth}")),
            ("DURABLE_FAULT_DO", "stop".to_string()),
        ]
    };
    let nth = h.rng.range(5, 20);
    let slot = h.add_worker(&arm(nth));
    let (mut worst_gap, mut missed) = (-1, 0);
    let mut stops_at = Vec::new();
    for i in 0..stops {
        if i > 0 {
            let pid = h.fleet.kill9(slot);
            let at = now_ms();
            h.record(FaultKind::Killed, pid, at, at);
            let nth = h.rng.range(5, 20);
            for (k, v) in arm(nth) {
                h.fleet.set_env(slot, k, v);
            }
            h.fleet.start(slot);
        }
        // Wait for it to reach the point and stop itself.
        let waited = Instant::now();
        while !h.fleet.is_stopped(slot) && waited.elapsed() < Duration::from_secs(30) {
            h.check_workers();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let Some(pid) = h.fleet.pid(slot).filter(|_| h.fleet.is_stopped(slot)) else {
            missed += 1;
            continue;
        };
        let from = now_ms();
        tokio::time::sleep(hold).await;
        h.fleet.cont(slot);
        let to = now_ms();
        h.record(FaultKind::StoppedAtPoint, Some(pid), from, to);
        stops_at.push((pid, from, to));
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let (mut report, ev) = h.finish(Duration::from_secs(suite.pick(60, 300))).await;
    for &(pid, from, to) in &stops_at {
        worst_gap = worst_gap.max(ev.max_gap(from, to, |p| p != pid));
    }
    let f = &mut report.figures;
    f.insert(
        "stop in claim: longest silence of the other workers ms".into(),
        worst_gap,
    );
    f.insert(
        "stop in claim: stops that never happened".into(),
        missed as i64,
    );
    report
}

/// `kill -9` of a random worker at random moments, restarted at once.
/// PostgreSQL: 3 workers; SQLite: 2 (one file, several processes). Short:
/// one kill every 0.6-1.4 s for 10 s; long: 1,000 kills, one every 0.3-0.7 s.
pub async fn kill9_random(suite: &Suite, backend: Backend) -> Report {
    let (workers, kills, workflows) = match backend {
        Backend::Postgres => (3, suite.pick(10, 1000), suite.pick(400, 40_000)),
        Backend::Sqlite => (2, suite.pick(8, 300), suite.pick(150, 6000)),
    };
    let mut h = Harness::new(suite, "kill9_random", backend).await;
    for _ in 0..workers {
        h.add_worker(&[]);
    }
    // About one kill a second (short) or two (long); the feeder spans the kills.
    let (low, high) = suite.pick((600, 1400), (300, 700));
    h.feed(
        workflows,
        Duration::from_millis(kills as u64 * (low + high) / 2 + 1000),
    )
    .await;
    let mut at = Duration::ZERO;
    for _ in 0..kills {
        at += Duration::from_millis(h.rng.range(low, high));
        h.sleep_until(at).await;
        let slot = (h.rng.next_u64() % workers as u64) as usize;
        let killed_at = now_ms();
        let pid = h.fleet.kill9(slot);
        h.record(FaultKind::Killed, pid, killed_at, now_ms());
        h.fleet.start(slot);
    }
    let (report, _) = h.finish(Duration::from_secs(suite.pick(60, 600))).await;
    report
}

/// Workers armed to abort (as `kill -9` would) at a named point: right
/// after a step's body returned (`step-ran`: the result is lost, the body
/// must run again) or right after its checkpoint committed
/// (`step-committed`: the result is safe, the body must not run again),
/// the n-th time they get there (n random in 3..=30); each is restarted,
/// armed anew, when it dies. 3 workers; short: 10 s; long: 5 minutes.
pub async fn kill9_at_points(suite: &Suite) -> Report {
    let phase = Duration::from_secs(suite.pick(10, 300));
    let mut h = Harness::new(suite, "kill9_at_points", Backend::Postgres).await;
    let points = ["step-ran", "step-committed"];
    let mut armed = Vec::new();
    for slot in 0..3 {
        let nth = h.rng.range(3, 30);
        armed.push(slot % 2);
        h.add_worker(&[
            ("DURABLE_FAULT_AT", format!("{}:{nth}", points[slot % 2])),
            ("DURABLE_FAULT_DO", "abort".to_string()),
        ]);
    }
    h.feed(suite.pick(400, 24_000), phase).await;
    let mut aborts = [0_i64; 2];
    let end = h.flowing_ms + phase.as_millis() as i64;
    let mut last_poll = now_ms();
    while now_ms() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = now_ms();
        for exit in h.fleet.reap() {
            if exit.status != ABORTED {
                h.failure(format!(
                    "slot {} pid {}: {}",
                    exit.slot, exit.pid, exit.status
                ));
            }
            aborts[armed[exit.slot]] += 1;
            h.record(FaultKind::AbortedAtPoint, Some(exit.pid), last_poll, now);
            let which = h.rng.range(0, 1) as usize;
            let nth = h.rng.range(3, 30);
            armed[exit.slot] = which;
            h.fleet.set_env(
                exit.slot,
                "DURABLE_FAULT_AT",
                format!("{}:{nth}", points[which]),
            );
            h.fleet.start(exit.slot);
        }
        last_poll = now;
    }
    // Workers still armed may abort while the work drains: restart those
    // disarmed (and count them) rather than call them failures.
    for slot in 0..h.fleet.len() {
        h.fleet.set_env(slot, "DURABLE_FAULT_AT", "none".into());
    }
    h.restart_aborted = true;
    let (mut report, _) = h.finish(Duration::from_secs(suite.pick(60, 600))).await;
    let f = &mut report.figures;
    f.insert("aborts at step-ran (during the phase)".into(), aborts[0]);
    f.insert(
        "aborts at step-committed (during the phase)".into(),
        aborts[1],
    );
    report
}

/// How a process that reached an `abort` fault point ends (SIGABRT).
const ABORTED: &str = "killed by signal 6";
