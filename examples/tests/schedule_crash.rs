//! Crash test of cron schedules: three `schedule_worker` processes fire
//! the schedule `every-second` (every second, missed ticks all caught up)
//! while they are killed with `kill -9` at random, one at a time and now
//! and then all at once, and restarted. Then the schedule is paused.
//! Checked from the database and the append-only side-effect log: every
//! second from the first tick to the last one fired has exactly one
//! workflow, none other exists, the schedule counted them all, every one
//! completed, every tick's step ran, and each extra run of a step is one
//! a killed process had in flight.
//!
//! `DURABLE_SCHEDULE_CRASH_SECS` sets how long the processes are killed
//! (30 s by default, per backend; both backends run at once).

#[path = "../../crates/durable/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use chrono::DateTime;
use common::Backend;
use durable::{CatchUp, Client, Schedule, Status, WorkflowQuery};
use support::{HANG, kill, random};

/// As in `schedule_worker`.
const SCHEDULE: &str = "every-second";
/// Executor processes running at once.
const PROCESSES: usize = 3;

fn command(dir: &Path, url: &str) -> Command {
    support::command(env!("CARGO_BIN_EXE_schedule_worker"), dir, url, "worker")
}

fn spawn(dir: &Path, url: &str) -> Child {
    command(dir, url).spawn().expect("spawn schedule_worker")
}

fn chaos_time() -> Duration {
    let secs = std::env::var("DURABLE_SCHEDULE_CRASH_SECS")
        .map(|s| s.parse().expect("DURABLE_SCHEDULE_CRASH_SECS: seconds"))
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// The tick second a workflow key names (`schedule:every-second@…Z`).
fn tick_of(key: &str) -> i64 {
    let at = key
        .strip_prefix(&format!("schedule:{SCHEDULE}@"))
        .unwrap_or_else(|| panic!("not a tick's key: {key:?}"));
    DateTime::parse_from_rfc3339(at)
        .unwrap_or_else(|e| panic!("{key:?}: {e}"))
        .timestamp()
}

/// The log's lines as (line number, tick second, pid).
fn log_lines(dir: &Path) -> Vec<(usize, i64, u32)> {
    let log = std::fs::read_to_string(dir.join("crash.log")).unwrap_or_default();
    log.lines()
        .enumerate()
        .map(|(n, line)| {
            let (tick, pid) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("malformed log line {line:?}"));
            (n, tick.parse().unwrap(), pid.parse().unwrap())
        })
        .collect()
}

async fn every_tick_fires_once_through_kill_9(backend: Backend) {
    let name = common::unique_name();
    let dir: PathBuf = std::env::temp_dir().join(format!("durable-sched-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = common::empty_database(backend, &name, &dir.join("sched.db")).await;
    let db = common::TestDb::connect(&url).await;
    durable::init(&db).await.unwrap();
    let client = Client::new(&db);
    // The workers declare the same definition: the cursor set here stays.
    let schedule = Schedule::new(SCHEDULE, "* * * * * *", "tick").catch_up(CatchUp::All);
    let first = client
        .declare_schedule(&schedule)
        .await
        .unwrap()
        .next_tick
        .unwrap();

    let mut processes: Vec<Child> = (0..PROCESSES).map(|_| spawn(&dir, &url)).collect();
    let (seed, chaos) = (0x5C4E ^ backend as u64, chaos_time());
    let started = Instant::now();
    let (mut killed, mut outages) = (BTreeSet::new(), 0);
    let mut round = 0;
    while started.elapsed() < chaos {
        round += 1;
        let r = random(seed, round);
        tokio::time::sleep(Duration::from_millis(200 + r % 1000)).await;
        if r.is_multiple_of(10) {
            // Every process at once: the ticks of the outage are late and
            // must be caught up.
            for p in &mut processes {
                if kill(p) {
                    killed.insert(p.id());
                }
            }
            outages += 1;
            tokio::time::sleep(Duration::from_millis(r % 3000)).await;
            processes = (0..PROCESSES).map(|_| spawn(&dir, &url)).collect();
        } else {
            let p = &mut processes[(r / 10) as usize % PROCESSES];
            if kill(p) {
                killed.insert(p.id());
            }
            *p = spawn(&dir, &url);
        }
    }
    client.pause_schedule(SCHEDULE).await.unwrap();
    let info = client.schedule(SCHEDULE).await.unwrap();
    let last = info.last_tick.expect("no tick fired");

    // Wait (with a deadline) for every tick's workflow to finish.
    let query = WorkflowQuery::new()
        .key_prefix(format!("schedule:{SCHEDULE}@"))
        .limit(1000);
    let waited = Instant::now();
    let page = loop {
        let page = client.list(&query).await.unwrap();
        if page.workflows.iter().all(|w| w.status == Status::Completed) {
            break page;
        }
        assert!(
            waited.elapsed() < HANG,
            "ticks' workflows did not finish; see {dir:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for p in &mut processes {
        kill(p);
    }
    assert!(page.next.is_none(), "more than one page of ticks");

    // Exactly one workflow per second from the first tick to the last.
    let expected: BTreeSet<i64> = (first.timestamp()..=last.timestamp()).collect();
    let mut per_tick: BTreeMap<i64, u32> = BTreeMap::new();
    let mut lateness = Vec::new();
    for w in &page.workflows {
        let tick = tick_of(&w.key);
        *per_tick.entry(tick).or_default() += 1;
        lateness.push(w.created_at_ms - tick * 1000);
    }
    let fired: BTreeSet<i64> = per_tick.keys().copied().collect();
    assert_eq!(
        fired, expected,
        "ticks missing or extra (first {first}, last {last})"
    );
    assert!(
        per_tick.values().all(|&n| n == 1),
        "a tick fired twice: {per_tick:?}"
    );
    assert_eq!(info.fired, expected.len() as u64, "the schedule's count");

    // Every tick's step ran; a second run only by a process that was
    // then killed.
    let lines = log_lines(&dir);
    let mut runs: BTreeMap<i64, Vec<(usize, u32)>> = BTreeMap::new();
    for &(n, tick, pid) in &lines {
        runs.entry(tick).or_default().push((n, pid));
    }
    let ran: BTreeSet<i64> = runs.keys().copied().collect();
    assert_eq!(
        ran, expected,
        "a tick's step never ran, or one ran that never fired"
    );
    let mut unexplained = Vec::new();
    let mut reruns = 0;
    for (tick, tick_runs) in &runs {
        for &(n, pid) in &tick_runs[..tick_runs.len() - 1] {
            reruns += 1;
            // (A process runs up to four ticks at once, so which of its
            // last lines were in flight is not known from the log.)
            if !killed.contains(&pid) {
                unexplained.push(format!("tick {tick} ran again after line {n} (pid {pid})"));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "re-runs not caused by a kill: {unexplained:#?}"
    );
    lateness.sort_unstable();
    eprintln!(
        "{backend:?}: {} ticks over {:.0?}, each fired once; {} processes killed ({outages} total outages); \
         {reruns} step re-runs, each in a killed process; fired late by median {} ms, max {} ms",
        expected.len(),
        started.elapsed(),
        killed.len(),
        lateness[lateness.len() / 2],
        lateness[lateness.len() - 1],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

both_backends!(every_tick_fires_once_through_kill_9);
