//! Crash tests of the durable primitives: the `primitives_worker` process
//! (sleeping, receiving, fanning out to spawned children and streaming on
//! one worker slot) and the `sender` process are killed with `kill -9` at
//! random moments, over and over, then run to completion while this
//! process reads the stream. Checked from the database and the append-only
//! side-effect log: no workflow lost, each message received exactly once
//! and in order, each child joined once, each stream item read once and in
//! order, no sleep woke early, and every re-run of a step body explained
//! by a kill in the middle of it.

#[path = "../../crates/durable/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Backend;
use durable::sea_orm::{ConnectionTrait, Statement};
use durable::{Client, Status, StepKind};
use futures::StreamExt;
use support::{finish, kill, random};

/// As in `primitives_worker`.
const EACH: u32 = 3;
const MESSAGES: u32 = 10;
const CHILDREN: u32 = 4;
const ITEMS: u32 = 40;
/// Kill rounds per backend.
const ROUNDS: u64 = 16;

fn command(dir: &Path, url: &str, mode: &str) -> Command {
    let mut cmd = support::command(env!("CARGO_BIN_EXE_primitives_worker"), dir, url, mode);
    cmd.arg(mode);
    cmd
}

async fn primitives_survive_kill_9(backend: Backend) {
    let name = common::unique_name();
    let dir: PathBuf = std::env::temp_dir().join(format!("durable-prim-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = common::empty_database(backend, &name, &dir.join("prim.db")).await;
    let db = common::TestDb::connect(&url).await;
    durable::init(&db).await.unwrap();
    let client = Client::new(&db);

    // The stream reader lives in this process through every kill.
    let reader = {
        let client = client.clone();
        tokio::spawn(async move {
            let id = loop {
                match client.handle_by_key("streamer-0").await {
                    Ok(handle) => break handle.id(),
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            client
                .read_stream::<u32>(id, "s")
                .map(Result::unwrap)
                .collect::<Vec<_>>()
                .await
        })
    };

    let seed = 0x5EED ^ backend as u64;
    let mut killed_workers = BTreeSet::new();
    let mut kills = 0;
    let mut early_exits = Vec::new();
    for round in 0..ROUNDS {
        let mut worker = command(&dir, &url, "worker").spawn().expect("spawn worker");
        let mut sender = command(&dir, &url, "sender").spawn().expect("spawn sender");
        tokio::time::sleep(Duration::from_millis(120 + random(seed, round) % 400)).await;
        if kill(&mut worker) {
            killed_workers.insert(worker.id());
            kills += 1;
        } else {
            early_exits.push(worker.wait().unwrap());
        }
        if kill(&mut sender) {
            kills += 1;
        }
    }
    assert!(
        killed_workers.len() as u64 >= ROUNDS / 2,
        "too few workers were killed mid-run ({} of {ROUNDS}); exits: {early_exits:?}",
        killed_workers.len()
    );
    let mut sender = command(&dir, &url, "sender").spawn().unwrap();
    let mut worker = command(&dir, &url, "worker").spawn().unwrap();
    finish(&mut sender, "sender", &dir).await;
    finish(&mut worker, "worker", &dir).await;

    // Every workflow completed with the right output.
    for i in 0..EACH {
        let got: Vec<u32> = client
            .handle_by_key(&format!("receiver-{i}"))
            .await
            .unwrap()
            .result(Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            got,
            (0..MESSAGES).collect::<Vec<_>>(),
            "receiver-{i}: lost, duplicated or reordered"
        );
        let sum: u32 = client
            .handle_by_key(&format!("fanout-{i}"))
            .await
            .unwrap()
            .result(Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(sum, (1..=CHILDREN).sum::<u32>(), "fanout-{i}");
        let sleeper = client
            .workflow_by_key(&format!("sleeper-{i}"))
            .await
            .unwrap();
        assert_eq!(sleeper.status, Status::Completed);
        let tree = client.tree(sleeper.id).await.unwrap();
        let sleep = tree
            .steps
            .iter()
            .find(|s| s.kind == StepKind::Sleep)
            .unwrap();
        assert!(
            sleep.finished_at_ms.unwrap() >= sleep.wake_at_ms.unwrap(),
            "woke early: {sleep:?}"
        );
        assert_eq!(
            sleep.wake_at_ms.unwrap() - sleep.started_at_ms.unwrap(),
            2_000,
            "the wake-up time moved: {sleep:?}"
        );
    }
    let streamed = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the stream reader did not end")
        .unwrap();
    assert_eq!(
        streamed,
        (0..ITEMS).collect::<Vec<_>>(),
        "stream items lost, duplicated or reordered"
    );

    // Messages: one row per key, all taken; one spawned child per spawn.
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    let expected_messages = i64::from(EACH * MESSAGES);
    assert_eq!(
        count("SELECT COUNT(*) FROM durable_message").await,
        expected_messages
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM durable_message WHERE consumed_position IS NOT NULL").await,
        expected_messages
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM durable_workflow WHERE name = 'child'").await,
        i64::from(EACH * CHILDREN),
        "a spawn was repeated"
    );

    // The log: every re-run of a step body is the last act of a killed worker.
    let log = std::fs::read_to_string(dir.join("crash.log")).unwrap();
    let mut runs: BTreeMap<(String, String), Vec<(usize, u32)>> = BTreeMap::new();
    let mut last_line: BTreeMap<u32, usize> = BTreeMap::new();
    for (n, line) in log.lines().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "malformed log line {line:?}");
        let pid: u32 = fields[2].parse().unwrap();
        runs.entry((fields[0].into(), fields[1].into()))
            .or_default()
            .push((n, pid));
        last_line.insert(pid, n);
    }
    let mut unexplained = Vec::new();
    let mut reruns = 0;
    for (step, step_runs) in &runs {
        for &(n, pid) in &step_runs[..step_runs.len() - 1] {
            reruns += 1;
            if !killed_workers.contains(&pid) || last_line[&pid] != n {
                unexplained.push(format!("{step:?} ran again after line {n} (pid {pid})"));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "re-runs not caused by a kill: {unexplained:#?}"
    );
    let steps = EACH * (2 + MESSAGES + CHILDREN + ITEMS);
    assert_eq!(runs.len(), steps as usize, "a step body never ran");
    eprintln!(
        "{backend:?}: {kills} kills ({} of workers) over {ROUNDS} rounds, {} step runs for {steps} steps ({reruns} re-runs, each by a kill)",
        killed_workers.len(),
        log.lines().count()
    );
}

both_backends!(primitives_survive_kill_9);
