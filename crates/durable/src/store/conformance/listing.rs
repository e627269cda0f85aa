//! Listing and counting: every filter, every sort both ways, keyset pages
//! that join up to the whole list, and filters that look like SQL.

#![allow(clippy::wildcard_imports)]

use super::*;
use crate::query::{Direction, SortBy, WorkflowPage, WorkflowQuery};

/// The keys of a page, in order.
fn keys(page: &WorkflowPage) -> Vec<String> {
    page.workflows.iter().map(|w| w.key.clone()).collect()
}

async fn list(store: &dyn Store, query: WorkflowQuery) -> Vec<String> {
    keys(&WorkflowPage::read(store, &query).await.expect("list"))
}

async fn count(store: &dyn Store, query: WorkflowQuery) -> u64 {
    query.check().expect("a valid query");
    store.count(&query).await.expect("count")
}

/// Every page of `query`, `limit` at a time, joined.
async fn paged(store: &dyn Store, query: WorkflowQuery, limit: u32) -> Vec<String> {
    let mut query = query.limit(limit);
    let mut all = Vec::new();
    loop {
        let page = WorkflowPage::read(store, &query).await.expect("a page");
        assert!(page.workflows.len() <= limit as usize);
        all.extend(keys(&page));
        match page.next {
            Some(next) => query = query.after(next),
            None => return all,
        }
    }
}

async fn named_root(store: &dyn Store, key: &str, name: &str, owner: Uuid) -> WorkflowRow {
    let started = store
        .start_root(&NewRoot {
            key,
            name,
            input: Some(r#"{"big":"payload"}"#.to_string()),
            owner,
        })
        .await
        .unwrap();
    match started {
        Started::Claimed { row, .. } => row,
        Started::Refused(row) => panic!("refused: {}", wf(&row)),
    }
}

pub(super) async fn list_filters_sorts_and_pages(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let order1 = named_root(s, "order-1", "alpha", e1).await;
    let order2 = named_root(s, "order-2", "beta", e1).await;
    let invoice = named_root(s, "invoice-1", "alpha", e1).await;
    named_root(s, "ORDER-3", "gamma", e1).await;
    named_root(s, "order_x%", "wf", e1).await;
    enqueue(s, &work("q-1", "default")).await;
    let versioned = NewEnqueued {
        app_version: Some("v9".into()),
        ..work("q-2", "default")
    };
    enqueue(s, &versioned).await;
    let l = lease(&order1);
    start_child(s, &child(&order1, 1, "c#0", l)).await;
    let finish = |row: &WorkflowRow, status, output: Option<&str>, error: Option<&str>| {
        let (id, l) = (row.id, lease(row));
        let (output, error) = (output.map(String::from), error.map(String::from));
        async move { assert!(s.finish(id, &l, status, output, error, None).await.unwrap()) }
    };
    finish(&order2, Status::Completed, Some("2"), None).await;
    finish(&invoice, Status::Failed, None, Some("boom")).await;

    let all = [
        "order-1",
        "order-2",
        "invoice-1",
        "ORDER-3",
        "order_x%",
        "q-1",
        "q-2",
        "c#0",
    ];
    let newest_first: Vec<_> = all.iter().rev().copied().collect();
    let asc = |sort| WorkflowQuery::new().sort(sort, Direction::Ascending);

    // The default: everything, newest first, without payloads.
    let page = WorkflowPage::read(s, &WorkflowQuery::new()).await.unwrap();
    assert_eq!(keys(&page), newest_first);
    assert!(page.next.is_none());
    assert!(page.workflows.iter().all(|w| w.input.is_none()));
    let with = WorkflowPage::read(s, &WorkflowQuery::new().with_payloads()).await;
    let with = with.unwrap();
    assert_eq!(
        with.workflows.last().unwrap().input,
        Some(serde_json::json!({"big": "payload"}))
    );
    assert_eq!(with.workflows[6].output, Some(serde_json::json!(2)));
    assert_eq!(count(s, WorkflowQuery::new()).await, 8);

    // Each filter.
    let roots = WorkflowQuery::new().roots_only();
    assert_eq!(list(s, asc(SortBy::Created).roots_only()).await, all[..7]);
    assert_eq!(count(s, roots).await, 7);
    let prefix = |p: &str| asc(SortBy::Created).key_prefix(p);
    assert_eq!(
        list(s, prefix("order")).await,
        ["order-1", "order-2", "order_x%"]
    );
    assert_eq!(
        list(s, prefix("order_")).await,
        ["order_x%"],
        "_ is no wildcard"
    );
    assert_eq!(
        list(s, prefix("order%")).await,
        Vec::<String>::new(),
        "nor is %"
    );
    assert_eq!(list(s, prefix("ORDER")).await, ["ORDER-3"], "case counts");
    let failed = WorkflowQuery::new().status(Status::Failed);
    assert_eq!(list(s, failed.clone()).await, ["invoice-1"]);
    let ended = failed.status(Status::Completed).status(Status::Failed);
    assert_eq!(count(s, ended).await, 2);
    assert_eq!(
        list(s, asc(SortBy::Created).name("alpha")).await,
        ["order-1", "invoice-1"]
    );
    assert_eq!(
        list(s, asc(SortBy::Created).queue("default")).await,
        ["q-1", "q-2"]
    );
    assert_eq!(
        list(s, WorkflowQuery::new().parent(order1.id)).await,
        ["c#0"]
    );
    assert_eq!(
        list(s, WorkflowQuery::new().app_version("v9")).await,
        ["q-2"]
    );
    assert_eq!(count(s, WorkflowQuery::new().created(..0)).await, 0);
    assert_eq!(count(s, WorkflowQuery::new().created(0..)).await, 8);
    assert_eq!(count(s, WorkflowQuery::new().finished(0..)).await, 2);
    assert_eq!(count(s, WorkflowQuery::new().finished(..0)).await, 0);
    let both = WorkflowQuery::new().name("alpha").status(Status::Running);
    assert_eq!(list(s, both).await, ["order-1"]);

    // Sorts: finished ones only by finish, ties broken by id.
    let by_finish = WorkflowQuery::new().sort(SortBy::Finished, Direction::Descending);
    assert_eq!(list(s, by_finish).await, ["invoice-1", "order-2"]);
    assert_eq!(
        list(s, asc(SortBy::Name)).await,
        [
            "order-1",
            "invoice-1",
            "order-2",
            "c#0",
            "ORDER-3",
            "order_x%",
            "q-1",
            "q-2"
        ]
    );
    // Every sort, both ways: pages of 3 join up to the whole list, and
    // descending is ascending reversed.
    for sort in [
        SortBy::Created,
        SortBy::Started,
        SortBy::Finished,
        SortBy::Name,
        SortBy::Status,
    ] {
        let up = list(s, asc(sort)).await;
        let down = list(s, WorkflowQuery::new().sort(sort, Direction::Descending)).await;
        assert_eq!(
            down,
            up.iter().rev().cloned().collect::<Vec<_>>(),
            "{sort:?}"
        );
        assert_eq!(paged(s, asc(sort), 3).await, up, "{sort:?}");
        let desc = WorkflowQuery::new().sort(sort, Direction::Descending);
        assert_eq!(paged(s, desc, 3).await, down, "{sort:?}");
        assert_eq!(paged(s, asc(sort), 1).await, up, "{sort:?}");
    }
    // A page that ends exactly at the last row has no next page.
    let page = WorkflowPage::read(s, &WorkflowQuery::new().limit(8)).await;
    assert!(page.unwrap().next.is_none());
    let page = WorkflowPage::read(s, &WorkflowQuery::new().limit(7)).await;
    assert!(page.unwrap().next.is_some());

    // Filters that look like SQL are only text.
    for hostile in [
        "x' OR '1'='1",
        "%",
        "_",
        "\\",
        "alpha; DROP TABLE durable_workflow",
    ] {
        assert!(list(s, WorkflowQuery::new().name(hostile)).await.is_empty());
        assert!(
            list(s, WorkflowQuery::new().queue(hostile))
                .await
                .is_empty()
        );
        assert!(
            list(s, WorkflowQuery::new().key_prefix(hostile))
                .await
                .is_empty()
        );
        assert!(
            list(s, WorkflowQuery::new().app_version(hostile))
                .await
                .is_empty()
        );
    }
    assert_eq!(count(s, WorkflowQuery::new()).await, 8);
}
