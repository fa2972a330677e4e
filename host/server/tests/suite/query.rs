//! The catalog's query API through the router with `oneshot`, on SQLite
//! and on PostgreSQL: `GET /api/v1/entities` with filters, search, sort,
//! cursors and field selection, `GET /api/v1/entities/facets`, the
//! relations graph, and a 400 naming the parameter for every bad one.

use crate::common;

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use portolan::app::AppState;
use portolan_store::testing::TestDatabase;
use portolan_store::Role;
use serde_json::{json, Value};
use tower::ServiceExt;

on_both_backends!(
    filters_on_labels_annotations_and_paths,
    search_ranks_and_combines_with_filters,
    sort_pages_with_cursors,
    fields_select_parts_of_each_entity,
    facets_count_under_the_filters,
    relations_graph_to_a_depth,
    bad_parameters_are_400_naming_the_parameter,
);

struct Ctx {
    state: AppState,
    viewer: String,
}

async fn run<F, Fut>(db: TestDatabase, dir: tempfile::TempDir, scenario: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let config = common::config(dir.path(), db.url.clone());
    let state = portolan::app::build(config).await.unwrap();
    let member = state
        .store
        .create_token(Role::Member, "test")
        .await
        .unwrap()
        .secret;
    let viewer = state
        .store
        .create_token(Role::Viewer, "test")
        .await
        .unwrap()
        .secret;
    let ctx = Ctx {
        state: state.clone(),
        viewer,
    };
    let r = ctx
        .call("POST", "/api/v1/entities/batch", &member, Some(catalog()))
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.2);
    scenario(ctx).await;
    state.store.close().await;
    db.drop_db().await;
}

impl Ctx {
    /// Status, content type and JSON body.
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, String, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&b).unwrap())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = portolan::api::router(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A 200 answer's body.
    async fn ok(&self, uri: &str) -> Value {
        let (status, _, body) = self.call("GET", uri, &self.viewer, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        body
    }

    /// The names on one page of `GET /api/v1/entities?{query}`.
    async fn names(&self, query: &str) -> Vec<String> {
        let body = self.ok(&format!("/api/v1/entities?{query}")).await;
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn sorted_names(&self, query: &str) -> Vec<String> {
        let mut names = self.names(query).await;
        names.sort();
        names
    }

    /// Asserts a 400 problem naming `query.{param}`.
    async fn bad(&self, uri: &str, param: &str) {
        let (status, content_type, body) = self.call("GET", uri, &self.viewer, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(content_type, "application/problem+json", "{uri}");
        assert_eq!(body["field"], format!("query.{param}"), "{uri}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("query.{param}: ")),
            "{uri}: {body}"
        );
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn component(name: &str, spec: Value, metadata: Value) -> Value {
    let mut meta = json!({"name": name});
    meta.as_object_mut()
        .unwrap()
        .extend(metadata.as_object().unwrap().clone());
    let mut full = json!({"type": "service", "lifecycle": "production", "owner": "team-a"});
    full.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
           "metadata": meta, "spec": full})
}

/// Groups, a user, a system, an API, four components and eight fillers.
fn catalog() -> Value {
    let mut out = vec![
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "team-a", "title": "Team A"},
            "spec": {"type": "team", "children": []}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "team-b"}, "spec": {"type": "team", "children": []}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User",
            "metadata": {"name": "jane"},
            "spec": {"profile": {"displayName": "Jane Doe", "email": "jane@example.com"},
                     "memberOf": ["team-a"]}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "System",
            "metadata": {"name": "shop"}, "spec": {"owner": "team-a"}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
            "metadata": {"name": "payments-api", "title": "Payments API"},
            "spec": {"type": "openapi", "lifecycle": "production", "owner": "team-a",
                     "system": "shop", "definition": "{}"}}),
        component(
            "payments-service",
            json!({"system": "shop", "providesApis": ["payments-api"],
                   "dependsOn": ["component:billing"]}),
            json!({"title": "Payments Service", "description": "Moves money",
                   "tags": ["java", "payments"], "labels": {"tier": "gold"},
                   "annotations": {"backstage.io/techdocs-ref": "dir:."}}),
        ),
        component(
            "billing",
            json!({"lifecycle": "experimental", "owner": "team-b", "system": "shop",
                   "dependsOn": ["resource:ledger-db"]}),
            json!({"description": "Sends invoices for payments", "tags": ["go"],
                   "labels": {"tier": "silver"}}),
        ),
        component(
            "web",
            json!({"type": "website", "owner": "team-b", "system": "Shop",
                   "consumesApis": ["payments-api"]}),
            json!({"title": "Storefront", "description": "The web shop",
                   "tags": ["typescript", "frontend"], "labels": {"tier": "gold"}}),
        ),
        component(
            "docs",
            json!({"type": "documentation", "lifecycle": "deprecated", "owner": "team-b",
                   "ports": [8080, 9090]}),
            json!({"tags": ["docs"]}),
        ),
    ];
    for i in 0..8 {
        out.push(component(
            &format!("svc-{i}"),
            json!({"type": "library", "lifecycle": (["production", "experimental"][i % 2])}),
            json!({"description": format!("Filler number {i}")}),
        ));
    }
    Value::Array(out)
}

mod scenarios {
    use super::*;

    pub async fn filters_on_labels_annotations_and_paths(ctx: Ctx) {
        assert_eq!(
            ctx.sorted_names("label=tier=GOLD").await,
            strings(&["payments-service", "web"])
        );
        assert_eq!(
            ctx.sorted_names("label=tier").await,
            strings(&["billing", "payments-service", "web"])
        );
        assert_eq!(
            ctx.sorted_names("label=tier=gold,silver&kind=component&type=service")
                .await,
            strings(&["billing", "payments-service"])
        );
        assert_eq!(
            ctx.names("annotation=backstage.io/techdocs-ref").await,
            strings(&["payments-service"])
        );
        assert_eq!(
            ctx.names("annotation=backstage.io/techdocs-ref=DIR:.")
                .await,
            strings(&["payments-service"])
        );
        // Any path; repeated filters must all hold, commas are alternatives.
        assert_eq!(
            ctx.sorted_names("filter=spec.system=shop").await,
            strings(&["billing", "payments-api", "payments-service", "web"])
        );
        assert_eq!(
            ctx.sorted_names("filter=spec.system=shop&filter=kind=component&filter=spec.lifecycle=experimental,deprecated")
                .await,
            strings(&["billing"])
        );
        assert_eq!(
            ctx.names("filter=spec.profile.email=jane@example.com")
                .await,
            strings(&["jane"])
        );
        assert_eq!(
            ctx.names("filter=spec.ports=9090").await,
            strings(&["docs"])
        );
        assert_eq!(
            ctx.sorted_names("filter=relations.ownedBy=group:default/team-b")
                .await,
            strings(&["billing", "docs", "web"])
        );
        assert_eq!(
            ctx.sorted_names("filter=metadata.annotations.backstage.io/techdocs-ref")
                .await,
            strings(&["payments-service"])
        );
        // Repeating a typed filter narrows too.
        assert_eq!(
            ctx.sorted_names("kind=component,api&kind=api").await,
            strings(&["payments-api"])
        );
        assert_eq!(
            ctx.names("owner=team-b&tag=go").await,
            strings(&["billing"])
        );
        assert!(ctx.names("filter=spec.nothing").await.is_empty());
    }

    pub async fn search_ranks_and_combines_with_filters(ctx: Ctx) {
        let hits = ctx.names("q=pay").await;
        assert_eq!(hits.len(), 3, "{hits:?}");
        assert_eq!(
            hits.iter().cloned().collect::<HashSet<_>>(),
            ["payments-service", "payments-api", "billing"]
                .map(String::from)
                .into()
        );
        // Name and title matches first; billing only mentions payments.
        assert_eq!(hits[2], "billing");
        assert_eq!(
            ctx.names("q=pay&kind=api").await,
            strings(&["payments-api"])
        );
        assert_eq!(
            ctx.names("q=pay&sort=metadata.name").await,
            strings(&["billing", "payments-api", "payments-service"])
        );
        assert_eq!(ctx.names("q=Jane%20Doe").await, strings(&["jane"]));
        assert_eq!(ctx.names("q=storefr").await, strings(&["web"]));
        let body = ctx.ok("/api/v1/entities?q=filler&limit=3").await;
        assert_eq!(body["total"], 8);
        // An empty search is no search.
        assert_eq!(ctx.ok("/api/v1/entities?q=").await["total"], 17);
    }

    pub async fn sort_pages_with_cursors(ctx: Ctx) {
        assert_eq!(
            ctx.names("kind=group,user&sort=-metadata.name").await,
            strings(&["team-b", "team-a", "jane"])
        );
        assert_eq!(
            ctx.names("kind=component&sort=-spec.lifecycle,metadata.name&limit=4")
                .await,
            strings(&["payments-service", "svc-0", "svc-2", "svc-4"])
        );
        assert_eq!(
            ctx.names("kind=component&sort=-spec.lifecycle&sort=metadata.name&limit=4")
                .await,
            strings(&["payments-service", "svc-0", "svc-2", "svc-4"])
        );
        // Every order pages through every match once.
        for (filters, sort) in [
            ("", "metadata.name"),
            ("kind=component", "-metadata.name"),
            ("", "spec.lifecycle,-metadata.title"),
            ("kind=component", "spec.system,metadata.name"),
            ("q=filler", ""),
            ("", ""),
        ] {
            let base = format!("/api/v1/entities?{filters}&sort={sort}");
            let whole: Vec<String> = ctx.ok(&base).await["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
                .collect();
            let mut seen = Vec::new();
            let mut uri = format!("{base}&limit=3");
            loop {
                let body = ctx.ok(&uri).await;
                assert_eq!(body["total"].as_u64().unwrap() as usize, whole.len());
                seen.extend(
                    body["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()),
                );
                match body["nextCursor"].as_str() {
                    Some(cursor) => uri = format!("{base}&limit=3&cursor={cursor}"),
                    None => break,
                }
            }
            assert_eq!(seen, whole, "{filters} sorted by {sort}");
        }
        // A cursor continues only the order it came from.
        let body = ctx.ok("/api/v1/entities?sort=metadata.name&limit=2").await;
        let cursor = body["nextCursor"].as_str().unwrap();
        ctx.bad(
            &format!("/api/v1/entities?sort=-metadata.name&limit=2&cursor={cursor}"),
            "cursor",
        )
        .await;
        ctx.ok(&format!(
            "/api/v1/entities?sort=metadata.name&limit=2&cursor={cursor}"
        ))
        .await;
    }

    pub async fn fields_select_parts_of_each_entity(ctx: Ctx) {
        let body = ctx
            .ok("/api/v1/entities?filter=metadata.name=payments-service&fields=metadata.title,spec.owner")
            .await;
        assert_eq!(
            body["items"][0],
            json!({"kind": "Component",
                   "metadata": {"name": "payments-service", "namespace": "default",
                                "title": "Payments Service"},
                   "spec": {"owner": "team-a"}})
        );
        let body = ctx
            .ok("/api/v1/entities?filter=metadata.name=payments-service&fields=relations&fields=metadata.labels.tier")
            .await;
        let item = &body["items"][0];
        assert_eq!(item["metadata"]["labels"], json!({"tier": "gold"}));
        assert_eq!(item["relations"].as_array().unwrap().len(), 4);
        assert!(item.get("spec").is_none());
        // Without fields, the whole entity with its relations and etag.
        let body = ctx
            .ok("/api/v1/entities?filter=metadata.name=payments-service")
            .await;
        assert_eq!(body["items"][0]["spec"]["system"], "shop");
        assert!(body["items"][0]["metadata"]["etag"].is_string());
    }

    pub async fn facets_count_under_the_filters(ctx: Ctx) {
        let body = ctx
            .ok("/api/v1/entities/facets?field=spec.lifecycle&field=kind,metadata.tags")
            .await;
        assert_eq!(
            body["facets"]["spec.lifecycle"],
            json!([
                {"value": "production", "count": 7},
                {"value": "experimental", "count": 5},
                {"value": "deprecated", "count": 1}
            ])
        );
        assert_eq!(
            body["facets"]["kind"][0],
            json!({"value": "component", "count": 12})
        );
        assert_eq!(body["facets"]["metadata.tags"].as_array().unwrap().len(), 6);
        // The list's filters and search apply.
        let body = ctx
            .ok("/api/v1/entities/facets?field=relations.ownedBy&field=spec.type&kind=component&label=tier")
            .await;
        assert_eq!(
            body["facets"]["relations.ownedBy"],
            json!([
                {"value": "group:default/team-b", "count": 2},
                {"value": "group:default/team-a", "count": 1}
            ])
        );
        assert_eq!(
            body["facets"]["spec.type"],
            json!([{"value": "service", "count": 2}, {"value": "website", "count": 1}])
        );
        let body = ctx.ok("/api/v1/entities/facets?field=kind&q=pay").await;
        assert_eq!(
            body["facets"]["kind"],
            json!([{"value": "component", "count": 2}, {"value": "api", "count": 1}])
        );
        let body = ctx
            .ok("/api/v1/entities/facets?field=metadata.labels.tier&field=spec.ports")
            .await;
        assert_eq!(
            body["facets"]["metadata.labels.tier"],
            json!([{"value": "gold", "count": 2}, {"value": "silver", "count": 1}])
        );
        assert_eq!(
            body["facets"]["spec.ports"],
            json!([{"value": "8080", "count": 1}, {"value": "9090", "count": 1}])
        );
    }

    pub async fn relations_graph_to_a_depth(ctx: Ctx) {
        let base = "/api/v1/entities/component/default/payments-service/relations";
        let body = ctx.ok(&format!("{base}?direction=outgoing")).await;
        assert_eq!(body["root"], "component:default/payments-service");
        assert_eq!(body["truncated"], false);
        assert_eq!(
            body["edges"],
            json!([
                {"source": "component:default/payments-service", "type": "dependsOn", "target": "component:default/billing"},
                {"source": "component:default/payments-service", "type": "ownedBy", "target": "group:default/team-a"},
                {"source": "component:default/payments-service", "type": "partOf", "target": "system:default/shop"},
                {"source": "component:default/payments-service", "type": "providesApi", "target": "api:default/payments-api"}
            ])
        );
        let api = body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["ref"] == "api:default/payments-api")
            .unwrap();
        assert_eq!(
            api,
            &json!({"ref": "api:default/payments-api", "depth": 1, "kind": "API",
                    "namespace": "default", "name": "payments-api", "title": "Payments API"})
        );

        let body = ctx
            .ok(&format!("{base}?depth=2&direction=outgoing&type=dependsOn"))
            .await;
        assert_eq!(
            body["nodes"],
            json!([
                {"ref": "component:default/payments-service", "depth": 0, "kind": "Component",
                 "namespace": "default", "name": "payments-service", "title": "Payments Service"},
                {"ref": "component:default/billing", "depth": 1, "kind": "Component",
                 "namespace": "default", "name": "billing"},
                {"ref": "resource:default/ledger-db", "depth": 2}
            ])
        );
        assert_eq!(body["edges"].as_array().unwrap().len(), 2);

        // Default: one step, both directions.
        let body = ctx
            .ok("/api/v1/entities/api/default/payments-api/relations?type=providesApi,apiProvidedBy,consumesApi,apiConsumedBy")
            .await;
        let edges: HashSet<String> = body["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["source"].as_str().unwrap(),
                    e["type"].as_str().unwrap(),
                    e["target"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(edges.len(), 4, "{edges:?}");
        assert!(edges.contains("api:default/payments-api apiConsumedBy component:default/web"));
        assert!(edges.contains("component:default/web consumesApi api:default/payments-api"));

        let (status, _, _) = ctx
            .call(
                "GET",
                "/api/v1/entities/component/default/nope/relations",
                &ctx.viewer,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    pub async fn bad_parameters_are_400_naming_the_parameter(ctx: Ctx) {
        let list = "/api/v1/entities";
        for (query, param) in [
            ("colour=red", "colour"),
            ("field=kind", "field"),
            ("limit=0", "limit"),
            ("limit=1&limit=2", "limit"),
            ("cursor=zz", "cursor"),
            ("filter=spec..owner", "filter"),
            ("filter=spec.owner%3D", "filter"),
            ("filter=relations", "filter"),
            ("label=a%20b%3Dc", "label"),
            ("annotation=x%3D", "annotation"),
            ("sort=metadata.tags", "sort"),
            ("sort=spec%2Fowner", "sort"),
            ("sort=a,b,c,d,e,f", "sort"),
            ("fields=relations.ownedBy", "fields"),
            ("fields=spec.%22x%22", "fields"),
            ("q=%3F%3F", "q"),
            ("q=a&q=b", "q"),
            ("q=a%20b%20c%20d%20e%20f%20g%20h%20i%20j%20k", "q"),
            ("owner=a%20b", "owner"),
            ("kind=a:b", "kind"),
        ] {
            // `kind` takes any text; a colon is just an unknown kind.
            if param == "kind" {
                assert_eq!(ctx.ok(&format!("{list}?{query}")).await["total"], 0);
                continue;
            }
            ctx.bad(&format!("{list}?{query}"), param).await;
        }
        let facets = "/api/v1/entities/facets";
        ctx.bad(facets, "field").await;
        ctx.bad(&format!("{facets}?kind=component"), "field").await;
        ctx.bad(&format!("{facets}?field=relations"), "field").await;
        ctx.bad(&format!("{facets}?field=spec..x"), "field").await;
        ctx.bad(&format!("{facets}?field=kind&limit=5"), "limit")
            .await;
        ctx.bad(&format!("{facets}?field=kind&sort=kind"), "sort")
            .await;
        ctx.bad(&format!("{facets}?field=kind&filter=x%3D"), "filter")
            .await;
        let graph = "/api/v1/entities/component/default/web/relations";
        ctx.bad(&format!("{graph}?depth=0"), "depth").await;
        ctx.bad(&format!("{graph}?depth=6"), "depth").await;
        ctx.bad(&format!("{graph}?depth=two"), "depth").await;
        ctx.bad(&format!("{graph}?direction=sideways"), "direction")
            .await;
        ctx.bad(&format!("{graph}?kind=component"), "kind").await;

        // The document describes what the list takes.
        let doc = ctx.ok("/api/openapi.json").await;
        let params: Vec<&str> = doc["paths"]["/api/v1/entities"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in [
            "filter",
            "label",
            "annotation",
            "q",
            "sort",
            "fields",
            "cursor",
        ] {
            assert!(params.contains(&name), "{name} is not documented");
        }
        assert!(doc["paths"]["/api/v1/entities/facets"]["get"].is_object());
    }
}
