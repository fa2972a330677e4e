//! Sign-in and sign-out, and the plugins page.

use std::collections::HashMap;

use axum::extract::{Query, RawForm, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde_json::Value;

use super::{pill, when, Page, PageError, Section, Session, Ui, COOKIE};

/// Only a path of this portal is a place to go back to after signing in.
fn local(next: Option<&String>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.clone(),
        _ => "/catalog".into(),
    }
}

fn sign_in_page(
    session: &Session,
    next: &str,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let body = html! {
        h1 { "Sign in" }
        p.lead { "Paste an API token. Ask an admin for one, or create one on the server with " code { "portolan token create --role member" } "." }
        form.narrow method="post" action="/sign-in" {
            @if let Some(p) = problem {
                div.error-summary role="alert" { p { (p) } }
            }
            input type="hidden" name="next" value=(next);
            div class={"field" @if problem.is_some() { " invalid" }} {
                label for="token" { "Token" }
                input type="password" id="token" name="token" autocomplete="current-password" required autofocus
                    aria-invalid=[problem.map(|_| "true")];
            }
            div.buttons { button.primary type="submit" { "Sign in" } }
        }
        p.muted { "The token is kept in a cookie of this browser only, until you sign out." }
    };
    let page = Page {
        title: "Sign in".into(),
        section: Section::None,
        session,
        refresh: None,
        body,
    };
    super::html_response(status, page.render())
}

/// `GET /sign-in`.
pub async fn sign_in_form(session: Session, Query(q): Query<HashMap<String, String>>) -> Response {
    sign_in_page(&session, &local(q.get("next")), None, StatusCode::OK)
}

/// `POST /sign-in`: checks the token and keeps it in the session cookie.
pub async fn sign_in(State(ui): State<Ui>, headers: HeaderMap, RawForm(raw): RawForm) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&raw).into_owned().collect();
    let next = local(form.get("next"));
    let anonymous = Session { info: None };
    let token = form.get("token").map(|t| t.trim()).unwrap_or_default();
    if token.is_empty() {
        return sign_in_page(
            &anonymous,
            &next,
            Some("Enter a token."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    if token.len() > 512 || !token.chars().all(|c| c.is_ascii_graphic()) {
        return sign_in_page(
            &anonymous,
            &next,
            Some("That is not a Portolan token."),
            StatusCode::UNAUTHORIZED,
        );
    }
    match ui.app.store.verify_token(token).await {
        Ok(Some(_)) => {
            let secure = headers
                .get("x-forwarded-proto")
                .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
            let cookie = format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}",
                if secure { "; Secure" } else { "" }
            );
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(None) => sign_in_page(
            &anonymous,
            &next,
            Some("This token is unknown or has been revoked."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "ui: cannot verify a token at sign-in");
            sign_in_page(
                &anonymous,
                &next,
                Some("The portal cannot reach its database; try again shortly."),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}

/// `POST /sign-out`: forgets the token.
pub async fn sign_out() -> Response {
    let mut r = Redirect::to("/sign-in").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("portolan_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// `GET /plugins`.
pub async fn plugins(State(ui): State<Ui>, session: Session) -> Result<Response, PageError> {
    let list = ui.get(&session, "/api/v1/plugins").await?;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let failed = items.iter().filter(|p| p["status"] == "failed").count();
    let body = html! {
        h1 { "Plugins" }
        p.lead {
            (items.len()) " in the plugins folder"
            @if failed > 0 { ", " strong { (failed) " failed to load" } }
            ". Drop a " code { ".wasm" } " file (and its sidecar " code { ".toml" } ") into the folder and it appears here."
        }
        table.plugins {
            thead { tr {
                th scope="col" { "Plugin" } th scope="col" { "Role" } th scope="col" { "Version" }
                th scope="col" { "Status" } th scope="col" { "Grants" } th scope="col" { "Loaded" }
            } }
            tbody {
                @for p in &items {
                    @let id = p["id"].as_str().unwrap_or_default();
                    tr id={"plugin-" (id)} {
                        td {
                            strong { (id) }
                            @if let Some(t) = p["describe"]["title"].as_str().filter(|t| !t.is_empty() && *t != id) { br; (t) }
                            @if let Some(d) = p["describe"]["description"].as_str().filter(|d| !d.is_empty()) { br; small.muted { (d) } }
                        }
                        td { (p["role"].as_str().unwrap_or("—")) }
                        td {
                            (p["version"].as_str().unwrap_or("—"))
                            @if let Some(c) = p["contract"].as_str() { br; small.muted { "contract " (c) } }
                        }
                        td {
                            (pill(p["status"].as_str().unwrap_or_default()))
                            @if let Some(e) = p["error"].as_str() { p.plugin-error role="note" { (e) } }
                        }
                        td { (grants(&p["grants"], p["sidecar"] == true)) }
                        td {
                            (when(&p["loadedAt"]))
                            br; small.muted { (p["loadMs"]) " ms"
                                @if let Some(o) = p["origin"].as_str() { ", " (o) } }
                        }
                    }
                }
            }
        }
    };
    Ok(Page {
        title: "Plugins".into(),
        section: Section::Plugins,
        session: &session,
        refresh: None,
        body,
    }
    .into_response())
}

/// What the sidecar granted, each non-empty grant on its own line.
fn grants(g: &Value, sidecar: bool) -> Markup {
    let entries: Vec<(&String, &Value)> = g
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| match v {
                    Value::Null => false,
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !o.is_empty(),
                    Value::String(s) => !s.is_empty(),
                    _ => true,
                })
                .collect()
        })
        .unwrap_or_default();
    html! {
        @if entries.is_empty() {
            span.muted { @if sidecar { "nothing" } @else { "no sidecar: nothing" } }
        } @else {
            dl.grants {
                @for (k, v) in entries {
                    dt { (k) }
                    dd { (compact(v)) }
                }
            }
        }
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::Object(fields) => fields
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match (k.as_str(), v.as_u64()) {
                ("memoryBytes", Some(n)) => format!("memory {} MiB", n / (1024 * 1024)),
                ("timeoutMs", Some(n)) => format!("timeout {n} ms"),
                _ => format!("{k} {}", compact(v)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}
