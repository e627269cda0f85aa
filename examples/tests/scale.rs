//! Scale-out: several `worker` processes serve one queue while the test
//! kills them with `kill -9` and restarts them. Checked from the database
//! and from the workers' append-only side-effect log, never from a
//! process's memory: no workflow is lost, no completed step runs again,
//! a step runs twice only when the process running it was killed, and the
//! queue's limits hold at every sample of the running workflows.
//!
//! PostgreSQL needs `DATABASE_URL` (run under `scripts/with-postgres`);
//! without it the PostgreSQL tests fail, they never skip.

#[path = "../../crates/durable/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Backend, TestDb};
use durable::sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Statement};
use durable::{Client, EnqueueOptions, Queue, Uuid};
use durable_db::entity::task;

/// The heavy tests run one at a time: they measure a fleet of processes.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Steps of a `job`, and what it returns (0 + 1 + ... + 9).
const STEPS: u32 = 10;
const SUM: u64 = 45;

/// One multi-process run.
struct Scenario {
    backend: Backend,
    workers: usize,
    workflows: u64,
    step_ms: u64,
    /// The queue's limit over all workers; per concurrency key; per worker.
    queue_limit: u32,
    key_limit: u32,
    keys: u64,
    worker_limit: Option<u32>,
    /// Kill for this long, and at least this often.
    kill_for: Duration,
    min_kills: usize,
    /// Pause between kills (ms): a random value in this range.
    pause_ms: (u64, u64),
}

/// What a run measured.
#[derive(Debug, Default)]
struct Peaks {
    /// RUNNING workflows of live executors (the SDK's own rule), in all,
    /// per concurrency key, per executor; and RUNNING rows of anyone.
    queue: usize,
    key: usize,
    owner: usize,
    raw: usize,
    samples: usize,
}

/// Executors' liveness as the SDK decides it (`owner_alive!` in
/// `crates/durable/src/store/sql/dialect.rs`): a live lease.
fn owner_alive(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "EXISTS (SELECT 1 FROM durable_executor e WHERE e.id = t.owner_id \
             AND e.lease_expires_ms > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)"
        }
        Backend::Sqlite => {
            "EXISTS (SELECT 1 FROM durable_executor e WHERE e.id = t.owner_id \
             AND e.lease_expires_ms > CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))"
        }
    }
}

/// Sample the RUNNING workflows of queue `jobs` every 100 ms until `stop`.
async fn sample(url: String, backend: Backend, stop: Arc<AtomicBool>) -> Peaks {
    let db = TestDb::connect(&url).await;
    let sql = format!(
        "SELECT t.owner_id, t.concurrency_key, CASE WHEN {} THEN 1 ELSE 0 END FROM durable_workflow t \
         WHERE t.parent_id IS NULL AND t.queue = 'jobs' AND t.status = 'RUNNING'",
        owner_alive(backend)
    );
    let mut peaks = Peaks::default();
    while !stop.load(Ordering::SeqCst) {
        let stmt = Statement::from_string(db.get_database_backend(), sql.clone());
        let rows = db
            .query_all_raw(stmt)
            .await
            .expect("sample running workflows");
        let (mut live, mut per_key, mut per_owner) = (0, HashMap::new(), HashMap::new());
        for row in &rows {
            let owner = common::opt_id_at(&db, row, 0);
            let key: Option<String> = row.try_get_by_index(1).unwrap();
            let alive: i32 = row.try_get_by_index(2).unwrap();
            if alive == 1 {
                live += 1;
                *per_owner.entry(owner).or_insert(0) += 1;
                if let Some(key) = key {
                    *per_key.entry(key).or_insert(0) += 1;
                }
            }
        }
        peaks.queue = peaks.queue.max(live);
        peaks.key = peaks.key.max(per_key.values().copied().max().unwrap_or(0));
        peaks.owner = peaks
            .owner
            .max(per_owner.values().copied().max().unwrap_or(0));
        peaks.raw = peaks.raw.max(rows.len());
        peaks.samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peaks
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// SplitMix64: reproducible randomness from a printed seed.
fn random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Worker processes sharing one environment; all killed when dropped.
struct Fleet {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    children: Vec<Child>,
}

impl Fleet {
    fn new(url: &str, step_ms: u64, extra: &[(&'static str, String)]) -> Self {
        let dir = std::env::temp_dir().join(format!("durable-scale-{}", common::unique_name()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let mut env = vec![
            ("DATABASE_URL", url.to_string()),
            (
                "SIDE_EFFECT_LOG",
                dir.join("effects.log").display().to_string(),
            ),
            ("STEP_MS", step_ms.to_string()),
        ];
        env.extend(extra.iter().cloned());
        Self {
            dir,
            env,
            children: Vec::new(),
        }
    }

    fn spawn(&self) -> Child {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("workers.stderr"))
            .expect("open workers.stderr");
        Command::new(env!("CARGO_BIN_EXE_worker"))
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn worker")
    }

    fn start(&mut self, n: usize) {
        for _ in 0..n {
            let child = self.spawn();
            self.children.push(child);
        }
    }

    /// SIGTERM every worker and wait for each to exit on its own.
    fn stop_all(&mut self) -> Vec<ExitStatus> {
        self.children.drain(..).map(terminate).collect()
    }

    fn log(&self) -> Vec<Line> {
        let text = std::fs::read_to_string(self.dir.join("effects.log")).unwrap_or_default();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "a torn line ends the log"
        );
        text.lines().map(Line::parse).collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// SIGTERM and wait (at most 30 s) for a graceful exit.
fn terminate(mut child: Child) -> ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().ok();
            panic!("a worker did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line of the side-effect log: `job-{n} step#{j} {pid} {unix ms}`.
#[derive(Debug, Clone)]
struct Line {
    key: String,
    step: String,
    pid: u32,
    ms: i64,
}

impl Line {
    fn parse(line: &str) -> Self {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 4, "malformed log line {line:?}");
        Line {
            key: f[0].to_string(),
            step: f[1].to_string(),
            pid: f[2].parse().expect("pid"),
            ms: f[3].parse().expect("ms"),
        }
    }
}

/// Enqueue `n` jobs on queue `jobs` (declared with the limits), keys `job-{i}`.
async fn enqueue_jobs(db: &DatabaseConnection, n: u64, queue: Queue, keys: u64) {
    let client = Client::new(db);
    client.declare_queue(&queue).await.unwrap();
    for i in 0..n {
        let mut options = EnqueueOptions::new().key(format!("job-{i}")).queue("jobs");
        if keys > 0 {
            options = options.concurrency_key(format!("k{}", i % keys));
        }
        let handle = client
            .enqueue("job", &serde_json::json!({ "n": i }), options)
            .await
            .unwrap();
        assert!(handle.is_new());
    }
}

async fn completed(db: &DatabaseConnection) -> u64 {
    let stmt = Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) FROM durable_task WHERE parent_id IS NULL AND status = 'COMPLETED'",
    );
    let row = db.query_one_raw(stmt).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap() as u64
}

/// Wait (at most `limit`) until `n` roots are COMPLETED.
async fn wait_completed(db: &DatabaseConnection, n: u64, limit: Duration) {
    let started = Instant::now();
    while completed(db).await < n && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The lease expiry (database clock) of the executor of process `pid`.
async fn lease_of(db: &DatabaseConnection, pid: u32) -> Option<i64> {
    let stmt = Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT MAX(lease_expires_ms) FROM durable_executor WHERE pid = $1",
        [i64::from(pid).into()],
    );
    let row = db.query_one_raw(stmt).await.unwrap()?;
    row.try_get_by_index::<Option<i64>>(0).unwrap()
}

/// A kill: the process, the time just before the signal, its lease then.
struct Kill {
    pid: u32,
    ms: i64,
    lease_ms: i64,
}

/// Every workflow COMPLETED with the right output; returns how many are not.
async fn lost_workflows(db: &DatabaseConnection, n: u64) -> (u64, BTreeMap<(String, String), i64>) {
    let tasks = task::Entity::find()
        .all(db)
        .await
        .expect("read durable_task");
    let roots: HashMap<Uuid, &task::Model> = tasks
        .iter()
        .filter(|t| t.parent_id.is_none())
        .map(|t| (t.id, t))
        .collect();
    assert_eq!(roots.len() as u64, n, "one root per enqueued job");
    let mut lost = 0;
    for root in roots.values() {
        if root.status == "COMPLETED" {
            let out: u64 = serde_json::from_str(root.output.as_deref().unwrap()).unwrap();
            assert_eq!(out, SUM, "output of {}", root.task_key);
        } else {
            lost += 1;
        }
    }
    // (workflow key, step key) -> when the step was completed (database clock).
    let mut done = BTreeMap::new();
    for step in tasks.iter().filter(|t| t.parent_id.is_some()) {
        let root = roots[&step.parent_id.unwrap()];
        assert_eq!(
            step.status, "COMPLETED",
            "{} {}",
            root.task_key, step.task_key
        );
        let at = step.completed_ms.expect("completed_ms");
        done.insert((root.task_key.clone(), step.task_key.clone()), at);
    }
    (lost, done)
}

/// What the side-effect log says about the kills.
struct Verdict {
    duplicates: usize,
    /// Per kill with work in flight: ms to the first, and to the last,
    /// resumption of its workflows by another process.
    first_resume: Vec<i64>,
    all_resumed: Vec<i64>,
    /// Kills whose workflows were resumed only after the dead executor's lease.
    late: Vec<String>,
}

fn judge(lines: &[Line], kills: &[Kill], done: &BTreeMap<(String, String), i64>) -> Verdict {
    let killed: HashMap<u32, &Kill> = kills.iter().map(|k| (k.pid, k)).collect();
    let mut runs: BTreeMap<(String, String), Vec<&Line>> = BTreeMap::new();
    let mut by_workflow: BTreeMap<&str, Vec<&Line>> = BTreeMap::new();
    for line in lines {
        runs.entry((line.key.clone(), line.step.clone()))
            .or_default()
            .push(line);
        by_workflow.entry(&line.key).or_default().push(line);
    }
    for w in by_workflow.values_mut() {
        w.sort_by_key(|l| l.ms);
    }
    let expected: BTreeSet<_> = done.keys().cloned().collect();
    let seen: BTreeSet<_> = runs.keys().cloned().collect();
    assert_eq!(seen, expected, "the log and the completed steps differ");
    let mut unexplained = Vec::new();
    for (step, step_runs) in &mut runs {
        step_runs.sort_by_key(|l| l.ms);
        // No run after the step was completed.
        for run in step_runs.iter() {
            if run.ms > done[step] {
                unexplained.push(format!(
                    "{step:?} ran at {} after its completion at {}",
                    run.ms, done[step]
                ));
            }
        }
        // Every run but the last is the last act, for that workflow, of a
        // process that was killed, and the next run began after the kill.
        for pair in step_runs.windows(2) {
            let (early, next) = (pair[0], pair[1]);
            let last_of_pid = by_workflow[early.key.as_str()]
                .iter()
                .rfind(|l| l.pid == early.pid)
                .map(|l| (l.ms, &l.step));
            match killed.get(&early.pid) {
                Some(kill)
                    if next.ms >= kill.ms && last_of_pid == Some((early.ms, &early.step)) => {}
                _ => unexplained.push(format!("{step:?} ran again: {early:?} then {next:?}")),
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "re-runs not caused by a kill: {unexplained:#?}"
    );
    let duplicates = runs.values().map(|r| r.len() - 1).sum();

    let (mut first_resume, mut all_resumed, mut late) = (Vec::new(), Vec::new(), Vec::new());
    for kill in kills {
        // Its workflows in flight: last line by then from it, more lines after.
        let mut resumed = Vec::new();
        for w in by_workflow.values() {
            let before = w.iter().rfind(|l| l.ms < kill.ms);
            let after = w.iter().find(|l| l.ms >= kill.ms);
            if let (Some(before), Some(after)) = (before, after)
                && before.pid == kill.pid
            {
                resumed.push(after.ms);
            }
        }
        if let (Some(first), Some(last)) = (resumed.iter().min(), resumed.iter().max()) {
            first_resume.push(first - kill.ms);
            all_resumed.push(last - kill.ms);
            if *first >= kill.lease_ms {
                late.push(format!(
                    "pid {} killed at {}: resumed at {first}, its lease ran to {}",
                    kill.pid, kill.ms, kill.lease_ms
                ));
            }
        }
    }
    Verdict {
        duplicates,
        first_resume,
        all_resumed,
        late,
    }
}

fn median_max(v: &[i64]) -> (i64, i64) {
    let mut v = v.to_vec();
    v.sort_unstable();
    (
        v.get(v.len() / 2).copied().unwrap_or(-1),
        v.last().copied().unwrap_or(-1),
    )
}

/// Run the scenario: enqueue, start the fleet, kill and restart workers,
/// let everything finish, stop gracefully, then check.
async fn kill_and_restart(s: Scenario) {
    let _serial = SERIAL.lock().await;
    let t = TestDb::new(s.backend).await;
    let mut queue = Queue::new("jobs").concurrency(s.queue_limit);
    queue = queue.concurrency_per_key(s.key_limit);
    enqueue_jobs(&t.db, s.workflows, queue, s.keys).await;
    let mut env = vec![
        ("JOBS_CONCURRENCY", s.queue_limit.to_string()),
        ("KEY_LIMIT", s.key_limit.to_string()),
    ];
    if let Some(limit) = s.worker_limit {
        env.push(("WORKER_LIMIT", limit.to_string()));
    }
    let mut fleet = Fleet::new(&t.url, s.step_ms, &env);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample(t.url.clone(), s.backend, stop.clone()));
    fleet.start(s.workers);

    let seed = now_ms() as u64;
    let mut rng = seed;
    let mut kills = Vec::new();
    let started = Instant::now();
    while (started.elapsed() < s.kill_for || kills.len() < s.min_kills)
        && started.elapsed() < s.kill_for * 3
        && completed(&t.db).await < s.workflows
    {
        let (lo, hi) = s.pause_ms;
        tokio::time::sleep(Duration::from_millis(lo + random(&mut rng) % (hi - lo))).await;
        let victim = (random(&mut rng) % s.workers as u64) as usize;
        let pid = fleet.children[victim].id();
        let before = lease_of(&t.db, pid).await;
        let ms = now_ms();
        fleet.children[victim].kill().expect("kill -9");
        fleet.children[victim].wait().expect("reap");
        let after = lease_of(&t.db, pid).await;
        let lease_ms = before.max(after).unwrap_or(ms);
        kills.push(Kill { pid, ms, lease_ms });
        fleet.children[victim] = fleet.spawn();
    }
    let kill_phase = started.elapsed();
    wait_completed(&t.db, s.workflows, Duration::from_secs(120)).await;
    stop.store(true, Ordering::SeqCst);
    let peaks = sampler.await.unwrap();
    for status in fleet.stop_all() {
        assert!(
            status.success(),
            "a worker failed at shutdown: {status}; see {:?}",
            fleet.dir
        );
    }

    let (lost, done) = lost_workflows(&t.db, s.workflows).await;
    let verdict = judge(&fleet.log(), &kills, &done);
    let (first_med, first_max) = median_max(&verdict.first_resume);
    let (all_med, all_max) = median_max(&verdict.all_resumed);
    eprintln!(
        "scale[{:?}] seed {seed}: {} workflows x {STEPS} steps on {} workers, {} kills in {kill_phase:?}, \
         {} duplicate step runs (all interrupted by a kill), {lost} lost; \
         kill -> first resumption: median {first_med} ms, max {first_max} ms; \
         kill -> all its workflows resumed: median {all_med} ms, max {all_max} ms ({} kills with work in flight); \
         peaks over {} samples: queue {}/{}, per key {}/{}, per executor {}/{}, RUNNING rows incl. dead owners {}",
        s.backend,
        s.workflows,
        s.workers,
        kills.len(),
        verdict.duplicates,
        verdict.first_resume.len(),
        peaks.samples,
        peaks.queue,
        s.queue_limit,
        peaks.key,
        s.key_limit,
        peaks.owner,
        s.worker_limit.map_or("-".to_string(), |l| l.to_string()),
        peaks.raw,
    );
    assert_eq!(lost, 0, "lost workflows; see {:?}", fleet.dir);
    assert!(kills.len() >= s.min_kills, "only {} kills", kills.len());
    let per_worker = s.worker_limit.unwrap_or(s.queue_limit) as usize;
    assert!(
        verdict.duplicates <= kills.len() * per_worker,
        "{} duplicates for {} kills",
        verdict.duplicates,
        kills.len()
    );
    assert!(peaks.samples > 50, "too few samples: {}", peaks.samples);
    assert!(
        peaks.queue <= s.queue_limit as usize,
        "queue limit exceeded: {peaks:?}"
    );
    assert!(
        peaks.key <= s.key_limit as usize,
        "per-key limit exceeded: {peaks:?}"
    );
    if let Some(limit) = s.worker_limit {
        assert!(
            peaks.owner <= limit as usize,
            "per-executor limit exceeded: {peaks:?}"
        );
    }
    assert_eq!(
        peaks.queue, s.queue_limit as usize,
        "the queue limit was never reached"
    );
    assert_eq!(
        peaks.key, s.key_limit as usize,
        "the per-key limit was never reached"
    );
    assert!(!verdict.first_resume.is_empty(), "no kill hit running work");
    // A dead executor's work is taken over when its death is known (its
    // process gone on this host), not when its lease ends.
    assert!(
        verdict.late.is_empty(),
        "resumed only after the lease expired: {:#?}",
        verdict.late
    );
    assert!(
        verdict.first_resume.len() * 2 >= kills.len(),
        "most kills found nothing running: {} of {}",
        verdict.first_resume.len(),
        kills.len()
    );
    std::fs::remove_dir_all(&fleet.dir).ok();
}

/// 4 workers on PostgreSQL, 500 jobs, one `kill -9` about every second for
/// 30 s: nothing lost, no completed step re-run, limits held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fleet_survives_kill_9() {
    kill_and_restart(Scenario {
        backend: Backend::Postgres,
        workers: 4,
        workflows: 500,
        step_ms: 90,
        queue_limit: 12,
        key_limit: 2,
        keys: 10,
        worker_limit: Some(6),
        kill_for: Duration::from_secs(30),
        min_kills: 25,
        pause_ms: (700, 1300),
    })
    .await;
}

/// One SQLite worker killed and restarted over and over: nothing lost, no
/// completed step re-run, limits held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_survives_kill_9() {
    kill_and_restart(Scenario {
        backend: Backend::Sqlite,
        workers: 1,
        workflows: 100,
        step_ms: 60,
        queue_limit: 4,
        key_limit: 2,
        keys: 3,
        worker_limit: None,
        kill_for: Duration::from_secs(10),
        min_kills: 10,
        pause_ms: (400, 1000),
    })
    .await;
}

/// SIGTERM stops a worker gracefully: its workflows stop at a step
/// boundary and are released (PENDING, no owner), none is left RUNNING, and
/// a new worker finishes them without running any step twice.
async fn graceful_shutdown_hands_over(backend: Backend) {
    let _serial = SERIAL.lock().await;
    let t = TestDb::new(backend).await;
    let n = 6;
    enqueue_jobs(&t.db, n, Queue::new("jobs").concurrency(8), 0).await;
    let mut fleet = Fleet::new(&t.url, 300, &[("JOBS_CONCURRENCY", "8".into())]);
    fleet.start(1);
    let pid = fleet.children[0].id();
    // Wait until every job has run a step, then stop the worker.
    let started = Instant::now();
    while fleet
        .log()
        .iter()
        .map(|l| l.key.clone())
        .collect::<BTreeSet<_>>()
        .len()
        < n as usize
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "jobs did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = fleet.stop_all().pop().unwrap();
    assert!(status.success(), "graceful exit: {status}");

    let tasks = task::Entity::find().all(&t.db).await.unwrap();
    let roots: Vec<_> = tasks.iter().filter(|r| r.parent_id.is_none()).collect();
    assert!(roots.iter().all(|r| r.status != "RUNNING"), "{roots:#?}");
    let released = roots.iter().filter(|r| r.status == "PENDING").count();
    assert!(released > 0, "every job finished before the SIGTERM");
    for r in &roots {
        assert!(
            r.status == "COMPLETED" || (r.status == "PENDING" && r.owner_id.is_none()),
            "{r:?}"
        );
    }
    let lease = lease_of(&t.db, pid)
        .await
        .expect("the worker's executor row");
    assert!(lease < now_ms(), "the stopped worker's lease is still live");

    fleet.start(1);
    wait_completed(&t.db, n, Duration::from_secs(60)).await;
    for status in fleet.stop_all() {
        assert!(status.success());
    }
    let (lost, done) = lost_workflows(&t.db, n).await;
    assert_eq!(lost, 0);
    let verdict = judge(&fleet.log(), &[], &done);
    assert_eq!(verdict.duplicates, 0, "a graceful stop re-ran steps");
    eprintln!(
        "graceful[{backend:?}]: {released} of {n} jobs released at SIGTERM, all finished by a new worker"
    );
    std::fs::remove_dir_all(&fleet.dir).ok();
}

both_backends!(graceful_shutdown_hands_over);
