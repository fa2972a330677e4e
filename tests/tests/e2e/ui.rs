//! The web UI, end to end.
//!
//! The first tests read the pages the way a browser without JavaScript (or
//! a screen reader's fetch) does: plain HTTP with the session cookie. The
//! `browser_*` tests drive Debian's headless Chromium over WebDriver through
//! what people do: search and open an entity, run an action and watch its
//! log reach "succeeded", fill a template form wrongly and then rightly and
//! land on the new entity, drop a plugin into the folder and see it listed,
//! and drill down a scorecard. Each saves screenshots under
//! `target/ui-screenshots/`.

use std::time::{Duration, Instant};

use portolan_e2e::browser::Browser;
use portolan_e2e::{component, Options, TestServer};
use portolan_store::Role;
use serde_json::{json, Value};

const REQUIRED: &str = "required-fields/required-fields";

async fn ready(server: &TestServer, id: &str, token: &str) {
    let loaded = server
        .wait_plugin(id, token, Duration::from_secs(90), |status, body| {
            status == 200 && body["status"] == "ready"
        })
        .await;
    assert!(loaded.is_some(), "plugin {id} did not load");
}

fn entities() -> Value {
    json!([
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
         "metadata": {"name": "team-a", "title": "Team A"},
         "spec": {"type": "team", "children": []}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "System",
         "metadata": {"name": "shop", "description": "Everything that sells."},
         "spec": {"owner": "team-a"}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
         "metadata": {"name": "payments-service", "title": "Payments service",
                      "description": "Takes the customers' money.",
                      "tags": ["java", "payments"],
                      "links": [{"url": "https://wiki.example/payments", "title": "Wiki"}],
                      "annotations": {"backstage.io/kubernetes-id": "payments"}},
         "spec": {"type": "service", "lifecycle": "production", "owner": "team-a",
                  "system": "shop", "dependsOn": ["component:inventory-service"],
                  "providesApis": ["payments-api"]}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
         "metadata": {"name": "inventory-service", "tags": ["go"]},
         "spec": {"type": "service", "lifecycle": "experimental", "owner": "team-a", "system": "shop"}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "API",
         "metadata": {"name": "payments-api", "description": "Charge and refund."},
         "spec": {"type": "openapi", "lifecycle": "production", "owner": "team-a",
                  "definition": "openapi: 3.0.0"}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
         "metadata": {"name": "evil", "title": "<script>alert('x')</script>",
                      "description": "<img src=x onerror=alert(1)>"},
         "spec": {"type": "website", "lifecycle": "production", "owner": "team-a"}}
    ])
}

/// A server with the example entities, the test action, and the
/// required-fields check behind a readiness scorecard.
async fn seeded(opts: Options) -> (TestServer, String) {
    let server = TestServer::start(opts).await;
    let admin = server.token_for(Role::Admin, "root").await;
    let (status, body) = server
        .post("/api/v1/entities/batch", &admin, Some(&entities()))
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    server.install(&component("test-action"), "test-action");
    server.install(&component("required-fields"), "required-fields");
    ready(&server, "test-action", &admin).await;
    ready(&server, "required-fields", &admin).await;
    let rule = |id: &str, level: &str, field: &str| {
        json!({"id": id, "title": id, "level": level, "check": REQUIRED,
               "parameters": {"fields": [field]}})
    };
    let r = server
        .http
        .put(server.url("/api/v1/scorecards/readiness"))
        .bearer_auth(&admin)
        .json(&json!({
            "title": "Production readiness",
            "filter": {"kinds": ["Component"]},
            "rules": [
                rule("has-description", "Bronze", "metadata.description"),
                rule("has-tags", "Silver", "metadata.tags"),
                rule("has-links", "Gold", "metadata.links"),
            ]
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    // Every component evaluated.
    let started = Instant::now();
    loop {
        let (_, results) = server
            .get("/api/v1/scorecards/readiness/results", &admin)
            .await;
        if results["entities"].as_u64() == Some(3) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "scorecard never evaluated: {results}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, admin)
}

/// A client that keeps redirects visible and sends a session cookie.
struct Visitor {
    http: reqwest::Client,
    cookie: Option<String>,
    base: String,
}

impl Visitor {
    fn new(server: &TestServer, token: Option<&str>) -> Visitor {
        Visitor {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: token.map(|t| format!("portolan_session={t}")),
            base: server.url(""),
        }
    }

    async fn get(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header("cookie", c);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.text().await.unwrap(), headers)
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let mut r = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            r = r.header("cookie", c);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.text().await.unwrap(), headers)
    }
}

impl Visitor {
    /// Reloads a run page until it shows `status`; panics after 30 s.
    async fn wait_status(&self, run_page: &str, status: &str) -> String {
        let started = Instant::now();
        let needle = format!("data-status=\"{status}\"");
        loop {
            let (_, page, _) = self.get(run_page).await;
            if page.contains(&needle) {
                return page;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never {status}: {page}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn location(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_read_without_javascript_and_sign_in_keeps_the_token_in_a_strict_cookie() {
    let (server, _admin) = seeded(Options::default()).await;
    let member = server.token_for(Role::Member, "alice").await;

    // Signed out, a page sends the visitor to sign in and back.
    let anonymous = Visitor::new(&server, None);
    let (status, _, headers) = anonymous.get("/catalog?kind=component").await;
    assert_eq!(status, 303);
    assert_eq!(
        location(&headers),
        "/sign-in?next=%2Fcatalog%3Fkind%3Dcomponent"
    );

    // A wrong token is refused on the form, with a message.
    let (status, page, _) = anonymous
        .post("/sign-in", &[("token", "nope"), ("next", "/catalog")], None)
        .await;
    assert_eq!(status, 401);
    assert!(page.contains("unknown or has been revoked"), "{page}");

    // The right one sets an HttpOnly, SameSite=Strict cookie and goes back.
    let (status, _, headers) = anonymous
        .post(
            "/sign-in",
            &[("token", &member), ("next", "/catalog?kind=component")],
            None,
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location(&headers), "/catalog?kind=component");
    let cookie = headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie.starts_with(&format!("portolan_session={member};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // ... and never to another site.
    let (_, _, headers) = anonymous
        .post(
            "/sign-in",
            &[("token", &member), ("next", "//evil.example/")],
            None,
        )
        .await;
    assert_eq!(location(&headers), "/catalog");

    let alice = Visitor::new(&server, Some(&member));
    let (status, page, headers) = alice.get("/catalog?q=pay").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        page.contains("href=\"/catalog/component/default/payments-service\""),
        "{page}"
    );
    assert!(
        page.contains("href=\"/catalog/api/default/payments-api\""),
        "{page}"
    );
    assert!(
        !page.contains("inventory-service"),
        "search for pay matched inventory: {page}"
    );

    // Facet counts: three components among six entities.
    let (_, page, _) = alice.get("/catalog").await;
    assert!(page.contains("6 shown of 6 entities"), "{page}");
    assert!(page.contains(">component (3)<"), "{page}");
    let (_, page, _) = alice
        .get("/catalog?kind=component&sort=-metadata.name")
        .await;
    assert!(page.contains("3 shown of 3 entities"), "{page}");
    let first = page.find("payments-service").unwrap();
    let second = page.find("inventory-service").unwrap();
    assert!(first < second, "descending name order");
    // Another kind stays on offer while one is chosen.
    assert!(page.contains(">api (1)<"), "{page}");

    // The entity page: metadata, links, relations as links, a picture,
    // the scorecard with what to fix, the actions that apply.
    let (status, page, _) = alice
        .get("/catalog/component/default/payments-service")
        .await;
    assert_eq!(status, 200);
    for needle in [
        "<h1>Payments service</h1>",
        "Takes the customers' money.",
        "href=\"https://wiki.example/payments\"",
        "href=\"/catalog/component/default/inventory-service\"",
        "href=\"/catalog/api/default/payments-api\"",
        "href=\"/catalog/group/default/team-a\"",
        "href=\"/catalog/system/default/shop\"",
        "<svg class=\"graph\"",
        "backstage.io/kubernetes-id",
        "Production readiness",
        "Level: <strong>Gold</strong>",
        "href=\"/actions/test-action?entity=component%3Adefault%2Fpayments-service\"",
    ] {
        assert!(
            page.contains(needle),
            "no {needle:?} in the entity page:\n{page}"
        );
    }
    // An entity short of a level is told what to fix.
    let (_, page, _) = alice
        .get("/catalog/component/default/inventory-service")
        .await;
    assert!(
        page.contains("To reach <strong>Bronze</strong>, fix:"),
        "{page}"
    );
    assert!(page.contains("has-description"), "{page}");
    // Hostile text is shown as text.
    let (_, page, _) = alice.get("/catalog/component/default/evil").await;
    assert!(page.contains("&lt;script&gt;alert("), "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    // An action that does not apply is not offered (evil is a website).
    assert!(!page.contains("/actions/test-action?entity"), "{page}");

    let (status, page, _) = alice.get("/catalog/component/default/nobody").await;
    assert_eq!(status, 404);
    assert!(page.contains("Not found"), "{page}");

    // Every other page renders for a member.
    for path in [
        "/templates",
        "/actions",
        "/runs",
        "/scorecards",
        "/scorecards/readiness",
        "/plugins",
    ] {
        let (status, page, _) = alice.get(path).await;
        assert_eq!(status, 200, "{path}: {page}");
        assert!(page.contains("<main id=\"main\""), "{path}");
    }
    let (_, page, _) = alice.get("/plugins").await;
    assert!(
        page.contains("test-action") && page.contains("required-fields"),
        "{page}"
    );

    // Anonymous reads, where the operator allows them, need no sign-in.
    server.stop().await;
    let open = TestServer::start(Options {
        anonymous_read: true,
        ..Options::default()
    })
    .await;
    let (status, page, _) = Visitor::new(&open, None).get("/catalog").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Sign in"), "{page}");
    open.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_forms_validate_at_the_field_refuse_other_sites_and_offer_only_what_the_role_may() {
    let (server, admin) = seeded(Options::default()).await;
    let member = server.token_for(Role::Member, "alice").await;
    let viewer = server.token_for(Role::Viewer, "val").await;
    let alice = Visitor::new(&server, Some(&member));
    let val = Visitor::new(&server, Some(&viewer));
    let entity = "component:default/payments-service";

    // The form follows the schema: a choice, a number, a password.
    let (status, page, _) = alice
        .get(&format!("/actions/test-action?entity={entity}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<select id=\"field-input-mode\" name=\"/input/mode\""),
        "{page}"
    );
    assert!(
        page.contains("type=\"number\" id=\"field-input-ms\""),
        "{page}"
    );
    assert!(
        page.contains("type=\"password\" id=\"field-input-password\""),
        "{page}"
    );

    // A number that is not one, and a value outside the schema, are shown
    // at their fields; nothing runs.
    let (status, page, _) = alice
        .post(
            "/actions/test-action",
            &[
                ("/entity", entity),
                ("/input/mode", "sleep"),
                ("/input/ms", "soon"),
            ],
            None,
        )
        .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("must be a whole number"), "{page}");
    let (status, page, _) = alice
        .post(
            "/actions/test-action",
            &[
                ("/entity", entity),
                ("/input/mode", "sleep"),
                ("/input/ms", "9999999"),
            ],
            None,
        )
        .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("class=\"field invalid\""), "{page}");
    assert!(page.contains("id=\"field-input-ms-error\""), "{page}");
    let (_, runs) = server.get("/api/v1/runs", &admin).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 0, "{runs}");

    // A post from another site is refused before anything happens.
    let (status, page, _) = alice
        .post(
            "/actions/test-action",
            &[("/entity", entity), ("/input/mode", "ok")],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(status, 403, "{page}");
    let (_, runs) = server.get("/api/v1/runs", &admin).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 0, "{runs}");

    // A good post starts the run and goes to its page.
    let (status, _, headers) = alice
        .post(
            "/actions/test-action",
            &[
                ("/entity", entity),
                ("/input/mode", "ok"),
                ("/input/password", "s3cret-pw"),
            ],
            Some(&server.url("")),
        )
        .await;
    assert_eq!(status, 303);
    let run_page = location(&headers);
    assert!(run_page.starts_with("/runs/"), "{run_page}");
    let id = run_page.trim_start_matches("/runs/").to_owned();
    let page = alice.wait_status(&run_page, "succeeded").await;
    assert!(
        page.contains(&format!("hello from run {id} attempt 1")),
        "{page}"
    );
    assert!(!page.contains("s3cret-pw"), "the secret is shown: {page}");
    // An ended run has no cancel button.
    assert!(!page.contains("Cancel run"), "{page}");

    // A viewer is not offered what a viewer may not do.
    let (_, page, _) = val.get("/catalog/component/default/payments-service").await;
    assert!(!page.contains("/actions/test-action?entity"), "{page}");
    assert!(page.contains("needs the member role"), "{page}");
    let (_, page, _) = val.get("/actions/test-action").await;
    assert!(!page.contains("<form class=\"schema-form\""), "{page}");
    let (_, page, _) = val.get("/templates").await;
    assert!(!page.contains("Sign out") || page.contains("val"), "{page}");
    // ... and the API refuses it anyway if the form is forged.
    let (status, page, _) = val
        .post(
            "/actions/test-action",
            &[("/entity", entity), ("/input/mode", "ok")],
            None,
        )
        .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("the token has viewer"), "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scorecard_pages_drill_down_from_a_rule_to_the_entities_failing_it() {
    let (server, admin) = seeded(Options::default()).await;
    let alice = Visitor::new(&server, Some(&admin));

    // The API behind the drill-down.
    let (status, body) = server
        .get(
            "/api/v1/scorecards/readiness/entities?rule=has-links&status=fail",
            &admin,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let refs: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entityRef"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        [
            "component:default/evil",
            "component:default/inventory-service"
        ]
    );
    let (_, body) = server
        .get("/api/v1/scorecards/readiness/entities?level=Gold", &admin)
        .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
    for (query, field) in [
        ("rule=nope", "query.rule"),
        ("rule=has-links&status=maybe", "query.status"),
        ("status=fail", "query.status"),
        ("level=Platinum", "query.level"),
    ] {
        let r = server
            .http
            .get(server.url(&format!("/api/v1/scorecards/readiness/entities?{query}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{query}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }

    let (_, page, _) = alice.get("/scorecards/readiness").await;
    assert!(
        page.contains("href=\"/scorecards/readiness/rules/has-links?status=fail\""),
        "{page}"
    );
    let (status, page, _) = alice
        .get("/scorecards/readiness/rules/has-links?status=fail")
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("href=\"/catalog/component/default/inventory-service\""),
        "{page}"
    );
    assert!(
        !page.contains("href=\"/catalog/component/default/payments-service\""),
        "{page}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// In a real browser.

async fn member_in_browser(server: &TestServer, test: &str) -> Browser {
    let token = server.token_for(Role::Member, "alice").await;
    let browser = Browser::start(test).await;
    browser.sign_in(&server.url(""), &token).await;
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_search_for_an_entity_and_open_it() {
    let (server, _) = seeded(Options::default()).await;
    let b = member_in_browser(&server, "catalog").await;
    b.goto(&server.url("/catalog")).await;
    b.wait_text("6 shown of 6 entities", Duration::from_secs(10))
        .await;
    b.shot("catalog").await;
    // Search as you type: the results change without a submit.
    b.find("#q").await.send_keys("payments").await.unwrap();
    let started = Instant::now();
    while b
        .has("a[href='/catalog/component/default/inventory-service']")
        .await
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the results never narrowed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.shot("catalog-search").await;
    b.find("a[href='/catalog/component/default/payments-service']")
        .await
        .click()
        .await
        .unwrap();
    let h1 = b.find("h1").await.text().await.unwrap();
    assert_eq!(h1, "Payments service");
    b.find("svg.graph").await;
    b.shot("entity").await;
    // Relations are links: follow one.
    b.find("dl.relations a[href='/catalog/component/default/inventory-service']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("inventory-service", Duration::from_secs(10))
        .await;
    assert!(b
        .url()
        .await
        .ends_with("/catalog/component/default/inventory-service"));
    // Keyboard: the skip link is the first stop and leads to the content.
    b.goto(&server.url("/catalog")).await;
    let skip = b.find("a.skip").await;
    assert_eq!(skip.attr("href").await.unwrap().as_deref(), Some("#main"));
    b.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_run_an_action_from_the_entity_page_and_watch_the_log() {
    let (server, _) = seeded(Options::default()).await;
    let b = member_in_browser(&server, "action").await;
    b.goto(&server.url("/catalog/component/default/payments-service"))
        .await;
    b.find("ul.actions a.button").await.click().await.unwrap();
    b.find("form.schema-form").await;
    b.shot("action-form").await;
    let mode = b.find("#field-input-mode").await;
    mode.select_by_value("sleep").await.unwrap();
    b.find("#field-input-ms")
        .await
        .send_keys("1500")
        .await
        .unwrap();
    b.find("form.schema-form button.primary")
        .await
        .click()
        .await
        .unwrap();
    // The run page follows the log live, then shows the final status.
    b.find("#run-status").await;
    assert!(b.url().await.contains("/runs/"));
    b.shot("run-live").await;
    b.find("#run-status[data-status='succeeded']").await;
    let log = b.find("#log").await.text().await.unwrap();
    assert!(
        log.contains("run succeeded") || log.contains("succeeded"),
        "{log}"
    );
    b.shot("run-done").await;
    b.goto(&server.url("/runs")).await;
    b.wait_text("test-action", Duration::from_secs(10)).await;
    b.shot("runs").await;
    b.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_template_form_shows_the_field_error_then_creates_the_entity() {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token_for(Role::Admin, "root").await;
    let workspace = server.dir.path().join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    server.write_sidecar(
        "service-template",
        &format!(
            "[scaffold]\ntarget = \"directory\"\nroot = \"{}\"\n",
            workspace.display()
        ),
    );
    server.install(&component("service-template"), "service-template");
    ready(&server, "service-template", &admin).await;
    let b = member_in_browser(&server, "template").await;
    b.goto(&server.url("/templates")).await;
    b.find("a[href='/templates/service-template']")
        .await
        .click()
        .await
        .unwrap();
    b.find("form.schema-form").await;
    b.shot("template-form").await;
    b.find("#field-name")
        .await
        .send_keys("Bad Name!")
        .await
        .unwrap();
    b.find("#field-owner")
        .await
        .send_keys("team-a")
        .await
        .unwrap();
    b.find("#field-description")
        .await
        .send_keys("Bills customers.")
        .await
        .unwrap();
    b.find("button[value=run]").await.click().await.unwrap();
    // The problem is shown at the field, and summarised with a link to it.
    let error = b.find("#field-name-error").await.text().await.unwrap();
    assert!(!error.is_empty());
    b.find("#error-summary a[href='#field-name']").await;
    b.shot("template-field-error").await;
    // What was typed is kept; fix the name and preview, then create.
    let name = b.find("#field-name").await;
    assert_eq!(
        name.prop("value").await.unwrap().as_deref(),
        Some("Bad Name!")
    );
    name.clear().await.unwrap();
    name.send_keys("billing").await.unwrap();
    b.find("button[value=preview]").await.click().await.unwrap();
    b.wait_text("catalog-info.yaml", Duration::from_secs(20))
        .await;
    b.shot("template-preview").await;
    b.find("button[value=run]").await.click().await.unwrap();
    b.find("#run-status[data-status='succeeded']").await;
    b.shot("template-run").await;
    b.find("#new-entity").await.click().await.unwrap();
    let h1 = b.find("h1").await.text().await.unwrap();
    assert_eq!(h1, "billing");
    assert!(b
        .url()
        .await
        .ends_with("/catalog/component/default/billing"));
    assert!(workspace.join("billing/catalog-info.yaml").exists());
    b.shot("template-new-entity").await;
    b.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_plugin_dropped_into_the_folder_appears_on_the_plugins_page() {
    let (server, _) = seeded(Options::default()).await;
    let b = member_in_browser(&server, "plugins").await;
    b.goto(&server.url("/plugins")).await;
    b.find("#plugin-test-action").await;
    assert!(!b.has("#plugin-echo-check").await);
    server.install(&component("echo-check"), "echo-check");
    std::fs::write(server.plugins_dir().join("broken.wasm"), b"not a component").unwrap();
    let started = Instant::now();
    loop {
        b.goto(&server.url("/plugins")).await;
        if b.has("#plugin-echo-check").await && b.has("#plugin-broken .plugin-error").await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the plugins never appeared"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let row = b.find("#plugin-echo-check").await.text().await.unwrap();
    assert!(
        row.contains("scorecard-check") && row.contains("ready"),
        "{row}"
    );
    let broken = b.find("#plugin-broken").await.text().await.unwrap();
    assert!(broken.contains("failed"), "{broken}");
    b.shot("plugins").await;
    // And the scorecard pages, for the record.
    b.goto(&server.url("/scorecards/readiness")).await;
    b.find("a[href='/scorecards/readiness/rules/has-links?status=fail']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("inventory-service", Duration::from_secs(10))
        .await;
    b.shot("scorecard-rule").await;
    b.goto(&server.url("/scorecards")).await;
    b.shot("scorecards").await;
    b.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_pages_offer_approve_deny_cancel_and_retry_only_to_those_allowed() {
    let (server, admin) = seeded(Options::default()).await;
    server.install(&component("guarded-action"), "guarded");
    ready(&server, "guarded", &admin).await;
    let alice_token = server.token_for(Role::Member, "alice").await;
    let bob_token = server.token_for(Role::Admin, "bob").await;
    let alice = Visitor::new(&server, Some(&alice_token));
    let bob = Visitor::new(&server, Some(&bob_token));

    // Alice asks; the run waits for another person with the admin role.
    let (status, _, headers) = alice
        .post("/actions/guarded", &[("/input/target", "db")], None)
        .await;
    assert_eq!(status, 303);
    let run_page = location(&headers);
    let (_, page, _) = alice.get(&run_page).await;
    assert!(page.contains("data-status=\"awaiting-approval\""), "{page}");
    assert!(
        page.contains("Another person must approve your run."),
        "{page}"
    );
    assert!(!page.contains(">Approve<"), "{page}");
    assert!(page.contains(">Cancel run<"), "her own run: {page}");
    // Bob may approve or deny it, and cancel it as an admin.
    let (_, page, _) = bob.get(&run_page).await;
    assert!(
        page.contains(">Approve<") && page.contains(">Deny<"),
        "{page}"
    );
    assert!(page.contains(">Cancel run<"), "{page}");
    // Denying needs a reason: the page says so and the run still waits.
    let (status, page, _) = bob
        .post(&format!("{run_page}/deny"), &[("comment", "")], None)
        .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("comment"), "{page}");
    assert!(page.contains("data-status=\"awaiting-approval\""), "{page}");
    let (status, _, headers) = bob
        .post(
            &format!("{run_page}/approve"),
            &[("comment", "go ahead")],
            None,
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location(&headers), run_page);
    let page = alice.wait_status(&run_page, "succeeded").await;
    assert!(page.contains("go ahead"), "the approval's comment: {page}");
    assert!(
        !page.contains(">Cancel run<") && !page.contains(">Retry<"),
        "{page}"
    );

    // A long run can be cancelled from its page, then retried.
    let entity = "component:default/payments-service";
    let (_, _, headers) = alice
        .post(
            "/actions/test-action",
            &[
                ("/entity", entity),
                ("/input/mode", "sleep"),
                ("/input/ms", "60000"),
            ],
            None,
        )
        .await;
    let run_page = location(&headers);
    let (status, _, _) = alice.post(&format!("{run_page}/cancel"), &[], None).await;
    assert_eq!(status, 303);
    let page = alice.wait_status(&run_page, "cancelled").await;
    assert!(page.contains(">Retry<"), "{page}");
    let (status, _, _) = alice.post(&format!("{run_page}/retry"), &[], None).await;
    assert_eq!(status, 303);
    let (_, page, _) = alice.get(&run_page).await;
    assert!(page.contains("attempt 2"), "{page}");
    server.stop().await;
}
