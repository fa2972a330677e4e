//! Action `create-repository`: creates a repository in an organisation of a
//! GitHub-shaped code-hosting platform through its REST API, so that a
//! template can push a new project to it.
//!
//! It stands alone (no entity). Input: `{"owner": "acme", "name": "payments",
//! "description": "...", "private": true}`; only `name` is required, `owner`
//! defaults to the setting of the same name and `private` to true.
//!
//! `POST {api_url}/orgs/{owner}/repos` with `{"name": ..., "description": ...,
//! "private": ..., "auto_init": false}` (no `description` when the input has
//! none), answered `201 Created` with the repository. The request carries
//! `Accept: application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28`
//! and `Authorization: Bearer` with the secret named by `token_secret`.
//! `auto_init` stays false: the repository starts empty, ready for the
//! template's first push.
//!
//! Settings (`[settings]` in the sidecar):
//!
//! | key | default | |
//! | --- | --- | --- |
//! | `token_secret` | required | name of a granted secret: a token that may create repositories in the organisation |
//! | `api_url` | `https://api.github.com` | the API root (GitHub Enterprise: `https://HOST/api/v3`) |
//! | `owner` | none | the organisation when the input names none (else the input must) |
//!
//! Output: `{"fullName": "acme/payments", "cloneUrl": "https://...git",
//! "sshUrl": "git@...git", "htmlUrl": "https://...", "defaultBranch": "main"}`
//! (`sshUrl` and `defaultBranch` null when the API does not say) and a link to
//! the repository. A name already taken fails the action with `repository
//! {owner}/{name} already exists`; any other non-2xx answer fails it naming
//! the status and the API's message.

use std::time::Duration;

use portolan_sdk::action::{ActionInfo, Error, Invocation, Outcome};
use portolan_sdk::http::{Method, Request};
use portolan_sdk::{about, Action, Link};
use serde_json::{json, Value};

const DEFAULT_API_URL: &str = "https://api.github.com";

/// The longest repository name GitHub accepts.
const MAX_NAME: usize = 100;

/// Bounds connecting and each wait for bytes of the request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// How much of a failed answer's body goes into the run's error.
const MAX_ERROR_BODY: usize = 300;

struct CreateRepository;

impl Action for CreateRepository {
    fn describe() -> ActionInfo {
        ActionInfo::new(
            about!(
                "Create a repository",
                "Creates a new, empty repository in an organisation on GitHub (or a platform \
                 with the same REST API), for a template to push a new project to."
            ),
            input_schema(),
        )
    }

    fn run(invocation: Invocation) -> Result<Outcome, Error> {
        let settings = Settings::from_json(&portolan_sdk::settings())?;
        let repo = NewRepo::from_input(&invocation.input, &settings)?;
        let token = portolan_sdk::secret(&settings.token_secret)
            .map_err(|e| Error::Other(format!("setting `token_secret`: {e}")))?;

        portolan_sdk::info!("creating repository {}/{}", repo.owner, repo.name);
        let url = format!("{}/orgs/{}/repos", settings.api_url, repo.owner);
        let response = Request::new(Method::Post, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .bearer(&token)
            .timeout(REQUEST_TIMEOUT)
            .json(&repo.body())
            .send()?;
        if !response.is_success() {
            return Err(repo.failure(response.status, &response.text(), &token));
        }
        let created = response
            .json::<Value>()
            .map_err(|e| e.to_string())
            .and_then(|body| Created::from_json(&body))
            .map_err(|e| {
                Error::Failed(format!(
                    "repository {}/{} was created ({}) but the answer is unexpected: {}",
                    repo.owner,
                    repo.name,
                    response.status,
                    redact(&e, &token)
                ))
            })?;
        portolan_sdk::info!("created {}", created.full_name);
        Ok(Outcome::new(created.output()).with_link(
            Link::new(created.html_url.as_str())
                .with_title(format!("Repository {}", created.full_name)),
        ))
    }
}

portolan_sdk::export!(Action for CreateRepository);

fn input_schema() -> Value {
    json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "owner": {"type": "string", "description": "organisation; default from the `owner` setting"},
            "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,100}$"},
            "description": {"type": "string"},
            "private": {"type": "boolean", "default": true}
        },
        "additionalProperties": false
    })
}

/// The settings, checked.
#[derive(Debug, PartialEq)]
struct Settings {
    /// Without a trailing `/`.
    api_url: String,
    token_secret: String,
    owner: Option<String>,
}

impl Settings {
    /// Reads the `[settings]` table; every problem is named in one error.
    fn from_json(settings: &Value) -> Result<Settings, Error> {
        let mut r = settings::Reader::new(settings);
        let api_url = r.api_url(DEFAULT_API_URL);
        let token_secret = r.required(
            "token_secret",
            "the name of a granted secret holding a token that may create repositories",
        );
        let owner = r.text("owner");
        if let Some(owner) = &owner {
            if let Err(why) = check_owner(owner) {
                r.problem(format!("`owner` {owner:?} {why}"));
            }
        }
        r.finish().map_err(Error::Other)?;
        Ok(Settings {
            api_url,
            token_secret,
            owner,
        })
    }
}

/// The repository to create.
#[derive(Debug, PartialEq)]
struct NewRepo {
    owner: String,
    name: String,
    description: Option<String>,
    private: bool,
}

impl NewRepo {
    fn from_input(input: &Value, settings: &Settings) -> Result<NewRepo, Error> {
        let text = |key: &str| match input.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim()).filter(|s| !s.is_empty())),
            Some(_) => Err(Error::invalid_input(format!("/{key}"), "must be a string")),
        };
        let owner = match (text("owner")?, &settings.owner) {
            (Some(owner), _) => {
                check_owner(owner).map_err(|why| Error::invalid_input("/owner", why))?;
                owner.to_owned()
            }
            (None, Some(owner)) => owner.clone(),
            (None, None) => {
                return Err(Error::invalid_input(
                    "/owner",
                    "is required: the action has no default `owner` setting",
                ))
            }
        };
        let name = text("name")?.ok_or_else(|| Error::invalid_input("/name", "is required"))?;
        check_name(name).map_err(|why| Error::invalid_input("/name", why))?;
        let private = match input.get("private") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(private)) => *private,
            Some(_) => return Err(Error::invalid_input("/private", "must be true or false")),
        };
        Ok(NewRepo {
            owner,
            name: name.to_owned(),
            description: text("description")?.map(str::to_owned),
            private,
        })
    }

    /// The body of `POST /orgs/{owner}/repos`.
    fn body(&self) -> Value {
        let mut body = json!({"name": self.name});
        if let Some(description) = &self.description {
            body["description"] = json!(description);
        }
        body["private"] = json!(self.private);
        body["auto_init"] = json!(false);
        body
    }

    /// The error for a non-2xx answer: a name already taken said plainly,
    /// anything else with the status and what the API said, without the
    /// token should the API echo it.
    fn failure(&self, status: u16, body: &str, token: &str) -> Error {
        let parsed = serde_json::from_str::<Value>(body).ok();
        if status == 422 && says_already_exists(parsed.as_ref(), body) {
            return Error::Failed(format!(
                "repository {}/{} already exists",
                self.owner, self.name
            ));
        }
        let detail = match parsed
            .as_ref()
            .and_then(|b| b.get("message"))
            .and_then(Value::as_str)
        {
            Some(message) => {
                let mut message = message.to_owned();
                let details = error_details(parsed.as_ref());
                if !details.is_empty() {
                    message = format!("{message} ({})", details.join("; "));
                }
                message
            }
            None => body.to_owned(),
        };
        let detail = truncate(&redact(detail.trim(), token), MAX_ERROR_BODY);
        let said = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let hint = match status {
            401 | 403 => {
                " (check the token named by `token_secret`: it must be allowed to create \
                 repositories in the organisation)"
            }
            404 => " (check the organisation and `api_url`)",
            _ => "",
        };
        Error::Failed(format!(
            "the API answered {status} to creating repository {}/{}{said}{hint}",
            self.owner, self.name
        ))
    }
}

/// Whether a 422 answer says the name is taken. GitHub answers
/// `{"message": "Repository creation failed.", "errors": [{"resource":
/// "Repository", "code": "custom", "field": "name", "message": "name already
/// exists on this account"}]}`; look at every message and code it gives, or
/// at the text if it is not JSON.
fn says_already_exists(parsed: Option<&Value>, body: &str) -> bool {
    let taken = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("already exists") || s == "already_exists"
    };
    let Some(parsed) = parsed else {
        return taken(body);
    };
    if parsed
        .get("message")
        .and_then(Value::as_str)
        .is_some_and(taken)
    {
        return true;
    }
    parsed
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|error| match error {
            Value::String(s) => taken(s),
            error => ["message", "code"]
                .iter()
                .filter_map(|key| error.get(key).and_then(Value::as_str))
                .any(taken),
        })
}

/// The `message`s of a GitHub error answer's `errors` list.
fn error_details(parsed: Option<&Value>) -> Vec<String> {
    parsed
        .and_then(|b| b.get("errors"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|error| match error {
            Value::String(s) => Some(s.as_str()),
            error => error.get("message").and_then(Value::as_str),
        })
        .map(str::to_owned)
        .collect()
}

/// The repository as the API answered it.
#[derive(Debug, PartialEq)]
struct Created {
    full_name: String,
    clone_url: String,
    ssh_url: Option<String>,
    html_url: String,
    default_branch: Option<String>,
}

impl Created {
    /// Reads the answer to the creation; the error names a missing field.
    fn from_json(body: &Value) -> Result<Created, String> {
        let optional = |key: &str| {
            body.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let required = |key: &str| optional(key).ok_or_else(|| format!("it has no `{key}`"));
        Ok(Created {
            full_name: required("full_name")?,
            clone_url: required("clone_url")?,
            ssh_url: optional("ssh_url"),
            html_url: required("html_url")?,
            default_branch: optional("default_branch"),
        })
    }

    /// The action's output.
    fn output(&self) -> Value {
        json!({
            "fullName": self.full_name,
            "cloneUrl": self.clone_url,
            "sshUrl": self.ssh_url,
            "htmlUrl": self.html_url,
            "defaultBranch": self.default_branch,
        })
    }
}

/// An organisation goes into the URL's path: GitHub's letters, digits and
/// hyphens (plus `.` and `_` that other platforms allow), nothing that could
/// leave the path segment.
fn check_owner(owner: &str) -> Result<(), &'static str> {
    if !owner.is_empty()
        && !owner.starts_with('.')
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        Ok(())
    } else {
        Err("is not an organisation name (letters, digits, `-`, `_`, `.`)")
    }
}

/// What the input schema's pattern says, checked again, and the two names
/// that pattern lets through but no platform accepts.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        Err("must be 1 to 100 of letters, digits, `.`, `-`, `_`")
    } else if name == "." || name == ".." {
        Err("cannot be `.` or `..`")
    } else {
        Ok(())
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

    fn settings() -> Settings {
        Settings::from_json(&json!({"token_secret": "GITHUB_TOKEN", "owner": "acme"})).unwrap()
    }

    fn repo() -> NewRepo {
        NewRepo::from_input(&json!({"name": "payments"}), &settings()).unwrap()
    }

    #[test]
    fn settings_have_defaults_and_name_every_problem() {
        assert_eq!(
            settings(),
            Settings {
                api_url: DEFAULT_API_URL.into(),
                token_secret: "GITHUB_TOKEN".into(),
                owner: Some("acme".into()),
            }
        );
        let s = Settings::from_json(
            &json!({"token_secret": "T", "api_url": "http://127.0.0.1:9000/api/v3/"}),
        )
        .unwrap();
        assert_eq!(s.api_url, "http://127.0.0.1:9000/api/v3");
        assert_eq!(s.owner, None);

        let err = Settings::from_json(&json!({"api_url": "ftp://x", "owner": "a/b"}))
            .unwrap_err()
            .to_string();
        for part in [
            "`api_url` \"ftp://x\"",
            "`token_secret` is not set",
            "`owner` \"a/b\"",
            "under [settings]",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
    }

    #[test]
    fn the_input_names_the_repository_and_overrides_the_owner() {
        assert_eq!(
            repo(),
            NewRepo {
                owner: "acme".into(),
                name: "payments".into(),
                description: None,
                private: true,
            }
        );
        let r = NewRepo::from_input(
            &json!({"owner": "other-org", "name": "web.site_2", "description": "The site", "private": false}),
            &settings(),
        )
        .unwrap();
        assert_eq!(
            r,
            NewRepo {
                owner: "other-org".into(),
                name: "web.site_2".into(),
                description: Some("The site".into()),
                private: false,
            }
        );

        let no_owner = Settings {
            owner: None,
            ..settings()
        };
        assert_eq!(
            NewRepo::from_input(&json!({"name": "x"}), &no_owner),
            Err(Error::invalid_input(
                "/owner",
                "is required: the action has no default `owner` setting"
            ))
        );
        assert_eq!(
            NewRepo::from_input(&json!({"name": "x", "owner": "  "}), &no_owner),
            Err(Error::invalid_input(
                "/owner",
                "is required: the action has no default `owner` setting"
            ))
        );
        for (input, pointer) in [
            (json!({"name": "x", "owner": "../admin"}), "/owner"),
            (json!({"name": "x", "owner": "a/b"}), "/owner"),
            (json!({}), "/name"),
            (json!({"name": "a b"}), "/name"),
            (json!({"name": ".."}), "/name"),
            (json!({"name": "x".repeat(101)}), "/name"),
            (json!({"name": "x", "private": "yes"}), "/private"),
            (json!({"name": "x", "description": 3}), "/description"),
        ] {
            match NewRepo::from_input(&input, &settings()) {
                Err(Error::InvalidInput { pointer: p, .. }) => assert_eq!(p, pointer, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        assert!(NewRepo::from_input(&json!({"name": "x".repeat(100)}), &settings()).is_ok());
    }

    #[test]
    fn the_body_omits_a_missing_description_and_never_initialises() {
        assert_eq!(
            repo().body().to_string(),
            r#"{"name":"payments","private":true,"auto_init":false}"#
        );
        let r = NewRepo {
            description: Some("Payments API".into()),
            private: false,
            ..repo()
        };
        assert_eq!(
            r.body().to_string(),
            r#"{"name":"payments","description":"Payments API","private":false,"auto_init":false}"#
        );
    }

    #[test]
    fn the_answer_becomes_the_output() {
        let answer = json!({
            "id": 1296269, "name": "payments", "full_name": "acme/payments",
            "html_url": "https://github.com/acme/payments",
            "clone_url": "https://github.com/acme/payments.git",
            "ssh_url": "git@github.com:acme/payments.git",
            "default_branch": "main", "private": true
        });
        let created = Created::from_json(&answer).unwrap();
        assert_eq!(
            created.output().to_string(),
            json!({
                "fullName": "acme/payments",
                "cloneUrl": "https://github.com/acme/payments.git",
                "sshUrl": "git@github.com:acme/payments.git",
                "htmlUrl": "https://github.com/acme/payments",
                "defaultBranch": "main",
            })
            .to_string()
        );

        let sparse = json!({
            "full_name": "acme/payments",
            "html_url": "https://git.example.com/acme/payments",
            "clone_url": "https://git.example.com/acme/payments.git",
            "ssh_url": null
        });
        let output = Created::from_json(&sparse).unwrap().output();
        assert_eq!(output["sshUrl"], Value::Null);
        assert_eq!(output["defaultBranch"], Value::Null);
        let keys: Vec<&str> = output
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            ["fullName", "cloneUrl", "sshUrl", "htmlUrl", "defaultBranch"]
        );

        assert_eq!(
            Created::from_json(&json!({"full_name": "acme/payments", "html_url": "h"})),
            Err("it has no `clone_url`".to_owned())
        );
    }

    #[test]
    fn a_taken_name_is_said_plainly() {
        let github = r#"{"message":"Repository creation failed.","errors":[{"resource":"Repository","code":"custom","field":"name","message":"name already exists on this account"}],"documentation_url":"https://docs.github.com/rest/repos/repos#create-an-organization-repository","status":"422"}"#;
        assert_eq!(
            repo().failure(422, github, "t0k3n"),
            Error::Failed("repository acme/payments already exists".into())
        );
        for other in [
            r#"{"message":"Validation Failed","errors":[{"resource":"Repository","code":"already_exists","field":"name"}]}"#,
            r#"{"message":"Repository already exists"}"#,
            "name already exists",
        ] {
            assert_eq!(
                repo().failure(422, other, "t0k3n"),
                Error::Failed("repository acme/payments already exists".into()),
                "{other}"
            );
        }
        // A 422 for another reason is not a taken name.
        assert_eq!(
            repo().failure(
                422,
                r#"{"message":"Repository creation failed.","errors":[{"resource":"Repository","code":"custom","field":"name","message":"name is too long (maximum is 100 characters)"}]}"#,
                "t0k3n"
            ),
            Error::Failed(
                "the API answered 422 to creating repository acme/payments: Repository creation \
                 failed. (name is too long (maximum is 100 characters))"
                    .into()
            )
        );
    }

    #[test]
    fn other_failures_name_the_status_and_the_message_without_the_token() {
        assert_eq!(
            repo().failure(
                403,
                r#"{"message":"Token t0k3n may not create repositories","documentation_url":"x"}"#,
                "t0k3n"
            ),
            Error::Failed(
                "the API answered 403 to creating repository acme/payments: Token [secret] may \
                 not create repositories (check the token named by `token_secret`: it must be \
                 allowed to create repositories in the organisation)"
                    .into()
            )
        );
        assert_eq!(
            repo().failure(404, r#"{"message":"Not Found"}"#, "t0k3n"),
            Error::Failed(
                "the API answered 404 to creating repository acme/payments: Not Found (check \
                 the organisation and `api_url`)"
                    .into()
            )
        );
        assert_eq!(
            repo().failure(502, "bad gateway for Bearer t0k3n", "t0k3n"),
            Error::Failed(
                "the API answered 502 to creating repository acme/payments: bad gateway for \
                 Bearer [secret]"
                    .into()
            )
        );
        assert_eq!(
            repo().failure(500, "", "t0k3n"),
            Error::Failed("the API answered 500 to creating repository acme/payments".into())
        );
        let Error::Failed(long) = repo().failure(500, &"é".repeat(400), "t0k3n") else {
            panic!()
        };
        assert!(long.ends_with("..."), "{long}");
    }

    #[test]
    fn the_schema_is_the_documented_one() {
        let schema = input_schema();
        assert_eq!(schema["required"], json!(["name"]));
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["properties"]["private"]["default"], json!(true));
        assert_eq!(
            redact("Bearer t0k3n refused", "t0k3n"),
            "Bearer [secret] refused"
        );
        assert_eq!(truncate("abcdef", 3), "abc...");
    }
}
