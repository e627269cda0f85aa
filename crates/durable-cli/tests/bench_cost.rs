//! `durable bench --only cost --json` runs on both backends and its JSON
//! carries the costs of issues 4 and 12: a fresh step is one statement and
//! one commit (a step that starts more than 50 ms after the previous
//! checkpoint was sent also reads its workflow's state), a replayed step
//! writes nothing. (The SDK's
//! own cost test counts statements in-process; this checks the program
//! that reports them.)

use std::process::Command;

use serde_json::Value;

/// Steps per measured window (small: the figures are exact at any size).
const STEPS: &str = "200";

fn bench_cost(database: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_durable"))
        .args([
            "bench", "--only", "cost", "--json", "--quiet", "--steps", STEPS,
        ])
        .args(database)
        .env_remove("RUST_LOG")
        .output()
        .expect("run durable bench");
    assert!(
        output.status.success(),
        "durable bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON document")
}

fn number(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing or not a number in {v:#}"))
}

/// Checks shared by both backends.
fn assert_costs(v: &Value, backend: &str) {
    assert_eq!(v["database"]["backend"], backend);
    assert_eq!(number(v, "/cost/steps"), 200.0);
    // 200 statements at least for 200 steps; a step held up for 50 ms on
    // a busy machine reads once more, which a handful may be.
    let statements = number(v, "/cost/fresh/statements");
    assert!(
        (1.0..1.05).contains(&statements),
        "statements per fresh step: {statements}"
    );
    assert_eq!(
        number(v, "/cost/fresh/writes"),
        1.0,
        "writes (commits) per fresh step"
    );
    assert_eq!(
        number(v, "/cost/replayed/writes"),
        0.0,
        "writes per replayed step"
    );
    // History is read in pages: one read for 200 replayed steps.
    assert_eq!(number(v, "/cost/replayed/statements"), 1.0 / 200.0);
    assert_eq!(number(v, "/cost/replay_complete_statements"), 0.0);
    let targets = v["targets"].as_array().expect("targets");
    let statements = targets
        .iter()
        .find(|t| t["name"] == "fresh step: statements")
        .expect("the statements target is checked");
    assert_eq!(statements["met"], true);
}

/// SQLite (a fresh temp file): one statement per fresh step, no write on replay.
#[test]
fn sqlite_cost_is_one_statement_per_step_and_no_write_on_replay() {
    let v = bench_cost(&["--sqlite"]);
    assert_costs(&v, "sqlite");
    assert!(v["cost"]["fresh"]["round_trips"].is_null());
}

/// PostgreSQL (a fresh schema in DATABASE_URL): the same, and as the server
/// counts it one writing transaction and one WAL flush per fresh step, none
/// per replayed step.
#[test]
fn postgres_cost_is_one_commit_per_step_and_no_write_on_replay() {
    let url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must point at PostgreSQL for this test; run it with scripts/with-postgres",
    );
    assert!(
        url.starts_with("postgres"),
        "DATABASE_URL is not PostgreSQL"
    );
    let v = bench_cost(&["--database-url", &url]);
    assert_costs(&v, "postgres");
    // Transaction ids go to writing transactions only; an autovacuum
    // analyze in the window could add one, never 200.
    let writes = number(&v, "/cost/fresh/write_transactions");
    assert!(
        (1.0..1.05).contains(&writes),
        "write transactions per fresh step: {writes}"
    );
    assert_eq!(number(&v, "/cost/replayed/write_transactions"), 0.0);
    // Every autocommitted statement is a transaction to PostgreSQL, the
    // first step's read included: one per fresh step, and a little more.
    let all = number(&v, "/cost/fresh/transactions");
    assert!(
        (1.0..1.1).contains(&all),
        "transactions per fresh step: {all}"
    );
    // Round trips on the wire: each statement, plus what the driver adds.
    assert!(number(&v, "/cost/fresh/round_trips") >= 1.0);
}
