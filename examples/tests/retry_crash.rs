//! Crash test of `Client::retry`: the `retry_worker` process fails every
//! order at its `charge` step (the card service is "down"); the fault is
//! fixed, every order is retried, and the worker is killed with `kill -9`
//! at random moments while the retried runs go on, then run to
//! completion. Checked from the database and the append-only side-effect
//! log: every order completes; the calls that completed before the failure
//! (a step and a transaction that inserts a row) never run again; the
//! failed call is kept, round 1, in the tree; and every re-run of a step
//! body after the retry is one a killed worker had in flight.

#[path = "../../crates/durable/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Backend;
use durable::sea_orm::{ConnectionTrait, Statement};
use durable::{Client, Status};
use support::{finish, kill, random};

/// As in `retry_worker`.
const ORDERS: u32 = 8;
const SHIPMENTS: u32 = 10;
/// Kill rounds per backend.
const ROUNDS: u64 = 10;

fn command(dir: &Path, url: &str) -> Command {
    let mut cmd = support::command(env!("CARGO_BIN_EXE_retry_worker"), dir, url, "worker");
    cmd.env("BROKEN_FLAG", dir.join("broken"));
    cmd
}

/// The log's lines from line `from` on, as (line number, key, step, pid).
fn log_lines(dir: &Path, from: usize) -> Vec<(usize, String, String, u32)> {
    let log = std::fs::read_to_string(dir.join("crash.log")).unwrap_or_default();
    log.lines()
        .enumerate()
        .skip(from)
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "malformed log line {line:?}");
            (
                n,
                fields[0].into(),
                fields[1].into(),
                fields[2].parse().unwrap(),
            )
        })
        .collect()
}

async fn retried_orders_survive_kill_9(backend: Backend) {
    let name = common::unique_name();
    let dir: PathBuf = std::env::temp_dir().join(format!("durable-retry-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = common::empty_database(backend, &name, &dir.join("retry.db")).await;
    let db = common::TestDb::connect(&url).await;
    durable::init(&db).await.unwrap();
    let client = Client::new(&db);

    // Phase 1: the card service is down; every order fails at `charge`.
    std::fs::write(dir.join("broken"), b"down").unwrap();
    let mut worker = command(&dir, &url).spawn().expect("spawn worker");
    finish(&mut worker, "the worker", &dir).await;
    let phase_1 = log_lines(&dir, 0);
    let mut first: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (_, key, step, _) in &phase_1 {
        *first.entry((key.clone(), step.clone())).or_default() += 1;
    }
    let mut ids = Vec::new();
    for i in 0..ORDERS {
        let key = format!("order-{i}");
        let w = client.workflow_by_key(&key).await.unwrap();
        assert_eq!(w.status, Status::Failed, "{key}");
        for step in ["reserve#0", "book#0", "charge#0"] {
            assert_eq!(
                first.get(&(key.clone(), step.into())),
                Some(&1),
                "{key} {step}"
            );
        }
        ids.push(w.id);
    }
    assert_eq!(
        first.len(),
        3 * ORDERS as usize,
        "nothing ran past the failure"
    );

    // The fix is deployed; every order is retried; the worker is killed
    // over and over while they run again.
    std::fs::remove_file(dir.join("broken")).unwrap();
    for id in &ids {
        client.retry(*id).await.unwrap();
    }
    let seed = 0x2E77 ^ backend as u64;
    let mut killed = BTreeSet::new();
    for round in 0..ROUNDS {
        let mut worker = command(&dir, &url).spawn().expect("spawn worker");
        tokio::time::sleep(Duration::from_millis(100 + random(seed, round) % 250)).await;
        if kill(&mut worker) {
            killed.insert(worker.id());
        }
    }
    assert!(
        killed.len() as u64 >= ROUNDS / 2,
        "too few workers were killed mid-run ({} of {ROUNDS})",
        killed.len()
    );
    let mut worker = command(&dir, &url).spawn().unwrap();
    finish(&mut worker, "the worker", &dir).await;

    // Every order completed, its failed attempt kept, its effect once.
    for (i, id) in ids.iter().enumerate() {
        let tree = client.tree(*id).await.unwrap();
        assert_eq!(tree.workflow.status, Status::Completed, "order-{i}");
        assert_eq!(tree.workflow.output, Some(serde_json::json!(100)));
        let retried: Vec<_> = tree
            .retried
            .iter()
            .map(|r| (r.round, r.step.key.as_str(), r.step.status))
            .collect();
        assert_eq!(retried, [(1, "charge#0", Status::Failed)], "order-{i}");
    }
    let effects = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM retry_effect",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(effects, i64::from(ORDERS), "a booking was repeated or lost");

    // After the retry: nothing that completed before it ran again, the
    // failed and later calls ran, and each extra run was in flight in a
    // killed worker. A workflow's calls run one after another in the
    // process that owns it, so the one in flight is the last line of that
    // workflow by that process (the worker runs two workflows at once:
    // its last two lines need not be the ones in flight).
    let phase_2 = log_lines(&dir, phase_1.len());
    let mut last_line: BTreeMap<(u32, String), usize> = BTreeMap::new();
    let mut runs: BTreeMap<(String, String), Vec<(usize, u32)>> = BTreeMap::new();
    for (n, key, step, pid) in &phase_2 {
        assert!(
            step != "reserve#0" && step != "book#0",
            "{key} {step} ran again after the retry"
        );
        last_line.insert((*pid, key.clone()), *n);
        runs.entry((key.clone(), step.clone()))
            .or_default()
            .push((*n, *pid));
    }
    let calls = (1 + SHIPMENTS) * ORDERS;
    assert_eq!(runs.len(), calls as usize, "a retried call never ran");
    let mut unexplained = Vec::new();
    let mut reruns = 0;
    for (step, step_runs) in &runs {
        for &(n, pid) in &step_runs[..step_runs.len() - 1] {
            reruns += 1;
            let in_flight = last_line[&(pid, step.0.clone())] == n;
            if !killed.contains(&pid) || !in_flight {
                unexplained.push(format!("{step:?} ran again after line {n} (pid {pid})"));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "re-runs not caused by a kill: {unexplained:#?}"
    );
    eprintln!(
        "{backend:?}: {} of {ROUNDS} workers killed mid-run; after the retry {} step runs for {} steps ({reruns} re-runs, each in flight in a killed worker)",
        killed.len(),
        phase_2.len(),
        calls
    );
    let _ = std::fs::remove_dir_all(&dir);
}

both_backends!(retried_orders_survive_kill_9);
