//! `fanout`: a job that fans out to spawned children and joins them.
//!
//! `embed_corpus` splits a corpus into batches and spawns one `embed_batch`
//! child per batch; any worker runs them, under leases of their own, while
//! the parent is suspended in its join. A progress stream tells a reader how
//! far it got. Kill it with Ctrl-C and run it again: finished batches are not
//! embedded again, and the job carries on.
//!
//! ```sh
//! cargo run --bin fanout                      # SQLite file fanout.db
//! DATABASE_URL=postgres://... cargo run --bin fanout
//! ```

use std::time::Duration;

use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Worker};
use futures::StreamExt;

const BATCHES: u32 = 8;

async fn embed_corpus(ctx: Ctx, batches: u32) -> Result<u64, DurableError> {
    let mut children = Vec::new();
    for batch in 0..batches {
        children.push(ctx.spawn("embed_batch", &batch).await?);
    }
    let mut total = 0;
    for (n, child) in children.iter().enumerate() {
        let vectors: u64 = child.join().await?;
        total += vectors;
        ctx.write_stream("progress", &format!("batch {} of {batches} joined", n + 1))
            .await?;
    }
    ctx.close_stream("progress").await?;
    Ok(total)
}

async fn embed_batch(ctx: Ctx, batch: u32) -> Result<u64, DurableError> {
    ctx.step("embed", || async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(100 + u64::from(batch))
    })
    .await
}

#[tokio::main]
async fn main() -> Result<(), DurableError> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://fanout.db".into());
    let db = durable::connect(&url).await?;
    durable::init(&db).await?;
    let mut registry = Registry::new();
    registry.register("embed_corpus", embed_corpus);
    registry.register("embed_batch", embed_batch);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(&db, registry).concurrency(4).run(async {
        stopped.await.ok();
    }));

    let client = Client::new(&db);
    let handle = client
        .enqueue(
            "embed_corpus",
            &BATCHES,
            EnqueueOptions::new().key("corpus-2026"),
        )
        .await?;
    let mut progress = Box::pin(client.read_stream::<String>(handle.id(), "progress"));
    while let Some(line) = progress.next().await {
        println!("{}", line?);
    }
    let total: u64 = handle.result(Duration::from_secs(60)).await?;
    println!("{total} vectors from {BATCHES} batches");
    stop.send(()).ok();
    worker.await.expect("worker task")?;
    Ok(())
}
