//! `#[durable::workflow]` on both backends: the generated `register`
//! makes workers run the function under its name (the function's, or the
//! one given), `enqueue` returns a handle whose result is typed, `run`
//! runs it in this process, and attribute and hand registration mix.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Backend, TestDb, run_worker};
use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Status, Worker};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Order {
    id: u32,
    cents: u64,
}

/// A typed input and output.
#[durable::workflow]
async fn charge(ctx: Ctx, order: Order) -> Result<u64, DurableError> {
    let cents = order.cents;
    ctx.step("charge", || async move { Ok(cents * 2) }).await
}

/// No input, and a name of its own.
#[durable::workflow(name = "billing.ping")]
pub(crate) async fn ping(ctx: Ctx) -> Result<String, DurableError> {
    ctx.step("pong", || async { Ok("pong".to_string()) }).await
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    charge::register(&mut registry);
    ping::register(&mut registry);
    registry.register("by-hand", |_ctx: Ctx, n: u32| async move { Ok(n + 1) });
    registry
}

async fn the_attribute_registers_and_types(backend: Backend) {
    let t = TestDb::new(backend).await;
    assert_eq!((charge::NAME, ping::NAME), ("charge", "billing.ping"));
    let both = registry();
    assert!(both.contains("charge") && both.contains("billing.ping"));
    assert!(
        !both.contains("ping"),
        "the given name replaces the function's"
    );

    // Enqueued, run by a worker, result typed without an annotation.
    let client = Client::new(&t.db);
    let order = Order { id: 7, cents: 21 };
    let handle = charge::enqueue(&client, &order, EnqueueOptions::new().key("order-7"))
        .await
        .unwrap();
    assert_eq!(handle.name(), "charge");
    let by_hand = client
        .enqueue("by-hand", &1u32, EnqueueOptions::new())
        .await
        .unwrap();
    let worker =
        run_worker(Worker::new(&t.db, registry()).poll_interval(Duration::from_millis(20)));
    let doubled = handle.result(Duration::from_secs(30)).await.unwrap();
    assert_eq!(doubled, 42u64);
    assert_eq!(
        by_hand
            .result::<u32>(Duration::from_secs(30))
            .await
            .unwrap(),
        2
    );
    worker.stop().await;
    let summary = client.workflow(handle.id()).await.unwrap();
    assert_eq!(
        (summary.name.as_str(), summary.status),
        ("charge", Status::Completed)
    );
    let input: Order = Ctx::from_id(&t.db, handle.id())
        .await
        .unwrap()
        .input()
        .unwrap();
    assert_eq!(input, order);

    // Run in this process, under the given name.
    let local = Client::with_registry(&t.db, Arc::new(registry()));
    let pong = ping::run(&local, "ping-1", &()).await.unwrap();
    assert_eq!(pong, "pong");
    let row = local.workflow_by_key("ping-1").await.unwrap();
    assert_eq!(
        (row.name.as_str(), row.status),
        ("billing.ping", Status::Completed)
    );
    // The same key again replays the saved output.
    assert_eq!(ping::run(&local, "ping-1", &()).await.unwrap(), "pong");
    // A client without the registry cannot run it inline.
    let err = ping::run(&client, "ping-2", &()).await.unwrap_err();
    assert!(
        matches!(err, DurableError::UnknownWorkflow(ref n) if n == "billing.ping"),
        "{err:?}"
    );
}

both_backends!(the_attribute_registers_and_types);
