//! The scorecard-check plugins that ship with Portolan and need outside data
//! (`plugins/ci-status`) run in a real server against a local stand-in of
//! the API they call: scorecards defined through `/api/v1/scorecards`,
//! evaluated, and read back through the API, on SQLite and PostgreSQL. Each
//! test checks the exact requests the stand-in received, what every entity
//! got, and that the token never shows in an answer or a stored row.

use std::collections::BTreeSet;
use std::time::Duration;

use portolan_e2e::stand_in::{Answer, StandIn};
use portolan_e2e::{Options, TestServer};
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::{json, Value};

/// How long a test waits for an evaluation or a run to show in the API.
const WAIT: Duration = Duration::from_secs(60);

const GITHUB_TOKEN: &str = "ghp-ci-status-t0ken-5c4b3a";

/// The requests `api` received, sorted (the plugin may look repositories
/// up in any order).
fn sorted_lines(api: &StandIn) -> Vec<String> {
    let mut lines = api.lines();
    lines.sort();
    lines
}

/// RFC 3339, `hours` ago.
fn hours_ago(hours: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn run(id: u64, conclusion: &str, hours: i64) -> Value {
    json!({
        "id": id, "run_number": id % 100, "name": "CI", "status": "completed",
        "conclusion": conclusion, "event": "push", "head_branch": "main",
        "html_url": format!("https://github.test/acme/runs/{id}"),
        "created_at": hours_ago(hours + 1), "updated_at": hours_ago(hours)
    })
}

/// A stand-in of GitHub's REST API serving these repositories:
///
/// | repository | answers |
/// | --- | --- |
/// | `acme/green` | default branch `main`, newest completed run 4201 `success` 2 h ago |
/// | `acme/red` | default branch `trunk`, newest completed run 4302 `failure` 30 days ago |
/// | `acme/empty` | default branch `main`, no runs |
/// | `acme/gone` | 404 |
/// | `acme/broken` | 500, echoing the request's authorization header |
/// | `acme/garbage` | 200 with a body that is not JSON |
///
/// The workflow `ci.yml` exists in `acme/green` and `acme/red` only.
async fn github() -> StandIn {
    StandIn::start(|seen| {
        let (path, query) = (
            seen.path.as_str(),
            seen.query.as_deref().unwrap_or_default(),
        );
        let json = Answer::json;
        let runs = |list: Value| json(200, json!({"total_count": 1, "workflow_runs": list}));
        let wanted = |branch: &str| query == format!("branch={branch}&status=completed&per_page=1");
        match path {
            "/repos/acme/green" | "/repos/acme/empty" => json(
                200,
                json!({"full_name": &path[7..], "default_branch": "main"}),
            ),
            "/repos/acme/red" => json(
                200,
                json!({"full_name": "acme/red", "default_branch": "trunk"}),
            ),
            "/repos/acme/green/actions/runs"
            | "/repos/acme/green/actions/workflows/ci.yml/runs"
                if wanted("main") =>
            {
                runs(json!([run(4201, "success", 2)]))
            }
            "/repos/acme/red/actions/runs" | "/repos/acme/red/actions/workflows/ci.yml/runs"
                if wanted("trunk") =>
            {
                runs(json!([run(4302, "failure", 30 * 24)]))
            }
            "/repos/acme/empty/actions/runs" if wanted("main") => runs(json!([])),
            "/repos/acme/broken" => json(
                500,
                json!({"message": format!(
                    "database on fire (you sent {})",
                    seen.header("authorization").unwrap_or("nothing")
                )}),
            ),
            "/repos/acme/garbage" => Answer {
                status: 200,
                content_type: "text/html",
                body: "<html>maintenance</html>".to_owned(),
            },
            _ => json(404, json!({"message": "Not Found"})),
        }
    })
    .await
}

/// Creates a service Component for each `(name, repository)`; `None`
/// leaves the `github.com/project-slug` annotation out.
async fn components(server: &TestServer, token: &str, list: &[(&str, Option<&str>)]) {
    for (name, slug) in list {
        let mut metadata = json!({"name": name});
        if let Some(slug) = slug {
            metadata["annotations"] = json!({"github.com/project-slug": slug});
        }
        let r = server
            .http
            .put(server.url(&format!("/api/v1/entities/component/default/{name}")))
            .bearer_auth(token)
            .json(&json!({
                "apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": metadata,
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}: {}", r.text().await.unwrap());
    }
}

/// Installs the ci-status component as `id` with `sidecar` and waits until
/// it is ready.
async fn install(server: &TestServer, id: &str, sidecar: &str, token: &str) {
    server.write_sidecar(id, sidecar);
    server.install(&portolan_e2e::component("ci-status"), id);
    let (_, body) = server
        .wait_plugin(id, token, Duration::from_secs(60), |_, b| {
            b["status"] == "ready" || b["status"] == "failed"
        })
        .await
        .unwrap_or_else(|| panic!("{id} was never listed"));
    assert_eq!(body["status"], "ready", "{id}: {body}");
}

/// Defines scorecard `id` with one rule `ci` at the level `Green` (above
/// the floor `Unknown`), calling `check` with `parameters`, and waits for
/// its first evaluation; returns its results.
async fn scorecard(
    server: &TestServer,
    token: &str,
    id: &str,
    check: &str,
    parameters: Value,
) -> Value {
    let r = server
        .http
        .put(server.url(&format!("/api/v1/scorecards/{id}")))
        .bearer_auth(token)
        .json(&json!({
            "title": "CI", "filter": {"kinds": ["Component"]}, "levels": ["Unknown", "Green"],
            "rules": [{"id": "ci", "title": "CI", "level": "Green", "check": check,
                       "parameters": parameters}]
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    server
        .wait_for(
            &format!("/api/v1/scorecards/{id}/results"),
            token,
            WAIT,
            |b| b["lastEvaluation"]["status"] == "succeeded",
        )
        .await
}

/// Queues an evaluation of scorecard `id` now and waits for it.
async fn evaluate(server: &TestServer, token: &str, id: &str) -> Value {
    let (status, body) = server
        .post(&format!("/api/v1/scorecards/{id}/evaluate"), token, None)
        .await;
    assert_eq!(status, 202, "{body}");
    let eval = body["id"].as_str().unwrap().to_owned();
    server
        .wait_for(
            &format!("/api/v1/scorecards/{id}/evaluations/{eval}"),
            token,
            WAIT,
            |b| b["status"] == "succeeded" || b["status"] == "failed",
        )
        .await
}

/// The rule `ci`'s result for Component `name` on scorecard `id`, and the
/// entity's level.
async fn result(server: &TestServer, token: &str, id: &str, name: &str) -> (Value, Value) {
    let path = format!("/api/v1/entities/component/default/{name}/scorecards");
    let (status, body) = server.get(&path, token).await;
    assert_eq!(status, 200, "{body}");
    let standing = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["scorecard"]["id"] == id)
        .unwrap_or_else(|| panic!("{name} is not on {id}: {body}"))
        .clone();
    let rule = standing["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "ci")
        .unwrap()
        .clone();
    (rule, standing["level"].clone())
}

fn message(rule: &Value) -> &str {
    rule["message"].as_str().unwrap_or_default()
}

/// Every API answer about scorecard `id` and its entities, as text.
async fn answers(server: &TestServer, token: &str, id: &str, names: &[&str]) -> String {
    let mut all = String::new();
    for path in [
        format!("/api/v1/scorecards/{id}/results"),
        format!("/api/v1/scorecards/{id}/entities"),
        "/api/v1/plugins/ci-status".to_owned(),
    ] {
        all.push_str(&server.get(&path, token).await.1.to_string());
    }
    for name in names {
        let path = format!("/api/v1/entities/component/default/{name}/scorecards");
        all.push_str(&server.get(&path, token).await.1.to_string());
    }
    all
}

const ENTITIES: [(&str, Option<&str>); 8] = [
    ("green-svc", Some("acme/green")),
    ("green-web", Some("Acme/Green")),
    ("red-svc", Some("acme/red")),
    ("empty-svc", Some("acme/empty")),
    ("gone-svc", Some("acme/gone")),
    ("broken-svc", Some("acme/broken")),
    ("garbage-svc", Some("acme/garbage")),
    ("plain-svc", None),
];

async fn latest_ci_passed_against_a_github_stand_in(database_url: Option<String>) {
    let sqlite = database_url.is_none();
    let server = TestServer::start(Options {
        database_url,
        secrets: [("GITHUB_TOKEN".to_owned(), GITHUB_TOKEN.to_owned())].into(),
        ..Options::default()
    })
    .await;
    let admin = server.token(Role::Admin).await;
    let api = github().await;
    components(&server, &admin, &ENTITIES).await;
    install(
        &server,
        "ci-status",
        &format!(
            "secrets = [\"GITHUB_TOKEN\"]\n[http]\nallow = [\"{}\"]\n[settings]\napi_url = \"{}\"\ntoken_secret = \"GITHUB_TOKEN\"\ntimeout_ms = 5000\n",
            api.host(),
            api.url()
        ),
        &admin,
    )
    .await;
    let (status, checks) = server.get("/api/v1/checks", &admin).await;
    assert_eq!(status, 200, "{checks}");
    for check in ["ci-status/latest-ci-passed", "ci-status/ci-run-recent"] {
        assert!(checks.to_string().contains(check), "{check}: {checks}");
    }

    // Parameters outside the schema are refused, naming the field.
    let r = server
        .http
        .put(server.url("/api/v1/scorecards/typo"))
        .bearer_auth(&admin)
        .json(
            &json!({"title": "T", "rules": [{"id": "ci", "title": "CI", "level": "Bronze",
            "check": "ci-status/latest-ci-passed", "parameters": {"workflows": "ci.yml"}}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(body.to_string().contains("/rules/0/parameters"), "{body}");

    let results = scorecard(
        &server,
        &admin,
        "ci",
        "ci-status/latest-ci-passed",
        json!({}),
    )
    .await;
    let counts = &results["rules"][0]["counts"];
    assert_eq!(
        [
            &counts["pass"],
            &counts["fail"],
            &counts["error"],
            &counts["skip"]
        ],
        [&json!(2), &json!(2), &json!(3), &json!(1)],
        "{results}"
    );

    // An evaluation asks about each repository once, however many entities
    // name it, and only about what it needs: no runs of a repository whose
    // lookup failed.
    api.forget();
    let done = evaluate(&server, &admin, "ci").await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let runs = |repo: &str, branch: &str| {
        format!("GET /repos/acme/{repo}/actions/runs?branch={branch}&status=completed&per_page=1")
    };
    let mut expected = vec![
        "GET /repos/acme/broken".to_owned(),
        "GET /repos/acme/empty".to_owned(),
        runs("empty", "main"),
        "GET /repos/acme/garbage".to_owned(),
        "GET /repos/acme/gone".to_owned(),
        "GET /repos/acme/green".to_owned(),
        runs("green", "main"),
        "GET /repos/acme/red".to_owned(),
        runs("red", "trunk"),
    ];
    expected.sort();
    assert_eq!(sorted_lines(&api), expected);
    for seen in api.seen() {
        assert_eq!(
            seen.headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {GITHUB_TOKEN}").as_str()),
            "{}",
            seen.line()
        );
        assert_eq!(
            seen.headers.get("accept").map(String::as_str),
            Some("application/vnd.github+json")
        );
        assert_eq!(
            seen.headers.get("x-github-api-version").map(String::as_str),
            Some("2022-11-28")
        );
    }

    // A passing run: the entity reaches the level; the message and value
    // name the run.
    // (Each entity's message spells the repository as its annotation does.)
    for (name, slug) in [("green-svc", "acme/green"), ("green-web", "Acme/Green")] {
        let (rule, level) = result(&server, &admin, "ci", name).await;
        assert_eq!(rule["status"], "pass", "{rule}");
        assert_eq!(level, "Green", "{name}");
        assert!(
            message(&rule).starts_with(&format!(
                "the latest completed CI run on main of {slug}, run #1 \"CI\" (4201), \
                 succeeded 2 hours ago ("
            )),
            "{rule}"
        );
        assert_eq!(rule["value"]["runId"], 4201, "{rule}");
        assert_eq!(rule["value"]["conclusion"], "success");
        assert_eq!(rule["value"]["branch"], "main");
        let age = rule["value"]["ageSeconds"].as_i64().unwrap();
        assert!((7_100..7_300).contains(&age), "{rule}");
    }

    // A failed run: fail, naming the conclusion, when and the run's page.
    let (rule, level) = result(&server, &admin, "ci", "red-svc").await;
    assert_eq!(
        (rule["status"].as_str(), level.as_str()),
        (Some("fail"), Some("Unknown"))
    );
    let text = message(&rule);
    assert!(
        text.starts_with(
            "the latest completed CI run on trunk of acme/red, run #2 \"CI\" (4302), concluded \
             failure 30 days ago ("
        ) && text.ends_with("): https://github.test/acme/runs/4302"),
        "{rule}"
    );
    assert_eq!(rule["value"]["conclusion"], "failure");

    let (rule, _) = result(&server, &admin, "ci", "empty-svc").await;
    assert_eq!(rule["status"], "fail");
    assert_eq!(
        message(&rule),
        "no completed CI runs on branch main of acme/empty"
    );

    // Lookups that fail are errors for their own entity only.
    let (rule, level) = result(&server, &admin, "ci", "gone-svc").await;
    assert_eq!(
        (rule["status"].as_str(), level.as_str()),
        (Some("error"), Some("Unknown"))
    );
    assert!(
        message(&rule).starts_with("the API answered 404 to repository acme/gone: Not Found"),
        "{rule}"
    );
    let (rule, _) = result(&server, &admin, "ci", "broken-svc").await;
    assert_eq!(rule["status"], "error");
    assert_eq!(
        message(&rule),
        "the API answered 500 to repository acme/broken: database on fire (you sent Bearer [secret])"
    );
    let (rule, _) = result(&server, &admin, "ci", "garbage-svc").await;
    assert_eq!(rule["status"], "error");
    assert!(
        message(&rule).starts_with("the API's answer about repository acme/garbage is not JSON")
            && message(&rule).ends_with(": <html>maintenance</html>"),
        "{rule}"
    );

    // No annotation: the rule does not apply (a skip lets the entity
    // through), unless the rule requires it.
    let (rule, level) = result(&server, &admin, "ci", "plain-svc").await;
    assert_eq!(
        (rule["status"].as_str(), level.as_str()),
        (Some("skip"), Some("Green"))
    );
    assert!(message(&rule).contains("github.com/project-slug"), "{rule}");
    let strict = scorecard(
        &server,
        &admin,
        "ci-strict",
        "ci-status/latest-ci-passed",
        json!({"requireAnnotation": true}),
    )
    .await;
    assert_eq!(strict["rules"][0]["counts"]["skip"], 0, "{strict}");
    let (rule, level) = result(&server, &admin, "ci-strict", "plain-svc").await;
    assert_eq!(
        (rule["status"].as_str(), level.as_str()),
        (Some("fail"), Some("Unknown"))
    );

    // ci-run-recent with a workflow: the age counts, not the conclusion.
    api.forget();
    let recent = scorecard(
        &server,
        &admin,
        "ci-recent",
        "ci-status/ci-run-recent",
        json!({"maxAgeDays": 7, "workflow": "ci.yml"}),
    )
    .await;
    assert_eq!(recent["rules"][0]["counts"]["pass"], 2, "{recent}");
    let (rule, _) = result(&server, &admin, "ci-recent", "red-svc").await;
    assert_eq!(rule["status"], "fail", "{rule}");
    assert!(message(&rule).contains("more than 7 days ago"), "{rule}");
    assert_eq!(rule["value"]["workflow"], "ci.yml");
    let (rule, _) = result(&server, &admin, "ci-recent", "empty-svc").await;
    assert_eq!(rule["status"], "error", "{rule}");
    assert!(
        message(&rule).starts_with(
            "the API answered 404 to the runs of workflow ci.yml in acme/empty: Not Found"
        ),
        "{rule}"
    );
    assert!(sorted_lines(&api).contains(
        &"GET /repos/acme/green/actions/workflows/ci.yml/runs?branch=main&status=completed&per_page=1"
            .to_owned()
    ));

    // The token shows in no answer and, on SQLite, in no stored row.
    let names: Vec<&str> = ENTITIES.iter().map(|(name, _)| *name).collect();
    for id in ["ci", "ci-strict", "ci-recent"] {
        let text = answers(&server, &admin, id, &names).await;
        assert!(text.contains("[secret]") || id != "ci", "{text}");
        assert!(!text.contains(GITHUB_TOKEN), "{id}: {text}");
    }
    if sqlite {
        let db = format!(
            "sqlite://{}",
            server.state.config.data_dir.join("portolan.db").display()
        );
        let rows = portolan_e2e::dump_sqlite(&db).await;
        assert!(
            rows.contains("database on fire"),
            "the dump holds the results"
        );
        assert!(!rows.contains(GITHUB_TOKEN), "a stored row holds the token");
    }
    server.stop().await;
}

#[tokio::test]
async fn latest_ci_passed_against_a_github_stand_in_sqlite() {
    latest_ci_passed_against_a_github_stand_in(None).await;
}

#[tokio::test]
async fn latest_ci_passed_against_a_github_stand_in_postgres() {
    let db = TestDatabase::postgres().await;
    latest_ci_passed_against_a_github_stand_in(Some(db.url.clone())).await;
    db.drop_db().await;
}

/// The shipped sidecar loads as it is; with it (`api.github.com` only)
/// an API elsewhere is denied and nothing reaches it; an allowed API that
/// does not answer gives errors too. Either way every annotated entity gets
/// `error`, one request at most is tried, and the evaluation succeeds.
#[tokio::test]
async fn a_host_off_the_allowlist_or_unreachable_gives_errors_and_nothing_is_sent() {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token(Role::Admin).await;
    let api = github().await;
    components(&server, &admin, &ENTITIES[..4]).await;
    components(&server, &admin, &ENTITIES[7..]).await;

    let shipped =
        std::fs::read_to_string(portolan_e2e::root().join("plugins/ci-status/ci-status.toml"))
            .unwrap();
    let pointed = shipped.replace(
        "# api_url = \"https://api.github.com\"",
        &format!("api_url = \"{}\"", api.url()),
    );
    assert_ne!(pointed, shipped, "the shipped sidecar has an api_url line");
    install(&server, "ci-status", &pointed, &admin).await;
    let results = scorecard(
        &server,
        &admin,
        "ci",
        "ci-status/latest-ci-passed",
        json!({}),
    )
    .await;
    assert_eq!(results["rules"][0]["counts"]["error"], 4, "{results}");
    assert_eq!(results["rules"][0]["counts"]["skip"], 1, "{results}");
    let (rule, _) = result(&server, &admin, "ci", "green-svc").await;
    assert!(message(&rule).contains("denied"), "{rule}");
    assert!(message(&rule).contains("allow"), "{rule}");
    assert!(api.seen().is_empty(), "{:?}", sorted_lines(&api));

    // Allowed, but nobody listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    install(
        &server,
        "ci-down",
        &format!(
            "[http]\nallow = [\"127.0.0.1:{closed}\"]\n[settings]\napi_url = \"http://127.0.0.1:{closed}\"\n"
        ),
        &admin,
    )
    .await;
    let results = scorecard(
        &server,
        &admin,
        "down",
        "ci-down/latest-ci-passed",
        json!({}),
    )
    .await;
    assert_eq!(results["rules"][0]["counts"]["error"], 4, "{results}");
    let mut texts = Vec::new();
    for (name, _) in &ENTITIES[..4] {
        let (rule, _) = result(&server, &admin, "down", name).await;
        assert_eq!(rule["status"], "error", "{rule}");
        texts.push(message(&rule).to_owned());
    }
    // Every message names the refused connection; of the three
    // repositories (two entities share one) only the first is tried.
    assert!(
        texts.iter().all(|t| t.contains("connection-refused")),
        "{texts:#?}"
    );
    let tried: BTreeSet<&str> = texts
        .iter()
        .filter(|t| !t.contains("was not looked up: an earlier request of this evaluation failed"))
        .map(|t| t.split("/repos/").nth(1).unwrap_or(t.as_str()))
        .collect();
    assert_eq!(tried.len(), 1, "{texts:#?}");
    server.stop().await;
}
