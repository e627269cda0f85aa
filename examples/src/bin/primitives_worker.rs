//! `primitives_worker`: the process that `tests/primitives_crash.rs` kills
//! with `kill -9` while it sleeps, receives, fans out and streams.
//!
//! `primitives_worker worker` enqueues (idempotently, by key) and runs, on
//! one `Worker` slot:
//! - `sleeper-{i}`: step `a`, a 2 s durable sleep, step `b`;
//! - `receiver-{i}`: `MESSAGES` times `recv("m")` then a step `got`;
//!   returns the messages received;
//! - `fanout-{i}`: spawns `CHILDREN` children (`child`, one step `work`
//!   each), joins them all, returns the sum of their outputs;
//! - `streamer-{i}`: `ITEMS` times a step `produce` then `write_stream("s")`,
//!   then closes the stream;
//!
//! and exits 0 once every one of them is complete. `primitives_worker
//! sender` sends message `n` (0..MESSAGES) to every receiver with the
//! idempotency key `m-{n}`, and exits 0. Every step body first appends
//! `"{workflow} {step} {pid}"` to the append-only log `CRASH_LOG`.
//!
//! Environment: `DATABASE_URL`, `CRASH_LOG` (both required).

use std::time::Duration;

use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, Status, Worker};
use durable_examples::append;

/// Workflows of each kind, messages per receiver, children per fan-out,
/// items per stream (`tests/primitives_crash.rs` checks against the same).
const EACH: u32 = 3;
const MESSAGES: u32 = 10;
const CHILDREN: u32 = 4;
const ITEMS: u32 = 40;

#[tokio::main]
async fn main() -> Result<(), DurableError> {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is required");
    let log = std::env::var("CRASH_LOG").expect("CRASH_LOG is required");
    // Diagnostics to stderr (the test keeps it), as `RUST_LOG` says.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let db = durable::connect(&url).await?;
    durable::init(&db).await?;
    let client = Client::new(&db);
    enqueue_all(&client).await?;
    match std::env::args().nth(1).as_deref() {
        Some("sender") => send_all(&client).await,
        Some("worker") => {
            let worker = Worker::new(&db, registry(&log))
                .concurrency(1)
                .poll_interval(Duration::from_millis(20));
            worker.run(all_complete(client.clone())).await
        }
        _ => panic!("usage: primitives_worker worker|sender"),
    }
}

fn keys() -> impl Iterator<Item = (&'static str, String)> {
    ["sleeper", "receiver", "fanout", "streamer"]
        .into_iter()
        .flat_map(|name| (0..EACH).map(move |i| (name, format!("{name}-{i}"))))
}

async fn enqueue_all(client: &Client) -> Result<(), DurableError> {
    for (name, key) in keys() {
        client
            .enqueue(name, &key, EnqueueOptions::new().key(&key))
            .await?;
    }
    Ok(())
}

async fn send_all(client: &Client) -> Result<(), DurableError> {
    for n in 0..MESSAGES {
        for i in 0..EACH {
            let id = client.handle_by_key(&format!("receiver-{i}")).await?.id();
            client.send_with_key(id, "m", &format!("m-{n}"), &n).await?;
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    Ok(())
}

/// Resolves once every enqueued workflow is complete.
async fn all_complete(client: Client) {
    loop {
        let mut done = true;
        for (_, key) in keys() {
            match client.workflow_by_key(&key).await {
                Ok(w) if w.status == Status::Completed => {}
                _ => done = false,
            }
        }
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A step whose body logs `"{who} {label} {pid}"` first.
async fn logged<T, F>(
    ctx: &Ctx,
    log: &str,
    who: &str,
    name: &str,
    label: String,
    value: F,
) -> Result<T, DurableError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    F: FnOnce() -> T,
{
    let line = format!("{who} {label} {}\n", std::process::id());
    ctx.step(name, || async move {
        append(log, &line);
        tokio::time::sleep(Duration::from_millis(15)).await;
        Ok(value())
    })
    .await
}

fn registry(log: &str) -> Registry {
    let mut registry = Registry::new();
    let l = log.to_string();
    registry.register("sleeper", move |ctx: Ctx, key: String| {
        let l = l.clone();
        async move {
            logged(&ctx, &l, &key, "a", "a#0".into(), || ()).await?;
            ctx.sleep(Duration::from_millis(2_000)).await?;
            logged(&ctx, &l, &key, "b", "b#0".into(), || ()).await
        }
    });
    let l = log.to_string();
    registry.register("receiver", move |ctx: Ctx, key: String| {
        let l = l.clone();
        async move {
            let mut got = Vec::new();
            for n in 0..MESSAGES {
                let message: Option<u32> = ctx.recv("m", Duration::from_secs(600)).await?;
                let message =
                    message.ok_or_else(|| DurableError::custom("no message in 10 min"))?;
                got.push(logged(&ctx, &l, &key, "got", format!("got#{n}"), || message).await?);
            }
            Ok(got)
        }
    });
    registry.register("fanout", move |ctx: Ctx, key: String| async move {
        let mut children = Vec::new();
        for k in 0..CHILDREN {
            children.push(ctx.spawn("child", &format!("{key}-child-{k}")).await?);
        }
        let outputs: Vec<u32> = ctx.join_all(&children).await?;
        Ok(outputs.iter().sum::<u32>())
    });
    let l = log.to_string();
    registry.register("child", move |ctx: Ctx, who: String| {
        let l = l.clone();
        async move {
            let n: u32 = who
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            logged(&ctx, &l, &who, "work", "work#0".into(), || n + 1).await
        }
    });
    let l = log.to_string();
    registry.register("streamer", move |ctx: Ctx, key: String| {
        let l = l.clone();
        async move {
            for n in 0..ITEMS {
                let item: u32 =
                    logged(&ctx, &l, &key, "produce", format!("produce#{n}"), || n).await?;
                ctx.write_stream("s", &item).await?;
            }
            ctx.close_stream("s").await?;
            Ok(ITEMS)
        }
    });
    registry
}
