//! Crash tests: real processes killed with `kill -9` at random moments, then
//! run to completion. The invariants are read back from the database and
//! from an append-only side-effect log, never from a process's memory.
//!
//! Every test runs on SQLite (a temp file) and on PostgreSQL (a fresh schema
//! in the database named by `DATABASE_URL`, which must be set: no skipping),
//! set up by the SDK's test harness, `crates/durable/tests/common`.

#[path = "../../crates/durable/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Backend, TestDb};
use durable::sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Statement};
use durable_db::entity::task;
use support::{kill, random};

/// Workflows and steps per workflow the crash worker runs: about 5 s of
/// work, more than the kill loop lets it do, so nearly every kill hits.
const WORKFLOWS: u64 = 14;
const STEPS: u64 = 24;
/// Kill attempts against the crash worker, per backend.
const ITERATIONS: u64 = 30;
/// Longest a run to completion may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(120);

/// A temp directory and a fresh, empty database for one test.
struct Scratch {
    dir: PathBuf,
    url: String,
}

impl Scratch {
    /// `sqlite_file` names the SQLite database inside `dir`.
    async fn new(backend: Backend, sqlite_file: &str) -> Self {
        let name = common::unique_name();
        let dir = std::env::temp_dir().join(format!("durable-crash-{name}"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let url = common::empty_database(backend, &name, &dir.join(sqlite_file)).await;
        Self { dir, url }
    }

    /// A new connection pool on the scratch database.
    async fn db(&self) -> DatabaseConnection {
        TestDb::connect(&self.url).await
    }
}

/// SplitMix64, seeded per test and iteration: reproducible kill times.
/// Wait for a process that should finish on its own; kill it and fail on a hang.
fn finish(child: &mut Child, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > HANG {
            kill(child);
            panic!("{what} did not finish within {HANG:?}: hang");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn worker(s: &Scratch) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crash_worker"));
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(s.dir.join("worker.stderr"));
    cmd.env("DATABASE_URL", &s.url)
        .env("CRASH_LOG", s.dir.join("crash.log"))
        .env("WORKFLOWS", WORKFLOWS.to_string())
        .env("STEPS", STEPS.to_string())
        .stdout(Stdio::null())
        .stderr(stderr.expect("open worker.stderr"));
    cmd
}

/// Every step label of one workflow, as the worker logs them.
fn expected_labels() -> BTreeSet<String> {
    let txns = STEPS / 4;
    let works = (0..STEPS - txns).map(|n| format!("work#{n}"));
    let txns = (0..txns).map(|n| format!("txn#{n}"));
    works
        .chain(txns)
        .chain((0..2).map(|k| format!("sub#{k}")))
        .collect()
}

/// Kill the crash worker at random moments, then let it finish: no workflow
/// is lost, every step body ran at least once and at most once more per kill,
/// and each transaction step's row exists exactly once.
async fn killed_worker_loses_nothing_and_duplicates_only_per_kill(backend: Backend) {
    let s = Scratch::new(backend, "crash.db").await;
    let seed = 0xC0FFEE ^ backend as u64;
    let (mut kills, mut exited, mut killed) = (0u64, 0u64, BTreeSet::new());
    for i in 0..ITERATIONS {
        let mut child = worker(&s).spawn().expect("spawn crash_worker");
        std::thread::sleep(Duration::from_millis(30 + random(seed, i) % 271));
        match child.try_wait().expect("try_wait") {
            Some(status) => {
                assert!(
                    status.success(),
                    "worker failed on its own ({status}); see {:?}",
                    s.dir
                );
                exited += 1;
            }
            None if kill(&mut child) => {
                kills += 1;
                killed.insert(child.id());
            }
            None => exited += 1,
        }
    }
    let status = finish(
        &mut worker(&s).spawn().expect("spawn crash_worker"),
        "crash_worker",
    );
    assert!(
        status.success(),
        "final run failed ({status}); see {:?}/worker.stderr",
        s.dir
    );

    // The database: every workflow and every step is COMPLETED.
    let db = s.db().await;
    let tasks = task::Entity::find()
        .all(&db)
        .await
        .expect("read durable_task");
    let roots: BTreeMap<&str, &task::Model> = tasks
        .iter()
        .filter(|t| t.parent_id.is_none() && t.task_key.starts_with("crash-"))
        .map(|t| (t.task_key.as_str(), t))
        .collect();
    let expected_sum = (0..STEPS).sum::<u64>() + 3;
    let mut lost = 0;
    for i in 0..WORKFLOWS {
        match roots.get(format!("crash-{i}").as_str()) {
            Some(root) if root.status == "COMPLETED" => {
                let out: u64 = serde_json::from_str(root.output.as_deref().unwrap()).unwrap();
                assert_eq!(out, expected_sum, "output of crash-{i}");
            }
            _ => lost += 1,
        }
    }
    let inner: Vec<_> = tasks.iter().filter(|t| t.parent_id.is_some()).collect();
    let unfinished: Vec<_> = inner.iter().filter(|t| t.status != "COMPLETED").collect();

    // The log: who ran, and how often.
    let log = std::fs::read_to_string(s.dir.join("crash.log")).expect("read crash.log");
    assert!(log.ends_with('\n'), "a torn last line in crash.log");
    // (workflow, step) -> the (line number, pid) of each run; pid -> its last line.
    let mut runs: BTreeMap<(String, String), Vec<(usize, u32)>> = BTreeMap::new();
    let mut last_line: BTreeMap<u32, usize> = BTreeMap::new();
    for (n, line) in log.lines().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "malformed log line {line:?}");
        let pid: u32 = fields[2].parse().expect("pid");
        let key = (fields[0].to_string(), fields[1].to_string());
        runs.entry(key).or_default().push((n, pid));
        last_line.insert(pid, n);
    }
    // A step runs again only because the process running it was killed in
    // the middle of it: every run but the last is the last act of a killed process.
    let mut unexplained = Vec::new();
    for (step, step_runs) in &runs {
        for &(n, pid) in &step_runs[..step_runs.len() - 1] {
            if !killed.contains(&pid) || last_line[&pid] != n {
                unexplained.push(format!("{step:?} ran again after line {n} (pid {pid})"));
            }
        }
    }
    let mut expected = BTreeSet::new();
    for i in 0..WORKFLOWS {
        for label in expected_labels() {
            expected.insert((format!("crash-{i}"), label));
        }
    }
    let seen: BTreeSet<_> = runs.keys().cloned().collect();
    let never_ran: Vec<_> = expected.difference(&seen).collect();
    let unknown: Vec<_> = seen.difference(&expected).collect();
    let duplicates = runs.values().map(|r| r.len() as u64 - 1).sum::<u64>();
    let txn_duplicates: u64 = runs
        .iter()
        .filter(|((_, l), _)| l.starts_with("txn"))
        .map(|(_, r)| r.len() as u64 - 1)
        .sum();
    let most = runs.values().map(Vec::len).max().unwrap_or(0) as u64;

    // The transaction steps' own writes.
    let sql = "SELECT workflow_key, step_no FROM crash_effect";
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    let mut effects: Vec<(String, i64)> = Vec::new();
    for r in &rows {
        effects.push((
            r.try_get_by_index(0).unwrap(),
            r.try_get_by_index(1).unwrap(),
        ));
    }
    let distinct: BTreeSet<_> = effects.iter().cloned().collect();
    let wanted: BTreeSet<(String, i64)> = (0..WORKFLOWS)
        .flat_map(|i| {
            (0..STEPS)
                .filter(|j| j % 4 == 3)
                .map(move |j| (format!("crash-{i}"), j as i64))
        })
        .collect();

    eprintln!(
        "crash[{backend:?}]: {ITERATIONS} iterations, {kills} kills, {exited} exited on their own, \
         {duplicates} duplicate executions ({txn_duplicates} of transaction bodies, rolled back), \
         most runs of one step {most}, {lost} lost workflows, {} crash_effect rows for {} transaction steps",
        effects.len(),
        wanted.len()
    );
    assert_eq!(lost, 0, "lost workflows");
    assert!(unfinished.is_empty(), "unfinished rows: {unfinished:?}");
    // Per workflow: its steps, its child workflow and the child's two steps.
    assert_eq!(inner.len() as u64, WORKFLOWS * (STEPS + 3));
    assert!(never_ran.is_empty(), "steps never run: {never_ran:?}");
    assert!(
        unexplained.is_empty(),
        "re-runs not caused by a kill: {unexplained:?}"
    );
    assert!(unknown.is_empty(), "unexpected log entries: {unknown:?}");
    assert!(
        duplicates <= kills,
        "{duplicates} duplicate executions for {kills} kills"
    );
    assert!(
        most <= 1 + kills,
        "a step ran {most} times with {kills} kills"
    );
    assert_eq!(effects.len(), distinct.len(), "duplicate crash_effect rows");
    assert_eq!(
        distinct, wanted,
        "crash_effect is not one row per transaction step"
    );
    std::fs::remove_dir_all(&s.dir).ok();
}

/// Start `ingest` in `s.dir` (its SQLite default file lands there; on
/// PostgreSQL it gets the schema's URL), its stdout streamed line by line.
fn ingest(s: &Scratch, backend: Backend) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ingest"));
    cmd.current_dir(&s.dir)
        .env("INGEST_STEP_DELAY_MS", "5")
        .stdout(Stdio::piped());
    match backend {
        Backend::Sqlite => cmd.env_remove("DATABASE_URL"),
        Backend::Postgres => cmd.env("DATABASE_URL", &s.url),
    };
    let mut child = cmd.spawn().expect("spawn ingest");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// `Some(true)` for a step that ran, `Some(false)` for one replayed, `None`
/// for any other line of `ingest`'s output.
fn verdict(line: &str) -> Option<bool> {
    match line.rsplit(' ').next() {
        Some("EXECUTED") => Some(true),
        Some("REPLAYED") => Some(false),
        _ => None,
    }
}

/// Run `ingest` to the end. Returns its summary line without the
/// executed/replayed counts (they differ between runs), and its step lines
/// in pipeline order without their verdicts.
fn ingest_to_completion(s: &Scratch, backend: Backend) -> (String, Vec<String>) {
    let (mut child, lines) = ingest(s, backend);
    let status = finish(&mut child, "ingest");
    assert!(status.success(), "ingest failed: {status}");
    let lines: Vec<String> = lines.iter().collect();
    let steps = lines
        .iter()
        .filter(|l| verdict(l).is_some())
        .map(|l| l.rsplit_once(' ').unwrap().0.trim().to_string())
        .collect();
    let last = lines
        .iter()
        .find(|l| l.starts_with("ingest complete:"))
        .expect("summary line");
    let (summary, _counts) = last.split_once(" (executed ").expect("step counts");
    (summary.to_string(), steps)
}

/// The root workflow's output, the number of (distinct) chunk rows and the
/// retries recorded on the flaky `publish` step.
async fn ingest_results(s: &Scratch) -> (String, i64, i64, i32) {
    let db = s.db().await;
    let tasks = task::Entity::find().all(&db).await.unwrap();
    let root = tasks
        .iter()
        .find(|t| t.parent_id.is_none() && t.task_key == "ingest")
        .expect("root");
    let unfinished: Vec<_> = tasks.iter().filter(|t| t.status != "COMPLETED").collect();
    assert!(unfinished.is_empty(), "unfinished rows: {unfinished:?}");
    let publish = tasks
        .iter()
        .find(|t| t.name == "publish")
        .expect("publish step");
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let stmt = Statement::from_string(db.get_database_backend(), sql);
            let row = db.query_one_raw(stmt).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    let rows = count("SELECT COUNT(*) FROM ingest_chunk").await;
    let distinct =
        count("SELECT COUNT(*) FROM (SELECT DISTINCT doc_id, chunk_no FROM ingest_chunk) d").await;
    (
        root.output.clone().unwrap(),
        rows,
        distinct,
        publish.retry_count,
    )
}

/// Where one run of `ingest` is killed.
#[derive(Debug)]
enum KillAt {
    /// Once step number `.0` (1-based, pipeline order) or a later one has
    /// just been executed, after `.1` ms: inside the next step, usually.
    Step(usize, u64),
    /// Right after the search index turned the first request away: between
    /// two attempts of the retried `publish` step.
    IndexRefusal,
}

/// Kill `ingest` repeatedly, at points spread over fetch/parse/chunk, inside
/// an `upsert` transaction and between retries of `publish`, then run it to
/// the end: the summary and the workflow output equal an uninterrupted run's,
/// and no chunk row is doubled.
async fn killed_ingest_finishes_with_the_same_summary(backend: Backend) {
    let kills: usize = if backend == Backend::Sqlite { 10 } else { 5 };
    let reference = Scratch::new(backend, "durable-ingest.db").await;
    let (want, steps) = ingest_to_completion(&reference, backend);
    let (want_output, want_rows, _, _) = ingest_results(&reference).await;

    // The plan: kills - 2 points spread over the documents' steps, then one
    // in the upsert of batch 2 (after its embed step), then one in publish.
    let seed = 0x1_96E5 ^ backend as u64;
    let first_embed = steps.iter().position(|l| l.starts_with("embed")).unwrap();
    let embed_2 = 1 + steps
        .iter()
        .position(|l| l.contains("embed") && l.contains("batch 2"))
        .unwrap();
    let spread = kills - 2;
    let mut plan: Vec<KillAt> = (0..spread)
        .map(|k| {
            let (lo, hi) = (k * first_embed / spread + 1, (k + 1) * first_embed / spread);
            let r = random(seed, k as u64);
            KillAt::Step(lo + (r as usize) % (hi - lo + 1), (r >> 32) % 7)
        })
        .collect();
    plan.push(KillAt::Step(embed_2, 3));
    plan.push(KillAt::IndexRefusal);

    let s = Scratch::new(backend, "durable-ingest.db").await;
    let mut killed_at = Vec::new();
    for (i, at) in plan.iter().enumerate() {
        let (mut child, lines) = ingest(&s, backend);
        let mut position = 0;
        let mut due = None;
        while let Ok(line) = lines.recv_timeout(HANG) {
            let ran = verdict(&line);
            position += usize::from(ran.is_some());
            due = match at {
                KillAt::Step(p, ms) if ran == Some(true) && position >= *p => Some(*ms),
                KillAt::IndexRefusal if line.contains("request 1 to the search index failed") => {
                    Some(0)
                }
                _ => None,
            };
            if let Some(ms) = due {
                std::thread::sleep(Duration::from_millis(ms));
                killed_at.push(format!("{at:?} after {line:?}"));
                break;
            }
        }
        assert!(
            due.is_some(),
            "ingest ended or hung before kill {i} ({at:?}); see {:?}",
            s.dir
        );
        assert!(
            kill(&mut child),
            "ingest ended on its own before kill {i} ({at:?})"
        );
    }
    let (got, _) = ingest_to_completion(&s, backend);
    let (output, rows, distinct, retries) = ingest_results(&s).await;
    eprintln!(
        "ingest[{backend:?}]: {} kills: {killed_at:#?}\n  reference:   {want}\n  after kills: {got}; \
         {rows} rows ({distinct} distinct), expected {want_rows}; publish retried {retries} times",
        killed_at.len()
    );
    assert_eq!(
        got, want,
        "summary after kills differs from an uninterrupted run"
    );
    assert_eq!(
        output, want_output,
        "workflow output differs from an uninterrupted run"
    );
    assert_eq!(
        (rows, distinct),
        (want_rows, want_rows),
        "ingest_chunk rows"
    );
    assert!(
        want.contains(&format!(" {want_rows} chunks, {want_rows} rows")),
        "{want}"
    );
    assert!(retries >= 1, "publish succeeded without a recorded retry");
    std::fs::remove_dir_all(&reference.dir).ok();
    std::fs::remove_dir_all(&s.dir).ok();
}

both_backends!(
    killed_worker_loses_nothing_and_duplicates_only_per_kill,
    killed_ingest_finishes_with_the_same_summary,
);
