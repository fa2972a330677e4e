//! Scorecards' tables on both backends: every test in `suite` runs as
//! `sqlite::<name>` and `postgres::<name>`.

use chrono::{Duration, TimeZone, Utc};
use portolan_store::testing::TestDatabase;
use portolan_store::{
    EntityEvaluation, NewRuleResult, NewScorecardExemption, ResultStatus, StandingFilter, Store,
    StoreError, WriteMode,
};
use serde_json::json;

portolan_store::both_backends!(
    scorecards_round_trip_and_delete_with_everything_they_own,
    a_large_evaluation_is_written_in_one_go,
    history_appends_only_when_the_level_changes,
    a_batch_is_all_or_nothing,
    results_replace_the_entitys_previous_ones,
    exemptions_are_listed_replaced_and_deleted,
    results_read_per_scorecard_and_per_entity,
    forgotten_entities_lose_results_and_history,
    concurrent_writes_count_each_entity_once,
    unchanged_standings_are_left_alone_and_confirmed,
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

fn definition(title: &str) -> serde_json::Value {
    json!({
        "id": "production-readiness",
        "title": title,
        "levels": ["Basic", "Bronze", "Silver", "Gold"],
        "rules": [
            {"id": "has-owner", "title": "Has an owner", "level": "Bronze",
             "check": "catalog-hygiene/has-owner", "parameters": {}}
        ]
    })
}

fn result(rule: &str, status: ResultStatus) -> NewRuleResult {
    NewRuleResult {
        rule_id: rule.into(),
        status,
        message: (status != ResultStatus::Pass).then(|| format!("{rule} is {status}")),
        value: (rule == "coverage").then(|| json!(0.75)),
    }
}

fn evaluation(entity: &str, level: &str, statuses: &[(&str, ResultStatus)]) -> EntityEvaluation {
    EntityEvaluation {
        entity_ref: entity.into(),
        level: level.into(),
        results: statuses.iter().map(|(r, s)| result(r, *s)).collect(),
    }
}

fn at(minute: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::minutes(minute)
}

use ResultStatus::{Error, Exempt, Fail, Pass};

mod suite {
    use super::*;

    pub async fn scorecards_round_trip_and_delete_with_everything_they_own(store: Store) {
        assert!(store.scorecard("nope").await.unwrap().is_none());
        assert!(store.list_scorecards().await.unwrap().is_empty());

        let (first, created) = store
            .put_scorecard("production-readiness", &definition("Readiness"))
            .await
            .unwrap();
        assert!(created);
        assert_eq!(first.id, "production-readiness");
        assert_eq!(first.definition, definition("Readiness"));
        assert_eq!(first.created_at, first.updated_at);

        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (second, created) = store
            .put_scorecard("production-readiness", &definition("Ready for production"))
            .await
            .unwrap();
        assert!(!created, "a second put replaces the definition");
        assert_eq!(second.definition["title"], "Ready for production");
        assert_eq!(second.created_at, first.created_at);
        assert!(second.updated_at > first.updated_at);

        store
            .put_scorecard("api-quality", &json!({"id": "api-quality"}))
            .await
            .unwrap();
        let ids: Vec<String> = store
            .list_scorecards()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["api-quality", "production-readiness"]);
        assert_eq!(
            store.scorecard("production-readiness").await.unwrap(),
            Some(second)
        );

        // Deleting takes results, history and exemptions with it.
        let entity = "component:default/web";
        store
            .write_scorecard_results(
                "production-readiness",
                &[evaluation(entity, "Bronze", &[("has-owner", Pass)])],
                at(0),
                WriteMode::All,
            )
            .await
            .unwrap();
        store
            .put_scorecard_exemption(&NewScorecardExemption {
                scorecard_id: "production-readiness".into(),
                entity_ref: entity.into(),
                rule_id: "has-owner".into(),
                reason: "migrating".into(),
                expires_at: Utc::now() + Duration::days(7),
                created_by: "alice".into(),
            })
            .await
            .unwrap();
        assert!(store
            .delete_scorecard("production-readiness")
            .await
            .unwrap());
        assert!(!store
            .delete_scorecard("production-readiness")
            .await
            .unwrap());
        assert!(store.entity_scorecards(entity).await.unwrap().is_empty());
        assert!(store
            .scorecard_level_history("production-readiness", entity)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .scorecard_exemptions("production-readiness", None)
            .await
            .unwrap()
            .is_empty());

        // A re-created scorecard starts from nothing.
        store
            .put_scorecard("production-readiness", &definition("Again"))
            .await
            .unwrap();
        let summary = store
            .scorecard_summary("production-readiness")
            .await
            .unwrap();
        assert_eq!(summary.entities, 0);
    }

    pub async fn a_large_evaluation_is_written_in_one_go(store: Store) {
        store
            .put_scorecard("production-readiness", &definition("R"))
            .await
            .unwrap();
        let levels = ["Basic", "Bronze", "Silver"];
        let batch: Vec<EntityEvaluation> = (0..5_000)
            .map(|i| {
                let status = |n: usize| if i % n == 0 { Fail } else { Pass };
                evaluation(
                    &format!("component:default/svc-{i:05}"),
                    levels[i % 3],
                    &[
                        ("has-owner", status(2)),
                        ("has-docs", status(5)),
                        ("coverage", status(7)),
                    ],
                )
            })
            .collect();
        let started = std::time::Instant::now();
        let written = store
            .write_scorecard_results("production-readiness", &batch, at(0), WriteMode::All)
            .await
            .unwrap();
        let first_write = started.elapsed();
        assert_eq!(written.entities, 5_000);
        assert_eq!(written.results, 15_000);
        assert_eq!(
            written.level_changes, 5_000,
            "every first level is recorded"
        );

        let summary = store
            .scorecard_summary("production-readiness")
            .await
            .unwrap();
        assert_eq!(summary.entities, 5_000);
        assert_eq!(summary.levels["Basic"], 1_667);
        assert_eq!(summary.levels["Bronze"], 1_667);
        assert_eq!(summary.levels["Silver"], 1_666);
        assert_eq!(summary.rules["has-owner"].fail, 2_500);
        assert_eq!(summary.rules["has-owner"].pass, 2_500);
        assert_eq!(summary.rules["has-docs"].fail, 1_000);
        assert_eq!(summary.rules["coverage"].fail, 715);
        assert_eq!(summary.rules["coverage"].total(), 5_000);

        // The same evaluation again: results rewritten, history untouched.
        let again = store
            .write_scorecard_results("production-readiness", &batch, at(1), WriteMode::All)
            .await
            .unwrap();
        assert_eq!(again.level_changes, 0);
        let history = store
            .scorecard_level_history("production-readiness", "component:default/svc-00004")
            .await
            .unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].level, "Bronze");
        assert_eq!(history[0].at, at(0));
        let page = store
            .scorecard_entities("production-readiness", None, 2)
            .await
            .unwrap();
        assert_eq!(page[0].results[0].evaluated_at, at(1));
        eprintln!("5,000 entities x 3 rules: first write {first_write:?}");
    }

    pub async fn history_appends_only_when_the_level_changes(store: Store) {
        store
            .put_scorecard("production-readiness", &definition("R"))
            .await
            .unwrap();
        let web = "component:default/web";
        let api = "component:default/api";
        let write = |minute, web_level: &'static str, api_level: &'static str| {
            let store = store.clone();
            async move {
                store
                    .write_scorecard_results(
                        "production-readiness",
                        &[
                            evaluation(web, web_level, &[("has-owner", Pass)]),
                            evaluation(api, api_level, &[("has-owner", Pass)]),
                        ],
                        at(minute),
                        WriteMode::All,
                    )
                    .await
                    .unwrap()
                    .level_changes
            }
        };
        assert_eq!(write(0, "Bronze", "Basic").await, 2);
        assert_eq!(write(1, "Bronze", "Basic").await, 0);
        assert_eq!(write(2, "Silver", "Basic").await, 1);
        assert_eq!(write(3, "Silver", "Basic").await, 0);
        assert_eq!(write(4, "Bronze", "Gold").await, 2);

        let history = store
            .scorecard_level_history("production-readiness", web)
            .await
            .unwrap();
        let seen: Vec<(&str, _, _)> = history
            .iter()
            .map(|c| (c.level.as_str(), c.at, c.until))
            .collect();
        assert_eq!(
            seen,
            [
                ("Bronze", at(0), Some(at(2))),
                ("Silver", at(2), Some(at(4))),
                ("Bronze", at(4), None),
            ]
        );
        let history = store
            .scorecard_level_history("production-readiness", "Component:Default/API")
            .await
            .unwrap();
        assert_eq!(history.len(), 2, "references match case-insensitively");
        assert_eq!(history[1].level, "Gold");

        let mine = store.entity_scorecards(web).await.unwrap();
        assert_eq!(mine[0].level.as_deref(), Some("Bronze"));
        assert_eq!(mine[0].level_since, Some(at(4)));
    }

    pub async fn a_batch_is_all_or_nothing(store: Store) {
        store
            .put_scorecard("production-readiness", &definition("R"))
            .await
            .unwrap();
        let err = store
            .write_scorecard_results(
                "production-readiness",
                &[
                    evaluation("component:default/web", "Bronze", &[("has-owner", Pass)]),
                    evaluation("Component:default/WEB", "Basic", &[("has-owner", Fail)]),
                ],
                at(0),
                WriteMode::All,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::DuplicateEntity(e) if e == "component:default/web"),
            "{err:?}"
        );

        // A rule listed twice is refused before anything is written.
        let err = store
            .write_scorecard_results(
                "production-readiness",
                &[
                    evaluation("component:default/a", "Bronze", &[("has-owner", Pass)]),
                    evaluation(
                        "component:default/b",
                        "Bronze",
                        &[("has-owner", Pass), ("has-owner", Fail)],
                    ),
                ],
                at(0),
                WriteMode::All,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidData(m) if m.contains("has-owner is listed twice")),
            "{err:?}"
        );
        let summary = store
            .scorecard_summary("production-readiness")
            .await
            .unwrap();
        assert_eq!(summary.entities, 0);
        assert!(summary.rules.is_empty());

        // No such scorecard.
        let err = store
            .write_scorecard_results(
                "nope",
                &[evaluation(
                    "component:default/a",
                    "Bronze",
                    &[("has-owner", Pass)],
                )],
                at(0),
                WriteMode::All,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        let nothing = store
            .write_scorecard_results("production-readiness", &[], at(0), WriteMode::All)
            .await
            .unwrap();
        assert_eq!(nothing.entities, 0);
    }

    pub async fn results_replace_the_entitys_previous_ones(store: Store) {
        store
            .put_scorecard("production-readiness", &definition("R"))
            .await
            .unwrap();
        let web = "component:default/web";
        store
            .write_scorecard_results(
                "production-readiness",
                &[evaluation(
                    web,
                    "Basic",
                    &[("has-owner", Fail), ("old-rule", Pass)],
                )],
                at(0),
                WriteMode::All,
            )
            .await
            .unwrap();
        store
            .write_scorecard_results(
                "production-readiness",
                &[evaluation(
                    web,
                    "Bronze",
                    &[("has-owner", Pass), ("coverage", Error)],
                )],
                at(1),
                WriteMode::All,
            )
            .await
            .unwrap();
        let mine = store.entity_scorecards(web).await.unwrap();
        assert_eq!(mine.len(), 1);
        let results: Vec<(&str, ResultStatus)> = mine[0]
            .results
            .iter()
            .map(|r| (r.rule_id.as_str(), r.status))
            .collect();
        assert_eq!(results, [("coverage", Error), ("has-owner", Pass)]);
        let coverage = &mine[0].results[0];
        assert_eq!(coverage.value, Some(json!(0.75)));
        assert_eq!(coverage.message.as_deref(), Some("coverage is error"));
        assert_eq!(coverage.evaluated_at, at(1));
        assert_eq!(mine[0].results[1].message, None);

        // The per-rule counts follow the replacement: the old rule and the
        // old failure are counted out.
        let summary = store
            .scorecard_summary("production-readiness")
            .await
            .unwrap();
        let rules: Vec<(&str, u64, u64, u64)> = summary
            .rules
            .iter()
            .map(|(rule, c)| (rule.as_str(), c.pass, c.fail, c.error))
            .collect();
        assert_eq!(rules, [("coverage", 0, 0, 1), ("has-owner", 1, 0, 0)]);

        // The drill-down finds an entity by one rule's status, and only by
        // that rule's: "owner" is not "has-owner".
        let by = |rule: &str, status: ResultStatus| StandingFilter {
            level: None,
            rule: Some((rule.to_owned(), status)),
        };
        for (filter, found) in [
            (by("has-owner", Pass), vec![web]),
            (by("has-owner", Fail), vec![]),
            (by("owner", Pass), vec![]),
            (by("coverage", Error), vec![web]),
            (by("old-rule", Pass), vec![]),
        ] {
            let page = store
                .scorecard_entities_where("production-readiness", &filter, None, 10)
                .await
                .unwrap();
            let refs: Vec<&str> = page.iter().map(|e| e.entity_ref.as_str()).collect();
            assert_eq!(refs, found, "{:?}", filter.rule);
        }
    }

    pub async fn exemptions_are_listed_replaced_and_deleted(store: Store) {
        store
            .put_scorecard("production-readiness", &definition("R"))
            .await
            .unwrap();
        let expires = Utc.with_ymd_and_hms(2027, 1, 31, 0, 0, 0).unwrap();
        let exemption = |entity: &str, rule: &str, reason: &str| NewScorecardExemption {
            scorecard_id: "production-readiness".into(),
            entity_ref: entity.into(),
            rule_id: rule.into(),
            reason: reason.into(),
            expires_at: expires,
            created_by: "alice".into(),
        };
        let stored = store
            .put_scorecard_exemption(&exemption("Component:default/Web", "has-owner", "new team"))
            .await
            .unwrap();
        assert_eq!(stored.entity_ref, "component:default/web");
        store
            .put_scorecard_exemption(&exemption("component:default/web", "has-docs", "wip"))
            .await
            .unwrap();
        store
            .put_scorecard_exemption(&exemption("component:default/api", "has-owner", "legacy"))
            .await
            .unwrap();
        // Same entity and rule: replaced, not added.
        store
            .put_scorecard_exemption(&exemption("component:default/web", "has-owner", "reorg"))
            .await
            .unwrap();

        let all = store
            .scorecard_exemptions("production-readiness", None)
            .await
            .unwrap();
        let seen: Vec<(&str, &str, &str)> = all
            .iter()
            .map(|e| (e.entity_ref.as_str(), e.rule_id.as_str(), e.reason.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("component:default/api", "has-owner", "legacy"),
                ("component:default/web", "has-docs", "wip"),
                ("component:default/web", "has-owner", "reorg"),
            ]
        );
        assert_eq!(all[0].expires_at, expires);
        assert_eq!(all[0].created_by, "alice");
        let web = store
            .scorecard_exemptions("production-readiness", Some("COMPONENT:default/web"))
            .await
            .unwrap();
        assert_eq!(web.len(), 2);

        assert!(store
            .delete_scorecard_exemption("production-readiness", "component:default/web", "has-docs")
            .await
            .unwrap());
        assert!(!store
            .delete_scorecard_exemption("production-readiness", "component:default/web", "has-docs")
            .await
            .unwrap());
        let web = store
            .scorecard_exemptions("production-readiness", Some("component:default/web"))
            .await
            .unwrap();
        assert_eq!(web.len(), 1);
        assert_eq!(web[0].rule_id, "has-owner");

        // An exemption needs its scorecard.
        let mut orphan = exemption("component:default/web", "has-owner", "x");
        orphan.scorecard_id = "nope".into();
        assert!(matches!(
            store.put_scorecard_exemption(&orphan).await,
            Err(StoreError::Database(_))
        ));
    }

    pub async fn results_read_per_scorecard_and_per_entity(store: Store) {
        for id in ["api-quality", "production-readiness"] {
            store.put_scorecard(id, &definition(id)).await.unwrap();
        }
        let batch: Vec<EntityEvaluation> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|name| {
                evaluation(
                    &format!("component:default/{name}"),
                    if *name == "c" { "Basic" } else { "Bronze" },
                    &[
                        ("has-owner", if *name == "c" { Fail } else { Pass }),
                        ("has-docs", Exempt),
                    ],
                )
            })
            .collect();
        store
            .write_scorecard_results("production-readiness", &batch, at(0), WriteMode::All)
            .await
            .unwrap();
        store
            .write_scorecard_results(
                "api-quality",
                &[evaluation("component:default/c", "Gold", &[("lint", Pass)])],
                at(0),
                WriteMode::All,
            )
            .await
            .unwrap();

        let summary = store
            .scorecard_summary("production-readiness")
            .await
            .unwrap();
        assert_eq!(summary.entities, 5);
        assert_eq!(
            summary.levels.into_iter().collect::<Vec<_>>(),
            [("Basic".to_owned(), 1), ("Bronze".to_owned(), 4)]
        );
        assert_eq!(summary.rules["has-owner"].pass, 4);
        assert_eq!(summary.rules["has-owner"].fail, 1);
        assert_eq!(summary.rules["has-docs"].exempt, 5);
        assert_eq!(summary.rules.len(), 2, "other scorecards' rules stay out");

        // Pages by entity reference.
        let first = store
            .scorecard_entities("production-readiness", None, 2)
            .await
            .unwrap();
        let refs: Vec<&str> = first.iter().map(|e| e.entity_ref.as_str()).collect();
        assert_eq!(refs, ["component:default/a", "component:default/b"]);
        assert_eq!(first[0].results.len(), 2);
        let rest = store
            .scorecard_entities("production-readiness", Some("component:default/b"), 10)
            .await
            .unwrap();
        let refs: Vec<&str> = rest.iter().map(|e| e.entity_ref.as_str()).collect();
        assert_eq!(
            refs,
            [
                "component:default/c",
                "component:default/d",
                "component:default/e"
            ]
        );
        assert_eq!(rest[0].level.as_deref(), Some("Basic"));
        assert_eq!(rest[0].results[1].status, Fail);
        assert!(store
            .scorecard_entities("production-readiness", Some("component:default/e"), 10)
            .await
            .unwrap()
            .is_empty());

        // One entity across scorecards.
        let c = store
            .entity_scorecards("Component:Default/C")
            .await
            .unwrap();
        let seen: Vec<(&str, Option<&str>, usize)> = c
            .iter()
            .map(|e| (e.scorecard_id.as_str(), e.level.as_deref(), e.results.len()))
            .collect();
        assert_eq!(
            seen,
            [
                ("api-quality", Some("Gold"), 1),
                ("production-readiness", Some("Basic"), 2)
            ]
        );
        assert!(store
            .entity_scorecards("component:default/zzz")
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn concurrent_writes_count_each_entity_once(store: Store) {
        // Two evaluations of the same new entities at once (a full one and
        // an entity one, say, on two replicas): whichever writes second
        // replaces the first's results, and the counts hold each entity
        // once.
        store
            .put_scorecard("production-readiness", &definition("R"))
            .await
            .unwrap();
        let batch: Vec<EntityEvaluation> = (0..3000)
            .map(|i| {
                evaluation(
                    &format!("component:default/c{i}"),
                    "Bronze",
                    &[("has-owner", Pass)],
                )
            })
            .collect();
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (store, batch) = (store.clone(), batch.clone());
                tokio::spawn(async move {
                    store
                        .write_scorecard_results(
                            "production-readiness",
                            &batch,
                            at(0),
                            WriteMode::All,
                        )
                        .await
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        let summary = store
            .scorecard_summary("production-readiness")
            .await
            .unwrap();
        assert_eq!(summary.entities, 3000);
        assert_eq!(summary.rules["has-owner"].pass, 3000);
        assert_eq!(summary.rules["has-owner"].total(), 3000);
    }

    pub async fn forgotten_entities_lose_results_and_history(store: Store) {
        store
            .put_scorecard("production-readiness", &definition("R"))
            .await
            .unwrap();
        store
            .write_scorecard_results(
                "production-readiness",
                &[
                    evaluation("component:default/a", "Bronze", &[("has-owner", Pass)]),
                    evaluation("component:default/b", "Basic", &[("has-owner", Fail)]),
                ],
                at(0),
                WriteMode::All,
            )
            .await
            .unwrap();
        store
            .forget_scorecard_entities("production-readiness", &["Component:default/A"])
            .await
            .unwrap();
        assert!(store
            .entity_scorecards("component:default/a")
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .scorecard_level_history("production-readiness", "component:default/a")
            .await
            .unwrap()
            .is_empty());
        let summary = store
            .scorecard_summary("production-readiness")
            .await
            .unwrap();
        assert_eq!(summary.entities, 1);
        assert_eq!(summary.levels["Basic"], 1);
        let owner = summary.rules["has-owner"];
        assert_eq!((owner.pass, owner.fail), (0, 1));
    }

    pub async fn unchanged_standings_are_left_alone_and_confirmed(store: Store) {
        store
            .put_scorecard("production-readiness", &definition("Readiness"))
            .await
            .unwrap();
        let (web, api, db) = (
            "component:default/web",
            "api:default/orders",
            "resource:default/db",
        );
        let first = [
            evaluation(web, "Bronze", &[("has-owner", Pass), ("has-docs", Fail)]),
            evaluation(api, "Basic", &[("has-owner", Fail), ("has-docs", Fail)]),
            evaluation(db, "Bronze", &[("has-owner", Pass), ("has-docs", Fail)]),
        ];
        let written = store
            .write_scorecard_results(
                "production-readiness",
                &first,
                at(0),
                WriteMode::ChangedOnly,
            )
            .await
            .unwrap();
        assert_eq!(
            (written.entities, written.unchanged),
            (3, 0),
            "nothing stored yet"
        );
        assert_eq!(written.level_changes, 3);

        // A full evaluation at minute 10 finds web as it was, api with a
        // new message only, and db with the same results at another level
        // (its scorecard's levels were redefined).
        let mut api_again = first[1].clone();
        api_again.results[1].message = Some("has-docs: no docs link".into());
        let db_again = evaluation(db, "Silver", &[("has-owner", Pass), ("has-docs", Fail)]);
        let second = [first[0].clone(), api_again, db_again];
        let written = store
            .write_scorecard_results(
                "production-readiness",
                &second,
                at(10),
                WriteMode::ChangedOnly,
            )
            .await
            .unwrap();
        assert_eq!(
            (written.entities, written.unchanged),
            (3, 1),
            "web is unchanged"
        );
        assert_eq!(written.level_changes, 1, "db moved to Silver");

        let times = |store: Store| async move {
            let mut out = Vec::new();
            for entity in [web, api, db] {
                let standing = store.entity_scorecards(entity).await.unwrap().remove(0);
                assert!(standing
                    .results
                    .iter()
                    .all(|r| r.evaluated_at == standing.results[0].evaluated_at));
                out.push(standing.results[0].evaluated_at);
            }
            out
        };
        // Until the evaluation is confirmed, web shows when it was last
        // written; the others show the second write.
        assert_eq!(times(store.clone()).await, [at(0), at(10), at(10)]);
        let web_now = store.entity_scorecards(web).await.unwrap().remove(0);
        assert_eq!(web_now.level.as_deref(), Some("Bronze"));
        assert_eq!(web_now.level_since, Some(at(0)));

        // The evaluation started at minute 9 and has gone through them all.
        assert!(store
            .confirm_scorecard_results("production-readiness", at(9))
            .await
            .unwrap());
        assert_eq!(times(store.clone()).await, [at(9), at(10), at(10)]);
        // An older confirmation changes nothing; a missing scorecard says so.
        assert!(store
            .confirm_scorecard_results("production-readiness", at(5))
            .await
            .unwrap());
        assert_eq!(times(store.clone()).await, [at(9), at(10), at(10)]);
        assert!(!store
            .confirm_scorecard_results("nope", at(5))
            .await
            .unwrap());

        // The counts moved only for what changed, and history only for db.
        let summary = store
            .scorecard_summary("production-readiness")
            .await
            .unwrap();
        assert_eq!(summary.rules["has-docs"].fail, 3);
        assert_eq!(summary.rules["has-owner"].pass, 2);
        assert_eq!(summary.levels.get("Silver"), Some(&1));
        let history = store
            .scorecard_level_history("production-readiness", db)
            .await
            .unwrap();
        assert_eq!(history.len(), 2);
        let page = store
            .scorecard_entities("production-readiness", None, 10)
            .await
            .unwrap();
        assert_eq!(page.len(), 3);
        assert_eq!(page[0].entity_ref, api);
        let docs = page[0]
            .results
            .iter()
            .find(|r| r.rule_id == "has-docs")
            .unwrap();
        assert_eq!(docs.message.as_deref(), Some("has-docs: no docs link"));

        // Writing everything (an entity evaluation) rewrites an unchanged
        // standing, so it shows that write's time.
        let written = store
            .write_scorecard_results("production-readiness", &second[..1], at(20), WriteMode::All)
            .await
            .unwrap();
        assert_eq!((written.entities, written.unchanged), (1, 0));
        assert_eq!(times(store.clone()).await, [at(20), at(10), at(10)]);
    }
}

/// Results written before migration 0009 (one row per rule) read the same
/// after it (one row per entity), counts and drill-down included.
mod upgrade {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        results_survive_the_move_to_standings(TestDatabase::sqlite(dir.path()).await).await;
    }

    #[tokio::test]
    async fn postgres() {
        results_survive_the_move_to_standings(TestDatabase::postgres().await).await;
    }

    /// The rows the store wrote before 0009.
    const BEFORE: [&str; 3] = [
        "INSERT INTO scorecards (id, definition, created_at, updated_at) \
         VALUES ('ready', '{}', 0, 0)",
        "INSERT INTO scorecard_results (scorecard_id, entity_ref, rule_id, status, message, \
         value, evaluated_at) VALUES \
         ('ready', 'component:default/a', 'has-owner', 'pass', NULL, NULL, 1000), \
         ('ready', 'component:default/a', 'coverage', 'fail', 'too low', '0.5', 1000), \
         ('ready', 'component:default/b', 'has-owner', 'fail', 'no owner', NULL, 2000)",
        "INSERT INTO scorecard_levels (scorecard_id, entity_ref, level, at) VALUES \
         ('ready', 'component:default/a', 'Bronze', 1000), \
         ('ready', 'component:default/b', 'Basic', 2000)",
    ];

    async fn results_survive_the_move_to_standings(db: TestDatabase) {
        db.migrate_up_to(8).await;
        if db.url.starts_with("sqlite") {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            for statement in BEFORE {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            for statement in BEFORE {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }

        let store = Store::connect(&db.url).await.unwrap();
        let summary = store.scorecard_summary("ready").await.unwrap();
        assert_eq!(summary.entities, 2);
        let rules: Vec<(&str, u64, u64)> = summary
            .rules
            .iter()
            .map(|(rule, c)| (rule.as_str(), c.pass, c.fail))
            .collect();
        assert_eq!(rules, [("coverage", 0, 1), ("has-owner", 1, 1)]);

        let a = store
            .entity_scorecards("component:default/a")
            .await
            .unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].level.as_deref(), Some("Bronze"));
        let read: Vec<(&str, ResultStatus, Option<&str>, Option<serde_json::Value>)> = a[0]
            .results
            .iter()
            .map(|r| {
                (
                    r.rule_id.as_str(),
                    r.status,
                    r.message.as_deref(),
                    r.value.clone(),
                )
            })
            .collect();
        assert_eq!(
            read,
            [
                ("coverage", Fail, Some("too low"), Some(json!(0.5))),
                ("has-owner", Pass, None, None),
            ]
        );
        assert_eq!(a[0].results[0].evaluated_at.timestamp_millis(), 1000);

        let failing = StandingFilter {
            level: None,
            rule: Some(("has-owner".into(), Fail)),
        };
        let page = store
            .scorecard_entities_where("ready", &failing, None, 10)
            .await
            .unwrap();
        let refs: Vec<&str> = page.iter().map(|e| e.entity_ref.as_str()).collect();
        assert_eq!(refs, ["component:default/b"]);

        // A new evaluation moves the migrated counts on.
        store
            .write_scorecard_results(
                "ready",
                &[evaluation(
                    "component:default/b",
                    "Bronze",
                    &[("has-owner", Pass)],
                )],
                at(0),
                WriteMode::All,
            )
            .await
            .unwrap();
        let summary = store.scorecard_summary("ready").await.unwrap();
        assert_eq!(summary.rules["has-owner"].pass, 2);
        assert_eq!(summary.rules["has-owner"].fail, 0);
        store.close().await;
        db.drop_db().await;
    }
}
