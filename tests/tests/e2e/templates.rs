//! The scaffolder end to end: the real host, the shipped `service-template`
//! plugin, the HTTP API. Listing, forms, refusals, dry runs that write
//! nothing, runs that publish to a directory or to a new git repository
//! (checked by cloning the bare remote) and register the new project in the
//! catalog.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use portolan_e2e::{component, Options, TestServer};
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::{json, Value};

async fn install(server: &TestServer, token: &str, sidecar: &str) {
    server.write_sidecar("service-template", sidecar);
    server.install(&component("service-template"), "service-template");
    server
        .wait_plugin(
            "service-template",
            token,
            Duration::from_secs(60),
            |s, b| s == 200 && b["status"] == "ready",
        )
        .await
        .unwrap_or_else(|| panic!("service-template never became ready"));
}

async fn wait_run(server: &TestServer, token: &str, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, run) = server.get(&format!("/api/v1/runs/{id}"), token).await;
        assert_eq!(status, 200, "{run}");
        if matches!(
            run["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "run {id} still {}",
            run["status"]
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn params(name: &str) -> Value {
    json!({"name": name, "owner": "team-a", "description": "Bills customers.", "language": "rust"})
}

fn fields(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| x["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(
                    entry
                        .path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_dry_run_then_publish_to_a_directory_and_register() {
    let server = TestServer::start(Options::default()).await;
    let admin = server.token_for(Role::Admin, "root").await;
    let alice = server.token_for(Role::Member, "alice").await;
    let viewer = server.token_for(Role::Viewer, "val").await;
    let workspace = server.dir.path().join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    // A step after publishing: an action on the new entity, its input
    // filled from the parameters and the publish output.
    server.install(&component("test-action"), "test-action");
    server
        .wait_plugin("test-action", &admin, Duration::from_secs(60), |s, b| {
            s == 200 && b["status"] == "ready"
        })
        .await
        .unwrap();
    let sidecar = format!(
        r#"[scaffold]
target = "directory"
root = "{}"

[[scaffold.steps]]
id = "announce"
action = "test-action"
on_entity = true
input = {{ mode = "ok", note = "created ${{{{ parameters.name }}}} in ${{{{ output.target.path }}}}" }}
"#,
        workspace.display()
    );
    install(&server, &admin, &sidecar).await;

    let (status, list) = server.get("/api/v1/templates", &viewer).await;
    assert_eq!(status, 200);
    let t = &list["items"][0];
    assert_eq!(t["id"], "service-template");
    assert_eq!(t["target"]["kind"], "directory");
    assert!(t["parametersSchema"].is_object() || t["parametersSchema"].is_array());
    let (status, _) = server.get("/api/v1/templates/nope", &viewer).await;
    assert_eq!(status, 404);

    // Refusals name each field; nothing runs.
    let path = "/api/v1/templates/service-template/runs";
    let (status, _) = server
        .post(
            path,
            &viewer,
            Some(&json!({"parameters": params("billing")})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = server
        .post(path, &alice, Some(&json!({"parameters": {"name": "Not A Name", "owner": "team-a", "language": "cobol"}})))
        .await;
    assert_eq!(status, 422, "{body}");
    let f = fields(&body);
    assert!(
        f.contains(&"/parameters/name".to_owned())
            && f.contains(&"/parameters/language".to_owned()),
        "{body}"
    );
    let (status, body) = server
        .post(path, &alice, Some(&json!({"parameters": {}})))
        .await;
    assert_eq!(status, 422);
    assert!(body.to_string().contains("name"), "{body}");

    // A dry run shows the files and writes nothing.
    let (status, dry) = server
        .post(
            path,
            &alice,
            Some(&json!({"parameters": params("billing"), "dryRun": true})),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dryRun"], true);
    let paths: Vec<&str> = dry["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"catalog-info.yaml") && paths.contains(&"README.md"),
        "{paths:?}"
    );
    let catalog_info = dry["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "catalog-info.yaml")
        .unwrap();
    assert!(catalog_info["content"]
        .as_str()
        .unwrap()
        .contains("billing"));
    assert_eq!(dry["entity"]["metadata"]["name"], "billing");
    assert!(files_under(&workspace).is_empty(), "a dry run wrote files");
    let (_, runs) = server.get("/api/v1/runs?kind=template", &alice).await;
    assert_eq!(runs["items"], json!([]));
    let (status, _) = server
        .get("/api/v1/entities/component/default/billing", &alice)
        .await;
    assert_eq!(status, 404, "a dry run registers nothing");

    // The real run publishes the same files and registers the entity.
    let (status, run) = server
        .post(
            path,
            &alice,
            Some(&json!({"parameters": params("billing")})),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    assert_eq!(run["kind"], "template");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = wait_run(&server, &alice, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["target"]["kind"], "directory");
    assert_eq!(run["output"]["entity"], "component:default/billing");
    let written = files_under(&workspace.join("billing"));
    let mut expected: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    expected.sort();
    assert_eq!(written, expected);
    let on_disk = std::fs::read_to_string(workspace.join("billing/catalog-info.yaml")).unwrap();
    assert_eq!(on_disk, catalog_info["content"].as_str().unwrap());
    let (status, entity) = server
        .get("/api/v1/entities/component/default/billing", &alice)
        .await;
    assert_eq!(status, 200, "{entity}");
    assert_eq!(entity["spec"]["owner"], "team-a");
    let (_, logs) = server.get(&format!("/api/v1/runs/{id}/logs"), &alice).await;
    let log = logs.to_string();
    for step in [
        "started on",
        "generated",
        "writing",
        "registered component:default/billing",
        "run succeeded",
    ] {
        assert!(log.contains(step), "no {step:?} in {log}");
    }
    // The step ran on the new entity with its input filled in.
    let step = &run["output"]["steps"]["announce"]["output"];
    assert_eq!(
        step["input"]["note"],
        format!("created billing in {}", workspace.join("billing").display()),
        "{run}"
    );
    assert_eq!(step["runId"], format!("{id}.announce"));
    assert!(step["entity"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case("component:default/billing"));
    assert!(run["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["url"] == format!("https://example.invalid/runs/{id}.announce")));
    for step_line in [
        "step announce: running action test-action".to_owned(),
        format!("hello from run {id}.announce attempt 1"),
        "step announce succeeded".to_owned(),
    ] {
        assert!(log.contains(&step_line), "no {step_line:?} in {log}");
    }
    let (_, audit) = server
        .get("/api/v1/audit?action=template.run", &admin)
        .await;
    assert_eq!(audit["items"][0]["detail"]["template"], "service-template");

    // The same name again: refused before anything is written.
    let (_, again) = server
        .post(
            path,
            &alice,
            Some(&json!({"parameters": params("billing")})),
        )
        .await;
    let again = wait_run(&server, &alice, again["id"].as_str().unwrap()).await;
    assert_eq!(again["status"], "failed");
    assert_eq!(again["error"]["code"], "conflict", "{again}");
    assert_eq!(files_under(&workspace.join("billing")), expected);

    // A template run cannot be retried: it is started again instead.
    let (status, _) = server
        .post(
            &format!("/api/v1/runs/{}/retry", again["id"].as_str().unwrap()),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 409);
    server.stop().await;
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_runs_push_a_new_git_repository_on_postgres() {
    let db = TestDatabase::postgres().await;
    let server = TestServer::start(Options {
        database_url: Some(db.url.clone()),
        ..Default::default()
    })
    .await;
    let admin = server.token_for(Role::Admin, "root").await;
    let alice = server.token_for(Role::Member, "alice").await;
    let remotes = server.dir.path().join("remotes");
    std::fs::create_dir_all(&remotes).unwrap();
    git(&remotes, &["init", "-q", "--bare", "payments-api.git"]);
    install(
        &server,
        &admin,
        &format!(
            "[scaffold]\ntarget = \"git\"\nremote = \"{}/{{name}}.git\"\nbranch = \"main\"\n\
             author_name = \"Portolan Bot\"\nauthor_email = \"bot@example.com\"\n",
            remotes.display()
        ),
    )
    .await;
    let (status, run) = server
        .post(
            "/api/v1/templates/service-template/runs",
            &alice,
            Some(&json!({"parameters": params("payments-api")})),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let run = wait_run(&server, &alice, run["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let commit = run["output"]["target"]["commit"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(run["output"]["target"]["branch"], "main");

    let clone = server.dir.path().join("clone");
    git(
        server.dir.path(),
        &[
            "clone",
            "-q",
            "-b",
            "main",
            &remotes.join("payments-api.git").to_string_lossy(),
            "clone",
        ],
    );
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), commit);
    assert_eq!(
        git(&clone, &["log", "-1", "--format=%an <%ae>|%s"]),
        "Portolan Bot <bot@example.com>|Create payments-api from template service-template"
    );
    let tracked = git(&clone, &["ls-files"]);
    assert!(
        tracked.lines().any(|l| l == "catalog-info.yaml"),
        "{tracked}"
    );
    let info = std::fs::read_to_string(clone.join("catalog-info.yaml")).unwrap();
    assert!(info.contains("payments-api"));
    let (status, _) = server
        .get("/api/v1/entities/component/default/payments-api", &alice)
        .await;
    assert_eq!(status, 200, "registered in the catalog");

    // A remote that does not exist fails the run with git's reason, and
    // nothing is registered.
    let (_, run) = server
        .post(
            "/api/v1/templates/service-template/runs",
            &alice,
            Some(&json!({"parameters": params("no-remote")})),
        )
        .await;
    let run = wait_run(&server, &alice, run["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["code"], "publish", "{run}");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("git push failed"),
        "{run}"
    );
    let (status, _) = server
        .get("/api/v1/entities/component/default/no-remote", &alice)
        .await;
    assert_eq!(status, 404);
    server.stop().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_never_leaves_its_template_run_hanging() {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::copy(component("test-action"), plugins.join("test-action.wasm")).unwrap();
    std::fs::write(
        plugins.join("test-action.toml"),
        "[limits]\ntimeout_ms = 120000\n",
    )
    .unwrap();
    std::fs::copy(
        component("service-template"),
        plugins.join("service-template.wasm"),
    )
    .unwrap();
    // The step keeps the run busy long enough to kill its process.
    std::fs::write(
        plugins.join("service-template.toml"),
        format!(
            r#"[scaffold]
target = "directory"
root = "{}"

[[scaffold.steps]]
id = "wait"
action = "test-action"
on_entity = true
input = {{ mode = "sleep", ms = 90000 }}
"#,
            workspace.display()
        ),
    )
    .unwrap();
    let store = portolan_store::Store::connect(&db.url).await.unwrap();
    let member = store
        .create_token(Role::Member, "alice")
        .await
        .unwrap()
        .secret;
    let http = reqwest::Client::new();
    let binary = env!("CARGO_BIN_EXE_portolan-replica");
    let first = portolan_e2e::Replica::start(binary, dir.path(), 0, &db.url);
    first
        .wait_for(&http, "/api/v1/templates/service-template", &member)
        .await;
    first
        .wait_for(&http, "/api/v1/actions/test-action", &member)
        .await;
    let r = http
        .post(format!(
            "{}/api/v1/templates/service-template/runs",
            first.base
        ))
        .bearer_auth(&member)
        .json(&json!({"parameters": params("slow-svc")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    loop {
        let lines = store.run_logs(&id, 0, 100).await.unwrap();
        if lines.iter().any(|l| l.message == "tick 1") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the step never started: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(first);

    // Another process (a restarted portal) finds the run's lease expired
    // and ends it with the reason.
    let second = portolan_e2e::Replica::start(binary, dir.path(), 1, &db.url);
    let killed = Instant::now();
    let run = loop {
        let run = store.run(&id).await.unwrap().unwrap();
        if run.status.is_final() {
            break run;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(90),
            "run {id} left {:?}",
            run.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(run.status, portolan_store::RunStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(error["code"], "interrupted", "{error}");
    drop(second);
    store.close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_templates_write_nothing_and_secret_parameters_are_never_kept() {
    const TOKEN: &str = "tok-SECRET-4e1f9a";
    let server = TestServer::start(Options::default()).await;
    let admin = server.token_for(Role::Admin, "root").await;
    let alice = server.token_for(Role::Member, "alice").await;
    let outer = server.dir.path().join("outer");
    let workspace = outer.join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    server.write_sidecar(
        "hostile",
        &format!(
            "[limits]\nmemory_mb = 256\ntimeout_ms = 30000\n[scaffold]\ntarget = \"directory\"\nroot = \"{}\"\n",
            workspace.display()
        ),
    );
    server.install(&component("hostile-template"), "hostile");
    server
        .wait_plugin("hostile", &admin, Duration::from_secs(60), |s, b| {
            s == 200 && b["status"] == "ready"
        })
        .await
        .expect("hostile-template loads");
    let path = "/api/v1/templates/hostile/runs";

    for (mode, why) in [
        ("escape", "climbs out"),
        ("absolute", "is absolute"),
        ("backslash", "backslash"),
        ("huge", "bytes"),
        ("many", "files"),
        ("duplicate", "twice"),
        ("trap", "trap"),
    ] {
        let parameters = json!({"mode": mode, "name": format!("x-{mode}")});
        let (status, dry) = server
            .post(
                path,
                &alice,
                Some(&json!({"parameters": parameters, "dryRun": true})),
            )
            .await;
        assert!(
            status == 409 || status == 422,
            "{mode}: dry run answered {status}: {dry}"
        );
        let (status, run) = server
            .post(path, &alice, Some(&json!({"parameters": parameters})))
            .await;
        assert_eq!(status, 202, "{mode}: {run}");
        let run = wait_run(&server, &alice, run["id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "failed", "{mode}: {run}");
        let message = run["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(why) || (mode == "huge" && run["error"]["code"] == "memory-limit"),
            "{mode}: {message}"
        );
    }
    assert!(
        files_under(&outer).is_empty(),
        "a hostile template wrote {:?}",
        files_under(&outer)
    );

    // A secret parameter reaches the plugin, which echoes it; the host
    // masks it in the log, the messages, the run and the audit trail, and
    // stores it nowhere.
    let parameters = json!({"mode": "ok", "name": "hello-svc", "token": TOKEN});
    let (status, dry) = server
        .post(
            path,
            &alice,
            Some(&json!({"parameters": parameters, "dryRun": true})),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    let (status, run) = server
        .post(path, &alice, Some(&json!({"parameters": parameters})))
        .await;
    assert_eq!(status, 202, "{run}");
    assert_eq!(run["input"]["token"], "[secret]");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = wait_run(&server, &alice, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let script = workspace.join("hello-svc/bin/run.sh");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("hello-svc/README.md")).unwrap(),
        "hello hello-svc"
    );
    let (status, _) = server
        .get("/api/v1/entities/component/default/hello-svc", &alice)
        .await;
    assert_eq!(status, 200);
    let (_, logs) = server.get(&format!("/api/v1/runs/{id}/logs"), &alice).await;
    assert!(logs.to_string().contains("token is [secret]"), "{logs}");
    let mut seen = dry.to_string();
    for path in [
        format!("/api/v1/runs/{id}"),
        format!("/api/v1/runs/{id}/logs"),
        "/api/v1/runs".to_owned(),
        "/api/v1/audit".to_owned(),
    ] {
        let (status, body) = server.get(&path, &admin).await;
        assert_eq!(status, 200, "{path}");
        seen.push_str(&body.to_string());
    }
    assert!(seen.contains("hello-svc"), "the responses were read");
    assert!(!seen.contains(TOKEN), "the secret parameter in a response");
    let dump = portolan_e2e::dump_sqlite(&server.state.config.database_url).await;
    assert!(dump.contains(&id), "the dump has the run");
    assert!(!dump.contains(TOKEN), "the secret parameter stored");
    server.stop().await;
}

/// A GitHub-shaped API that creates a bare repository under `remotes` for
/// `POST /orgs/{org}/repos` and answers like GitHub does; it keeps every
/// request it got (method, path, authorization, body).
async fn fake_code_host(
    remotes: std::path::PathBuf,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::extract::{Path as UrlPath, State};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let app = axum::Router::new()
        .route(
            "/orgs/{org}/repos",
            axum::routing::post(
                |State((remotes, seen)): State<(
                    std::path::PathBuf,
                    std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
                )>,
                 UrlPath(org): UrlPath<String>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    seen.lock().unwrap().push(json!({
                        "path": format!("/orgs/{org}/repos"),
                        "authorization": headers.get("authorization").and_then(|v| v.to_str().ok()),
                        "body": body,
                    }));
                    let name = body["name"].as_str().unwrap_or("x").to_owned();
                    if remotes.join(format!("{name}.git")).exists() {
                        return (
                            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                            axum::Json(json!({
                                "message": "Repository creation failed.",
                                "errors": [{"resource": "Repository", "code": "custom", "field": "name",
                                            "message": "name already exists on this account"}],
                            })),
                        );
                    }
                    git(&remotes, &["init", "-q", "--bare", &format!("{name}.git")]);
                    (
                        axum::http::StatusCode::CREATED,
                        axum::Json(json!({
                            "full_name": format!("{org}/{name}"),
                            "clone_url": remotes.join(format!("{name}.git")),
                            "html_url": format!("https://code.example/{org}/{name}"),
                            "default_branch": "main",
                        })),
                    )
                },
            ),
        )
        .with_state((remotes, seen.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_creates_the_repository_the_new_project_is_pushed_to() {
    const GITHUB_TOKEN: &str = "ghs_templateTest1234";
    let server = TestServer::start(Options {
        secrets: std::collections::HashMap::from([(
            "GITHUB_TOKEN".to_owned(),
            GITHUB_TOKEN.to_owned(),
        )]),
        ..Default::default()
    })
    .await;
    let admin = server.token_for(Role::Admin, "root").await;
    let alice = server.token_for(Role::Member, "alice").await;
    let remotes = server.dir.path().join("remotes");
    std::fs::create_dir_all(&remotes).unwrap();
    let (port, seen) = fake_code_host(remotes.clone()).await;
    server.write_sidecar(
        "create-repository",
        &format!(
            "secrets = [\"GITHUB_TOKEN\"]\n[http]\nallow = [\"127.0.0.1:{port}\"]\n\
             [settings]\napi_url = \"http://127.0.0.1:{port}\"\ntoken_secret = \"GITHUB_TOKEN\"\n"
        ),
    );
    server.install(&component("create-repository"), "create-repository");
    server
        .wait_plugin(
            "create-repository",
            &admin,
            Duration::from_secs(60),
            |s, b| s == 200 && b["status"] == "ready",
        )
        .await
        .expect("create-repository loads");
    install(
        &server,
        &admin,
        r#"[scaffold]
target = "git"
remote = "${{ steps.repo.output.cloneUrl }}"
author_name = "Portolan Bot"
author_email = "bot@example.com"

[[scaffold.steps]]
id = "repo"
action = "create-repository"
before_publish = true
input = { owner = "acme", name = "${{ name }}", description = "${{ parameters.description }}" }
"#,
    )
    .await;

    let (status, run) = server
        .post(
            "/api/v1/templates/service-template/runs",
            &alice,
            Some(&json!({"parameters": params("inventory")})),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let run = wait_run(&server, &alice, run["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    // The platform saw exactly one request, the one its API expects.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![json!({
            "path": "/orgs/acme/repos",
            "authorization": format!("Bearer {GITHUB_TOKEN}"),
            "body": {"name": "inventory", "description": "Bills customers.", "private": true, "auto_init": false},
        })]
    );
    // The project was pushed to the repository the step created.
    let created = &run["output"]["steps"]["repo"]["output"];
    assert_eq!(created["fullName"], "acme/inventory");
    let remote = remotes.join("inventory.git");
    assert_eq!(run["output"]["target"]["remote"], json!(remote));
    assert_eq!(
        git(&remote, &["rev-parse", "refs/heads/main"]),
        run["output"]["target"]["commit"].as_str().unwrap()
    );
    let tracked = git(&remote, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(
        tracked.lines().any(|l| l == "catalog-info.yaml"),
        "{tracked}"
    );
    assert!(run["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["url"] == "https://code.example/acme/inventory"));
    assert!(!run.to_string().contains(GITHUB_TOKEN));
    let (status, _) = server
        .get("/api/v1/entities/component/default/inventory", &alice)
        .await;
    assert_eq!(status, 200);

    // A failing step fails the run with its reason, before anything is
    // pushed or registered.
    git(&remotes, &["init", "-q", "--bare", "taken.git"]);
    let (_, run) = server
        .post(
            "/api/v1/templates/service-template/runs",
            &alice,
            Some(&json!({"parameters": params("taken")})),
        )
        .await;
    let run = wait_run(&server, &alice, run["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        (&run["error"]["code"], &run["error"]["step"]),
        (&json!("step-failed"), &json!("repo"))
    );
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{run}"
    );
    let (_, logs) = server
        .get(
            &format!("/api/v1/runs/{}/logs", run["id"].as_str().unwrap()),
            &alice,
        )
        .await;
    assert!(
        logs.to_string()
            .contains("step repo: running action create-repository"),
        "{logs}"
    );
    assert_eq!(
        git(&remotes.join("taken.git"), &["branch", "--list"]),
        "",
        "nothing was pushed"
    );
    let (status, _) = server
        .get("/api/v1/entities/component/default/taken", &alice)
        .await;
    assert_eq!(status, 404, "nothing was registered");
    server.stop().await;
}
