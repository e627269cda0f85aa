//! `ctx.patched`: code changes while runs recorded by the old code replay
//! the old path without a non-determinism error, fresh runs take the new
//! path and keep it on replay, and a run that had not reached the change
//! takes the new path.

mod common;

use common::{Backend, Runs, TestDb, count, ran};
use durable::{Client, Ctx, DurableError, StepKind};

/// Version 1: `sum`, then `ship`.
async fn version_1(ctx: &Ctx, runs: &Runs, finish: bool) -> Result<(), DurableError> {
    let r = runs.clone();
    let _: u64 = ctx
        .step("sum", || async move {
            ran(&r, "sum".into());
            Ok(100)
        })
        .await?;
    let r = runs.clone();
    ctx.step("ship", || async move {
        ran(&r, "ship".into());
        Ok(())
    })
    .await?;
    if finish {
        ctx.complete(&100u64).await?;
    }
    Ok(())
}

/// Version 2: `sum`, then `add_tax` behind the patch `tax`, then `ship`.
async fn version_2(ctx: &Ctx, runs: &Runs) -> Result<u64, DurableError> {
    let r = runs.clone();
    let mut total: u64 = ctx
        .step("sum", || async move {
            ran(&r, "sum".into());
            Ok(100)
        })
        .await?;
    if ctx.patched("tax").await? {
        let r = runs.clone();
        total = ctx
            .step("add_tax", || async move {
                ran(&r, "add_tax".into());
                Ok(total * 120 / 100)
            })
            .await?;
    }
    let r = runs.clone();
    ctx.step("ship", || async move {
        ran(&r, "ship".into());
        Ok(())
    })
    .await?;
    Ok(total)
}

/// A run of version 1 that got past the change (it shipped, then its
/// process stopped) goes on under version 2 on the old path; a finished
/// one replays under version 2 on the old path too.
async fn runs_of_the_old_code_keep_the_old_path(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let old = Ctx::start_with_key(&t.db, "pricing", "old-1", None)
        .await
        .unwrap();
    version_1(&old, &runs, false).await.unwrap();
    drop(old);
    let resumed = Ctx::start_with_key(&t.db, "pricing", "old-1", None)
        .await
        .unwrap();
    let total = version_2(&resumed, &runs).await.unwrap();
    assert_eq!(total, 100, "the old path: no tax");
    resumed.complete(&total).await.unwrap();
    assert_eq!(
        (
            count(&runs, "sum"),
            count(&runs, "ship"),
            count(&runs, "add_tax")
        ),
        (1, 1, 0)
    );

    let finished = Ctx::start_with_key(&t.db, "pricing", "old-2", None)
        .await
        .unwrap();
    version_1(&finished, &runs, true).await.unwrap();
    let replay = Ctx::start_with_key(&t.db, "pricing", "old-2", None)
        .await
        .unwrap();
    assert_eq!(version_2(&replay, &runs).await.unwrap(), 100);
    assert_eq!(count(&runs, "add_tax"), 0);
    let tree = Client::new(&t.db).tree(replay.task_id()).await.unwrap();
    assert!(
        tree.steps.iter().all(|s| s.kind != StepKind::Patch),
        "nothing recorded"
    );
}

/// A fresh run records the marker and takes the new path, and keeps it on
/// every replay; a run of version 1 that stopped before the change takes
/// the new path as well.
async fn fresh_runs_take_the_new_path_for_good(backend: Backend) {
    let t = TestDb::new(backend).await;
    let runs = Runs::default();
    let ctx = Ctx::start_with_key(&t.db, "pricing", "new-1", None)
        .await
        .unwrap();
    assert_eq!(version_2(&ctx, &runs).await.unwrap(), 120);
    ctx.complete(&120u64).await.unwrap();
    let replay = Ctx::start_with_key(&t.db, "pricing", "new-1", None)
        .await
        .unwrap();
    assert_eq!(version_2(&replay, &runs).await.unwrap(), 120);
    assert_eq!(
        (
            count(&runs, "sum"),
            count(&runs, "add_tax"),
            count(&runs, "ship")
        ),
        (1, 1, 1)
    );
    let tree = Client::new(&t.db).tree(ctx.task_id()).await.unwrap();
    let kinds: Vec<_> = tree
        .steps
        .iter()
        .map(|s| (s.key.as_str(), s.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("sum#0", StepKind::Step),
            ("tax#0", StepKind::Patch),
            ("add_tax#0", StepKind::Step),
            ("ship#0", StepKind::Step),
        ]
    );

    // Version 1 stopped after `sum`, before the point of the change.
    let early = Ctx::start_with_key(&t.db, "pricing", "early-1", None)
        .await
        .unwrap();
    let r = runs.clone();
    let _: u64 = early
        .step("sum", || async move {
            ran(&r, "sum".into());
            Ok(100)
        })
        .await
        .unwrap();
    drop(early);
    let resumed = Ctx::start_with_key(&t.db, "pricing", "early-1", None)
        .await
        .unwrap();
    assert_eq!(version_2(&resumed, &runs).await.unwrap(), 120);
    assert_eq!(count(&runs, "sum"), 2, "one run each of new-1 and early-1");

    let bad = resumed.patched("").await;
    assert!(matches!(bad, Err(DurableError::InvalidInput(_))), "{bad:?}");
}

both_backends!(
    runs_of_the_old_code_keep_the_old_path,
    fresh_runs_take_the_new_path_for_good,
);
