//! The catalog: search with facets, and the entity page.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use portolan_store::Role;
use serde_json::Value;

use super::graph::{self, Edge};
use super::{encode, entity_href, pill, segment, Page, PageError, Section, Session, Ui};

/// Rows on one page of the catalog.
const PAGE_SIZE: u32 = 50;

/// The filters with facets: the query parameter, the entity field, a label.
const FACETS: &[(&str, &str, &str)] = &[
    ("kind", "kind", "Kind"),
    ("owner", "spec.owner", "Owner"),
    ("lifecycle", "spec.lifecycle", "Lifecycle"),
    ("tag", "metadata.tags", "Tag"),
];

/// Options listed per facet, most frequent first.
const MAX_OPTIONS: usize = 100;

/// The sortable columns: label, sort field.
const COLUMNS: &[(&str, Option<&str>)] = &[
    ("Name", Some("metadata.name")),
    ("Kind", Some("kind")),
    ("Type", Some("spec.type")),
    ("Owner", Some("spec.owner")),
    ("Lifecycle", Some("spec.lifecycle")),
    ("Tags", None),
    ("Description", None),
];

const FIELDS: &str = "kind,metadata.name,metadata.namespace,metadata.title,metadata.description,metadata.tags,spec.type,spec.owner,spec.lifecycle";

/// The catalog's query string, as the page keeps it.
#[derive(Default, Clone)]
struct Filters {
    q: String,
    values: HashMap<&'static str, String>,
    sort: String,
    cursor: String,
}

impl Filters {
    fn from(raw: &HashMap<String, String>) -> Filters {
        let get = |k: &str| raw.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        let mut values = HashMap::new();
        for (param, _, _) in FACETS {
            let v = get(param);
            if !v.is_empty() {
                values.insert(*param, v);
            }
        }
        Filters {
            q: get("q"),
            values,
            sort: get("sort"),
            cursor: get("cursor"),
        }
    }

    /// The API query for these filters, leaving out the facet `skip`.
    fn api(&self, skip: Option<&str>) -> String {
        let mut parts = Vec::new();
        if !self.q.is_empty() {
            parts.push(format!("q={}", encode(&self.q)));
        }
        for (param, _, _) in FACETS {
            if Some(*param) == skip {
                continue;
            }
            if let Some(v) = self.values.get(param) {
                parts.push(format!("{param}={}", encode(v)));
            }
        }
        parts.join("&")
    }

    /// A link to the catalog with these filters, changed by `edit`.
    fn link(&self, edit: impl FnOnce(&mut Filters)) -> String {
        let mut f = self.clone();
        f.cursor.clear();
        edit(&mut f);
        let mut parts = Vec::new();
        if !f.q.is_empty() {
            parts.push(format!("q={}", encode(&f.q)));
        }
        for (param, _, _) in FACETS {
            if let Some(v) = f.values.get(param) {
                parts.push(format!("{param}={}", encode(v)));
            }
        }
        if !f.sort.is_empty() {
            parts.push(format!("sort={}", encode(&f.sort)));
        }
        if !f.cursor.is_empty() {
            parts.push(format!("cursor={}", encode(&f.cursor)));
        }
        if parts.is_empty() {
            "/catalog".into()
        } else {
            format!("/catalog?{}", parts.join("&"))
        }
    }
}

/// `GET /catalog`.
pub async fn list(
    State(ui): State<Ui>,
    session: Session,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let filters = Filters::from(&raw);
    let mut uri = format!("/api/v1/entities?limit={PAGE_SIZE}&fields={FIELDS}");
    let base = filters.api(None);
    if !base.is_empty() {
        uri.push('&');
        uri.push_str(&base);
    }
    if !filters.sort.is_empty() {
        uri.push_str(&format!("&sort={}", encode(&filters.sort)));
    } else if filters.q.is_empty() {
        uri.push_str("&sort=metadata.name");
    }
    if !filters.cursor.is_empty() {
        uri.push_str(&format!("&cursor={}", encode(&filters.cursor)));
    }
    // The facets of the filters not in use share one count; each filter in
    // use is counted without itself, so its other values stay on offer.
    let free: Vec<&str> = FACETS
        .iter()
        .filter(|(p, _, _)| !filters.values.contains_key(p))
        .map(|(_, field, _)| *field)
        .collect();
    let mut facet_calls = Vec::new();
    if !free.is_empty() {
        facet_calls.push(format!(
            "/api/v1/entities/facets?field={}{}{}",
            free.join(","),
            if base.is_empty() { "" } else { "&" },
            base
        ));
    }
    for (param, field, _) in FACETS {
        if filters.values.contains_key(param) {
            let rest = filters.api(Some(param));
            facet_calls.push(format!(
                "/api/v1/entities/facets?field={field}{}{rest}",
                if rest.is_empty() { "" } else { "&" },
            ));
        }
    }
    let page_call = ui.call(&session, Method::GET, &uri, None);
    let facet_futures =
        futures_util::future::join_all(facet_calls.iter().map(|u| ui.facets(&session, u)));
    let (page, facet_answers) = tokio::join!(page_call, facet_futures);
    if page.status == axum::http::StatusCode::UNAUTHORIZED {
        return Err(PageError::SignIn);
    }
    let mut counts: HashMap<String, Vec<(String, u64)>> = HashMap::new();
    for answer in facet_answers.iter().flatten() {
        if let Some(map) = answer["facets"].as_object() {
            for (field, list) in map {
                let mut values: Vec<(String, u64)> = list
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(|c| {
                                Some((c["value"].as_str()?.to_owned(), c["count"].as_u64()?))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                counts.insert(field.clone(), values);
            }
        }
    }
    let problem = (!page.ok()).then(|| page.detail());
    let body = page.json();
    let items = body["items"].as_array().cloned().unwrap_or_default();
    let total = body["total"].as_u64();
    let next = body["nextCursor"].as_str().map(str::to_owned);
    let markup = html! {
        h1 { "Catalog" }
        form.search method="get" action="/catalog" role="search" data-live="catalog" {
            div.searchbox {
                label for="q" { "Search the catalog" }
                input type="search" id="q" name="q" value=(filters.q) placeholder="name, title, description, tags…" autocomplete="off";
                button type="submit" { "Search" }
            }
            div.facets {
                @for (param, field, label) in FACETS {
                    @let chosen = filters.values.get(param).cloned().unwrap_or_default();
                    @let options: Vec<(String, u64)> = counts.get(*field).map(|c| c.iter().take(MAX_OPTIONS).cloned().collect()).unwrap_or_default();
                    div.facet {
                        label for={"facet-" (param)} { (label) }
                        select id={"facet-" (param)} name=(param) {
                            option value="" { "Any " (label.to_lowercase()) }
                            @if !chosen.is_empty() && !options.iter().any(|(v, _)| *v == chosen) {
                                option value=(chosen) selected { (chosen) " (0)" }
                            }
                            @for (value, n) in &options {
                                option value=(value) selected[*value == chosen] { (value) " (" (n) ")" }
                            }
                        }
                    }
                }
            }
            @if !filters.sort.is_empty() {
                input type="hidden" name="sort" value=(filters.sort);
            }
        }
        @if let Some(problem) = &problem {
            p.problem role="alert" { (problem) }
        }
        div id="results" {
            p.count aria-live="polite" {
                @match total {
                    Some(t) => { (items.len()) " shown of " (t) " " (if t == 1 { "entity" } else { "entities" }) }
                    None => { (items.len()) " shown" }
                }
                @if !filters.values.is_empty() || !filters.q.is_empty() {
                    " · " a href="/catalog" { "clear filters" }
                }
            }
            @if !items.is_empty() {
                table.catalog {
                    thead {
                        tr {
                            @for (label, sort) in COLUMNS {
                                @match sort {
                                    Some(field) => {
                                        @let asc = filters.sort == *field;
                                        @let desc = filters.sort == format!("-{field}");
                                        th scope="col" aria-sort=(if asc { "ascending" } else if desc { "descending" } else { "none" }) {
                                            a href=(filters.link(|f| f.sort = if asc { format!("-{field}") } else { field.to_string() })) {
                                                (label)
                                                @if asc { " ▲" } @else if desc { " ▼" }
                                            }
                                        }
                                    }
                                    None => { th scope="col" { (label) } }
                                }
                            }
                        }
                    }
                    tbody {
                        @for e in &items {
                            (row(e))
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if !filters.cursor.is_empty() {
                    a href=(filters.link(|_| {})) { "← First page" }
                }
                @if let Some(next) = &next {
                    a rel="next" href=(filters.link(|f| f.cursor = next.clone())) { "Next page →" }
                }
            }
        }
    };
    Ok(Page {
        title: "Catalog".into(),
        section: Section::Catalog,
        session: &session,
        refresh: None,
        body: markup,
    }
    .into_response())
}

fn row(e: &Value) -> Markup {
    let kind = e["kind"].as_str().unwrap_or_default();
    let ns = e["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = e["metadata"]["name"].as_str().unwrap_or_default();
    let href = format!(
        "/catalog/{}/{}/{}",
        segment(&kind.to_lowercase()),
        segment(&ns.to_lowercase()),
        segment(&name.to_lowercase())
    );
    let title = e["metadata"]["title"].as_str();
    let owner = e["spec"]["owner"].as_str();
    html! {
        tr {
            td {
                a href=(href) { (title.unwrap_or(name)) }
                @if title.is_some() { br; small.muted { (name) } }
                @if ns != "default" { " " small.muted { "(" (ns) ")" } }
            }
            td { (kind) }
            td { (e["spec"]["type"].as_str().unwrap_or("")) }
            td {
                @if let Some(owner) = owner {
                    a href=(entity_href(&owner_ref(owner))) { (owner) }
                }
            }
            td { (e["spec"]["lifecycle"].as_str().unwrap_or("")) }
            td {
                @for t in e["metadata"]["tags"].as_array().into_iter().flatten() {
                    span.tag { (t.as_str().unwrap_or_default()) } " "
                }
            }
            td.desc { (e["metadata"]["description"].as_str().unwrap_or("")) }
        }
    }
}

/// `spec.owner` is a Group unless it says otherwise.
fn owner_ref(owner: &str) -> String {
    if owner.contains(':') {
        owner.to_owned()
    } else {
        format!("group:{owner}")
    }
}

/// `GET /catalog/{kind}/{namespace}/{name}`.
pub async fn entity(
    State(ui): State<Ui>,
    session: Session,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    let path = format!(
        "/api/v1/entities/{}/{}/{}",
        segment(&kind),
        segment(&namespace),
        segment(&name)
    );
    let entity = ui.get(&session, &path).await?;
    let reference = format!(
        "{}:{}/{}",
        entity["kind"].as_str().unwrap_or(&kind).to_lowercase(),
        entity["metadata"]["namespace"]
            .as_str()
            .unwrap_or(&namespace),
        entity["metadata"]["name"].as_str().unwrap_or(&name)
    );
    let cards_path = format!("{path}/scorecards");
    let actions_path = format!("/api/v1/actions?entity={}", encode(&reference));
    let (cards, actions) = tokio::join!(
        ui.call(&session, Method::GET, &cards_path, None),
        ui.call(&session, Method::GET, &actions_path, None),
    );
    let cards = if cards.ok() {
        cards.json()["items"].clone()
    } else {
        Value::Null
    };
    let actions = if actions.ok() {
        actions.json()["items"].clone()
    } else {
        Value::Null
    };
    let mut badges: Vec<(String, Vec<u8>)> = Vec::new();
    for card in cards.as_array().into_iter().flatten() {
        if let Some(badge) = card["badge"].as_str() {
            let answer = ui.call(&session, Method::GET, badge, None).await;
            if answer.ok() {
                badges.push((
                    card["scorecard"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    answer.body.to_vec(),
                ));
            }
        }
    }
    let meta = &entity["metadata"];
    let title = meta["title"]
        .as_str()
        .or(meta["name"].as_str())
        .unwrap_or(&name)
        .to_owned();
    let edges: Vec<Edge> = entity["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(Edge {
                kind: r["type"].as_str()?.to_owned(),
                target: r["targetRef"].as_str()?.to_owned(),
            })
        })
        .collect();
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for e in &edges {
        match grouped.iter_mut().find(|(k, _)| *k == e.kind) {
            Some((_, list)) => list.push(e.target.clone()),
            None => grouped.push((e.kind.clone(), vec![e.target.clone()])),
        }
    }
    let markup = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/catalog" { "Catalog" } " › "
            a href=(format!("/catalog?kind={}", encode(entity["kind"].as_str().unwrap_or_default()))) { (entity["kind"].as_str().unwrap_or_default()) }
            " › " (meta["name"].as_str().unwrap_or_default())
        }
        h1 { (title) }
        p.subtitle { code { (reference) } }
        @if let Some(d) = meta["description"].as_str() { p.lead { (d) } }
        div.columns {
            section.card aria-labelledby="about-h" {
                h2 id="about-h" { "About" }
                dl.facts {
                    dt { "Kind" } dd { (entity["kind"].as_str().unwrap_or_default()) }
                    @for (key, label) in [("type", "Type"), ("lifecycle", "Lifecycle"), ("owner", "Owner"), ("system", "System"), ("domain", "Domain")] {
                        @if let Some(v) = entity["spec"][key].as_str() {
                            dt { (label) }
                            dd {
                                @match key {
                                    "owner" => { a href=(entity_href(&owner_ref(v))) { (v) } }
                                    "system" => { a href=(entity_href(&format!("system:{v}"))) { (v) } }
                                    "domain" => { a href=(entity_href(&format!("domain:{v}"))) { (v) } }
                                    _ => { (v) }
                                }
                            }
                        }
                    }
                    dt { "Namespace" } dd { (meta["namespace"].as_str().unwrap_or("default")) }
                    @if let Some(tags) = meta["tags"].as_array().filter(|t| !t.is_empty()) {
                        dt { "Tags" }
                        dd {
                            @for t in tags {
                                @let t = t.as_str().unwrap_or_default();
                                a.tag href=(format!("/catalog?tag={}", encode(t))) { (t) } " "
                            }
                        }
                    }
                }
                @if let Some(links) = meta["links"].as_array().filter(|l| !l.is_empty()) {
                    h3 { "Links" }
                    (super::link_list(links))
                }
            }
            section.card aria-labelledby="actions-h" {
                h2 id="actions-h" { "Actions" }
                @match actions.as_array() {
                    Some(list) if !list.is_empty() => {
                        ul.actions {
                            @for a in list {
                                (action_item(a, &reference, &session))
                            }
                        }
                    }
                    _ => { p.muted { "No action applies to this entity." } }
                }
                p { a href=(format!("/runs?entity={}", encode(&reference))) { "Runs on this entity" } }
            }
        }
        section.card aria-labelledby="scorecards-h" {
            h2 id="scorecards-h" { "Scorecards" }
            @match cards.as_array() {
                Some(list) if !list.is_empty() => {
                    @for card in list {
                        (scorecard(card, &badges))
                    }
                }
                _ => { p.muted { "No scorecard covers this entity yet." } }
            }
        }
        section.card aria-labelledby="relations-h" {
            h2 id="relations-h" { "Relations" }
            @if edges.is_empty() {
                p.muted { "No relations." }
            } @else {
                div.graph-wrap { (graph::picture(&reference, &edges)) }
                dl.relations {
                    @for (kind, targets) in &grouped {
                        dt { (kind) }
                        dd {
                            ul {
                                @for t in targets {
                                    li { a href=(entity_href(t)) { (t) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(annotations) = meta["annotations"].as_object().filter(|a| !a.is_empty()) {
            section.card aria-labelledby="annotations-h" {
                h2 id="annotations-h" { "Annotations" }
                table.kv {
                    @for (k, v) in annotations {
                        tr { th scope="row" { code { (k) } } td { (v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())) } }
                    }
                }
            }
        }
        @if let Some(labels) = meta["labels"].as_object().filter(|a| !a.is_empty()) {
            section.card aria-labelledby="labels-h" {
                h2 id="labels-h" { "Labels" }
                table.kv {
                    @for (k, v) in labels {
                        tr { th scope="row" { code { (k) } } td { (v.as_str().unwrap_or_default()) } }
                    }
                }
            }
        }
        details.raw {
            summary { "Descriptor (JSON)" }
            pre { (super::pretty(&entity)) }
        }
    };
    Ok(Page {
        title,
        section: Section::Catalog,
        session: &session,
        refresh: None,
        body: markup,
    }
    .into_response())
}

fn action_item(a: &Value, reference: &str, session: &Session) -> Markup {
    let id = a["id"].as_str().unwrap_or_default();
    let needs: Role = a["requiredRole"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(Role::Member);
    html! {
        li {
            strong { (a["title"].as_str().filter(|t| !t.is_empty()).unwrap_or(id)) }
            @if let Some(d) = a["description"].as_str().filter(|d| !d.is_empty()) { br; span.muted { (d) } }
            br;
            @if session.can(needs) {
                a.button href=(format!("/actions/{}?entity={}", segment(id), encode(reference))) { "Run…" }
                @if let Some(approver) = a["approval"].as_str() {
                    " " small.muted { "needs approval by " (approver) }
                }
            } @else if session.signed_in() {
                small.muted { "needs the " (needs) " role" }
            } @else {
                small.muted { a href="/sign-in" { "Sign in" } " to run it" }
            }
        }
    }
}

fn scorecard(card: &Value, badges: &[(String, Vec<u8>)]) -> Markup {
    let id = card["scorecard"]["id"].as_str().unwrap_or_default();
    let title = card["scorecard"]["title"].as_str().unwrap_or(id);
    let level = card["level"].as_str();
    let badge = badges.iter().find(|(b, _)| b == id);
    let failing: Vec<&Value> = card["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] == "fail" || r["status"] == "error")
        .collect();
    html! {
        article.scorecard {
            h3 {
                a href=(format!("/scorecards/{}", segment(id))) { (title) }
                " "
                @match badge {
                    Some((_, svg)) => { span.badge { (super::inline_svg(svg)) } }
                    None => { (pill(level.unwrap_or("no level"))) }
                }
            }
            p {
                "Level: " strong { (level.unwrap_or("none yet")) }
                @if card["levelSince"].is_string() { " since " (super::when(&card["levelSince"])) }
            }
            @if let Some(next) = card["nextLevel"].as_object() {
                div.next {
                    p { "To reach " strong { (next.get("level").and_then(Value::as_str).unwrap_or_default()) } ", fix:" }
                    ul {
                        @for r in next.get("rules").and_then(Value::as_array).into_iter().flatten() {
                            li {
                                (r["title"].as_str().or(r["id"].as_str()).unwrap_or_default())
                                @if let Some(m) = r["message"].as_str() { " — " span.muted { (m) } }
                            }
                        }
                    }
                }
            }
            @if !failing.is_empty() {
                details {
                    summary { (failing.len()) " failing " (if failing.len() == 1 { "rule" } else { "rules" }) }
                    ul {
                        @for r in &failing {
                            li { (pill(r["status"].as_str().unwrap_or_default())) " " (r["title"].as_str().or(r["id"].as_str()).unwrap_or_default()) " (" (r["level"].as_str().unwrap_or_default()) ")"
                                @if let Some(m) = r["message"].as_str() { ": " (m) } }
                        }
                    }
                }
            }
            table.rules {
                thead { tr { th scope="col" { "Rule" } th scope="col" { "Level" } th scope="col" { "Result" } th scope="col" { "Detail" } } }
                tbody {
                    @for r in card["rules"].as_array().into_iter().flatten() {
                        tr {
                            td { (r["title"].as_str().or(r["id"].as_str()).unwrap_or_default()) }
                            td { (r["level"].as_str().unwrap_or_default()) }
                            td { (pill(r["status"].as_str().unwrap_or_default())) }
                            td {
                                @if let Some(m) = r["message"].as_str() { (m) }
                                @if let Some(x) = r["exemption"].as_object() {
                                    " exempt: " (x.get("reason").and_then(Value::as_str).unwrap_or_default())
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
