//! Scorecards: how many entities sit at each level, each rule's pass rate,
//! and the entities behind a rule's result.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::Value;

use super::{encode, entity_href, pill, segment, when, Page, PageError, Section, Session, Ui};

/// A horizontal bar per level, with the count and share.
fn distribution(levels: &[(String, u64)], total: u64, id: &str) -> Markup {
    html! {
        table.distribution {
            caption.sr { "Entities per level" }
            thead { tr { th scope="col" { "Level" } th scope="col" { "Entities" } th scope="col" { "Share" } } }
            tbody {
                @for (level, n) in levels {
                    @let share = if total > 0 { *n as f64 * 100.0 / total as f64 } else { 0.0 };
                    tr {
                        th scope="row" {
                            a href=(format!("/scorecards/{}?level={}", segment(id), encode(level))) { (level) }
                        }
                        td.num { (n) }
                        td {
                            svg.bar width="200" height="12" viewBox="0 0 200 12" aria-hidden="true" {
                                rect.track width="200" height="12" rx="3" {}
                                rect class={"fill lvl-" (level.to_lowercase())} width=(format!("{:.1}", share * 2.0)) height="12" rx="3" {}
                            }
                            " " (format!("{share:.0} %"))
                        }
                    }
                }
            }
        }
    }
}

/// `GET /scorecards`.
pub async fn list(State(ui): State<Ui>, session: Session) -> Result<Response, PageError> {
    let list = ui.get(&session, "/api/v1/scorecards").await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { "Scorecards" }
        @for e in list["fileErrors"].as_array().into_iter().flatten() {
            p.problem { "A scorecard file could not be read: " (e.to_string()) }
        }
        @if items.is_empty() {
            p.muted { "No scorecard is defined." }
        }
        @for card in &items {
            @let id = card["id"].as_str().unwrap_or_default();
            @let total = card["summary"]["entities"].as_u64().unwrap_or(0);
            @let levels: Vec<(String, u64)> = card["levels"].as_array().into_iter().flatten()
                .filter_map(|l| l.as_str())
                .map(|l| (l.to_owned(), card["summary"]["levels"][l].as_u64().unwrap_or(0)))
                .collect();
            section.card {
                h2 { a href=(format!("/scorecards/{}", segment(id))) { (card["title"].as_str().unwrap_or(id)) } }
                @if let Some(d) = card["description"].as_str() { p { (d) } }
                p.muted { (total) " entities evaluated · " (card["rules"].as_array().map(Vec::len).unwrap_or(0)) " rules" }
                (distribution(&levels, total, id))
            }
        }
    };
    Ok(Page {
        title: "Scorecards".into(),
        section: Section::Scorecards,
        session: &session,
        refresh: None,
        body,
    }
    .into_response())
}

/// `GET /scorecards/{id}` (with `?level=` the entities at that level).
pub async fn one(
    State(ui): State<Ui>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let results = ui
        .get(
            &session,
            &format!("/api/v1/scorecards/{}/results", segment(&id)),
        )
        .await?;
    let title = results["scorecard"]["title"]
        .as_str()
        .unwrap_or(&id)
        .to_owned();
    let total = results["entities"].as_u64().unwrap_or(0);
    let levels: Vec<(String, u64)> = results["levels"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["level"].as_str().unwrap_or_default().to_owned(),
                l["entities"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let level = q.get("level").filter(|l| !l.is_empty()).cloned();
    let at_level = match &level {
        Some(l) => Some(
            ui.get(
                &session,
                &format!(
                    "/api/v1/scorecards/{}/entities?limit=200&level={}{}",
                    segment(&id),
                    encode(l),
                    q.get("cursor")
                        .map(|c| format!("&cursor={}", encode(c)))
                        .unwrap_or_default()
                ),
            )
            .await?,
        ),
        None => None,
    };
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/scorecards" { "Scorecards" } " › " (title) }
        h1 { (title) }
        p.muted {
            (total) " entities evaluated"
            @if let Some(e) = results["lastEvaluation"].as_object() {
                " · last full evaluation " (when(e.get("finishedAt").unwrap_or(&Value::Null))) " (" (e.get("status").and_then(Value::as_str).unwrap_or_default()) ")"
            }
        }
        section.card aria-labelledby="levels-h" {
            h2 id="levels-h" { "Levels" }
            (distribution(&levels, total, &id))
        }
        section.card aria-labelledby="rules-h" {
            h2 id="rules-h" { "Rules" }
            table.rules {
                thead { tr {
                    th scope="col" { "Rule" } th scope="col" { "Level" } th scope="col" { "Pass rate" }
                    th scope="col" { "Pass" } th scope="col" { "Fail" } th scope="col" { "Error" } th scope="col" { "Exempt" } th scope="col" { "Skip" }
                } }
                tbody {
                    @for r in results["rules"].as_array().into_iter().flatten() {
                        @let rule = r["id"].as_str().unwrap_or_default();
                        @let link = |status: &str| format!("/scorecards/{}/rules/{}?status={status}", segment(&id), segment(rule));
                        tr {
                            td { (r["title"].as_str().unwrap_or(rule)) br; small.muted { code { (r["check"].as_str().unwrap_or_default()) } } }
                            td { (r["level"].as_str().unwrap_or_default()) }
                            td.num {
                                @match r["passRate"].as_f64() {
                                    Some(rate) => { (format!("{:.0} %", rate * 100.0)) }
                                    None => { "—" }
                                }
                            }
                            @for status in ["pass", "fail", "error", "exempt", "skip"] {
                                @let n = r["counts"][status].as_u64().unwrap_or(0);
                                td.num {
                                    @if n > 0 { a href=(link(status)) aria-label=(format!("{n} entities with {status} on {rule}")) { (n) } }
                                    @else { "0" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let (Some(level), Some(page)) = (&level, &at_level) {
            section.card aria-labelledby="at-level-h" {
                h2 id="at-level-h" { "Entities at " (level) }
                (standings(page))
                @if let Some(next) = page["nextCursor"].as_str() {
                    nav.pager { a rel="next" href=(format!("/scorecards/{}?level={}&cursor={}", segment(&id), encode(level), encode(next))) { "More →" } }
                }
            }
        }
    };
    Ok(Page {
        title,
        section: Section::Scorecards,
        session: &session,
        refresh: None,
        body,
    }
    .into_response())
}

fn standings(page: &Value) -> Markup {
    html! {
        @match page["items"].as_array() {
            Some(items) if !items.is_empty() => {
                ul.standings {
                    @for e in items {
                        @let r = e["entityRef"].as_str().unwrap_or_default();
                        li { a href=(entity_href(r)) { (r) } " " (pill(e["level"].as_str().unwrap_or("none"))) }
                    }
                }
            }
            _ => { p.muted { "None." } }
        }
    }
}

/// `GET /scorecards/{id}/rules/{rule}?status=fail`: the entities with that
/// result on the rule, with the check's message for each.
pub async fn rule(
    State(ui): State<Ui>,
    session: Session,
    Path((id, rule)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let status = q
        .get("status")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "fail".into());
    let mut uri = format!(
        "/api/v1/scorecards/{}/entities?limit=200&rule={}&status={}",
        segment(&id),
        encode(&rule),
        encode(&status)
    );
    if let Some(c) = q.get("cursor") {
        uri.push_str(&format!("&cursor={}", encode(c)));
    }
    let card_uri = format!("/api/v1/scorecards/{}", segment(&id));
    let (card, page) = tokio::join!(ui.get(&session, &card_uri), ui.get(&session, &uri));
    let (card, page) = (card?, page?);
    let title = card["title"].as_str().unwrap_or(&id).to_owned();
    let rule_def = card["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == rule.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    let rule_title = rule_def["title"].as_str().unwrap_or(&rule).to_owned();
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/scorecards" { "Scorecards" } " › "
            a href=(format!("/scorecards/{}", segment(&id))) { (title) } " › " (rule_title)
        }
        h1 { (rule_title) ": " (pill(&status)) }
        @if let Some(d) = rule_def["description"].as_str() { p.lead { (d) } }
        p.muted { "Check " code { (rule_def["check"].as_str().unwrap_or_default()) } ", needed for " (rule_def["level"].as_str().unwrap_or_default()) "." }
        nav.tabs aria-label="Result" {
            @for s in ["fail", "error", "pass", "exempt", "skip"] {
                @if s == status {
                    a aria-current="page" href=(format!("/scorecards/{}/rules/{}?status={s}", segment(&id), segment(&rule))) { (s) }
                } @else {
                    a href=(format!("/scorecards/{}/rules/{}?status={s}", segment(&id), segment(&rule))) { (s) }
                }
            }
        }
        @if items.is_empty() {
            p.muted { "No entity has this result." }
        } @else {
            table {
                thead { tr { th scope="col" { "Entity" } th scope="col" { "Level" } th scope="col" { "Message" } } }
                tbody {
                    @for e in &items {
                        @let r = e["entityRef"].as_str().unwrap_or_default();
                        @let result = e["rules"].as_array().into_iter().flatten().find(|x| x["id"] == rule.as_str());
                        tr {
                            td { a href=(entity_href(r)) { (r) } }
                            td { (pill(e["level"].as_str().unwrap_or("none"))) }
                            td { (result.and_then(|x| x["message"].as_str()).unwrap_or_default()) }
                        }
                    }
                }
            }
            @if let Some(next) = page["nextCursor"].as_str() {
                nav.pager { a rel="next" href=(format!("/scorecards/{}/rules/{}?status={}&cursor={}", segment(&id), segment(&rule), encode(&status), encode(next))) { "More →" } }
            }
        }
    };
    Ok(Page {
        title: format!("{rule_title} · {title}"),
        section: Section::Scorecards,
        session: &session,
        refresh: None,
        body,
    }
    .into_response())
}
