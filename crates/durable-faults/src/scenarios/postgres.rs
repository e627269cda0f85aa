//! Faults of the database server and of the workers' connections:
//! crash-restarts, terminated backends, black-holed backends.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Backend, Harness, LEASE_MS, Suite, move_on_ms, zombie_commits};
use crate::cluster::Cluster;
use crate::fleet::application_name;
use crate::ledger::{FaultKind, Report};
use crate::workload::now_ms;

/// `pg_ctl stop -m immediate` and a start, while 3 workers run: every
/// connection dropped at once, crash recovery on start.
/// Short: 2 restarts in 10 s; long: 60 in 3 minutes.
pub async fn server_crash_restart(suite: &Suite) -> Report {
    let restarts = suite.pick(2, 60);
    let phase = Duration::from_secs(suite.pick(10, 180));
    let mut h = Harness::new(suite, "server_crash_restart", Backend::Postgres).await;
    for _ in 0..3 {
        h.add_worker(&[]);
    }
    h.feed(suite.pick(400, 12_000), phase).await;
    let mut downtime = Vec::new();
    for i in 0..restarts {
        h.sleep_until(phase.mul_f64((i as f64 + 0.5) / restarts as f64))
            .await;
        let cluster = h.cluster.as_mut().expect("a PostgreSQL scenario");
        let (crashed, ready) = cluster.crash_restart().await;
        downtime.push(ready - crashed);
        h.record(FaultKind::ServerRestart, None, crashed, ready);
    }
    let (mut report, _) = h.finish(Duration::from_secs(suite.pick(60, 300))).await;
    report.figures.insert(
        "max server downtime ms".into(),
        downtime.iter().copied().max().unwrap_or(0),
    );
    report
}

/// `pg_terminate_backend` of a random backend of a random worker (its
/// pool's connections), while 3 workers run.
/// Short: 10 in 8 s; long: 5,000, one every 50 ms.
pub async fn backend_termination(suite: &Suite) -> Report {
    let terminations = suite.pick(10, 5000);
    let every = Duration::from_millis(suite.pick(800, 50));
    let mut h = Harness::new(suite, "backend_termination", Backend::Postgres).await;
    for _ in 0..3 {
        h.add_worker(&[]);
    }
    h.feed(
        suite.pick(400, 20_000),
        every * terminations as u32 + Duration::from_secs(1),
    )
    .await;
    let mut done = 0;
    let mut attempts = 0;
    while done < terminations && attempts < terminations * 3 {
        attempts += 1;
        h.sleep_until(every * (attempts as u32)).await;
        let slot = (h.rng.next_u64() % h.fleet.len() as u64) as usize;
        let Some(pid) = h.fleet.pid(slot) else {
            continue;
        };
        let cluster = h.cluster.as_ref().expect("a PostgreSQL scenario");
        let backends = cluster.backends(&application_name(slot), false).await;
        if backends.is_empty() {
            continue;
        }
        let victim = &backends[(h.rng.next_u64() % backends.len() as u64) as usize];
        let at = now_ms();
        if cluster.terminate_backend(victim.pid).await {
            h.record(FaultKind::BackendTerminated, Some(pid), at, now_ms());
            done += 1;
        }
    }
    let (report, _) = h.finish(Duration::from_secs(suite.pick(60, 300))).await;
    report
}

/// Every server backend of one worker stopped (SIGSTOP) for 2.5 leases,
/// and any it opens meanwhile too: its connections neither answer nor
/// close, as behind a black-holed network. Its work must move on to the
/// other two workers within about one lease, and nothing may hang.
/// Short: one; long: 10, on rotating workers.
///
/// The stop is timed for a moment when the worker runs a step body and
/// none of its backends is inside a transaction (checked once they are
/// stopped; if one is, all are let go at once and it is tried again): a
/// stopped backend keeps its locks, which no real black hole does (the
/// server side of a silent connection still runs, and its
/// `idle_in_transaction_session_timeout` fires), so stopping one inside a
/// transaction would stall every worker on its locks and test PostgreSQL
/// rather than the library. For the same reason a connection the worker
/// opens during the hole and that is caught inside a transaction is let
/// go (counted).
pub async fn black_hole(suite: &Suite) -> Report {
    let holes = suite.pick(1, 10);
    let hold = Duration::from_millis((LEASE_MS * 5 / 2) as u64);
    let gap = Duration::from_secs(4);
    let mut h = Harness::new(suite, "black_hole", Backend::Postgres).await;
    for _ in 0..3 {
        h.add_worker(&[]);
    }
    let phase = (hold + gap) * holes as u32 + Duration::from_secs(3);
    h.feed(suite.pick(500, 5000), phase).await;
    let (mut worst_move_on, mut stalled, mut retried, mut zombies, mut unclean) = (-1, 0, 0, 0, 0);
    let mut lost_track = 0;
    let mut escaped = BTreeSet::new();
    let mut holes_at = Vec::new();
    for i in 0..holes {
        h.sleep_until(Duration::from_secs(2) + (hold + gap) * i as u32)
            .await;
        let slot = i % h.fleet.len();
        let Some(pid) = h.fleet.pid(slot) else {
            continue;
        };
        let name = application_name(slot);
        let cluster = h.cluster.as_ref().expect("a PostgreSQL scenario");
        let admin = cluster.admin_session().await;
        // Stop its backends at a moment when it runs a step body (by the
        // log) and none of them turns out to be inside a transaction once
        // stopped; otherwise let them go at once and try again.
        let mut stopped = BTreeSet::new();
        let trying = std::time::Instant::now();
        let mut clean = false;
        // The hole begins when the stopping begins, while the worker is
        // seen running a step body: that run is in flight at the fault.
        let mut from = now_ms();
        while !clean && trying.elapsed() < Duration::from_secs(5) {
            if !h.busy(pid) {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            from = now_ms();
            for b in Cluster::backends_via(&admin, &name, false).await {
                cluster.stop_backend(b.pid);
                stopped.insert(b.pid);
            }
            let caught = Cluster::backends_via(&admin, &name, false).await;
            if !stopped.is_empty()
                && caught
                    .iter()
                    .all(|b| !stopped.contains(&b.pid) || !b.in_transaction)
            {
                clean = true;
                continue;
            }
            for &b in &stopped {
                cluster.cont_backend(b);
            }
            stopped.clear();
            retried += 1;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        unclean += usize::from(!clean);
        // Connections it opens meanwhile fall into the hole too, unless
        // one is caught inside a transaction: that one is let go.
        while now_ms() < from + hold.as_millis() as i64 {
            let current = Cluster::backends_via(&admin, &name, false).await;
            let new: Vec<u32> = current
                .iter()
                .map(|b| b.pid)
                .filter(|p| !stopped.contains(p) && !escaped.contains(p))
                .collect();
            for &b in &new {
                cluster.stop_backend(b);
            }
            if !new.is_empty() {
                for b in Cluster::backends_via(&admin, &name, false).await {
                    if new.contains(&b.pid) {
                        if b.in_transaction {
                            cluster.cont_backend(b.pid);
                            escaped.insert(b.pid);
                        } else {
                            stopped.insert(b.pid);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for &b in &stopped {
            cluster.cont_backend(b);
        }
        lost_track += cluster.cont_all_stopped();
        admin.close().await.ok();
        let to = now_ms();
        stalled += stopped.len();
        h.record(FaultKind::BlackHole, Some(pid), from, to);
        holes_at.push((pid, from, to));
    }
    let (mut report, ev) = h.finish(Duration::from_secs(suite.pick(90, 300))).await;
    for &(pid, from, to) in &holes_at {
        worst_move_on = worst_move_on.max(move_on_ms(&ev, pid, from).0);
        zombies += zombie_commits(&ev, pid, from, to);
    }
    let f = &mut report.figures;
    f.insert(
        "black hole: work moved on after ms (max)".into(),
        worst_move_on,
    );
    f.insert("black hole: backends stopped".into(), stalled as i64);
    f.insert(
        "black hole: stopped backends found untracked at the end".into(),
        lost_track as i64,
    );
    f.insert(
        "black hole: holes begun without a clean moment in 5 s".into(),
        unclean as i64,
    );
    f.insert(
        "black hole: stops retried (a backend was in a transaction)".into(),
        retried as i64,
    );
    f.insert(
        "black hole: new backends let go (caught in a transaction)".into(),
        escaped.len() as i64,
    );
    f.insert(
        "black hole: late checkpoints of the stalled worker".into(),
        zombies as i64,
    );
    report
}
