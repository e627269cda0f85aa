//! Scenarios: enqueue, claims, queue limits, orphans, releases, the read model.

#![allow(clippy::wildcard_imports)]

use super::*;

pub(super) async fn enqueue_is_idempotent_by_key(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let id1 = enqueue(s, &work("k", "q")).await;
    assert_eq!(id(id1), "#1");
    assert_eq!(s.enqueue(&work("k", "q")).await.unwrap(), None);
    let other = NewEnqueued {
        name: "other",
        ..work("k", "elsewhere")
    };
    assert_eq!(s.enqueue(&other).await.unwrap(), None);
    assert_eq!(row(s, id1).await, "#1 k wf PENDING in={} queue=q");
    let full = NewEnqueued {
        priority: -3,
        concurrency_key: Some("ck".into()),
        delay_ms: Some(3_600_000),
        app_version: Some("v9".into()),
        ..work("k2", "q")
    };
    let id2 = enqueue(s, &full).await;
    // Every enqueue drew an id: three so far.
    assert_eq!(id(id2), "#4");
    let row2 = s.workflow(id2).await.unwrap().expect("enqueued");
    assert_eq!(
        wf(&row2),
        "#4 k2 wf PENDING in={} queue=q prio=-3 ckey=ck avail=now+60m ver=v9"
    );
    // One clock reading: the delay is exact.
    assert_eq!(row2.available_ms, Some(row2.created_ms + 3_600_000));
    // A queued root can be started inline by its key (a claim of it).
    let e1 = live(s, 1).await;
    assert_eq!(
        wf(&root(s, "k", e1).await),
        "#1 k wf RUNNING in={} owner=E1 epoch=1 queue=q attempts=1 started=now"
    );
    assert!(
        s.queue("q").await.unwrap().is_none(),
        "enqueue declares no queue"
    );
}

/// A claim tells whether the workflow has no journal entry yet (so its
/// run reads no history page): only a first claim of a workflow without
/// entries does. Taken over (a second attempt), or a fork with copied
/// entries, it is not known to be empty.
pub(super) async fn claims_tell_whether_the_history_is_empty(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (e1, e2) = (live(s, 1).await, live(s, 2).await);
    declare(s, "q", QueueLimits::default()).await;
    let empty = |rows: &[WorkflowRow]| rows.iter().map(|r| r.history_empty).collect::<Vec<_>>();
    enqueue(s, &work("a", "q")).await;
    let a = s.claim_from_queue("q", e1, 1, &filter(WF)).await.unwrap();
    assert_eq!(empty(&a), [true], "a first claim");
    // The second claim of a store that saw the queue without limits.
    enqueue(s, &work("b", "q")).await;
    let b = s.claim_from_queue("q", e1, 1, &filter(WF)).await.unwrap();
    assert_eq!(empty(&b), [true], "a first claim, again");
    assert!(written(s, &done(b[0].id, 0, "s#0", "1", lease(&b[0]))).await);
    // Taken over: a second attempt, with an entry (b) or without (a).
    s.expire_executor(e1).await.unwrap();
    let again = s.claim_from_queue("q", e2, 2, &filter(WF)).await.unwrap();
    assert_eq!(ids(&again), ["#1", "#2"]);
    assert_eq!(empty(&again), [false, false]);
    // Forks of an inline root, claimed as roots without an owner: with a
    // copied entry, and from position 0 (nothing copied).
    let r = root(s, "r", e2).await;
    assert!(written(s, &done(r.id, 0, "s#0", "1", lease(&r))).await);
    let with_entry = s.fork(r.id, 1).await.unwrap();
    let without = s.fork(r.id, 0).await.unwrap();
    let mut forks = s.claim_orphans(e2, 10, &filter(WF)).await.unwrap();
    forks.sort_by_key(|w| w.id != with_entry);
    assert_eq!(
        forks
            .iter()
            .map(|w| (w.id, w.history_empty))
            .collect::<Vec<_>>(),
        [(with_entry, false), (without, true)]
    );
    // Rows read otherwise never claim to know.
    assert!(
        !s.workflow(without)
            .await
            .unwrap()
            .expect("the fork")
            .history_empty
    );
}

pub(super) async fn claims_in_order_never_own_work(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (e1, e2) = (live(s, 1).await, live(s, 2).await);
    assert_eq!(
        err(s.claim_from_queue("q", e1, 10, &filter(WF)).await),
        "UnknownQueue(q)"
    );
    declare(s, "q", QueueLimits::default()).await;
    assert_eq!(s.queue("q").await.unwrap(), Some(QueueLimits::default()));
    assert_eq!(s.queue("nope").await.unwrap(), None);
    let prio = |key, priority| NewEnqueued {
        priority,
        ..work(key, "q")
    };
    for (key, p) in [("a", 0), ("b", 5), ("c", 0), ("d", 5)] {
        enqueue(s, &prio(key, p)).await;
    }
    enqueue(
        s,
        &NewEnqueued {
            delay_ms: Some(3_600_000),
            ..work("later", "q")
        },
    )
    .await;
    enqueue(
        s,
        &NewEnqueued {
            delay_ms: Some(-1_000),
            ..work("due", "q")
        },
    )
    .await;
    enqueue(
        s,
        &NewEnqueued {
            name: "other",
            ..work("other", "q")
        },
    )
    .await;
    enqueue(
        s,
        &NewEnqueued {
            app_version: Some("v2".into()),
            ..work("v2", "q")
        },
    )
    .await;
    enqueue(s, &work("elsewhere", "q2")).await;
    // Priority first, then age (ids break ties of one millisecond).
    let v1 = ClaimFilter {
        app_version: Some("v1"),
        ..filter(WF)
    };
    assert!(
        s.claim_from_queue("q", e1, 0, &v1)
            .await
            .unwrap()
            .is_empty()
    );
    let first = s.claim_from_queue("q", e1, 2, &v1).await.unwrap();
    assert_eq!(ids(&first), ["#2", "#4"]);
    let rest = s.claim_from_queue("q", e1, 10, &v1).await.unwrap();
    assert_eq!(ids(&rest), ["#1", "#3", "#6"]);
    assert_eq!(
        wf(&rest[0]),
        "#1 a wf RUNNING in={} owner=E1 epoch=1 queue=q ver=v1 attempts=1 started=now"
    );
    // Owned by a live executor: nobody takes it; another version only
    // with any_version (and it keeps its version).
    assert!(
        s.claim_from_queue("q", e2, 10, &v1)
            .await
            .unwrap()
            .is_empty()
    );
    let any = ClaimFilter {
        any_version: true,
        ..filter(WF)
    };
    let v2 = s.claim_from_queue("q", e2, 10, &any).await.unwrap();
    assert_eq!(
        v2.iter().map(wf).collect::<Vec<_>>(),
        ["#8 v2 wf RUNNING in={} owner=E2 epoch=1 queue=q ver=v2 attempts=1 started=now"]
    );
    // The owner's lease lapsed: never claimed by itself, taken by others.
    s.expire_executor(e1).await.unwrap();
    assert!(
        s.claim_from_queue("q", e1, 10, &any)
            .await
            .unwrap()
            .is_empty()
    );
    // (Their version was fixed by the first claim: v1 or any.)
    let unversioned = s.claim_from_queue("q", e2, 10, &filter(WF)).await.unwrap();
    assert!(unversioned.is_empty());
    let taken = s.claim_from_queue("q", e2, 10, &v1).await.unwrap();
    assert_eq!(ids(&taken), ["#2", "#4", "#1", "#3", "#6"]);
    assert_eq!(
        wf(&taken[0]),
        "#2 b wf RUNNING in={} owner=E2 epoch=2 queue=q prio=5 ver=v1 attempts=2 recoveries=1 started=now"
    );
    // A released one is claimed again (no recovery), its delay kept.
    let six = lease(&taken[4]);
    assert!(s.release(drawn(6), &six, None).await.unwrap());
    assert!(!s.release(drawn(6), &six, None).await.unwrap());
    let again = s.claim_from_queue("q", e2, 10, &v1).await.unwrap();
    assert_eq!(
        again.iter().map(wf).collect::<Vec<_>>(),
        [
            "#6 due wf RUNNING in={} owner=E2 epoch=3 queue=q ver=v1 attempts=3 recoveries=1 started=now"
        ]
    );
    // A queued sleeper, due: claimed with the ready work, in claim order.
    let l = lease(&taken[0]);
    let nap = Suspension {
        workflow: drawn(2),
        position: 0,
        wake_ms: Some(LONG_AGO),
        wait_for: Some("sleep".into()),
    };
    assert!(s.release(drawn(2), &l, Some(&nap)).await.unwrap());
    assert_eq!(
        row(s, drawn(2)).await,
        "#2 b wf PENDING in={} epoch=2 queue=q prio=5 avail=1000 wait=sleep ver=v1 attempts=2 recoveries=1 started=now"
    );
    let e3 = live(s, 3).await;
    let woke = s.claim_from_queue("q", e3, 10, &v1).await.unwrap();
    assert_eq!(
        woke.iter().map(wf).collect::<Vec<_>>(),
        [
            "#2 b wf RUNNING in={} owner=E3 epoch=3 queue=q prio=5 avail=1000 ver=v1 attempts=3 recoveries=1 started=now"
        ]
    );
}

/// The claim of a slot just freed: the best workflow, one at a time; a
/// limit declared later holds for it too (a store that answers nothing
/// there leaves the claim to the worker's loop, which finds it).
pub(super) async fn claim_next_takes_the_best_within_limits(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (e1, e2) = (live(s, 1).await, live(s, 2).await);
    declare(s, "nx", QueueLimits::default()).await;
    for (key, priority) in [("n1", 0), ("n2", 5), ("n3", 0)] {
        enqueue(
            s,
            &NewEnqueued {
                priority,
                ..work(key, "nx")
            },
        )
        .await;
    }
    let next = |owner| async move { s.claim_next("nx", owner, &filter(WF)).await.unwrap() };
    let first = next(e1).await.expect("work is waiting");
    assert_eq!(ids(std::slice::from_ref(&first)), ["#2"]);
    let second = next(e2).await.expect("work is waiting");
    assert_eq!(ids(std::slice::from_ref(&second)), ["#1"]);
    declare(
        s,
        "nx",
        QueueLimits {
            concurrency: Some(2),
            ..QueueLimits::default()
        },
    )
    .await;
    assert!(next(e1).await.is_none(), "past the limit declared later");
    assert!(
        s.finish(
            first.id,
            &lease(&first),
            Status::Completed,
            None,
            None,
            None
        )
        .await
        .unwrap()
    );
    assert_eq!(
        ids(&s.claim_from_queue("nx", e1, 10, &filter(WF)).await.unwrap()),
        ["#3"]
    );
    assert!(next(e2).await.is_none(), "no work left");
}

pub(super) async fn queue_limits_concurrency_key_rate(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (e1, e2) = (live(s, 1).await, live(s, 2).await);
    // Concurrency: running under live owners count.
    let limits = QueueLimits {
        concurrency: Some(2),
        ..QueueLimits::default()
    };
    declare(s, "lim", limits.clone()).await;
    assert_eq!(s.queue("lim").await.unwrap(), Some(limits));
    for key in ["l1", "l2", "l3"] {
        enqueue(s, &work(key, "lim")).await;
    }
    let claimed = s
        .claim_from_queue("lim", e1, 10, &filter(WF))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["#1", "#2"]);
    assert!(
        s.claim_from_queue("lim", e2, 10, &filter(WF))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.finish(
            claimed[0].id,
            &lease(&claimed[0]),
            Status::Completed,
            None,
            None,
            None
        )
        .await
        .unwrap()
    );
    assert_eq!(
        ids(&s
            .claim_from_queue("lim", e2, 10, &filter(WF))
            .await
            .unwrap()),
        ["#3"]
    );
    // Declared again: the new limits replace the old.
    let wider = QueueLimits {
        concurrency: Some(5),
        rate_limit: Some(1),
        rate_period_ms: Some(60_000),
        key_concurrency: Some(2),
    };
    declare(s, "lim", wider.clone()).await;
    assert_eq!(s.queue("lim").await.unwrap(), Some(wider));
    // A dead owner's running work counts no more.
    let dying = QueueLimits {
        concurrency: Some(1),
        ..QueueLimits::default()
    };
    declare(s, "dying", dying).await;
    enqueue(s, &work("d1", "dying")).await;
    enqueue(s, &work("d2", "dying")).await;
    let e3 = live(s, 3).await;
    assert_eq!(
        ids(&s
            .claim_from_queue("dying", e3, 10, &filter(WF))
            .await
            .unwrap()),
        ["#4"]
    );
    assert!(
        s.claim_from_queue("dying", e1, 10, &filter(WF))
            .await
            .unwrap()
            .is_empty()
    );
    s.expire_executor(e3).await.unwrap();
    assert_eq!(
        ids(&s
            .claim_from_queue("dying", e1, 1, &filter(WF))
            .await
            .unwrap()),
        ["#4"]
    );

    // Per key: the running ones of a key and the better ones count.
    let keyed = QueueLimits {
        key_concurrency: Some(1),
        ..QueueLimits::default()
    };
    declare(s, "keyed", keyed).await;
    let with_key = |key, ck: Option<&str>| NewEnqueued {
        concurrency_key: ck.map(str::to_string),
        ..work(key, "keyed")
    };
    let x1 = enqueue(s, &with_key("x1", Some("A"))).await;
    enqueue(s, &with_key("x2", Some("A"))).await;
    enqueue(s, &with_key("y1", Some("B"))).await;
    enqueue(s, &with_key("z", None)).await;
    enqueue(s, &with_key("z2", None)).await;
    let claimed = s
        .claim_from_queue("keyed", e1, 10, &filter(WF))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["#6", "#8", "#9", "#10"]);
    assert!(
        s.claim_from_queue("keyed", e2, 10, &filter(WF))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.release(x1, &lease(&claimed[0]), None).await.unwrap());
    assert_eq!(
        ids(&s
            .claim_from_queue("keyed", e2, 10, &filter(WF))
            .await
            .unwrap()),
        ["#6"]
    );
    // The room left is taken by the best candidates that fit.
    let two = QueueLimits {
        key_concurrency: Some(2),
        ..QueueLimits::default()
    };
    declare(s, "keyed", two).await;
    assert_eq!(
        ids(&s
            .claim_from_queue("keyed", e2, 10, &filter(WF))
            .await
            .unwrap()),
        ["#7"]
    );

    // Rate: starts within the period count, finished ones too.
    let rated = QueueLimits {
        rate_limit: Some(2),
        rate_period_ms: Some(3_600_000),
        ..QueueLimits::default()
    };
    declare(s, "rated", rated).await;
    for key in ["r1", "r2", "r3"] {
        enqueue(s, &work(key, "rated")).await;
    }
    let first = s
        .claim_from_queue("rated", e1, 1, &filter(WF))
        .await
        .unwrap();
    assert_eq!(ids(&first), ["#11"]);
    assert!(
        s.finish(
            first[0].id,
            &lease(&first[0]),
            Status::Completed,
            None,
            None,
            None
        )
        .await
        .unwrap()
    );
    assert_eq!(
        ids(&s
            .claim_from_queue("rated", e1, 10, &filter(WF))
            .await
            .unwrap()),
        ["#12"]
    );
    assert!(
        s.claim_from_queue("rated", e2, 10, &filter(WF))
            .await
            .unwrap()
            .is_empty()
    );
    // A rate limit without a period limits nothing.
    let no_period = QueueLimits {
        rate_limit: Some(0),
        ..QueueLimits::default()
    };
    declare(s, "rated", no_period).await;
    assert_eq!(
        ids(&s
            .claim_from_queue("rated", e2, 10, &filter(WF))
            .await
            .unwrap()),
        ["#13"]
    );
}

pub(super) async fn claim_orphans_of_dead_owners(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (e1, e2) = (live(s, 1).await, live(s, 2).await);
    let r1 = root(s, "r1", e1).await;
    let r2 = root(s, "r2", e1).await;
    start_child(s, &child(&r1, 0, "c#0", lease(&r1))).await;
    let queued = enqueue(s, &work("queued", "q")).await;
    declare(s, "q", QueueLimits::default()).await;
    let e3 = dead(s, 3).await;
    let started = s
        .start_root(&NewRoot {
            key: "other",
            name: "other",
            input: None,
            owner: e3,
        })
        .await
        .unwrap();
    assert!(matches!(started, Started::Claimed { created: true, .. }));
    assert!(
        s.claim_orphans(e2, 10, &filter(WF))
            .await
            .unwrap()
            .is_empty(),
        "owner alive"
    );
    s.expire_executor(e1).await.unwrap();
    assert!(
        s.claim_orphans(e1, 10, &filter(WF))
            .await
            .unwrap()
            .is_empty(),
        "its own"
    );
    let one = s.claim_orphans(e2, 1, &filter(WF)).await.unwrap();
    assert_eq!(
        one.iter().map(wf).collect::<Vec<_>>(),
        [r#"#1 r1 wf RUNNING in={"n":1} owner=E2 epoch=2 attempts=2 recoveries=1 started=now"#]
    );
    assert_eq!(
        ids(&s.claim_orphans(e2, 10, &filter(WF)).await.unwrap()),
        [id(r2.id)]
    );
    // Children and queued roots are no orphans; names filter.
    assert!(
        s.claim_orphans(e2, 10, &filter(WF))
            .await
            .unwrap()
            .is_empty()
    );
    let other = s
        .claim_orphans(e2, 10, &filter(r#"["other", "wf"]"#))
        .await
        .unwrap();
    assert_eq!(
        other.iter().map(wf).collect::<Vec<_>>(),
        ["#5 other other RUNNING owner=E2 epoch=2 attempts=2 recoveries=1 started=now"]
    );
    assert!(row(s, queued).await.contains("PENDING"));
    // A root released by its owner (no owner now) is claimed, no recovery.
    let r6 = root(s, "r6", e2).await;
    assert!(s.release(r6.id, &lease(&r6), None).await.unwrap());
    let e4 = live(s, 4).await;
    let back = s.claim_orphans(e4, 10, &filter(WF)).await.unwrap();
    assert_eq!(
        back.iter().map(wf).collect::<Vec<_>>(),
        [r#"#6 r6 wf RUNNING in={"n":1} owner=E4 epoch=2 attempts=2 started=now"#]
    );
}

pub(super) async fn release_dead_owned_stray(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let e2 = live(s, 2).await;
    let a = root(s, "a", e1).await;
    let b = root(s, "b", e2).await;
    let c = root(s, "c", e2).await;
    let d = root(s, "d", e2).await;
    assert!(
        s.finish(c.id, &lease(&c), Status::Completed, None, None, None)
            .await
            .unwrap()
    );
    assert_eq!(s.transition(d.id, Transition::Pause).await.unwrap(), 1);
    assert!(s.release_dead().await.unwrap().is_empty());
    s.expire_executor(e2).await.unwrap();
    let mut released: Vec<String> = s
        .release_dead()
        .await
        .unwrap()
        .into_iter()
        .map(id)
        .collect();
    released.sort();
    assert_eq!(released, ["#2", "#4"]);
    assert_eq!(
        row(s, b.id).await,
        r#"#2 b wf PENDING in={"n":1} epoch=1 attempts=1 recoveries=1 started=now"#
    );
    assert_eq!(
        row(s, d.id).await,
        r#"#4 d wf PAUSED in={"n":1} epoch=1 attempts=1 recoveries=1 started=now"#
    );
    assert_eq!(
        row(s, c.id).await,
        r#"#3 c wf COMPLETED in={"n":1} owner=E2 epoch=1 attempts=1 started=now completed=now"#
    );
    assert!(s.release_dead().await.unwrap().is_empty());
    // Everything an executor owns, or all but what it runs.
    let f = root(s, "f", e1).await;
    let g = root(s, "g", e1).await;
    assert_eq!(s.release_stray(e1, &[a.id, f.id]).await.unwrap(), 1);
    assert!(!row(s, g.id).await.contains("owner="));
    assert!(row(s, f.id).await.contains("owner=E1"));
    assert_eq!(s.release_owned(e1).await.unwrap(), 2);
    assert_eq!(s.release_owned(e1).await.unwrap(), 0);
    assert_eq!(
        row(s, a.id).await,
        r#"#1 a wf PENDING in={"n":1} epoch=1 attempts=1 started=now"#
    );
    // A finished row still owned is released by its lease (status kept).
    let h = root(s, "h", e1).await;
    let hl = lease(&h);
    assert!(
        s.finish(h.id, &hl, Status::Completed, None, None, None)
            .await
            .unwrap()
    );
    assert_eq!(
        s.release_owned(e1).await.unwrap(),
        0,
        "finished: not owned work"
    );
    assert!(s.release(h.id, &hl, None).await.unwrap());
    assert_eq!(
        row(s, h.id).await,
        r#"#7 h wf COMPLETED in={"n":1} epoch=1 attempts=1 started=now completed=now"#
    );
}

pub(super) async fn summary_and_tree_shapes(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let r = root(s, "r", e1).await;
    let l = lease(&r);
    assert!(s.set_timeout(r.id, 3_600_000).await.unwrap());
    assert!(written(s, &done(r.id, 0, "fetch#0", r#"{"pages":3}"#, l)).await);
    let c = start_child(s, &child(&r, 1, "c#0", l)).await;
    assert!(written(s, &done(c.id, 0, "inner#0", "1", l)).await);
    assert!(
        s.finish(c.id, &l, Status::Completed, Some("2".into()), None, None)
            .await
            .unwrap()
    );
    spawn(s, &r, 2, "s#0", l).await;
    let retrying = Checkpoint {
        error: Some("flaky".into()),
        retry_count: 1,
        max_retries: 4,
        ..cp(r.id, 3, "fetch#1", StepKind::Step, Status::Pending, l)
    };
    assert!(written(s, &retrying).await);
    let waiting = Checkpoint {
        wake_ms: Some(FAR_OFF),
        ..cp(r.id, 4, "t#0", StepKind::Recv, Status::Pending, l)
    };
    assert_eq!(s.receive(&waiting, "t").await.unwrap(), Received::Waiting);
    let summary_of = |w| {
        let store = store.clone();
        async move { store.summary(w).await.unwrap().as_ref().map(summary) }
    };
    assert_eq!(
        summary_of(r.id).await.as_deref(),
        Some(
            r#"#1 r wf RUNNING owner=E1 attempts=1 started=now timeout=3600000 deadline=now+60m in={"n":1}"#
        )
    );
    assert_eq!(summary_of(unknown()).await, None);
    assert!(s.tree(unknown()).await.unwrap().is_none());
    // Suspended: the wake-up and what it waits for show.
    let suspension = Suspension {
        workflow: r.id,
        position: 4,
        wake_ms: Some(FAR_OFF),
        wait_for: Some("message t".into()),
    };
    assert!(s.release(r.id, &l, Some(&suspension)).await.unwrap());
    let tree = s.tree(r.id).await.unwrap().expect("a tree");
    let mut lines = Vec::new();
    outline(&tree, 0, &mut lines);
    assert_eq!(
        lines,
        [
            r#"#1 r wf PENDING attempts=1 started=now timeout=3600000 deadline=now+60m wake=4000000000000 waiting=message t in={"n":1}"#,
            r#"  @0 fetch#0 fetch STEP COMPLETED x1 finished=now out={"pages":3}"#,
            "  @1 c#0 c WORKFLOW COMPLETED x1 finished=now",
            "    #2 c#0 c COMPLETED root=#1 parent=#1 at=1 attempts=1 started=now finished=now in=7 out=2",
            "      @0 inner#0 inner STEP COMPLETED x1 finished=now out=1",
            "  @2 s#0 s SPAWN COMPLETED x1 finished=now",
            "    #3 s#0 s PENDING root=#1 parent=#1 at=2 queue=default in=7",
            "  @3 fetch#1 fetch STEP PENDING x2 max=4 err=flaky",
            "  @4 t#0 t RECV PENDING x1 wake=4000000000000",
        ]
    );
    // A subtree reads from its own root.
    let sub = s.tree(c.id).await.unwrap().expect("a subtree");
    let mut lines = Vec::new();
    outline(&sub, 0, &mut lines);
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("#2 c#0 c COMPLETED"));
}

/// `queues`: declared queues and queues with work, by name, with their
/// limits and their unfinished work counted where it is.
pub(super) async fn queues_count_work_where_it_is(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let limits = QueueLimits {
        concurrency: Some(2),
        rate_limit: Some(10),
        rate_period_ms: Some(1_000),
        key_concurrency: Some(1),
    };
    declare(s, "lim", limits).await;
    let first = enqueue(s, &work("q1", "lim")).await;
    enqueue(s, &work("q2", "lim")).await;
    let paused = enqueue(s, &work("q3", "lim")).await;
    let delayed = NewEnqueued {
        delay_ms: Some(3_600_000),
        ..work("q4", "lim")
    };
    enqueue(s, &delayed).await;
    // An undeclared queue with work, and a queue whose work finished.
    enqueue(s, &work("o1", "other")).await;
    declare(s, "finished", QueueLimits::default()).await;
    let done = enqueue(s, &work("f1", "finished")).await;
    assert_eq!(s.transition(paused, Transition::Pause).await.unwrap(), 1);
    let claimed = s.claim_from_queue("lim", e1, 1, &filter(WF)).await.unwrap();
    assert_eq!(ids(&claimed), [id(first)]);
    let finished = s
        .claim_from_queue("finished", e1, 1, &filter(WF))
        .await
        .unwrap();
    assert_eq!(ids(&finished), [id(done)]);
    assert!(
        s.finish(
            done,
            &lease(&finished[0]),
            Status::Completed,
            None,
            None,
            None
        )
        .await
        .unwrap()
    );

    let queues = s.queues().await.unwrap();
    let shown: Vec<_> = queues
        .iter()
        .map(|q| {
            (
                q.name.as_str(),
                q.declared,
                (
                    q.concurrency,
                    q.concurrency_per_key,
                    q.rate_limit,
                    q.rate_period_ms,
                ),
                (q.running, q.queued, q.waiting, q.paused),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("default", true, (None, None, None, None), (0, 0, 0, 0)),
            ("finished", true, (None, None, None, None), (0, 0, 0, 0)),
            (
                "lim",
                true,
                (Some(2), Some(1), Some(10), Some(1_000)),
                (1, 1, 1, 1)
            ),
            ("other", false, (None, None, None, None), (0, 1, 0, 0)),
        ]
    );
}
