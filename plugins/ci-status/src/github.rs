//! Looking up a repository's latest completed workflow run through the
//! GitHub Actions REST API (or any API of the same shape), once per
//! repository per batch.
//!
//! For `owner/repo`:
//!
//! 1. `GET {api}/repos/{owner}/{repo}` for `default_branch` (skipped when the
//!    rule names a `branch`);
//! 2. `GET {api}/repos/{owner}/{repo}/actions/runs?branch={branch}&status=completed&per_page=1`,
//!    or `.../actions/workflows/{workflow}/runs?...` when the rule names a
//!    workflow: the newest completed run. Runs still queued or in progress
//!    are left out by `status=completed`, so a push being built right now
//!    does not hide the verdict of the one before it.
//!
//! Failures come in two sizes ([`Problem`]): one that concerns a repository
//! (404, a 5xx, an answer that is not what the API describes) gives that
//! repository's entities an `error`; one that concerns the API as a whole
//! (unreachable, denied by the allowlist, rate-limited, a refused token)
//! also stops the batch from asking again, since every further request
//! would fail the same way (and a host that does not answer would cost a
//! timeout per repository).
//!
//! The HTTP client is behind [`Transport`], so the batch logic (cache, stop,
//! time budget) has unit tests that run natively.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use timestamps::parse_rfc3339;

/// How much of a failed answer's body goes into a message.
const MAX_ERROR_BODY: usize = 200;

/// An answer as far as the lookup cares.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// `x-ratelimit-remaining`, if the API sent it.
    pub ratelimit_remaining: Option<u64>,
    /// `x-ratelimit-reset` (Unix seconds), if the API sent it.
    pub ratelimit_reset: Option<i64>,
    pub body: Vec<u8>,
}

/// Sends a GET request; `Err` when no answer came (unreachable, denied by
/// the allowlist, timed out), with the reason for humans.
pub trait Transport {
    fn get(&mut self, url: &str) -> Result<Answer, String>;
}

/// Why a repository's latest run is unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Concerns this repository only.
    Repo(String),
    /// Concerns every request to the API: no further ones are sent.
    Api(String),
}

impl Problem {
    pub fn message(&self) -> &str {
        match self {
            Problem::Repo(m) | Problem::Api(m) => m,
        }
    }
}

/// A completed workflow run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub id: u64,
    /// The number shown in the UI (`#12`), if given.
    pub run_number: Option<u64>,
    /// The workflow's name (`CI`), if given.
    pub name: Option<String>,
    /// `success`, `failure`, `cancelled`, `skipped`, `timed_out`, ...; empty
    /// when the API gave none.
    pub conclusion: String,
    /// The run's page; empty when the API gave none.
    pub html_url: String,
    /// When it finished as the API wrote it (`updated_at`, else
    /// `created_at`).
    pub finished_at: Option<String>,
    /// The same in Unix seconds.
    pub finished_secs: Option<i64>,
}

impl Run {
    /// Reads one run object; `None` unless it is completed and has an id.
    fn from_json(run: &Value) -> Option<Run> {
        let text = |key: &str| run.get(key).and_then(Value::as_str).map(str::to_owned);
        if text("status").as_deref() != Some("completed") {
            return None;
        }
        let finished_at = text("updated_at").or_else(|| text("created_at"));
        Some(Run {
            id: run.get("id").and_then(Value::as_u64)?,
            run_number: run.get("run_number").and_then(Value::as_u64),
            name: text("name").filter(|n| !n.trim().is_empty()),
            conclusion: text("conclusion").unwrap_or_default(),
            html_url: text("html_url").unwrap_or_default(),
            finished_secs: finished_at.as_deref().and_then(parse_rfc3339),
            finished_at,
        })
    }

    /// `run #12 "CI" (4242)`, or `run 4242` with less to go on.
    pub fn label(&self) -> String {
        let mut label = match self.run_number {
            Some(n) => format!("run #{n}"),
            None => format!("run {}", self.id),
        };
        if let Some(name) = &self.name {
            label.push_str(&format!(" {name:?}"));
        }
        if self.run_number.is_some() {
            label.push_str(&format!(" ({})", self.id));
        }
        label
    }
}

/// What the API says about one repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latest {
    /// The branch looked at.
    pub branch: String,
    /// Its newest completed run; `None` if it has none.
    pub run: Option<Run>,
}

/// The lookups of one batch: one rule, many entities.
pub struct Lookup<T> {
    transport: T,
    /// Without a trailing `/`.
    api_url: String,
    /// The rule's workflow file (or id), if it names one.
    workflow: Option<String>,
    /// The rule's branch, if it names one (else the default branch).
    branch: Option<String>,
    /// Blanked out of every message, should the API echo it.
    token: Option<String>,
    /// No new lookup starts after this, so the call ends well before the
    /// host's deadline even when the API is slow.
    deadline: Instant,
    /// By `owner/repo` in lower case (GitHub's names are case-insensitive).
    cache: HashMap<String, Result<Latest, Problem>>,
    /// Set by the first [`Problem::Api`]: why no more requests are sent.
    stopped: Option<String>,
}

impl<T: Transport> Lookup<T> {
    pub fn new(
        transport: T,
        api_url: &str,
        workflow: Option<String>,
        branch: Option<String>,
        token: Option<String>,
        budget: Duration,
    ) -> Self {
        Lookup {
            transport,
            api_url: api_url.trim_end_matches('/').to_owned(),
            workflow,
            branch,
            token: token.filter(|t| !t.is_empty()),
            deadline: Instant::now() + budget,
            cache: HashMap::new(),
            stopped: None,
        }
    }

    /// The newest completed run of `slug` (`owner/repo`, already checked)
    /// on the branch the rule looks at.
    pub fn latest(&mut self, slug: &str) -> Result<Latest, Problem> {
        let key = slug.to_ascii_lowercase();
        if let Some(known) = self.cache.get(&key) {
            return known.clone();
        }
        if let Some(why) = &self.stopped {
            // Not cached: the reason is the batch's, not the repository's.
            return Err(Problem::Api(format!(
                "{slug} was not looked up: an earlier request of this evaluation failed ({why})"
            )));
        }
        if Instant::now() >= self.deadline {
            return Err(Problem::Api(format!(
                "{slug} was not looked up: this evaluation's time for API requests \
                 (`budget_ms`) ran out; it is looked up next time"
            )));
        }
        let found = self.look_up(slug);
        if let Err(Problem::Api(why)) = &found {
            self.stopped = Some(why.clone());
        }
        self.cache.insert(key, found.clone());
        found
    }

    fn look_up(&mut self, slug: &str) -> Result<Latest, Problem> {
        let repo_url = format!("{}/repos/{slug}", self.api_url);
        let branch = match &self.branch {
            Some(branch) => branch.clone(),
            None => {
                let repo = self.get_json(&repo_url, &format!("repository {slug}"))?;
                repo.get("default_branch")
                    .and_then(Value::as_str)
                    .filter(|b| !b.trim().is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Problem::Repo(format!(
                            "the API's answer about repository {slug} has no `default_branch`"
                        ))
                    })?
            }
        };
        let runs_url = match &self.workflow {
            Some(workflow) => format!("{repo_url}/actions/workflows/{workflow}/runs"),
            None => format!("{repo_url}/actions/runs"),
        };
        let url = format!(
            "{runs_url}?branch={}&status=completed&per_page=1",
            encode_query(&branch)
        );
        let what = match &self.workflow {
            Some(workflow) => format!("the runs of workflow {workflow} in {slug}"),
            None => format!("the workflow runs of {slug}"),
        };
        let list = self.get_json(&url, &what)?;
        let runs = list
            .get("workflow_runs")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Problem::Repo(format!(
                    "the API's answer about {what} has no `workflow_runs` list"
                ))
            })?;
        // `status=completed` should leave only completed runs; an API of the
        // same shape that ignores the filter gets the first completed one
        // it listed (the list is newest first).
        Ok(Latest {
            branch,
            run: runs.iter().find_map(Run::from_json),
        })
    }

    /// GETs `url` and parses a 2xx answer; `what` names the subject in
    /// messages.
    fn get_json(&mut self, url: &str, what: &str) -> Result<Value, Problem> {
        let answer = self
            .transport
            .get(url)
            .map_err(|why| Problem::Api(self.redact(&why)))?;
        if !(200..300).contains(&answer.status) {
            return Err(self.status_problem(what, &answer));
        }
        serde_json::from_slice(&answer.body).map_err(|e| {
            Problem::Repo(format!(
                "the API's answer about {what} is not JSON ({e}): {}",
                self.excerpt(&answer.body)
            ))
        })
    }

    /// The problem for a non-2xx answer: the status, what the API said and
    /// a hint.
    fn status_problem(&self, what: &str, answer: &Answer) -> Problem {
        let said = match serde_json::from_slice::<Value>(&answer.body) {
            Ok(body) if body.get("message").and_then(Value::as_str).is_some() => {
                self.redact(body["message"].as_str().unwrap_or_default())
            }
            _ => self.excerpt(&answer.body),
        };
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        let status = answer.status;
        let rate_limited =
            status == 429 || (status == 403 && answer.ratelimit_remaining == Some(0));
        if rate_limited {
            let reset = match answer.ratelimit_reset {
                Some(at) => format!("; the limit resets at {}", timestamps::format_rfc3339(at)),
                None => String::new(),
            };
            let hint = if self.token.is_some() {
                ""
            } else {
                " (without a token the API allows few requests: grant one, see `token_secret`)"
            };
            return Problem::Api(format!(
                "the API is rate-limiting this plugin: it answered {status} to {what}{said}{reset}{hint}"
            ));
        }
        match status {
            401 => Problem::Api(format!(
                "the API answered 401 to {what}{said} (check the token named by `token_secret`)"
            )),
            404 => Problem::Repo(format!(
                "the API answered 404 to {what}{said} (check the `github.com/project-slug` \
                 annotation{}, and that the token may read the repository)",
                if self.workflow.is_some() {
                    " and the rule's `workflow`"
                } else {
                    ""
                }
            )),
            _ => Problem::Repo(format!("the API answered {status} to {what}{said}")),
        }
    }

    /// A body's start as text, for a message, without the token.
    fn excerpt(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.len() <= MAX_ERROR_BODY {
            return self.redact(text);
        }
        let cut = (0..=MAX_ERROR_BODY)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", self.redact(&text[..cut]))
    }

    fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(token) => text.replace(token.as_str(), "[secret]"),
            None => text.to_owned(),
        }
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved).
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Answers from a table of `url -> answer`; records every URL asked.
    #[derive(Default)]
    struct Fake {
        answers: HashMap<String, Result<Answer, String>>,
        asked: Vec<String>,
    }

    impl Fake {
        fn with(mut self, url: &str, status: u16, body: Value) -> Self {
            self.answers
                .insert(url.to_owned(), Ok(answer(status, body.to_string())));
            self
        }
    }

    impl Transport for &mut Fake {
        fn get(&mut self, url: &str) -> Result<Answer, String> {
            self.asked.push(url.to_owned());
            self.answers
                .get(url)
                .cloned()
                .unwrap_or_else(|| Ok(answer(404, r#"{"message":"Not Found"}"#.into())))
        }
    }

    fn answer(status: u16, body: String) -> Answer {
        Answer {
            status,
            ratelimit_remaining: None,
            ratelimit_reset: None,
            body: body.into_bytes(),
        }
    }

    const API: &str = "http://api.test";

    fn runs(list: Value) -> Value {
        json!({"total_count": 1, "workflow_runs": list})
    }

    fn run(id: u64, conclusion: &str) -> Value {
        json!({"id": id, "run_number": 7, "name": "CI", "status": "completed",
               "conclusion": conclusion, "html_url": format!("https://ci.test/runs/{id}"),
               "created_at": "2026-11-28T09:00:00Z", "updated_at": "2026-11-28T09:15:02Z"})
    }

    fn lookup_of(fake: &mut Fake) -> Lookup<&mut Fake> {
        Lookup::new(
            fake,
            "http://api.test/",
            None,
            None,
            Some("t0k3n".into()),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn finds_the_default_branch_then_its_newest_completed_run_once_per_repository() {
        let mut fake = Fake::default()
            .with(
                "http://api.test/repos/acme/pay",
                200,
                json!({"default_branch": "trunk"}),
            )
            .with(
                "http://api.test/repos/acme/pay/actions/runs?branch=trunk&status=completed&per_page=1",
                200,
                runs(json!([{"id": 1, "status": "in_progress"}, run(42, "success")])),
            );
        let mut lookup = lookup_of(&mut fake);
        let latest = lookup.latest("acme/pay").unwrap();
        assert_eq!(latest.branch, "trunk");
        let found = latest.run.unwrap();
        assert_eq!(
            (found.id, found.conclusion.as_str(), found.label()),
            (42, "success", "run #7 \"CI\" (42)".to_owned())
        );
        assert_eq!(found.finished_secs, Some(1_795_857_302));
        // Another entity of the same repository, spelt differently.
        assert_eq!(lookup.latest("Acme/Pay").unwrap().branch, "trunk");
        drop(lookup);
        assert_eq!(fake.asked.len(), 2, "{:?}", fake.asked);
    }

    #[test]
    fn a_rule_may_name_the_workflow_and_the_branch() {
        let mut fake = Fake::default().with(
            "http://api.test/repos/acme/pay/actions/workflows/ci.yml/runs?branch=release%2F1&status=completed&per_page=1",
            200,
            runs(json!([])),
        );
        let mut lookup = Lookup::new(
            &mut fake,
            API,
            Some("ci.yml".into()),
            Some("release/1".into()),
            None,
            Duration::from_secs(60),
        );
        assert_eq!(
            lookup.latest("acme/pay"),
            Ok(Latest {
                branch: "release/1".into(),
                run: None
            })
        );
    }

    #[test]
    fn a_repository_problem_concerns_that_repository_only() {
        let mut fake = Fake::default()
            .with(
                "http://api.test/repos/acme/broken",
                500,
                json!({"message": "boom, Bearer t0k3n"}),
            )
            .with("http://api.test/repos/acme/ok", 200, json!({"default_branch": "main"}))
            .with(
                "http://api.test/repos/acme/ok/actions/runs?branch=main&status=completed&per_page=1",
                200,
                runs(json!([run(1, "failure")])),
            );
        fake.answers.insert(
            "http://api.test/repos/acme/garbage".into(),
            Ok(answer(200, "<html>".into())),
        );
        let mut lookup = lookup_of(&mut fake);
        assert_eq!(
            lookup.latest("acme/broken"),
            Err(Problem::Repo(
                "the API answered 500 to repository acme/broken: boom, Bearer [secret]".into()
            ))
        );
        let gone = lookup.latest("acme/gone").unwrap_err();
        assert!(
            gone.message()
                .starts_with("the API answered 404 to repository acme/gone: Not Found (check"),
            "{gone:?}"
        );
        let garbage = lookup.latest("acme/garbage").unwrap_err();
        assert!(
            matches!(&garbage, Problem::Repo(m) if m.contains("is not JSON") && m.ends_with(": <html>")),
            "{garbage:?}"
        );
        assert_eq!(
            lookup.latest("acme/ok").unwrap().run.unwrap().conclusion,
            "failure"
        );
    }

    #[test]
    fn an_api_problem_stops_the_batch() {
        let mut fake = Fake::default();
        fake.answers.insert(
            "http://api.test/repos/acme/a".into(),
            Err("request to http://api.test/repos/acme/a denied by the host".into()),
        );
        let mut lookup = lookup_of(&mut fake);
        assert!(matches!(lookup.latest("acme/a"), Err(Problem::Api(m)) if m.contains("denied")));
        let b = lookup.latest("acme/b").unwrap_err();
        assert_eq!(
            b.message(),
            "acme/b was not looked up: an earlier request of this evaluation failed \
             (request to http://api.test/repos/acme/a denied by the host)"
        );
        drop(lookup);
        assert_eq!(fake.asked, ["http://api.test/repos/acme/a"]);
    }

    #[test]
    fn rate_limits_and_refused_tokens_are_api_problems() {
        let mut fake = Fake::default();
        fake.answers.insert(
            "http://api.test/repos/acme/a".into(),
            Ok(Answer {
                status: 403,
                ratelimit_remaining: Some(0),
                ratelimit_reset: Some(1_795_857_302),
                body: br#"{"message": "API rate limit exceeded"}"#.to_vec(),
            }),
        );
        let mut anonymous = Lookup::new(&mut fake, API, None, None, None, Duration::from_secs(60));
        let Err(Problem::Api(m)) = anonymous.latest("acme/a") else {
            panic!()
        };
        assert_eq!(
            m,
            "the API is rate-limiting this plugin: it answered 403 to repository acme/a: API \
             rate limit exceeded; the limit resets at 2026-11-28T09:15:02Z (without a token the \
             API allows few requests: grant one, see `token_secret`)"
        );

        let mut fake = Fake::default().with("http://api.test/repos/acme/a", 401, json!({}));
        let mut lookup = lookup_of(&mut fake);
        assert!(matches!(lookup.latest("acme/a"), Err(Problem::Api(m)) if m.contains("401")));
        // A 403 that is not a rate limit (no access to one repository).
        let mut fake = Fake::default().with("http://api.test/repos/acme/a", 403, json!({}));
        let mut lookup = lookup_of(&mut fake);
        assert!(matches!(lookup.latest("acme/a"), Err(Problem::Repo(_))));
    }

    #[test]
    fn no_lookup_starts_after_the_budget() {
        let mut fake = Fake::default();
        let mut lookup = Lookup::new(&mut fake, API, None, None, None, Duration::ZERO);
        let m = lookup.latest("acme/a").unwrap_err();
        assert!(m.message().contains("`budget_ms`"), "{m:?}");
        drop(lookup);
        assert!(fake.asked.is_empty());
    }

    #[test]
    fn answers_without_the_expected_fields_are_repository_problems() {
        let mut fake = Fake::default()
            .with("http://api.test/repos/acme/a", 200, json!({"name": "a"}))
            .with(
                "http://api.test/repos/acme/b",
                200,
                json!({"default_branch": "main"}),
            )
            .with(
                "http://api.test/repos/acme/b/actions/runs?branch=main&status=completed&per_page=1",
                200,
                json!({"runs": []}),
            );
        let mut lookup = lookup_of(&mut fake);
        assert!(
            matches!(lookup.latest("acme/a"), Err(Problem::Repo(m)) if m.ends_with("has no `default_branch`"))
        );
        assert!(
            matches!(lookup.latest("acme/b"), Err(Problem::Repo(m)) if m.ends_with("has no `workflow_runs` list"))
        );
    }
}
