//! Catalog source `repo-source`: the repositories of a code-hosting
//! organisation, each as a Backstage `Component`.
//!
//! It reads GitHub's REST shape, `GET {base_url}/orgs/{org}/repos?per_page=N&page=K`
//! answering a JSON array of repositories, over `wasi:http` (the sidecar's
//! `[http] allow` must list the API's host). One sync page is one API page:
//! the cursor is the URL of the next one, taken from the `Link` header's
//! `rel="next"`; a server that sends no `Link` header is asked for the next
//! `page` until it answers an empty list.
//!
//! Settings (`[settings]` in the sidecar):
//!
//! | key | default | |
//! | --- | --- | --- |
//! | `org` | required | the organisation |
//! | `owner` | required | `spec.owner` of every Component, e.g. `group:default/platform` |
//! | `base_url` | `https://api.github.com` | the API root (GitHub Enterprise: `https://HOST/api/v3`) |
//! | `per_page` | 100 | repositories per request (GitHub allows at most 100) |
//! | `type` | `service` | `spec.type` |
//! | `lifecycle` | `production` | `spec.lifecycle`; archived repositories are `deprecated` |
//! | `token_secret` | none | the name of a granted secret sent as `Authorization: Bearer` |
//! | `slug_annotation` | from the host | the annotation holding `org/name`; `github.com/project-slug` for GitHub |
//!
//! A non-2xx answer or an answer that is not a list of repositories fails
//! the sync, naming the status and the URL; the host then keeps the last
//! good data.

mod link;
mod map;

use std::collections::HashMap;
use std::time::Duration;

use portolan_sdk::http::{Method, Request, Response};
use portolan_sdk::source::{Error, SourceInfo, SyncPage, SyncRequest};
use portolan_sdk::{about, CatalogSource, Entity};
use serde_json::{json, Value};

use map::{Defaults, Problem};

const DEFAULT_BASE_URL: &str = "https://api.github.com";
const DEFAULT_PER_PAGE: u32 = 100;
const MAX_PER_PAGE: u32 = 1_000;

/// A page number beyond which the server is taken to ignore `page`: without
/// a `Link` header, a server that answers every page with the same list
/// would otherwise keep a sync going for ever.
const MAX_PAGES: u64 = 10_000;

/// How much of a failed answer's body goes into the error.
const MAX_ERROR_BODY: usize = 300;

/// Bounds connecting and each wait for bytes; the sidecar's `timeout_ms`
/// bounds the whole call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

struct RepoSource;

impl CatalogSource for RepoSource {
    fn describe() -> SourceInfo {
        SourceInfo::new(about!(
            "Repositories",
            "Lists an organisation's repositories on GitHub (or an API of the same shape) and \
             catalogs each one as a Component."
        ))
        .with_settings_schema(json!({
            "type": "object",
            "required": ["org", "owner"],
            "properties": {
                "org": {"type": "string", "description": "The organisation whose repositories to list."},
                "owner": {"type": "string", "description": "spec.owner of every Component, e.g. group:default/platform."},
                "base_url": {"type": "string", "default": DEFAULT_BASE_URL, "description": "The API root; its host must be on the [http] allow list."},
                "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
                "type": {"type": "string", "default": "service"},
                "lifecycle": {"type": "string", "default": "production", "description": "Archived repositories are `deprecated` whatever this says."},
                "token_secret": {"type": "string", "description": "Name of a granted secret sent as a bearer token."},
                "slug_annotation": {"type": "string", "description": "Annotation holding org/name; default github.com/project-slug for GitHub, HOST/project-slug otherwise."}
            }
        }))
    }

    fn sync(request: SyncRequest) -> Result<SyncPage, Error> {
        let settings = Settings::from_json(&portolan_sdk::settings())?;
        let url = match request.cursor {
            None => settings.first_url(),
            Some(cursor) => {
                if link::origin(&cursor).as_deref() != Some(settings.origin.as_str()) {
                    return Err(Error::Other(format!(
                        "cursor {cursor} is not on {} (did `base_url` change during the sync?)",
                        settings.origin
                    )));
                }
                cursor
            }
        };
        let mut request = Request::new(Method::Get, url.as_str())
            .header("accept", "application/vnd.github+json, application/json")
            .timeout(REQUEST_TIMEOUT);
        if let Some(name) = &settings.token_secret {
            let token = portolan_sdk::secret(name)
                .map_err(|e| Error::Misconfigured(format!("setting `token_secret`: {e}")))?;
            request = request.bearer(&token);
        }
        let response = request.send()?;
        portolan_sdk::debug!("GET {url}: {}", response.status);
        let page = read_page(&settings, &url, &response)?;
        for note in &page.notes {
            portolan_sdk::warn!("{note}");
        }
        portolan_sdk::info!(
            "{} repositories from {url}{}",
            page.entities.len(),
            if page.next.is_some() {
                ""
            } else {
                " (last page)"
            }
        );
        Ok(SyncPage {
            entities: page.entities,
            next_cursor: page.next,
            total_hint: page.total_hint,
        })
    }
}

portolan_sdk::export!(CatalogSource for RepoSource);

/// The settings, checked.
#[derive(Debug)]
struct Settings {
    /// Without a trailing `/`.
    base_url: String,
    /// `scheme://host:port` of `base_url`: every URL the plugin follows must
    /// have it, so that the token never goes anywhere else.
    origin: String,
    org: String,
    per_page: u32,
    token_secret: Option<String>,
    defaults: Defaults,
}

impl Settings {
    /// Reads the `[settings]` table; every problem is named in one error.
    fn from_json(settings: &Value) -> Result<Settings, Error> {
        let mut problems = Vec::new();
        let text = |key: &str| -> Option<String> {
            match settings.get(key)? {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let base_url = text("base_url")
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let origin = match link::origin(&base_url) {
            Some(o) if o.starts_with("http://") || o.starts_with("https://") => o,
            _ => {
                problems.push(format!("`base_url` {base_url:?} is not an http(s) URL"));
                String::new()
            }
        };
        let org = text("org").unwrap_or_default();
        if org.is_empty() {
            problems.push("`org` is not set (the organisation to list)".to_owned());
        } else if !org
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            problems.push(format!(
                "`org` {org:?} may only hold letters, digits, '-', '_' and '.'"
            ));
        }
        let owner = text("owner").unwrap_or_default();
        if owner.is_empty() {
            problems.push(
                "`owner` is not set (spec.owner of every Component, e.g. group:default/platform)"
                    .to_owned(),
            );
        }
        let per_page = match text("per_page") {
            None => DEFAULT_PER_PAGE,
            Some(n) => match n.parse::<u32>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => n,
                _ => {
                    problems.push(format!(
                        "`per_page` {n:?} is not a whole number from 1 to {MAX_PER_PAGE}"
                    ));
                    DEFAULT_PER_PAGE
                }
            },
        };
        if !problems.is_empty() {
            return Err(Error::Misconfigured(format!(
                "settings: {}",
                problems.join("; ")
            )));
        }
        let slug_annotation =
            text("slug_annotation").unwrap_or_else(|| map::slug_annotation(&base_url));
        Ok(Settings {
            defaults: Defaults {
                owner,
                type_: text("type").unwrap_or_else(|| "service".to_owned()),
                lifecycle: text("lifecycle").unwrap_or_else(|| "production".to_owned()),
                slug_annotation,
            },
            token_secret: text("token_secret"),
            base_url,
            origin,
            org,
            per_page,
        })
    }

    fn first_url(&self) -> String {
        format!(
            "{}/orgs/{}/repos?per_page={}&page=1",
            self.base_url, self.org, self.per_page
        )
    }
}

/// What one API page gives.
#[derive(Debug)]
struct Page {
    entities: Vec<Entity>,
    /// The URL of the next API page; `None` on the last.
    next: Option<String>,
    total_hint: Option<u64>,
    /// Warnings for the log: repositories skipped and why.
    notes: Vec<String>,
}

/// Turns the answer to `GET url` into a page.
fn read_page(settings: &Settings, url: &str, response: &Response) -> Result<Page, Error> {
    if !response.is_success() {
        return Err(status_error(url, response));
    }
    let body: Value = response.json().map_err(|e| {
        Error::InvalidData(format!(
            "GET {url} answered {} with a body that is not JSON: {e}",
            response.status
        ))
    })?;
    let Value::Array(repos) = body else {
        return Err(Error::InvalidData(format!(
            "GET {url} answered {} with JSON that is not a list of repositories (got {})",
            response.status,
            json_kind(&body)
        )));
    };

    let mut entities = Vec::with_capacity(repos.len());
    let mut notes = Vec::new();
    // Lower-cased name -> the repository that took it: names compare
    // case-insensitively and sanitising can make two names meet.
    let mut taken: HashMap<String, String> = HashMap::new();
    for (i, repo) in repos.iter().enumerate() {
        let label = repo
            .get("full_name")
            .or_else(|| repo.get("name"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("repository #{}", i + 1), str::to_owned);
        match map::component(repo, &settings.defaults) {
            Ok(entity) => {
                let key = entity.name.to_lowercase();
                if let Some(first) = taken.get(&key) {
                    notes.push(format!(
                        "{label} skipped: its entity name {} is taken by {first}",
                        entity.name
                    ));
                    continue;
                }
                taken.insert(key, label);
                entities.push(entity);
            }
            Err(Problem::Unusable(reason)) => notes.push(format!("{label} skipped: {reason}")),
            Err(Problem::Invalid(reason)) => {
                return Err(Error::InvalidData(format!(
                    "GET {url}: repository #{} {reason}",
                    i + 1
                )))
            }
        }
    }

    let page_number: u64 = link::query_param(url, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let links = response.header("link");
    let next = match links {
        Some(header) => link::find(header, "next", url),
        // No Link header: ask for the next page until one is empty.
        None if repos.is_empty() => None,
        None => Some(link::with_query_param(
            url,
            "page",
            &(page_number + 1).to_string(),
        )),
    };
    if let Some(next) = &next {
        if link::origin(next).as_deref() != Some(settings.origin.as_str()) {
            return Err(Error::InvalidData(format!(
                "GET {url}: the next page is on another host ({next}); not followed, so that \
                 the token goes only to {}",
                settings.origin
            )));
        }
        let next_number = link::query_param(next, "page").and_then(|p| p.parse::<u64>().ok());
        if next_number.is_some_and(|n| n > MAX_PAGES) {
            return Err(Error::InvalidData(format!(
                "GET {url}: more than {MAX_PAGES} pages; the server seems to ignore `page`"
            )));
        }
    }
    let per_page = u64::from(settings.per_page);
    let total_hint = match &next {
        // Before the last page only the `last` link can tell.
        Some(_) => links
            .and_then(|header| link::find(header, "last", url))
            .and_then(|last| link::query_param(&last, "page")?.parse::<u64>().ok())
            .map(|last| last * per_page),
        None => Some((page_number - 1) * per_page + repos.len() as u64),
    };
    Ok(Page {
        entities,
        next,
        total_hint,
        notes,
    })
}

/// The error for a non-2xx answer: its status, the URL, and what the server
/// said about it.
fn status_error(url: &str, response: &Response) -> Error {
    let detail = match response.json::<Value>() {
        Ok(body) if body.get("message").and_then(Value::as_str).is_some() => {
            body["message"].as_str().unwrap_or_default().to_owned()
        }
        _ => response.text(),
    };
    let mut detail = detail.trim().to_owned();
    if detail.len() > MAX_ERROR_BODY {
        let cut = (0..=MAX_ERROR_BODY)
            .rev()
            .find(|&i| detail.is_char_boundary(i))
            .unwrap_or(0);
        detail.truncate(cut);
        detail.push_str("...");
    }
    let said = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    let message = format!("GET {url} answered {}{said}", response.status);
    let rate_limited = response.header("x-ratelimit-remaining") == Some("0");
    match response.status {
        403 | 429 if rate_limited || response.status == 429 => Error::Unreachable(format!(
            "{message} (rate limited; the next sync tries again)"
        )),
        401 | 403 => Error::Unauthorized(format!(
            "{message} (check the token named by `token_secret`)"
        )),
        404 => Error::Misconfigured(format!("{message} (check `org` and `base_url`)")),
        _ => Error::Unreachable(message),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_json(&json!({
            "base_url": "http://127.0.0.1:9000/",
            "org": "acme",
            "owner": "group:default/platform",
            "per_page": 2
        }))
        .unwrap()
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn repos(names: &[&str]) -> String {
        let list: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "full_name": format!("acme/{n}"), "html_url": format!("https://github.com/acme/{n}")}))
            .collect();
        Value::Array(list).to_string()
    }

    #[test]
    fn settings_have_defaults_and_name_every_problem() {
        let s = settings();
        assert_eq!(
            s.first_url(),
            "http://127.0.0.1:9000/orgs/acme/repos?per_page=2&page=1"
        );
        assert_eq!(s.origin, "http://127.0.0.1:9000");
        assert_eq!(s.defaults.type_, "service");
        assert_eq!(s.defaults.lifecycle, "production");
        assert_eq!(s.defaults.slug_annotation, "127.0.0.1/project-slug");
        assert_eq!(s.token_secret, None);

        let s = Settings::from_json(&json!({"org": "acme", "owner": "team", "per_page": "50", "slug_annotation": "github.com/project-slug"})).unwrap();
        assert_eq!(
            s.first_url(),
            "https://api.github.com/orgs/acme/repos?per_page=50&page=1"
        );

        let err = Settings::from_json(&json!({"base_url": "ftp://x", "org": "a b", "per_page": 0}))
            .unwrap_err();
        let Error::Misconfigured(message) = err else {
            panic!("{err:?}")
        };
        for part in [
            "`base_url`",
            "`org` \"a b\"",
            "`owner` is not set",
            "`per_page` \"0\"",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
    }

    #[test]
    fn link_headers_drive_the_cursor() {
        let s = settings();
        let url = s.first_url();
        let r = response(
            200,
            &[("link", "<http://127.0.0.1:9000/orgs/acme/repos?per_page=2&page=2>; rel=\"next\", <http://127.0.0.1:9000/orgs/acme/repos?per_page=2&page=3>; rel=\"last\"")],
            &repos(&["a", "b"]),
        );
        let page = read_page(&s, &url, &r).unwrap();
        assert_eq!(page.entities.len(), 2);
        assert_eq!(
            page.entities[1].annotation("127.0.0.1/project-slug"),
            Some("acme/b")
        );
        assert_eq!(
            page.next.as_deref(),
            Some("http://127.0.0.1:9000/orgs/acme/repos?per_page=2&page=2")
        );
        assert_eq!(page.total_hint, Some(6));

        // The last page: a Link header without `next`.
        let url = "http://127.0.0.1:9000/orgs/acme/repos?per_page=2&page=3";
        let r = response(
            200,
            &[(
                "Link",
                "<http://127.0.0.1:9000/orgs/acme/repos?per_page=2&page=2>; rel=\"prev\"",
            )],
            &repos(&["e"]),
        );
        let page = read_page(&s, url, &r).unwrap();
        assert_eq!(page.next, None);
        assert_eq!(page.total_hint, Some(5));

        // A next link to another host is refused.
        let r = response(
            200,
            &[("link", "<https://evil.example/steal?page=2>; rel=\"next\"")],
            &repos(&["a"]),
        );
        let err = read_page(&s, &s.first_url(), &r).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidData(m) if m.contains("another host")),
            "{err:?}"
        );
    }

    #[test]
    fn without_link_headers_pages_run_until_an_empty_one() {
        let s = settings();
        let page = read_page(&s, &s.first_url(), &response(200, &[], &repos(&["a", "b"]))).unwrap();
        assert_eq!(
            page.next.as_deref(),
            Some("http://127.0.0.1:9000/orgs/acme/repos?per_page=2&page=2")
        );
        assert_eq!(page.total_hint, None);
        let url = page.next.unwrap();
        // A short page is not taken as the last: servers cap per_page.
        let page = read_page(&s, &url, &response(200, &[], &repos(&["c"]))).unwrap();
        assert_eq!(
            page.next.as_deref(),
            Some("http://127.0.0.1:9000/orgs/acme/repos?per_page=2&page=3")
        );
        let url = page.next.unwrap();
        let page = read_page(&s, &url, &response(200, &[], "[]")).unwrap();
        assert_eq!(page.next, None);
        assert!(page.entities.is_empty());
        assert_eq!(page.total_hint, Some(4));

        let url = format!("http://127.0.0.1:9000/orgs/acme/repos?per_page=2&page={MAX_PAGES}");
        let err = read_page(&s, &url, &response(200, &[], &repos(&["a"]))).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidData(m) if m.contains("ignore `page`")),
            "{err:?}"
        );
    }

    #[test]
    fn failures_name_the_status_and_the_url() {
        let s = settings();
        let url = s.first_url();
        let err = read_page(&s, &url, &response(500, &[], "boom")).unwrap_err();
        assert_eq!(
            err,
            Error::Unreachable(format!("GET {url} answered 500: boom"))
        );
        let err = read_page(
            &s,
            &url,
            &response(401, &[], "{\"message\": \"Bad credentials\"}"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Unauthorized(m) if m.starts_with(&format!("GET {url} answered 401: Bad credentials"))),
            "{err:?}"
        );
        let err = read_page(
            &s,
            &url,
            &response(
                403,
                &[("x-ratelimit-remaining", "0")],
                "{\"message\": \"API rate limit exceeded\"}",
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Unreachable(m) if m.contains("rate limited")),
            "{err:?}"
        );
        let err = read_page(&s, &url, &response(404, &[], "")).unwrap_err();
        assert_eq!(
            err,
            Error::Misconfigured(format!(
                "GET {url} answered 404 (check `org` and `base_url`)"
            ))
        );

        let err = read_page(&s, &url, &response(200, &[], "<html>")).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidData(m) if m.starts_with(&format!("GET {url} answered 200 with a body that is not JSON"))),
            "{err:?}"
        );
        let err = read_page(&s, &url, &response(200, &[], "{\"message\": \"hi\"}")).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidData(m) if m.ends_with("not a list of repositories (got an object)")),
            "{err:?}"
        );
        let err = read_page(
            &s,
            &url,
            &response(200, &[], "[{\"name\": \"a\"}, {\"id\": 3}]"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            Error::InvalidData(format!("GET {url}: repository #2 has no `name`"))
        );
    }

    #[test]
    fn clashing_and_unusable_names_are_skipped_with_a_warning() {
        let s = settings();
        let body = json!([
            {"name": ".github", "full_name": "acme/.github"},
            {"name": "github", "full_name": "acme/github"},
            {"name": "___", "full_name": "acme/___"},
            {"name": "ok"}
        ]);
        let page = read_page(&s, &s.first_url(), &response(200, &[], &body.to_string())).unwrap();
        let names: Vec<&str> = page.entities.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["github", "ok"]);
        assert_eq!(
            page.notes,
            [
                "acme/github skipped: its entity name github is taken by acme/.github",
                "acme/___ skipped: name \"___\" cannot be an entity name"
            ]
        );
    }
}
