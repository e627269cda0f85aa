//! `Client::list` and `Client::count` on real workflows: keyset pages that
//! neither repeat nor skip while work starts and finishes between them,
//! one statement a page, cursors through text and JSON, and bad queries
//! refused with a typed error before anything is read.

mod common;

use std::collections::HashSet;

use common::{Backend, TestDb};
use durable::{
    Client, Ctx, Cursor, Direction, DurableError, EnqueueOptions, MAX_PAGE, SortBy, Status,
    WorkflowPage, WorkflowQuery,
};
use serde_json::json;

async fn enqueue_jobs(client: &Client, from: u32, to: u32) {
    for i in from..to {
        let options = EnqueueOptions::new().key(format!("job-{i:04}"));
        client
            .enqueue("job", &json!({ "i": i }), options)
            .await
            .unwrap();
    }
}

/// 250 workflows paged 100 at a time, newest first, while 20 more arrive
/// and 10 already listed finish between pages: every one of the 250 is
/// listed once, none of the newcomers (they sort before the first page),
/// and the count agrees.
async fn pages_neither_repeat_nor_skip_while_work_changes(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    enqueue_jobs(&client, 0, 250).await;
    let query = WorkflowQuery::new().name("job").limit(100);
    // The whole list in one page first: what paging must give.
    let whole = client.list(&query.clone().limit(1000)).await.unwrap();
    let expected: Vec<String> = whole.workflows.iter().map(|w| w.key.clone()).collect();
    let mut by_creation = whole.workflows.clone();
    by_creation.sort_by_key(|w| std::cmp::Reverse((w.created_at_ms, w.id)));
    assert_eq!(by_creation, whole.workflows, "newest first, ties by id");
    let mut seen = Vec::new();
    let mut query_now = query.clone();
    let mut pages = 0;
    loop {
        let page = client.list(&query_now).await.unwrap();
        pages += 1;
        seen.extend(page.workflows.iter().map(|w| w.key.clone()));
        if pages == 1 {
            enqueue_jobs(&client, 250, 270).await;
            for w in &page.workflows[..10] {
                let ctx = Ctx::from_id(&t.db, w.id).await.unwrap();
                ctx.complete(&"done").await.unwrap();
            }
        }
        match page.next {
            Some(next) => query_now = query_now.after(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 250);
    assert_eq!(client.count(&query).await.unwrap(), 270);
    let done = query.clone().status(Status::Completed);
    assert_eq!(client.count(&done).await.unwrap(), 10);
    let listed = client.list(&done).await.unwrap();
    let keys: HashSet<_> = listed.workflows.iter().map(|w| w.key.clone()).collect();
    assert_eq!(keys, expected[..10].iter().cloned().collect::<HashSet<_>>());
    assert!(listed.workflows.iter().all(|w| w.finished_at_ms.is_some()));
}

/// A page is one statement, at any depth; a count is one.
async fn a_page_is_one_statement(backend: Backend) {
    let t = TestDb::new(backend).await;
    enqueue_jobs(&Client::new(&t.db), 0, 30).await;
    let (db, counter) = t.counted().await;
    let client = Client::new(&db);
    let mut query = WorkflowQuery::new().limit(10);
    for _ in 0..3 {
        let before = counter.total();
        let page = client.list(&query).await.unwrap();
        assert_eq!(counter.total() - before, 1, "one statement a page");
        assert_eq!(page.workflows.len(), 10);
        if let Some(next) = page.next {
            query = query.after(next);
        }
    }
    let before = counter.total();
    assert_eq!(client.count(&WorkflowQuery::new()).await.unwrap(), 30);
    assert_eq!(counter.total() - before, 1, "one statement a count");
}

/// A cursor goes through text and JSON unchanged and keeps paging.
async fn cursors_survive_text_and_json(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    enqueue_jobs(&client, 0, 5).await;
    let by_name = WorkflowQuery::new()
        .sort(SortBy::Name, Direction::Ascending)
        .limit(2);
    let whole = client.list(&by_name.clone().limit(5)).await.unwrap();
    let page = client.list(&by_name).await.unwrap();
    let next = page.next.clone().expect("more pages");
    let token = next.to_string();
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert_eq!(token.parse::<Cursor>().unwrap(), next);
    let json = serde_json::to_string(&page).unwrap();
    let back: WorkflowPage = serde_json::from_str(&json).unwrap();
    assert_eq!(back, page);
    assert_eq!(json!(back.next.clone().unwrap()), json!(token));
    let second = client
        .list(&by_name.clone().after(back.next.unwrap()))
        .await
        .unwrap();
    assert_eq!(second.workflows, whole.workflows[2..4]);
}

/// Every bad query is refused with `InvalidInput`, and nothing is read or
/// written (the statement count does not move).
#[allow(clippy::reversed_empty_ranges)] // ranges that end before they start are the point
async fn bad_queries_are_typed_errors(backend: Backend) {
    let t = TestDb::new(backend).await;
    enqueue_jobs(&Client::new(&t.db), 0, 3).await;
    let (db, counter) = t.counted().await;
    let client = Client::new(&db);
    let by_name = WorkflowQuery::new()
        .sort(SortBy::Name, Direction::Ascending)
        .limit(1);
    let cursor = client.list(&by_name).await.unwrap().next.unwrap();
    let before = counter.total();
    let bad = [
        WorkflowQuery::new().limit(0),
        WorkflowQuery::new().limit(MAX_PAGE + 1),
        WorkflowQuery::new().name(""),
        WorkflowQuery::new().name("a\0b"),
        WorkflowQuery::new().name("n".repeat(1025)),
        WorkflowQuery::new().queue("q\0"),
        WorkflowQuery::new().app_version(""),
        WorkflowQuery::new().key_prefix("k\0"),
        WorkflowQuery::new().key_prefix("k".repeat(1025)),
        WorkflowQuery::new()
            .roots_only()
            .parent(durable::Uuid::new_v4()),
        WorkflowQuery::new().created(10..5),
        WorkflowQuery::new().finished(10..=4),
        WorkflowQuery::new().after(cursor.clone()),
        WorkflowQuery::new()
            .sort(SortBy::Name, Direction::Descending)
            .after(cursor),
    ];
    for query in &bad {
        let listed = client.list(query).await;
        assert!(
            matches!(listed, Err(DurableError::InvalidInput(_))),
            "{query:?}: {listed:?}"
        );
        let counted = client.count(query).await;
        assert!(
            matches!(counted, Err(DurableError::InvalidInput(_))),
            "{query:?}: {counted:?}"
        );
    }
    assert_eq!(counter.total(), before, "a bad query reads nothing");
    for token in ["", "zz", "7b7d", "abc", &"00".repeat(5000)] {
        let parsed = token.parse::<Cursor>();
        assert!(
            matches!(parsed, Err(DurableError::InvalidInput(_))),
            "{token:?}"
        );
    }
    let hostile: Result<WorkflowPage, _> = serde_json::from_value(json!({
        "workflows": [], "next": "not hex"
    }));
    assert!(hostile.is_err());
    // An unknown parent or a filter nothing matches is an empty page.
    let none = client
        .list(&WorkflowQuery::new().parent(durable::Uuid::new_v4()))
        .await
        .unwrap();
    assert!(none.workflows.is_empty() && none.next.is_none());
}

/// `Ctx::from_id` reattaches to a root found by a list: it goes on from
/// its history (a step done before is not run again), replays once
/// finished, and reads its input as a type. Children and unknown ids are
/// refused.
async fn reattach_by_id_and_read_the_input(backend: Backend) {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Order {
        cents: i64,
    }
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let first = Ctx::start_with_key(&t.db, "charge", "order-9", Some(json!({"cents": 5})))
        .await
        .unwrap();
    let runs = std::sync::atomic::AtomicU32::new(0);
    let charge = || async {
        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, DurableError>(5)
    };
    let _: i64 = first.step("charge", charge).await.unwrap();
    let kid = first.child("receipt", None).await.unwrap();
    drop(first);

    let page = client
        .list(&WorkflowQuery::new().name("charge"))
        .await
        .unwrap();
    let id = page.workflows[0].id;
    let again = Ctx::from_id(&t.db, id).await.unwrap();
    assert_eq!(again.input::<Order>().unwrap(), Order { cents: 5 });
    assert!(matches!(
        again.input::<u32>(),
        Err(DurableError::Serialization(_))
    ));
    let charged: i64 = again.step("charge", charge).await.unwrap();
    assert_eq!(charged, 5);
    assert_eq!(
        runs.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "replayed, not run"
    );
    again.complete(&"ok").await.unwrap();
    let replay = Ctx::from_id(&t.db, id).await.unwrap();
    let _: i64 = replay.step("charge", charge).await.unwrap();
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(client.workflow(id).await.unwrap().status, Status::Completed);

    let child = Ctx::from_id(&t.db, kid.task_id()).await;
    assert!(
        matches!(child, Err(DurableError::InvalidInput(_))),
        "{child:?}"
    );
    let unknown = durable::Uuid::new_v4();
    let missing = Ctx::from_id(&t.db, unknown).await;
    assert!(matches!(missing, Err(DurableError::NotFound(x)) if x == unknown));
    let bare = Ctx::start_with_key(&t.db, "bare", "bare-1", None)
        .await
        .unwrap();
    assert_eq!(bare.input::<Option<u32>>().unwrap(), None);
}

both_backends!(
    reattach_by_id_and_read_the_input,
    pages_neither_repeat_nor_skip_while_work_changes,
    a_page_is_one_statement,
    cursors_survive_text_and_json,
    bad_queries_are_typed_errors,
);
