//! Plugins written in Python, JavaScript and C, built from source by
//! `scripts/build-plugins.sh` (componentize-py, componentize-js, clang +
//! wit-bindgen), in a running host:
//!
//! - `csv-source` (Python) syncs a CSV export from a granted directory;
//! - `run-automation` (JavaScript) POSTs to a local automation endpoint with
//!   `fetch` over wasi:http;
//! - `catalog-hygiene` (C) is the check behind a scorecard;
//! - the conformance check, written in Rust, Python, JavaScript and C, gives
//!   the same outcome for every entity;
//! - every SDK template (three languages, four roles) loads and describes
//!   itself;
//! - a restart loads the big Python and JavaScript components from the
//!   compiled-code cache.

use std::path::Path;
use std::time::{Duration, Instant};

use portolan_e2e::stand_in::{Answer, StandIn};
use portolan_e2e::{component, root, Options, TestServer};
use portolan_runtime::model::Entity;
use portolan_runtime::{Contract, EntityBatch, RuleCall};
use portolan_store::Role;
use serde_json::{json, Value};

/// How long a test waits for an evaluation or a run to show in the API.
const WAIT: Duration = Duration::from_secs(60);

/// Python and JavaScript components take seconds to compile in a debug host.
const LOAD_WITHIN: Duration = Duration::from_secs(120);

/// Installs `component` as `id` (with `sidecar`, if not empty) and waits
/// until it is listed as ready; returns its `GET /api/v1/plugins/{id}`.
async fn install(
    server: &TestServer,
    token: &str,
    component: &Path,
    id: &str,
    sidecar: &str,
) -> Value {
    if !sidecar.is_empty() {
        server.write_sidecar(id, sidecar);
    }
    server.install(component, id);
    let (_, body) = server
        .wait_plugin(id, token, LOAD_WITHIN, |_, b| {
            b["status"] == "ready" || b["status"] == "failed"
        })
        .await
        .unwrap_or_else(|| panic!("{id} was never listed"));
    assert_eq!(body["status"], "ready", "{id}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_csv_source_catalogs_a_granted_export_and_keeps_it_when_a_row_breaks() {
    let server = TestServer::start(Options::default()).await;
    let token = server.token(Role::Admin).await;
    let export = server.dir.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    std::fs::copy(
        root().join("examples/csv/services.csv"),
        export.join("services.csv"),
    )
    .unwrap();
    let sidecar = format!(
        "[limits]\nmemory_mb = 128\n\n[[dirs]]\nhost = {:?}\nguest = \"/data\"\n\n\
         [settings]\ndirectory = \"/data\"\nfile = \"services.csv\"\n",
        export.display().to_string()
    );
    let plugin = install(&server, &token, &component("csv-source"), "csv", &sidecar).await;
    assert_eq!(plugin["role"], "catalog-source", "{plugin}");
    assert_eq!(plugin["version"], "0.1.0", "{plugin}");

    let sync = server.sync_source("csv", &token).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let stored: u64 = ["added", "updated", "unchanged"]
        .iter()
        .map(|k| sync["counts"][k].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(stored, 3, "{sync}");

    let (status, api) = server
        .get("/api/v1/entities/component/default/inventory-api", &token)
        .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["metadata"]["title"], "Inventory API", "{api}");
    assert_eq!(
        api["metadata"]["description"],
        "Stock levels for every warehouse"
    );
    assert_eq!(api["metadata"]["tags"], json!(["java", "backend"]), "{api}");
    assert_eq!(
        api["metadata"]["links"][0]["url"], "https://wiki.example.com/inventory",
        "{api}"
    );
    assert_eq!(api["metadata"]["links"][0]["title"], "Runbook", "{api}");
    assert_eq!(
        api["metadata"]["annotations"]["csv-source/tier"], "1",
        "{api}"
    );
    assert_eq!(
        api["spec"],
        json!({"type": "service", "lifecycle": "production", "owner": "team-logistics", "system": "logistics"}),
        "{api}"
    );
    let (status, printer) = server
        .get("/api/v1/entities/component/default/label-printer", &token)
        .await;
    assert_eq!(status, 200, "{printer}");
    assert!(printer["metadata"].get("title").is_none(), "{printer}");
    assert!(
        printer["metadata"]
            .get("links")
            .is_none_or(|l| l == &json!([])),
        "{printer}"
    );
    let (status, system) = server
        .get("/api/v1/entities/system/default/logistics", &token)
        .await;
    assert_eq!(status, 200, "{system}");

    // A row without a name fails the sync, naming its line; the catalog
    // keeps the last good data.
    std::fs::write(
        export.join("services.csv"),
        "name,owner\nbilling,team-a\n,team-b\n",
    )
    .unwrap();
    let sync = server.sync_source("csv", &token).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    let message = sync["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("line 3: no name"), "{sync}");
    let (status, _) = server
        .get("/api/v1/entities/component/default/inventory-api", &token)
        .await;
    assert_eq!(status, 200);

    // Nothing outside the grant: a path out of the directory is not there.
    std::fs::write(server.dir.path().join("secret.csv"), "name\nsecret\n").unwrap();
    server.write_sidecar("csv", &sidecar.replace("services.csv", "../secret.csv"));
    let plugin = server
        .wait_plugin("csv", &token, LOAD_WITHIN, |_, b| {
            b["status"] == "ready" && b["grants"].to_string().contains("../secret.csv")
        })
        .await;
    assert!(plugin.is_some(), "the changed sidecar was never loaded");
    let sync = server.sync_source("csv", &token).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    let (status, _) = server
        .get("/api/v1/entities/component/default/secret", &token)
        .await;
    assert_eq!(status, 404);
}

/// A local automation endpoint that records requests and answers `status`
/// with a job id.
async fn automation_endpoint(status: u16) -> StandIn {
    StandIn::start(move |_| Answer::json(status, json!({"job": "J-42", "state": "started"}))).await
}

async fn wait_run(server: &TestServer, token: &str, id: &str) -> Value {
    server
        .wait_for(&format!("/api/v1/runs/{id}"), token, WAIT, |run| {
            matches!(
                run["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_action_posts_to_the_automation_endpoint_with_fetch() {
    const TOKEN: &str = "autom4tion-s3cret";
    let server = TestServer::start(Options {
        secrets: [("AUTOMATION_TOKEN".to_owned(), TOKEN.to_owned())].into(),
        ..Options::default()
    })
    .await;
    let admin = server.token(Role::Admin).await;
    let member = server.token(Role::Member).await;
    let endpoint = automation_endpoint(200).await;
    let (host, url) = (endpoint.host(), endpoint.url());
    let sidecar = format!(
        "secrets = [\"AUTOMATION_TOKEN\"]\n\n[limits]\nmemory_mb = 128\n\n\
         [http]\nallow = [\"{host}\"]\n\n\
         [settings]\nurl = \"{url}/api/jobs\"\ntoken_secret = \"AUTOMATION_TOKEN\"\n"
    );
    let plugin = install(
        &server,
        &admin,
        &component("run-automation"),
        "run-automation",
        &sidecar,
    )
    .await;
    assert_eq!(plugin["role"], "action", "{plugin}");

    let (status, body) = server
        .put(
            "/api/v1/entities/component/default/payments",
            &member,
            &json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": "payments", "description": "Takes money."},
                "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Input that breaks the plugin's schema is refused before it runs.
    let (status, body) = server
        .post(
            "/api/v1/actions/run-automation/runs",
            &member,
            Some(&json!({"entity": "component:default/payments", "input": {"jobb": "x"}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    let (status, run) = server
        .post(
            "/api/v1/actions/run-automation/runs",
            &member,
            Some(&json!({"entity": "component:default/payments",
                         "input": {"job": "flush-cache", "parameters": {"region": "eu"}}})),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = wait_run(&server, &member, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["output"],
        json!({"status": 200, "response": {"job": "J-42", "state": "started"}}),
        "{run}"
    );

    let seen = endpoint.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let request = &seen[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/api/jobs")
    );
    assert_eq!(request.header("x-automation-token"), Some(TOKEN));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.body,
        json!({"runId": id, "actor": request.body["actor"], "attempt": 1, "job": "flush-cache",
               "parameters": {"region": "eu"}, "entity": "component:default/payments"}),
    );
    assert!(request.body["actor"].is_string(), "{:?}", request.body);

    let (status, logs) = server
        .get(&format!("/api/v1/runs/{id}/logs"), &member)
        .await;
    assert_eq!(status, 200, "{logs}");
    let text = logs.to_string();
    assert!(text.contains("starting job flush-cache"), "{logs}");
    assert!(text.contains("answered 200"), "{logs}");
    assert!(!text.contains(TOKEN), "the log shows the secret: {logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_action_fails_the_run_on_an_error_answer_and_reaches_only_allowed_hosts() {
    let server = TestServer::start(Options::default()).await;
    let member = server.token(Role::Member).await;
    let endpoint = automation_endpoint(503).await;
    let other = automation_endpoint(200).await;
    let (status, body) = server
        .put(
            "/api/v1/entities/component/default/payments",
            &member,
            &described("payments", Some("Takes money."), &[], false),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let allowed = endpoint.host();
    let sidecar = |to: &StandIn| {
        format!(
            "[limits]\nmemory_mb = 128\n\n[http]\nallow = [\"{allowed}\"]\n\n\
             [settings]\nurl = \"{}/jobs\"\n",
            to.url()
        )
    };
    install(
        &server,
        &member,
        &component("run-automation"),
        "automation",
        &sidecar(&endpoint),
    )
    .await;
    let start = |server: &TestServer| {
        let member = member.clone();
        let server_url = server.url("/api/v1/actions/automation/runs");
        let http = server.http.clone();
        async move {
            let r = http
                .post(server_url)
                .bearer_auth(&member)
                .json(&json!({"entity": "component:default/payments", "input": {"job": "deploy"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let id = start(&server).await;
    let run = wait_run(&server, &member, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"].to_string().contains("answered 503"),
        "the run names the status: {run}"
    );
    assert_eq!(endpoint.seen().len(), 1);

    // Pointed at a host that is not on the allow list: nothing reaches it.
    server.write_sidecar("automation", &sidecar(&other));
    server
        .wait_plugin("automation", &member, LOAD_WITHIN, |_, b| {
            b["status"] == "ready"
                && b["grants"]
                    .to_string()
                    .contains(&format!("{}/jobs", other.host()))
        })
        .await
        .expect("the changed sidecar was never loaded");
    // The host refuses the request (http-request-denied). componentize-js
    // 0.23's fetch does not turn that into a rejected promise: the engine
    // aborts, so the run fails as a trap rather than with the plugin's own
    // "cannot reach" message. Either way nothing leaves the sandbox.
    let id = start(&server).await;
    let run = wait_run(&server, &member, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"]["code"] == "trap" || run["error"].to_string().contains("cannot reach"),
        "{run}"
    );
    assert!(other.seen().is_empty());
}

fn described(name: &str, description: Option<&str>, tags: &[&str], links: bool) -> Value {
    let mut metadata = json!({"name": name, "tags": tags});
    if let Some(d) = description {
        metadata["description"] = json!(d);
    }
    if links {
        metadata["links"] = json!([{"url": format!("https://docs.example/{name}")}]);
    }
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": metadata,
           "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_check_drives_a_scorecard() {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token(Role::Admin).await;
    let member = server.token(Role::Member).await;
    let plugin = install(
        &server,
        &admin,
        &component("catalog-hygiene"),
        "catalog-hygiene",
        "",
    )
    .await;
    let checks: Vec<&str> = plugin["describe"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{plugin}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "has-owner",
            "has-description",
            "has-lifecycle",
            "has-annotation",
            "in-system",
            "api-definition",
            "has-links",
            "lowercase-tags",
            "description"
        ],
        "{plugin}"
    );

    // The catalog itself refuses upper-case tags, so through the API the
    // lowercase-tags rule always passes; the conformance test below feeds
    // the same logic upper-case tags directly.
    for (name, description, tags, links) in [
        (
            "gold-svc",
            "Takes payments from every shop.",
            &["payments"][..],
            true,
        ),
        (
            "bronze-svc",
            "Sends mail to customers.",
            &["mail"][..],
            false,
        ),
        ("basic-svc", "tiny", &[][..], true),
    ] {
        let (status, body) = server
            .put(
                &format!("/api/v1/entities/component/default/{name}"),
                &member,
                &described(name, Some(description), tags, links),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let rule = |id: &str, level: &str, check: &str, parameters: Value| {
        json!({"id": id, "title": id, "level": level,
               "check": format!("catalog-hygiene/{check}"), "parameters": parameters})
    };
    let scorecard = json!({
        "title": "Hygiene",
        "filter": {"kinds": ["Component"]},
        "rules": [
            rule("described", "Bronze", "description", json!({"minLength": 10})),
            rule("links", "Silver", "has-links", json!({})),
            rule("tags", "Gold", "lowercase-tags", json!({})),
        ]
    });
    let (status, body) = server
        .put("/api/v1/scorecards/hygiene", &admin, &scorecard)
        .await;
    assert_eq!(status, 201, "{body}");
    // Parameters that break the C check's schema are refused.
    let mut bad = scorecard.clone();
    bad["rules"][0]["parameters"] = json!({"minLength": "ten"});
    let (status, body) = server.put("/api/v1/scorecards/hygiene", &admin, &bad).await;
    assert_eq!(status, 422, "{body}");

    server
        .wait_for("/api/v1/scorecards/hygiene/results", &admin, WAIT, |b| {
            b["lastEvaluation"]["status"] == "succeeded" && b["entities"] == 3
        })
        .await;
    for (name, level, message) in [
        ("gold-svc", "Gold", None),
        ("bronze-svc", "Bronze", Some("no links")),
        (
            "basic-svc",
            "Basic",
            Some("description has 4 characters, fewer than 10"),
        ),
    ] {
        let view = server
            .wait_for(
                &format!("/api/v1/entities/component/default/{name}/scorecards"),
                &admin,
                WAIT,
                |b| b["items"].as_array().is_some_and(|i| !i.is_empty()),
            )
            .await;
        assert_eq!(view["items"][0]["level"], level, "{name}: {view}");
        if let Some(message) = message {
            assert!(view.to_string().contains(message), "{name}: {view}");
        }
    }
}

/// The entities the conformance check is judged on: one per rule, edge
/// cases of each (whitespace, non-ASCII lengths, the first offending tag,
/// kinds in other cases).
fn conformance_entities() -> Vec<Entity> {
    let e =
        |kind: &str, name: &str, description: Option<&str>, tags: &[&str], links: bool| -> Entity {
            let mut v = described(name, description, tags, links);
            v["kind"] = json!(kind);
            serde_json::from_value(v).unwrap()
        };
    vec![
        e(
            "Component",
            "ok",
            Some("Takes payments from every shop."),
            &["payments"],
            true,
        ),
        e("Component", "no-description", None, &[], true),
        e("Component", "blank", Some(" \t\n "), &[], true),
        e("Component", "short", Some("  tiny  "), &[], true),
        e("Component", "exactly-ten", Some("0123456789"), &["a"], true),
        e("Component", "unicode-short", Some("Zürich café"), &[], true),
        e(
            "Component",
            "unicode-long",
            Some("Zürich café ümlaut"),
            &["x-y"],
            true,
        ),
        e("Component", "emoji", Some("🚀🚀🚀🚀🚀 rockets"), &[], true),
        e(
            "Component",
            "upper-tag",
            Some("A long enough description."),
            &["ok", "Bad", "WORSE"],
            true,
        ),
        e(
            "Component",
            "no-links",
            Some("A long enough description."),
            &["fine"],
            false,
        ),
        e("Group", "team-a", None, &[], false),
        e("user", "alice", Some("x"), &["Upper"], false),
        e(
            "API",
            "api",
            Some("Describes an API well."),
            &["rest"],
            true,
        ),
    ]
}

/// The languages of the conformance plugins, the reference first.
const CONFORMANCE_LANGUAGES: [&str; 4] = ["rust", "python", "js", "c"];

/// A server with the four conformance plugins installed as
/// `conformance-LANG`, and an admin token.
async fn with_conformance_plugins() -> (TestServer, String) {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token(Role::Admin).await;
    for lang in CONFORMANCE_LANGUAGES {
        let id = format!("conformance-{lang}");
        install(
            &server,
            &admin,
            &component(&id),
            &id,
            "[limits]\nmemory_mb = 128\n",
        )
        .await;
    }
    (server, admin)
}

/// The outcomes of `check` of `conformance-LANG` over `entities`, as JSON;
/// panics if the call fails.
async fn conformance_outcomes(
    server: &TestServer,
    lang: &str,
    check: &str,
    parameters: &Value,
    entities: &[Entity],
) -> Value {
    let plugin = server
        .state
        .registry
        .plugin(&format!("conformance-{lang}"))
        .unwrap();
    let (check, params, batch) = (check.to_owned(), parameters.clone(), entities.to_vec());
    let report = tokio::task::spawn_blocking(move || plugin.evaluate(&check, &params, &batch))
        .await
        .unwrap();
    let outcomes = report
        .result
        .unwrap_or_else(|e| panic!("conformance-{lang} with {parameters}: {e:?}"));
    serde_json::to_value(outcomes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_check_gives_identical_results_in_four_languages() {
    let (server, _) = with_conformance_plugins().await;
    let languages = CONFORMANCE_LANGUAGES;
    let entities = conformance_entities();
    let mut results: Vec<(String, Value, Value)> = Vec::new();
    for parameters in [json!({}), json!({"minLength": 12}), json!({"minLength": 0})] {
        let mut per_language = Vec::new();
        for lang in languages {
            let outcomes =
                conformance_outcomes(&server, lang, "conformance", &parameters, &entities).await;
            per_language.push((lang, outcomes));
        }
        let (_, reference) = &per_language[0];
        for (lang, outcomes) in &per_language[1..] {
            assert_eq!(
                outcomes, reference,
                "conformance-{lang} differs from Rust with parameters {parameters}"
            );
        }
        results.push((parameters.to_string(), reference.clone(), Value::Null));
    }
    // The reference itself says what the rules say (tests/polyglot/README.md),
    // so four identical wrong answers fail too.
    let (_, defaults, _) = &results[0];
    let expect = json!([
        {"status": "pass", "value": 31},
        {"status": "fail", "message": "no description"},
        {"status": "fail", "message": "no description"},
        {"status": "fail", "message": "description has 4 characters, fewer than 10"},
        {"status": "pass", "value": 10},
        {"status": "pass", "value": 11},
        {"status": "pass", "value": 18},
        // 13 code points (JavaScript's .length would say 18).
        {"status": "pass", "value": 13},
        {"status": "fail", "message": "tag \"Bad\" is not lowercase"},
        {"status": "fail", "message": "no links"},
        {"status": "skip", "message": "people and teams are exempt"},
        {"status": "skip", "message": "people and teams are exempt"},
        {"status": "pass", "value": 22},
    ]);
    assert_eq!(defaults, &expect);
    let (_, twelve, _) = &results[1];
    assert_eq!(
        twelve[5]["message"],
        "description has 11 characters, fewer than 12"
    );
    assert_eq!(
        twelve[4]["message"],
        "description has 10 characters, fewer than 12"
    );

    // An unknown check is refused the same way by all four.
    for lang in languages {
        let plugin = server
            .state
            .registry
            .plugin(&format!("conformance-{lang}"))
            .unwrap();
        let report = tokio::task::spawn_blocking(move || plugin.evaluate("nope", &json!({}), &[]))
            .await
            .unwrap();
        let error = format!("{:?}", report.result.unwrap_err());
        assert!(
            error.contains("unknown-check"),
            "conformance-{lang}: {error}"
        );
    }

    // Several rules over one batch: every language's plugin is built
    // against contract 0.4.0 and takes them in one `evaluate-rules` call
    // (all but Rust through their SDK's default, which asks `evaluate` per
    // rule). Each gives each rule what it gave alone, and an unknown check
    // fails only its own rule.
    let rules = [
        ("conformance", json!({"minLength": 12})),
        ("nope", json!({})),
        ("conformance", json!({})),
    ];
    for (lang, contract, calls) in [
        ("rust", Contract::V0_4, 1),
        ("python", Contract::V0_4, 1),
        ("js", Contract::V0_4, 1),
        ("c", Contract::V0_4, 1),
    ] {
        let plugin = server
            .state
            .registry
            .plugin(&format!("conformance-{lang}"))
            .unwrap();
        assert_eq!(plugin.contract, contract, "conformance-{lang}");
        let (rules, batch) = (rules.clone(), EntityBatch::new(entities.clone()));
        let report = tokio::task::spawn_blocking(move || {
            let calls: Vec<RuleCall<'_>> = rules
                .iter()
                .map(|(check, parameters)| RuleCall { check, parameters })
                .collect();
            plugin.evaluate_rules(&calls, &batch)
        })
        .await
        .unwrap();
        assert_eq!(report.calls, calls, "conformance-{lang}");
        assert!(
            report.split.is_none(),
            "conformance-{lang}: {:?}",
            report.split
        );
        let answers: Vec<Value> = report
            .results
            .iter()
            .map(|r| match r {
                Ok(outcomes) => serde_json::to_value(outcomes).unwrap(),
                Err(e) => json!(format!("{e:?}")),
            })
            .collect();
        assert_eq!(answers[0], results[1].1, "conformance-{lang}, minLength 12");
        assert!(
            answers[1]
                .as_str()
                .is_some_and(|e| e.contains("unknown-check")),
            "conformance-{lang}: {}",
            answers[1]
        );
        assert_eq!(answers[2], results[0].1, "conformance-{lang}, defaults");
    }
}

/// The conformance plugins' second check, `owner-known`, looks each owner
/// up in the catalog through its language's SDK helper (`catalog.lookup`
/// and `full_ref` in Python, `catalog.lookup` and `fullRef` in JavaScript,
/// `portolan_catalog_lookup` and `portolan_full_ref` in C, the Rust SDK's
/// `catalog` module): all four give the same outcomes, and those are what
/// the catalog holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_catalog_lookups_agree_in_four_languages() {
    let (server, admin) = with_conformance_plugins().await;
    let languages = CONFORMANCE_LANGUAGES;
    let (status, reply) = server
        .post(
            "/api/v1/entities/batch",
            &admin,
            Some(&json!([
                {"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                 "metadata": {"name": "Team-A"}, "spec": {"type": "team", "children": []}},
                {"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                 "metadata": {"name": "platform", "namespace": "ops"},
                 "spec": {"type": "team", "children": []}},
                {"apiVersion": "backstage.io/v1alpha1", "kind": "User",
                 "metadata": {"name": "jdoe"}, "spec": {"memberOf": []}},
            ])),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let owned = |name: &str, namespace: &str, owner: Value| -> Entity {
        serde_json::from_value(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "service", "lifecycle": "production", "owner": owner}
        }))
        .unwrap()
    };
    let entities = vec![
        // Shorthand: a Group in the entity's namespace; names compare
        // case-insensitively.
        owned("a", "default", json!("team-a")),
        owned("b", "default", json!("team-b")),
        owned("c", "ops", json!("platform")),
        // The same name in another namespace is another entity.
        owned("d", "default", json!("platform")),
        owned("e", "ops", json!("default/Team-A")),
        // An explicit kind.
        owned("f", "default", json!("user:jdoe")),
        owned("g", "default", json!("user:nobody")),
        owned("h", "default", json!("")),
        owned("i", "default", json!(42)),
        serde_json::from_value(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "System",
            "metadata": {"name": "j"}, "spec": {}
        }))
        .unwrap(),
    ];
    let mut answers = Vec::new();
    for lang in languages {
        let outcomes =
            conformance_outcomes(&server, lang, "owner-known", &json!({}), &entities).await;
        answers.push((lang, outcomes));
    }
    let expect = json!([
        {"status": "pass", "value": "group:default/team-a"},
        {"status": "fail", "message": "owner \"group:default/team-b\" is not in the catalog"},
        {"status": "pass", "value": "group:ops/platform"},
        {"status": "fail", "message": "owner \"group:default/platform\" is not in the catalog"},
        {"status": "pass", "value": "group:default/Team-A"},
        {"status": "pass", "value": "user:default/jdoe"},
        {"status": "fail", "message": "owner \"user:default/nobody\" is not in the catalog"},
        {"status": "skip", "message": "no owner"},
        {"status": "skip", "message": "no owner"},
        {"status": "skip", "message": "no owner"},
    ]);
    for (lang, outcomes) in &answers {
        assert_eq!(outcomes, &expect, "owner-known in {lang}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sdk_template_builds_and_loads() {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token(Role::Admin).await;
    let roles = [
        ("catalog-source", "catalog-source"),
        ("action", "action"),
        ("scaffold-generator", "scaffold-generator"),
        ("scorecard-check", "scorecard-check"),
    ];
    for lang in ["python", "js", "c"] {
        for (folder, role) in roles {
            let id = format!("{lang}-{folder}");
            let wasm = root().join(format!("target/fixtures/templates/{id}.wasm"));
            component("conformance-rust"); // builds everything, templates included
            assert!(wasm.exists(), "{} was not built", wasm.display());
            let body = install(&server, &admin, &wasm, &id, "[limits]\nmemory_mb = 128\n").await;
            assert_eq!(body["role"], role, "{id}: {body}");
            assert_eq!(body["version"], "0.1.0", "{id}: {body}");
        }
    }
    // A template check evaluates as its README says.
    for lang in ["python", "js", "c"] {
        let plugin = server
            .state
            .registry
            .plugin(&format!("{lang}-scorecard-check"))
            .unwrap();
        let batch = vec![portolan_e2e::entity("svc")];
        let report = tokio::task::spawn_blocking(move || {
            plugin.evaluate("described", &json!({"minLength": 20}), &batch)
        })
        .await
        .unwrap();
        let outcomes = serde_json::to_value(report.result.unwrap()).unwrap();
        assert_eq!(
            outcomes,
            json!([{"status": "fail", "message": "description shorter than 20 characters"}]),
            "{lang}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loads_python_and_javascript_components_from_the_cache() {
    let keep = tempfile::tempdir().unwrap();
    let options = Options {
        data_dir: Some(keep.path().join("data")),
        plugins_dir: Some(keep.path().join("plugins")),
        ..Options::default()
    };
    std::fs::create_dir_all(keep.path().join("plugins")).unwrap();
    let big = ["conformance-python", "conformance-js"];

    let first = TestServer::start(options.clone()).await;
    let token = first.token(Role::Admin).await;
    let mut cold = Vec::new();
    for id in big {
        let body = install(
            &first,
            &token,
            &component(id),
            id,
            "[limits]\nmemory_mb = 128\n",
        )
        .await;
        assert_eq!(body["origin"], "compiled", "{id}: {body}");
        cold.push(body["loadMs"].as_u64().unwrap());
    }
    first.stop().await;

    let second = TestServer::start(options).await;
    let token = second.token(Role::Admin).await;
    for (id, cold_ms) in big.iter().zip(cold) {
        let (_, body) = second
            .wait_plugin(id, &token, LOAD_WITHIN, |_, b| b["status"] == "ready")
            .await
            .unwrap_or_else(|| panic!("{id} never loaded after the restart"));
        assert_eq!(body["origin"], "cache", "{id}: {body}");
        let cached_ms = body["loadMs"].as_u64().unwrap();
        println!("{id}: cold load {cold_ms} ms, from the cache {cached_ms} ms (debug host)");
        assert!(
            cached_ms * 5 < cold_ms,
            "{id}: the cached load ({cached_ms} ms) is not much faster than compiling ({cold_ms} ms)"
        );
    }
    second.stop().await;
}

/// The README's walk-through, timed: the `plugin-template` scaffolder writes
/// a scorecard-check project in each language, `scripts/build-guest.sh`
/// builds it, the component goes into the plugins folder of the running
/// portal, and its check evaluates an entity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_check_in_each_language_from_the_scaffolder_runs_in_the_portal() {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token(Role::Admin).await;
    install(
        &server,
        &admin,
        &component("plugin-template"),
        "plugin-template",
        "",
    )
    .await;
    let template = server.state.registry.plugin("plugin-template").unwrap();
    let projects = tempfile::tempdir().unwrap();

    for language in ["python", "javascript", "c"] {
        let started = Instant::now();
        let name = format!("my-{language}-check");
        let parameters = json!({"name": name, "owner": "platform", "role": "scorecard-check", "language": language});
        let t = template.clone();
        let output = tokio::task::spawn_blocking(move || t.generate(&parameters))
            .await
            .unwrap()
            .result
            .unwrap_or_else(|e| panic!("{language}: {e:?}"));
        let dir = projects.path().join(&name);
        for f in &output.files {
            let path = dir.join(&f.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &f.content).unwrap();
        }
        let source = ["app.py", "app.js", "plugin.c"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!(
                    "{language}: no source in {:?}",
                    output.files.iter().map(|f| &f.path).collect::<Vec<_>>()
                )
            });
        let author_lines = std::fs::read_to_string(&source)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        assert!(author_lines <= 30, "{language}: {author_lines} lines");

        let wasm = projects.path().join(format!("{name}.wasm"));
        let built = std::process::Command::new(root().join("scripts/build-guest.sh"))
            .arg(&dir)
            .arg(&wasm)
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{language}: {}{}",
            String::from_utf8_lossy(&built.stdout),
            String::from_utf8_lossy(&built.stderr)
        );
        let sidecar = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
        let body = install(&server, &admin, &wasm, &name, &sidecar).await;
        assert_eq!(body["role"], "scorecard-check", "{body}");
        let plugin = server.state.registry.plugin(&name).unwrap();
        let report = tokio::task::spawn_blocking(move || {
            plugin.evaluate(
                "described",
                &json!({"minLength": 5}),
                &[portolan_e2e::entity("svc")],
            )
        })
        .await
        .unwrap();
        // The test entity's description is "a test service" (14 characters).
        assert_eq!(
            serde_json::to_value(report.result.unwrap()).unwrap(),
            json!([{"status": "pass", "value": 14}]),
            "{language}"
        );
        println!(
            "walk-through {language}: generated, built, loaded and evaluated in {:.1} s; {author_lines} lines in {}",
            started.elapsed().as_secs_f64(),
            source.file_name().unwrap().to_string_lossy()
        );
    }
}
