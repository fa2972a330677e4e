//! Contract versions: plugins built against `portolan:plugin@0.4.0` and
//! against the frozen 0.3.0, 0.2.0 and 0.1.0 load side by side through the
//! real registry; 0.3.0 check plugins lack `evaluate-rules` and are called
//! once per rule, 0.2.0 ones also lack the catalog import, 0.1.0 ones are
//! adapted to the current model (`wit/README.md`, "Supported versions").
//! The fixture `frozen-check` is the 0.3.0 check (with the catalog import).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use portolan_e2e::{component, entity, TestServer};
use portolan_runtime::model::{
    ActionInfo, ActionInvocation, ActionRole, CheckOutcome, CheckStatus, Entity,
};
use portolan_runtime::{
    CallError, CallReport, Contract, EntityBatch, Plugin, RuleCall, RulesReport,
};
use portolan_store::Role;
use serde_json::{json, Value};

/// Installs `component` as `id` (with `sidecar`, if any) and waits until it
/// is ready; returns its `GET /api/v1/plugins/{id}` body.
async fn install(
    server: &TestServer,
    token: &str,
    component: &str,
    id: &str,
    sidecar: Option<&str>,
) -> Value {
    if let Some(text) = sidecar {
        server.write_sidecar(id, text);
    }
    server.install(&portolan_e2e::component(component), id);
    let (_, body) = server
        .wait_plugin(id, token, Duration::from_secs(30), |_, b| {
            b["status"] == "ready" || b["status"] == "failed"
        })
        .await
        .unwrap_or_else(|| panic!("{id} was never listed"));
    assert_eq!(body["status"], "ready", "{id}: {body}");
    body
}

async fn evaluate(
    plugin: &Arc<Plugin>,
    check: &str,
    parameters: Value,
    entities: Vec<Entity>,
) -> CallReport<Vec<CheckOutcome>> {
    let plugin = plugin.clone();
    let check = check.to_owned();
    tokio::task::spawn_blocking(move || plugin.evaluate(&check, &parameters, &entities))
        .await
        .unwrap()
}

fn group(name: &str) -> Entity {
    serde_json::from_value(json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Group",
        "metadata": {"name": name},
        "spec": {"type": "team"}
    }))
    .unwrap()
}

fn ownerless(name: &str) -> Entity {
    let mut e = entity(name);
    e.spec = json!({"type": "service", "lifecycle": "production"});
    e
}

fn plugin_error(report: &CallReport<Vec<CheckOutcome>>) -> (&str, Option<&str>, &str) {
    match &report.result {
        Err(CallError::Plugin {
            code,
            field,
            message,
        }) => (code, field.as_deref(), message),
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_check_is_one_default_check_and_evaluates_as_before() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    let body = install(
        &server,
        &token,
        "legacy-check",
        "old-check",
        Some("[settings]\nprefix = \"legacy:\"\n"),
    )
    .await;
    assert_eq!(body["role"], "scorecard-check");
    assert_eq!(body["contract"], "0.1.0");
    assert_eq!(body["version"], "0.1.5");
    assert_eq!(
        body["describe"]["checks"],
        json!([{
            "id": "default",
            "title": "Legacy check",
            "description": "Test fixture built against portolan:plugin@0.1.0: passes Components that name an owner.",
            "entityKinds": ["Component"],
            "parametersSchema": {"type": "object", "properties": {"mode": {"enum": ["normal", "refuse"]}}}
        }])
    );

    let plugin = server.state.registry.plugin("old-check").unwrap();
    assert_eq!(plugin.contract, Contract::V0_1);
    assert!(plugin.action_info().is_none());
    let ids: Vec<&str> = plugin.checks().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["default"]);

    // The 0.1.0 guest gets the batch through its old `evaluate`, reads its
    // setting and logs through the 0.1.0 host interface. The Group is not
    // its kind: the host skips it without passing it on.
    let report = evaluate(
        &plugin,
        "default",
        json!({}),
        vec![entity("svc"), group("team-a"), ownerless("orphan")],
    )
    .await;
    let outcomes = report.result.expect("the legacy check answers");
    assert_eq!(
        outcomes,
        vec![
            CheckOutcome {
                status: CheckStatus::Pass,
                message: Some("legacy:Component:default/svc".into()),
                value: Some(json!({"owner": "team-a"})),
            },
            CheckOutcome {
                status: CheckStatus::Skip,
                message: Some("the check applies to Component only".into()),
                value: None,
            },
            CheckOutcome {
                status: CheckStatus::Fail,
                message: Some("no owner".into()),
                value: None,
            },
        ]
    );
    let logged: Vec<&str> = report.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logged, ["legacy-check: 2 entities"]);

    // Its errors map as before.
    let report = evaluate(
        &plugin,
        "default",
        json!({"mode": "refuse"}),
        vec![entity("svc")],
    )
    .await;
    assert_eq!(
        plugin_error(&report),
        ("invalid-parameter", Some("/mode"), "asked to refuse")
    );

    // Any other check id is refused without calling the guest.
    let report = evaluate(&plugin, "has-owner", json!({}), vec![entity("svc")]).await;
    let (code, field, message) = plugin_error(&report);
    assert_eq!((code, field), ("unknown-check", None));
    assert!(
        message.contains("\"has-owner\"") && message.contains("default"),
        "{message}"
    );
    assert!(
        report.logs.is_empty(),
        "the guest must not run: {:?}",
        report.logs
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_built_against_0_2_0_loads_and_evaluates_beside_the_current_contract() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    let previous = install(
        &server,
        &token,
        "previous-check",
        "previous",
        Some("[settings]\nprefix = \"owned by \"\n"),
    )
    .await;
    let current = install(&server, &token, "echo-check", "echo", None).await;
    assert_eq!(
        (&previous["contract"], &current["contract"]),
        (&json!("0.2.0"), &json!("0.4.0"))
    );
    assert_eq!(previous["version"], "0.2.7");
    let listed: Vec<(&str, &Value)> = previous["describe"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), &c["entityKinds"]))
        .collect();
    assert_eq!(
        listed,
        [("owner", &json!(["Component"])), ("unsure", &json!([]))]
    );

    let plugin = server.state.registry.plugin("previous").unwrap();
    assert_eq!(plugin.contract, Contract::V0_2);
    // The 0.2.0 guest gets its batch, reads its setting and logs through
    // the 0.2.0 host interface; the Group is not its kind.
    let report = evaluate(
        &plugin,
        "owner",
        json!({}),
        vec![entity("svc"), group("team-a"), ownerless("orphan")],
    )
    .await;
    let outcomes: Vec<(CheckStatus, Option<String>)> = report
        .result
        .unwrap()
        .into_iter()
        .map(|o| (o.status, o.message))
        .collect();
    assert_eq!(
        outcomes,
        [
            (CheckStatus::Pass, Some("owned by team-a".into())),
            (
                CheckStatus::Skip,
                Some("the check applies to Component only".into())
            ),
            (CheckStatus::Fail, Some("no owner".into())),
        ]
    );
    let logged: Vec<&str> = report.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logged, ["previous-check owner: 2 entities"]);
    // Its per-entity `error` status reads as in the current contract.
    let report = evaluate(&plugin, "unsure", json!({}), vec![group("team-a")]).await;
    assert_eq!(report.result.unwrap()[0].status, CheckStatus::Error);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_plugin_offers_several_checks_with_per_entity_errors() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    let body = install(&server, &token, "echo-check", "echo", None).await;
    assert_eq!(body["contract"], "0.4.0");
    let listed: Vec<(&str, &Value)> = body["describe"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), &c["entityKinds"]))
        .collect();
    assert_eq!(
        listed,
        [
            ("echo", &json!([])),
            ("undecided", &json!([])),
            ("components", &json!(["Component"])),
            ("lookup", &json!([]))
        ]
    );

    let plugin = server.state.registry.plugin("echo").unwrap();
    assert_eq!(plugin.contract, Contract::V0_4);
    assert_eq!(plugin.checks()[1].title, "Undecided");
    let batch = || vec![entity("svc"), group("team-a")];

    let outcomes = evaluate(&plugin, "echo", json!({}), batch())
        .await
        .result
        .unwrap();
    let messages: Vec<_> = outcomes.iter().map(|o| o.message.as_deref()).collect();
    assert_eq!(
        messages,
        [Some("Component:default/svc"), Some("Group:default/team-a")]
    );

    // An entity the check cannot decide for is an error outcome, not a
    // failed batch.
    let outcomes = evaluate(&plugin, "undecided", json!({}), batch())
        .await
        .result
        .unwrap();
    assert!(outcomes.iter().all(|o| o.status == CheckStatus::Error));
    assert_eq!(
        outcomes[0].message.as_deref(),
        Some("cannot decide for Component:default/svc")
    );
    assert_eq!(serde_json::to_value(outcomes[0].status).unwrap(), "error");

    // The host passes a check only the kinds it applies to.
    let outcomes = evaluate(&plugin, "components", json!({}), batch())
        .await
        .result
        .unwrap();
    let statuses: Vec<_> = outcomes.iter().map(|o| o.status).collect();
    assert_eq!(statuses, [CheckStatus::Pass, CheckStatus::Skip]);
    // ... and does not call the plugin when none applies.
    let report = evaluate(&plugin, "components", json!({}), vec![group("team-b")]).await;
    assert_eq!(report.result.unwrap()[0].status, CheckStatus::Skip);
    assert_eq!(report.elapsed, Duration::ZERO);

    let report = evaluate(&plugin, "echo-all", json!({}), batch()).await;
    let (code, _, message) = plugin_error(&report);
    assert_eq!(code, "unknown-check");
    assert!(
        message.contains("echo, undecided, components, lookup"),
        "the error lists what the plugin offers: {message}"
    );
    server.stop().await;
}

/// `evaluate_rules` on a blocking thread; the rules are `(check, parameters)`.
async fn evaluate_rules(
    plugin: &Arc<Plugin>,
    rules: &[(&str, Value)],
    entities: Vec<Entity>,
) -> RulesReport {
    let plugin = plugin.clone();
    let rules: Vec<(String, Value)> = rules
        .iter()
        .map(|(check, parameters)| ((*check).to_owned(), parameters.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let calls: Vec<RuleCall<'_>> = rules
            .iter()
            .map(|(check, parameters)| RuleCall { check, parameters })
            .collect();
        plugin.evaluate_rules(&calls, &EntityBatch::borrowed(&entities))
    })
    .await
    .unwrap()
}

/// The statuses of each rule's outcomes, or its error's text.
fn statuses(report: &RulesReport) -> Vec<Result<Vec<CheckStatus>, String>> {
    report
        .results
        .iter()
        .map(|r| match r {
            Ok(outcomes) => Ok(outcomes.iter().map(|o| o.status).collect()),
            Err(e) => Err(e.to_string()),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_rules_go_to_a_0_4_0_check_in_one_call_and_one_by_one_to_older_ones() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    install(&server, &token, "echo-check", "echo", None).await;
    install(&server, &token, "hostile-check", "hostile", None).await;
    install(&server, &token, "previous-check", "previous", None).await;
    install(&server, &token, "frozen-check", "frozen", None).await;
    let batch = || vec![entity("svc"), group("team-a")];

    // echo and undecided apply to every entity and share one call;
    // components applies to Components only, so it has a call of its own;
    // a check the plugin does not offer fails alone, without a call.
    let echo = server.state.registry.plugin("echo").unwrap();
    let rules = [
        ("echo", json!({})),
        ("undecided", json!({})),
        ("components", json!({})),
        ("echo-all", json!({})),
    ];
    let report = evaluate_rules(&echo, &rules, batch()).await;
    assert_eq!(report.calls, 2, "{report:?}");
    assert!(report.split.is_none(), "{report:?}");
    assert_eq!(report.results.len(), 4);
    // Each rule's answer is what the rule alone gets.
    for ((check, parameters), together) in rules.iter().zip(&report.results) {
        let alone = evaluate(&echo, check, parameters.clone(), batch()).await;
        match (together, &alone.result) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{check}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{check}"),
            (a, b) => panic!("{check}: together {a:?}, alone {b:?}"),
        }
    }
    assert_eq!(
        report.results[0].as_ref().unwrap()[1].message.as_deref(),
        Some("Group:default/team-a")
    );
    assert!(statuses(&report)[3]
        .as_ref()
        .is_err_and(|e| e.contains("offers no check \"echo-all\"")));

    // A check that traps takes the whole call down; its rules are then
    // evaluated one by one, and only the trapping rule fails.
    let hostile = server.state.registry.plugin("hostile").unwrap();
    let report = evaluate_rules(
        &hostile,
        &[
            ("hostile", json!({"mode": "ok"})),
            ("hostile", json!({"mode": "trap"})),
            ("hostile", json!({"mode": "ok"})),
        ],
        batch(),
    )
    .await;
    assert_eq!(report.calls, 4, "one call for the three, then one each");
    assert!(
        matches!(report.split, Some(CallError::Trap { .. })),
        "{:?}",
        report.split
    );
    let answers = statuses(&report);
    assert_eq!(answers[0], Ok(vec![CheckStatus::Pass, CheckStatus::Pass]));
    assert!(
        answers[1].as_ref().is_err_and(|e| e.contains("trap")),
        "{answers:?}"
    );
    assert_eq!(answers[2], answers[0]);

    // A 0.2.0 plugin has no evaluate-rules: one call per rule.
    let previous = server.state.registry.plugin("previous").unwrap();
    let report = evaluate_rules(
        &previous,
        &[("owner", json!({})), ("unsure", json!({}))],
        vec![ownerless("orphan"), group("team-a")],
    )
    .await;
    assert_eq!(report.calls, 2);
    assert!(report.split.is_none());
    assert_eq!(
        statuses(&report),
        [
            Ok(vec![CheckStatus::Fail, CheckStatus::Skip]),
            Ok(vec![CheckStatus::Error, CheckStatus::Error]),
        ]
    );

    // A 0.3.0 plugin has the catalog import but no evaluate-rules: one call
    // per rule, each looking the owners up in the catalog.
    let member = server.token(Role::Member).await;
    let (status, body) = server
        .put(
            "/api/v1/entities/group/default/team-a",
            &member,
            &json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                    "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}}),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let frozen = server.state.registry.plugin("frozen").unwrap();
    assert_eq!(frozen.contract, Contract::V0_3);
    let mut stray = entity("stray");
    stray.spec = json!({"type": "service", "lifecycle": "production", "owner": "nobody"});
    let report = evaluate_rules(
        &frozen,
        &[
            ("owner-exists", json!({})),
            ("owner-exists", json!({"kind": "User"})),
        ],
        vec![entity("svc"), ownerless("orphan"), stray],
    )
    .await;
    assert_eq!(report.calls, 2, "{report:?}");
    assert!(report.split.is_none());
    let messages: Vec<Vec<(CheckStatus, String)>> = report
        .results
        .iter()
        .map(|r| {
            r.as_ref()
                .unwrap_or_else(|e| panic!("{e}"))
                .iter()
                .map(|o| (o.status, o.message.clone().unwrap_or_default()))
                .collect()
        })
        .collect();
    let fail = |m: &str| (CheckStatus::Fail, m.to_owned());
    assert_eq!(
        messages,
        [
            vec![
                (CheckStatus::Pass, "Group:team-a".to_owned()),
                fail("no owner"),
                fail("group:nobody is not in the catalog"),
            ],
            vec![
                fail("group:team-a is a Group"),
                fail("no owner"),
                fail("group:nobody is not in the catalog"),
            ],
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_plugin_with_a_bad_list_of_checks_fails_to_load() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    let cases = [
        ("none", "at least one check"),
        (
            "bad-id",
            "checks[0].id \"Not An Id\" must be 1 to 63 characters",
        ),
        (
            "duplicate",
            "checks[1].id \"twice\" repeats the id of checks[0]",
        ),
        (
            "bad-schema",
            "checks[0].parameters-schema must be a JSON Schema object, not a boolean",
        ),
    ];
    for (mode, _) in cases {
        server.write_sidecar(mode, &format!("[settings]\ndescribe = \"{mode}\"\n"));
        server.install(&component("hostile-check"), mode);
    }
    for (mode, reason) in cases {
        let (_, body) = server
            .wait_plugin(mode, &token, Duration::from_secs(10), |_, b| {
                b["status"] == "failed"
            })
            .await
            .unwrap_or_else(|| panic!("{mode}: a bad list of checks must fail the load"));
        let error = body["error"].as_str().unwrap();
        assert!(
            error.starts_with("describe failed: plugin returned invalid output: ")
                && error.contains(reason),
            "{mode}: {error}"
        );
        assert!(server.state.registry.plugin(mode).is_none());
    }
    server.stop().await;
}

/// Starts a local HTTP server that records the JSON bodies POSTed to
/// `/hook`; returns its port and the record.
async fn webhook_receiver() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

fn invocation(input: Value) -> ActionInvocation {
    ActionInvocation {
        run_id: "run-7".into(),
        actor: "alice".into(),
        attempt: 2,
        input,
        entity: Some(entity("svc")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_of_both_versions_run_and_only_the_current_one_sees_the_actor() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    let (port, seen) = webhook_receiver().await;
    let current = install(
        &server,
        &token,
        "http-webhook",
        "webhook",
        Some(&format!(
            "[http]\nallow = [\"127.0.0.1:{port}\"]\n[settings]\nurl = \"http://127.0.0.1:{port}/hook\"\n"
        )),
    )
    .await;
    let legacy = install(&server, &token, "legacy-action", "old-action", None).await;
    assert_eq!(
        (&current["contract"], &legacy["contract"]),
        (&json!("0.4.0"), &json!("0.1.0"))
    );

    // A 0.1.0 action is adapted: any entity of its kinds, members, no approval.
    let legacy_info = ActionInfo {
        entity_kinds: vec!["Component".into()],
        entity_types: vec![],
        entity_tags: vec![],
        // The host records the author's property order for forms.
        input_schema: json!({"type": "object", "properties": {"message": {"type": "string"}},
                             "ui:order": ["message"]}),
        required_role: ActionRole::Member,
        approval: None,
    };
    let old = server.state.registry.plugin("old-action").unwrap();
    assert_eq!(old.action_info(), Some(&legacy_info));
    assert!(old.checks().is_empty());
    let details = &legacy["describe"];
    assert_eq!(details["title"], "Legacy action");
    assert_eq!(details["requiredRole"], "member");
    assert_eq!(details["approval"], Value::Null);
    assert_eq!(details["entityTypes"], json!([]));
    assert_eq!(details["entityTags"], json!([]));
    assert_eq!(details["inputSchema"], legacy_info.input_schema);
    assert_eq!(current["describe"]["entityKinds"], json!(["Component"]));
    assert_eq!(current["describe"]["requiredRole"], "member");
    assert!(ActionRole::Viewer < ActionRole::Member && ActionRole::Member < ActionRole::Admin);

    let report = tokio::task::spawn_blocking({
        let old = old.clone();
        move || old.run_action(&invocation(json!({"message": "hi"})))
    })
    .await
    .unwrap();
    let outcome = report.result.expect("the legacy action runs");
    assert_eq!(
        outcome.output,
        json!({"runId": "run-7", "input": {"message": "hi"}, "entity": "Component:default/svc"})
    );
    assert_eq!(outcome.links[0].url, "https://example.invalid/runs/run-7");
    assert_eq!(report.logs[0].message, "legacy-action: run run-7");
    let report = tokio::task::spawn_blocking(move || {
        old.run_action(&invocation(json!({"message": "fail"})))
    })
    .await
    .unwrap();
    assert_eq!(
        report.result.unwrap_err(),
        CallError::Plugin {
            code: "failed".into(),
            field: None,
            message: "asked to fail".into()
        }
    );

    // A 0.2.0 action learns who started the run and which attempt it is.
    let webhook = server.state.registry.plugin("webhook").unwrap();
    let report = tokio::task::spawn_blocking(move || {
        webhook.run_action(&invocation(json!({"service": "svc", "reason": "test"})))
    })
    .await
    .unwrap();
    assert_eq!(
        report.result.expect("the webhook action runs").output,
        json!({"status": 200, "body": "ok"})
    );
    let payloads = seen.lock().unwrap().clone();
    assert_eq!(payloads.len(), 1, "{payloads:?}");
    let payload = &payloads[0];
    assert_eq!(
        (
            &payload["run_id"],
            &payload["actor"],
            &payload["attempt"],
            &payload["entity"]
        ),
        (
            &json!("run-7"),
            &json!("alice"),
            &json!(2),
            &json!("Component:default/svc")
        )
    );
    server.stop().await;
}
