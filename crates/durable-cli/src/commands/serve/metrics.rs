//! `/metrics` in Prometheus text: the SDK's counters and histograms of
//! this process (steps, failures, retries, claims and their lag,
//! recoveries, lease losses: see `durable`'s docs) and gauges read from
//! the database at each scrape (the work of every queue, and its limit),
//! so one `durable serve` shows the queues of every worker.

use std::fmt::Write;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::AppState;
use super::error::ApiError;

/// The process's recorder: installed once (a process has one), shared by
/// every router built in it.
pub(crate) fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder installed first (by a program embedding
            // this) keeps the SDK's metrics; the gauges are still served.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(app): State<AppState>) -> Result<Response, ApiError> {
    let mut text = app.metrics.render();
    queue_gauges(&app, &mut text).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

/// What a gauge reads of a queue (`None`: no line for it).
type Reading = fn(&durable::QueueInfo) -> Option<u64>;

/// One gauge a line per queue and bucket, with the queue's name escaped
/// as the exposition format asks (it is user input).
async fn queue_gauges(app: &AppState, out: &mut String) -> Result<(), ApiError> {
    let queues = app.client.queues().await?;
    let gauges: [(&str, &str, Reading); 5] = [
        (
            "durable_queue_running",
            "workflows of the queue running now",
            |q| Some(q.running),
        ),
        (
            "durable_queue_queued",
            "workflows ready to be claimed (queue depth)",
            |q| Some(q.queued),
        ),
        (
            "durable_queue_waiting",
            "workflows delayed or suspended until a time",
            |q| Some(q.waiting),
        ),
        ("durable_queue_paused", "workflows paused", |q| {
            Some(q.paused)
        }),
        (
            "durable_queue_concurrency_limit",
            "the queue's concurrency limit, if it has one",
            |q| q.concurrency.map(u64::from),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for q in &queues {
            if let Some(v) = value(q) {
                let _ = writeln!(out, "{name}{{queue=\"{}\"}} {v}", label(&q.name));
            }
        }
    }
    Ok(())
}

/// A label value as the exposition format writes it.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
