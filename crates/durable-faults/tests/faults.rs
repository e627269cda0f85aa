//! The fault suite's short mode: one test per fault class, run one at a
//! time (they measure a fleet of processes and a server of their own).
//! Each prints its report (`--nocapture` shows it) and fails listing every
//! broken invariant and bound at once, with the figures.
//!
//! Invariants, in every scenario: no workflow lost, no double commit (nor a
//! torn transaction step), no completed step run again, no step running
//! twice at once inside one process, no worker failing or failing its
//! shutdown. Bounds: re-executions no more than the runs in flight during
//! the faults, plus each scenario's own (progress within 2 s of a restarted
//! server accepting connections; others not stalled by a worker stopped
//! in its claim; a black-holed worker's work moving on within 1.5 leases).
//!
//! PostgreSQL binaries must be present (`/usr/lib/postgresql/15/bin`, or
//! `PG_BIN`): without them the tests fail, they never skip.

use std::path::PathBuf;

use durable_faults::ledger::Report;
use durable_faults::scenarios::{self, Backend, LEASE_MS, Mode, Suite};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn suite() -> Suite {
    Suite::new(
        Mode::Short,
        PathBuf::from(env!("CARGO_BIN_EXE_fault-worker")),
    )
}

/// A scenario figure that must be there.
fn figure(report: &Report, name: &str) -> i64 {
    *report
        .figures
        .get(name)
        .unwrap_or_else(|| panic!("no figure {name:?} in {report}"))
}

/// Print the report; fail with every invariant violated and every bound
/// in `bounds` (`(holds, description)`) that does not hold.
fn check(report: &Report, bounds: &[(bool, String)]) {
    println!("{report}");
    let mut failures = report.violations();
    // Each fault can cost at most the step runs it caught in flight: those
    // of the process it hit (every process for a server fault) that began
    // before it ended and were not yet checkpointed when it began. That is
    // at most faults x worker concurrency (16), the coarser bound; the
    // ledger counts the exact one from the log.
    if report.re_executions > report.in_flight_at_faults {
        failures.push(format!(
            "{} re-executions, more than the {} runs in flight during the faults",
            report.re_executions, report.in_flight_at_faults
        ));
    }
    if report.faults.values().sum::<usize>() == 0 {
        failures.push("no fault was injected".into());
    }
    failures.extend(
        bounds
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, what)| what.clone()),
    );
    assert!(
        failures.is_empty(),
        "{}: {} failure(s):\n  {}\n{report}",
        report.scenario,
        failures.len(),
        failures.join("\n  ")
    );
}

/// Two `-m immediate` restarts while 3 workers run: progress (a step
/// checkpointed) within 2 s of the server accepting connections each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_crash_restart() {
    let _serial = SERIAL.lock().await;
    let r = scenarios::server_crash_restart(&suite()).await;
    let mut bounds = vec![(
        r.recoveries_ms.len() == 2,
        format!("{} restarts measured, expected 2", r.recoveries_ms.len()),
    )];
    for (i, &ms) in r.recoveries_ms.iter().enumerate() {
        bounds.push((
            (0..=2000).contains(&ms),
            format!("restart {i}: first checkpoint {ms} ms after the server accepted connections (bound 2000; -1: none)"),
        ));
    }
    check(&r, &bounds);
}

/// About 10 `pg_terminate_backend`s of random worker backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_termination() {
    let _serial = SERIAL.lock().await;
    let r = scenarios::backend_termination(&suite()).await;
    let n = r.faults.get("backends terminated").copied().unwrap_or(0);
    check(&r, &[(n >= 8, format!("only {n} backends terminated"))]);
}

/// A worker stopped for two leases: its work is taken over before it
/// wakes, and it commits nothing it had started once awake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_stop_past_lease() {
    let _serial = SERIAL.lock().await;
    let r = scenarios::worker_stop_past_lease(&suite()).await;
    let late = figure(
        &r,
        "stop: stops whose work was not taken over before SIGCONT",
    );
    let zombies = figure(&r, "stop: checkpoints by the stopped worker after waking");
    let idle = figure(&r, "stop: stops that met no work in flight");
    check(
        &r,
        &[
            (
                idle == 0,
                "the stop met no work in flight: nothing was tested".to_string(),
            ),
            (
                late == 0,
                format!("{late} stop(s) whose work was not taken over while stopped"),
            ),
            (
                zombies == 0,
                format!("{zombies} checkpoint(s) written by the stopped worker after it woke"),
            ),
        ],
    );
}

/// A worker stopped inside its claim transaction for two leases: the other
/// workers go on completing steps; their longest silence is at most a
/// lease ("a few seconds": a claim may pin the queue only for a short
/// bound, after which the stopped one's session is ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_stop_in_claim() {
    let _serial = SERIAL.lock().await;
    let r = scenarios::worker_stop_in_claim(&suite()).await;
    let gap = figure(&r, "stop in claim: longest silence of the other workers ms");
    let missed = figure(&r, "stop in claim: stops that never happened");
    check(
        &r,
        &[
            (
                missed == 0,
                "the worker never stopped at claim-locked".to_string(),
            ),
            (
                (0..=LEASE_MS).contains(&gap),
                format!(
                    "the other workers were silent for {gap} ms while one was stopped in its claim (bound {LEASE_MS})"
                ),
            ),
        ],
    );
}

/// A worker's backends black-holed for 2.5 leases: its work moves on to
/// the others within 1.5 leases, and everything completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_hole() {
    let _serial = SERIAL.lock().await;
    let r = scenarios::black_hole(&suite()).await;
    let moved = figure(&r, "black hole: work moved on after ms (max)");
    let bound = LEASE_MS * 3 / 2;
    check(
        &r,
        &[(
            (0..=bound).contains(&moved),
            format!(
                "the black-holed worker's work moved on after {moved} ms (bound {bound}; -1: it had none in flight)"
            ),
        )],
    );
}

/// SQLite's write lock held by another process for 10 s: nothing fails,
/// and the worker is back at work within a lease of the lock's release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lock_holder() {
    let _serial = SERIAL.lock().await;
    let r = scenarios::sqlite_lock_holder(&suite()).await;
    let after = figure(&r, "lock released -> next checkpoint ms (max)");
    check(
        &r,
        &[(
            (0..=LEASE_MS).contains(&after),
            format!("first checkpoint {after} ms after the lock was released (bound {LEASE_MS})"),
        )],
    );
}

/// `kill -9` at random on PostgreSQL (3 workers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_random_postgres() {
    let _serial = SERIAL.lock().await;
    let r = scenarios::kill9_random(&suite(), Backend::Postgres).await;
    check(&r, &[]);
}

/// `kill -9` at random on SQLite (2 workers on one file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_random_sqlite() {
    let _serial = SERIAL.lock().await;
    let r = scenarios::kill9_random(&suite(), Backend::Sqlite).await;
    check(&r, &[]);
}

/// Aborts right after a body ran and right after a checkpoint committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_points() {
    let _serial = SERIAL.lock().await;
    let r = scenarios::kill9_at_points(&suite()).await;
    let ran = figure(&r, "aborts at step-ran (during the phase)");
    let committed = figure(&r, "aborts at step-committed (during the phase)");
    check(
        &r,
        &[(
            ran > 0 && committed > 0,
            format!("aborts at step-ran {ran}, at step-committed {committed}: both must happen"),
        )],
    );
}
