//! The CLI's one-call commands on both backends: `migrate` on a fresh
//! database (twice), `send` (with and without a key, a payload that is not
//! JSON, an unknown workflow), `events get` (a value, a key without one),
//! `queues list` (limits and counts, table and JSON), `workflows list`
//! with a time range, and `completions`.

mod support;

use std::process::Command;
use std::time::Duration;

use durable::{Client, Ctx, EnqueueOptions, Queue, Uuid};
use serde_json::{Value, json};
use support::{durable, refused, stdout, usage_error};

async fn one_call_commands(url: &str) {
    // migrate creates the tables; a second run changes nothing.
    assert!(stdout(&durable(url, &["migrate"])).contains("schema up to date"));
    assert!(stdout(&durable(url, &["migrate"])).contains("schema up to date"));
    let db = durable::connect(url).await.unwrap();
    let client = Client::new(&db);

    // send: the message arrives at the workflow's recv; a key sends once.
    let ctx = Ctx::start_with_key(&db, "approval", "order-7", None)
        .await
        .unwrap();
    let id = ctx.task_id().to_string();
    let sent = stdout(&durable(url, &["send", &id, "decision", r#"{"ok": true}"#]));
    assert!(sent.contains("sent to"), "{sent}");
    let got: Option<Value> = ctx.recv("decision", Duration::from_secs(5)).await.unwrap();
    assert_eq!(got, Some(json!({"ok": true})));
    let keyed = ["send", &id, "note", "1", "--key", "k1"];
    assert!(stdout(&durable(url, &keyed)).contains("sent to"));
    assert!(stdout(&durable(url, &keyed)).contains("already sent with key k1"));
    let first: Option<u32> = ctx.recv("note", Duration::from_secs(5)).await.unwrap();
    let second: Option<u32> = ctx.recv("note", Duration::ZERO).await.unwrap();
    assert_eq!(
        (first, second),
        (Some(1), None),
        "one message for two sends"
    );
    let not_json = usage_error(&durable(url, &["send", &id, "decision", "{oops"]));
    assert!(not_json.contains("not JSON"), "{not_json}");
    let unknown = Uuid::new_v4().to_string();
    let missing = refused(&durable(url, &["send", &unknown, "decision", "1"]));
    assert!(missing.contains(&unknown), "{missing}");

    // events get: the latest value as JSON; a key without one is exit 1.
    ctx.set_event("progress", &json!({"done": 3}))
        .await
        .unwrap();
    ctx.set_event("progress", &json!({"done": 4}))
        .await
        .unwrap();
    let value: Value =
        serde_json::from_str(&stdout(&durable(url, &["events", "get", &id, "progress"]))).unwrap();
    assert_eq!(value, json!({"done": 4}));
    let none = refused(&durable(url, &["events", "get", &id, "eta"]));
    assert!(none.contains("no value for event \"eta\""), "{none}");
    ctx.complete(&0).await.unwrap();

    // queues list: limits and where the work is.
    client
        .declare_queue(&Queue::new("mail").concurrency(3).concurrency_per_key(1))
        .await
        .unwrap();
    for key in ["m1", "m2"] {
        client
            .enqueue("mailer", &key, EnqueueOptions::new().key(key).queue("mail"))
            .await
            .unwrap();
    }
    client
        .enqueue(
            "mailer",
            &"later",
            EnqueueOptions::new()
                .key("m3")
                .queue("mail")
                .delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let queues: Value =
        serde_json::from_str(&stdout(&durable(url, &["queues", "list", "--json"]))).unwrap();
    let mail = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "mail")
        .expect("the mail queue is listed");
    assert_eq!(
        (&mail["concurrency"], &mail["concurrency_per_key"]),
        (&json!(3), &json!(1))
    );
    assert_eq!(
        (&mail["running"], &mail["queued"], &mail["waiting"]),
        (&json!(0), &json!(2), &json!(1))
    );
    let table = stdout(&durable(url, &["queues", "list"]));
    let line = table
        .lines()
        .find(|l| l.starts_with("mail "))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells,
        ["mail", "0", "3", "1", "-", "2", "1", "0"],
        "{table}"
    );

    // workflows list with a time range.
    let recent = stdout(&durable(url, &["workflows", "list", "--since", "1h"]));
    assert!(
        recent.contains("order-7") && recent.contains("m3"),
        "{recent}"
    );
    let old = stdout(&durable(
        url,
        &["workflows", "list", "--until", "2000-01-01"],
    ));
    assert!(old.contains("(0 shown, no more)"), "{old}");
    let bad_time = usage_error(&durable(url, &["workflows", "list", "--since", "soon"]));
    assert!(bad_time.contains("is not a time"), "{bad_time}");
}

#[tokio::test]
async fn sqlite() {
    support::on_sqlite(|url| async move { one_call_commands(&url).await }).await;
}

#[tokio::test]
async fn postgres() {
    support::on_postgres(|url| async move { one_call_commands(&url).await }).await;
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_durable()"),
        ("zsh", "#compdef durable"),
        ("fish", "complete -c durable"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_durable"))
            .args(["completions", shell])
            .output()
            .unwrap();
        let script = stdout(&out);
        assert!(
            script.contains(marker),
            "{shell}: {}",
            &script[..script.len().min(300)]
        );
        assert!(
            script.contains("workflows"),
            "{shell}: subcommands completed"
        );
    }
}
