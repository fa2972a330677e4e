//! The action plugins that ship with Portolan (`plugins/http-webhook`,
//! `plugins/trigger-workflow`, `plugins/restart-deployment`) run through the
//! real registry against local stand-ins of the APIs they call: each test
//! checks the exact requests the stand-in received and what the run reports.
//! Also the action fixtures the host's tests use (`test-action`,
//! `guarded-action`): they load and describe themselves as those tests
//! expect.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use portolan_e2e::stand_in::{Answer, Seen, StandIn};
use portolan_e2e::{Options, TestServer};
use portolan_runtime::model::{ActionInvocation, ActionOutcome, Entity, Link};
use portolan_runtime::{CallError, CallReport, LogLevel};
use portolan_store::Role;
use serde_json::{json, Value};

/// Installs `component` as `id` with `sidecar` and waits until it is ready;
/// returns its `GET /api/v1/plugins/{id}` body.
async fn install(server: &TestServer, component: &str, id: &str, sidecar: &str) -> Value {
    let token = server.token(Role::Viewer).await;
    server.write_sidecar(id, sidecar);
    server.install(&portolan_e2e::component(component), id);
    let (_, body) = server
        .wait_plugin(id, &token, Duration::from_secs(20), |_, b| {
            b["status"] == "ready" || b["status"] == "failed"
        })
        .await
        .unwrap_or_else(|| panic!("{id} was never listed"));
    assert_eq!(body["status"], "ready", "{id}: {body}");
    body
}

async fn run(
    server: &TestServer,
    id: &str,
    input: Value,
    entity: Option<Entity>,
) -> CallReport<ActionOutcome> {
    let plugin = server.state.registry.plugin(id).unwrap();
    let invocation = ActionInvocation {
        run_id: "run-1".into(),
        actor: "alice".into(),
        attempt: 1,
        input,
        entity,
    };
    tokio::task::spawn_blocking(move || plugin.run_action(&invocation))
        .await
        .unwrap()
}

fn server_with_secret(name: &str, value: &str) -> Options {
    Options {
        secrets: HashMap::from([(name.to_owned(), value.to_owned())]),
        ..Default::default()
    }
}

/// A service Component named `name` with these annotations.
fn service(name: &str, annotations: Value) -> Entity {
    serde_json::from_value(json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": name,
            "title": "Payments",
            "description": "Takes money.",
            "annotations": annotations
        },
        "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}
    }))
    .unwrap()
}

fn messages<T>(report: &CallReport<T>) -> Vec<&str> {
    report.logs.iter().map(|l| l.message.as_str()).collect()
}

/// The plugin error a run ended with: code, field, message.
fn plugin_error<T: Debug>(report: &CallReport<T>) -> (&str, Option<&str>, &str) {
    match &report.result {
        Err(CallError::Plugin {
            code,
            field,
            message,
        }) => (code, field.as_deref(), message),
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

/// The secret's value is nowhere in what the run reports: not in its log,
/// its output or its error.
fn assert_secret_kept<T: Debug>(report: &CallReport<T>, secret: &str) {
    for line in &report.logs {
        assert!(
            !line.message.contains(secret),
            "the log shows the secret: {}",
            line.message
        );
    }
    let result = format!("{:?}", report.result);
    assert!(
        !result.contains(secret),
        "the result shows the secret: {result}"
    );
}

const HOOK_TOKEN: &str = "hook-t0ken-9f8e7d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_posts_the_run_and_its_entity_and_reports_the_answer() {
    let server = TestServer::start(server_with_secret("HOOK_TOKEN", HOOK_TOKEN)).await;
    // The receiver echoes the auth header it got: the plugin must blank the
    // secret out of the body it reports.
    let hook = StandIn::start(|seen| {
        let echoed = seen
            .header("authorization")
            .or(seen.header("x-api-key"))
            .unwrap_or_default();
        Answer::json(200, json!({"accepted": true, "echo": echoed}))
    })
    .await;
    let sidecar = |settings: &str| {
        format!(
            "secrets = [\"HOOK_TOKEN\"]\n[http]\nallow = [\"{}\"]\n[settings]\nurl = \"{}/hooks/deploy?source=portolan\"\n{settings}",
            hook.host(),
            hook.url()
        )
    };
    let details = install(
        &server,
        "http-webhook",
        "webhook",
        &sidecar("auth_secret = \"HOOK_TOKEN\"\n"),
    )
    .await;
    assert_eq!(details["describe"]["title"], "Call a webhook");
    assert_eq!(details["describe"]["entityKinds"], json!(["Component"]));
    assert_eq!(
        details["describe"]["inputSchema"]["required"],
        json!(["reason"])
    );

    let entity = service(
        "payments",
        json!({"github.com/project-slug": "acme/payments"}),
    );
    let input = json!({"reason": "release 1.2", "data": {"ticket": "OPS-7"}});
    let report = run(&server, "webhook", input.clone(), Some(entity)).await;
    let outcome = report.result.as_ref().expect("the webhook action runs");
    assert_eq!(
        outcome.output,
        json!({"status": 200, "body": {"accepted": true, "echo": "Bearer [secret]"}})
    );
    assert!(outcome.links.is_empty());
    let target = format!("{}/hooks/deploy", hook.url());
    assert_eq!(
        messages(&report),
        [
            format!("POST {target} for service payments").as_str(),
            "webhook answered 200"
        ]
    );
    assert_secret_kept(&report, HOOK_TOKEN);

    let seen = hook.seen();
    assert_eq!(hook.lines(), ["POST /hooks/deploy?source=portolan"]);
    let request = &seen[0];
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {HOOK_TOKEN}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-portolan-run-id"), Some("run-1"));
    assert_eq!(
        request.body,
        json!({
            "event": "portolan.action",
            "action": "http-webhook",
            "run_id": "run-1",
            "actor": "alice",
            "attempt": 1,
            "service": "payments",
            "reason": "release 1.2",
            "input": input,
            "entity": "Component:default/payments",
            "entity_details": {
                "ref": "Component:default/payments",
                "kind": "Component",
                "namespace": "default",
                "name": "payments",
                "title": "Payments",
                "description": "Takes money.",
                "owner": "team-a",
                "type": "service",
                "annotations": {"github.com/project-slug": "acme/payments"}
            }
        })
    );

    // The older setting `token_secret` still names the secret; another
    // header and no scheme send the value alone. Started outside any entity,
    // the input must name the service.
    install(
        &server,
        "http-webhook",
        "webhook-key",
        &sidecar(
            "token_secret = \"HOOK_TOKEN\"\nauth_header = \"X-Api-Key\"\nauth_scheme = \"\"\n",
        ),
    )
    .await;
    let report = run(&server, "webhook-key", json!({"reason": "test"}), None).await;
    assert_eq!(
        plugin_error(&report),
        (
            "invalid-input",
            Some("/service"),
            "is required when the action is not started on an entity"
        )
    );
    let report = run(
        &server,
        "webhook-key",
        json!({"service": "billing", "reason": "test"}),
        None,
    )
    .await;
    assert_eq!(
        report.result.as_ref().unwrap().output,
        json!({"status": 200, "body": {"accepted": true, "echo": "[secret]"}})
    );
    let request = &hook.seen()[1];
    assert_eq!(request.header("x-api-key"), Some(HOOK_TOKEN));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        (
            &request.body["service"],
            &request.body["entity"],
            request.body.get("entity_details")
        ),
        (&json!("billing"), &Value::Null, None)
    );
    assert_eq!(hook.seen().len(), 2, "{:?}", hook.lines());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_fails_on_a_non_2xx_answer_and_reaches_only_allowed_hosts() {
    let server = TestServer::start(server_with_secret("HOOK_TOKEN", HOOK_TOKEN)).await;
    let hook = StandIn::start(|seen| {
        let echoed = seen.header("authorization").unwrap_or_default();
        Answer::text(503, &format!("upstream down (you sent {echoed})"))
    })
    .await;
    let sidecar = |allow: &str| {
        format!(
            "secrets = [\"HOOK_TOKEN\"]\n[http]\nallow = [\"{allow}\"]\n[settings]\nurl = \"{}/hook\"\nauth_secret = \"HOOK_TOKEN\"\n",
            hook.url()
        )
    };
    install(&server, "http-webhook", "webhook", &sidecar(&hook.host())).await;
    let entity = service("payments", json!({}));
    let report = run(
        &server,
        "webhook",
        json!({"reason": "test"}),
        Some(entity.clone()),
    )
    .await;
    assert_eq!(
        plugin_error(&report),
        (
            "failed",
            None,
            "webhook answered 503: upstream down (you sent Bearer [secret])"
        )
    );
    assert_secret_kept(&report, HOOK_TOKEN);
    assert_eq!(hook.lines(), ["POST /hook"]);

    // A plugin whose allowlist does not name the webhook's host cannot
    // reach it: the call fails and nothing arrives.
    install(
        &server,
        "http-webhook",
        "webhook-elsewhere",
        &sidecar("hooks.example.com"),
    )
    .await;
    let report = run(
        &server,
        "webhook-elsewhere",
        json!({"reason": "test"}),
        Some(entity),
    )
    .await;
    let (code, field, message) = plugin_error(&report);
    assert_eq!((code, field), ("failed", None));
    // The error says the host refused it (the SDK waits for the refusal
    // even though the request had a body to write).
    assert!(
        message.starts_with(&format!(
            "request to {}/hook denied by the host",
            hook.url()
        )),
        "{message}"
    );
    assert_eq!(
        report.logs.last().map(|l| (l.level, l.message.as_str())),
        Some((
            LogLevel::Warn,
            format!(
                "outbound HTTP to {} refused: not on this plugin's allowlist",
                hook.host()
            )
            .as_str()
        )),
        "{:?}",
        report.logs
    );
    assert_secret_kept(&report, HOOK_TOKEN);
    assert_eq!(hook.seen().len(), 1, "{:?}", hook.lines());
    server.stop().await;
}

const GITHUB_TOKEN: &str = "ghp_t0kenForTests1234";

/// A GitHub Actions stand-in for `acme/payments`: the dispatch answers 204;
/// the list of runs first shows only older runs, then also the dispatched
/// run 4242 (and a run of another workflow created at the same time); run
/// 4242 is `in_progress` for two looks, then completes with `conclusion`.
async fn github(workflow_path: &'static str, conclusion: &'static str) -> StandIn {
    let lists = AtomicUsize::new(0);
    let looks = AtomicUsize::new(0);
    StandIn::start(move |seen| {
        let html = "https://github.example/acme/payments/actions/runs/4242";
        let now = chrono::Utc::now();
        let at = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let run = |id: u64, path: &str, created: String, status: &str, conclusion: Value| {
            json!({
                "id": id, "run_number": id - 4225, "event": "workflow_dispatch",
                "head_branch": seen.query.as_deref().unwrap_or_default().split("branch=").nth(1)
                    .and_then(|rest| rest.split('&').next()).unwrap_or_default().replace("%2F", "/"),
                "path": path, "status": status, "conclusion": conclusion,
                "created_at": created,
                "html_url": format!("https://github.example/acme/payments/actions/runs/{id}")
            })
        };
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", path) if path.ends_with("/dispatches") => Answer::empty(204),
            ("GET", "/repos/acme/payments/actions/runs") => {
                let mut runs = vec![run(
                    4230,
                    workflow_path,
                    at(now - chrono::Duration::hours(1)),
                    "completed",
                    json!("success"),
                )];
                if lists.fetch_add(1, Ordering::SeqCst) > 0 {
                    runs.insert(0, run(4243, ".github/workflows/lint.yml", at(now), "queued", Value::Null));
                    runs.insert(1, run(4242, workflow_path, at(now), "queued", Value::Null));
                }
                Answer::json(200, json!({"total_count": runs.len(), "workflow_runs": runs}))
            }
            ("GET", "/repos/acme/payments/actions/runs/4242") => {
                let done = looks.fetch_add(1, Ordering::SeqCst) >= 2;
                Answer::json(
                    200,
                    json!({
                        "id": 4242, "run_number": 17, "status": if done { "completed" } else { "in_progress" },
                        "conclusion": if done { json!(conclusion) } else { Value::Null },
                        "html_url": html
                    }),
                )
            }
            _ => Answer::json(404, json!({"message": "Not Found"})),
        }
    })
    .await
}

fn github_sidecar(api: &StandIn, extra: &str) -> String {
    format!(
        "secrets = [\"GITHUB_TOKEN\"]\n[limits]\ntimeout_ms = 10000\n[http]\nallow = [\"{}\"]\n[settings]\napi_url = \"{}\"\ntoken_secret = \"GITHUB_TOKEN\"\nworkflow = \"ci.yml\"\npoll_ms = 50\nmax_wait_ms = 5000\n{extra}",
        api.host(),
        api.url()
    )
}

/// Every request to the GitHub stand-in carries the API's headers and the
/// token.
fn assert_github_headers(api: &StandIn) {
    for request in api.seen() {
        let line = request.line();
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {GITHUB_TOKEN}").as_str()),
            "{line}"
        );
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.github+json"),
            "{line}"
        );
        assert_eq!(
            request.header("x-github-api-version"),
            Some("2022-11-28"),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_workflow_dispatches_finds_its_run_and_waits_for_success() {
    let server = TestServer::start(server_with_secret("GITHUB_TOKEN", GITHUB_TOKEN)).await;
    let api = github(".github/workflows/deploy.yml", "success").await;
    let details = install(&server, "trigger-workflow", "ci", &github_sidecar(&api, "")).await;
    assert_eq!(details["describe"]["title"], "Trigger CI workflow");
    assert_eq!(details["describe"]["entityKinds"], json!(["Component"]));
    assert_eq!(details["describe"]["approval"], Value::Null);

    let entity = service(
        "payments",
        json!({"github.com/project-slug": "acme/payments"}),
    );
    let input = json!({
        "workflow": "deploy.yml",
        "ref": "release/1.2",
        "inputs": {"environment": "staging", "version": "1.2.3"}
    });
    let report = run(&server, "ci", input, Some(entity)).await;
    let outcome = report.result.as_ref().expect("the workflow runs");
    let html = "https://github.example/acme/payments/actions/runs/4242";
    assert_eq!(
        outcome.output,
        json!({"runId": 4242, "conclusion": "success", "url": html})
    );
    assert_eq!(
        outcome.links,
        [Link {
            url: html.into(),
            title: Some("Workflow run #17".into()),
            icon: None,
            kind: None
        }]
    );
    let logged: Vec<(LogLevel, &str)> = report
        .logs
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    let found = format!("found workflow run 4242: {html}");
    assert_eq!(
        logged,
        [
            (
                LogLevel::Info,
                "dispatching workflow deploy.yml on release/1.2 in acme/payments"
            ),
            (LogLevel::Debug, "no run of deploy.yml on release/1.2 yet"),
            (LogLevel::Info, found.as_str()),
            (LogLevel::Info, "workflow run 4242 queued"),
            (LogLevel::Info, "workflow run 4242 in_progress"),
            (LogLevel::Info, "workflow run 4242 completed: success"),
        ]
    );
    // It waited between looks (one pause after the empty list, one before
    // each of the three looks at the run) rather than asking back to back.
    assert!(
        report.elapsed >= Duration::from_millis(200),
        "{:?}",
        report.elapsed
    );
    assert_secret_kept(&report, GITHUB_TOKEN);

    let list = "GET /repos/acme/payments/actions/runs?event=workflow_dispatch&branch=release%2F1.2&per_page=10";
    let look = "GET /repos/acme/payments/actions/runs/4242";
    assert_eq!(
        api.lines(),
        [
            "POST /repos/acme/payments/actions/workflows/deploy.yml/dispatches",
            list,
            list,
            look,
            look,
            look
        ]
    );
    let seen = api.seen();
    assert_eq!(
        seen[0].body,
        json!({"ref": "release/1.2", "inputs": {"environment": "staging", "version": "1.2.3"}})
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert!(seen[1..].iter().all(|r| r.body.is_null()));
    assert_github_headers(&api);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_workflow_fails_when_the_run_concludes_failure() {
    let server = TestServer::start(server_with_secret("GITHUB_TOKEN", GITHUB_TOKEN)).await;
    let api = github(".github/workflows/ci.yml", "failure").await;
    install(
        &server,
        "trigger-workflow",
        "ci",
        &github_sidecar(&api, "ref = \"main\"\n"),
    )
    .await;
    let entity = service(
        "payments",
        json!({"github.com/project-slug": "acme/payments"}),
    );
    // Workflow and ref come from the settings.
    let report = run(&server, "ci", json!({}), Some(entity)).await;
    assert_eq!(
        plugin_error(&report),
        (
            "failed",
            None,
            "workflow run 4242 concluded failure: https://github.example/acme/payments/actions/runs/4242"
        )
    );
    assert_eq!(
        messages(&report).last(),
        Some(&"workflow run 4242 completed: failure")
    );
    assert_secret_kept(&report, GITHUB_TOKEN);
    let seen = api.seen();
    assert_eq!(
        seen[0].line(),
        "POST /repos/acme/payments/actions/workflows/ci.yml/dispatches"
    );
    assert_eq!(seen[0].body, json!({"ref": "main", "inputs": {}}));
    assert_eq!(
        seen[1].line(),
        "GET /repos/acme/payments/actions/runs?event=workflow_dispatch&branch=main&per_page=10"
    );
    assert_eq!(seen.len(), 6, "{:?}", api.lines());
    assert_github_headers(&api);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_workflow_needs_the_repository_and_names_a_refused_dispatch() {
    let server = TestServer::start(server_with_secret("GITHUB_TOKEN", GITHUB_TOKEN)).await;
    // GitHub's answer to a dispatch with an unknown input; this one also
    // echoes the token.
    let api = StandIn::start(|seen| {
        let echoed = seen.header("authorization").unwrap_or_default();
        Answer::json(
            422,
            json!({
                "message": format!("Unexpected inputs provided: [\"colour\"] ({echoed})"),
                "documentation_url": "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event",
                "status": "422"
            }),
        )
    })
    .await;
    install(&server, "trigger-workflow", "ci", &github_sidecar(&api, "")).await;

    // Without the annotation the repository is unknown: nothing is sent.
    let report = run(
        &server,
        "ci",
        json!({}),
        Some(service("payments", json!({}))),
    )
    .await;
    let (code, field, message) = plugin_error(&report);
    assert_eq!((code, field), ("invalid-input", Some("")));
    assert!(
        message.starts_with(
            "Component:default/payments has no `github.com/project-slug` annotation, so its repository is unknown"
        ),
        "{message}"
    );
    assert!(api.seen().is_empty(), "{:?}", api.lines());

    let entity = service(
        "payments",
        json!({"github.com/project-slug": "acme/payments"}),
    );
    let report = run(
        &server,
        "ci",
        json!({"inputs": {"colour": "blue"}}),
        Some(entity),
    )
    .await;
    assert_eq!(
        plugin_error(&report),
        (
            "failed",
            None,
            "the API answered 422 to the dispatch of ci.yml in acme/payments: Unexpected inputs \
             provided: [\"colour\"] (Bearer [secret]) (check the ref and the workflow's inputs)"
        )
    );
    assert_secret_kept(&report, GITHUB_TOKEN);
    assert_eq!(
        api.lines(),
        ["POST /repos/acme/payments/actions/workflows/ci.yml/dispatches"]
    );
    assert_eq!(
        api.seen()[0].body,
        json!({"ref": "main", "inputs": {"colour": "blue"}})
    );
    server.stop().await;
}

const KUBE_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.kube-test-token";

/// A Deployment `payments-api` of 3 replicas whose restart (generation 6)
/// rolls out over three looks; with `stuck`, it never gets past the first.
fn deployment(namespace: &str, look: usize, stuck: bool) -> Value {
    let (total, updated) = match if stuck { 0 } else { look } {
        0 => (4, 1),
        1 => (4, 2),
        _ => (3, 3),
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "payments-api", "namespace": namespace, "generation": 6},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": 6,
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": 3,
            "availableReplicas": 3
        }
    })
}

/// A Kubernetes API stand-in: the PATCH answers the Deployment as the
/// controller has not seen it yet; each GET shows the rollout further along.
async fn kubernetes(stuck: bool) -> StandIn {
    let looks = AtomicUsize::new(0);
    StandIn::start(move |seen| {
        let Some(rest) = seen.path.strip_prefix("/apis/apps/v1/namespaces/") else {
            return Answer::json(404, json!({"kind": "Status", "code": 404}));
        };
        let namespace = rest.split('/').next().unwrap_or_default();
        match seen.method.as_str() {
            "PATCH" => {
                let mut d = deployment(namespace, 0, stuck);
                d["status"] = json!({"observedGeneration": 5, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3});
                Answer::json(200, d)
            }
            "GET" => Answer::json(
                200,
                deployment(namespace, looks.fetch_add(1, Ordering::SeqCst), stuck),
            ),
            _ => Answer::json(405, json!({"kind": "Status", "code": 405})),
        }
    })
    .await
}

fn kubernetes_sidecar(api: &StandIn, max_wait_ms: u64) -> String {
    format!(
        "secrets = [\"KUBE_TOKEN\"]\n[limits]\ntimeout_ms = 10000\n[http]\nallow = [\"{}\"]\n[settings]\napi_url = \"{}\"\ntoken_secret = \"KUBE_TOKEN\"\nnamespace = \"apps\"\npoll_ms = 50\nmax_wait_ms = {max_wait_ms}\n",
        api.host(),
        api.url()
    )
}

/// The `restartedAt` value a PATCH set, checked to be the patch `kubectl
/// rollout restart` sends.
fn restarted_at(request: &Seen) -> String {
    assert_eq!(request.method, "PATCH");
    assert_eq!(
        request.header("content-type"),
        Some("application/strategic-merge-patch+json")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KUBE_TOKEN}").as_str())
    );
    let at = request.body["spec"]["template"]["metadata"]["annotations"]
        ["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .unwrap_or_else(|| panic!("not a restart patch: {}", request.body))
        .to_owned();
    assert_eq!(
        request.body,
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}})
    );
    let when = chrono::DateTime::parse_from_rfc3339(&at).expect("an RFC 3339 timestamp");
    let off = (chrono::Utc::now() - when.with_timezone(&chrono::Utc)).num_seconds();
    assert!((0..60).contains(&off), "restartedAt {at} is not now");
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_deployment_patches_the_pod_template_and_waits_for_the_rollout() {
    let server = TestServer::start(server_with_secret("KUBE_TOKEN", KUBE_TOKEN)).await;
    let api = kubernetes(false).await;
    let details = install(
        &server,
        "restart-deployment",
        "restart",
        &kubernetes_sidecar(&api, 5000),
    )
    .await;
    let describe = &details["describe"];
    assert_eq!(describe["title"], "Restart deployment");
    assert_eq!(
        (
            &describe["entityKinds"],
            &describe["entityTypes"],
            &describe["requiredRole"],
            &describe["approval"]
        ),
        (
            &json!(["Component"]),
            &json!(["service"]),
            &json!("member"),
            &Value::Null
        )
    );

    let entity = service(
        "payments",
        json!({
            "backstage.io/kubernetes-id": "payments-api",
            "backstage.io/kubernetes-namespace": "shop"
        }),
    );
    let report = run(
        &server,
        "restart",
        json!({"reason": "rotate credentials"}),
        Some(entity),
    )
    .await;
    let outcome = report.result.as_ref().expect("the restart runs");
    let path = "/apis/apps/v1/namespaces/shop/deployments/payments-api";
    assert_eq!(
        api.lines(),
        [
            format!("PATCH {path}"),
            format!("GET {path}"),
            format!("GET {path}"),
            format!("GET {path}")
        ]
    );
    let seen = api.seen();
    let at = restarted_at(&seen[0]);
    for look in &seen[1..] {
        assert_eq!(
            look.header("authorization"),
            Some(format!("Bearer {KUBE_TOKEN}").as_str())
        );
        assert!(look.body.is_null());
    }
    assert_eq!(
        outcome.output,
        json!({"deployment": "payments-api", "namespace": "shop", "restartedAt": at, "replicas": 3})
    );
    let requested = format!("restart requested at {at}");
    assert_eq!(
        messages(&report),
        [
            "restarting deployment payments-api in namespace shop for alice: rotate credentials",
            requested.as_str(),
            "1/3 replicas updated, 3 available, 3 old pending termination",
            "2/3 replicas updated, 3 available, 2 old pending termination",
            "3/3 replicas updated, 3 available",
            "deployment payments-api rolled out: 3/3 replicas updated and available",
        ]
    );
    assert_secret_kept(&report, KUBE_TOKEN);

    // Without `wait` it only patches; without a namespace annotation the
    // namespace comes from the settings.
    let entity = service(
        "payments",
        json!({"backstage.io/kubernetes-id": "payments-api"}),
    );
    let report = run(
        &server,
        "restart",
        json!({"reason": "stuck connections", "wait": false}),
        Some(entity),
    )
    .await;
    let output = &report.result.as_ref().expect("the restart runs").output;
    let seen = api.seen();
    assert_eq!(seen.len(), 5, "{:?}", api.lines());
    assert_eq!(
        seen[4].line(),
        "PATCH /apis/apps/v1/namespaces/apps/deployments/payments-api"
    );
    let at = restarted_at(&seen[4]);
    assert_eq!(
        *output,
        json!({"deployment": "payments-api", "namespace": "apps", "restartedAt": at, "replicas": 3})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_deployment_fails_on_refusal_missing_annotation_and_a_slow_rollout() {
    let server = TestServer::start(server_with_secret("KUBE_TOKEN", KUBE_TOKEN)).await;
    let forbidden = StandIn::start(|_| {
        Answer::json(
            403,
            json!({
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": "deployments.apps \"payments-api\" is forbidden: User \"system:serviceaccount:portal:restarter\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\"",
                "reason": "Forbidden",
                "code": 403
            }),
        )
    })
    .await;
    install(
        &server,
        "restart-deployment",
        "restart",
        &kubernetes_sidecar(&forbidden, 5000),
    )
    .await;
    let annotated = service(
        "payments",
        json!({
            "backstage.io/kubernetes-id": "payments-api",
            "backstage.io/kubernetes-namespace": "shop"
        }),
    );
    let report = run(
        &server,
        "restart",
        json!({"reason": "test"}),
        Some(annotated.clone()),
    )
    .await;
    assert_eq!(
        plugin_error(&report),
        (
            "failed",
            None,
            "Kubernetes answered 403 to the restart of deployment payments-api in namespace shop: \
             deployments.apps \"payments-api\" is forbidden: User \
             \"system:serviceaccount:portal:restarter\" cannot patch resource \"deployments\" in \
             API group \"apps\" in the namespace \"shop\" (the token's service account needs get \
             and patch on deployments.apps)"
        )
    );
    assert_secret_kept(&report, KUBE_TOKEN);
    assert_eq!(
        forbidden.lines(),
        ["PATCH /apis/apps/v1/namespaces/shop/deployments/payments-api"]
    );

    // An entity without the annotation names no Deployment: nothing is sent.
    let report = run(
        &server,
        "restart",
        json!({"reason": "test"}),
        Some(service("payments", json!({}))),
    )
    .await;
    let (code, field, message) = plugin_error(&report);
    assert_eq!((code, field), ("invalid-input", Some("")));
    assert!(
        message.starts_with(
            "Component:default/payments has no `backstage.io/kubernetes-id` annotation"
        ),
        "{message}"
    );
    assert_eq!(forbidden.seen().len(), 1);

    // A rollout that does not finish within max_wait_ms fails the run after
    // a bounded number of looks; the restart itself happened.
    let slow = kubernetes(true).await;
    install(
        &server,
        "restart-deployment",
        "restart-slow",
        &kubernetes_sidecar(&slow, 300),
    )
    .await;
    let report = run(
        &server,
        "restart-slow",
        json!({"reason": "test"}),
        Some(annotated),
    )
    .await;
    let (code, _, message) = plugin_error(&report);
    assert_eq!(code, "failed");
    assert!(
        message.starts_with(
            "deployment payments-api in namespace shop was restarted but has not rolled out after "
        ) && message.ends_with(
            " s (max_wait_ms): 1/3 replicas updated, 3 available, 3 old pending termination"
        ),
        "{message}"
    );
    assert!(
        report.elapsed >= Duration::from_millis(300) && report.elapsed < Duration::from_secs(3),
        "{:?}",
        report.elapsed
    );
    let looks = slow.seen().len() - 1;
    assert!(
        (2..=8).contains(&looks),
        "about 300 ms / 50 ms looks: {:?}",
        slow.lines()
    );
    assert_secret_kept(&report, KUBE_TOKEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_fixtures_load_describe_themselves_and_run() {
    let server = TestServer::start(server_with_secret("LEAKY", "leaky-s3cr3t-value")).await;
    let test_action = install(
        &server,
        "test-action",
        "test-action",
        "secrets = [\"LEAKY\"]\n[settings]\nsecret_name = \"LEAKY\"\n",
    )
    .await;
    let guarded = install(&server, "guarded-action", "guarded-action", "").await;
    assert_eq!(
        (&test_action["contract"], &guarded["contract"]),
        (&json!("0.4.0"), &json!("0.4.0"))
    );

    let d = &test_action["describe"];
    assert_eq!(d["title"], "Test action");
    assert_eq!(d["entityKinds"], json!(["Component"]));
    assert_eq!(d["entityTypes"], json!(["service"]));
    assert_eq!(d["entityTags"], json!([]));
    assert_eq!(d["requiredRole"], "member");
    assert_eq!(d["approval"], Value::Null);
    assert_eq!(
        d["inputSchema"],
        json!({
            "type": "object",
            "required": ["mode"],
            "properties": {
                "mode": {"type": "string", "enum": ["ok", "fail", "trap", "loop", "sleep", "nap", "leak", "memory"]},
                "ms": {"type": "integer", "minimum": 0, "maximum": 600000},
                "note": {"type": "string"},
                "password": {"type": "string", "format": "password"}
            },
            "additionalProperties": false,
            // Added by the host: the order the plugin wrote the fields in.
            "ui:order": ["mode", "ms", "note", "password"]
        })
    );
    let d = &guarded["describe"];
    assert_eq!(d["title"], "Guarded action");
    assert_eq!(d["entityKinds"], json!([]));
    assert_eq!(d["requiredRole"], "member");
    assert_eq!(d["approval"], "admin");
    assert_eq!(
        d["inputSchema"],
        json!({"type": "object", "properties": {"target": {"type": "string"}},
               "ui:order": ["target"]})
    );

    let entity = portolan_e2e::entity("svc");
    let report = run(
        &server,
        "test-action",
        json!({"mode": "ok", "note": "hi"}),
        Some(entity.clone()),
    )
    .await;
    let outcome = report.result.as_ref().expect("mode ok succeeds");
    assert_eq!(
        outcome.output,
        json!({
            "runId": "run-1",
            "actor": "alice",
            "attempt": 1,
            "input": {"mode": "ok", "note": "hi"},
            "entity": "Component:default/svc"
        })
    );
    assert_eq!(
        outcome.links,
        [Link {
            url: "https://example.invalid/runs/run-1".into(),
            title: Some("Run".into()),
            icon: None,
            kind: None
        }]
    );
    assert_eq!(messages(&report), ["hello from run run-1 attempt 1"]);
    assert_eq!(report.logs[0].level, LogLevel::Info);

    let report = run(&server, "test-action", json!({"mode": "fail"}), None).await;
    assert_eq!(plugin_error(&report), ("failed", None, "asked to fail"));

    // The host masks a granted secret's value in the run's log.
    let report = run(
        &server,
        "test-action",
        json!({"mode": "leak"}),
        Some(entity),
    )
    .await;
    assert!(report.result.is_ok(), "{:?}", report.result);
    assert_eq!(messages(&report), ["the secret is [secret]"]);

    let report = run(&server, "guarded-action", json!({"target": "prod"}), None).await;
    assert_eq!(
        report
            .result
            .as_ref()
            .expect("the guarded action runs")
            .output,
        json!({"target": "prod"})
    );
    assert_eq!(messages(&report), ["guarded run for prod"]);
    server.stop().await;
}
