//! The OpenAPI 3.1 document served at `/api/openapi.json`.
//!
//! Written as data next to the routes it describes; a test checks that every
//! route the router answers is documented here and vice versa.

use serde_json::{json, Value};

/// Every documented (path, method) pair; the router test compares against it.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("/healthz", "get"),
    ("/readyz", "get"),
    ("/metrics", "get"),
    ("/api/openapi.json", "get"),
    ("/api/v1/plugins", "get"),
    ("/api/v1/plugins/{id}", "get"),
    ("/api/v1/tokens", "get"),
    ("/api/v1/tokens", "post"),
    ("/api/v1/tokens/{id}", "delete"),
    ("/api/v1/entities", "get"),
    ("/api/v1/entities/facets", "get"),
    ("/api/v1/entities/batch", "post"),
    ("/api/v1/entities/{kind}/{namespace}/{name}", "get"),
    ("/api/v1/entities/{kind}/{namespace}/{name}", "put"),
    ("/api/v1/entities/{kind}/{namespace}/{name}", "delete"),
    (
        "/api/v1/entities/{kind}/{namespace}/{name}/relations",
        "get",
    ),
    ("/api/v1/sources", "get"),
    ("/api/v1/sources/{id}", "get"),
    ("/api/v1/sources/{id}/sync", "post"),
    ("/api/v1/sources/{id}/syncs", "get"),
    ("/api/v1/sources/{id}/syncs/{syncId}", "get"),
    ("/api/v1/checks", "get"),
    ("/api/v1/scorecards", "get"),
    ("/api/v1/scorecards/{id}", "get"),
    ("/api/v1/scorecards/{id}", "put"),
    ("/api/v1/scorecards/{id}", "delete"),
    ("/api/v1/scorecards/{id}/evaluate", "post"),
    ("/api/v1/scorecards/{id}/evaluations", "get"),
    ("/api/v1/scorecards/{id}/evaluations/{evaluationId}", "get"),
    ("/api/v1/scorecards/{id}/results", "get"),
    ("/api/v1/scorecards/{id}/entities", "get"),
    ("/api/v1/scorecards/{id}/exemptions", "get"),
    ("/api/v1/scorecards/{id}/exemptions", "post"),
    (
        "/api/v1/scorecards/{id}/exemptions/{ruleId}/{kind}/{namespace}/{name}",
        "delete",
    ),
    (
        "/api/v1/entities/{kind}/{namespace}/{name}/scorecards",
        "get",
    ),
    (
        "/api/v1/entities/{kind}/{namespace}/{name}/scorecards/{id}/history",
        "get",
    ),
    (
        "/api/v1/entities/{kind}/{namespace}/{name}/scorecards/{id}/badge.svg",
        "get",
    ),
    ("/api/v1/actions", "get"),
    ("/api/v1/actions/{id}", "get"),
    ("/api/v1/actions/{id}/runs", "post"),
    ("/api/v1/runs", "get"),
    ("/api/v1/runs/{id}", "get"),
    ("/api/v1/runs/{id}/logs", "get"),
    ("/api/v1/runs/{id}/logs/stream", "get"),
    ("/api/v1/runs/{id}/cancel", "post"),
    ("/api/v1/runs/{id}/retry", "post"),
    ("/api/v1/runs/{id}/approve", "post"),
    ("/api/v1/runs/{id}/deny", "post"),
    ("/api/v1/audit", "get"),
    ("/api/v1/templates", "get"),
    ("/api/v1/templates/{id}", "get"),
    ("/api/v1/templates/{id}/runs", "post"),
];

fn problem_responses(codes: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for code in codes {
        m.insert(
            (*code).to_owned(),
            json!({
                "description": match *code {
                    "400" => "Malformed request",
                    "401" => "Missing, unknown or revoked token",
                    "403" => "The token's role is too low",
                    "404" => "Not found",
                    "409" => "Conflicts with the resource's state (e.g. the entity belongs to a catalog source)",
                    "412" => "If-Match does not hold: the entity changed or does not exist",
                    "413" => "Body or batch too large",
                    "415" => "Body is not JSON (or, where accepted, YAML)",
                    "422" => "Invalid input; `errors` names each field",
                    _ => "Error",
                },
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
            }),
        );
    }
    Value::Object(m)
}

fn with(mut base: Value, ok_code: &str, ok: Value) -> Value {
    base[ok_code] = ok;
    base
}

/// The document.
pub fn document() -> Value {
    let entity_path = json!([
        {"name": "kind", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}
    ]);
    let mut with_if_match = entity_path.clone();
    if let Some(params) = with_if_match.as_array_mut() {
        params.push(json!({"name": "If-Match", "in": "header",
            "description": "`*` or the quoted etag the change is based on", "schema": {"type": "string"}}));
    }
    let json_ok = |desc: &str, schema: Value| json!({"description": desc, "content": {"application/json": {"schema": schema}}});
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portolan API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Internal developer portal whose integrations are sandboxed WebAssembly components."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {
                "summary": "Liveness", "security": [],
                "responses": {"200": json_ok("The process answers", json!({"type": "object"}))}
            }},
            "/readyz": {"get": {
                "summary": "Readiness: database reachable and plugins folder scanned", "security": [],
                "responses": {
                    "200": json_ok("Ready", json!({"$ref": "#/components/schemas/Readiness"})),
                    "503": json_ok("Not ready", json!({"$ref": "#/components/schemas/Readiness"}))
                }
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (text exposition format)", "security": [],
                "responses": {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            "/api/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": json_ok("OpenAPI document", json!({"type": "object"}))}
            }},
            "/api/v1/plugins": {"get": {
                "summary": "List plugin files, loaded or failed",
                "parameters": [
                    {"name": "role", "in": "query", "schema": {"$ref": "#/components/schemas/PluginRole"}},
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["ready", "failed"]}}
                ],
                "responses": with(problem_responses(&["401", "422"]), "200",
                    json_ok("Plugins", json!({"type": "object", "required": ["items", "total"], "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Plugin"}},
                        "total": {"type": "integer"}
                    }})))
            }},
            "/api/v1/plugins/{id}": {"get": {
                "summary": "Inspect one plugin",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with(problem_responses(&["401", "404"]), "200",
                    json_ok("The plugin", json!({"$ref": "#/components/schemas/Plugin"})))
            }},
            "/api/v1/tokens": {
                "get": {
                    "summary": "List active tokens (admin)",
                    "responses": with(problem_responses(&["401", "403"]), "200",
                        json_ok("Tokens", json!({"type": "object", "properties": {
                            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Token"}},
                            "total": {"type": "integer"}
                        }})))
                },
                "post": {
                    "summary": "Create a token (admin); the secret is returned once",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": false, "required": ["role"],
                        "properties": {
                            "role": {"type": "string", "enum": ["viewer", "member", "admin"]},
                            "description": {"type": "string", "maxLength": 200}
                        }
                    }}}},
                    "responses": with(problem_responses(&["400", "401", "403", "415", "422"]), "201",
                        json_ok("The new token", json!({"allOf": [
                            {"$ref": "#/components/schemas/Token"},
                            {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}
                        ]})))
                }
            },
            "/api/v1/entities/batch": {"post": {
                "summary": "Upsert many entities in one transaction, all or nothing (member)",
                "description": "Every entity is validated first; if any is invalid, nothing is stored and the 422 lists each bad entity (`entities`: index, document, ref, errors). Unchanged entities keep their revision.",
                "requestBody": {"required": true, "content": {
                    "application/json": {"schema": {"oneOf": [
                        {"type": "array", "items": {"$ref": "#/components/schemas/Entity"}},
                        {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Entity"}}}}
                    ]}},
                    "application/yaml": {"schema": {"type": "string", "description": "One or more YAML documents, each an entity"}}
                }},
                "responses": with(problem_responses(&["400", "401", "403", "409", "413", "415", "422"]), "200",
                    json_ok("Stored", json!({"type": "object", "required": ["total", "added", "updated", "unchanged"], "properties": {
                        "total": {"type": "integer"}, "added": {"type": "integer"},
                        "updated": {"type": "integer"}, "unchanged": {"type": "integer"}
                    }})))
            }},
            "/api/v1/entities/{kind}/{namespace}/{name}": {
                "get": {
                    "summary": "One entity with its relations; `ETag` header",
                    "parameters": entity_path.clone(),
                    "responses": with(problem_responses(&["401", "404"]), "200",
                        json_ok("The entity", json!({"$ref": "#/components/schemas/Entity"})))
                },
                "put": {
                    "summary": "Create or replace one entity (member); the body must describe the entity the path names",
                    "parameters": with_if_match.clone(),
                    "requestBody": {"required": true, "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Entity"}},
                        "application/yaml": {"schema": {"type": "string"}}
                    }},
                    "responses": with(with(problem_responses(&["400", "401", "403", "409", "412", "413", "415", "422"]), "201",
                        json_ok("Created", json!({"$ref": "#/components/schemas/Entity"}))), "200",
                        json_ok("Updated, or unchanged (same etag)", json!({"$ref": "#/components/schemas/Entity"})))
                },
                "delete": {
                    "summary": "Delete one entity and the relations it declared (member)",
                    "parameters": with_if_match,
                    "responses": with(problem_responses(&["400", "401", "403", "404", "412"]), "204", json!({"description": "Deleted"}))
                }
            },
            "/api/v1/tokens/{id}": {"delete": {
                "summary": "Revoke a token (admin)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with(problem_responses(&["401", "403", "404"]), "204", json!({"description": "Revoked"}))
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {
                    "type": "object", "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string", "format": "uri"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "field": {"type": "string", "description": "The field at fault: a JSON pointer into the body, `query.NAME` or `header.NAME`"},
                        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "message"], "properties": {
                            "field": {"type": "string"}, "message": {"type": "string"}
                        }}}
                    }
                },
                "Entity": {
                    "type": "object", "required": ["apiVersion", "kind", "metadata"],
                    "description": "A catalog entity in Backstage's descriptor format. `relations` and `metadata.etag` are computed; whatever a client sends there is ignored.",
                    "properties": {
                        "apiVersion": {"type": "string", "examples": ["backstage.io/v1alpha1"]},
                        "kind": {"type": "string", "examples": ["Component"]},
                        "metadata": {"type": "object", "required": ["name"], "properties": {
                            "name": {"type": "string", "maxLength": 63},
                            "namespace": {"type": "string", "default": "default"},
                            "title": {"type": "string"},
                            "description": {"type": "string"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                            "tags": {"type": "array", "items": {"type": "string"}},
                            "links": {"type": "array", "items": {"type": "object", "required": ["url"], "properties": {
                                "url": {"type": "string"}, "title": {"type": "string"},
                                "icon": {"type": "string"}, "type": {"type": "string"}
                            }}},
                            "etag": {"type": "string", "readOnly": true}
                        }},
                        "spec": {"type": "object"},
                        "relations": {"type": "array", "readOnly": true, "items": {"type": "object", "required": ["type", "targetRef"], "properties": {
                            "type": {"type": "string", "examples": ["ownedBy"]},
                            "targetRef": {"type": "string", "examples": ["group:default/team-a"]}
                        }}}
                    }
                },
                "Readiness": {"type": "object", "properties": {
                    "status": {"type": "string", "enum": ["ready", "not-ready"]},
                    "database": {"type": "string"}, "plugins": {"type": "string"}
                }},
                "PluginRole": {"type": "string", "enum": ["catalog-source", "scaffold-generator", "action", "scorecard-check"]},
                "Plugin": {
                    "type": "object", "required": ["id", "status", "sidecar", "loadedAt", "loadMs"],
                    "properties": {
                        "id": {"type": "string", "description": "The file name without .wasm"},
                        "status": {"type": "string", "enum": ["ready", "failed"]},
                        "error": {"type": "string"},
                        "role": {"$ref": "#/components/schemas/PluginRole"},
                        "version": {"type": "string"},
                        "contract": {"type": "string", "enum": ["0.4.0", "0.3.0", "0.2.0", "0.1.0"], "description": "The portolan:plugin contract version the component was built against; 0.3.0 check plugins lack evaluate-rules (the host calls them once per rule), 0.2.0 plugins also lack the catalog import, 0.1.0 plugins are adapted to the current model"},
                        "hash": {"type": "string", "description": "SHA-256 of the .wasm file"},
                        "describe": {"$ref": "#/components/schemas/PluginDescription"},
                        "grants": {"type": "object", "description": "What the sidecar grants: limits, httpAllow, dirs, secrets (names), settings"},
                        "sidecar": {"type": "boolean"},
                        "loadedAt": {"type": "string", "format": "date-time"},
                        "loadMs": {"type": "integer"},
                        "origin": {"type": "string", "enum": ["compiled", "cache"]}
                    }
                },
                "PluginDescription": {
                    "type": "object", "required": ["title", "version", "description"],
                    "description": "What the plugin's describe returned, with role-specific fields: settingsSchema (catalog-source); tags, parametersSchema (scaffold-generator); the ActionInfo fields (action); checks (scorecard-check)",
                    "properties": {
                        "title": {"type": "string"},
                        "version": {"type": "string"},
                        "description": {"type": "string"},
                        "settingsSchema": {"type": "object"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "parametersSchema": {"type": ["object", "array"]},
                        "checks": {"type": "array", "items": {"$ref": "#/components/schemas/CheckInfo"}},
                        "entityKinds": {"type": "array", "items": {"type": "string"}},
                        "entityTypes": {"type": "array", "items": {"type": "string"}},
                        "entityTags": {"type": "array", "items": {"type": "string"}},
                        "inputSchema": {"type": "object"},
                        "requiredRole": {"$ref": "#/components/schemas/ActionRole"},
                        "approval": {"oneOf": [{"$ref": "#/components/schemas/ActionRole"}, {"type": "null"}]}
                    }
                },
                "CheckInfo": {
                    "type": "object", "required": ["id", "title", "description", "entityKinds", "parametersSchema"],
                    "description": "One check of a scorecard-check plugin; a rule names it as plugin-id/check-id. A 0.1.0 check plugin offers one, \"default\"",
                    "properties": {
                        "id": {"type": "string", "pattern": "^[a-z0-9-]{1,63}$"},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "entityKinds": {"type": "array", "items": {"type": "string"}, "description": "Empty means any kind"},
                        "parametersSchema": {"type": "object"}
                    }
                },
                "ActionRole": {"type": "string", "enum": ["viewer", "member", "admin"]},
                "Token": {"type": "object", "required": ["id", "role", "createdAt"], "properties": {
                    "id": {"type": "string"},
                    "role": {"type": "string", "enum": ["viewer", "member", "admin"]},
                    "description": {"type": "string"},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "lastUsedAt": {"type": ["string", "null"], "format": "date-time"}
                }}
            }
        }
    });
    add_sources(&mut doc);
    add_catalog_queries(&mut doc);
    add_scorecards(&mut doc);
    add_actions(&mut doc);
    add_templates(&mut doc);
    doc
}

/// Merges `extra` into the object at `doc[key]`.
fn merge_into(doc: &mut Value, key: &str, extra: Value) {
    if let (Some(target), Value::Object(extra)) =
        (doc.get_mut(key).and_then(Value::as_object_mut), extra)
    {
        target.extend(extra);
    }
}

/// `/api/v1/sources`: catalog sources and their syncs.
fn add_sources(doc: &mut Value) {
    let json_ok = |desc: &str, schema: Value| json!({"description": desc, "content": {"application/json": {"schema": schema}}});
    let id = json!({"name": "id", "in": "path", "required": true, "description": "The source plugin's id", "schema": {"type": "string"}});
    let paths = json!({
        "/api/v1/sources": {"get": {
            "summary": "List catalog sources with their schedule, entity count and last sync",
            "responses": with(problem_responses(&["401"]), "200",
                json_ok("Sources", json!({"type": "object", "required": ["items", "total"], "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Source"}},
                    "total": {"type": "integer"}
                }})))
        }},
        "/api/v1/sources/{id}": {"get": {
            "summary": "One catalog source",
            "parameters": [id],
            "responses": with(problem_responses(&["401", "404"]), "200",
                json_ok("The source", json!({"$ref": "#/components/schemas/Source"})))
        }},
        "/api/v1/sources/{id}/sync": {"post": {
            "summary": "Queue a sync now (member); answers the pending one if a sync is already queued or running",
            "parameters": [id],
            "responses": with(problem_responses(&["401", "403", "404", "409"]), "202",
                json!({"description": "Queued; Location names the sync",
                       "headers": {"Location": {"schema": {"type": "string"}}},
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Sync"}}}}))
        }},
        "/api/v1/sources/{id}/syncs": {"get": {
            "summary": "Sync history of a source, newest first",
            "parameters": [id,
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 20}},
                {"name": "cursor", "in": "query", "description": "nextCursor of the previous page", "schema": {"type": "string"}}],
            "responses": with(problem_responses(&["401", "404", "422"]), "200",
                json_ok("Syncs", json!({"type": "object", "required": ["items"], "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Sync"}},
                    "nextCursor": {"type": ["string", "null"]}
                }})))
        }},
        "/api/v1/sources/{id}/syncs/{syncId}": {"get": {
            "summary": "One sync: status, progress while running, counts, problems, log",
            "parameters": [id, {"name": "syncId", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": with(problem_responses(&["401", "404"]), "200",
                json_ok("The sync", json!({"$ref": "#/components/schemas/Sync"})))
        }}
    });
    let counts = json!({"type": ["object", "null"], "description": "Set when the sync succeeded", "properties": {
        "added": {"type": "integer"}, "updated": {"type": "integer"},
        "unchanged": {"type": "integer"}, "removed": {"type": "integer", "description": "The source's entities it no longer returned (orphans), deleted"}
    }});
    let schemas = json!({
        "Sync": {"type": "object", "required": ["id", "source", "trigger", "status", "queuedAt", "progress"], "properties": {
            "id": {"type": "string"},
            "source": {"type": "string"},
            "trigger": {"type": "string", "enum": ["manual", "schedule", "load", "plugin-changed"]},
            "actor": {"type": ["string", "null"], "description": "The token that asked for a manual sync"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
            "queuedAt": {"type": "string", "format": "date-time"},
            "startedAt": {"type": ["string", "null"], "format": "date-time"},
            "finishedAt": {"type": ["string", "null"], "format": "date-time"},
            "durationMs": {"type": ["integer", "null"]},
            "replica": {"type": ["string", "null"], "description": "The portal process that ran it"},
            "progress": {"type": "object", "properties": {
                "pages": {"type": "integer"}, "entities": {"type": "integer"}, "totalHint": {"type": ["integer", "null"]}
            }},
            "counts": counts,
            "problems": {"type": "array", "description": "Entities refused or left alone (at most 100; problemCount has the total)", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "entity": {"type": ["string", "null"]},
                "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}
            }}},
            "problemCount": {"type": "integer"},
            "error": {"type": ["object", "null"], "description": "Why the sync failed; the catalog kept the last good data", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]}
            }},
            "log": {"type": "array", "items": {"type": "object", "properties": {
                "source": {"type": "string", "enum": ["host", "plugin"]}, "level": {"type": "string"},
                "message": {"type": "string"}, "atMs": {"type": "integer"}
            }}}
        }},
        "Source": {"type": "object", "required": ["id", "status", "entities"], "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["ready", "failed"]},
            "error": {"type": ["string", "null"]},
            "version": {"type": ["string", "null"]},
            "title": {"type": ["string", "null"]},
            "schedule": {"type": ["object", "null"], "description": "From the sidecar's [schedule]: {\"every\": \"15m\"} or {\"cron\": \"*/10 * * * *\"}"},
            "nextSyncAt": {"type": ["string", "null"], "format": "date-time"},
            "entities": {"type": "integer", "description": "Entities this source owns"},
            "current": {"oneOf": [{"$ref": "#/components/schemas/Sync"}, {"type": "null"}], "description": "The queued or running sync"},
            "lastSync": {"oneOf": [{"$ref": "#/components/schemas/Sync"}, {"type": "null"}]}
        }}
    });
    merge_into(doc, "paths", paths);
    if let Some(components) = doc.get_mut("components") {
        merge_into(components, "schemas", schemas);
    }
}

/// `GET /api/v1/entities` and its companions: the catalog's query
/// language, facets and the relation graph.
fn add_catalog_queries(doc: &mut Value) {
    let json_ok = |desc: &str, schema: Value| json!({"description": desc, "content": {"application/json": {"schema": schema}}});
    let query = |name: &str, description: &str| json!({"name": name, "in": "query", "description": description, "schema": {"type": "string"}});
    let repeated = |name: &str, description: &str| {
        json!({"name": name, "in": "query", "description": description,
        "style": "form", "explode": true, "schema": {"type": "array", "items": {"type": "string"}}})
    };
    let filters = vec![
        query("kind", "Kinds, comma-separated alternatives (`component,api`)"),
        query("namespace", "Namespaces"),
        query("owner", "Owners as references; shorthand as in spec.owner (`team-a` is `group:default/team-a`). Same as `filter=relations.ownedBy=...` with full references"),
        query("lifecycle", "spec.lifecycle values"),
        query("type", "spec.type values"),
        query("tag", "metadata.tags values (an entity matches if any tag does)"),
        repeated("label", "`key=value[,value...]` or `key` (the label is present); repeat for more labels. Keys may hold dots and slashes (`app.kubernetes.io/name=web`)"),
        repeated("annotation", "`key=value[,value...]` or `key` (present), as for `label` (`annotation=backstage.io/techdocs-ref`)"),
        repeated("filter", "A condition on any field: `PATH=value[,value...]` (one of the values) or `PATH` alone (the field is present and not null). PATH is a dot path into the entity: `kind`, `metadata.name`, `spec.owner`, `spec.profile.email`, `metadata.annotations.backstage.io/techdocs-ref`, or `relations.TYPE` (targets of that relation type, as full references: `relations.ownedBy=group:default/team-a`). Values match case-insensitively; arrays match if any element does; numbers and booleans match as text (`filter=spec.public=true`). Repeat `filter` for conditions that must all hold. Unlike Backstage's `filter`, commas separate alternative values (not conditions) and repeated filters are ANDed, as for every other parameter here. kind, metadata.namespace, metadata.name, spec.lifecycle, spec.type, metadata.tags and relations.ownedBy are indexed; other paths are read from each entity's JSON and cost a scan"),
        query("q", "Full-text search over name, title, description, tags, kind, namespace, type, lifecycle, owner, system, domain and a user's or group's display name and e-mail. Text is split into words at anything but letters and digits; every word must match the start of a word of the entity (`pay serv` finds payments-service). Without `sort`, results come most relevant first (name and title matches above tags, above the description). At most 200 characters and 10 words"),
    ];
    let mut list_params = filters.clone();
    list_params.extend([
        repeated("sort", "Sort fields, comma-separated or repeated: a field path, `-` before it for descending (`sort=spec.lifecycle,-metadata.name`). Values compare as lower-cased text; entities without the field sort as if it were empty. Ties are broken by the entity reference, in the direction of the first field. Default: relevance when `q` is given, otherwise the entity reference. Not metadata.tags or relations other than relations.ownedBy (several values per entity)"),
        repeated("fields", "Return only these parts of each entity, comma-separated paths (`fields=metadata.title,spec.owner`); `kind`, `metadata.namespace` and `metadata.name` always come along. `relations` returns the relations; without it they are not looked up"),
        json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}),
        query("cursor", "`nextCursor` of the previous page, with the same filters, search and sort; deep pages cost what the first does"),
    ]);
    let mut facet_params = filters;
    facet_params.push(repeated("field", "The fields to count, comma-separated or repeated, at most 20: any path as for `filter` (`spec.lifecycle`, `metadata.tags`, `relations.ownedBy`, `metadata.labels.tier`)"));
    let entity_path = json!([
        {"name": "kind", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "depth", "in": "query", "description": "How many relations away from the entity", "schema": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1}},
        {"name": "direction", "in": "query", "description": "`outgoing`: the relations each node has (web ownedBy team-a); `incoming`: relations towards it (from team-a: web ownedBy team-a); `both`", "schema": {"type": "string", "enum": ["outgoing", "incoming", "both"], "default": "both"}},
        repeated("type", "Relation types to follow, comma-separated (`ownedBy,dependsOn`), case-insensitive; default all")
    ]);
    let paths = json!({
        "/api/v1/entities": {"get": {
            "summary": "List entities: filters on any field, full-text search, sort on any field, field selection, one page at a time",
            "description": "Each parameter takes one value or several separated by commas (alternatives); repeated parameters and different parameters must all hold. Matching is case-insensitive. An unknown or ill-formed parameter is a 400 problem whose `field` names it (`query.sort`).",
            "parameters": list_params,
            "responses": with(problem_responses(&["400", "401"]), "200",
                json_ok("A page of entities", json!({"type": "object", "required": ["items", "total", "nextCursor"], "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Entity"}},
                    "total": {"type": "integer", "description": "Matches on all pages"},
                    "nextCursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last"}
                }})))
        }},
        "/api/v1/entities/facets": {"get": {
            "summary": "Count entities per value of each field, under the same filters and search as the list",
            "description": "Values are lower-cased (they match case-insensitively, so two spellings are one value). Arrays count per element; entities without the field are not counted. Each field lists at most 1,000 values, the most frequent first, then by value.",
            "parameters": facet_params,
            "responses": with(problem_responses(&["400", "401"]), "200",
                json_ok("Counts per field", json!({"type": "object", "required": ["facets"], "properties": {
                    "facets": {"type": "object", "additionalProperties": {"type": "array", "items": {
                        "type": "object", "required": ["value", "count"],
                        "properties": {"value": {"type": "string"}, "count": {"type": "integer"}}
                    }}, "examples": [{"spec.lifecycle": [{"value": "production", "count": 12}, {"value": "experimental", "count": 3}]}]}
                }})))
        }},
        "/api/v1/entities/{kind}/{namespace}/{name}/relations": {"get": {
            "summary": "The relation graph around one entity, to a depth",
            "description": "Nodes are the entities reached (the entity itself at depth 0); those in the catalog carry kind, namespace, name and title, those only named by a relation carry their reference alone. Edges are the stored relations between two nodes, each in the direction it was declared or derived (relations are kept both ways: `web ownedBy team-a` and `team-a ownerOf web`). The walk stops at 1,000 nodes or 5,000 edges and says `truncated`.",
            "parameters": entity_path,
            "responses": with(problem_responses(&["400", "401", "404"]), "200",
                json_ok("The graph", json!({"$ref": "#/components/schemas/RelationGraph"})))
        }}
    });
    let schemas = json!({
        "RelationGraph": {"type": "object", "required": ["root", "nodes", "edges", "truncated"], "properties": {
            "root": {"type": "string", "examples": ["component:default/web"]},
            "nodes": {"type": "array", "items": {"type": "object", "required": ["ref", "depth"], "properties": {
                "ref": {"type": "string"}, "depth": {"type": "integer"},
                "kind": {"type": "string"}, "namespace": {"type": "string"},
                "name": {"type": "string"}, "title": {"type": "string"}
            }}},
            "edges": {"type": "array", "items": {"type": "object", "required": ["source", "type", "target"], "properties": {
                "source": {"type": "string"}, "type": {"type": "string", "examples": ["ownedBy"]}, "target": {"type": "string"}
            }}},
            "truncated": {"type": "boolean"}
        }}
    });
    merge_into(doc, "paths", paths);
    if let Some(components) = doc.get_mut("components") {
        merge_into(components, "schemas", schemas);
    }
}

fn add_scorecards(doc: &mut Value) {
    let json_ok = |desc: &str, schema: Value| json!({"description": desc, "content": {"application/json": {"schema": schema}}});
    let id = json!({"name": "id", "in": "path", "required": true, "description": "The scorecard's id", "schema": {"type": "string"}});
    let entity = [
        json!({"name": "kind", "in": "path", "required": true, "schema": {"type": "string"}}),
        json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}),
        json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
    ];
    let page = [
        json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}}),
        json!({"name": "cursor", "in": "query", "description": "nextCursor of the previous page", "schema": {"type": "string"}}),
    ];
    let object = json!({"type": "object"});
    let paths = json!({
        "/api/v1/checks": {"get": {
            "summary": "Every check the loaded scorecard-check plugins offer, with its parameters schema; rules name them as `plugin/check`",
            "responses": with(problem_responses(&["401"]), "200", json_ok("Checks", object.clone()))
        }},
        "/api/v1/scorecards": {"get": {
            "summary": "Every scorecard with its level distribution, and the scorecard files that were refused",
            "responses": with(problem_responses(&["401"]), "200", json_ok("Scorecards", object.clone()))
        }},
        "/api/v1/scorecards/{id}": {
            "get": {"summary": "One scorecard's definition and its last full evaluation", "parameters": [id],
                "responses": with(problem_responses(&["401", "404"]), "200", json_ok("The scorecard", json!({"$ref": "#/components/schemas/Scorecard"})))},
            "put": {"summary": "Create (201) or replace (200) a scorecard (admin); every problem is reported at its JSON pointer, including unknown checks and parameters that break the check's schema. Queues a full evaluation",
                "parameters": [id],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Scorecard"}}}},
                "responses": with(problem_responses(&["400", "401", "403", "409", "415", "422"]), "200", json_ok("Replaced", json!({"$ref": "#/components/schemas/Scorecard"})))},
            "delete": {"summary": "Delete a scorecard with its results, history and exemptions (admin)", "parameters": [id],
                "responses": with(problem_responses(&["401", "403", "404", "409"]), "204", json!({"description": "Deleted"}))}
        },
        "/api/v1/scorecards/{id}/evaluate": {"post": {
            "summary": "Queue an evaluation now (member): of every covered entity, or of one with {\"entity\": \"kind:namespace/name\"}",
            "parameters": [id],
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"entity": {"type": "string"}}}}}},
            "responses": with(problem_responses(&["401", "403", "404", "422"]), "202",
                json!({"description": "Queued; Location names the evaluation", "headers": {"Location": {"schema": {"type": "string"}}},
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Evaluation"}}}}))
        }},
        "/api/v1/scorecards/{id}/evaluations": {"get": {
            "summary": "Evaluations of a scorecard, newest first", "parameters": [id, page[0], page[1]],
            "responses": with(problem_responses(&["401", "404", "422"]), "200", json_ok("Evaluations", object.clone()))
        }},
        "/api/v1/scorecards/{id}/evaluations/{evaluationId}": {"get": {
            "summary": "One evaluation: scope, trigger, status, progress, counts, problems",
            "parameters": [id, {"name": "evaluationId", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": with(problem_responses(&["401", "404"]), "200", json_ok("The evaluation", json!({"$ref": "#/components/schemas/Evaluation"})))
        }},
        "/api/v1/scorecards/{id}/results": {"get": {
            "summary": "Entities per level, and each rule's counts per status and pass rate",
            "parameters": [id],
            "responses": with(problem_responses(&["401", "404"]), "200", json_ok("Results", object.clone()))
        }},
        "/api/v1/scorecards/{id}/entities": {"get": {
            "summary": "The evaluated entities with their level, failing rules and next level, by reference",
            "parameters": [id, page[0], page[1],
                {"name": "level", "in": "query", "description": "only entities at this level", "schema": {"type": "string"}},
                {"name": "rule", "in": "query", "description": "only entities with this rule in `status`", "schema": {"type": "string"}},
                {"name": "status", "in": "query", "description": "with `rule`; default fail",
                 "schema": {"type": "string", "enum": ["pass", "fail", "error", "exempt", "skip"]}}],
            "responses": with(problem_responses(&["400", "401", "404", "422"]), "200", json_ok("Entities", object.clone()))
        }},
        "/api/v1/scorecards/{id}/exemptions": {
            "get": {"summary": "A scorecard's exemptions, expired ones included", "parameters": [id],
                "responses": with(problem_responses(&["401", "404"]), "200", json_ok("Exemptions", object.clone()))},
            "post": {"summary": "Exempt one entity from one rule until a time, with a reason (admin); the entity is re-evaluated",
                "parameters": [id],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                    "required": ["entityRef", "ruleId", "reason", "expiresAt"], "properties": {
                        "entityRef": {"type": "string"}, "ruleId": {"type": "string"},
                        "reason": {"type": "string"}, "expiresAt": {"type": "string", "format": "date-time"}}}}}},
                "responses": with(problem_responses(&["400", "401", "403", "404", "415", "422"]), "201", json_ok("The exemption", object.clone()))}
        },
        "/api/v1/scorecards/{id}/exemptions/{ruleId}/{kind}/{namespace}/{name}": {"delete": {
            "summary": "Revoke an exemption (admin)",
            "parameters": [id, {"name": "ruleId", "in": "path", "required": true, "schema": {"type": "string"}}, entity[0], entity[1], entity[2]],
            "responses": with(problem_responses(&["401", "403", "404"]), "204", json!({"description": "Revoked"}))
        }},
        "/api/v1/entities/{kind}/{namespace}/{name}/scorecards": {"get": {
            "summary": "The entity's level on every scorecard that covers it, its failing rules with their messages, and the rules between it and the next level",
            "parameters": [entity[0], entity[1], entity[2]],
            "responses": with(problem_responses(&["401", "404"]), "200", json_ok("Standings", object.clone()))
        }},
        "/api/v1/entities/{kind}/{namespace}/{name}/scorecards/{id}/history": {"get": {
            "summary": "The entity's level on a scorecard over time, oldest first",
            "parameters": [entity[0], entity[1], entity[2], id],
            "responses": with(problem_responses(&["401", "404"]), "200", json_ok("History", object.clone()))
        }},
        "/api/v1/entities/{kind}/{namespace}/{name}/scorecards/{id}/badge.svg": {"get": {
            "summary": "An SVG badge of the entity's level, for READMEs; readable without a token when `[scorecards] public_badges = true`",
            "parameters": [entity[0], entity[1], entity[2], id],
            "responses": with(problem_responses(&["401", "404"]), "200", json!({"description": "The badge", "content": {"image/svg+xml": {}}}))
        }}
    });
    let schemas = json!({
        "Scorecard": {"type": "object", "required": ["title", "rules"], "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "filter": {"type": "object", "description": "Which entities it covers: kinds, types, tags, lifecycles, namespaces, owners, fields {path: value}"},
            "levels": {"type": "array", "items": {"type": "string"}, "description": "Lowest first; default Basic, Bronze, Silver, Gold"},
            "rules": {"type": "array", "items": {"type": "object", "required": ["id", "title", "level", "check"], "properties": {
                "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
                "level": {"type": "string"}, "check": {"type": "string", "description": "plugin/check"},
                "parameters": {"type": "object"}}}}
        }},
        "Evaluation": {"type": "object", "required": ["id", "scorecard", "scope", "trigger", "status"], "properties": {
            "id": {"type": "string"}, "scorecard": {"type": "string"},
            "scope": {"type": "string", "enum": ["all", "entities"]},
            "entityCount": {"type": ["integer", "null"]},
            "trigger": {"type": "string", "enum": ["created", "changed", "schedule", "catalog-change", "manual"]},
            "actor": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
            "counts": {"type": ["object", "null"]},
            "problems": {"type": "array"},
            "error": {"type": ["object", "null"]}
        }}
    });
    merge_into(doc, "paths", paths);
    if let Some(components) = doc.get_mut("components") {
        merge_into(components, "schemas", schemas);
    }
}

fn add_actions(doc: &mut Value) {
    let json_ok = |desc: &str, schema: Value| json!({"description": desc, "content": {"application/json": {"schema": schema}}});
    let action_id = json!({"name": "id", "in": "path", "required": true, "description": "The action plugin's id", "schema": {"type": "string"}});
    let run_id = json!({"name": "id", "in": "path", "required": true, "description": "The run's id", "schema": {"type": "string"}});
    let limit = json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}});
    let cursor = json!({"name": "cursor", "in": "query", "description": "`next` of the previous page", "schema": {"type": "string"}});
    let query = |name: &str, desc: &str| json!({"name": name, "in": "query", "description": desc, "schema": {"type": "string"}});
    let run = json!({"$ref": "#/components/schemas/Run"});
    let accepted = |desc: &str| {
        json!({"description": desc, "headers": {"Location": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}})
    };
    let paths = json!({
        "/api/v1/actions": {"get": {
            "summary": "The loaded actions; with `entity`, only those that apply to it (its kind, and type and tags where the action narrows them)",
            "parameters": [query("entity", "kind:namespace/name")],
            "responses": with(problem_responses(&["401", "404", "422"]), "200", json_ok("Actions", json!({"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Action"}}}})))
        }},
        "/api/v1/actions/{id}": {"get": {
            "summary": "One action: input schema, entities it applies to, role required, approval",
            "parameters": [action_id],
            "responses": with(problem_responses(&["401", "404"]), "200", json_ok("The action", json!({"$ref": "#/components/schemas/Action"})))
        }},
        "/api/v1/actions/{id}/runs": {"post": {
            "summary": "Start a run: the input is validated against the action's schema (each problem at /input/...), the entity must exist and fit the action, the token needs the action's role. The run is queued, or waits for approval",
            "parameters": [action_id],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
                "input": {"type": "object"}, "entity": {"type": "string", "description": "kind:namespace/name; required when the action applies to entities"}}}}}},
            "responses": with(problem_responses(&["400", "401", "403", "404", "415", "422"]), "202", accepted("Queued (or awaiting approval); Location names the run"))
        }},
        "/api/v1/runs": {"get": {
            "summary": "Runs, newest first",
            "parameters": [query("action", "action id"), query("status", "queued, awaiting-approval, running, succeeded, failed or cancelled"),
                query("entity", "kind:namespace/name"), query("actor", "the actor string"), limit.clone(), cursor.clone()],
            "responses": with(problem_responses(&["401", "422"]), "200", json_ok("Runs", json!({"type": "object", "properties": {
                "items": {"type": "array", "items": run.clone()}, "next": {"type": ["string", "null"]}}})))
        }},
        "/api/v1/runs/{id}": {"get": {
            "summary": "One run: status, input (secret fields redacted), actor, attempt, approval, output, links, error",
            "parameters": [run_id.clone()],
            "responses": with(problem_responses(&["401", "404"]), "200", json_ok("The run", run.clone()))
        }},
        "/api/v1/runs/{id}/logs": {"get": {
            "summary": "The run's log, oldest first: the plugin's lines and the host's own steps, each with its attempt",
            "parameters": [run_id.clone(), {"name": "after", "in": "query", "description": "only lines after this sequence number", "schema": {"type": "integer"}}, limit],
            "responses": with(problem_responses(&["401", "404", "422"]), "200", json_ok("Lines", json!({"type": "object"})))
        }},
        "/api/v1/runs/{id}/logs/stream": {"get": {
            "summary": "The log live as Server-Sent Events: `log` events (id = sequence number, data = the line), then one `status` event with the ended run. Honours Last-Event-ID",
            "parameters": [run_id.clone(), {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}}],
            "responses": with(problem_responses(&["401", "404", "422"]), "200", json!({"description": "The stream", "content": {"text/event-stream": {}}}))
        }},
        "/api/v1/runs/{id}/cancel": {"post": {
            "summary": "Cancel a run (its actor or an admin): a waiting run ends at once, a running one is stopped",
            "parameters": [run_id.clone()],
            "responses": with(problem_responses(&["401", "403", "404", "409"]), "200", json_ok("The run", run.clone()))
        }},
        "/api/v1/runs/{id}/retry": {"post": {
            "summary": "Run a failed or cancelled run again as its next attempt (same id). Secret input fields are not kept after a run ends: send them again as {\"input\": {...}}",
            "parameters": [run_id.clone()],
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"input": {"type": "object"}}}}}},
            "responses": with(problem_responses(&["400", "401", "403", "404", "409", "422"]), "202", accepted("Queued again"))
        }},
        "/api/v1/runs/{id}/approve": {"post": {
            "summary": "Approve a run that waits for approval (a user with the approval role, not the one who started it); it is queued",
            "parameters": [run_id.clone()],
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"comment": {"type": "string"}}}}}},
            "responses": with(problem_responses(&["400", "401", "403", "404", "409"]), "200", json_ok("The run", run.clone()))
        }},
        "/api/v1/runs/{id}/deny": {"post": {
            "summary": "Deny a run that waits for approval, saying why; it ends cancelled",
            "parameters": [run_id],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["comment"], "properties": {"comment": {"type": "string"}}}}}},
            "responses": with(problem_responses(&["400", "401", "403", "404", "409", "422"]), "200", json_ok("The run", run))
        }},
        "/api/v1/audit": {"get": {
            "summary": "The audit trail (admin): who started, approved, denied, cancelled or retried which run, when, with which input (secrets redacted); newest first",
            "parameters": [query("actor", "the actor string"), query("action", "run.start, run.approve, run.deny, run.cancel or run.retry"),
                query("subject", "run:<id>"), json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}), cursor],
            "responses": with(problem_responses(&["401", "403", "422"]), "200", json_ok("Entries", json!({"type": "object"})))
        }}
    });
    let schemas = json!({
        "Action": {"type": "object", "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "version": {"type": ["string", "null"]}, "contract": {"type": ["string", "null"]},
            "entityKinds": {"type": "array", "items": {"type": "string"}},
            "entityTypes": {"type": "array", "items": {"type": "string"}},
            "entityTags": {"type": "array", "items": {"type": "string"}},
            "inputSchema": {"type": "object"},
            "requiredRole": {"type": "string", "enum": ["viewer", "member", "admin"]},
            "approval": {"type": ["string", "null"], "enum": ["viewer", "member", "admin", null]}
        }},
        "Run": {"type": "object", "properties": {
            "id": {"type": "string"}, "action": {"type": "string"}, "actionVersion": {"type": "string"},
            "entity": {"type": ["string", "null"]}, "input": {"type": "object"},
            "status": {"type": "string", "enum": ["queued", "awaiting-approval", "running", "succeeded", "failed", "cancelled"]},
            "actor": {"type": "string"}, "attempt": {"type": "integer"},
            "createdAt": {"type": "string", "format": "date-time"}, "queuedAt": {"type": "string", "format": "date-time"},
            "startedAt": {"type": ["string", "null"]}, "finishedAt": {"type": ["string", "null"]},
            "approval": {"type": ["object", "null"]}, "output": {"type": ["object", "null"]},
            "links": {"type": "array"}, "error": {"type": ["object", "null"]},
            "cancelRequested": {"type": "boolean"}, "cancelledBy": {"type": ["string", "null"]},
            "worker": {"type": ["string", "null"]}
        }}
    });
    merge_into(doc, "paths", paths);
    if let Some(components) = doc.get_mut("components") {
        merge_into(components, "schemas", schemas);
    }
}

fn add_templates(doc: &mut Value) {
    let json_ok = |desc: &str, schema: Value| json!({"description": desc, "content": {"application/json": {"schema": schema}}});
    let id = json!({"name": "id", "in": "path", "required": true, "description": "The template plugin's id", "schema": {"type": "string"}});
    let template = json!({"$ref": "#/components/schemas/Template"});
    let paths = json!({
        "/api/v1/templates": {"get": {
            "summary": "The loaded templates (scaffold generators) with their parameter forms and publish targets",
            "responses": with(problem_responses(&["401"]), "200", json_ok("Templates", json!({"type": "object", "properties": {"items": {"type": "array", "items": template.clone()}}})))
        }},
        "/api/v1/templates/{id}": {"get": {
            "summary": "One template with its parameters schema (one object schema, or a list of pages)",
            "parameters": [id.clone()],
            "responses": with(problem_responses(&["401", "404"]), "200", json_ok("The template", template))
        }},
        "/api/v1/templates/{id}/runs": {"post": {
            "summary": "Run a template (member). Parameters are validated against every page of its form (each problem at /parameters/...). With dryRun the generated files come back at once and nothing is written; otherwise the run (kind `template`, followed under /api/v1/runs) generates, checks every path, publishes to the template's directory or git target, registers the entity and runs the template's steps",
            "parameters": [id],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
                "parameters": {"type": "object"}, "dryRun": {"type": "boolean", "default": false}}}}}},
            "responses": with(
                with(problem_responses(&["400", "401", "403", "404", "409", "415", "422"]), "200",
                    json_ok("Dry run: files (path, size, executable, content or contentBase64), entity, links, messages, log", json!({"type": "object"}))),
                "202",
                json!({"description": "Started; Location names the run", "headers": {"Location": {"schema": {"type": "string"}}},
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}}))
        }}
    });
    let schemas = json!({
        "Template": {"type": "object", "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "version": {"type": ["string", "null"]}, "contract": {"type": ["string", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "parametersSchema": {"description": "an object schema, or an array of them (form pages)"},
            "pages": {"type": "integer"},
            "target": {"type": ["object", "null"], "description": "kind directory or git, and the steps after publishing"}
        }}
    });
    merge_into(doc, "paths", paths);
    if let Some(components) = doc.get_mut("components") {
        merge_into(components, "schemas", schemas);
    }
}
