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
                    "415" => "Body is not JSON",
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
    let json_ok = |desc: &str, schema: Value| json!({"description": desc, "content": {"application/json": {"schema": schema}}});
    json!({
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
                        "hash": {"type": "string", "description": "SHA-256 of the .wasm file"},
                        "describe": {"type": "object", "description": "What the plugin's describe returned: title, version, description and role-specific schemas"},
                        "grants": {"type": "object", "description": "What the sidecar grants: limits, httpAllow, dirs, secrets (names), settings"},
                        "sidecar": {"type": "boolean"},
                        "loadedAt": {"type": "string", "format": "date-time"},
                        "loadMs": {"type": "integer"},
                        "origin": {"type": "string", "enum": ["compiled", "cache"]}
                    }
                },
                "Token": {"type": "object", "required": ["id", "role", "createdAt"], "properties": {
                    "id": {"type": "string"},
                    "role": {"type": "string", "enum": ["viewer", "member", "admin"]},
                    "description": {"type": "string"},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "lastUsedAt": {"type": ["string", "null"], "format": "date-time"}
                }}
            }
        }
    })
}
