//! OpenTelemetry export (feature `otlp`): a registered workflow run on
//! each backend, its spans sent over OTLP/HTTP to a collector stand-in on
//! loopback, which receives the run's `workflow.run` span with the
//! workflow's id and its `step` spans.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::{Backend, TestDb};
use durable::{Client, Ctx, Registry};
use tracing_subscriber::layer::SubscriberExt;

/// A collector stand-in: answers every request 200 and hands over the
/// bodies of POSTs to `/v1/traces`.
fn collector() -> (String, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            let mut traces = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("post /v1/traces") {
                    traces = true;
                }
                if let Some(n) = lower.strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            if traces {
                let _ = tx.send(body);
            }
        }
    });
    (url, rx)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn exported(backend: Backend) {
    let t = TestDb::new(backend).await;
    let (url, bodies) = collector();
    let export = durable::otlp::OtlpExport::new("durable-otlp-test", &url).unwrap();
    let subscriber = tracing_subscriber::registry().with(export.layer());
    let mut registry = Registry::new();
    registry.register("exported", |ctx: Ctx, n: u32| async move {
        let doubled: u32 = ctx.step("double", || async move { Ok(n * 2) }).await?;
        ctx.step("add", || async move { Ok(doubled + 1) }).await
    });
    let client = Client::with_registry(&t.db, std::sync::Arc::new(registry));
    // This test's tasks all run on its one thread, under this subscriber.
    let guard = tracing::subscriber::set_default(subscriber);
    let out: u32 = client.run("exported", "otlp-1", &20u32).await.unwrap();
    drop(guard);
    assert_eq!(out, 41);
    let id = client
        .workflow_by_key("otlp-1")
        .await
        .unwrap()
        .id
        .to_string();
    export.shutdown().unwrap();

    let mut sent = Vec::new();
    while let Ok(body) = bodies.recv_timeout(Duration::from_secs(10)) {
        sent.extend(body);
        if contains(&sent, "workflow.run") && contains(&sent, &id) {
            break;
        }
    }
    assert!(contains(&sent, "durable-otlp-test"), "the service name");
    assert!(
        contains(&sent, "workflow.run") && contains(&sent, &id),
        "the run with its id"
    );
    assert!(
        contains(&sent, "step") && contains(&sent, "double"),
        "its steps"
    );
}

#[tokio::test]
async fn sqlite_spans_reach_the_collector() {
    exported(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_spans_reach_the_collector() {
    exported(Backend::Postgres).await;
}
