//! What only the in-memory store has (its clock and its seams) and what it
//! deliberately lacks (a user database, notifications); the behaviour it
//! shares with SQL is tested by `store/conformance.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

use super::MemoryStore;
use crate::error::DurableError;
use crate::status::{Status, StepKind};
use crate::store::{Checkpoint, ExecutorRow, Lease, NewRoot, Renewal, Started, Store, Suspension};

fn executor(n: u128) -> ExecutorRow {
    ExecutorRow {
        id: Uuid::from_u128(n),
        hostname: "h".into(),
        pid: 1,
        pid_started: 1,
    }
}

async fn root(store: &MemoryStore, key: &str, owner: Uuid) -> crate::store::WorkflowRow {
    let root = NewRoot {
        key,
        name: "wf",
        input: None,
        owner,
    };
    match store.start_root(&root).await.unwrap() {
        Started::Claimed { row, .. } => row,
        Started::Refused(row) => panic!("refused: {row:?}"),
    }
}

#[tokio::test]
async fn a_clock_step_expires_leases_and_wakes_sleepers() {
    let store = MemoryStore::new().with_base_ms(1_000_000);
    let before = store.now_ms();
    assert!((1_000_000..1_001_000).contains(&before));
    assert!(
        store
            .heartbeat(&executor(1), 30_000, Renewal::Register)
            .await
            .unwrap()
    );
    let r = root(&store, "k", executor(1).id).await;
    let lease = Lease {
        holder: r.id,
        owner: executor(1).id,
        epoch: r.lease_epoch,
    };
    // A sleep of a minute: suspended, not claimable yet.
    let wake = before + 60_000;
    let sleep = Checkpoint {
        workflow: r.id,
        position: 0,
        key: "nap#0",
        name: "nap",
        kind: StepKind::Sleep,
        status: Status::Pending,
        output: None,
        error: None,
        retry_count: 0,
        max_retries: 0,
        wake_ms: Some(wake),
        child: None,
        started_ms: before,
        lease,
    };
    assert!(store.commit(&sleep).await.unwrap().is_some());
    let suspension = Suspension {
        workflow: r.id,
        position: 0,
        wake_ms: Some(wake),
        wait_for: Some("sleep".into()),
    };
    assert!(
        store
            .release(r.id, &lease, Some(&suspension))
            .await
            .unwrap()
    );
    assert!(
        store
            .heartbeat(&executor(2), 600_000, Renewal::Register)
            .await
            .unwrap()
    );
    let filter = crate::store::ClaimFilter {
        names: r#"["wf"]"#,
        app_version: None,
        any_version: false,
    };
    assert!(
        store
            .claim_orphans(executor(2).id, 1, &filter)
            .await
            .unwrap()
            .is_empty()
    );
    // The clock jumps past both the lease of E1 and the wake-up.
    store.step_clock(61_000);
    assert!(store.now_ms() >= before + 61_000);
    assert!(
        !store
            .heartbeat(&executor(1), 30_000, Renewal::Renew)
            .await
            .unwrap()
    );
    let claimed = store
        .claim_orphans(executor(2).id, 1, &filter)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease_epoch, 2);
    // And back: time is whatever the store says, even going backwards.
    store.step_clock(-61_000);
    assert!(store.now_ms() < before + 61_000);
}

#[tokio::test]
async fn ids_come_from_the_injected_source() {
    let next = Arc::new(AtomicU64::new(7));
    let store = MemoryStore::new().with_ids(Arc::new(move || {
        Uuid::from_u128(u128::from(next.fetch_add(1, Ordering::SeqCst)))
    }));
    assert!(
        store
            .heartbeat(&executor(1), 30_000, Renewal::Register)
            .await
            .unwrap()
    );
    assert_eq!(
        root(&store, "a", executor(1).id).await.id,
        Uuid::from_u128(7)
    );
    assert_eq!(
        root(&store, "b", executor(1).id).await.id,
        Uuid::from_u128(8)
    );
}

#[tokio::test]
async fn no_user_database_no_transaction_steps_no_notifications() {
    let store = MemoryStore::new();
    assert!(store.connection().ping().await.is_err(), "disconnected");
    let typed =
        |e: DurableError| matches!(e, DurableError::InvalidInput(m) if m.contains("SQL database"));
    assert!(typed(store.begin_user_transaction(1000).await.unwrap_err()));
    store.notify("default").await.unwrap();
    // `listen` returns at once (polling covers it).
    let wake = Arc::new(tokio::sync::Notify::new());
    tokio::time::timeout(std::time::Duration::from_secs(1), store.listen(wake))
        .await
        .expect("listen returns at once");
}
