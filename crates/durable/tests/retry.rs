//! Retries and failures: the retry count is saved after every failed
//! attempt (so a crash goes on counting), an exhausted or failed step is
//! recorded FAILED and replays its error without running again.

mod common;

use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Backend, TestDb, child_row, counted, row_under, step_failed};
use durable::{Ctx, DurableError, RetryPolicy};

/// A retried step body: each attempt counts itself in `calls` and returns
/// `outcome(n)`, `n` being its number (1 for the first attempt).
fn numbered<T>(
    calls: &Arc<AtomicU32>,
    outcome: impl Fn(u32) -> Result<T, DurableError>,
) -> impl Fn() -> Ready<Result<T, DurableError>> {
    let calls = calls.clone();
    move || ready(outcome(calls.fetch_add(1, Ordering::SeqCst) + 1))
}

/// A permanent error is recorded at once: no retry, and it replays.
async fn permanent_errors_are_not_retried(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "charge", None).await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let result: Result<u32, _> = ctx
        .step_with_retry(
            "card",
            RetryPolicy::fixed(5, Duration::ZERO),
            numbered(&calls, |_| Err(DurableError::permanent("card declined"))),
        )
        .await;
    assert!(matches!(&result, Err(e) if e.is_permanent()), "{result:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a permanent error was retried"
    );
    let row = row_under(&t.db, ctx.task_id(), "card#0").await;
    assert_eq!((row.status.as_str(), row.retry_count), ("FAILED", 0));
    drop(ctx);
    let ctx = Ctx::start(&t.db, "charge", None).await.unwrap();
    let (step, message) = step_failed(
        ctx.step_with_retry(
            "card",
            RetryPolicy::fixed(5, Duration::ZERO),
            numbered(&calls, |_| Ok(1u32)),
        )
        .await,
    );
    assert_eq!(step, "card#0");
    assert_eq!(message, "permanent error: card declined");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A step that fails twice and then succeeds returns its value; the row says two retries.
async fn retries_until_success(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "flaky", None).await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let value: String = ctx
        .step_with_retry(
            "call",
            RetryPolicy::fixed(3, Duration::from_millis(1)),
            numbered(&calls, |n| {
                if n < 3 {
                    Err(DurableError::custom(format!("attempt {n} failed")))
                } else {
                    Ok(format!("ok after {n}"))
                }
            }),
        )
        .await
        .unwrap();
    assert_eq!(value, "ok after 3");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let r = row_under(&t.db, ctx.task_id(), "call#0").await;
    assert_eq!(r.status, "COMPLETED");
    assert_eq!((r.retry_count, r.max_retries), (2, 3));
    assert_eq!(r.output.as_deref(), Some("\"ok after 3\""));
    assert_eq!(r.error, None, "a completed step kept an error");
    assert!(r.completed_ms.is_some());

    // Replay: the saved value, no attempt.
    drop(ctx);
    let ctx = Ctx::start(&t.db, "flaky", None).await.unwrap();
    let again: String = ctx
        .step_with_retry(
            "call",
            RetryPolicy::fixed(3, Duration::from_millis(1)),
            || async { panic!("a completed step ran again") },
        )
        .await
        .unwrap();
    assert_eq!(again, "ok after 3");
}

/// Exhausted retries record FAILED with the count and the error; a replay returns that error unrun.
async fn exhausted_retries_fail_and_replay(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "doomed", None).await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let err = ctx
        .step_with_retry(
            "call",
            RetryPolicy::fixed(2, Duration::from_millis(1)),
            numbered(&calls, |n| {
                Err::<u32, _>(DurableError::custom(format!("upstream 503 on attempt {n}")))
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "one attempt plus two retries"
    );
    let message = "upstream 503 on attempt 3";
    assert!(
        matches!(&err, DurableError::Custom(m) if m == message),
        "{err:?}"
    );
    let r = row_under(&t.db, ctx.task_id(), "call#0").await;
    assert_eq!(r.status, "FAILED");
    assert_eq!((r.retry_count, r.max_retries), (2, 2));
    assert_eq!(r.error.as_deref(), Some(message));
    assert_eq!(r.output, None);

    drop(ctx);
    let ctx = Ctx::start(&t.db, "doomed", None).await.unwrap();
    let replayed = ctx
        .step_with_retry::<u32, _, _>(
            "call",
            RetryPolicy::fixed(2, Duration::from_millis(1)),
            || async { panic!("a failed step ran again") },
        )
        .await;
    let (step, m) = step_failed(replayed);
    assert_eq!((step.as_str(), m.as_str()), ("call#0", message));
    let again = row_under(&t.db, ctx.task_id(), "call#0").await;
    assert_eq!(again, r, "the replay changed the record");
}

/// A failed plain step is recorded FAILED and replays the same error without running.
async fn failed_step_replays_its_error(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start(&t.db, "once", None).await.unwrap();
    let message = "bad row 'x'; DROP TABLE durable_task; --";
    let err = ctx
        .step("parse", || async {
            Err::<u32, _>(DurableError::custom(message))
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DurableError::Custom(m) if m == message),
        "{err:?}"
    );
    let r = row_under(&t.db, ctx.task_id(), "parse#0").await;
    assert_eq!(
        (r.status.as_str(), r.error.as_deref(), r.retry_count),
        ("FAILED", Some(message), 0)
    );

    drop(ctx);
    let calls = Arc::new(AtomicU32::new(0));
    for _run in 0..2 {
        let ctx = Ctx::start(&t.db, "once", None).await.unwrap();
        let (step, m) = step_failed(ctx.step("parse", counted(&calls, 1u32)).await);
        assert_eq!((step.as_str(), m.as_str()), ("parse#0", message));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "a failed step ran again");
    assert_eq!(row_under(&t.db, r.parent_id.unwrap(), "parse#0").await, r);
}

/// A crash in the middle of retries goes on counting: the interrupted attempt at most is repeated.
async fn retry_count_survives_a_crash(backend: Backend) {
    let t = TestDb::new(backend).await;
    let policy = RetryPolicy::fixed(5, Duration::from_millis(1));
    let attempts = Arc::new(AtomicU32::new(0));
    let (third, mut third_started) = tokio::sync::mpsc::unbounded_channel::<()>();

    let ctx = Ctx::start(&t.db, "crashy", None).await.unwrap();
    let workflow = ctx.task_id();
    let a = attempts.clone();
    let p = policy.clone();
    let run = tokio::spawn(async move {
        ctx.step_with_retry("call", p, move || {
            let n = a.fetch_add(1, Ordering::SeqCst) + 1;
            let third = third.clone();
            async move {
                if n >= 3 {
                    // The process "dies" during this attempt.
                    let _ = third.send(());
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Err::<u32, _>(DurableError::custom(format!("attempt {n} failed")))
            }
        })
        .await
    });
    third_started
        .recv()
        .await
        .expect("the third attempt never started");
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    let first_run = attempts.load(Ordering::SeqCst);
    assert_eq!(first_run, 3);
    let before = child_row(&t.db, workflow, "call#0")
        .await
        .expect("no record of the retries");
    assert_eq!(before.status, "PENDING");
    assert!(
        before.retry_count >= 2,
        "retry count not saved: {}",
        before.retry_count
    );
    assert_eq!(before.error.as_deref(), Some("attempt 2 failed"));

    // The restarted run goes on where the count stopped and exhausts the policy.
    let ctx = Ctx::start(&t.db, "crashy", None).await.unwrap();
    let second = Arc::new(AtomicU32::new(0));
    let err = ctx
        .step_with_retry(
            "call",
            policy.clone(),
            numbered(&second, |n| {
                Err::<u32, _>(DurableError::custom(format!("retry run attempt {n}")))
            }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DurableError::Custom(_)), "{err:?}");
    let second_run = second.load(Ordering::SeqCst);
    let after = row_under(&t.db, workflow, "call#0").await;
    assert_eq!(after.status, "FAILED");
    assert_eq!(after.retry_count, 5);
    // The interrupted attempt ran under count `before.retry_count` and is repeated under it.
    assert_eq!(
        after.retry_count,
        before.retry_count + i32::try_from(second_run).unwrap() - 1
    );
    let total = first_run + second_run;
    assert!(
        total <= 1 + policy.max_retries + 1,
        "{total} attempts for max_retries {}",
        policy.max_retries
    );
    assert_eq!(after.error, Some(format!("retry run attempt {second_run}")));
}

/// Backoff values of the three policies, and a multiplier below 1 counts as 1.
#[test]
fn backoff_values() {
    let ms = Duration::from_millis;
    let none = RetryPolicy::none();
    assert_eq!(none.max_retries, 0);
    assert_eq!(
        (none.backoff(1), none.backoff(5)),
        (Duration::ZERO, Duration::ZERO)
    );

    let fixed = RetryPolicy::fixed(3, ms(50));
    assert_eq!(fixed.max_retries, 3);
    assert_eq!(
        [fixed.backoff(1), fixed.backoff(2), fixed.backoff(3)],
        [ms(50); 3]
    );

    let exp = RetryPolicy::exponential(5, ms(100));
    assert_eq!(
        [
            exp.backoff(1),
            exp.backoff(2),
            exp.backoff(3),
            exp.backoff(4)
        ],
        [ms(100), ms(200), ms(400), ms(800)]
    );
    assert_eq!(exp.backoff(0), Duration::ZERO);
    // Capped at one day, never an overflow.
    assert_eq!(exp.backoff(u32::MAX), Duration::from_secs(86_400));

    let shrinking = RetryPolicy {
        backoff_multiplier: 0.5,
        ..RetryPolicy::exponential(3, ms(100))
    };
    assert_eq!(
        [shrinking.backoff(1), shrinking.backoff(3)],
        [ms(100), ms(100)]
    );
    let nan = RetryPolicy {
        backoff_multiplier: f64::NAN,
        ..RetryPolicy::exponential(3, ms(100))
    };
    assert_eq!(nan.backoff(4), ms(100));
    assert_eq!(
        RetryPolicy::default(),
        RetryPolicy::exponential(3, Duration::from_secs(1))
    );
}

both_backends!(
    permanent_errors_are_not_retried,
    retries_until_success,
    exhausted_retries_fail_and_replay,
    failed_step_replays_its_error,
    retry_count_survives_a_crash,
);
