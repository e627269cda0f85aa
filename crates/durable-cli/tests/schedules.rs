//! `durable schedules ...` on both backends: declare (with every option,
//! and refused declarations that write nothing), list and show as tables
//! and JSON, pause and resume, a manual trigger whose workflow the read
//! model shows, delete, and unknown names as exit code 1.

mod support;

use durable::Uuid;
use serde_json::{Value, json};
use support::{durable, refused, stdout, usage_error};

const HOSTILE: &str = "'); DROP TABLE durable_schedule; -- <b>\u{1F600}";

fn schedules(url: &str) -> Value {
    serde_json::from_str(&stdout(&durable(url, &["schedules", "list", "--json"]))).unwrap()
}

fn show(url: &str, name: &str) -> Value {
    serde_json::from_str(&stdout(&durable(
        url,
        &["schedules", "show", name, "--json"],
    )))
    .unwrap()
}

/// The arguments of `durable schedules declare NAME --cron C --workflow W MORE...`.
fn declare<'a>(name: &'a str, cron: &'a str, workflow: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "schedules",
        "declare",
        name,
        "--cron",
        cron,
        "--workflow",
        workflow,
    ];
    args.extend_from_slice(more);
    args
}

async fn declares_lists_and_triggers(url: String) {
    let url = url.as_str();
    let db = durable::connect(url).await.unwrap();
    durable::init(&db).await.unwrap();
    assert_eq!(schedules(url), json!([]));

    let nightly = declare(
        "nightly",
        "0 0 3 * * *",
        "report",
        &[
            "--time-zone",
            "Europe/Berlin",
            "--input",
            r#"{"to":"ops"}"#,
            "--catch-up",
            "bounded:3",
        ],
    );
    let text = stdout(&durable(url, &nightly));
    assert!(
        text.contains("Europe/Berlin") && text.contains("bounded:3"),
        "{text}"
    );
    stdout(&durable(url, &declare(HOSTILE, "*/5 * * * * *", "w", &[])));

    // Refused: nothing is written.
    let bad_cron = declare("x", "99 * * * * *", "w", &[]);
    assert!(refused(&durable(url, &bad_cron)).contains("cron"));
    let bad_zone = declare("x", "* * * * * *", "w", &["--time-zone", "Mars/Base"]);
    assert!(refused(&durable(url, &bad_zone)).contains("Mars/Base"));
    let bad_input = declare("x", "* * * * * *", "w", &["--input", "{nope"]);
    assert!(usage_error(&durable(url, &bad_input)).contains("--input"));
    let bad_policy = declare("x", "* * * * * *", "w", &["--catch-up", "sometimes"]);
    assert_eq!(
        durable(url, &bad_policy).status.code(),
        Some(2),
        "clap refuses the value"
    );
    let names: Vec<String> = schedules(url)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    let mut expected = vec![HOSTILE.to_string(), "nightly".to_string()];
    expected.sort();
    assert_eq!(names, expected);

    let info = show(url, "nightly");
    assert_eq!(info["workflow"], "report");
    assert_eq!(info["time_zone"], "Europe/Berlin");
    assert_eq!(info["input"], json!({"to": "ops"}));
    assert_eq!(info["catch_up"], json!({"bounded": 3}));
    assert_eq!(
        (info["paused"].clone(), info["fired"].clone()),
        (json!(false), json!(0))
    );
    assert!(info["next_tick"].is_string(), "{info}");
    let table = stdout(&durable(url, &["schedules", "list"]));
    assert!(
        table.starts_with("NAME") && table.contains(HOSTILE) && table.contains("(2 schedules)"),
        "{table}"
    );
    assert!(stdout(&durable(url, &["schedules", "show", HOSTILE])).contains("*/5 * * * * *"));

    assert_eq!(
        stdout(&durable(url, &["schedules", "pause", "nightly"])).trim(),
        "paused nightly"
    );
    assert_eq!(show(url, "nightly")["paused"], true);
    assert_eq!(
        stdout(&durable(url, &["schedules", "resume", "nightly"])).trim(),
        "resumed nightly"
    );
    assert_eq!(show(url, "nightly")["paused"], false);

    let id: Uuid = stdout(&durable(url, &["schedules", "trigger", "nightly"]))
        .trim()
        .parse()
        .expect("the workflow's id");
    let tree: Value = serde_json::from_str(&stdout(&durable(
        url,
        &["workflows", "show", &id.to_string(), "--json"],
    )))
    .unwrap();
    assert_eq!(tree["workflow"]["name"], "report");
    assert_eq!(tree["workflow"]["status"], "PENDING");
    let key = tree["workflow"]["key"].as_str().unwrap();
    assert!(key.starts_with("schedule:nightly@manual:"), "{key}");
    assert_eq!(
        show(url, "nightly")["fired"],
        0,
        "a manual trigger is not a tick"
    );

    assert_eq!(
        stdout(&durable(url, &["schedules", "delete", "nightly"])).trim(),
        "deleted nightly"
    );
    for verb in ["show", "pause", "resume", "delete", "trigger"] {
        let stderr = refused(&durable(url, &["schedules", verb, "nightly"]));
        assert!(stderr.contains("nightly"), "{verb}: {stderr}");
    }
    assert_eq!(schedules(url).as_array().unwrap().len(), 1);
    // The triggered workflow stays after its schedule is gone.
    stdout(&durable(url, &["workflows", "show", &id.to_string()]));
}

#[tokio::test]
async fn sqlite() {
    support::on_sqlite(declares_lists_and_triggers).await;
}

#[tokio::test]
async fn postgres() {
    support::on_postgres(declares_lists_and_triggers).await;
}
