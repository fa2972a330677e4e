//! The template plugins through the real host: `service-template` in each
//! language, `plugin-template` for each role (down to building the plugins
//! it scaffolds and loading them), and what each mode of the
//! `hostile-template` fixture returns. The host's refusal of unsafe output
//! is the scaffolder's business and tested there; these tests call
//! `Plugin::generate` directly and look at the raw output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portolan_e2e::{component, root, TestServer};
use portolan_runtime::model::{ActionInvocation, GeneratedFile, GeneratorOutput};
use portolan_runtime::{CallError, CallReport, Plugin, Sidecar};
use portolan_store::Role;
use serde_json::{json, Value};

/// Installs `component` as `id` (with `sidecar`, if any) and waits until it
/// is ready; returns its `GET /api/v1/plugins/{id}` body.
async fn install(
    server: &TestServer,
    token: &str,
    component: &Path,
    id: &str,
    sidecar: Option<&str>,
) -> Value {
    if let Some(text) = sidecar {
        server.write_sidecar(id, text);
    }
    server.install(component, id);
    let (_, body) = server
        .wait_plugin(id, token, Duration::from_secs(20), |_, b| {
            b["status"] == "ready" || b["status"] == "failed"
        })
        .await
        .unwrap_or_else(|| panic!("{id} was never listed"));
    assert_eq!(body["status"], "ready", "{id}: {body}");
    body
}

async fn generate(plugin: &Arc<Plugin>, parameters: Value) -> CallReport<GeneratorOutput> {
    let plugin = plugin.clone();
    tokio::task::spawn_blocking(move || plugin.generate(&parameters))
        .await
        .unwrap()
}

/// The output of a call that must succeed.
async fn generated(plugin: &Arc<Plugin>, parameters: Value) -> GeneratorOutput {
    let report = generate(plugin, parameters.clone()).await;
    report
        .result
        .unwrap_or_else(|e| panic!("generate({parameters}) failed: {e}"))
}

fn paths(output: &GeneratorOutput) -> Vec<&str> {
    let mut paths: Vec<&str> = output.files.iter().map(|f| f.path.as_str()).collect();
    paths.sort();
    paths
}

fn file<'o>(output: &'o GeneratorOutput, path: &str) -> &'o GeneratedFile {
    output
        .files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path} in {:?}", paths(output)))
}

fn text<'o>(output: &'o GeneratorOutput, path: &str) -> &'o str {
    std::str::from_utf8(&file(output, path).content)
        .unwrap_or_else(|e| panic!("{path} is not UTF-8: {e}"))
}

fn yaml(output: &GeneratorOutput, path: &str) -> Value {
    serde_norway::from_str(text(output, path))
        .unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}\n{}", text(output, path)))
}

/// The files that are executable.
fn executables(output: &GeneratorOutput) -> Vec<&str> {
    let mut paths: Vec<&str> = output
        .files
        .iter()
        .filter(|f| f.executable)
        .map(|f| f.path.as_str())
        .collect();
    paths.sort();
    paths
}

/// The property names of each page of a multi-page parameters schema,
/// sorted (the API does not keep the order of keys).
fn pages(schema: &Value) -> Vec<Vec<&str>> {
    schema
        .as_array()
        .unwrap_or_else(|| panic!("not a multi-page schema: {schema}"))
        .iter()
        .map(|page| {
            assert_eq!(page["type"], "object", "{page}");
            let mut keys: Vec<&str> = page["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort();
            keys
        })
        .collect()
}

/// The descriptor of `catalog-info.yaml` must be the returned entity: same
/// kind, name, description, tags, annotations and spec.
fn assert_entity_is_catalog_info(output: &GeneratorOutput) {
    let descriptor = yaml(output, "catalog-info.yaml");
    let entity = output.entity.as_ref().expect("an entity");
    let entity = serde_json::to_value(entity).unwrap();
    assert_eq!(descriptor["apiVersion"], entity["apiVersion"]);
    assert_eq!(descriptor["kind"], entity["kind"]);
    for key in ["name", "description", "tags", "annotations", "links"] {
        assert_eq!(
            descriptor["metadata"][key], entity["metadata"][key],
            "metadata.{key}"
        );
    }
    assert_eq!(descriptor["spec"], entity["spec"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_template_describes_a_two_page_form() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    let body = install(
        &server,
        &token,
        &component("service-template"),
        "service-template",
        None,
    )
    .await;
    assert_eq!(body["role"], "scaffold-generator");
    assert_eq!(body["contract"], "0.4.0");
    assert_eq!(body["version"], "0.2.0");
    let schema = &body["describe"]["parametersSchema"];
    assert_eq!(
        pages(schema),
        [
            vec!["description", "name", "owner", "system"],
            vec!["language", "lifecycle", "repo"]
        ]
    );
    assert_eq!(schema[0]["required"], json!(["name", "owner"]));
    assert_eq!(
        schema[1]["properties"]["language"]["enum"],
        json!(["rust", "go", "python", "typescript"])
    );
    assert_eq!(
        schema[1]["properties"]["lifecycle"]["enum"],
        json!(["experimental", "production", "deprecated"])
    );
    assert_eq!(
        body["describe"]["tags"],
        json!(["service", "rust", "go", "python", "typescript"])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_template_renders_each_language() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    install(&server, &token, &component("service-template"), "svc", None).await;
    let plugin = server.state.registry.plugin("svc").unwrap();

    // (language, its own files, a command CI runs)
    let languages: [(&str, &[&str], &str); 4] = [
        (
            "rust",
            &[".gitignore", "Cargo.toml", "src/main.rs"],
            "cargo test",
        ),
        (
            "go",
            &[
                ".gitignore",
                "cmd/billing-api/main.go",
                "cmd/billing-api/main_test.go",
                "go.mod",
            ],
            "go test ./...",
        ),
        (
            "python",
            &[
                ".gitignore",
                "pyproject.toml",
                "src/billing_api/__init__.py",
                "src/billing_api/__main__.py",
                "tests/test_health.py",
            ],
            "python -m unittest discover -s tests",
        ),
        (
            "typescript",
            &[
                ".gitignore",
                "package.json",
                "src/health.test.ts",
                "src/health.ts",
                "src/index.ts",
                "tsconfig.json",
            ],
            "npm test",
        ),
    ];
    for (language, own, ci_command) in languages {
        let output = generated(
            &plugin,
            json!({
                "name": "billing-api",
                "description": "Bills customers: \"monthly\", and on demand.",
                "owner": "group:default/payments",
                "system": "billing",
                "language": language,
                "lifecycle": "production",
                "repo": "acme/billing-api"
            }),
        )
        .await;

        let mut expected = vec![
            ".github/workflows/ci.yml",
            "Dockerfile",
            "README.md",
            "catalog-info.yaml",
            "scripts/smoke-test.sh",
        ];
        expected.extend(own);
        expected.sort();
        assert_eq!(paths(&output), expected, "{language}");
        assert_eq!(
            executables(&output),
            ["scripts/smoke-test.sh"],
            "{language}"
        );
        assert!(text(&output, "scripts/smoke-test.sh").starts_with("#!/bin/sh\n"));

        // catalog-info.yaml: a Backstage Component with everything the form said.
        let descriptor = yaml(&output, "catalog-info.yaml");
        assert_eq!(
            descriptor,
            json!({
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Component",
                "metadata": {
                    "name": "billing-api",
                    "description": "Bills customers: \"monthly\", and on demand.",
                    "tags": [language],
                    "annotations": {"github.com/project-slug": "acme/billing-api"},
                    "links": [{"url": "https://github.com/acme/billing-api", "title": "Repository"}]
                },
                "spec": {
                    "type": "service",
                    "lifecycle": "production",
                    "owner": "group:default/payments",
                    "system": "billing"
                }
            }),
            "{language}"
        );
        assert_entity_is_catalog_info(&output);
        let entity = output.entity.as_ref().unwrap();
        assert_eq!(entity.metadata.name, "billing-api");
        assert_eq!(entity.metadata.namespace, "default");

        // CI: valid YAML, a test job running the language's tests, then the image.
        let ci = yaml(&output, ".github/workflows/ci.yml");
        let runs: Vec<&str> = ci["jobs"]["test"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect();
        assert!(runs.contains(&ci_command), "{language}: {runs:?}");
        assert_eq!(ci["jobs"]["image"]["needs"], "test", "{language}");
        let image_runs = ci["jobs"]["image"]["steps"].to_string();
        assert!(
            image_runs.contains("docker build -t billing-api:ci .")
                && image_runs.contains("scripts/smoke-test.sh"),
            "{language}: {image_runs}"
        );
        assert!(
            text(&output, "Dockerfile").starts_with("FROM "),
            "{language}"
        );
        assert!(
            text(&output, "Dockerfile").contains("EXPOSE 8080"),
            "{language}"
        );

        let readme = text(&output, "README.md");
        assert!(
            readme.starts_with("# billing-api\n\nBills customers"),
            "{readme}"
        );
        assert!(readme.contains("| system | `billing` |"), "{readme}");
        assert!(
            readme.contains("[acme/billing-api](https://github.com/acme/billing-api)"),
            "{readme}"
        );

        assert_eq!(output.links.len(), 1);
        assert_eq!(output.links[0].url, "https://github.com/acme/billing-api");
        assert!(
            output.messages[0].contains("billing-api")
                && output.messages[1].contains("acme/billing-api"),
            "{:?}",
            output.messages
        );
    }

    // Key contents of each build manifest and source.
    let manifest = |language: &'static str| {
        let plugin = plugin.clone();
        async move {
            generated(
                &plugin,
                json!({"name": "billing-api", "owner": "payments", "language": language, "repo": "acme/billing-api"}),
            )
            .await
        }
    };
    let rust = manifest("rust").await;
    assert!(text(&rust, "Cargo.toml").contains("name = \"billing-api\""));
    assert!(text(&rust, "src/main.rs").contains("println!(\"billing-api listening on :{port}\");"));
    assert!(text(&rust, "Dockerfile").contains("/src/target/release/billing-api"));
    let go = manifest("go").await;
    assert!(text(&go, "go.mod").starts_with("module github.com/acme/billing-api\n"));
    assert!(text(&go, "cmd/billing-api/main.go").contains("mux.HandleFunc(\"/health\", health)"));
    assert!(text(&go, "Dockerfile").contains("go build -o /out/billing-api ./cmd/billing-api"));
    let python = manifest("python").await;
    assert!(text(&python, "pyproject.toml").contains("billing-api = \"billing_api.__main__:main\""));
    assert!(text(&python, "tests/test_health.py").contains("from billing_api import route"));
    let typescript = manifest("typescript").await;
    let package: Value = serde_json::from_str(text(&typescript, "package.json")).unwrap();
    assert_eq!(package["name"], "billing-api");
    assert_eq!(package["description"], "A new service.");
    assert!(package["scripts"]["test"]
        .as_str()
        .unwrap()
        .contains("node --test"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_template_keeps_its_old_parameters_and_refuses_bad_ones() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    install(&server, &token, &component("service-template"), "svc", None).await;
    let plugin = server.state.registry.plugin("svc").unwrap();

    // The parameters of 0.1.0 alone: language defaults to rust, lifecycle to
    // experimental; no system, no annotations, no links.
    let output = generated(
        &plugin,
        json!({"name": "billing", "owner": "payments", "description": "Bills."}),
    )
    .await;
    assert!(paths(&output).contains(&"Cargo.toml"));
    let entity = output.entity.as_ref().unwrap();
    assert_eq!(entity.kind, "Component");
    assert_eq!(entity.metadata.description.as_deref(), Some("Bills."));
    assert_eq!(entity.metadata.tags, ["rust"]);
    assert!(entity.metadata.annotations.is_empty());
    assert_eq!(
        entity.spec,
        json!({"type": "service", "lifecycle": "experimental", "owner": "payments"})
    );
    assert_entity_is_catalog_info(&output);
    assert!(output.links.is_empty());
    let report = generate(&plugin, json!({"name": "billing", "owner": "payments"})).await;
    let logs: Vec<&str> = report.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logs, ["generated 8 files for billing (rust)"]);

    for (parameters, field) in [
        (json!({"name": "B", "owner": "payments"}), "/name"),
        (
            json!({"name": "billing", "owner": "payments", "language": "cobol"}),
            "/language",
        ),
        (
            json!({"name": "billing", "owner": "payments", "repo": "nope"}),
            "/repo",
        ),
        (
            json!({"name": "billing", "owner": "payments", "colour": "blue"}),
            "/colour",
        ),
    ] {
        match generate(&plugin, parameters.clone()).await.result {
            Err(CallError::Plugin { code, field: f, .. }) => {
                assert_eq!(code, "invalid-parameter", "{parameters}");
                assert_eq!(f.as_deref(), Some(field), "{parameters}");
            }
            other => panic!("{parameters}: expected invalid-parameter, got {other:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_template_scaffolds_each_role() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    let body = install(
        &server,
        &token,
        &component("plugin-template"),
        "plugin-template",
        None,
    )
    .await;
    assert_eq!(body["role"], "scaffold-generator");
    let schema = &body["describe"]["parametersSchema"];
    assert_eq!(
        pages(schema),
        [
            vec!["description", "name", "owner", "system"],
            vec!["language", "repo", "role", "sdk", "sdk_location"]
        ]
    );
    assert_eq!(
        schema[1]["properties"]["role"]["enum"],
        json!([
            "catalog-source",
            "scaffold-generator",
            "action",
            "scorecard-check"
        ])
    );
    assert_eq!(schema[1]["required"], json!(["role"]));
    let plugin = server.state.registry.plugin("plugin-template").unwrap();
    let policy = server.state.registry.runtime().config().limits;

    for (role, role_trait) in [
        ("catalog-source", "CatalogSource"),
        ("scaffold-generator", "ScaffoldGenerator"),
        ("action", "Action"),
        ("scorecard-check", "ScorecardCheck"),
    ] {
        let output = generated(
            &plugin,
            json!({
                "name": "cost-check",
                "description": "Flags services that cost too much.",
                "owner": "platform",
                "system": "developer-portal",
                "role": role,
                "repo": "acme/cost-check"
            }),
        )
        .await;
        assert_eq!(
            paths(&output),
            [
                ".cargo/config.toml",
                ".gitignore",
                "Cargo.toml",
                "README.md",
                "catalog-info.yaml",
                "cost-check.toml",
                "rust-toolchain.toml",
                "src/lib.rs"
            ],
            "{role}"
        );
        assert!(executables(&output).is_empty(), "{role}");

        let lib = text(&output, "src/lib.rs");
        assert!(
            lib.contains(&format!("impl {role_trait} for CostCheck {{")),
            "{role}"
        );
        assert!(
            lib.contains(&format!(
                "portolan_sdk::export!({role_trait} for CostCheck);"
            )),
            "{role}"
        );
        assert!(
            lib.contains("about!(\"Cost Check\", \"Flags services that cost too much.\")"),
            "{role}"
        );

        let cargo = text(&output, "Cargo.toml");
        assert!(cargo.contains("name = \"cost-check\""), "{cargo}");
        assert!(cargo.contains("crate-type = [\"cdylib\"]"), "{cargo}");
        assert!(cargo.contains("\n[workspace]\n"), "standalone: {cargo}");
        assert!(
            cargo.contains("portolan-sdk = { git = \"https://example.invalid/portolan\" }"),
            "{cargo}"
        );
        assert!(text(&output, "rust-toolchain.toml").contains("channel = \"debweb\""));
        let config = text(&output, ".cargo/config.toml");
        assert!(config.contains("target = \"wasm32-wasip2\""), "{config}");
        assert!(
            config.contains("build-std = [\"std\", \"panic_abort\"]"),
            "{config}"
        );

        // The sidecar is one the portal accepts as it is.
        let sidecar_path = server.dir.path().join(format!("{role}.toml"));
        std::fs::write(&sidecar_path, text(&output, "cost-check.toml")).unwrap();
        let sidecar = Sidecar::read(&sidecar_path)
            .unwrap_or_else(|e| panic!("{role}: {e}"))
            .expect("a sidecar");
        let grants = sidecar
            .resolve(server.dir.path(), &policy)
            .unwrap_or_else(|e| panic!("{role}: the generated sidecar does not load: {e}"));
        assert_eq!(grants.limits.timeout_ms, 10_000, "{role}");
        assert_eq!(
            grants.schedule.is_some(),
            role == "catalog-source",
            "{role}"
        );
        if role == "catalog-source" {
            assert_eq!(
                grants.settings,
                json!({"names": "example-service", "owner": "platform"})
            );
        }

        let readme = text(&output, "README.md");
        for needle in [
            format!("**{role}**"),
            "cargo build --release".to_owned(),
            "cargo +stable test --target x86_64-unknown-linux-gnu".to_owned(),
            "target/wasm32-wasip2/release/cost_check.wasm".to_owned(),
            "## The SDK dependency".to_owned(),
            "**git** dependency".to_owned(),
        ] {
            assert!(
                readme.contains(&needle),
                "{role}: no {needle:?} in the README"
            );
        }

        let descriptor = yaml(&output, "catalog-info.yaml");
        assert_eq!(descriptor["kind"], "Component");
        assert_eq!(descriptor["spec"]["type"], "portolan-plugin");
        assert_eq!(descriptor["spec"]["owner"], "platform");
        assert_eq!(descriptor["spec"]["system"], "developer-portal");
        assert_eq!(
            descriptor["metadata"]["tags"],
            json!(["portolan-plugin", role, "rust"])
        );
        assert_eq!(
            descriptor["metadata"]["annotations"]["github.com/project-slug"],
            "acme/cost-check"
        );
        assert_entity_is_catalog_info(&output);
        assert_eq!(output.links[0].url, "https://github.com/acme/cost-check");
        assert!(
            output.messages[1].contains("cost-check.wasm"),
            "{:?}",
            output.messages
        );
    }

    // A path dependency on a checkout.
    let output = generated(
        &plugin,
        json!({"name": "cost-check", "owner": "platform", "role": "action", "sdk": "path"}),
    )
    .await;
    assert!(
        text(&output, "Cargo.toml").contains("portolan-sdk = { path = \"../portolan/sdk/rust\" }")
    );
    assert!(text(&output, "README.md").contains("**path** dependency"));
    server.stop().await;
}

/// Builds the project in `dir` with the guest toolchain, as its README says,
/// sharing the target folder of `scripts/build-plugins.sh` so that std,
/// rebuilt from source for wasm32-wasip2, is built once. Returns the
/// component.
fn build_generated(dir: &Path, crate_name: &str) -> PathBuf {
    // The SDK's own lock file pins the versions the SDK was tested with (the
    // build only adds the new crate to it).
    std::fs::copy(root().join("sdk/rust/Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = root().join("target/guest");
    let mut command = std::process::Command::new("cargo");
    command
        .args(["+debweb", "build", "--release", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target);
    // As in build-plugins.sh: the test's own toolchain settings must not leak in.
    for var in [
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_MAKEFLAGS",
    ] {
        command.env_remove(var);
    }
    let out = command.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "building the generated {crate_name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join(format!("wasm32-wasip2/release/{crate_name}.wasm"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_scaffolded_by_plugin_template_build_load_and_run() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    install(
        &server,
        &token,
        &component("plugin-template"),
        "plugin-template",
        None,
    )
    .await;
    let template = server.state.registry.plugin("plugin-template").unwrap();
    let sdk = root().join("sdk/rust");
    let projects = tempfile::tempdir().unwrap();

    for role in [
        "catalog-source",
        "scaffold-generator",
        "action",
        "scorecard-check",
    ] {
        // One crate name per role: they share a target folder.
        let name = format!("scaffolded-{role}");
        let output = generated(
            &template,
            json!({
                "name": name,
                "owner": "platform",
                "role": role,
                "sdk": "path",
                "sdk_location": sdk.to_str().unwrap()
            }),
        )
        .await;
        let dir = projects.path().join(&name);
        for f in &output.files {
            let path = dir.join(&f.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &f.content).unwrap();
        }
        let wasm = {
            let dir = dir.clone();
            let crate_name = name.replace('-', "_");
            tokio::task::spawn_blocking(move || build_generated(&dir, &crate_name))
                .await
                .unwrap()
        };
        // Its own sidecar, as the README says to install it.
        let sidecar = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
        let body = install(&server, &token, &wasm, &name, Some(&sidecar)).await;
        assert_eq!(body["role"], role, "{body}");
        assert_eq!(body["contract"], "0.4.0", "{body}");
    }

    // The skeletons do what their READMEs say.
    let check = server
        .state
        .registry
        .plugin("scaffolded-scorecard-check")
        .unwrap();
    let report = tokio::task::spawn_blocking(move || {
        check.evaluate(
            "scaffolded-scorecard-check",
            &json!({"min_length": 5}),
            &[portolan_e2e::entity("svc")],
        )
    })
    .await
    .unwrap();
    // The test entity's description is "a test service".
    let outcomes = report.result.expect("the check answers");
    assert_eq!(
        outcomes[0].status,
        portolan_runtime::model::CheckStatus::Pass
    );

    let generator = server
        .state
        .registry
        .plugin("scaffolded-scaffold-generator")
        .unwrap();
    let output = generated(&generator, json!({"name": "billing", "owner": "team-a"})).await;
    assert_eq!(paths(&output), ["README.md", "catalog-info.yaml"]);
    assert_entity_is_catalog_info(&output);

    let source = server
        .state
        .registry
        .plugin("scaffolded-catalog-source")
        .unwrap();
    let page = tokio::task::spawn_blocking(move || source.sync(None))
        .await
        .unwrap()
        .result
        .expect("the source syncs");
    let names: Vec<&str> = page
        .entities
        .iter()
        .map(|e| e.metadata.name.as_str())
        .collect();
    assert_eq!(names, ["example-service"]);
    assert_eq!(page.entities[0].spec["owner"], "platform");

    let action = server.state.registry.plugin("scaffolded-action").unwrap();
    let invocation = ActionInvocation {
        run_id: "run-1".into(),
        actor: "alice".into(),
        attempt: 1,
        input: json!({"message": "hello"}),
        entity: Some(portolan_e2e::entity("svc")),
    };
    let report = tokio::task::spawn_blocking(move || action.run_action(&invocation))
        .await
        .unwrap();
    let logs: Vec<&str> = report.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logs, ["run run-1 (attempt 1) by alice: \"hello\""]);
    assert_eq!(
        report.result.expect("the action runs").output,
        json!({"message": "hello", "entity": "Component:default/svc"})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_template_returns_what_each_mode_asks() {
    let server = TestServer::start(Default::default()).await;
    let token = server.token(Role::Viewer).await;
    // Room for the 64 MiB file and the 100,000 files.
    let body = install(
        &server,
        &token,
        &component("hostile-template"),
        "hostile-template",
        Some("[limits]\ntimeout_ms = 60000\nmemory_mb = 512\n"),
    )
    .await;
    assert_eq!(body["role"], "scaffold-generator");
    assert_eq!(body["contract"], "0.4.0");
    assert_eq!(
        body["describe"]["parametersSchema"]["properties"]["token"],
        json!({"type": "string", "format": "password"})
    );
    let plugin = server.state.registry.plugin("hostile-template").unwrap();
    let run = |mode: &str| {
        let plugin = plugin.clone();
        let parameters = json!({"mode": mode});
        async move { generated(&plugin, parameters).await }
    };

    let output = run("escape").await;
    assert_eq!(paths(&output), ["../outside.txt", "ok.txt"]);
    assert_eq!(text(&output, "../outside.txt"), "outside\n");
    assert_eq!(paths(&run("absolute").await), ["/etc/evil"]);
    assert_eq!(paths(&run("backslash").await), ["a\\..\\..\\b"]);

    let output = run("huge").await;
    assert_eq!(paths(&output), ["huge.bin"]);
    assert_eq!(file(&output, "huge.bin").content.len(), 64 * 1024 * 1024);

    let output = run("many").await;
    assert_eq!(output.files.len(), 100_000);
    assert_eq!(output.files[0].path, "many/000000.txt");
    assert_eq!(output.files[99_999].path, "many/099999.txt");
    assert_eq!(output.files[99_999].content, b"99999\n");

    let output = run("duplicate").await;
    assert_eq!(paths(&output), ["same.txt", "same.txt"]);
    let contents: Vec<&[u8]> = output.files.iter().map(|f| f.content.as_slice()).collect();
    assert_eq!(contents, [b"first\n".as_slice(), b"second\n".as_slice()]);

    match generate(&plugin, json!({"mode": "trap"})).await.result {
        Err(CallError::Trap { message }) => {
            assert!(message.contains("told to trap"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }

    let report = generate(
        &plugin,
        json!({"mode": "ok", "name": "svc-one", "token": "s3cret-value"}),
    )
    .await;
    let output = report.result.expect("ok mode works");
    assert_eq!(paths(&output), ["README.md", "bin/run.sh"]);
    assert_eq!(text(&output, "README.md"), "hello svc-one");
    assert_eq!(executables(&output), ["bin/run.sh"]);
    let entity = output.entity.as_ref().unwrap();
    assert_eq!(
        (entity.kind.as_str(), entity.metadata.name.as_str()),
        ("Component", "svc-one")
    );
    assert_eq!(entity.spec["owner"], "team-a");
    // The raw call carries the secret; redacting it is the scaffolder's job.
    assert!(output.messages.iter().any(|m| m == "token is s3cret-value"));
    assert!(report
        .logs
        .iter()
        .any(|l| l.message == "token is s3cret-value"));

    // Without a token, no mention of one.
    let report = generate(&plugin, json!({"mode": "ok", "name": "svc-two"})).await;
    assert!(report.logs.is_empty(), "{:?}", report.logs);
    assert_eq!(report.result.unwrap().messages, ["created svc-two"]);
    server.stop().await;
}
