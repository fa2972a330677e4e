//! Action `trigger-workflow`: runs a CI workflow of a Component's repository
//! and waits for the run to finish, through the GitHub Actions REST API (or
//! any API of the same shape).
//!
//! The repository is the entity's `github.com/project-slug` annotation
//! (`owner/repo`). Input: `{"workflow": "deploy.yml", "ref": "main",
//! "inputs": {"name": "value"}}`; `workflow` and `ref` default to the
//! settings of the same names.
//!
//! 1. `POST {api_url}/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`
//!    with `{"ref": ..., "inputs": {...}}`; the API answers `204` and does not
//!    say which run it started.
//! 2. `GET {api_url}/repos/{owner}/{repo}/actions/runs?event=workflow_dispatch&branch={ref}&per_page=10`
//!    until the run shows up: the newest one of that workflow created at or
//!    after the dispatch ([`run::pick`]); runs take a moment to appear, so
//!    this is tried up to [`FIND_ATTEMPTS`] times, `poll_ms` apart.
//! 3. `GET {api_url}/repos/{owner}/{repo}/actions/runs/{run_id}` every
//!    `poll_ms` until its `status` is `completed`, logging each change of
//!    status, for at most `max_wait_ms` in all.
//!
//! Every request carries `Accept: application/vnd.github+json`,
//! `X-GitHub-Api-Version: 2022-11-28` and `Authorization: Bearer` with the
//! secret named by `token_secret`.
//!
//! Settings (`[settings]` in the sidecar):
//!
//! | key | default | |
//! | --- | --- | --- |
//! | `token_secret` | required | name of a granted secret: a token that may run workflows (`actions: write`) |
//! | `api_url` | `https://api.github.com` | the API root (GitHub Enterprise: `https://HOST/api/v3`) |
//! | `workflow` | none | the workflow file (or id) when the input names none |
//! | `ref` | `main` | the branch or tag when the input names none |
//! | `poll_ms` | 5000 | pause between two looks at the run, in milliseconds |
//! | `max_wait_ms` | 600000 | how long to wait for the run in all; keep it below the sidecar's `limits.timeout_ms` |
//!
//! Output: `{"runId": N, "conclusion": "success", "url": html_url}` and a link
//! to the run. A run that concludes anything but `success` fails the action,
//! naming the conclusion; so does a non-2xx answer, naming the status.

mod run;

use std::thread;
use std::time::{Duration, Instant};

use portolan_sdk::action::{ActionInfo, Error, Invocation, Outcome};
use portolan_sdk::http::{Method, Request, Response};
use portolan_sdk::{about, Action, Entity, Link};
use serde_json::{json, Map, Value};

use run::{Run, Wanted};

const DEFAULT_API_URL: &str = "https://api.github.com";
const DEFAULT_REF: &str = "main";
const DEFAULT_POLL_MS: u64 = 5_000;
const DEFAULT_MAX_WAIT_MS: u64 = 600_000;

/// The annotation that names the repository, as Backstage's GitHub plugins
/// read it.
const SLUG_ANNOTATION: &str = "github.com/project-slug";

/// How many times to look for the run a dispatch started before giving up:
/// GitHub lists a new run a few seconds after the dispatch.
const FIND_ATTEMPTS: u32 = 10;

/// Runs created up to this many seconds before the dispatch still count:
/// the portal's clock and the API's may disagree a little, and `created_at`
/// has whole seconds.
const CLOCK_SKEW_SECS: i64 = 2;

/// Failed looks at the run in a row (no answer, or a 5xx) tolerated while
/// polling: a long wait should survive a short outage of the API.
const MAX_POLL_ERRORS: u32 = 3;

/// Bounds connecting and each wait for bytes of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// How much of a failed answer's body goes into the run's error.
const MAX_ERROR_BODY: usize = 300;

struct TriggerWorkflow;

impl Action for TriggerWorkflow {
    fn describe() -> ActionInfo {
        ActionInfo::new(
            about!(
                "Trigger CI workflow",
                "Runs a GitHub Actions workflow of the component's repository (its \
                 github.com/project-slug annotation) and waits until the run has finished."
            ),
            json!({
                "type": "object",
                "properties": {
                    "workflow": {"type": "string", "title": "Workflow", "description": "The workflow's file name (deploy.yml) or id; defaults to the action's setting.", "minLength": 1},
                    "ref": {"type": "string", "title": "Branch or tag", "description": "Where to run the workflow; defaults to the action's setting or main.", "minLength": 1},
                    "inputs": {"type": "object", "title": "Workflow inputs", "additionalProperties": {"type": "string"}}
                },
                "additionalProperties": false
            }),
        )
        .for_kinds(["Component"])
    }

    fn run(invocation: Invocation) -> Result<Outcome, Error> {
        let started = Instant::now();
        let settings = Settings::from_json(&portolan_sdk::settings())?;
        let deadline = started + settings.max_wait;
        let repo = repository(invocation.entity.as_ref())?;
        let dispatch = Dispatch::from_input(&invocation.input, &settings)?;
        let token = portolan_sdk::secret(&settings.token_secret)
            .map_err(|e| Error::Other(format!("setting `token_secret`: {e}")))?;
        let api = Api {
            base: format!("{}/repos/{repo}", settings.api_url),
            token,
        };

        portolan_sdk::info!(
            "dispatching workflow {} on {} in {repo}",
            dispatch.workflow,
            dispatch.git_ref
        );
        // Taken before the POST so that a run created the same second counts.
        let since = timestamps::now_secs() - CLOCK_SKEW_SECS;
        let url = format!(
            "{}/actions/workflows/{}/dispatches",
            api.base, dispatch.workflow
        );
        let body = json!({"ref": dispatch.git_ref, "inputs": dispatch.inputs});
        let response = api.send(Method::Post, &url, Some(&body))?;
        if !response.is_success() {
            return Err(api.status_error(
                &format!("the dispatch of {} in {repo}", dispatch.workflow),
                &response,
            ));
        }

        let wanted = Wanted {
            workflow: &dispatch.workflow,
            branch: branch_name(&dispatch.git_ref),
            since,
        };
        let mut run = find_run(&api, &wanted, &settings, deadline)?;
        portolan_sdk::info!("found workflow run {}: {}", run.id, run.html_url);
        log_status(&run);

        let mut errors = 0;
        let url = format!("{}/actions/runs/{}", api.base, run.id);
        while !run.is_completed() {
            if !pause(settings.poll, deadline) {
                return Err(Error::Failed(format!(
                    "workflow run {} is still {} after {} s (max_wait_ms); it goes on \
                     without being watched: {}",
                    run.id,
                    run.status,
                    started.elapsed().as_secs(),
                    run.html_url
                )));
            }
            let response = match api.send(Method::Get, &url, None) {
                Ok(response) if response.status < 500 => response,
                outcome => {
                    errors += 1;
                    let why = match outcome {
                        Ok(response) => format!("answered {}", response.status),
                        Err(e) => e.to_string(),
                    };
                    if errors > MAX_POLL_ERRORS {
                        return Err(Error::Failed(format!(
                            "lost sight of workflow run {} ({why}): {}",
                            run.id, run.html_url
                        )));
                    }
                    portolan_sdk::warn!("looking at workflow run {}: {why}; trying again", run.id);
                    continue;
                }
            };
            errors = 0;
            if !response.is_success() {
                return Err(api.status_error(&format!("GET workflow run {}", run.id), &response));
            }
            let next = response
                .json::<Value>()
                .map_err(|e| e.to_string())
                .and_then(|body| Run::from_json(&body))
                .map_err(|e| {
                    Error::Failed(format!("workflow run {}: unexpected answer: {e}", run.id))
                })?;
            if next.status != run.status {
                log_status(&next);
            }
            run = Run {
                html_url: if next.html_url.is_empty() {
                    run.html_url
                } else {
                    next.html_url
                },
                ..next
            };
        }

        let conclusion = run.conclusion.clone().unwrap_or_default();
        if conclusion != "success" {
            let conclusion = if conclusion.is_empty() {
                "without a conclusion"
            } else {
                &conclusion
            };
            return Err(Error::Failed(format!(
                "workflow run {} concluded {conclusion}: {}",
                run.id, run.html_url
            )));
        }
        let title = match run.run_number {
            Some(n) => format!("Workflow run #{n}"),
            None => "Workflow run".to_owned(),
        };
        Ok(Outcome::new(json!({
            "runId": run.id,
            "conclusion": conclusion,
            "url": run.html_url,
        }))
        .with_link(Link::new(run.html_url.as_str()).with_title(title)))
    }
}

portolan_sdk::export!(Action for TriggerWorkflow);

/// The settings, checked.
#[derive(Debug, PartialEq)]
struct Settings {
    /// Without a trailing `/`.
    api_url: String,
    token_secret: String,
    workflow: Option<String>,
    git_ref: String,
    poll: Duration,
    max_wait: Duration,
}

impl Settings {
    /// Reads the `[settings]` table; every problem is named in one error.
    fn from_json(settings: &Value) -> Result<Settings, Error> {
        let mut r = settings::Reader::new(settings);
        let poll = r.millis("poll_ms", DEFAULT_POLL_MS);
        let max_wait = r.millis("max_wait_ms", DEFAULT_MAX_WAIT_MS);
        let api_url = r.api_url(DEFAULT_API_URL);
        let token_secret = r.required(
            "token_secret",
            "the name of a granted secret holding a token that may run workflows",
        );
        let workflow = r.text("workflow");
        if let Some(workflow) = &workflow {
            if let Err(why) = check_workflow(workflow) {
                r.problem(format!("`workflow` {workflow:?} {why}"));
            }
        }
        let git_ref = r.text("ref").unwrap_or_else(|| DEFAULT_REF.to_owned());
        r.finish().map_err(Error::Other)?;
        Ok(Settings {
            api_url,
            token_secret,
            workflow,
            git_ref,
            poll,
            max_wait,
        })
    }
}

/// What to dispatch.
#[derive(Debug, PartialEq)]
struct Dispatch {
    workflow: String,
    git_ref: String,
    inputs: Map<String, Value>,
}

impl Dispatch {
    fn from_input(input: &Value, settings: &Settings) -> Result<Dispatch, Error> {
        let text = |key: &str| {
            input
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let workflow = match (text("workflow"), &settings.workflow) {
            (Some(workflow), _) => {
                check_workflow(workflow).map_err(|why| Error::invalid_input("/workflow", why))?;
                workflow.to_owned()
            }
            (None, Some(workflow)) => workflow.clone(),
            (None, None) => {
                return Err(Error::invalid_input(
                    "/workflow",
                    "is required: the action has no default `workflow` setting",
                ))
            }
        };
        let git_ref = text("ref").map_or_else(|| settings.git_ref.clone(), str::to_owned);
        let mut inputs = Map::new();
        match input.get("inputs") {
            None | Some(Value::Null) => {}
            Some(Value::Object(given)) => {
                for (key, value) in given {
                    if !value.is_string() {
                        return Err(Error::invalid_input(
                            format!("/inputs/{}", key.replace('~', "~0").replace('/', "~1")),
                            "must be a string",
                        ));
                    }
                    inputs.insert(key.clone(), value.clone());
                }
            }
            Some(_) => return Err(Error::invalid_input("/inputs", "must be an object")),
        }
        Ok(Dispatch {
            workflow,
            git_ref,
            inputs,
        })
    }
}

/// A workflow goes into the URL's path: a file name or an id, nothing that
/// could leave the path segment.
fn check_workflow(workflow: &str) -> Result<(), &'static str> {
    if workflow
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !workflow.starts_with('.')
    {
        Ok(())
    } else {
        Err("is not a workflow file name (deploy.yml) or id")
    }
}

/// `owner/repo` from the entity's annotation.
fn repository(entity: Option<&Entity>) -> Result<String, Error> {
    let Some(entity) = entity else {
        return Err(Error::invalid_input(
            "",
            "the action runs on a Component: start it from the component's page",
        ));
    };
    let Some(slug) = entity.annotation(SLUG_ANNOTATION).map(str::trim) else {
        return Err(Error::invalid_input(
            "",
            format!(
                "{} has no `{SLUG_ANNOTATION}` annotation, so its repository is unknown: add \
                 `{SLUG_ANNOTATION}: owner/repo` under metadata.annotations in its catalog-info.yaml",
                entity.reference()
            ),
        ));
    };
    let segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    match slug.split_once('/') {
        Some((owner, repo)) if segment(owner) && segment(repo) => Ok(slug.to_owned()),
        _ => Err(Error::invalid_input(
            "",
            format!(
                "the `{SLUG_ANNOTATION}` annotation of {} is {slug:?}, not `owner/repo`",
                entity.reference()
            ),
        )),
    }
}

/// The branch or tag name the runs list filters on: `refs/heads/main` runs
/// show up as `main`.
fn branch_name(git_ref: &str) -> &str {
    git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(git_ref)
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved).
fn encode_query(value: &str) -> String {
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

/// Logs the run's status: `workflow run 42 in_progress`, or with the
/// conclusion once completed: `workflow run 42 completed: success`.
fn log_status(run: &Run) {
    match run.conclusion.as_deref().filter(|_| run.is_completed()) {
        Some(conclusion) => portolan_sdk::info!("workflow run {} completed: {conclusion}", run.id),
        None => portolan_sdk::info!("workflow run {} {}", run.id, run.status),
    }
}

/// Looks for the run the dispatch started, a few times.
fn find_run(
    api: &Api,
    wanted: &Wanted,
    settings: &Settings,
    deadline: Instant,
) -> Result<Run, Error> {
    let url = format!(
        "{}/actions/runs?event=workflow_dispatch&branch={}&per_page=10",
        api.base,
        encode_query(wanted.branch)
    );
    for attempt in 1..=FIND_ATTEMPTS {
        let response = api.send(Method::Get, &url, None)?;
        if !response.is_success() {
            return Err(api.status_error("the list of workflow runs", &response));
        }
        let list: Value = response
            .json()
            .map_err(|e| Error::Failed(format!("the list of workflow runs is not JSON: {e}")))?;
        let found = run::pick(&list, wanted)
            .map_err(|e| Error::Failed(format!("the list of workflow runs: {e}")))?;
        if let Some(run) = found {
            return Ok(run);
        }
        if attempt == FIND_ATTEMPTS || !pause(settings.poll, deadline) {
            break;
        }
        portolan_sdk::debug!("no run of {} on {} yet", wanted.workflow, wanted.branch);
    }
    Err(Error::Failed(format!(
        "workflow {} was dispatched on {} but its run did not show up in the list of runs",
        wanted.workflow, wanted.branch
    )))
}

/// Sleeps `poll`, or until `deadline` if that is sooner; false when the
/// deadline has passed already. `thread::sleep` blocks on a
/// `wasi:clocks/monotonic-clock` pollable, so waiting costs no CPU.
fn pause(poll: Duration, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    thread::sleep(poll.min(left));
    true
}

/// The repository's API and the token for it.
struct Api {
    /// `{api_url}/repos/{owner}/{repo}`.
    base: String,
    token: String,
}

impl Api {
    fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Result<Response, Error> {
        let mut request = Request::new(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .bearer(&self.token)
            .timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        Ok(request.send()?)
    }

    /// The error for a non-2xx answer: the status and what the API said,
    /// without the token should the API echo it.
    fn status_error(&self, what: &str, response: &Response) -> Error {
        let detail = match response.json::<Value>() {
            Ok(body) if body.get("message").and_then(Value::as_str).is_some() => {
                body["message"].as_str().unwrap_or_default().to_owned()
            }
            _ => response.text(),
        };
        let detail = truncate(&redact(detail.trim(), &self.token), MAX_ERROR_BODY);
        let said = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let hint = match response.status {
            401 | 403 => " (check the token named by `token_secret`: it needs actions: write)",
            404 => " (check the repository annotation, the workflow and `api_url`)",
            422 => " (check the ref and the workflow's inputs)",
            _ => "",
        };
        Error::Failed(format!(
            "the API answered {} to {what}{said}{hint}",
            response.status
        ))
    }
}

fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[secret]")
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with `...`
/// when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let cut = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}...", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_sdk::Pair;

    fn settings() -> Settings {
        Settings::from_json(&json!({"token_secret": "GITHUB_TOKEN", "workflow": "ci.yml"})).unwrap()
    }

    #[test]
    fn settings_have_defaults_and_name_every_problem() {
        assert_eq!(
            settings(),
            Settings {
                api_url: DEFAULT_API_URL.into(),
                token_secret: "GITHUB_TOKEN".into(),
                workflow: Some("ci.yml".into()),
                git_ref: "main".into(),
                poll: Duration::from_secs(5),
                max_wait: Duration::from_secs(600),
            }
        );
        let s = Settings::from_json(&json!({
            "token_secret": "T", "api_url": "http://127.0.0.1:9000/", "ref": "develop",
            "poll_ms": 50, "max_wait_ms": "2000"
        }))
        .unwrap();
        assert_eq!(s.api_url, "http://127.0.0.1:9000");
        assert_eq!(
            (s.git_ref.as_str(), s.poll, s.max_wait),
            ("develop", Duration::from_millis(50), Duration::from_secs(2))
        );

        let err =
            Settings::from_json(&json!({"poll_ms": 0, "api_url": "ftp://x", "workflow": "../x"}))
                .unwrap_err()
                .to_string();
        for part in [
            "`poll_ms` 0",
            "`api_url` \"ftp://x\"",
            "`token_secret` is not set",
            "`workflow` \"../x\"",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
    }

    #[test]
    fn the_input_overrides_the_defaults() {
        let d = Dispatch::from_input(
            &json!({"workflow": "deploy.yml", "ref": "release/1.2", "inputs": {"env": "prod"}}),
            &settings(),
        )
        .unwrap();
        assert_eq!(
            (d.workflow.as_str(), d.git_ref.as_str()),
            ("deploy.yml", "release/1.2")
        );
        assert_eq!(Value::Object(d.inputs), json!({"env": "prod"}));

        let d = Dispatch::from_input(&json!({}), &settings()).unwrap();
        assert_eq!(
            (d.workflow.as_str(), d.git_ref.as_str()),
            ("ci.yml", "main")
        );
        assert!(d.inputs.is_empty());

        let no_default = Settings {
            workflow: None,
            ..settings()
        };
        assert_eq!(
            Dispatch::from_input(&json!({}), &no_default),
            Err(Error::invalid_input(
                "/workflow",
                "is required: the action has no default `workflow` setting"
            ))
        );
        assert_eq!(
            Dispatch::from_input(&json!({"workflow": "a/b.yml"}), &settings()),
            Err(Error::invalid_input(
                "/workflow",
                "is not a workflow file name (deploy.yml) or id"
            ))
        );
        assert_eq!(
            Dispatch::from_input(&json!({"inputs": {"a/b": 1}}), &settings()),
            Err(Error::invalid_input("/inputs/a~1b", "must be a string"))
        );
    }

    #[test]
    fn the_repository_comes_from_the_slug_annotation() {
        let mut entity = Entity::new("Component", "payments");
        let err = repository(Some(&entity)).unwrap_err();
        let Error::InvalidInput { pointer, reason } = err else {
            panic!("{err:?}")
        };
        assert_eq!(pointer, "");
        assert!(
            reason.starts_with(
                "Component:default/payments has no `github.com/project-slug` annotation"
            ),
            "{reason}"
        );
        entity.annotations = vec![Pair::new(SLUG_ANNOTATION, "acme/payments")];
        assert_eq!(repository(Some(&entity)).unwrap(), "acme/payments");
        for bad in ["acme", "acme/pay/ments", "../x", "acme/", "ac me/x"] {
            entity.annotations = vec![Pair::new(SLUG_ANNOTATION, bad)];
            assert!(repository(Some(&entity)).is_err(), "{bad}");
        }
        assert!(repository(None).is_err());
    }

    #[test]
    fn refs_become_branch_filters() {
        assert_eq!(branch_name("refs/heads/main"), "main");
        assert_eq!(branch_name("refs/tags/v1.0"), "v1.0");
        assert_eq!(branch_name("release/1.2"), "release/1.2");
        assert_eq!(encode_query("release/1.2 x&y"), "release%2F1.2%20x%26y");
    }

    #[test]
    fn errors_are_cut_and_never_hold_the_token() {
        assert_eq!(
            redact("Bearer t0k3n refused", "t0k3n"),
            "Bearer [secret] refused"
        );
        assert_eq!(truncate("abcdef", 3), "abc...");
    }
}
