//! Action runs, their logs and the audit trail, on both backends: every test
//! in `suite` runs as `sqlite::<name>` and `postgres::<name>`.

use std::collections::HashSet;
use std::time::Duration;

use portolan_store::testing::TestDatabase;
use portolan_store::{
    AuditFilter, NewAuditEntry, NewLogLine, NewRun, RetryRun, RunEnd, RunFilter, RunStatus, Store,
    StoreError,
};
use serde_json::{json, Value};

portolan_store::both_backends!(
    each_run_is_claimed_once_even_by_racing_workers,
    approval_holds_a_run_until_someone_decides,
    cancel_ends_waiting_runs_and_flags_running_ones,
    retry_requeues_the_same_run_as_its_next_attempt,
    expired_leases_fail_runs_and_erase_their_secrets,
    log_lines_are_numbered_per_run_across_writers,
    runs_and_audit_entries_filter_and_page,
);

async fn run<F, Fut>(db: TestDatabase, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let store = Store::connect(&db.url).await.expect("connect");
    test(store.clone()).await;
    store.close().await;
    db.drop_db().await;
}

const LEASE: Duration = Duration::from_secs(30);

fn new_run(action: &str, approval: Option<&str>) -> NewRun {
    NewRun {
        kind: "action".into(),
        action: action.into(),
        action_version: "1.0.0".into(),
        entity_ref: Some("component:default/payments".into()),
        input: json!({"reason": "deploy", "password": "[secret]"}),
        secret_input: Some(json!({"/password": "hunter22"})),
        actor: "token:aa (alice)".into(),
        approval_role: approval.map(str::to_owned),
        running_on: None,
    }
}

fn audit(actor: &str, verb: &str) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.into(),
        verb: verb.into(),
        subject: String::new(),
        detail: json!({"note": verb}),
    }
}

fn ended(status: RunStatus) -> RunEnd {
    RunEnd {
        status,
        output: Some(json!({"ok": true})),
        links: json!([{"url": "https://example.invalid"}]),
        error: None,
    }
}

/// Claims with `owner` until a run comes back (SQLite may answer "busy"
/// under contention; a worker retries on its next tick).
async fn claim(store: &Store, owner: &str) -> Option<portolan_store::ClaimedRun> {
    loop {
        match store.claim_run(owner, LEASE).await {
            Ok(found) => return found,
            Err(StoreError::Database(_)) => tokio::task::yield_now().await,
            Err(e) => panic!("{e}"),
        }
    }
}

mod suite {
    use super::*;

    pub async fn each_run_is_claimed_once_even_by_racing_workers(store: Store) {
        let mut ids = HashSet::new();
        for i in 0..40 {
            let run = store
                .create_run(
                    &new_run(&format!("a{i}"), None),
                    &audit("alice", "run.start"),
                )
                .await
                .unwrap();
            assert_eq!(run.status, RunStatus::Queued);
            assert_eq!(run.attempt, 1);
            ids.insert(run.id);
        }
        let mut workers = Vec::new();
        for w in 0..4 {
            let store = store.clone();
            workers.push(tokio::spawn(async move {
                let owner = format!("replica-{w}");
                let mut mine = Vec::new();
                while let Some(claimed) = claim(&store, &owner).await {
                    assert_eq!(claimed.run.status, RunStatus::Running);
                    assert_eq!(claimed.run.lease_owner.as_deref(), Some(owner.as_str()));
                    assert_eq!(claimed.secret_input, Some(json!({"/password": "hunter22"})));
                    mine.push(claimed.run.id);
                }
                mine
            }));
        }
        let mut claimed = Vec::new();
        for w in workers {
            claimed.extend(w.await.unwrap());
        }
        assert_eq!(claimed.len(), 40, "every run claimed exactly once");
        assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), ids);
    }

    pub async fn approval_holds_a_run_until_someone_decides(store: Store) {
        let held = store
            .create_run(
                &new_run("deploy", Some("admin")),
                &audit("alice", "run.start"),
            )
            .await
            .unwrap();
        assert_eq!(held.status, RunStatus::AwaitingApproval);
        assert_eq!(held.approval.as_ref().unwrap().required, "admin");
        assert!(
            claim(&store, "w").await.is_none(),
            "a held run is not claimable"
        );

        let approved = store
            .decide_run(
                &held.id,
                true,
                "token:bb (bob)",
                Some("looks fine"),
                &audit("bob", "run.approve"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(approved.status, RunStatus::Queued);
        let a = approved.approval.unwrap();
        assert_eq!(
            (a.decision.as_deref(), a.by.as_deref(), a.comment.as_deref()),
            (Some("approved"), Some("token:bb (bob)"), Some("looks fine"))
        );
        // Deciding twice does nothing.
        assert!(store
            .decide_run(
                &held.id,
                false,
                "token:cc",
                Some("no"),
                &audit("c", "run.deny")
            )
            .await
            .unwrap()
            .is_none());
        assert_eq!(claim(&store, "w").await.unwrap().run.id, held.id);

        let other = store
            .create_run(
                &new_run("deploy", Some("admin")),
                &audit("alice", "run.start"),
            )
            .await
            .unwrap();
        let denied = store
            .decide_run(
                &other.id,
                false,
                "token:bb (bob)",
                Some("not today"),
                &audit("bob", "run.deny"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(denied.status, RunStatus::Cancelled);
        assert_eq!(denied.error.as_ref().unwrap()["code"], "denied");
        assert!(denied.finished_at.is_some());
        let verbs: Vec<String> = store
            .list_audit(&AuditFilter {
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(verbs, ["run.deny", "run.start", "run.approve", "run.start"]);
    }

    pub async fn cancel_ends_waiting_runs_and_flags_running_ones(store: Store) {
        let waiting = store
            .create_run(&new_run("a", None), &audit("alice", "run.start"))
            .await
            .unwrap();
        let cancelled = store
            .cancel_run(
                &waiting.id,
                "token:aa (alice)",
                &audit("alice", "run.cancel"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cancelled.status, RunStatus::Cancelled);
        assert_eq!(cancelled.cancelled_by.as_deref(), Some("token:aa (alice)"));
        assert!(claim(&store, "w").await.is_none());

        let running = store
            .create_run(&new_run("b", None), &audit("alice", "run.start"))
            .await
            .unwrap();
        assert_eq!(claim(&store, "w").await.unwrap().run.id, running.id);
        assert_eq!(
            store.renew_run(&running.id, "w", LEASE).await.unwrap(),
            Some(false)
        );
        let flagged = store
            .cancel_run(
                &running.id,
                "token:zz (admin)",
                &audit("admin", "run.cancel"),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(flagged.status, RunStatus::Running, "the worker ends it");
        assert!(flagged.cancel_requested);
        assert_eq!(
            store.renew_run(&running.id, "w", LEASE).await.unwrap(),
            Some(true)
        );
        let mut end = ended(RunStatus::Cancelled);
        end.output = None;
        assert!(store.finish_run(&running.id, "w", &end).await.unwrap());
        assert!(
            store
                .cancel_run(&running.id, "token:aa", &audit("alice", "run.cancel"))
                .await
                .unwrap()
                .is_none(),
            "an ended run cannot be cancelled"
        );
    }

    pub async fn retry_requeues_the_same_run_as_its_next_attempt(store: Store) {
        let first = store
            .create_run(&new_run("a", None), &audit("alice", "run.start"))
            .await
            .unwrap();
        claim(&store, "w").await.unwrap();
        let mut end = ended(RunStatus::Failed);
        end.error = Some(json!({"code": "trap", "message": "boom"}));
        assert!(!store
            .finish_run(&first.id, "someone-else", &end)
            .await
            .unwrap());
        assert!(store.finish_run(&first.id, "w", &end).await.unwrap());
        let failed = store.run(&first.id).await.unwrap().unwrap();
        assert_eq!(failed.status, RunStatus::Failed);
        assert_eq!(failed.error.unwrap()["code"], "trap");

        let retry = RetryRun {
            input: json!({"reason": "again", "password": "[secret]"}),
            secret_input: Some(json!({"/password": "new-pass"})),
            needs_approval: false,
        };
        let again = store
            .retry_run(&first.id, &retry, &audit("alice", "run.retry"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (again.id.as_str(), again.attempt, again.status),
            (first.id.as_str(), 2, RunStatus::Queued)
        );
        assert_eq!(again.error, None);
        assert_eq!(again.started_at, None);
        // Only failed or cancelled runs are retried.
        assert!(store
            .retry_run(&first.id, &retry, &audit("alice", "run.retry"))
            .await
            .unwrap()
            .is_none());
        let claimed = claim(&store, "w2").await.unwrap();
        assert_eq!(claimed.run.attempt, 2);
        assert_eq!(claimed.secret_input, Some(json!({"/password": "new-pass"})));
        assert_eq!(claimed.run.input["reason"], "again");
    }

    pub async fn expired_leases_fail_runs_and_erase_their_secrets(store: Store) {
        let created = store
            .create_run(&new_run("a", None), &audit("alice", "run.start"))
            .await
            .unwrap();
        store
            .claim_run("dead-replica", Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let why = json!({"code": "interrupted", "message": "replica died"});
        assert_eq!(
            store.expire_runs(&why).await.unwrap(),
            vec![created.id.clone()]
        );
        let run = store.run(&created.id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.error, Some(why.clone()));
        assert_eq!(
            store
                .renew_run(&created.id, "dead-replica", LEASE)
                .await
                .unwrap(),
            None
        );
        assert!(!store
            .finish_run(&created.id, "dead-replica", &ended(RunStatus::Succeeded))
            .await
            .unwrap());
        // Its secret is gone: a retry without new values claims none.
        let retry = RetryRun {
            input: run.input.clone(),
            secret_input: None,
            needs_approval: false,
        };
        store
            .retry_run(&created.id, &retry, &audit("alice", "run.retry"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim(&store, "w").await.unwrap().secret_input, None);
        assert!(
            store.expire_runs(&why).await.unwrap().is_empty(),
            "a live lease is kept"
        );
    }

    pub async fn log_lines_are_numbered_per_run_across_writers(store: Store) {
        let a = store
            .create_run(&new_run("a", None), &audit("x", "run.start"))
            .await
            .unwrap();
        let b = store
            .create_run(&new_run("b", None), &audit("x", "run.start"))
            .await
            .unwrap();
        let line = |m: &str| NewLogLine {
            level: "info".into(),
            message: m.into(),
            at: chrono::Utc::now(),
        };
        let mut writers = Vec::new();
        for w in 0..4 {
            let store = store.clone();
            let id = a.id.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..5 {
                    let lines = [line(&format!("w{w} l{i} a")), line(&format!("w{w} l{i} b"))];
                    loop {
                        match store.append_run_logs(&id, 1, &lines).await {
                            Ok(_) => break,
                            Err(StoreError::Database(_)) => tokio::task::yield_now().await,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(
            store
                .append_run_logs(&b.id, 2, &[line("only")])
                .await
                .unwrap(),
            1
        );
        let all = store.run_logs(&a.id, 0, 1000).await.unwrap();
        assert_eq!(
            all.iter().map(|l| l.seq).collect::<Vec<_>>(),
            (1..=40).collect::<Vec<_>>()
        );
        // A writer's two lines of one call stay together and in order.
        for pair in all.chunks(2) {
            assert_eq!(
                pair[0].message.replace(" a", ""),
                pair[1].message.replace(" b", "")
            );
        }
        let tail = store.run_logs(&a.id, 38, 1000).await.unwrap();
        assert_eq!(tail.len(), 2);
        let other = store.run_logs(&b.id, 0, 10).await.unwrap();
        assert_eq!(
            (other[0].seq, other[0].attempt, other[0].message.as_str()),
            (1, 2, "only")
        );
        assert!(matches!(
            store.append_run_logs("no-such-run", 1, &[line("x")]).await,
            Err(StoreError::InvalidData(_))
        ));
    }

    pub async fn runs_and_audit_entries_filter_and_page(store: Store) {
        let mut ids = Vec::new();
        for i in 0..7 {
            let mut new = new_run(if i % 2 == 0 { "even" } else { "odd" }, None);
            new.actor = format!("token:{i}");
            let run = store
                .create_run(&new, &audit(&new.actor, "run.start"))
                .await
                .unwrap();
            ids.push(run.id);
        }
        let page = |before: Option<String>, action: Option<&str>| RunFilter {
            action: action.map(str::to_owned),
            before,
            limit: 3,
            ..Default::default()
        };
        let first = store.list_runs(&page(None, None)).await.unwrap();
        assert_eq!(
            first.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            ids[4..].iter().rev().cloned().collect::<Vec<_>>()
        );
        let second = store
            .list_runs(&page(Some(first[2].id.clone()), None))
            .await
            .unwrap();
        assert_eq!(second[0].id, ids[3]);
        let evens = store
            .list_runs(&RunFilter {
                action: Some("even".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(evens.len(), 4);
        let by_status = store
            .list_runs(&RunFilter {
                status: Some(RunStatus::Succeeded),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(by_status.is_empty());
        let by_actor = store
            .list_runs(&RunFilter {
                actor: Some("token:3".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_actor.len(), 1);
        let by_entity = store
            .list_runs(&RunFilter {
                entity_ref: Some("component:default/payments".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_entity.len(), 7);

        let entries = store
            .list_audit(&AuditFilter {
                actor: Some("token:3".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].subject, format!("run:{}", ids[3]));
        assert_eq!(entries[0].detail, json!({"note": "run.start"}));
        let stored: Vec<Value> = store
            .list_audit(&AuditFilter {
                verb: Some("run.start".into()),
                limit: 4,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| json!(e.subject))
            .collect();
        assert_eq!(stored.len(), 4);
    }
}
