//! The scaffolder's pages: the templates, and a template's form (each page
//! of its schema a section) with a preview of the files and a run.

use axum::extract::{Path, RawForm, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use portolan_store::Role;
use serde_json::{json, Map, Value};

use super::forms::{self, FormState};
use super::{segment, Page, PageError, Section, Session, Ui};

/// `GET /templates`.
pub async fn list(State(ui): State<Ui>, session: Session) -> Result<Response, PageError> {
    let list = ui.get(&session, "/api/v1/templates").await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { "Create something new" }
        p.lead { "Templates start new projects on the company's golden path: the code, its pipeline and its catalog entry." }
        @if items.is_empty() {
            p.muted { "No template plugin is loaded." }
        } @else {
            ul.tiles {
                @for t in &items {
                    @let id = t["id"].as_str().unwrap_or_default();
                    li.tile {
                        h2 { a href=(format!("/templates/{}", segment(id))) { (t["title"].as_str().filter(|s| !s.is_empty()).unwrap_or(id)) } }
                        p { (t["description"].as_str().unwrap_or_default()) }
                        p.muted {
                            @for tag in t["tags"].as_array().into_iter().flatten() {
                                span.tag { (tag.as_str().unwrap_or_default()) } " "
                            }
                            @if let Some(kind) = t["target"]["kind"].as_str() { "publishes to a " (kind) }
                            @else { "preview only (no publish target)" }
                        }
                    }
                }
            }
        }
    };
    Ok(Page {
        title: "Create".into(),
        section: Section::Templates,
        session: &session,
        refresh: None,
        body,
    }
    .into_response())
}

fn pages(template: &Value) -> Vec<Value> {
    match &template["parametersSchema"] {
        Value::Array(p) => p.clone(),
        one => vec![one.clone()],
    }
}

/// `GET /templates/{id}`.
pub async fn form(
    State(ui): State<Ui>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let template = ui
        .get(&session, &format!("/api/v1/templates/{}", segment(&id)))
        .await?;
    Ok(render(
        &session,
        &template,
        &FormState::default(),
        None,
        StatusCode::OK,
    ))
}

fn render(
    session: &Session,
    template: &Value,
    state: &FormState,
    preview: Option<&Value>,
    status: StatusCode,
) -> Response {
    let id = template["id"].as_str().unwrap_or_default();
    let title = template["title"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or(id)
        .to_owned();
    let pages = pages(template);
    let mut known = Vec::new();
    for p in &pages {
        forms::pointers(p, "", &mut known);
    }
    let publishes = template["target"].is_object();
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/templates" { "Create" } " › " (title) }
        h1 { (title) }
        @if let Some(d) = template["description"].as_str().filter(|d| !d.is_empty()) { p.lead { (d) } }
        (forms::summary(state, &known))
        @if !session.signed_in() {
            p.note { a href="/sign-in" { "Sign in" } " to use this template." }
        } @else if !session.can(Role::Member) {
            p.note { "Creating a project needs the " strong { "member" } " role; your token has " (session.info.as_ref().map(|i| i.role.to_string()).unwrap_or_default()) "." }
        } @else {
            form.schema-form method="post" action=(format!("/templates/{}", segment(id))) novalidate {
                @for (i, page) in pages.iter().enumerate() {
                    fieldset.page {
                        legend {
                            @if pages.len() > 1 { "Step " (i + 1) " of " (pages.len()) ": " }
                            (page["title"].as_str().unwrap_or("Parameters"))
                        }
                        @if let Some(d) = page["description"].as_str() { p.hint { (d) } }
                        (forms::fields(page, "", state))
                    }
                }
                div.buttons {
                    button type="submit" name="intent" value="preview" { "Preview files" }
                    @if publishes {
                        button.primary type="submit" name="intent" value="run" { "Create" }
                    }
                }
            }
        }
        @if let Some(p) = preview {
            section.card.preview aria-labelledby="preview-h" {
                h2 id="preview-h" tabindex="-1" { "Preview: " (p["files"].as_array().map(Vec::len).unwrap_or(0)) " files" }
                @if let Some(e) = p["entity"].as_object() {
                    p { "Catalog entity: " code { (e.get("kind").and_then(Value::as_str).unwrap_or_default()) ":"
                        (e.get("metadata").and_then(|m| m["name"].as_str()).unwrap_or_default()) } }
                }
                @for m in p["messages"].as_array().into_iter().flatten() {
                    p.note { (m.as_str().unwrap_or_default()) }
                }
                @for f in p["files"].as_array().into_iter().flatten() {
                    details.file {
                        summary { code { (f["path"].as_str().unwrap_or_default()) } " " small.muted { (f["size"]) " bytes" @if f["executable"] == true { ", executable" } } }
                        @match f["content"].as_str() {
                            Some(text) => { pre { (text) } }
                            None => { p.muted { "binary file" } }
                        }
                    }
                }
            }
        }
    };
    let page = Page {
        title,
        section: Section::Templates,
        session,
        refresh: None,
        body,
    };
    super::html_response(status, page.render())
}

/// `POST /templates/{id}`: preview (a dry run) or create (a run).
pub async fn submit(
    State(ui): State<Ui>,
    session: Session,
    Path(id): Path<String>,
    RawForm(raw): RawForm,
) -> Result<Response, PageError> {
    let template = ui
        .get(&session, &format!("/api/v1/templates/{}", segment(&id)))
        .await?;
    let posted: Vec<(String, String)> = form_urlencoded::parse(&raw).into_owned().collect();
    let mut state = FormState::from_posted(&posted);
    let preview = state
        .values
        .get("intent")
        .and_then(|v| v.last())
        .is_none_or(|v| v != "run");
    let mut problems = Vec::new();
    let mut parameters = Map::new();
    for page in pages(&template) {
        if let Value::Object(part) = forms::read(&page, "", &state, &mut problems) {
            parameters.extend(part);
        }
    }
    if !problems.is_empty() {
        state.errors = problems;
        return Ok(render(
            &session,
            &template,
            &state,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let body = json!({"parameters": parameters, "dryRun": preview});
    let answer = ui
        .call(
            &session,
            Method::POST,
            &format!("/api/v1/templates/{}/runs", segment(&id)),
            Some(&body),
        )
        .await;
    if answer.status == StatusCode::UNAUTHORIZED {
        return Err(PageError::SignIn);
    }
    if answer.ok() {
        let out = answer.json();
        if preview {
            return Ok(render(
                &session,
                &template,
                &state,
                Some(&out),
                StatusCode::OK,
            ));
        }
        let run_id = out["id"].as_str().unwrap_or_default();
        return Ok(Redirect::to(&format!("/runs/{}", segment(run_id))).into_response());
    }
    let mut errors = answer.field_errors();
    if errors.is_empty() {
        errors.push((String::new(), answer.detail()));
    }
    state.add_api_errors(&errors, "/parameters", "");
    Ok(render(&session, &template, &state, None, answer.status))
}
