//! Scorecards end to end: real check plugins in a real server, scorecards
//! defined through `/api/v1/scorecards` and from files, results read back
//! through the API, on SQLite and PostgreSQL.

use std::time::Duration;

use portolan_e2e::{component, Options, TestServer};
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::{json, Value};

/// How long a test waits for an evaluation or a run to show in the API.
const WAIT: Duration = Duration::from_secs(30);

/// The check ids the fixtures offer.
const REQUIRED: &str = "required-fields/required-fields";
const HOSTILE: &str = "hostile-check/hostile";

/// Waits until plugin `id` is loaded.
async fn ready(server: &TestServer, id: &str, token: &str) {
    let loaded = server
        .wait_plugin(id, token, Duration::from_secs(60), |status, body| {
            status == 200 && body["status"] == "ready"
        })
        .await;
    assert!(loaded.is_some(), "plugin {id} did not load");
}

fn component_entity(name: &str, description: Option<&str>, runbook: bool, tags: &[&str]) -> Value {
    let mut metadata = json!({"name": name, "tags": tags});
    if let Some(d) = description {
        metadata["description"] = json!(d);
    }
    if runbook {
        metadata["annotations"] = json!({"runbook": format!("https://runbooks.example/{name}")});
    }
    json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": metadata,
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}
    })
}

fn readiness() -> Value {
    let rule = |id: &str, level: &str, field: &str| {
        json!({"id": id, "title": id, "level": level, "check": REQUIRED,
               "parameters": {"fields": [field]}})
    };
    json!({
        "title": "Production readiness",
        "description": "What every service needs before it takes traffic.",
        "filter": {"kinds": ["Component"]},
        "rules": [
            rule("has-description", "Bronze", "metadata.description"),
            rule("has-runbook", "Silver", "metadata.annotations.runbook"),
            rule("has-tags", "Gold", "metadata.tags"),
        ]
    })
}

/// The scorecards component `name` is on, as its scorecards view lists them.
async fn entity_scorecards(server: &TestServer, token: &str, name: &str) -> Vec<Value> {
    let (status, body) = server
        .get(
            &format!("/api/v1/entities/component/default/{name}/scorecards"),
            token,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn entity_view(server: &TestServer, token: &str, name: &str, scorecard: &str) -> Value {
    let items = entity_scorecards(server, token, name).await;
    items
        .iter()
        .find(|i| i["scorecard"]["id"] == scorecard)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not on {scorecard}: {items:?}"))
}

async fn wait_level(server: &TestServer, token: &str, name: &str, level: &str) -> Value {
    server
        .wait_for(
            &format!("/api/v1/entities/component/default/{name}/scorecards"),
            token,
            WAIT,
            |body| {
                body["items"].as_array().is_some_and(|items| {
                    items
                        .iter()
                        .any(|i| i["scorecard"]["id"] == "readiness" && i["level"] == level)
                })
            },
        )
        .await;
    entity_view(server, token, name, "readiness").await
}

async fn levels_exemptions_history_and_reevaluation(database_url: Option<String>) {
    let server = TestServer::start(Options {
        database_url,
        ..Options::default()
    })
    .await;
    let admin = server.token(Role::Admin).await;
    let member = server.token(Role::Member).await;
    server.install(&component("required-fields"), "required-fields");
    server.install(&component("hostile-check"), "hostile-check");
    ready(&server, "required-fields", &admin).await;
    ready(&server, "hostile-check", &admin).await;

    for (name, description, runbook, tags) in [
        ("gold-svc", Some("Takes payments."), true, &["payments"][..]),
        ("silver-svc", Some("Sends mail."), true, &[][..]),
        ("bronze-svc", Some("Resizes images."), false, &[][..]),
        // The gap case: passes the Silver and Gold rules, fails Bronze.
        ("gap-svc", None, true, &["search"][..]),
    ] {
        let (status, body) = server
            .put(
                &format!("/api/v1/entities/component/default/{name}"),
                &member,
                &component_entity(name, description, runbook, tags),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, _) = server
        .put(
            "/api/v1/entities/group/default/team-a",
            &member,
            &json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}}),
        )
        .await;
    assert_eq!(status, 201);

    // Defining needs the admin role.
    let (status, body) = server
        .put("/api/v1/scorecards/readiness", &member, &readiness())
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = server
        .put("/api/v1/scorecards/readiness", &admin, &readiness())
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["levels"], json!(["Basic", "Bronze", "Silver", "Gold"]));

    // A new scorecard is evaluated in full by itself.
    let results = server
        .wait_for("/api/v1/scorecards/readiness/results", &admin, WAIT, |b| {
            b["lastEvaluation"]["status"] == "succeeded" && b["entities"] == 4
        })
        .await;
    let at = |level: &str| {
        results["levels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["level"] == level)
            .unwrap()["entities"]
            .clone()
    };
    assert_eq!(
        [at("Basic"), at("Bronze"), at("Silver"), at("Gold")],
        [json!(1), json!(1), json!(1), json!(1)],
        "{results}"
    );
    let rule = |id: &str| {
        results["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(rule("has-description")["counts"]["pass"], 3);
    assert_eq!(rule("has-description")["passRate"], 0.75);
    assert_eq!(rule("has-tags")["counts"]["fail"], 2);
    // The Group is not covered.
    assert_eq!(results["lastEvaluation"]["counts"]["entities"], 4);

    // The gap case is Basic, and says what stands before Bronze.
    let gap = entity_view(&server, &admin, "gap-svc", "readiness").await;
    assert_eq!(gap["level"], "Basic", "{gap}");
    assert_eq!(gap["nextLevel"]["level"], "Bronze");
    assert_eq!(gap["nextLevel"]["rules"][0]["id"], "has-description");
    assert_eq!(gap["failing"].as_array().unwrap().len(), 1, "{gap}");
    assert!(
        gap["failing"][0]["message"]
            .as_str()
            .unwrap()
            .contains("metadata.description"),
        "{gap}"
    );

    // Badges.
    let r = server
        .http
        .get(
            server
                .url("/api/v1/entities/component/default/gold-svc/scorecards/readiness/badge.svg"),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("image/svg+xml"));
    let svg = r.text().await.unwrap();
    assert!(svg.contains("Production readiness: Gold"), "{svg}");

    // Changing an entity re-evaluates it: the gap closes.
    let (status, _) = server
        .put(
            "/api/v1/entities/component/default/gap-svc",
            &member,
            &component_entity("gap-svc", Some("Finds things."), true, &["search"]),
        )
        .await;
    assert_eq!(status, 200);
    let gap = wait_level(&server, &admin, "gap-svc", "Gold").await;
    assert!(gap["nextLevel"].is_null(), "{gap}");
    let (status, history) = server
        .get(
            "/api/v1/entities/component/default/gap-svc/scorecards/readiness/history",
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{history}");
    let levels: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["Basic", "Gold"], "{history}");
    assert!(history["items"][0]["until"].is_string());
    assert!(history["items"][1]["until"].is_null());

    // A full evaluation that finds every entity as it was rewrites none of
    // them, yet their results show it as when they were last evaluated.
    let before = entity_view(&server, &admin, "gold-svc", "readiness").await;
    let (status, body) = server
        .post("/api/v1/scorecards/readiness/evaluate", &member, None)
        .await;
    assert_eq!(status, 202, "{body}");
    let done = server
        .wait_for(
            &format!(
                "/api/v1/scorecards/readiness/evaluations/{}",
                body["id"].as_str().unwrap()
            ),
            &admin,
            WAIT,
            |b| b["status"] == "succeeded",
        )
        .await;
    assert_eq!(done["counts"]["entities"], 4, "{done}");
    assert_eq!(done["counts"]["unchanged"], 4, "{done}");
    assert_eq!(done["counts"]["levelChanges"], 0, "{done}");
    let after = entity_view(&server, &admin, "gold-svc", "readiness").await;
    let time = |v: &Value| -> chrono::DateTime<chrono::Utc> {
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
    };
    let started = time(&done["startedAt"]);
    let evaluated = time(&after["evaluatedAt"]);
    assert!(evaluated > time(&before["evaluatedAt"]), "{before} {after}");
    assert!(
        evaluated.timestamp_millis() >= started.timestamp_millis(),
        "{after} {done}"
    );
    assert_eq!(after["level"], before["level"]);
    assert_eq!(after["levelSince"], before["levelSince"]);

    // Exemptions need the admin role, carry a reason and an expiry, show as
    // exempt, count as passing, and lapse by themselves.
    let expires = chrono::Utc::now() + chrono::Duration::seconds(4);
    let exemption = json!({
        "entityRef": "component:default/bronze-svc",
        "ruleId": "has-runbook",
        "reason": "Runbook lives in the vendor's portal until the migration.",
        "expiresAt": expires,
    });
    let (status, _) = server
        .post(
            "/api/v1/scorecards/readiness/exemptions",
            &member,
            Some(&exemption),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = server
        .post(
            "/api/v1/scorecards/readiness/exemptions",
            &admin,
            Some(&exemption),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let bronze = wait_level(&server, &admin, "bronze-svc", "Silver").await;
    let runbook = bronze["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "has-runbook")
        .unwrap();
    assert_eq!(runbook["status"], "exempt", "{bronze}");
    assert!(runbook["exemption"]["reason"]
        .as_str()
        .unwrap()
        .contains("vendor"));
    let bronze = wait_level(&server, &admin, "bronze-svc", "Bronze").await;
    assert!(
        bronze["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "has-runbook" && r["status"] == "fail"),
        "{bronze}"
    );

    // An exemption for a rule the scorecard does not have is refused.
    let (status, body) = server
        .post(
            "/api/v1/scorecards/readiness/exemptions",
            &admin,
            Some(
                &json!({"entityRef": "component:default/gold-svc", "ruleId": "nope",
                         "reason": "x", "expiresAt": expires}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"].to_string().contains("/ruleId"), "{body}");

    // A check that traps fails only its own rule, even beside a rule of
    // the same plugin that the host first calls together with it.
    let hostile = json!({
        "title": "With a broken check",
        "filter": {"kinds": ["Component"]},
        "rules": [
            {"id": "broken", "title": "Broken", "level": "Bronze", "check": HOSTILE,
             "parameters": {"mode": "trap"}},
            {"id": "has-description", "title": "Has a description", "level": "Bronze",
             "check": REQUIRED, "parameters": {"fields": ["metadata.description"]}},
            {"id": "fine", "title": "Fine", "level": "Bronze", "check": HOSTILE,
             "parameters": {"mode": "ok"}}
        ]
    });
    let (status, body) = server
        .put("/api/v1/scorecards/hostile", &admin, &hostile)
        .await;
    assert_eq!(status, 201, "{body}");
    let results = server
        .wait_for("/api/v1/scorecards/hostile/results", &admin, WAIT, |b| {
            b["lastEvaluation"]["status"] == "succeeded"
        })
        .await;
    let rules = results["rules"].as_array().unwrap();
    assert_eq!(rules[0]["counts"]["error"], 4, "{results}");
    assert_eq!(rules[1]["counts"]["pass"], 4, "{results}");
    assert_eq!(rules[2]["id"], "fine", "{results}");
    assert_eq!(rules[2]["counts"]["pass"], 4, "{results}");
    let view = entity_view(&server, &admin, "gold-svc", "hostile").await;
    assert_eq!(view["level"], "Basic");
    assert!(
        view["failing"][0]["message"]
            .as_str()
            .unwrap()
            .contains("trap"),
        "{view}"
    );

    // On demand, for one entity; the server kept serving throughout.
    let (status, body) = server
        .post(
            "/api/v1/scorecards/readiness/evaluate",
            &member,
            Some(&json!({"entity": "component:default/silver-svc"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let eval_id = body["id"].as_str().unwrap().to_owned();
    let done = server
        .wait_for(
            &format!("/api/v1/scorecards/readiness/evaluations/{eval_id}"),
            &admin,
            WAIT,
            |b| b["status"] == "succeeded",
        )
        .await;
    assert_eq!(done["counts"]["entities"], 1, "{done}");
    assert_eq!(done["trigger"], "manual");

    // Narrowed to the entities tagged `payments`, the scorecard's full
    // evaluation forgets the three it no longer covers (they are still in
    // the catalog) and keeps the one it does.
    let mut narrowed = readiness();
    narrowed["filter"]["tags"] = json!(["payments"]);
    let (status, body) = server
        .put("/api/v1/scorecards/readiness", &admin, &narrowed)
        .await;
    assert_eq!(status, 200, "{body}");
    let list = server
        .wait_for(
            "/api/v1/scorecards/readiness/evaluations",
            &admin,
            WAIT,
            |b| b["items"][0]["trigger"] == "changed" && b["items"][0]["status"] == "succeeded",
        )
        .await;
    let latest = &list["items"][0];
    assert_eq!(latest["counts"]["entities"], 1, "{latest}");
    assert_eq!(latest["counts"]["forgotten"], 3, "{latest}");
    let silver = entity_scorecards(&server, &admin, "silver-svc").await;
    assert!(
        !silver.iter().any(|i| i["scorecard"]["id"] == "readiness"),
        "{silver:?}"
    );
    assert_eq!(
        entity_view(&server, &admin, "gold-svc", "readiness").await["level"],
        "Gold"
    );
    server.stop().await;
}

#[tokio::test]
async fn levels_exemptions_history_and_reevaluation_sqlite() {
    levels_exemptions_history_and_reevaluation(None).await;
}

#[tokio::test]
async fn levels_exemptions_history_and_reevaluation_postgres() {
    let db = TestDatabase::postgres().await;
    levels_exemptions_history_and_reevaluation(Some(db.url.clone())).await;
    db.drop_db().await;
}

#[tokio::test]
async fn bad_definitions_are_refused_naming_each_problem() {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token(Role::Admin).await;
    server.install(&component("required-fields"), "required-fields");
    ready(&server, "required-fields", &admin).await;
    let (status, body) = server
        .put(
            "/api/v1/scorecards/broken",
            &admin,
            &json!({
                "title": "Broken",
                "rules": [
                    {"id": "a", "title": "A", "level": "Bronze", "check": "no-such-plugin/x"},
                    {"id": "b", "title": "B", "level": "Platinum", "check": REQUIRED,
                     "parameters": {"fields": ["spec.owner"]}},
                    {"id": "c", "title": "C", "level": "Silver", "check": REQUIRED,
                     "parameters": {"fields": "spec.owner"}}
                ]
            }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"/rules/1/level"), "{body}");
    assert!(fields.contains(&"/rules/0/check"), "{body}");
    assert!(fields.contains(&"/rules/2/parameters/fields"), "{body}");
    assert_eq!(
        server.get("/api/v1/scorecards/broken", &admin).await.0,
        404,
        "nothing was stored"
    );
    // The path's id and the body's must agree.
    let (status, body) = server
        .put(
            "/api/v1/scorecards/one",
            &admin,
            &json!({"id": "two", "title": "T", "rules": []}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "/id");
    server.stop().await;
}

#[tokio::test]
async fn scorecards_from_files_apply_and_go_with_their_file() {
    let files = tempfile::tempdir().unwrap();
    std::fs::write(
        files.path().join("docs.yaml"),
        format!(
            "id: docs\ntitle: Documentation\nfilter:\n  kinds: [Component]\nrules:\n  - id: described\n    title: Described\n    level: Bronze\n    check: {REQUIRED}\n    parameters:\n      fields: [metadata.description]\n"
        ),
    )
    .unwrap();
    std::fs::write(files.path().join("broken.yaml"), "id: x\ntitle: [\n").unwrap();
    let server = TestServer::start(Options {
        scorecards_dir: Some(files.path().to_owned()),
        ..Options::default()
    })
    .await;
    let admin = server.token(Role::Admin).await;
    server.install(&component("required-fields"), "required-fields");
    ready(&server, "required-fields", &admin).await;
    let list = server
        .wait_for("/api/v1/scorecards", &admin, WAIT, |b| b["total"] == 1)
        .await;
    assert_eq!(list["items"][0]["id"], "docs");
    assert!(list["items"][0]["definedIn"]["file"]
        .as_str()
        .unwrap()
        .ends_with("docs.yaml"));
    assert!(
        list["fileErrors"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("broken.yaml"),
        "{list}"
    );
    let (status, body) = server
        .put("/api/v1/scorecards/docs", &admin, &readiness())
        .await;
    assert_eq!(status, 409, "{body}");
    std::fs::remove_file(files.path().join("docs.yaml")).unwrap();
    server
        .wait_for("/api/v1/scorecards", &admin, WAIT, |b| b["total"] == 0)
        .await;
    server.stop().await;
}
