//! The read model: a workflow's summary and its tree of steps and child
//! workflows, as serde types, by id and by key.

mod common;

use std::time::Duration;

use common::{Backend, TestDb};
use durable::{
    Client, Ctx, DurableError, RetryPolicy, Status, StepKind, WorkflowSummary, WorkflowTree,
};
use serde_json::json;

/// A tree with a retried step, a transaction, a child with a failed step,
/// read back with statuses, attempts, times, outputs and errors, and
/// through JSON unchanged.
async fn tree_shows_steps_children_attempts_and_errors(backend: Backend) {
    let t = TestDb::new(backend).await;
    let ctx = Ctx::start_with_key(&t.db, "order", "order-7", Some(json!({"cents": 1200})))
        .await
        .unwrap();
    let tries = std::sync::atomic::AtomicU32::new(0);
    let _: String = ctx
        .step_with_retry("call", RetryPolicy::fixed(3, Duration::ZERO), || {
            let n = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(DurableError::custom(format!("503 on try {n}")))
                } else {
                    Ok("ok".to_string())
                }
            }
        })
        .await
        .unwrap();
    let _: u32 = ctx
        .transaction("save", |_tx| Box::pin(async { Ok(3) }))
        .await
        .unwrap();
    let child = ctx.child("kid", Some(json!([1, 2]))).await.unwrap();
    let failed: Result<u32, _> = child
        .step("bad", || async { Err(DurableError::custom("bad row 'x'")) })
        .await;
    assert!(failed.is_err());
    child.fail("kid gave up").await.unwrap();

    let client = Client::new(&t.db);
    let summary = client.workflow(ctx.task_id()).await.unwrap();
    assert_eq!(summary, client.workflow_by_key("order-7").await.unwrap());
    assert_eq!(
        (summary.key.as_str(), summary.name.as_str()),
        ("order-7", "order")
    );
    assert_eq!(summary.status, Status::Running);
    assert_eq!(summary.input, Some(json!({"cents": 1200})));
    assert_eq!(summary.attempts, 1);
    assert_eq!(summary.recoveries, 0);
    assert!(summary.owner.is_some());
    assert!(summary.parent_id.is_none() && summary.root_id == summary.id);

    let tree = client.tree(ctx.task_id()).await.unwrap();
    let steps: Vec<(&str, StepKind, Status, u32)> = tree
        .steps
        .iter()
        .map(|s| (s.key.as_str(), s.kind, s.status, s.attempts))
        .collect();
    assert_eq!(
        steps,
        [
            ("call#0", StepKind::Step, Status::Completed, 3),
            ("save#0", StepKind::Transaction, Status::Completed, 1),
            ("kid#0", StepKind::Workflow, Status::Completed, 1),
        ]
    );
    assert_eq!(tree.steps[0].output, Some(json!("ok")));
    assert_eq!(tree.steps[0].error, None, "a completed step has no error");
    assert!(
        tree.steps
            .iter()
            .all(|s| s.finished_at_ms >= s.started_at_ms)
    );
    let kid = tree.steps[2].child.as_ref().expect("the child's tree");
    assert_eq!(kid.workflow.status, Status::Failed);
    assert_eq!(kid.workflow.error.as_deref(), Some("kid gave up"));
    assert_eq!(kid.workflow.parent_id, Some(ctx.task_id()));
    assert_eq!(kid.workflow.parent_position, Some(2));
    assert_eq!(kid.workflow.input, Some(json!([1, 2])));
    assert_eq!(kid.steps[0].status, Status::Failed);
    assert_eq!(kid.steps[0].error.as_deref(), Some("bad row 'x'"));

    // The child's own tree is the same subtree.
    assert_eq!(&client.tree(child.task_id()).await.unwrap(), kid.as_ref());

    // Through JSON and back, unchanged; statuses as the database names them.
    let text = serde_json::to_string(&tree).unwrap();
    assert!(text.contains("\"status\":\"COMPLETED\"") && text.contains("\"kind\":\"TRANSACTION\""));
    let back: WorkflowTree = serde_json::from_str(&text).unwrap();
    assert_eq!(back, tree);
    let back: WorkflowSummary =
        serde_json::from_str(&serde_json::to_string(&summary).unwrap()).unwrap();
    assert_eq!(back, summary);
}

/// Unknown ids and keys are typed not-found errors; hostile keys are just text.
async fn unknown_ids_and_keys_are_not_found(backend: Backend) {
    let t = TestDb::new(backend).await;
    let client = Client::new(&t.db);
    let id = durable::Uuid::new_v4();
    assert!(matches!(client.workflow(id).await, Err(DurableError::NotFound(x)) if x == id));
    assert!(matches!(
        client.tree(id).await,
        Err(DurableError::NotFound(_))
    ));
    let hostile = "'); DROP TABLE durable_workflow; --";
    let err = client.workflow_by_key(hostile).await.unwrap_err();
    assert!(
        matches!(&err, DurableError::KeyNotFound(k) if k == hostile),
        "{err:?}"
    );
    let ctx = Ctx::start_with_key(&t.db, "n", hostile, None)
        .await
        .unwrap();
    ctx.complete(&1).await.unwrap();
    let summary = client.workflow_by_key(hostile).await.unwrap();
    assert_eq!(
        (summary.key.as_str(), summary.status),
        (hostile, Status::Completed)
    );
    assert!(summary.owner.is_none(), "a finished workflow has no owner");
}

both_backends!(
    tree_shows_steps_children_attempts_and_errors,
    unknown_ids_and_keys_are_not_found,
);
