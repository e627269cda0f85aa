//! `durable workflows list` and `durable workflows show` on a database the
//! SDK wrote, on both backends: filters, JSON that reads back, pages with
//! `--after`, a hostile key printed as text, and an unknown id as exit
//! code 1 with a message on stderr.

mod support;

use durable::{Ctx, DurableError, Uuid};
use serde_json::Value;
use support::{durable, stdout};

const HOSTILE: &str = "'); DROP TABLE durable_workflow; -- <b>\u{1F600}";

/// Three completed orders, one failed with a failed step and a child, and
/// the hostile key.
async fn seed(url: &str) -> Uuid {
    let db = durable::connect(url).await.unwrap();
    durable::init(&db).await.unwrap();
    for i in 0..3 {
        let ctx = Ctx::start_with_key(&db, "order", &format!("order-{i}"), None)
            .await
            .unwrap();
        let _: u32 = ctx.step("charge", || async { Ok(1) }).await.unwrap();
        ctx.complete(&i).await.unwrap();
    }
    let bad = Ctx::start_with_key(&db, "order", "order-bad", None)
        .await
        .unwrap();
    let kid = bad.child("receipt", None).await.unwrap();
    kid.complete(&"r").await.unwrap();
    let failed: Result<u32, _> = bad
        .step("charge", || async {
            Err(DurableError::custom("card declined"))
        })
        .await;
    assert!(failed.is_err());
    bad.fail("charge failed").await.unwrap();
    let odd = Ctx::start_with_key(&db, "odd", HOSTILE, None)
        .await
        .unwrap();
    odd.complete(&0).await.unwrap();
    bad.task_id()
}

async fn lists_and_shows(url: &str) {
    let bad = seed(url).await;

    let all: Value =
        serde_json::from_str(&stdout(&durable(url, &["workflows", "list", "--json"]))).unwrap();
    let keys: Vec<&str> = all["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert!(keys.contains(&HOSTILE), "{keys:?}");
    let created: Vec<i64> = all["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["created_at_ms"].as_i64().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|p| p[0] >= p[1]),
        "newest first: {created:?}"
    );

    let failed = stdout(&durable(url, &["workflows", "list", "--status", "failed"]));
    assert!(
        failed.contains("order-bad") && failed.contains("FAILED"),
        "{failed}"
    );
    assert!(!failed.contains("order-0"), "{failed}");
    let roots = stdout(&durable(
        url,
        &[
            "workflows",
            "list",
            "--roots",
            "--key-prefix",
            "order-",
            "--oldest-first",
            "--json",
        ],
    ));
    let roots: Value = serde_json::from_str(&roots).unwrap();
    let keys: Vec<&str> = roots["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["order-0", "order-1", "order-2", "order-bad"]);

    // Two at a time with --after: the pages join up.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec![
            "workflows",
            "list",
            "--name",
            "order",
            "--limit",
            "2",
            "--json",
        ];
        if let Some(cursor) = &after {
            args.extend(["--after", cursor.as_str()]);
        }
        let page: Value = serde_json::from_str(&stdout(&durable(url, &args))).unwrap();
        for w in page["workflows"].as_array().unwrap() {
            seen.push(w["key"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["order-bad", "order-2", "order-1", "order-0"],
        "pages of two join up"
    );

    let shown = stdout(&durable(url, &["workflows", "show", &bad.to_string()]));
    assert!(shown.contains("order-bad order"), "{shown}");
    assert!(shown.contains("receipt#0 WORKFLOW COMPLETED"), "{shown}");
    assert!(
        shown.contains("charge#0 STEP FAILED") && shown.contains("card declined"),
        "{shown}"
    );
    let tree: Value = serde_json::from_str(&stdout(&durable(
        url,
        &["workflows", "show", "--key", "order-bad", "--json"],
    )))
    .unwrap();
    assert_eq!(tree["workflow"]["status"], "FAILED");
    assert_eq!(tree["steps"].as_array().unwrap().len(), 2);
    let odd = stdout(&durable(url, &["workflows", "show", "--key", HOSTILE]));
    assert!(odd.starts_with(HOSTILE), "printed as it is: {odd}");

    let unknown = Uuid::new_v4();
    let missing = durable(url, &["workflows", "show", &unknown.to_string()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains(&unknown.to_string()));
    let bad_limit = durable(url, &["workflows", "list", "--limit", "0"]);
    assert_eq!(bad_limit.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_limit.stderr).contains("page limit"));
    let bad_cursor = durable(url, &["workflows", "list", "--after", "zz"]);
    assert_eq!(bad_cursor.status.code(), Some(1));

    // Management: retry the failed order, fork a completed one, refuse what
    // the status forbids.
    let id = bad.to_string();
    assert_eq!(
        stdout(&durable(url, &["workflows", "retry", &id])).trim(),
        format!("retried {id}")
    );
    let tree: Value = serde_json::from_str(&stdout(&durable(
        url,
        &["workflows", "show", &id, "--json"],
    )))
    .unwrap();
    assert_eq!(tree["workflow"]["status"], "PENDING");
    assert_eq!(tree["retried"][0]["step"]["key"], "charge#0");
    let again = durable(url, &["workflows", "retry", &id]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a pending workflow cannot be retried"
    );
    assert_eq!(
        stdout(&durable(url, &["workflows", "pause", &id])).trim(),
        format!("paused {id}")
    );
    assert_eq!(
        stdout(&durable(url, &["workflows", "resume", &id])).trim(),
        format!("resumed {id}")
    );
    assert_eq!(
        stdout(&durable(url, &["workflows", "cancel", &id])).trim(),
        format!("cancelled {id}")
    );
    let resumed = durable(url, &["workflows", "resume", &id]);
    assert_eq!(
        resumed.status.code(),
        Some(1),
        "a cancelled workflow cannot be resumed"
    );
    assert!(
        durable(url, &["workflows", "retry", &id, "--cancelled"])
            .status
            .success()
    );
    let order0: Value = serde_json::from_str(&stdout(&durable(
        url,
        &["workflows", "show", "--key", "order-0", "--json"],
    )))
    .unwrap();
    let order0 = order0["workflow"]["id"].as_str().unwrap().to_string();
    let fork = stdout(&durable(
        url,
        &["workflows", "fork", &order0, "--from", "1"],
    ));
    let fork: Uuid = fork.trim().parse().expect("the fork's id");
    let forked: Value = serde_json::from_str(&stdout(&durable(
        url,
        &["workflows", "show", &fork.to_string(), "--json"],
    )))
    .unwrap();
    assert_eq!(forked["workflow"]["status"], "PENDING");
    assert_eq!(forked["steps"][0]["key"], "charge#0", "the copied call");
    let past = durable(url, &["workflows", "fork", &order0, "--from", "9"]);
    assert_eq!(past.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&past.stderr).contains("position 9"));
}

#[tokio::test]
async fn sqlite() {
    support::on_sqlite(|url| async move { lists_and_shows(&url).await }).await;
}

#[tokio::test]
async fn postgres() {
    support::on_postgres(|url| async move { lists_and_shows(&url).await }).await;
}
