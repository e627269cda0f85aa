//! What the engine reports, on both backends, read back from a recorder
//! and a tracing layer installed in this process: a worker's run of a
//! workflow with a retried step counts its steps, the retry, the claim
//! (with its lag) and the finish; a replay counts as one; the spans nest
//! (`claim`, then `workflow.run` with the workflow's id, holding its
//! `step`s, whose task was spawned). One test: a process has one recorder.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestDb, run_worker};
use durable::{Client, Ctx, DurableError, EnqueueOptions, Registry, RetryPolicy, Worker};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tracing::span;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as opened: its name, its parent's name, its fields.
type Opened = (String, Option<String>, HashMap<String, String>);

/// Every span opened.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Opened>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.name().to_string());
        self.0
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_string(), parent, fields));
    }
}

/// What was recorded since the last snapshot (taking one drains them).
type Recorded = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// A counter's increase, or a histogram's number of samples, in
/// `recorded` (summed over label sets that contain `labels`).
fn count(recorded: &Recorded, name: &str, labels: &[(&str, &str)]) -> u64 {
    recorded
        .iter()
        .filter(|(key, _, _, _)| {
            key.key().name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.key().labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, _, _, value)| match value {
            DebugValue::Counter(n) => *n,
            DebugValue::Histogram(samples) => samples.len() as u64,
            DebugValue::Gauge(_) => 0,
        })
        .sum()
}

async fn one_backend(backend: Backend, snapshotter: &Snapshotter, spans: &Spans) {
    let t = TestDb::new(backend).await;
    // Start from nothing: what earlier runs recorded is drained.
    let _ = snapshotter.snapshot();
    let mut registry = Registry::new();
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    registry.register("telemetered", move |ctx: Ctx, n: u32| {
        let a = a.clone();
        async move {
            let first: u32 = ctx.step("first", || async move { Ok(n) }).await?;
            let _: u32 = ctx
                .transaction("record", |_tx| Box::pin(async move { Ok(1u32) }))
                .await?;
            ctx.step_with_retry("flaky", RetryPolicy::fixed(3, Duration::ZERO), || {
                let a = a.clone();
                async move {
                    if a.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(DurableError::custom("once"))
                    } else {
                        Ok(first + 1)
                    }
                }
            })
            .await
        }
    });
    let worker = run_worker(Worker::new(&t.db, registry).poll_interval(Duration::from_millis(20)));
    let handle = Client::new(&t.db)
        .enqueue("telemetered", &1u32, EnqueueOptions::new().key("t-1"))
        .await
        .unwrap();
    assert_eq!(
        handle.result::<u32>(Duration::from_secs(30)).await.unwrap(),
        2
    );
    worker.stop().await;

    let recorded = snapshotter.snapshot().into_vec();
    let n = |name: &str, labels: &[(&str, &str)]| count(&recorded, name, labels);
    assert_eq!(
        n(
            "durable_steps_total",
            &[("kind", "STEP"), ("outcome", "completed")]
        ),
        2
    );
    assert_eq!(
        n(
            "durable_steps_total",
            &[("kind", "TRANSACTION"), ("outcome", "completed")]
        ),
        1
    );
    assert_eq!(n("durable_step_retries_total", &[]), 1);
    assert_eq!(
        n(
            "durable_workflows_finished_total",
            &[("status", "COMPLETED")]
        ),
        1
    );
    assert_eq!(
        n("durable_workflows_claimed_total", &[("queue", "default")]),
        1
    );
    assert_eq!(n("durable_claim_lag_seconds", &[("queue", "default")]), 1);
    assert_eq!(n("durable_steps_replayed_total", &[]), 0);

    // A replay of an inline workflow's step counts as one, and runs nothing.
    let ctx = Ctx::start_with_key(&t.db, "inline", "inline-1", None)
        .await
        .unwrap();
    let _: u32 = ctx.step("s", || async { Ok(1) }).await.unwrap();
    drop(ctx);
    let ctx = Ctx::start_with_key(&t.db, "inline", "inline-1", None)
        .await
        .unwrap();
    let again: u32 = ctx.step("s", || async { Ok(9) }).await.unwrap();
    assert_eq!(again, 1);
    ctx.complete(&1).await.unwrap();
    let recorded = snapshotter.snapshot().into_vec();
    assert_eq!(count(&recorded, "durable_steps_replayed_total", &[]), 1);
    assert_eq!(count(&recorded, "durable_steps_total", &[]), 1);

    // Spans: the run of this workflow, its steps inside it, a claim.
    let id = format!("{}", handle.id());
    let spans = spans.0.lock().unwrap().clone();
    let run = spans
        .iter()
        .find(|(name, _, fields)| name == "workflow.run" && fields.get("workflow.id") == Some(&id))
        .unwrap_or_else(|| panic!("no workflow.run span for {id}"));
    assert_eq!(
        run.2.get("workflow.name").map(String::as_str),
        Some("telemetered")
    );
    let steps: Vec<_> = spans
        .iter()
        .filter(|(name, _, fields)| name == "step" && fields.get("workflow.id") == Some(&id))
        .collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(
        run.1, None,
        "a run is a trace of its own, not inside the worker's span"
    );
    for (_, parent, _) in &steps {
        assert_eq!(
            parent.as_deref(),
            Some("workflow.run"),
            "steps run inside the run's span"
        );
    }
    assert!(
        spans
            .iter()
            .any(|(name, parent, _)| name == "claim" && parent.is_none()),
        "claim rounds are traces of their own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_spans_on_both_backends() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the one recorder of this process");
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    tracing::subscriber::set_global_default(subscriber).expect("the one subscriber");
    one_backend(Backend::Sqlite, &snapshotter, &spans).await;
    one_backend(Backend::Postgres, &snapshotter, &spans).await;
}
