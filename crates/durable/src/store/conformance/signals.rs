//! Scenarios: messages, suspension and wake-ups, joins, transitions of subtrees.

#![allow(clippy::wildcard_imports)]

use super::*;

pub(super) async fn send_receive_with_keys(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let r = root(s, "r", e1).await;
    let l = lease(&r);
    assert!(
        s.send(&message(r.id, "t", Some("k"), r#""a""#))
            .await
            .unwrap()
    );
    assert!(
        !s.send(&message(r.id, "t", Some("k"), r#""dup""#))
            .await
            .unwrap()
    );
    assert!(s.send(&message(r.id, "t", None, r#""b""#)).await.unwrap());
    assert!(s.send(&message(r.id, "other", None, "0")).await.unwrap());
    assert_eq!(
        err(s.send(&message(unknown(), "t", None, "0")).await),
        format!("NotFound({})", unknown())
    );
    assert!(s.has_message(r.id, "t").await.unwrap());
    assert!(!s.has_message(r.id, "u").await.unwrap());
    let recv = |position, key| Checkpoint {
        wake_ms: Some(FAR_OFF),
        ..cp(r.id, position, key, StepKind::Recv, Status::Pending, l)
    };
    // Oldest first, each taken once, recorded with the entry.
    assert_eq!(
        s.receive(&recv(0, "t#0"), "t").await.unwrap(),
        Received::Message(r#""a""#.into())
    );
    assert_eq!(
        entry_at(s, r.id, 0).await.as_deref(),
        Some(r#"@0 t#0 t RECV COMPLETED out={"woken":"a"} wake=4000000000000 completed=now"#)
    );
    assert_eq!(
        s.receive(&recv(1, "t#1"), "t").await.unwrap(),
        Received::Message(r#""b""#.into())
    );
    assert!(!s.has_message(r.id, "t").await.unwrap());
    // Nothing left: the call is recorded as waiting (again, idempotently).
    assert_eq!(
        s.receive(&recv(2, "t#2"), "t").await.unwrap(),
        Received::Waiting
    );
    assert_eq!(
        s.receive(&recv(2, "t#2"), "t").await.unwrap(),
        Received::Waiting
    );
    assert_eq!(
        entry_at(s, r.id, 2).await.as_deref(),
        Some("@2 t#2 t RECV PENDING wake=4000000000000")
    );
    // Refused: a stale lease, or a finished entry; the message stays.
    assert!(s.send(&message(r.id, "t", None, r#""c""#)).await.unwrap());
    let mut fenced = recv(2, "t#2");
    fenced.lease = stale(l);
    assert_eq!(s.receive(&fenced, "t").await.unwrap(), Received::Refused);
    assert_eq!(
        s.receive(&recv(0, "t#0"), "t").await.unwrap(),
        Received::Refused
    );
    assert!(s.has_message(r.id, "t").await.unwrap());
    assert_eq!(
        s.receive(&recv(2, "t#2"), "t").await.unwrap(),
        Received::Message(r#""c""#.into())
    );
    // A finished recipient: an error, unless the key got through before.
    assert!(
        s.finish(r.id, &l, Status::Completed, None, None, None)
            .await
            .unwrap()
    );
    assert_eq!(
        err(s.send(&message(r.id, "t", None, "0")).await),
        "InvalidTransition(#1 COMPLETED send a message to)"
    );
    assert!(!s.send(&message(r.id, "t", Some("k"), "0")).await.unwrap());
    assert_eq!(
        err(s.send(&message(r.id, "t", Some("k2"), "0")).await),
        "InvalidTransition(#1 COMPLETED send a message to)"
    );
    // A message to a child goes to the child; the run unit (the root) is
    // the one that would wake.
    let e2 = live(s, 2).await;
    let q = root(s, "q", e2).await;
    let c = start_child(s, &child(&q, 0, "c#0", lease(&q))).await;
    assert!(s.send(&message(c.id, "t", None, "5")).await.unwrap());
    assert!(s.has_message(c.id, "t").await.unwrap());
    assert!(!s.has_message(q.id, "t").await.unwrap());
}

pub(super) async fn suspension_woken_by_send_and_waker(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (e1, e2) = (live(s, 1).await, live(s, 2).await);
    let suspend = |w: Uuid, position, wake_ms, what: &str| Suspension {
        workflow: w,
        position,
        wake_ms,
        wait_for: Some(what.to_string()),
    };
    // A recv suspends until its time; a message wakes it at once.
    let r = root(s, "r", e1).await;
    let l = lease(&r);
    let recv = Checkpoint {
        wake_ms: Some(FAR_OFF),
        ..cp(r.id, 0, "t#0", StepKind::Recv, Status::Pending, l)
    };
    assert_eq!(s.receive(&recv, "t").await.unwrap(), Received::Waiting);
    assert!(
        s.release(
            r.id,
            &l,
            Some(&suspend(r.id, 0, Some(FAR_OFF), "message t"))
        )
        .await
        .unwrap()
    );
    assert_eq!(
        row(s, r.id).await,
        r#"#1 r wf PENDING in={"n":1} epoch=1 avail=4000000000000 wait=message t attempts=1 started=now"#
    );
    assert!(
        s.claim_orphans(e2, 10, &filter(WF))
            .await
            .unwrap()
            .is_empty()
    );
    // A message of another topic does not wake it.
    assert!(s.send(&message(r.id, "u", None, "0")).await.unwrap());
    assert!(row(s, r.id).await.contains("avail=4000000000000"));
    assert!(s.send(&message(r.id, "t", None, "1")).await.unwrap());
    assert_eq!(
        row(s, r.id).await,
        r#"#1 r wf PENDING in={"n":1} epoch=1 wait=message t attempts=1 started=now"#
    );
    let claimed = s.claim_orphans(e2, 10, &filter(WF)).await.unwrap();
    assert_eq!(
        claimed.iter().map(wf).collect::<Vec<_>>(),
        [r#"#1 r wf RUNNING in={"n":1} owner=E2 epoch=2 attempts=2 started=now"#]
    );

    // What it waits for came before the release: it stays claimable.
    let q = root(s, "q", e1).await;
    let ql = lease(&q);
    let recv = Checkpoint {
        wake_ms: Some(FAR_OFF),
        ..cp(q.id, 0, "t#0", StepKind::Recv, Status::Pending, ql)
    };
    assert_eq!(s.receive(&recv, "t").await.unwrap(), Received::Waiting);
    assert!(s.send(&message(q.id, "t", None, "1")).await.unwrap());
    assert!(row(s, q.id).await.contains("owner=E1"), "owned: not woken");
    assert!(
        s.release(
            q.id,
            &ql,
            Some(&suspend(q.id, 0, Some(FAR_OFF), "message t"))
        )
        .await
        .unwrap()
    );
    assert_eq!(
        row(s, q.id).await,
        r#"#2 q wf PENDING in={"n":1} epoch=1 wait=message t attempts=1 started=now"#
    );
    // A release under a stale lease, or of an unknown row, does nothing.
    assert!(
        !s.release(q.id, &ql, Some(&suspend(q.id, 0, Some(FAR_OFF), "x")))
            .await
            .unwrap()
    );
    assert!(!s.release(unknown(), &ql, None).await.unwrap());

    // The test waker: completes the waiting call and wakes the workflow.
    let w = root(s, "w", e1).await;
    let wl = lease(&w);
    let wait = Checkpoint {
        wake_ms: Some(FAR_OFF),
        ..cp(w.id, 0, "approve#0", StepKind::Wait, Status::Pending, wl)
    };
    assert!(written(s, &wait).await);
    assert!(
        s.release(w.id, &wl, Some(&suspend(w.id, 0, Some(FAR_OFF), "approve")))
            .await
            .unwrap()
    );
    assert!(row(s, w.id).await.contains("avail=4000000000000"));
    assert!(!s.wake(w.id, "other", r#"{"woken":1}"#).await.unwrap());
    assert!(s.wake(w.id, "approve", r#"{"woken":1}"#).await.unwrap());
    assert_eq!(
        entry_at(s, w.id, 0).await.as_deref(),
        Some(
            r#"@0 approve#0 approve WAIT COMPLETED out={"woken":1} wake=4000000000000 completed=now"#
        )
    );
    assert_eq!(
        row(s, w.id).await,
        r#"#3 w wf PENDING in={"n":1} epoch=1 wait=approve attempts=1 started=now"#
    );
    assert!(
        !s.wake(w.id, "approve", "{}").await.unwrap(),
        "nothing waits any more"
    );
    assert_eq!(
        err(s.wake(unknown(), "approve", "{}").await),
        format!("NotFound({})", unknown())
    );
    // A sleep (nothing wakes it but time) that is due: claimable, and a
    // claim clears what it waited for but not its wake-up time.
    let z = root(s, "z", e1).await;
    let zl = lease(&z);
    let sleep = Checkpoint {
        wake_ms: Some(LONG_AGO),
        ..cp(z.id, 0, "nap#0", StepKind::Sleep, Status::Pending, zl)
    };
    assert!(written(s, &sleep).await);
    assert!(
        s.release(z.id, &zl, Some(&suspend(z.id, 0, Some(LONG_AGO), "sleep")))
            .await
            .unwrap()
    );
    let claimed = s.claim_orphans(e2, 10, &filter(WF)).await.unwrap();
    assert_eq!(ids(&claimed), ["#2", "#3", "#4"]);
    assert_eq!(
        row(s, z.id).await,
        r#"#4 z wf RUNNING in={"n":1} owner=E2 epoch=2 avail=1000 attempts=2 started=now"#
    );
    // A finished workflow's waits are not woken.
    let zl = lease(&claimed[2]);
    assert!(
        s.finish(z.id, &zl, Status::Failed, None, Some("x".into()), None)
            .await
            .unwrap()
    );
    assert!(!s.wake(z.id, "nap", "{}").await.unwrap());
}

pub(super) async fn finished_or_cancelled_child_wakes_joining_parent(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (e1, e2) = (live(s, 1).await, live(s, 2).await);
    declare(s, "default", QueueLimits::default()).await;
    let p = root(s, "p", e1).await;
    let l = lease(&p);
    let a = spawn(s, &p, 0, "a#0", l).await;
    let b = spawn(s, &p, 1, "b#0", l).await;
    let c = spawn(s, &p, 2, "c#0", l).await;
    let join = |position, key, child| Checkpoint {
        child: Some(child),
        ..cp(p.id, position, key, StepKind::Join, Status::Pending, l)
    };
    assert!(written(s, &join(3, "join#0", a.id)).await);
    let joining = |position| Suspension {
        workflow: p.id,
        position,
        wake_ms: None,
        wait_for: Some("child".into()),
    };
    assert!(s.release(p.id, &l, Some(&joining(3))).await.unwrap());
    assert_eq!(
        row(s, p.id).await,
        r#"#1 p wf PENDING in={"n":1} epoch=1 avail=MAX wait=child attempts=1 started=now"#
    );
    // The children run under their own leases.
    let names = r#"["a", "b", "c"]"#;
    let claimed = s
        .claim_from_queue("default", e2, 10, &filter(names))
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(wf).collect::<Vec<_>>(),
        [
            "#2 a#0 a RUNNING root=#1 parent=#1 at=0 in=7 owner=E2 epoch=1 queue=default attempts=1 started=now",
            "#3 b#0 b RUNNING root=#1 parent=#1 at=1 in=7 owner=E2 epoch=1 queue=default attempts=1 started=now",
            "#4 c#0 c RUNNING root=#1 parent=#1 at=2 in=7 owner=E2 epoch=1 queue=default attempts=1 started=now",
        ]
    );
    // Another child finishing does not wake a join of `a`.
    let bl = lease(&claimed[1]);
    assert!(
        s.finish(
            b.id,
            &bl,
            Status::Completed,
            Some("2".into()),
            None,
            Some(p.id)
        )
        .await
        .unwrap()
    );
    assert!(row(s, p.id).await.contains("avail=MAX"));
    // `a` finishing wakes it, in the same operation.
    let al = lease(&claimed[0]);
    assert!(
        !s.finish(a.id, &stale(al), Status::Completed, None, None, Some(p.id))
            .await
            .unwrap()
    );
    assert!(
        row(s, p.id).await.contains("avail=MAX"),
        "a fenced finish wakes nothing"
    );
    assert!(
        s.finish(
            a.id,
            &al,
            Status::Completed,
            Some("1".into()),
            None,
            Some(p.id)
        )
        .await
        .unwrap()
    );
    assert_eq!(
        row(s, p.id).await,
        r#"#1 p wf PENDING in={"n":1} epoch=1 wait=child attempts=1 started=now"#
    );
    assert!(
        !s.finish(a.id, &al, Status::Completed, None, None, Some(p.id))
            .await
            .unwrap(),
        "finished once"
    );
    assert_eq!(
        row(s, a.id).await,
        "#2 a#0 a COMPLETED root=#1 parent=#1 at=0 in=7 out=1 owner=E2 epoch=1 queue=default attempts=1 started=now completed=now"
    );
    // The parent is claimed again; it joins `c`, which is then cancelled
    // on its own: that wakes it too.
    let p2 = s
        .claim_from_queue("default", e1, 10, &filter(WF))
        .await
        .unwrap();
    assert!(p2.is_empty(), "an inline root is no queue's work");
    let p2 = s.claim_orphans(e1, 10, &filter(WF)).await.unwrap();
    assert_eq!(ids(&p2), ["#1"]);
    let l2 = lease(&p2[0]);
    let join_c = Checkpoint {
        child: Some(c.id),
        ..cp(p.id, 4, "join#1", StepKind::Join, Status::Pending, l2)
    };
    assert!(written(s, &join_c).await);
    assert!(s.release(p.id, &l2, Some(&joining(4))).await.unwrap());
    assert!(row(s, p.id).await.contains("avail=MAX"));
    assert_eq!(s.transition(c.id, Transition::Cancel).await.unwrap(), 1);
    assert_eq!(
        row(s, p.id).await,
        r#"#1 p wf PENDING in={"n":1} epoch=2 wait=child attempts=2 started=now"#
    );
    // A join whose child already finished stays claimable at release.
    let p3 = s.claim_orphans(e2, 10, &filter(WF)).await.unwrap();
    let l3 = lease(&p3[0]);
    let join_b = Checkpoint {
        child: Some(b.id),
        ..cp(p.id, 5, "join#2", StepKind::Join, Status::Pending, l3)
    };
    assert!(written(s, &join_b).await);
    assert!(s.release(p.id, &l3, Some(&joining(5))).await.unwrap());
    assert_eq!(
        row(s, p.id).await,
        r#"#1 p wf PENDING in={"n":1} epoch=3 wait=child attempts=3 recoveries=0 started=now"#
            .replace(" recoveries=0", "")
    );
    // A select waits for the first of its children (listed in its output).
    let p4 = s.claim_orphans(e1, 10, &filter(WF)).await.unwrap();
    let l4 = lease(&p4[0]);
    let d = spawn(s, &p4[0], 6, "d#0", l4).await;
    let select = Checkpoint {
        output: Some(serde_json::to_string(&[d.id]).unwrap()),
        ..cp(p.id, 7, "select#0", StepKind::Select, Status::Pending, l4)
    };
    assert!(written(s, &select).await);
    assert!(s.release(p.id, &l4, Some(&joining(7))).await.unwrap());
    assert!(row(s, p.id).await.contains("avail=MAX"));
    let dc = s
        .claim_from_queue("default", e2, 10, &filter(r#"["d"]"#))
        .await
        .unwrap();
    assert!(
        s.finish(
            d.id,
            &lease(&dc[0]),
            Status::Failed,
            None,
            Some("no".into()),
            Some(p.id)
        )
        .await
        .unwrap()
    );
    assert!(!row(s, p.id).await.contains("avail="));
}

pub(super) async fn transitions_cascade_and_are_checked(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let e1 = live(s, 1).await;
    let r = root(s, "r", e1).await;
    let l = lease(&r);
    let c = start_child(s, &child(&r, 0, "c#0", l)).await;
    let g = start_child(s, &child(&c, 0, "g#0", l)).await;
    let sp = spawn(s, &r, 1, "s#0", l).await;
    let f = start_child(s, &child(&r, 2, "f#0", l)).await;
    assert!(
        s.finish(f.id, &l, Status::Completed, Some("0".into()), None, None)
            .await
            .unwrap()
    );
    let statuses = || {
        let store = store.clone();
        let all = [r.id, c.id, g.id, sp.id, f.id];
        async move {
            let mut out = Vec::new();
            for w in all {
                let row = store.workflow(w).await.unwrap().expect("a workflow");
                out.push(format!(
                    "{}={}{}",
                    id(w),
                    row.status,
                    if row.completed_ms.is_some() { "+" } else { "" }
                ));
            }
            out.join(" ")
        }
    };
    assert_eq!(
        statuses().await,
        "#1=RUNNING #2=RUNNING #3=RUNNING #4=PENDING #5=COMPLETED+"
    );
    assert_eq!(s.transition(r.id, Transition::Pause).await.unwrap(), 4);
    assert_eq!(
        statuses().await,
        "#1=PAUSED #2=PAUSED #3=PAUSED #4=PAUSED #5=COMPLETED+"
    );
    assert_eq!(
        err(s.transition(r.id, Transition::Pause).await),
        "InvalidTransition(#1 PAUSED pause)"
    );
    // Resuming a paused child: it runs, its paused descendants pend.
    assert_eq!(s.transition(c.id, Transition::Resume).await.unwrap(), 2);
    assert_eq!(
        statuses().await,
        "#1=PAUSED #2=RUNNING #3=PENDING #4=PAUSED #5=COMPLETED+"
    );
    assert_eq!(s.transition(r.id, Transition::Resume).await.unwrap(), 2);
    assert_eq!(
        statuses().await,
        "#1=RUNNING #2=RUNNING #3=PENDING #4=PENDING #5=COMPLETED+"
    );
    assert_eq!(
        err(s.transition(r.id, Transition::Resume).await),
        "InvalidTransition(#1 RUNNING resume)"
    );
    assert_eq!(
        err(s.transition(f.id, Transition::Cancel).await),
        "InvalidTransition(#5 COMPLETED cancel)"
    );
    assert_eq!(
        err(s.transition(f.id, Transition::Pause).await),
        "InvalidTransition(#5 COMPLETED pause)"
    );
    assert_eq!(s.transition(g.id, Transition::Pause).await.unwrap(), 1);
    assert_eq!(s.transition(r.id, Transition::Cancel).await.unwrap(), 4);
    assert_eq!(
        statuses().await,
        "#1=CANCELLED+ #2=CANCELLED+ #3=CANCELLED+ #4=CANCELLED+ #5=COMPLETED+"
    );
    for t in [Transition::Pause, Transition::Resume, Transition::Cancel] {
        assert_eq!(
            err(s.transition(r.id, t).await),
            format!("InvalidTransition(#1 CANCELLED {})", t.verb())
        );
        assert_eq!(
            err(s.transition(unknown(), t).await),
            format!("NotFound({})", unknown())
        );
    }
    // The owner is kept; a cancelled row is finished, so a commit is
    // still fenced only by the lease (the check refuses it first).
    assert!(row(s, r.id).await.contains("owner=E1"));
    assert!(
        !s.finish(r.id, &l, Status::Completed, None, None, None)
            .await
            .unwrap()
    );
}
