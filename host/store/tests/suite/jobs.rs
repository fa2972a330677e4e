//! The durable queue and source syncs' catalog writes, on both backends:
//! every test in `suite` runs as `sqlite::<name>` and `postgres::<name>`.

use std::collections::HashSet;
use std::time::Duration;

use portolan_catalog::Entity;
use portolan_store::testing::TestDatabase;
use portolan_store::{JobStatus, NewJob, Origin, Store, StoreError};
use serde_json::json;

portolan_store::both_backends!(
    enqueue_dedupes_pending_jobs_per_subject,
    each_job_is_claimed_once_even_by_racing_workers,
    only_the_lease_holder_renews_and_finishes,
    expired_leases_end_failed_with_the_reason,
    history_is_newest_first_and_pages,
    sync_source_adds_updates_and_removes_only_its_own,
    sync_source_keeps_refused_entities_and_reports_conflicts,
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

fn sync_job(subject: &str, dedupe: bool) -> NewJob {
    NewJob {
        queue: "source-sync".into(),
        subject: subject.into(),
        triggered_by: "manual".into(),
        actor: Some("ci".into()),
        payload: json!({"plugin": subject}),
        dedupe,
    }
}

fn component(name: &str, description: &str) -> Entity {
    Entity::from_value(json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": name, "description": description, "tags": ["t"]},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a",
                 "dependsOn": ["resource:db"]}
    }))
    .unwrap()
}

const LEASE: Duration = Duration::from_secs(30);

mod suite {
    use super::*;

    pub async fn enqueue_dedupes_pending_jobs_per_subject(store: Store) {
        let (first, created) = store.enqueue_job(&sync_job("a", true)).await.unwrap();
        assert!(created);
        assert_eq!(first.status, JobStatus::Queued);
        assert_eq!(first.payload, json!({"plugin": "a"}));
        assert_eq!(first.actor.as_deref(), Some("ci"));

        let (again, created) = store.enqueue_job(&sync_job("a", true)).await.unwrap();
        assert!(!created, "a pending job of the same subject is returned");
        assert_eq!(again.id, first.id);

        let (other, created) = store.enqueue_job(&sync_job("b", true)).await.unwrap();
        assert!(created);
        assert_ne!(other.id, first.id);

        // Still deduplicated while running; a new one once it ended.
        let claimed = store.claim_job("source-sync", "w1", LEASE).await.unwrap();
        assert_eq!(claimed.unwrap().id, first.id);
        let (again, created) = store.enqueue_job(&sync_job("a", true)).await.unwrap();
        assert!(!created);
        assert_eq!(again.id, first.id);
        assert!(store
            .finish_job(&first.id, "w1", JobStatus::Succeeded, None, None)
            .await
            .unwrap());
        let (next, created) = store.enqueue_job(&sync_job("a", true)).await.unwrap();
        assert!(created);
        assert_ne!(next.id, first.id);

        // Without dedupe, any number may wait.
        let (x, _) = store.enqueue_job(&sync_job("c", false)).await.unwrap();
        let (y, created) = store.enqueue_job(&sync_job("c", false)).await.unwrap();
        assert!(created);
        assert_ne!(x.id, y.id);
    }

    pub async fn each_job_is_claimed_once_even_by_racing_workers(store: Store) {
        let mut ids = HashSet::new();
        for i in 0..20 {
            let (job, _) = store
                .enqueue_job(&sync_job(&format!("s{i}"), true))
                .await
                .unwrap();
            ids.insert(job.id);
        }
        let mut workers = Vec::new();
        for w in 0..4 {
            let store = store.clone();
            workers.push(tokio::spawn(async move {
                let owner = format!("worker-{w}");
                let mut mine = Vec::new();
                loop {
                    match store.claim_job("source-sync", &owner, LEASE).await {
                        Ok(Some(job)) => {
                            assert_eq!(job.status, JobStatus::Running);
                            assert_eq!(job.lease_owner.as_deref(), Some(owner.as_str()));
                            assert_eq!(job.attempts, 1);
                            mine.push(job.id);
                        }
                        Ok(None) => break,
                        // SQLite may report a busy writer under contention;
                        // a real worker retries on its next tick.
                        Err(StoreError::Database(_)) => tokio::task::yield_now().await,
                        Err(e) => panic!("{e}"),
                    }
                }
                mine
            }));
        }
        let mut claimed = Vec::new();
        for w in workers {
            claimed.extend(w.await.unwrap());
        }
        assert_eq!(claimed.len(), 20, "every job claimed exactly once");
        assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), ids);
        assert!(store
            .claim_job("source-sync", "late", LEASE)
            .await
            .unwrap()
            .is_none());
        // Another queue's workers see none of these.
        store.enqueue_job(&sync_job("z", true)).await.unwrap();
        assert!(store
            .claim_job("action-run", "w", LEASE)
            .await
            .unwrap()
            .is_none());
    }

    pub async fn only_the_lease_holder_renews_and_finishes(store: Store) {
        store.enqueue_job(&sync_job("a", true)).await.unwrap();
        let job = store
            .claim_job("source-sync", "w1", LEASE)
            .await
            .unwrap()
            .unwrap();
        let progress = json!({"pages": 2, "entities": 300});
        assert!(store
            .renew_job(&job.id, "w1", LEASE, Some(&progress))
            .await
            .unwrap());
        assert!(!store.renew_job(&job.id, "w2", LEASE, None).await.unwrap());
        assert!(!store
            .finish_job(&job.id, "w2", JobStatus::Succeeded, None, None)
            .await
            .unwrap());
        let seen = store.job(&job.id).await.unwrap().unwrap();
        assert_eq!(seen.status, JobStatus::Running);
        assert_eq!(seen.progress, Some(progress.clone()));
        // A renewal without progress keeps the last one.
        assert!(store.renew_job(&job.id, "w1", LEASE, None).await.unwrap());

        let result = json!({"added": 3});
        assert!(store
            .finish_job(&job.id, "w1", JobStatus::Succeeded, Some(&result), None)
            .await
            .unwrap());
        let done = store.job(&job.id).await.unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Succeeded);
        assert_eq!(done.result, Some(result));
        assert_eq!(done.progress, Some(progress));
        assert!(done.finished_at.unwrap() >= done.started_at.unwrap());
        assert!(done.started_at.unwrap() >= done.queued_at);
        // Ended: no more renewals, no second finish.
        assert!(!store.renew_job(&job.id, "w1", LEASE, None).await.unwrap());
        assert!(!store
            .finish_job(&job.id, "w1", JobStatus::Failed, None, None)
            .await
            .unwrap());
        assert!(store
            .finish_job(&job.id, "w1", JobStatus::Running, None, None)
            .await
            .is_err());
    }

    pub async fn expired_leases_end_failed_with_the_reason(store: Store) {
        store.enqueue_job(&sync_job("a", true)).await.unwrap();
        store.enqueue_job(&sync_job("b", true)).await.unwrap();
        let short = store
            .claim_job("source-sync", "dead", Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        let long = store
            .claim_job("source-sync", "alive", LEASE)
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let reason = json!({"code": "interrupted", "message": "lease expired"});
        let expired = store.expire_jobs("source-sync", &reason).await.unwrap();
        assert_eq!(expired, vec![short.id.clone()]);
        let failed = store.job(&short.id).await.unwrap().unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.error, Some(reason));
        assert!(failed.finished_at.is_some());
        // The dead worker can no longer write over the verdict.
        assert!(!store
            .finish_job(&short.id, "dead", JobStatus::Succeeded, None, None)
            .await
            .unwrap());
        assert_eq!(
            store.job(&long.id).await.unwrap().unwrap().status,
            JobStatus::Running
        );
        // The expired job's subject is free for a new sync. (Which of the
        // two was claimed first is not the point: both were queued in the
        // same millisecond more often than not.)
        let (_, created) = store
            .enqueue_job(&sync_job(&short.subject, true))
            .await
            .unwrap();
        assert!(created);
    }

    pub async fn history_is_newest_first_and_pages(store: Store) {
        let mut ids = Vec::new();
        for _ in 0..5 {
            let (job, _) = store.enqueue_job(&sync_job("a", false)).await.unwrap();
            ids.push(job.id);
            // Ids carry the millisecond; keep them apart.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        store.enqueue_job(&sync_job("b", false)).await.unwrap();
        ids.reverse();
        let page = store
            .list_jobs("source-sync", Some("a"), 3, None)
            .await
            .unwrap();
        let got: Vec<_> = page.iter().map(|j| j.id.clone()).collect();
        assert_eq!(got, ids[..3]);
        let rest = store
            .list_jobs("source-sync", Some("a"), 3, Some(&got[2]))
            .await
            .unwrap();
        let got: Vec<_> = rest.iter().map(|j| j.id.clone()).collect();
        assert_eq!(got, ids[3..]);
        assert_eq!(
            store
                .list_jobs("source-sync", None, 100, None)
                .await
                .unwrap()
                .len(),
            6
        );
        let latest = store.latest_jobs("source-sync").await.unwrap();
        let mut subjects: Vec<_> = latest.iter().map(|j| j.subject.as_str()).collect();
        subjects.sort();
        assert_eq!(subjects, ["a", "b"]);
        assert!(latest.iter().any(|j| j.id == ids[0]));
    }

    pub async fn sync_source_adds_updates_and_removes_only_its_own(store: Store) {
        let none = HashSet::new();
        let first: Vec<Entity> = (0..5).map(|i| component(&format!("c{i}"), "v1")).collect();
        let s = store.sync_source("files", &first, &none).await.unwrap();
        assert_eq!((s.added, s.updated, s.unchanged, s.removed), (5, 0, 0, 0));

        // Someone pushes one; another source owns another.
        store
            .put_entities(&[component("pushed", "x")], &Origin::Api)
            .await
            .unwrap();
        let other = HashSet::new();
        store
            .sync_source("other", &[component("theirs", "x")], &other)
            .await
            .unwrap();

        // Resync: c0 changed, c1..c2 unchanged, c3 and c4 gone, c5 new.
        let second = vec![
            component("c0", "v2"),
            component("c1", "v1"),
            component("c2", "v1"),
            component("c5", "v1"),
        ];
        let s = store.sync_source("files", &second, &none).await.unwrap();
        assert_eq!((s.added, s.updated, s.unchanged, s.removed), (1, 1, 2, 2));
        assert!(s.conflicts.is_empty());
        let by_origin = store.count_entities_by_origin().await.unwrap();
        assert_eq!(by_origin.get("source:files"), Some(&4));
        assert_eq!(by_origin.get("api"), Some(&1));
        assert_eq!(by_origin.get("source:other"), Some(&1));

        // An empty complete sync empties only this source.
        let s = store.sync_source("files", &[], &none).await.unwrap();
        assert_eq!(s.removed, 4);
        let by_origin = store.count_entities_by_origin().await.unwrap();
        assert_eq!(by_origin.get("source:files"), None);
        assert_eq!(by_origin.get("api"), Some(&1));
        assert_eq!(by_origin.get("source:other"), Some(&1));
    }

    pub async fn sync_source_keeps_refused_entities_and_reports_conflicts(store: Store) {
        let none = HashSet::new();
        let all = vec![component("a", "v1"), component("b", "v1")];
        store.sync_source("files", &all, &none).await.unwrap();
        store
            .put_entities(&[component("pushed", "x")], &Origin::Api)
            .await
            .unwrap();

        // This time b came back invalid (the caller refused it and asks to
        // keep it), and the source also claims the pushed entity.
        let keep: HashSet<String> = ["component:default/b".to_owned()].into();
        let s = store
            .sync_source(
                "files",
                &[component("a", "v1"), component("pushed", "mine")],
                &keep,
            )
            .await
            .unwrap();
        assert_eq!((s.added, s.updated, s.unchanged, s.removed), (0, 0, 1, 0));
        assert_eq!(
            s.conflicts,
            vec![("component:default/pushed".to_owned(), "api".to_owned())]
        );
        let b = store
            .entity(&component("b", "").entity_ref())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.entity.metadata.description.as_deref(), Some("v1"));
        let pushed = store
            .entity(&component("pushed", "").entity_ref())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pushed.origin, Origin::Api);
        assert_eq!(pushed.entity.metadata.description.as_deref(), Some("x"));

        // Duplicates in one sync are refused whole.
        let dup = vec![component("a", "v1"), component("A", "v2")];
        assert!(matches!(
            store.sync_source("files", &dup, &none).await,
            Err(StoreError::DuplicateEntity(_))
        ));
    }
}
