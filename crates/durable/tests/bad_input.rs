//! Bad input gets a clear, typed error and loses nothing (guarantee 6):
//! names and payloads with quotes, SQL, NUL bytes, `#`, huge sizes, NaN,
//! values that do not serialize, outputs read back as another type, unknown ids.

mod common;

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Backend, TestDb, counted, root, row_under, step_failed};
use durable::sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, Statement,
};
use durable::{Ctx, DurableError, Executor, Uuid};
use durable_db::entity::{executor, task};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const SQL: &str = "'); DROP TABLE durable_task; --";

/// Names that must be stored and matched as plain text, never as SQL.
fn awkward_names() -> Vec<String> {
    [
        "it's",
        "say \"hi\"",
        SQL,
        "back\\slash\\",
        "ünïcødé 名前 🚀",
        "tag#1",
        "%_ LIKE wildcards",
        "$1 ? :name",
    ]
    .map(String::from)
    .to_vec()
}

/// How many task rows the database holds.
async fn task_count(db: &DatabaseConnection) -> u64 {
    task::Entity::find().count(db).await.unwrap()
}

/// The message of an `InvalidInput` error; anything else fails the test.
fn invalid<T: std::fmt::Debug>(result: Result<T, DurableError>) -> String {
    match result {
        Err(DurableError::InvalidInput(message)) => message,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// A step body that returns `value`.
fn returns<T>(value: T) -> impl FnOnce() -> Ready<Result<T, DurableError>> {
    move || ready(Ok(value))
}

/// A step body that must not run (the step is replayed).
fn never<T>() -> impl FnOnce() -> Ready<Result<T, DurableError>> {
    || panic!("must not run")
}

/// A value whose `Serialize` always fails.
#[derive(Debug, Deserialize)]
struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refuses to serialize"))
    }
}

/// Workflow and step names with quotes, SQL, backslashes, non-ASCII and `#` work and replay.
async fn awkward_names_work_and_replay(backend: Backend) {
    let t = TestDb::new(backend).await;
    let names = awkward_names();
    let calls = Arc::new(AtomicU32::new(0));
    for _run in 0..2 {
        for wf in &names {
            let ctx = Ctx::start(&t.db, wf, Some(json!({ "name": wf })))
                .await
                .unwrap();
            for step in &names {
                let expected = format!("{wf}|{step}");
                let out = ctx.step(step, counted(&calls, expected.clone())).await;
                assert_eq!(out.unwrap(), expected);
            }
            ctx.complete(wf).await.unwrap();
        }
    }
    let n = u32::try_from(names.len()).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), n * n);
    // The table is intact and holds every name exactly as given.
    assert_eq!(task_count(&t.db).await, u64::from(n + n * n));
    for wf in &names {
        let r = root(&t.db, wf).await;
        assert_eq!((&r.name, r.status.as_str()), (wf, "COMPLETED"));
        assert_eq!(r.output, Some(serde_json::to_string(wf).unwrap()));
        for step in &names {
            let s = row_under(&t.db, r.id, &format!("{step}#0")).await;
            assert_eq!(&s.name, step);
            let out = serde_json::to_string(&format!("{wf}|{step}")).unwrap();
            assert_eq!(s.output, Some(out));
        }
    }
}

/// A step named `a#1` and the second call of `a` get distinct keys and outputs.
async fn hash_in_step_names_does_not_collide(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    for _run in 0..2 {
        let ctx = Ctx::start(&t.db, "hashes", None).await.unwrap();
        let mut seen = Vec::new();
        for (name, value) in [("a#1", 1), ("a", 2), ("a", 3), ("a#0", 4)] {
            seen.push(ctx.step(name, counted(&calls, value)).await.unwrap());
        }
        assert_eq!(seen, vec![1, 2, 3, 4]);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let r = root(&t.db, "hashes").await;
    for (key, name, output) in [
        ("a#1#0", "a#1", "1"),
        ("a#0", "a", "2"),
        ("a#1", "a", "3"),
        ("a#0#0", "a#0", "4"),
    ] {
        let s = row_under(&t.db, r.id, key).await;
        assert_eq!(
            (s.name.as_str(), s.output.as_deref()),
            (name, Some(output)),
            "{key}"
        );
    }
}

/// Names of 1024 bytes work and replay; 1025 bytes is InvalidInput and writes nothing.
async fn name_length_limit(backend: Backend) {
    let t = TestDb::new(backend).await;
    let wf = "w".repeat(1024);
    let step = "🚀".repeat(256); // 1024 bytes, 256 chars
    assert_eq!(step.len(), 1024);
    for _run in 0..2 {
        let ctx = Ctx::start(&t.db, &wf, None).await.unwrap();
        let v = ctx.step(&step, returns("long".to_string())).await;
        assert_eq!(v.unwrap(), "long");
        let before = task_count(&t.db).await;
        let msg = invalid(ctx.step(&format!("{step}x"), || async { Ok(0) }).await);
        assert!(msg.contains("1025"), "{msg}");
        invalid(ctx.child(&"c".repeat(1025), None).await);
        assert_eq!(task_count(&t.db).await, before);
    }
    let r = root(&t.db, &wf).await;
    assert_eq!(
        row_under(&t.db, r.id, &format!("{step}#0")).await.name,
        step
    );
    let before = task_count(&t.db).await;
    invalid(Ctx::start(&t.db, &"w".repeat(1025), None).await);
    invalid(Ctx::start_with_key(&t.db, "short", &"k".repeat(1025), None).await);
    assert_eq!(task_count(&t.db).await, before);
}

/// A NUL byte in any name is InvalidInput, and no row of either table is written.
async fn nul_in_names_is_rejected_and_writes_nothing(backend: Backend) {
    let t = TestDb::new(backend).await;
    let executors = || executor::Entity::find().count(&t.db);
    invalid(Ctx::start(&t.db, "a\0b", None).await);
    invalid(Ctx::start_with_key(&t.db, "wf", "key\0", None).await);
    invalid(Executor::new(&t.db).start("\0", "k", None).await);
    let counts = (task_count(&t.db).await, executors().await.unwrap());
    assert_eq!(counts, (0, 0));

    let ctx = Ctx::start(&t.db, "wf", None).await.unwrap();
    let before = task_count(&t.db).await;
    let calls = Arc::new(AtomicU32::new(0));
    invalid(ctx.step("s\0", counted(&calls, 1)).await);
    invalid(ctx.child("c\0", None).await);
    let tx = ctx.transaction("t\0", |_tx| Box::pin(async { Ok(1) }));
    invalid(tx.await);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the closure ran");
    assert_eq!(task_count(&t.db).await, before);
    // The rejected calls took no position: the next step is the first one.
    ctx.step("ok", || async { Ok(1) }).await.unwrap();
    ctx.complete(&1).await.unwrap();
    let s = row_under(&t.db, root(&t.db, "wf").await.id, "ok#0").await;
    assert_eq!(s.sequence, Some(0));
}

/// Empty workflow, key, step and child names are InvalidInput.
async fn empty_names_are_rejected(backend: Backend) {
    let t = TestDb::new(backend).await;
    invalid(Ctx::start(&t.db, "", None).await);
    invalid(Ctx::start_with_key(&t.db, "wf", "", None).await);
    assert_eq!(task_count(&t.db).await, 0);
    let ctx = Ctx::start(&t.db, "wf", None).await.unwrap();
    invalid(ctx.step("", || async { Ok(1) }).await);
    invalid(ctx.child("", None).await);
    assert_eq!(task_count(&t.db).await, 1);
}

/// JSON inputs and outputs with quotes, SQL, NUL characters and non-ASCII are stored and read back exactly.
async fn awkward_json_round_trips(backend: Backend) {
    let t = TestDb::new(backend).await;
    let value = json!({
        "quote": "it's \"quoted\"",
        "sql": SQL,
        "nul": "a\u{0}b",
        "unicode": "ünïcødé 名前 🚀 \u{200b}",
        "backslash": "C:\\path\\",
        "nested": [{"\u{0}key": "\u{0}"}, null, 1.5, -0, u64::MAX],
    });
    let calls = Arc::new(AtomicU32::new(0));
    for _run in 0..2 {
        let ctx = Ctx::start(&t.db, "json", Some(value.clone()))
            .await
            .unwrap();
        let out = ctx.step("echo", counted(&calls, value.clone())).await;
        assert_eq!(out.unwrap(), value);
        let kid = ctx.child("kid", Some(value.clone())).await.unwrap();
        kid.complete(&value).await.unwrap();
        ctx.complete(&value).await.unwrap();
        assert_eq!(
            ctx.get_output::<Value>().await.unwrap(),
            Some(value.clone())
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let r = root(&t.db, "json").await;
    let k = row_under(&t.db, r.id, "kid#0").await;
    let s = row_under(&t.db, r.id, "echo#0").await;
    for text in [&r.input, &r.output, &k.input, &k.output, &s.output] {
        let text = text.as_deref().unwrap();
        assert!(!text.contains('\0'), "a raw NUL reached the database");
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), value);
    }
}

/// A step output with NUL characters replays exactly (stored as the JSON escape).
async fn nul_in_step_output_replays_exactly(backend: Backend) {
    let t = TestDb::new(backend).await;
    let original = "a\u{0}b\u{0}".to_string();
    let calls = Arc::new(AtomicU32::new(0));
    for _run in 0..2 {
        let ctx = Ctx::start(&t.db, "nul", None).await.unwrap();
        let out = ctx.step("s", counted(&calls, original.clone())).await;
        assert_eq!(out.unwrap().as_bytes(), original.as_bytes());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let s = row_under(&t.db, root(&t.db, "nul").await.id, "s#0").await;
    assert_eq!(s.output.as_deref(), Some(r#""a\u0000b\u0000""#));
}

/// A step error and a `fail` message with NUL characters are recorded and replayed, not a database error.
async fn nul_in_error_messages_is_recorded(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "nul_err", None).await.unwrap();
    let first = ctx
        .step::<u32, _, _>("boom", || async { Err(DurableError::custom("bad\0value")) })
        .await;
    assert!(matches!(first, Err(DurableError::Custom(_))), "{first:?}");
    let r = root(&t.db, "nul_err").await;
    let rec = row_under(&t.db, r.id, "boom#0").await;
    assert_eq!(rec.status, "FAILED");
    assert!(rec.error.unwrap().starts_with("bad"));
    drop(ctx);
    let ctx = Ctx::start(&t.db, "nul_err", None).await.unwrap();
    let (_, msg) = step_failed(ctx.step("boom", never::<u32>()).await);
    assert!(msg.starts_with("bad") && msg.ends_with("value"), "{msg:?}");
    ctx.fail("gave up\0here").await.unwrap();
    let r = root(&t.db, "nul_err").await;
    assert_eq!(r.status, "FAILED");
    assert!(r.error.unwrap().starts_with("gave up"));
}

/// A NaN or infinite step output is InvalidInput at the first run, and replays as StepFailed.
async fn nan_step_output_fails_at_first_run(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let ctx = Ctx::start(&t.db, "ratio", None).await.unwrap();
    for (name, value) in [("nan", f64::NAN), ("inf", f64::INFINITY)] {
        let msg = invalid(ctx.step(name, counted(&calls, value)).await);
        assert!(msg.contains(&format!("{name}#0")), "{msg}");
    }
    let r = root(&t.db, "ratio").await;
    for key in ["nan#0", "inf#0"] {
        let s = row_under(&t.db, r.id, key).await;
        assert_eq!((s.status.as_str(), s.output.as_deref()), ("FAILED", None));
        assert!(s.error.unwrap().contains("round trip"));
    }
    drop(ctx);
    let ctx = Ctx::start(&t.db, "ratio", None).await.unwrap();
    for name in ["nan", "inf"] {
        step_failed(ctx.step(name, never::<f64>()).await);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Another workflow is unaffected.
    let other = Ctx::start(&t.db, "other", None).await.unwrap();
    let v: f64 = other.step("fine", || async { Ok(0.5) }).await.unwrap();
    other.complete(&v).await.unwrap();
    assert_eq!(root(&t.db, "other").await.status, "COMPLETED");
}

/// Completing a workflow with NaN is InvalidInput at once, not a null that fails when read back.
async fn nan_workflow_output_is_rejected(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "nan_out", None).await.unwrap();
    let result = ctx.complete(&f64::NAN).await;
    let r = root(&t.db, "nan_out").await;
    assert!(
        matches!(result, Err(DurableError::InvalidInput(_))),
        "complete(NaN) returned {result:?}; the row is now {} with output {:?}",
        r.status,
        r.output
    );
    assert_eq!(r.status, "RUNNING");
    ctx.complete(&1.5).await.unwrap();
    assert_eq!(ctx.get_output::<f64>().await.unwrap(), Some(1.5));
}

/// Outputs that fail to serialize are typed errors (never panics), recorded, and roll back a transaction.
async fn unserializable_outputs_are_typed_errors(backend: Backend) {
    let t = TestDb::new(backend).await;
    t.db.execute_unprepared("CREATE TABLE side_effect (id INTEGER NOT NULL)")
        .await
        .unwrap();
    let ctx = Ctx::start(&t.db, "unser", None).await.unwrap();
    invalid(ctx.step("custom", returns(Refuses)).await);
    let tuple_keys: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    invalid(ctx.step("map", returns(tuple_keys.clone())).await);
    let m = tuple_keys.clone();
    let insert = "INSERT INTO side_effect (id) VALUES (1)";
    let tx = ctx.transaction("tx", |tx| {
        Box::pin(async move {
            tx.execute_unprepared(insert)
                .await
                .map(|_| m)
                .map_err(Into::into)
        })
    });
    invalid(tx.await);
    let select = Statement::from_string(t.db.get_database_backend(), "SELECT id FROM side_effect");
    let rows = t.db.query_all_raw(select).await.unwrap();
    assert!(
        rows.is_empty(),
        "the transaction's write outlived its failed checkpoint"
    );
    invalid(ctx.complete(&Refuses).await);
    let r = root(&t.db, "unser").await;
    assert_eq!(r.status, "RUNNING");
    for key in ["custom#0", "map#0", "tx#0"] {
        assert_eq!(row_under(&t.db, r.id, key).await.status, "FAILED", "{key}");
    }
    drop(ctx);
    let ctx = Ctx::start(&t.db, "unser", None).await.unwrap();
    step_failed(ctx.step("custom", never::<Refuses>()).await);
    ctx.complete(&"done").await.unwrap();
}

/// Replaying a step as another type is InvalidInput naming the step; the record is untouched.
async fn replay_as_other_type_is_typed_error(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "typed", None).await.unwrap();
    let s = ctx.step("greeting", returns("hello".to_string())).await;
    assert_eq!(s.unwrap(), "hello");
    drop(ctx);
    let ctx = Ctx::start(&t.db, "typed", None).await.unwrap();
    let msg = invalid(ctx.step("greeting", never::<u64>()).await);
    assert!(msg.contains("greeting#0"), "{msg}");
    assert!(msg.contains("ctx.patched"), "says what to do: {msg}");
    let r = root(&t.db, "typed").await;
    let rec = row_under(&t.db, r.id, "greeting#0").await;
    assert_eq!(
        (rec.status.as_str(), rec.output.as_deref()),
        ("COMPLETED", Some("\"hello\""))
    );
    // Asked as the recorded type again, it replays.
    let ctx = Ctx::start(&t.db, "typed", None).await.unwrap();
    assert_eq!(
        ctx.step("greeting", never::<String>()).await.unwrap(),
        "hello"
    );
}

/// A server that is not there, or a database it does not have: `connect`
/// fails at once with a typed error naming the server and the cause.
#[tokio::test]
async fn unreachable_postgres_fails_fast_naming_the_server() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://someone:secret@127.0.0.1:{closed}/app");
    let err = tokio::time::timeout(std::time::Duration::from_secs(25), durable::connect(&url))
        .await
        .expect("connect gives up on its own")
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DurableError::ConnectFailed { .. }), "{err:?}");
    assert!(text.contains(&format!("127.0.0.1:{closed}")), "{text}");
    assert!(!text.contains("secret"), "no password: {text}");
    assert!(err.is_transient(), "a server that is not there may come up");
    // A server that answers but has no such database.
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test starts one)");
    let (server, _) = base.rsplit_once('/').unwrap();
    let err = durable::connect(&format!("{server}/no_such_database_here"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DurableError::ConnectFailed { reason, .. } if reason.contains("no_such_database_here")),
        "{err:?}"
    );
    assert!(!err.is_transient(), "a wrong URL stays wrong");
}

/// An 8 MB workflow input and step output are stored and replayed byte-identical.
async fn eight_megabyte_payloads_replay_identically(backend: Backend) {
    let t = TestDb::new(backend).await;
    // 8 MiB of distinct 16-byte records, with a few characters JSON must escape.
    let big: String = (0..(1u32 << 19))
        .map(|i| {
            if i % 64 == 0 {
                format!("{i:011x}'\"\\\0;")
            } else {
                format!("{i:015x};")
            }
        })
        .collect();
    assert!(big.len() >= 8 << 20);
    let input = json!({ "blob": big });
    let calls = Arc::new(AtomicU32::new(0));
    for _run in 0..2 {
        let ctx = Ctx::start(&t.db, "big", Some(input.clone())).await.unwrap();
        let out = ctx
            .step("blob", counted(&calls, big.clone()))
            .await
            .unwrap();
        assert!(out == big, "the replayed output differs");
        ctx.complete(&out.len()).await.unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let r = root(&t.db, "big").await;
    assert!(serde_json::from_str::<Value>(r.input.as_deref().unwrap()).unwrap() == input);
    let s = row_under(&t.db, r.id, "blob#0").await;
    assert!(s.output.as_deref() == Some(serde_json::to_string(&big).unwrap().as_str()));
}

/// Pause, resume and cancel of an unknown id are NotFound naming that id.
async fn unknown_ids_are_not_found(backend: Backend) {
    let t = TestDb::new(backend).await;
    Ctx::start(&t.db, "exists", None).await.unwrap();
    let id = Uuid::new_v4();
    for result in [
        durable::Client::new(&t.db).pause(id).await,
        durable::Client::new(&t.db).resume(id).await,
        durable::Client::new(&t.db).cancel(id).await,
    ] {
        assert!(matches!(result, Err(DurableError::NotFound(x)) if x == id));
    }
    assert_eq!(root(&t.db, "exists").await.status, "RUNNING");
}

/// After a barrage of bad input, an unrelated workflow in the same database resumes and finishes.
async fn unrelated_workflow_survives_bad_input(backend: Backend) {
    let t = TestDb::new(backend).await;
    let calls = Arc::new(AtomicU32::new(0));
    let good = Ctx::start(&t.db, "good", Some(json!({"n": 1}))).await;
    let one = good.unwrap().step("one", counted(&calls, 1u32)).await;

    invalid(Ctx::start(&t.db, "bad\0", None).await);
    invalid(Ctx::start(&t.db, "", None).await);
    invalid(Ctx::start(&t.db, &"x".repeat(1025), None).await);
    let bad = Ctx::start(&t.db, SQL, Some(json!(SQL))).await.unwrap();
    invalid(bad.step("nan", || async { Ok(f64::NAN) }).await);
    invalid(
        bad.step("map", returns(HashMap::from([((0u8, 0u8), 0u8)])))
            .await,
    );
    bad.step("s", returns("text".to_string())).await.unwrap();
    drop(bad);
    let bad = Ctx::start(&t.db, SQL, None).await.unwrap();
    step_failed(bad.step("nan", never::<u64>()).await);
    step_failed(bad.step("map", never::<u64>()).await);
    invalid(bad.step("s", never::<u64>()).await);
    assert!(matches!(
        durable::Client::new(&t.db).cancel(Uuid::new_v4()).await,
        Err(DurableError::NotFound(_))
    ));

    let good = Ctx::start(&t.db, "good", None).await.unwrap();
    let again = good.step("one", never::<u32>()).await.unwrap();
    let two: u32 = good.step("two", || async { Ok(2) }).await.unwrap();
    good.complete(&(again + two)).await.unwrap();
    assert_eq!(
        (one.unwrap(), again, calls.load(Ordering::SeqCst)),
        (1, 1, 1)
    );
    let r = root(&t.db, "good").await;
    assert_eq!(
        (r.status.as_str(), r.output.as_deref(), r.input.as_deref()),
        ("COMPLETED", Some("3"), Some(r#"{"n":1}"#))
    );
    assert_eq!(
        root(&t.db, SQL).await.input.as_deref(),
        Some(serde_json::to_string(SQL).unwrap().as_str())
    );
    // good (root, one, two) + bad (root, nan, map, s).
    assert_eq!(task_count(&t.db).await, 7);
}

both_backends!(
    awkward_names_work_and_replay,
    hash_in_step_names_does_not_collide,
    name_length_limit,
    nul_in_names_is_rejected_and_writes_nothing,
    empty_names_are_rejected,
    awkward_json_round_trips,
    nul_in_step_output_replays_exactly,
    nul_in_error_messages_is_recorded,
    nan_step_output_fails_at_first_run,
    nan_workflow_output_is_rejected,
    unserializable_outputs_are_typed_errors,
    replay_as_other_type_is_typed_error,
    eight_megabyte_payloads_replay_identically,
    unknown_ids_are_not_found,
    unrelated_workflow_survives_bad_input,
);
