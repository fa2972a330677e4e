//! The web UI: HTML pages rendered on the server, served by the portal
//! itself.
//!
//! Every page is a client of the HTTP API: a handler calls the API router
//! in-process with the visitor's token ([`Ui::call`]) and renders what it
//! answers, so the UI shows exactly what the API shows and is allowed
//! exactly what the API allows. The pages work without JavaScript (forms
//! post to the server, which validates through the API and shows each
//! problem beside its field); a small script adds live logs over
//! Server-Sent Events and search as you type.
//!
//! Sign-in stores the visitor's API token in an `HttpOnly`, `SameSite=Strict`
//! cookie. Posts from another origin are refused.
//!
//! Pages: `/catalog` (search, facets, sort, pages), `/catalog/{kind}/{ns}/{name}`
//! (entity), `/templates[/{id}]`, `/actions[/{id}]`, `/runs[/{id}]`,
//! `/scorecards[/{id}[/rules/{rule}]]`, `/plugins`, `/sign-in`.

mod catalog;
mod forms;
mod graph;
mod pages;
mod runs;
mod scorecards;
mod templates;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use portolan_store::{Role, TokenInfo};
use serde_json::Value;
use tower::ServiceExt as _;

use crate::app::AppState;

/// The cookie that carries the visitor's API token.
const COOKIE: &str = "portolan_session";

/// Marks a page answer that must become a redirect to the sign-in page.
const SIGN_IN_MARKER: &str = "x-portolan-sign-in";

/// What the UI's handlers share: the portal's state and the API router they
/// call in-process.
#[derive(Clone)]
pub struct Ui {
    pub app: AppState,
    api: Router,
    /// Recent facet counts of the catalog page, by API path.
    facets: std::sync::Arc<FacetCache>,
}

/// How long the catalog page reuses facet counts. Counting every value of a
/// field over a large catalog costs far more than a page of rows (hundreds
/// of milliseconds at 100,000 entities, against a couple for the rows), and
/// counts a few seconds old are fine beside rows that are always fresh.
const FACET_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Most facet answers kept; the oldest half goes when it is full.
const FACET_ENTRIES: usize = 512;

#[derive(Default)]
pub struct FacetCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Value)>>,
}

impl FacetCache {
    fn get(&self, uri: &str) -> Option<Value> {
        let entries = self.entries.lock().ok()?;
        let (at, v) = entries.get(uri)?;
        (at.elapsed() < FACET_TTL).then(|| v.clone())
    }

    fn put(&self, uri: &str, value: Value) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= FACET_ENTRIES {
            let mut ages: Vec<std::time::Instant> = entries.values().map(|(at, _)| *at).collect();
            ages.sort();
            let cut = ages[ages.len() / 2];
            entries.retain(|_, (at, _)| *at > cut);
        }
        entries.insert(uri.to_owned(), (std::time::Instant::now(), value));
    }
}

/// The UI's routes, ready to be merged beside the API.
pub fn routes(app: AppState, api: Router) -> Router {
    let ui = Ui {
        app,
        api,
        facets: Default::default(),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/catalog") }))
        .route("/ui/assets/app.css", get(asset_css))
        .route("/ui/assets/app.js", get(asset_js))
        .route("/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/sign-out", post(pages::sign_out))
        .route("/catalog", get(catalog::list))
        .route("/catalog/{kind}/{namespace}/{name}", get(catalog::entity))
        .route("/plugins", get(pages::plugins))
        .route("/actions", get(runs::actions))
        .route("/actions/{id}", get(runs::action_form).post(runs::start))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::run))
        .route("/runs/{id}/events", get(runs::events))
        .route("/runs/{id}/{verb}", post(runs::decide))
        .route("/templates", get(templates::list))
        .route(
            "/templates/{id}",
            get(templates::form).post(templates::submit),
        )
        .route("/scorecards", get(scorecards::list))
        .route("/scorecards/{id}", get(scorecards::one))
        .route("/scorecards/{id}/rules/{rule}", get(scorecards::rule))
        .layer(axum::middleware::from_fn(guard))
        .with_state(ui)
}

/// Refuses posts from another origin, and turns a page's "sign in first"
/// into a redirect that comes back to the page afterwards.
async fn guard(request: Request, next: Next) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        if let Err(why) = same_origin(request.headers()) {
            return error_page(StatusCode::FORBIDDEN, "Refused", &why, None);
        }
    }
    let here = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let is_get = request.method() == Method::GET;
    let response = next.run(request).await;
    if response.headers().contains_key(SIGN_IN_MARKER) {
        let back = if is_get { here } else { "/".into() };
        let target = format!("/sign-in?next={}", encode(&back));
        return Redirect::to(&target).into_response();
    }
    response
}

/// A post must come from a page of this portal: browsers send `Origin` (and
/// `Sec-Fetch-Site`) with every form post.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return Err(format!(
                "this form was sent from another site ({site}); open the portal and send it from there"
            ));
        }
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Behind a reverse proxy that rewrites Host, the browser's host is in
    // X-Forwarded-Host.
    let forwarded = headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    if origin == "null" || (origin_host != host && Some(origin_host) != forwarded) {
        return Err(format!(
            "this form was sent from {origin}, not from this portal ({host})"
        ));
    }
    Ok(())
}

async fn asset_css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/app.css"))
}

async fn asset_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        text,
    )
        .into_response()
}

/// Who is looking: the token from the session cookie, if it is still valid.
#[derive(Clone)]
pub struct Session {
    pub info: Option<TokenInfo>,
}

impl Session {
    /// Whether the visitor holds at least `role`.
    pub fn can(&self, role: Role) -> bool {
        self.info.as_ref().is_some_and(|i| i.role >= role)
    }

    /// The name runs and approvals record for this visitor (what the API
    /// records as the actor).
    pub fn signed_in(&self) -> bool {
        self.info.is_some()
    }

    /// An in-process API request as this visitor: with the token the
    /// session already verified (see [`crate::auth::Verified`]), or as
    /// nobody.
    fn authorise(&self, builder: axum::http::request::Builder) -> axum::http::request::Builder {
        match &self.info {
            Some(info) => builder.extension(crate::auth::Verified(info.clone())),
            None => builder,
        }
    }
}

impl FromRequestParts<Ui> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Ok(Session { info: None });
        };
        match ui.app.store.verify_token(&token).await {
            Ok(Some(info)) => Ok(Session { info: Some(info) }),
            // A revoked or unknown token: the visitor is signed out.
            Ok(None) => Ok(Session { info: None }),
            Err(e) => {
                tracing::warn!(error = %e, "ui: cannot verify the session token");
                Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "the portal cannot reach its database; try again shortly",
                    None,
                ))
            }
        }
    }
}

/// The value of cookie `name`, if the request carries it.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// An answer of the API router.
pub struct ApiAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiAnswer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The problem's `detail`, for an error answer.
    pub fn detail(&self) -> String {
        let v = self.json();
        v["detail"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the portal answered {}", self.status))
    }

    /// Each field-level problem as (JSON pointer, message).
    pub fn field_errors(&self) -> Vec<(String, String)> {
        let v = self.json();
        let mut out: Vec<(String, String)> = v["errors"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap_or_default().to_owned(),
                            e["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if out.is_empty() {
            if let Some(field) = v["field"].as_str() {
                out.push((field.to_owned(), self.detail()));
            }
        }
        out
    }
}

/// Why a page cannot be shown.
pub enum PageError {
    SignIn,
    Status(StatusCode, String),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => {
                let mut r = StatusCode::UNAUTHORIZED.into_response();
                r.headers_mut()
                    .insert(SIGN_IN_MARKER, HeaderValue::from_static("1"));
                r
            }
            PageError::Status(status, detail) => {
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::FORBIDDEN => "Not allowed",
                    s if s.is_server_error() => "Something went wrong",
                    _ => "Cannot show this page",
                };
                error_page(status, title, &detail, None)
            }
        }
    }
}

impl From<&ApiAnswer> for PageError {
    fn from(a: &ApiAnswer) -> Self {
        if a.status == StatusCode::UNAUTHORIZED {
            PageError::SignIn
        } else {
            PageError::Status(a.status, a.detail())
        }
    }
}

impl Ui {
    /// Calls the API in-process as the visitor.
    pub async fn call(
        &self,
        session: &Session,
        method: Method,
        uri: &str,
        body: Option<&Value>,
    ) -> ApiAnswer {
        let builder = session.authorise(axum::http::Request::builder().method(method).uri(uri));
        let request = match body {
            Some(v) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(v).unwrap_or_default())),
            None => builder.body(Body::empty()),
        };
        let request = match request {
            Ok(r) => r,
            Err(e) => return internal(format!("building the API request {uri}: {e}")),
        };
        let response = match self.api.clone().oneshot(request).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
            Ok(bytes) => ApiAnswer {
                status: parts.status,
                headers: parts.headers,
                body: bytes,
            },
            Err(e) => internal(format!("reading the API answer of {uri}: {e}")),
        }
    }

    /// Calls the API and returns the raw response, body still streaming
    /// (for the live log).
    pub async fn stream(&self, session: &Session, uri: &str, headers: &HeaderMap) -> Response {
        let mut builder =
            session.authorise(axum::http::Request::builder().method(Method::GET).uri(uri));
        if let Some(last) = headers.get("last-event-id") {
            builder = builder.header("last-event-id", last.clone());
        }
        let Ok(request) = builder.body(Body::empty()) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        match self.api.clone().oneshot(request).await {
            Ok(r) => r,
            Err(e) => match e {},
        }
    }

    /// Facet counts for `uri`, reused for [`FACET_TTL`]. Every reader sees
    /// the whole catalog, so one answer serves everyone.
    pub async fn facets(&self, session: &Session, uri: &str) -> Option<Value> {
        if let Some(v) = self.facets.get(uri) {
            return Some(v);
        }
        let answer = self.call(session, Method::GET, uri, None).await;
        if !answer.ok() {
            return None;
        }
        let v = answer.json();
        self.facets.put(uri, v.clone());
        Some(v)
    }

    /// GET that must succeed: a failure becomes the page's error.
    pub async fn get(&self, session: &Session, uri: &str) -> Result<Value, PageError> {
        let answer = self.call(session, Method::GET, uri, None).await;
        if answer.ok() {
            Ok(answer.json())
        } else {
            Err(PageError::from(&answer))
        }
    }
}

fn internal(detail: String) -> ApiAnswer {
    tracing::error!(%detail, "ui: in-process API call failed");
    ApiAnswer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers: HeaderMap::new(),
        body: Bytes::from(
            serde_json::json!({"detail": "the portal failed to answer; the cause is in its log"})
                .to_string(),
        ),
    }
}

/// The sections of the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Catalog,
    Templates,
    Actions,
    Runs,
    Scorecards,
    Plugins,
    None,
}

/// One HTML page in the portal's frame.
pub struct Page<'a> {
    pub title: String,
    pub section: Section,
    pub session: &'a Session,
    /// Seconds after which a browser without JavaScript reloads the page
    /// (a run still in progress).
    pub refresh: Option<u32>,
    pub body: Markup,
}

impl Page<'_> {
    pub fn render(self) -> Markup {
        let nav = [
            (Section::Catalog, "/catalog", "Catalog"),
            (Section::Templates, "/templates", "Create"),
            (Section::Actions, "/actions", "Actions"),
            (Section::Runs, "/runs", "Runs"),
            (Section::Scorecards, "/scorecards", "Scorecards"),
            (Section::Plugins, "/plugins", "Plugins"),
        ];
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · Portolan" }
                    link rel="stylesheet" href="/ui/assets/app.css";
                    @if let Some(secs) = self.refresh {
                        noscript { meta http-equiv="refresh" content=(secs); }
                    }
                    script src="/ui/assets/app.js" defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/catalog" { "Portolan" }
                        nav aria-label="Main" {
                            ul {
                                @for (section, href, label) in nav {
                                    li {
                                        @if section == self.section {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        div.who {
                            @if let Some(info) = &self.session.info {
                                span.identity title=(format!("token {}", info.id)) {
                                    (display_name(info)) " · " (info.role)
                                }
                                form method="post" action="/sign-out" {
                                    button.link type="submit" { "Sign out" }
                                }
                            } @else {
                                a href="/sign-in" { "Sign in" }
                            }
                        }
                    }
                    main id="main" tabindex="-1" {
                        (self.body)
                    }
                }
            }
        }
    }
}

impl IntoResponse for Page<'_> {
    fn into_response(self) -> Response {
        html_response(StatusCode::OK, self.render())
    }
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, Html(markup.into_string())).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert("x-frame-options", HeaderValue::from_static("DENY"));
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    r
}

/// A page that only says what went wrong.
pub fn error_page(
    status: StatusCode,
    title: &str,
    detail: &str,
    session: Option<&Session>,
) -> Response {
    let anonymous = Session { info: None };
    let page = Page {
        title: title.to_owned(),
        section: Section::None,
        session: session.unwrap_or(&anonymous),
        refresh: None,
        body: html! {
            h1 { (title) }
            p.problem role="alert" { (detail) }
            p { a href="/catalog" { "Back to the catalog" } }
        },
    };
    html_response(status, page.render())
}

/// A token's description, or its id when it has none.
pub fn display_name(info: &TokenInfo) -> String {
    if info.description.trim().is_empty() {
        format!("token {}", info.id)
    } else {
        info.description.clone()
    }
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Percent-encodes one path segment.
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `kind:namespace/name` to the UI's entity page.
pub fn entity_href(entity_ref: &str) -> String {
    match split_ref(entity_ref) {
        Some((kind, ns, name)) => format!(
            "/catalog/{}/{}/{}",
            segment(&kind.to_lowercase()),
            segment(&ns.to_lowercase()),
            segment(&name.to_lowercase())
        ),
        None => format!("/catalog?q={}", encode(entity_ref)),
    }
}

/// `kind:namespace/name` (namespace optional) into its parts.
pub fn split_ref(entity_ref: &str) -> Option<(&str, &str, &str)> {
    let (kind, rest) = entity_ref.split_once(':')?;
    let (ns, name) = rest.split_once('/').unwrap_or(("default", rest));
    (!kind.is_empty() && !name.is_empty()).then_some((kind, ns, name))
}

/// A timestamp from the API as "2026-11-28 20:31 UTC".
pub fn when(v: &Value) -> String {
    let Some(text) = v.as_str() else {
        return "—".into();
    };
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        Err(_) => text.to_owned(),
    }
}

/// A status word as a coloured pill.
pub fn pill(status: &str) -> Markup {
    let tone = match status {
        "succeeded" | "ready" | "pass" | "approved" | "gold" => "good",
        "failed" | "denied" | "fail" | "error" | "interrupted" | "timeout" => "bad",
        "running" | "queued" | "pending" | "awaiting-approval" | "scanning" => "busy",
        _ => "neutral",
    };
    html! { span class={"pill " (tone)} { (status) } }
}

/// Whether a URL is one a browser may follow from the page (not `file:`,
/// `javascript:` or a path on some other host's disk).
pub fn is_web(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// A list of `{url, title}` links: web addresses as links, anything else
/// as text.
pub fn link_list(links: &[Value]) -> Markup {
    html! {
        ul.links {
            @for l in links {
                @let url = l["url"].as_str().unwrap_or_default();
                @let title = l["title"].as_str().filter(|t| !t.is_empty());
                li {
                    @if is_web(url) {
                        a href=(url) rel="noopener noreferrer" { (title.unwrap_or(url)) }
                    } @else {
                        @if let Some(t) = title { (t) " " }
                        code { (url) }
                    }
                }
            }
        }
    }
}

/// A JSON value shown as indented text.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// An SVG document from the API, inlined (it came from this portal's own
/// badge renderer, which escapes what it draws).
pub fn inline_svg(bytes: &[u8]) -> Markup {
    let text = String::from_utf8_lossy(bytes);
    let start = text.find("<svg").unwrap_or(0);
    PreEscaped(text[start..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn posts_must_come_from_this_portal() {
        let ok = |pairs| same_origin(&headers(pairs)).is_ok();
        assert!(ok(&[
            ("host", "portal:7700"),
            ("origin", "http://portal:7700")
        ]));
        assert!(
            ok(&[("host", "portal:7700")]),
            "no Origin: an old browser or a script"
        );
        assert!(!ok(&[
            ("host", "portal:7700"),
            ("origin", "http://evil.example")
        ]));
        assert!(!ok(&[("host", "portal:7700"), ("origin", "null")]));
        assert!(!ok(&[
            ("host", "portal:7700"),
            ("sec-fetch-site", "cross-site")
        ]));
        // Behind a proxy that rewrites Host.
        assert!(ok(&[
            ("host", "10.0.0.5:7700"),
            ("x-forwarded-host", "portal.example.com"),
            ("origin", "https://portal.example.com"),
        ]));
    }

    #[test]
    fn references_become_entity_pages() {
        assert_eq!(
            entity_href("Component:default/Pay"),
            "/catalog/component/default/pay"
        );
        assert_eq!(entity_href("group:team-a"), "/catalog/group/default/team-a");
        assert_eq!(entity_href("a b"), "/catalog?q=a+b");
    }
}
