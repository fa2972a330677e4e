//! Action `restart-deployment`: restarts a service's Kubernetes Deployment
//! the way `kubectl rollout restart` does, and waits for the rollout.
//!
//! The Deployment is named by the entity's `backstage.io/kubernetes-id`
//! annotation, in the namespace of its `backstage.io/kubernetes-namespace`
//! annotation (else the `namespace` setting, else `default`). Input:
//! `{"reason": "...", "wait": true}`.
//!
//! 1. `PATCH {api_url}/apis/apps/v1/namespaces/{namespace}/deployments/{name}`
//!    with `Content-Type: application/strategic-merge-patch+json` and
//!    `{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"<now>"}}}}}`:
//!    a changed pod template makes the controller replace every pod.
//! 2. Unless `wait` is false, `GET` the same URL every `poll_ms` until the
//!    rollout is done ([`rollout::Progress::state`]: the controller has seen
//!    the change and every replica is updated and available), logging
//!    progress (`2/3 replicas updated, 3 available`), for at most
//!    `max_wait_ms` in all.
//!
//! Every request carries `Authorization: Bearer` with the secret named by
//! `token_secret`: a service account token allowed to `get` and `patch`
//! `deployments` in group `apps`.
//!
//! Settings (`[settings]` in the sidecar):
//!
//! | key | default | |
//! | --- | --- | --- |
//! | `api_url` | required | the API server, e.g. `https://k8s.example.com:6443` |
//! | `token_secret` | required | name of a granted secret holding the bearer token |
//! | `namespace` | `default` | for entities without a `backstage.io/kubernetes-namespace` annotation |
//! | `poll_ms` | 2000 | pause between two looks at the Deployment, in milliseconds |
//! | `max_wait_ms` | 300000 | how long to wait for the rollout; keep it below the sidecar's `limits.timeout_ms` |
//!
//! Output: `{"deployment": name, "namespace": ns, "restartedAt": timestamp,
//! "replicas": n}`. A non-2xx answer fails the run naming the status; so
//! does a rollout that exceeds its progress deadline or outlasts
//! `max_wait_ms` (the restart itself has then happened).

mod rollout;

use std::thread;
use std::time::{Duration, Instant};

use portolan_sdk::action::{ActionInfo, Error, Invocation, Outcome};
use portolan_sdk::http::{Method, Request, Response};
use portolan_sdk::{about, Action, Entity};
use serde_json::{json, Value};

use rollout::{Progress, State};

const DEFAULT_NAMESPACE: &str = "default";
const DEFAULT_POLL_MS: u64 = 2_000;
const DEFAULT_MAX_WAIT_MS: u64 = 300_000;

/// The annotations Backstage's Kubernetes plugin reads.
const ID_ANNOTATION: &str = "backstage.io/kubernetes-id";
const NAMESPACE_ANNOTATION: &str = "backstage.io/kubernetes-namespace";

/// The pod-template annotation `kubectl rollout restart` sets.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Failed looks at the Deployment in a row (no answer, or a 5xx) tolerated
/// while waiting: a rollout outlives a short hiccup of the API server.
const MAX_POLL_ERRORS: u32 = 3;

/// Bounds connecting and each wait for bytes of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// How much of a failed answer's body goes into the run's error.
const MAX_ERROR_BODY: usize = 300;

struct RestartDeployment;

impl Action for RestartDeployment {
    fn describe() -> ActionInfo {
        ActionInfo::new(
            about!(
                "Restart deployment",
                "Restarts the service's Kubernetes Deployment (its backstage.io/kubernetes-id \
                 annotation) like `kubectl rollout restart`, replacing every pod, and waits \
                 until the new pods are available."
            ),
            json!({
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "reason": {"type": "string", "title": "Reason", "description": "Why, for the audit trail.", "minLength": 1},
                    "wait": {"type": "boolean", "title": "Wait for the rollout", "default": true}
                },
                "additionalProperties": false
            }),
        )
        .for_kinds(["Component"])
        .for_types(["service"])
    }

    fn run(invocation: Invocation) -> Result<Outcome, Error> {
        let started = Instant::now();
        let settings = Settings::from_json(&portolan_sdk::settings())?;
        let target = Target::of(invocation.entity.as_ref(), &settings.namespace)?;
        let reason = invocation
            .input
            .get("reason")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::invalid_input("/reason", "is required"))?;
        let wait = match invocation.input.get("wait") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(wait)) => *wait,
            Some(_) => return Err(Error::invalid_input("/wait", "must be true or false")),
        };
        let token = portolan_sdk::secret(&settings.token_secret)
            .map_err(|e| Error::Other(format!("setting `token_secret`: {e}")))?;
        let api = Api {
            url: format!(
                "{}/apis/apps/v1/namespaces/{}/deployments/{}",
                settings.api_url, target.namespace, target.name
            ),
            token,
        };

        portolan_sdk::info!(
            "restarting deployment {} in namespace {} for {}: {reason}",
            target.name,
            target.namespace,
            invocation.actor
        );
        let restarted_at = timestamps::now_rfc3339();
        let response = api.send(Method::Patch, Some(&restart_patch(&restarted_at)))?;
        if !response.is_success() {
            return Err(api.status_error(&format!("the restart of {target}"), &response));
        }
        let patched: Value = response.json().map_err(|e| {
            Error::Failed(format!(
                "the restart of {target}: the answer is not JSON: {e}"
            ))
        })?;
        let mut progress = Progress::from_json(&patched);
        portolan_sdk::info!("restart requested at {restarted_at}");

        if wait {
            progress = wait_for_rollout(&api, &target, &settings, started)?;
            portolan_sdk::info!(
                "deployment {} rolled out: {}/{} replicas updated and available",
                target.name,
                progress.updated,
                progress.replicas
            );
        }
        Ok(Outcome::new(json!({
            "deployment": target.name,
            "namespace": target.namespace,
            "restartedAt": restarted_at,
            "replicas": progress.replicas,
        })))
    }
}

portolan_sdk::export!(Action for RestartDeployment);

/// The strategic-merge patch that restarts a Deployment's pods: a new value
/// of an annotation in the pod template.
fn restart_patch(restarted_at: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}})
}

/// Looks at the Deployment every `poll` until its rollout is done.
fn wait_for_rollout(
    api: &Api,
    target: &Target,
    settings: &Settings,
    started: Instant,
) -> Result<Progress, Error> {
    let deadline = started + settings.max_wait;
    let mut last: Option<String> = None;
    let mut errors = 0;
    loop {
        let response = match api.send(Method::Get, None) {
            Ok(response) if response.status < 500 => response,
            outcome => {
                errors += 1;
                let why = match outcome {
                    Ok(response) => format!("answered {}", response.status),
                    Err(e) => e.to_string(),
                };
                if errors > MAX_POLL_ERRORS {
                    return Err(Error::Failed(format!(
                        "{target} was restarted but could not be watched ({why})"
                    )));
                }
                portolan_sdk::warn!("looking at {target}: {why}; trying again");
                if !pause(settings.poll, deadline) {
                    return Err(timed_out(target, started, last.as_deref()));
                }
                continue;
            }
        };
        errors = 0;
        if !response.is_success() {
            return Err(api.status_error(&format!("GET {target}"), &response));
        }
        let deployment: Value = response
            .json()
            .map_err(|e| Error::Failed(format!("GET {target}: the answer is not JSON: {e}")))?;
        let progress = Progress::from_json(&deployment);
        let summary = progress.summary();
        if last.as_deref() != Some(summary.as_str()) {
            portolan_sdk::info!("{summary}");
            last = Some(summary);
        }
        match progress.state(&deployment) {
            State::Done => return Ok(progress),
            State::Stuck(message) => {
                return Err(Error::Failed(format!(
                    "{target} exceeded its progress deadline: {message}"
                )))
            }
            State::Waiting => {}
        }
        if !pause(settings.poll, deadline) {
            return Err(timed_out(target, started, last.as_deref()));
        }
    }
}

fn timed_out(target: &Target, started: Instant, last: Option<&str>) -> Error {
    Error::Failed(format!(
        "{target} was restarted but has not rolled out after {} s (max_wait_ms){}",
        started.elapsed().as_secs(),
        last.map(|l| format!(": {l}")).unwrap_or_default()
    ))
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

/// The settings, checked.
#[derive(Debug, PartialEq)]
struct Settings {
    /// Without a trailing `/`.
    api_url: String,
    token_secret: String,
    namespace: String,
    poll: Duration,
    max_wait: Duration,
}

impl Settings {
    /// Reads the `[settings]` table; every problem is named in one error.
    fn from_json(settings: &Value) -> Result<Settings, Error> {
        let mut r = settings::Reader::new(settings);
        let poll = r.millis("poll_ms", DEFAULT_POLL_MS);
        let max_wait = r.millis("max_wait_ms", DEFAULT_MAX_WAIT_MS);
        let api_url =
            r.required_api_url("the Kubernetes API server, e.g. https://k8s.example.com:6443");
        let token_secret = r.required(
            "token_secret",
            "the name of a granted secret holding a token that may get and patch deployments",
        );
        let namespace = r
            .text("namespace")
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        if let Err(why) = check_name(&namespace, 63) {
            r.problem(format!("`namespace` {namespace:?} {why}"));
        }
        r.finish().map_err(Error::Other)?;
        Ok(Settings {
            api_url,
            token_secret,
            namespace,
            poll,
            max_wait,
        })
    }
}

/// The Deployment to restart.
#[derive(Debug, PartialEq)]
struct Target {
    name: String,
    namespace: String,
}

impl Target {
    /// From the entity's annotations; `namespace` when it names none.
    fn of(entity: Option<&Entity>, namespace: &str) -> Result<Target, Error> {
        let Some(entity) = entity else {
            return Err(Error::invalid_input(
                "",
                "the action runs on a service: start it from the component's page",
            ));
        };
        let annotation = |key: &str| {
            entity
                .annotation(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let Some(name) = annotation(ID_ANNOTATION) else {
            return Err(Error::invalid_input(
                "",
                format!(
                    "{} has no `{ID_ANNOTATION}` annotation, so its Deployment is unknown: add \
                     `{ID_ANNOTATION}: <deployment name>` under metadata.annotations in its \
                     catalog-info.yaml",
                    entity.reference()
                ),
            ));
        };
        let namespace = annotation(NAMESPACE_ANNOTATION).unwrap_or(namespace);
        for (key, value, max) in [
            (ID_ANNOTATION, name, 253),
            (NAMESPACE_ANNOTATION, namespace, 63),
        ] {
            check_name(value, max).map_err(|why| {
                Error::invalid_input(
                    "",
                    format!(
                        "the `{key}` annotation of {} is {value:?}: {why}",
                        entity.reference()
                    ),
                )
            })?;
        }
        Ok(Target {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "deployment {} in namespace {}",
            self.name, self.namespace
        )
    }
}

/// A Kubernetes object name (RFC 1123: lower-case letters, digits, `-` and
/// `.`, starting and ending alphanumeric); it goes into the URL's path.
fn check_name(name: &str, max: usize) -> Result<(), String> {
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    if name.is_empty() || name.len() > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if !bytes.iter().all(|&b| ok_char(b) || b == b'-' || b == b'.')
        || !ok_char(bytes[0])
        || !ok_char(bytes[bytes.len() - 1])
    {
        return Err(
            "is not a Kubernetes name (lower-case letters, digits, '-' and '.', starting and \
             ending with a letter or digit)"
                .to_owned(),
        );
    }
    Ok(())
}

/// The Deployment's URL and the token for it.
struct Api {
    url: String,
    token: String,
}

impl Api {
    fn send(&self, method: Method, patch: Option<&Value>) -> Result<Response, Error> {
        let mut request = Request::new(method, self.url.as_str())
            .header("accept", "application/json")
            .bearer(&self.token)
            .timeout(REQUEST_TIMEOUT);
        if let Some(patch) = patch {
            request = request
                .header("content-type", "application/strategic-merge-patch+json")
                .body(patch.to_string());
        }
        Ok(request.send()?)
    }

    /// The error for a non-2xx answer: the status and the `Status` object's
    /// message, without the token should the server echo it.
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
            401 => " (check the token named by `token_secret`)",
            403 => " (the token's service account needs get and patch on deployments.apps)",
            404 => " (check the entity's kubernetes annotations and `api_url`)",
            _ => "",
        };
        Error::Failed(format!(
            "Kubernetes answered {} to {what}{said}{hint}",
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

    #[test]
    fn the_patch_is_the_one_kubectl_sends() {
        assert_eq!(
            restart_patch("2026-11-28T09:15:02Z").to_string(),
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-28T09:15:02Z"}}}}}"#
        );
    }

    #[test]
    fn settings_have_defaults_and_name_every_problem() {
        let s = Settings::from_json(
            &json!({"api_url": "https://k8s:6443/", "token_secret": "KUBE_TOKEN"}),
        )
        .unwrap();
        assert_eq!(
            s,
            Settings {
                api_url: "https://k8s:6443".into(),
                token_secret: "KUBE_TOKEN".into(),
                namespace: "default".into(),
                poll: Duration::from_secs(2),
                max_wait: Duration::from_secs(300),
            }
        );
        let err = Settings::from_json(&json!({"namespace": "Shop", "max_wait_ms": -1}))
            .unwrap_err()
            .to_string();
        for part in [
            "`api_url` is not set",
            "`token_secret` is not set",
            "`namespace` \"Shop\"",
            "`max_wait_ms` -1",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
    }

    #[test]
    fn the_deployment_comes_from_the_annotations() {
        let mut entity = Entity::new("Component", "payments");
        let err = Target::of(Some(&entity), "default").unwrap_err();
        assert!(
            err.to_string()
                .contains("has no `backstage.io/kubernetes-id` annotation"),
            "{err}"
        );
        entity.annotations = vec![Pair::new(ID_ANNOTATION, "payments-api")];
        assert_eq!(
            Target::of(Some(&entity), "apps").unwrap(),
            Target {
                name: "payments-api".into(),
                namespace: "apps".into()
            }
        );
        entity
            .annotations
            .push(Pair::new(NAMESPACE_ANNOTATION, "shop"));
        let target = Target::of(Some(&entity), "apps").unwrap();
        assert_eq!(
            target.to_string(),
            "deployment payments-api in namespace shop"
        );
        entity.annotations[0].value = "../secrets".into();
        assert!(Target::of(Some(&entity), "apps").is_err());
        assert!(Target::of(None, "apps").is_err());
    }

    #[test]
    fn names_follow_rfc_1123() {
        assert!(check_name("payments-api.v2", 253).is_ok());
        for bad in ["", "-x", "x-", "Payments", "a/b", "a b", &"x".repeat(64)] {
            assert!(check_name(bad, 63).is_err(), "{bad}");
        }
    }
}
