//! Day-2 actions and runs: the action list, the input form generated from
//! the action's schema, the runs list, and the run page with its live log
//! and the buttons its viewer may use.

use std::collections::HashMap;

use axum::extract::{Path, Query, RawForm, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use portolan_store::Role;
use serde_json::{json, Value};

use super::forms::{self, FormState};
use super::{
    encode, entity_href, pill, pretty, segment, when, Page, PageError, Section, Session, Ui,
};

/// `GET /actions`.
pub async fn actions(State(ui): State<Ui>, session: Session) -> Result<Response, PageError> {
    let list = ui.get(&session, "/api/v1/actions").await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { "Actions" }
        p.lead { "Day-2 operations you can run on the catalog's entities without production access. Open an entity to see the actions that apply to it." }
        @if items.is_empty() {
            p.muted { "No action plugin is loaded." }
        } @else {
            table {
                thead { tr { th scope="col" { "Action" } th scope="col" { "Applies to" } th scope="col" { "Who may run it" } th scope="col" { "Approval" } } }
                tbody {
                    @for a in &items {
                        @let id = a["id"].as_str().unwrap_or_default();
                        tr {
                            td {
                                a href=(format!("/actions/{}", segment(id))) { (a["title"].as_str().filter(|t| !t.is_empty()).unwrap_or(id)) }
                                br; small.muted { (a["description"].as_str().unwrap_or_default()) }
                            }
                            td { (applies_to(a)) }
                            td { (a["requiredRole"].as_str().unwrap_or("member")) }
                            td { (a["approval"].as_str().map(|r| format!("by a {r}")).unwrap_or_else(|| "none".into())) }
                        }
                    }
                }
            }
        }
    };
    Ok(Page {
        title: "Actions".into(),
        section: Section::Actions,
        session: &session,
        refresh: None,
        body,
    }
    .into_response())
}

fn applies_to(a: &Value) -> String {
    let list = |key: &str| -> Vec<String> {
        a[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let kinds = list("entityKinds");
    if kinds.is_empty() {
        return "no entity (standalone)".into();
    }
    let mut text = kinds.join(", ");
    let types = list("entityTypes");
    if !types.is_empty() {
        text.push_str(&format!(" of type {}", types.join(" or ")));
    }
    let tags = list("entityTags");
    if !tags.is_empty() {
        text.push_str(&format!(" tagged {}", tags.join(" or ")));
    }
    text
}

/// `GET /actions/{id}`: the form.
pub async fn action_form(
    State(ui): State<Ui>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let action = ui
        .get(&session, &format!("/api/v1/actions/{}", segment(&id)))
        .await?;
    let entity = q.get("entity").cloned().unwrap_or_default();
    Ok(form_page(
        &session,
        &action,
        &entity,
        &FormState::default(),
        StatusCode::OK,
    ))
}

fn form_page(
    session: &Session,
    action: &Value,
    entity: &str,
    state: &FormState,
    status: StatusCode,
) -> Response {
    let id = action["id"].as_str().unwrap_or_default();
    let title = action["title"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or(id)
        .to_owned();
    let schema = &action["inputSchema"];
    let needs: Role = action["requiredRole"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(Role::Member);
    let standalone = action["entityKinds"]
        .as_array()
        .is_none_or(|k| k.is_empty());
    let mut known = Vec::new();
    forms::pointers(schema, "/input", &mut known);
    known.push(("/entity".into(), "Entity".into()));
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/actions" { "Actions" } " › " (title) }
        h1 { (title) }
        @if let Some(d) = action["description"].as_str().filter(|d| !d.is_empty()) { p.lead { (d) } }
        @if let Some(approver) = action["approval"].as_str() {
            p.note { "A run waits for the approval of another person with the " strong { (approver) } " role." }
        }
        (forms::summary(state, &known))
        @if !session.signed_in() {
            p.note { a href="/sign-in" { "Sign in" } " to run this action." }
        } @else if !session.can(needs) {
            p.note { "Running this action needs the " strong { (needs) } " role; your token has " (session.info.as_ref().map(|i| i.role.to_string()).unwrap_or_default()) "." }
        } @else {
            form.schema-form method="post" action=(format!("/actions/{}", segment(id))) novalidate {
                @if !standalone {
                    @let errors: Vec<&str> = state.errors.iter().filter(|(p, _)| p == "/entity").map(|(_, m)| m.as_str()).collect();
                    div class={"field" @if !errors.is_empty() { " invalid" }} {
                        label for=(forms::field_id("/entity")) { "Entity" span.req aria-hidden="true" { " *" } span.sr { " (required)" } }
                        p.hint id="entity-hint" { "The entity to run it on, as kind:namespace/name (applies to " (applies_to(action)) ")." }
                        @if !errors.is_empty() { p.field-error { @for e in &errors { (e) " " } } }
                        input type="text" id=(forms::field_id("/entity")) name="/entity" value=(entity) required
                            aria-describedby="entity-hint" aria-invalid=[(!errors.is_empty()).then_some("true")];
                    }
                }
                (forms::fields(schema, "/input", state))
                div.buttons { button.primary type="submit" { "Run " (title) } }
            }
        }
    };
    let page = Page {
        title,
        section: Section::Actions,
        session,
        refresh: None,
        body,
    };
    super::html_response(status, page.render())
}

/// `POST /actions/{id}`: validates through the API, then goes to the run.
pub async fn start(
    State(ui): State<Ui>,
    session: Session,
    Path(id): Path<String>,
    RawForm(raw): RawForm,
) -> Result<Response, PageError> {
    let action = ui
        .get(&session, &format!("/api/v1/actions/{}", segment(&id)))
        .await?;
    let posted: Vec<(String, String)> = form_urlencoded::parse(&raw).into_owned().collect();
    let mut state = FormState::from_posted(&posted);
    let entity = state
        .values
        .get("/entity")
        .and_then(|v| v.last())
        .cloned()
        .unwrap_or_default();
    let mut problems = Vec::new();
    let input = forms::read(&action["inputSchema"], "/input", &state, &mut problems);
    if !problems.is_empty() {
        state.errors = problems;
        return Ok(form_page(
            &session,
            &action,
            &entity,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let mut body = json!({ "input": input });
    if !entity.trim().is_empty() {
        body["entity"] = json!(entity.trim());
    }
    let answer = ui
        .call(
            &session,
            Method::POST,
            &format!("/api/v1/actions/{}/runs", segment(&id)),
            Some(&body),
        )
        .await;
    if answer.ok() {
        let run = answer.json();
        let run_id = run["id"].as_str().unwrap_or_default();
        return Ok(Redirect::to(&format!("/runs/{}", segment(run_id))).into_response());
    }
    if answer.status == StatusCode::UNAUTHORIZED {
        return Err(PageError::SignIn);
    }
    let mut errors = answer.field_errors();
    if errors.is_empty() {
        errors.push((String::new(), answer.detail()));
    }
    state.add_api_errors(&errors, "/input", "/input");
    Ok(form_page(&session, &action, &entity, &state, answer.status))
}

/// `GET /runs`.
pub async fn list(
    State(ui): State<Ui>,
    session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let mut uri = String::from("/api/v1/runs?limit=50");
    for key in ["status", "kind", "action", "entity", "actor", "cursor"] {
        if let Some(v) = q.get(key).filter(|v| !v.is_empty()) {
            uri.push_str(&format!("&{key}={}", encode(v)));
        }
    }
    let answer = ui.call(&session, Method::GET, &uri, None).await;
    if answer.status == StatusCode::UNAUTHORIZED {
        return Err(PageError::SignIn);
    }
    let problem = (!answer.ok()).then(|| answer.detail());
    let page = answer.json();
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let chosen = |k: &str| q.get(k).cloned().unwrap_or_default();
    let next = page["nextCursor"].as_str().map(|c| {
        let mut parts: Vec<String> = ["status", "kind", "action", "entity", "actor"]
            .iter()
            .filter_map(|k| {
                q.get(*k)
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{k}={}", encode(v)))
            })
            .collect();
        parts.push(format!("cursor={}", encode(c)));
        format!("/runs?{}", parts.join("&"))
    });
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            div.facet {
                label for="status" { "Status" }
                select id="status" name="status" {
                    option value="" { "Any status" }
                    @for s in ["queued", "awaiting-approval", "running", "succeeded", "failed", "cancelled"] {
                        option value=(s) selected[chosen("status") == s] { (s) }
                    }
                }
            }
            div.facet {
                label for="kind" { "Kind" }
                select id="kind" name="kind" {
                    option value="" { "Actions and templates" }
                    option value="action" selected[chosen("kind") == "action"] { "Actions" }
                    option value="template" selected[chosen("kind") == "template"] { "Templates" }
                }
            }
            div.facet {
                label for="entity" { "Entity" }
                input type="text" id="entity" name="entity" value=(chosen("entity")) placeholder="kind:namespace/name";
            }
            div.facet { button type="submit" { "Filter" } }
        }
        @if let Some(p) = problem { p.problem role="alert" { (p) } }
        @if items.is_empty() {
            p.muted { "No runs." }
        } @else {
            table.runs {
                thead { tr { th scope="col" { "Run" } th scope="col" { "Status" } th scope="col" { "What" } th scope="col" { "Entity" } th scope="col" { "By" } th scope="col" { "Created" } } }
                tbody {
                    @for r in &items {
                        @let id = r["id"].as_str().unwrap_or_default();
                        tr {
                            td { a href=(format!("/runs/{}", segment(id))) { code { (id) } } }
                            td { (pill(r["status"].as_str().unwrap_or_default())) }
                            td { (r["kind"].as_str().unwrap_or_default()) " " strong { (r["action"].as_str().unwrap_or_default()) } }
                            td { @if let Some(e) = r["entity"].as_str() { a href=(entity_href(e)) { (e) } } }
                            td { (r["actor"].as_str().unwrap_or_default()) }
                            td { (when(&r["createdAt"])) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            nav.pager aria-label="Pages" { a rel="next" href=(next) { "Older runs →" } }
        }
    };
    Ok(Page {
        title: "Runs".into(),
        section: Section::Runs,
        session: &session,
        refresh: None,
        body,
    }
    .into_response())
}

/// `GET /runs/{id}`.
pub async fn run(
    State(ui): State<Ui>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let run = ui
        .get(&session, &format!("/api/v1/runs/{}", segment(&id)))
        .await?;
    let logs = ui
        .get(
            &session,
            &format!("/api/v1/runs/{}/logs?limit=5000", segment(&id)),
        )
        .await?;
    let action = if run["kind"] == "action" {
        let a = ui
            .call(
                &session,
                Method::GET,
                &format!(
                    "/api/v1/actions/{}",
                    segment(run["action"].as_str().unwrap_or_default())
                ),
                None,
            )
            .await;
        a.ok().then(|| a.json())
    } else {
        None
    };
    Ok(run_page(&session, &run, &logs, action.as_ref(), None))
}

fn run_page(
    session: &Session,
    run: &Value,
    logs: &Value,
    action: Option<&Value>,
    problem: Option<(StatusCode, String)>,
) -> Response {
    let id = run["id"].as_str().unwrap_or_default();
    let status = run["status"].as_str().unwrap_or_default();
    let done = matches!(status, "succeeded" | "failed" | "cancelled");
    let lines = logs["items"].as_array().cloned().unwrap_or_default();
    let last_seq = lines.last().and_then(|l| l["seq"].as_i64()).unwrap_or(0);
    let actor = run["actor"].as_str().unwrap_or_default();
    let me = session.info.as_ref();
    let mine = me.is_some_and(|t| crate::actions::same_person(t, actor));
    let can_cancel = !done && (mine || session.can(Role::Admin)) && session.can(Role::Member);
    let approval = &run["approval"];
    let approver: Option<Role> = approval["required"].as_str().and_then(|r| r.parse().ok());
    let can_decide =
        status == "awaiting-approval" && approver.is_some_and(|r| session.can(r)) && !mine;
    let needed: Role = action
        .and_then(|a| a["requiredRole"].as_str())
        .and_then(|r| r.parse().ok())
        .unwrap_or(Role::Member);
    let can_retry = run["kind"] == "action"
        && matches!(status, "failed" | "cancelled")
        && action.is_some()
        && session.can(needed);
    let what = run["action"].as_str().unwrap_or_default();
    let title = format!("Run {id}");
    let output = &run["output"];
    let new_entity = output["entity"].as_str();
    let remote = output["target"]["remote"]
        .as_str()
        .or(output["target"]["url"].as_str());
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/runs" { "Runs" } " › " code { (id) } }
        h1 {
            (if run["kind"] == "template" { "Template " } else { "Action " })
            (what)
            " " span id="run-status" data-status=(status) { (pill(status)) }
        }
        @if let Some((code, text)) = &problem {
            p.problem role="alert" { (text) " (" (code.as_u16()) ")" }
        }
        dl.facts {
            dt { "Run" } dd { code { (id) } " attempt " (run["attempt"]) }
            @if let Some(e) = run["entity"].as_str() { dt { "Entity" } dd { a href=(entity_href(e)) { (e) } } }
            dt { "Started by" } dd { (actor) }
            dt { "Created" } dd { (when(&run["createdAt"])) }
            @if run["startedAt"].is_string() { dt { "Started" } dd { (when(&run["startedAt"])) } }
            @if run["finishedAt"].is_string() { dt { "Finished" } dd { (when(&run["finishedAt"])) } }
            @if let Some(w) = run["worker"].as_str() { dt { "Worker" } dd { (w) } }
        }
        @if approval.is_object() {
            section.card aria-labelledby="approval-h" {
                h2 id="approval-h" { "Approval" }
                @match approval["decision"].as_str() {
                    Some(d) => {
                        p { (pill(d)) " by " (approval["by"].as_str().unwrap_or_default()) " at " (when(&approval["at"]))
                            @if let Some(c) = approval["comment"].as_str() { ": " q { (c) } } }
                    }
                    None => { p { "Waiting for a person with the " strong { (approval["required"].as_str().unwrap_or_default()) } " role." } }
                }
                @if can_decide {
                    div.decide {
                        form method="post" action=(format!("/runs/{}/approve", segment(id))) {
                            label for="approve-comment" { "Comment (optional)" }
                            input type="text" id="approve-comment" name="comment";
                            button.primary type="submit" { "Approve" }
                        }
                        form method="post" action=(format!("/runs/{}/deny", segment(id))) {
                            label for="deny-comment" { "Why deny it? (required)" }
                            input type="text" id="deny-comment" name="comment" required;
                            button.danger type="submit" { "Deny" }
                        }
                    }
                } @else if status == "awaiting-approval" && mine {
                    p.muted { "Another person must approve your run." }
                }
            }
        }
        @if can_cancel || can_retry {
            div.buttons {
                @if can_cancel {
                    form method="post" action=(format!("/runs/{}/cancel", segment(id))) {
                        button.danger type="submit" { "Cancel run" }
                    }
                }
                @if can_retry {
                    form method="post" action=(format!("/runs/{}/retry", segment(id))) {
                        button type="submit" { "Retry" }
                    }
                }
            }
        }
        @if done && (new_entity.is_some() || remote.is_some()) {
            section.card.result aria-labelledby="result-h" {
                h2 id="result-h" { "Created" }
                ul {
                    @if let Some(e) = new_entity { li { "Catalog entity: " a id="new-entity" href=(entity_href(e)) { (e) } } }
                    @if let Some(r) = remote {
                        li { "Repository: "
                            @if super::is_web(r) { a id="new-repository" href=(r) rel="noopener noreferrer" { (r) } }
                            @else { code id="new-repository" { (r) } } }
                    }
                    @if let Some(path) = output["target"]["path"].as_str() { li { "Written to " code { (path) } } }
                }
            }
        }
        @if let Some(links) = run["links"].as_array().filter(|l| !l.is_empty()) {
            section.card aria-labelledby="links-h" {
                h2 id="links-h" { "Links" }
                (super::link_list(links))
            }
        }
        @if !run["error"].is_null() {
            section.card.failure aria-labelledby="error-h" {
                h2 id="error-h" { "Why it failed" }
                p role="alert" { (run["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| pretty(&run["error"]))) }
                @if let Some(code) = run["error"]["code"].as_str() { p.muted { "code: " code { (code) } } }
            }
        }
        section.card aria-labelledby="log-h" {
            h2 id="log-h" { "Log" }
            pre.log id="log" data-run=(id) data-after=(last_seq) data-done=(done) aria-live="polite" {
                @for l in &lines { (log_line(l)) }
            }
            @if !done { p.muted.nojs-hint { "This page follows the run as it goes." } }
        }
        @if !run["input"].is_null() && run["input"] != json!({}) {
            details { summary { "Input" } pre { (pretty(&run["input"])) } }
        }
        @if !output.is_null() {
            details { summary { "Output" } pre { (pretty(output)) } }
        }
    };
    let page = Page {
        title,
        section: Section::Runs,
        session,
        refresh: (!done).then_some(2),
        body,
    };
    let code = problem.map(|(c, _)| c).unwrap_or(StatusCode::OK);
    super::html_response(code, page.render())
}

fn log_line(l: &Value) -> Markup {
    let at = l["at"]
        .as_str()
        .and_then(|t| t.get(11..19))
        .unwrap_or_default();
    let level = l["level"].as_str().unwrap_or("info");
    html! {
        span class={"line " (level)} data-seq=(l["seq"]) {
            span.at { (at) } " " span.level { (level) } " " (l["message"].as_str().unwrap_or_default()) "\n"
        }
    }
}

/// `GET /runs/{id}/events`: the run's log stream for the page's script,
/// resuming after `?after=` (or the browser's `Last-Event-ID`).
pub async fn events(
    State(ui): State<Ui>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    mut headers: HeaderMap,
) -> Response {
    if !headers.contains_key("last-event-id") {
        if let Some(after) = q.get("after").and_then(|a| a.parse::<i64>().ok()) {
            if let Ok(v) = after.to_string().parse() {
                headers.insert("last-event-id", v);
            }
        }
    }
    ui.stream(
        &session,
        &format!("/api/v1/runs/{}/logs/stream", segment(&id)),
        &headers,
    )
    .await
}

/// `POST /runs/{id}/{approve|deny|cancel|retry}`.
pub async fn decide(
    State(ui): State<Ui>,
    session: Session,
    Path((id, verb)): Path<(String, String)>,
    RawForm(raw): RawForm,
) -> Result<Response, PageError> {
    if !["approve", "deny", "cancel", "retry"].contains(&verb.as_str()) {
        return Err(PageError::Status(
            StatusCode::NOT_FOUND,
            format!("runs have no {verb:?} button"),
        ));
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&raw).into_owned().collect();
    let body = match verb.as_str() {
        "approve" | "deny" => {
            let comment = form.get("comment").map(|c| c.trim()).unwrap_or_default();
            if comment.is_empty() {
                json!({})
            } else {
                json!({ "comment": comment })
            }
        }
        _ => json!({}),
    };
    let answer = ui
        .call(
            &session,
            Method::POST,
            &format!("/api/v1/runs/{}/{verb}", segment(&id)),
            Some(&body),
        )
        .await;
    if answer.ok() {
        return Ok(Redirect::to(&format!("/runs/{}", segment(&id))).into_response());
    }
    if answer.status == StatusCode::UNAUTHORIZED {
        return Err(PageError::SignIn);
    }
    // Show the run again with the reason the button did not work.
    let run = ui
        .get(&session, &format!("/api/v1/runs/{}", segment(&id)))
        .await?;
    let logs = ui
        .get(
            &session,
            &format!("/api/v1/runs/{}/logs?limit=5000", segment(&id)),
        )
        .await?;
    Ok(run_page(
        &session,
        &run,
        &logs,
        None,
        Some((answer.status, answer.detail())),
    ))
}
