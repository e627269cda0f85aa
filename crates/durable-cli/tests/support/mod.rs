//! What the CLI tests share: running the `durable` binary on a database,
//! its stdout when it succeeded, and a fresh database on either backend.
#![allow(dead_code, unreachable_pub)]

pub mod seed;

use std::future::Future;
use std::process::{Command, Output};

use durable::Uuid;

/// `durable ARGS --database URL`, with no inherited `DATABASE_URL` or
/// `RUST_LOG`.
pub fn durable(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_durable"))
        .args(args)
        .args(["--database", url])
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run durable")
}

/// The stdout of a run that must have succeeded.
pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "durable failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8")
}

/// The stderr of a run that must have failed with exit code 1.
pub fn refused(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit code 1; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The stderr of a run refused as a wrong command line (exit code 2).
pub fn usage_error(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "expected exit code 2; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `scenario` on a new SQLite file.
pub async fn on_sqlite<F: Future<Output = ()>>(scenario: impl FnOnce(String) -> F) {
    let file = std::env::temp_dir().join(format!("durable-cli-{}.db", Uuid::new_v4().simple()));
    scenario(format!("sqlite://{}", file.display())).await;
    let _ = std::fs::remove_file(file);
}

/// `scenario` on a new schema of the PostgreSQL in `DATABASE_URL`.
pub async fn on_postgres<F: Future<Output = ()>>(scenario: impl FnOnce(String) -> F) {
    let base = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at PostgreSQL (scripts/test starts one)");
    let schema = format!("cli_{}", Uuid::new_v4().simple());
    let url = durable::scratch::create_schema(&base, &schema)
        .await
        .unwrap();
    scenario(url).await;
    durable::scratch::drop_schema(&base, &schema).await.unwrap();
}
