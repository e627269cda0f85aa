//! The database the API and the web UI are tested on (the router's tests
//! in `src/commands/serve/tests.rs` include this file by path): orders,
//! a failed one with a child, a workflow whose name and key are hostile,
//! queued mail, a schedule, and a running workflow with an event.
#![allow(dead_code, unreachable_pub)]

use durable::sea_orm::DatabaseConnection;
use durable::{Client, Ctx, DurableError, EnqueueOptions, Queue, Schedule, Uuid};
use serde_json::json;

/// What the seed made that tests act on.
pub struct Seeded {
    /// The failed order (`order-bad`): reserve, a `receipt` child, a
    /// failed charge.
    pub failed: Uuid,
    /// The running inline workflow `approval-live` (one step done, event
    /// `progress` set), to finish or message.
    pub live: Ctx,
}

/// Three completed orders (`order-0..2`: reserve, charge), the failed
/// one, `hostile` as a completed workflow's name and key, a `mail` queue
/// (concurrency 4) with one queued workflow, the schedule `nightly`, and
/// the running `approval-live`.
pub async fn seed(db: &DatabaseConnection, hostile: &str) -> Seeded {
    durable::init(db).await.unwrap();
    for i in 0..3 {
        let ctx = Ctx::start_with_key(db, "order", &format!("order-{i}"), None)
            .await
            .unwrap();
        let _: u32 = ctx.step("reserve", || async { Ok(1) }).await.unwrap();
        let _: u32 = ctx.step("charge", || async { Ok(2) }).await.unwrap();
        ctx.complete(&i).await.unwrap();
    }
    let bad = Ctx::start_with_key(db, "order", "order-bad", Some(json!({"amount": 42})))
        .await
        .unwrap();
    let _: u32 = bad.step("reserve", || async { Ok(1) }).await.unwrap();
    let receipt = bad.child("receipt", None).await.unwrap();
    let _: String = receipt
        .step("render", || async { Ok("pdf".to_string()) })
        .await
        .unwrap();
    receipt.complete(&"r").await.unwrap();
    let failed: Result<u32, _> = bad
        .step("charge", || async {
            Err(DurableError::custom("card declined <b>bold</b>"))
        })
        .await;
    assert!(failed.is_err());
    bad.fail("charge failed").await.unwrap();
    Ctx::start_with_key(db, hostile, hostile, None)
        .await
        .unwrap()
        .complete(&0)
        .await
        .unwrap();
    let client = Client::new(db);
    client
        .declare_queue(&Queue::new("mail").concurrency(4))
        .await
        .unwrap();
    client
        .enqueue(
            "mailer",
            &1,
            EnqueueOptions::new().key("mail-1").queue("mail"),
        )
        .await
        .unwrap();
    client
        .declare_schedule(&Schedule::new("nightly", "0 0 3 * * *", "report"))
        .await
        .unwrap();
    let live = Ctx::start_with_key(db, "approval", "approval-live", None)
        .await
        .unwrap();
    let _: u32 = live.step("ask", || async { Ok(1) }).await.unwrap();
    live.set_event("progress", &json!({"done": 2}))
        .await
        .unwrap();
    Seeded {
        failed: bad.task_id(),
        live,
    }
}
