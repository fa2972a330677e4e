//! Scorecard-check plugin `ci-status`: judges an entity by the CI runs of its
//! repository, through the GitHub Actions REST API (or any API of the same
//! shape, e.g. GitHub Enterprise's).
//!
//! Two checks (`ci-status/latest-ci-passed`, `ci-status/ci-run-recent`):
//!
//! - `latest-ci-passed`: the newest *completed* workflow run on the default
//!   branch concluded `success`. Runs still queued or in progress are not
//!   looked at: the verdict is the last finished one's.
//! - `ci-run-recent`: the newest completed run on the default branch (any
//!   conclusion) finished at most `maxAgeDays` days ago, i.e. somebody still
//!   builds the repository.
//!
//! The repository is the entity's `github.com/project-slug` annotation
//! (`owner/repo`), as Backstage's GitHub plugins read it. An entity without
//! it is `skip` (the rule does not apply; a skip lets the entity through its
//! level), or `fail` when the rule says `"requireAnnotation": true`. An
//! annotation that is not `owner/repo` is `error`.
//!
//! Rule parameters (both checks): `workflow` (a workflow file such as
//! `ci.yml`, or its id: only that workflow's runs count), `branch` (instead
//! of the repository's default branch), `requireAnnotation`; and for
//! `ci-run-recent` the required `maxAgeDays`.
//!
//! Settings (`[settings]` in the sidecar):
//!
//! | key | default | |
//! | --- | --- | --- |
//! | `api_url` | `https://api.github.com` | the API root (GitHub Enterprise: `https://HOST/api/v3`); its host must be on `[http] allow` |
//! | `token_secret` | none | name of a granted secret holding a token that may read the repositories and their Actions (`actions: read`); without one the API is asked anonymously |
//! | `timeout_ms` | 10000 | per request |
//! | `budget_ms` | 25000 | no new repository is looked up after this long in one call; keep it below `limits.timeout_ms` |
//!
//! Per call (one rule, a batch of entities) each repository is looked up
//! once, however many entities name it. A failed lookup gives `error` to
//! the entities of that repository only; a failure that concerns the API as
//! a whole (unreachable, denied by the allowlist, rate limit, refused token)
//! gives `error` to the rest of the batch without further requests. See
//! [`github`] for the requests.

mod github;

use std::time::Duration;

use portolan_sdk::check::{CheckInfo, Error, Outcome, PluginInfo};
use portolan_sdk::http::{Method, Request};
use portolan_sdk::{about, Entity, ScorecardCheck};
use serde_json::{json, Map, Value};

use github::{Answer, Latest, Lookup, Transport};

const LATEST_CI_PASSED: &str = "latest-ci-passed";
const CI_RUN_RECENT: &str = "ci-run-recent";

const DEFAULT_API_URL: &str = "https://api.github.com";
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Below the host's default call deadline (30 s), so that a slow API turns
/// into `error` outcomes for the entities not yet looked up rather than a
/// timeout of the whole call.
const DEFAULT_BUDGET_MS: u64 = 25_000;

/// The annotation that names the repository.
const SLUG_ANNOTATION: &str = "github.com/project-slug";

struct CiStatus;

impl ScorecardCheck for CiStatus {
    fn describe() -> PluginInfo {
        let common = |extra: Value, required: &[&str]| {
            let mut properties = json!({
                "workflow": {
                    "type": "string", "title": "Workflow", "minLength": 1,
                    "description": "Only this workflow's runs count: its file name (ci.yml) or id. Default: every workflow's.",
                    "examples": ["ci.yml"]
                },
                "branch": {
                    "type": "string", "title": "Branch", "minLength": 1,
                    "description": "The branch to look at instead of the repository's default branch."
                },
                "requireAnnotation": {
                    "type": "boolean", "title": "Require the annotation", "default": false,
                    "description": "Fail entities without a github.com/project-slug annotation (by default they are skipped)."
                }
            });
            if let (Some(all), Value::Object(extra)) = (properties.as_object_mut(), extra) {
                all.extend(extra);
            }
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false
            })
        };
        PluginInfo::new(about!(
            "CI status",
            "Judges entities by the CI runs of their repository (github.com/project-slug) \
             through the GitHub Actions REST API."
        ))
        .with_check(CheckInfo::new(
            LATEST_CI_PASSED,
            "Latest CI run passed",
            "The newest completed workflow run on the repository's default branch concluded \
             success. Entities without a github.com/project-slug annotation are skipped.",
            common(json!({}), &[]),
        ))
        .with_check(CheckInfo::new(
            CI_RUN_RECENT,
            "CI ran recently",
            "The newest completed workflow run on the repository's default branch, whatever \
             its conclusion, finished at most maxAgeDays days ago.",
            common(
                json!({"maxAgeDays": {
                    "type": "integer", "title": "Maximum age (days)", "minimum": 1,
                    "description": "How old the newest completed run may be.",
                    "examples": [30]
                }}),
                &["maxAgeDays"],
            ),
        ))
    }

    fn evaluate(
        check: &str,
        parameters: Value,
        entities: Vec<Entity>,
    ) -> Result<Vec<Outcome>, Error> {
        let rule = Rule::from_json(check, &parameters)?;
        let settings = Settings::from_json(&portolan_sdk::settings())?;
        let token = match &settings.token_secret {
            Some(name) => Some(
                portolan_sdk::secret(name)
                    .map_err(|e| Error::Other(format!("setting `token_secret`: {e}")))?,
            ),
            None => None,
        };
        let transport = Http {
            token: token.clone(),
            timeout: settings.timeout,
        };
        let mut lookup = Lookup::new(
            transport,
            &settings.api_url,
            rule.workflow.clone(),
            rule.branch.clone(),
            token,
            settings.budget,
        );
        let now = timestamps::now_secs();
        Ok(entities
            .iter()
            .map(|entity| match repository(entity) {
                Slug::Missing if rule.require_annotation => Outcome::fail(format!(
                    "no `{SLUG_ANNOTATION}` annotation, so the repository is unknown: add \
                     `{SLUG_ANNOTATION}: owner/repo` under metadata.annotations"
                )),
                Slug::Missing => Outcome::skip(format!(
                    "no `{SLUG_ANNOTATION}` annotation: the entity has no repository to look at"
                )),
                Slug::Invalid(why) => Outcome::error(why),
                Slug::Found(slug) => match lookup.latest(&slug) {
                    Ok(latest) => judge(&rule, &slug, &latest, now),
                    Err(problem) => Outcome::error(problem.message()),
                },
            })
            .collect())
    }
}

portolan_sdk::export!(ScorecardCheck for CiStatus);

/// The two checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    LatestPassed,
    /// With the maximum age in seconds.
    Recent(i64),
}

/// A rule's parameters, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    check: Check,
    workflow: Option<String>,
    branch: Option<String>,
    require_annotation: bool,
}

impl Rule {
    /// The host validated the parameters against the check's schema; what
    /// the schema cannot say (a workflow that would leave its path segment)
    /// is checked here.
    fn from_json(check: &str, parameters: &Value) -> Result<Rule, Error> {
        let text = |key: &str| match parameters.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(Error::invalid_parameter(
                format!("/{key}"),
                "must be a non-empty string",
            )),
        };
        let workflow = text("workflow")?;
        if let Some(workflow) = &workflow {
            let plain = workflow
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !plain || workflow.starts_with('.') {
                return Err(Error::invalid_parameter(
                    "/workflow",
                    "must be a workflow file name (ci.yml) or id",
                ));
            }
        }
        let require_annotation = match parameters.get("requireAnnotation") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Error::invalid_parameter(
                    "/requireAnnotation",
                    "must be true or false",
                ))
            }
        };
        let check = match check {
            LATEST_CI_PASSED => Check::LatestPassed,
            CI_RUN_RECENT => match parameters.get("maxAgeDays").and_then(Value::as_i64) {
                Some(days @ 1..=36_500) => Check::Recent(days * 86_400),
                _ => {
                    return Err(Error::invalid_parameter(
                        "/maxAgeDays",
                        "must be a whole number of days from 1 to 36500",
                    ))
                }
            },
            other => return Err(Error::unknown_check(other)),
        };
        Ok(Rule {
            check,
            workflow,
            branch: text("branch")?,
            require_annotation,
        })
    }
}

/// The settings, checked.
#[derive(Debug, PartialEq)]
struct Settings {
    /// Without a trailing `/`.
    api_url: String,
    token_secret: Option<String>,
    timeout: Duration,
    budget: Duration,
}

impl Settings {
    /// Reads the `[settings]` table; every problem is named in one error.
    fn from_json(settings: &Value) -> Result<Settings, Error> {
        let mut r = settings::Reader::new(settings);
        let timeout = r.millis("timeout_ms", DEFAULT_TIMEOUT_MS);
        let budget = r.millis("budget_ms", DEFAULT_BUDGET_MS);
        let api_url = r.api_url(DEFAULT_API_URL);
        let token_secret = r.text("token_secret");
        r.finish().map_err(Error::Other)?;
        Ok(Settings {
            api_url,
            token_secret,
            timeout,
            budget,
        })
    }
}

/// What the entity's annotation says.
#[derive(Debug, PartialEq, Eq)]
enum Slug {
    Missing,
    Invalid(String),
    Found(String),
}

/// `owner/repo` from the entity's `github.com/project-slug` annotation. A
/// blank annotation counts as missing.
fn repository(entity: &Entity) -> Slug {
    let Some(slug) = entity
        .annotation(SLUG_ANNOTATION)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Slug::Missing;
    };
    // Both halves go into the URL's path: nothing that could leave a segment.
    let segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    match slug.split_once('/') {
        Some((owner, repo)) if segment(owner) && segment(repo) => Slug::Found(slug.to_owned()),
        _ => Slug::Invalid(format!(
            "the `{SLUG_ANNOTATION}` annotation is {slug:?}, not `owner/repo`"
        )),
    }
}

/// The verdict on what the API said about the entity's repository; `now`
/// in Unix seconds.
fn judge(rule: &Rule, slug: &str, latest: &Latest, now: i64) -> Outcome {
    let mut value = Map::new();
    value.insert("repository".into(), slug.into());
    value.insert("branch".into(), latest.branch.as_str().into());
    if let Some(workflow) = &rule.workflow {
        value.insert("workflow".into(), workflow.as_str().into());
    }
    let of_workflow = match &rule.workflow {
        Some(workflow) => format!(" of workflow {workflow}"),
        None => String::new(),
    };
    let Some(run) = &latest.run else {
        value.insert("runId".into(), Value::Null);
        return Outcome::fail(format!(
            "no completed CI runs{of_workflow} on branch {} of {slug}",
            latest.branch
        ))
        .with_value(Value::Object(value));
    };
    let age = run.finished_secs.map(|at| (now - at).max(0));
    value.insert("runId".into(), run.id.into());
    value.insert("runNumber".into(), run.run_number.into());
    value.insert("conclusion".into(), run.conclusion.as_str().into());
    value.insert("url".into(), run.html_url.as_str().into());
    value.insert("finishedAt".into(), run.finished_at.clone().into());
    value.insert("ageSeconds".into(), age.into());
    let value = Value::Object(value);

    let when = match (age, &run.finished_at) {
        (Some(age), Some(at)) => format!("{} ({at})", ago(age)),
        _ => "at an unknown time".to_owned(),
    };
    let url = if run.html_url.is_empty() {
        String::new()
    } else {
        format!(": {}", run.html_url)
    };
    let conclusion = if run.conclusion.is_empty() {
        "without a conclusion"
    } else {
        &run.conclusion
    };
    let subject = format!(
        "the latest completed CI run{of_workflow} on {} of {slug}, {},",
        latest.branch,
        run.label()
    );
    match rule.check {
        Check::LatestPassed if run.conclusion == "success" => {
            Outcome::pass().with_message(format!("{subject} succeeded {when}{url}"))
        }
        Check::LatestPassed => {
            Outcome::fail(format!("{subject} concluded {conclusion} {when}{url}"))
        }
        Check::Recent(max) => match age {
            None => Outcome::error(format!(
                "{subject} has no `updated_at` or `created_at` time{url}"
            )),
            Some(age) if age <= max => Outcome::pass().with_message(format!(
                "{subject} finished {when}, within {} days{url}",
                max / 86_400
            )),
            Some(_) => Outcome::fail(format!(
                "{subject} finished {when}, more than {} days ago{url}",
                max / 86_400
            )),
        },
    }
    .with_value(value)
}

/// `just now`, `5 minutes ago`, `3 hours ago`, `12 days ago`.
fn ago(secs: i64) -> String {
    let (n, unit) = match secs {
        ..60 => return "just now".to_owned(),
        60..3_600 => (secs / 60, "minute"),
        3_600..86_400 => (secs / 3_600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// The SDK's blocking client, with the headers the API asks for.
struct Http {
    token: Option<String>,
    timeout: Duration,
}

impl Transport for Http {
    fn get(&mut self, url: &str) -> Result<Answer, String> {
        let mut request = Request::new(Method::Get, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .timeout(self.timeout);
        if let Some(token) = &self.token {
            request = request.bearer(token);
        }
        let response = request.send().map_err(|e| e.to_string())?;
        let number = |name: &str| response.header(name).and_then(|v| v.trim().parse().ok());
        Ok(Answer {
            status: response.status,
            ratelimit_remaining: number("x-ratelimit-remaining"),
            ratelimit_reset: number("x-ratelimit-reset").map(|v: u64| v as i64),
            body: response.body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use github::Run;
    use portolan_sdk::check::Status;
    use portolan_sdk::Pair;

    const NOW: i64 = 1_795_857_302 + 3 * 3_600; // 3 h after the run finished

    fn run(conclusion: &str) -> Run {
        Run {
            id: 4242,
            run_number: Some(12),
            name: Some("CI".into()),
            conclusion: conclusion.into(),
            html_url: "https://github.test/acme/pay/actions/runs/4242".into(),
            finished_at: Some("2026-11-28T09:15:02Z".into()),
            finished_secs: Some(1_795_857_302),
        }
    }

    fn latest(run: Option<Run>) -> Latest {
        Latest {
            branch: "main".into(),
            run,
        }
    }

    fn rule(check: &str, parameters: Value) -> Rule {
        Rule::from_json(check, &parameters).unwrap()
    }

    #[test]
    fn a_successful_latest_run_passes_and_says_which_it_was() {
        let outcome = judge(
            &rule(LATEST_CI_PASSED, json!({})),
            "acme/pay",
            &latest(Some(run("success"))),
            NOW,
        );
        assert_eq!(outcome.status, Status::Pass);
        assert_eq!(
            outcome.message.as_deref(),
            Some(
                "the latest completed CI run on main of acme/pay, run #12 \"CI\" (4242), \
                 succeeded 3 hours ago (2026-11-28T09:15:02Z): \
                 https://github.test/acme/pay/actions/runs/4242"
            )
        );
        assert_eq!(
            outcome.value,
            Some(json!({
                "repository": "acme/pay", "branch": "main", "runId": 4242, "runNumber": 12,
                "conclusion": "success", "url": "https://github.test/acme/pay/actions/runs/4242",
                "finishedAt": "2026-11-28T09:15:02Z", "ageSeconds": 10_800
            }))
        );
    }

    #[test]
    fn any_other_conclusion_fails_naming_it() {
        for conclusion in ["failure", "cancelled", "timed_out"] {
            let outcome = judge(
                &rule(LATEST_CI_PASSED, json!({"workflow": "ci.yml"})),
                "acme/pay",
                &latest(Some(run(conclusion))),
                NOW,
            );
            assert_eq!(outcome.status, Status::Fail);
            assert_eq!(
                outcome.message.unwrap(),
                format!(
                    "the latest completed CI run of workflow ci.yml on main of acme/pay, run #12 \
                     \"CI\" (4242), concluded {conclusion} 3 hours ago (2026-11-28T09:15:02Z): \
                     https://github.test/acme/pay/actions/runs/4242"
                )
            );
            assert_eq!(outcome.value.unwrap()["workflow"], "ci.yml");
        }
    }

    #[test]
    fn a_repository_without_completed_runs_fails() {
        for check in [LATEST_CI_PASSED, CI_RUN_RECENT] {
            let outcome = judge(
                &rule(check, json!({"maxAgeDays": 7})),
                "acme/pay",
                &latest(None),
                NOW,
            );
            assert_eq!(outcome.status, Status::Fail);
            assert_eq!(
                outcome.message.as_deref(),
                Some("no completed CI runs on branch main of acme/pay")
            );
            assert_eq!(outcome.value.unwrap()["runId"], Value::Null);
        }
    }

    #[test]
    fn a_recent_run_passes_whatever_its_conclusion_and_an_old_one_fails() {
        let recent = rule(CI_RUN_RECENT, json!({"maxAgeDays": 2}));
        let outcome = judge(&recent, "acme/pay", &latest(Some(run("failure"))), NOW);
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        let later = NOW + 5 * 86_400;
        let outcome = judge(&recent, "acme/pay", &latest(Some(run("success"))), later);
        assert_eq!(outcome.status, Status::Fail);
        assert!(
            outcome
                .message
                .as_deref()
                .unwrap()
                .contains("finished 5 days ago (2026-11-28T09:15:02Z), more than 2 days ago"),
            "{outcome:?}"
        );
        let undated = Run {
            finished_at: None,
            finished_secs: None,
            ..run("success")
        };
        assert_eq!(
            judge(&recent, "acme/pay", &latest(Some(undated)), NOW).status,
            Status::Error
        );
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(
            rule(
                CI_RUN_RECENT,
                json!({"maxAgeDays": 30, "branch": " develop ", "requireAnnotation": true})
            ),
            Rule {
                check: Check::Recent(30 * 86_400),
                workflow: None,
                branch: Some("develop".into()),
                require_annotation: true,
            }
        );
        assert_eq!(
            Rule::from_json(CI_RUN_RECENT, &json!({})),
            Err(Error::invalid_parameter(
                "/maxAgeDays",
                "must be a whole number of days from 1 to 36500"
            ))
        );
        assert_eq!(
            Rule::from_json(LATEST_CI_PASSED, &json!({"workflow": "../x"})),
            Err(Error::invalid_parameter(
                "/workflow",
                "must be a workflow file name (ci.yml) or id"
            ))
        );
        assert_eq!(
            Rule::from_json("nope", &json!({})),
            Err(Error::unknown_check("nope"))
        );
    }

    #[test]
    fn the_schemas_refuse_unknown_parameters() {
        let info = CiStatus::describe();
        let ids: Vec<&str> = info.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, [LATEST_CI_PASSED, CI_RUN_RECENT]);
        for check in &info.checks {
            assert_eq!(check.parameters_schema["additionalProperties"], false);
        }
        assert_eq!(
            info.checks[1].parameters_schema["required"],
            json!(["maxAgeDays"])
        );
    }

    #[test]
    fn settings_have_defaults_and_name_every_problem() {
        assert_eq!(
            Settings::from_json(&json!({})).unwrap(),
            Settings {
                api_url: DEFAULT_API_URL.into(),
                token_secret: None,
                timeout: Duration::from_secs(10),
                budget: Duration::from_secs(25),
            }
        );
        let s = Settings::from_json(&json!({
            "api_url": "http://127.0.0.1:9000/", "token_secret": "GITHUB_TOKEN",
            "timeout_ms": "500", "budget_ms": 1000
        }))
        .unwrap();
        assert_eq!(s.api_url, "http://127.0.0.1:9000");
        assert_eq!(s.token_secret.as_deref(), Some("GITHUB_TOKEN"));
        assert_eq!(
            (s.timeout, s.budget),
            (Duration::from_millis(500), Duration::from_secs(1))
        );
        let err = Settings::from_json(&json!({"api_url": "ftp://x", "timeout_ms": 0}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`api_url` \"ftp://x\""), "{err}");
        assert!(err.contains("`timeout_ms` 0"), "{err}");
    }

    #[test]
    fn the_repository_comes_from_the_slug_annotation() {
        let mut entity = Entity::new("Component", "payments");
        assert_eq!(repository(&entity), Slug::Missing);
        entity.annotations = vec![Pair::new(SLUG_ANNOTATION, " ")];
        assert_eq!(repository(&entity), Slug::Missing);
        entity.annotations = vec![Pair::new(SLUG_ANNOTATION, "acme/payments")];
        assert_eq!(repository(&entity), Slug::Found("acme/payments".into()));
        for bad in [
            "acme",
            "acme/pay/ments",
            "../x",
            "acme/",
            "ac me/x",
            "acme/..",
        ] {
            entity.annotations = vec![Pair::new(SLUG_ANNOTATION, bad)];
            assert!(matches!(repository(&entity), Slug::Invalid(_)), "{bad}");
        }
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(60), "1 minute ago");
        assert_eq!(ago(7_200), "2 hours ago");
        assert_eq!(ago(86_400 * 12 + 5), "12 days ago");
    }
}
