//! Action `http-webhook`: the generic webhook. It tells another system about a
//! request by POSTing a JSON payload to the endpoint in the plugin's `url`
//! setting, and reports what the endpoint answered.
//!
//! Input: `{"reason": "...", "service": "...", "data": {...}}`; only `reason`
//! is required. `service` defaults to the name of the entity the action was
//! started on; `data` is passed through for the receiver.
//!
//! The payload (see [`payload`]) holds the run id, who started the run, which
//! attempt this is (a receiver that sees the same run id again with a higher
//! attempt is seeing a retry), the input, and, when the action was started on
//! an entity, the entity's reference (`entity`, as in the first version of
//! this payload) and its details (`entity_details`: title, description, owner,
//! `spec.type`, annotations).
//!
//! Settings (`[settings]` in the sidecar):
//!
//! | key | default | |
//! | --- | --- | --- |
//! | `url` | required | the endpoint; its host must be on the `[http] allow` list |
//! | `auth_secret` | none | name of a granted secret sent in the auth header (`token_secret` is an older name for it) |
//! | `auth_header` | `Authorization` | the header that carries the secret |
//! | `auth_scheme` | `Bearer` | written before the secret (`Bearer TOKEN`); empty sends the secret alone |
//!
//! Output: `{"status": <HTTP status>, "body": <the answer's JSON, or its text,
//! cut at 4 KiB; null when empty>}`. A non-2xx answer fails the run, naming
//! the status. The secret's value is blanked out of whatever the endpoint
//! answers before it reaches the output or the error.

use portolan_sdk::action::{ActionInfo, Error, Invocation, Outcome};
use portolan_sdk::http::{Method, Request};
use portolan_sdk::{about, Action, Entity};
use serde_json::{json, Map, Value};

/// How much of an answer's body goes into the output or the run's error: the
/// run record keeps it, so a large answer must not bloat it.
const MAX_BODY: usize = 4 * 1024;

/// How much of a failed answer's body goes into the run's error.
const MAX_ERROR_BODY: usize = 500;

/// What stands in for the secret's value in reported bodies.
const REDACTED: &str = "[secret]";

struct HttpWebhook;

impl Action for HttpWebhook {
    fn describe() -> ActionInfo {
        ActionInfo::new(
            about!(
                "Call a webhook",
                "Posts the request, who made it and the entity it is about to the webhook \
                 configured for this action, e.g. to trigger a pipeline or page a team, and \
                 shows what the webhook answered."
            ),
            json!({
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "service": {"type": "string", "title": "Service", "description": "Defaults to the entity's name.", "minLength": 1},
                    "reason": {"type": "string", "title": "Reason", "description": "Why, for the audit trail.", "minLength": 1},
                    "data": {"type": "object", "title": "Data", "description": "Extra fields passed on to the webhook as they are."}
                },
                "additionalProperties": false
            }),
        )
        .for_kinds(["Component"])
    }

    fn run(invocation: Invocation) -> Result<Outcome, Error> {
        let settings = Settings::from_json(&portolan_sdk::settings())?;
        let reason = required_text(&invocation.input, "reason")?;
        let service = match optional_text(&invocation.input, "service") {
            Some(service) => service.to_owned(),
            None => match &invocation.entity {
                Some(entity) => entity.name.clone(),
                None => {
                    return Err(Error::invalid_input(
                        "/service",
                        "is required when the action is not started on an entity",
                    ))
                }
            },
        };

        let body = payload(&invocation, &service, reason);
        let mut request = Request::new(Method::Post, settings.url.as_str())
            .json(&body)
            .header("x-portolan-run-id", invocation.run_id.as_str());
        let mut secret = None;
        if let Some(auth) = &settings.auth {
            let value = portolan_sdk::secret(&auth.secret)
                .map_err(|e| Error::Other(format!("the auth header's secret: {e}")))?;
            request = request.header(auth.header.as_str(), auth.value(&value));
            secret = Some(value);
        }

        // The query may carry a token of its own: log the URL without it.
        let target = settings.url.split(['?', '#']).next().unwrap_or_default();
        portolan_sdk::info!("POST {target} for service {service}");
        let response = request.send()?;
        portolan_sdk::info!("webhook answered {}", response.status);
        let text = redact(&response.text(), secret.as_deref());
        if !response.is_success() {
            let detail = truncate(text.trim(), MAX_ERROR_BODY);
            let said = if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            };
            return Err(Error::Failed(format!(
                "webhook answered {}{said}",
                response.status
            )));
        }
        Ok(Outcome::new(json!({
            "status": response.status,
            "body": reported_body(&text),
        })))
    }
}

portolan_sdk::export!(Action for HttpWebhook);

/// The settings, checked.
#[derive(Debug, PartialEq)]
struct Settings {
    url: String,
    auth: Option<Auth>,
}

/// How the secret is sent.
#[derive(Debug, PartialEq)]
struct Auth {
    /// The name of the granted secret.
    secret: String,
    header: String,
    /// Empty: the secret alone is the header's value.
    scheme: String,
}

impl Auth {
    fn value(&self, secret: &str) -> String {
        if self.scheme.is_empty() {
            secret.to_owned()
        } else {
            format!("{} {secret}", self.scheme)
        }
    }
}

impl Settings {
    /// Reads the `[settings]` table; every problem is named in one error.
    fn from_json(settings: &Value) -> Result<Settings, Error> {
        let text = |key: &str| match settings.get(key) {
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            _ => None,
        };
        let mut problems = Vec::new();
        let url = text("url").unwrap_or_default();
        if url.is_empty() {
            problems.push("`url` is not set (the webhook to POST to)".to_owned());
        } else if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(format!("`url` {url:?} is not an http(s) URL"));
        }
        let secret = text("auth_secret")
            .filter(|s| !s.is_empty())
            .or_else(|| text("token_secret").filter(|s| !s.is_empty()));
        let header = text("auth_header")
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "Authorization".to_owned());
        if !header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            problems.push(format!("`auth_header` {header:?} is not a header name"));
        }
        // An empty scheme is meaningful: it sends the secret alone.
        let scheme = text("auth_scheme").unwrap_or_else(|| "Bearer".to_owned());
        if !problems.is_empty() {
            return Err(Error::Other(format!(
                "settings: {} (under [settings] in the plugin's sidecar)",
                problems.join("; ")
            )));
        }
        Ok(Settings {
            url,
            auth: secret.map(|secret| Auth {
                secret,
                header,
                scheme,
            }),
        })
    }
}

/// The JSON document POSTed to the webhook.
fn payload(invocation: &Invocation, service: &str, reason: &str) -> Value {
    let mut payload = json!({
        "event": "portolan.action",
        "action": "http-webhook",
        "run_id": invocation.run_id,
        "actor": invocation.actor,
        "attempt": invocation.attempt,
        "service": service,
        "reason": reason,
        "input": invocation.input,
        "entity": invocation.entity.as_ref().map(Entity::reference),
    });
    if let Some(entity) = &invocation.entity {
        payload["entity_details"] = entity_details(entity);
    }
    payload
}

/// What a receiver usually needs to know about the entity.
fn entity_details(entity: &Entity) -> Value {
    let spec = entity.spec();
    let annotations: Map<String, Value> = entity
        .annotations
        .iter()
        .map(|p| (p.key.clone(), Value::String(p.value.clone())))
        .collect();
    json!({
        "ref": entity.reference(),
        "kind": entity.kind,
        "namespace": entity.namespace,
        "name": entity.name,
        "title": entity.title,
        "description": entity.description,
        "owner": spec.get("owner").cloned().unwrap_or(Value::Null),
        "type": spec.get("type").cloned().unwrap_or(Value::Null),
        "annotations": annotations,
    })
}

/// The answer's body for the output: its JSON if it is small JSON, else its
/// text cut at [`MAX_BODY`]; `null` when it is empty.
fn reported_body(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    if text.len() <= MAX_BODY {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            return value;
        }
    }
    Value::String(truncate(text, MAX_BODY))
}

/// Replaces every occurrence of the secret in `text`: an endpoint that echoes
/// its request must not put the secret into the run record.
fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, REDACTED),
        _ => text.to_owned(),
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

fn optional_text<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

fn required_text<'a>(input: &'a Value, key: &str) -> Result<&'a str, Error> {
    optional_text(input, key).ok_or_else(|| Error::invalid_input(format!("/{key}"), "is required"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_sdk::Pair;

    #[test]
    fn blank_input_names_the_field() {
        let input = json!({"service": "payments", "reason": "  "});
        assert_eq!(required_text(&input, "service"), Ok("payments"));
        assert_eq!(
            required_text(&input, "reason"),
            Err(Error::invalid_input("/reason", "is required"))
        );
    }

    #[test]
    fn settings_default_to_a_bearer_authorization_header() {
        let settings = Settings::from_json(&json!({
            "url": "https://hooks.example.com/x",
            "auth_secret": "HOOK_TOKEN"
        }))
        .unwrap();
        let auth = settings.auth.unwrap();
        assert_eq!(
            (auth.header.as_str(), auth.value("t0k")),
            ("Authorization", "Bearer t0k".to_owned())
        );

        // The older `token_secret` still works; an empty scheme sends the
        // value alone.
        let settings = Settings::from_json(&json!({
            "url": "http://127.0.0.1:9000/hook",
            "token_secret": "OLD",
            "auth_header": "X-Api-Key",
            "auth_scheme": ""
        }))
        .unwrap();
        let auth = settings.auth.unwrap();
        assert_eq!(auth.secret, "OLD");
        assert_eq!(
            (auth.header.as_str(), auth.value("k")),
            ("X-Api-Key", "k".to_owned())
        );

        let settings = Settings::from_json(&json!({"url": "http://h/"})).unwrap();
        assert_eq!(settings.auth, None);
    }

    #[test]
    fn bad_settings_are_named_together() {
        let err = Settings::from_json(&json!({"auth_header": "Bad Header"})).unwrap_err();
        let Error::Other(text) = err else {
            panic!("{err:?}")
        };
        assert!(text.contains("`url` is not set"), "{text}");
        assert!(text.contains("`auth_header` \"Bad Header\""), "{text}");
        let err = Settings::from_json(&json!({"url": "ftp://h/"})).unwrap_err();
        assert!(err.to_string().contains("not an http(s) URL"), "{err}");
    }

    #[test]
    fn the_payload_carries_the_run_the_input_and_the_entity() {
        let mut entity = Entity::new("Component", "payments");
        entity.title = Some("Payments".into());
        entity.set_spec(&json!({"type": "service", "owner": "team-a"}));
        entity.annotations = vec![Pair::new("github.com/project-slug", "acme/payments")];
        let invocation = Invocation {
            run_id: "run-1".into(),
            actor: "alice".into(),
            attempt: 1,
            input: json!({"reason": "deploy"}),
            entity: Some(entity),
        };
        let body = payload(&invocation, "payments", "deploy");
        assert_eq!(body["run_id"], "run-1");
        assert_eq!(body["input"], json!({"reason": "deploy"}));
        assert_eq!(body["entity"], "Component:default/payments");
        assert_eq!(
            body["entity_details"],
            json!({
                "ref": "Component:default/payments",
                "kind": "Component",
                "namespace": "default",
                "name": "payments",
                "title": "Payments",
                "description": null,
                "owner": "team-a",
                "type": "service",
                "annotations": {"github.com/project-slug": "acme/payments"}
            })
        );

        let standalone = Invocation {
            entity: None,
            ..invocation
        };
        let body = payload(&standalone, "payments", "deploy");
        assert_eq!(body["entity"], Value::Null);
        assert!(body.get("entity_details").is_none());
    }

    #[test]
    fn bodies_are_json_or_cut_text_without_the_secret() {
        assert_eq!(reported_body("{\"ok\": true}"), json!({"ok": true}));
        assert_eq!(reported_body("accepted"), json!("accepted"));
        assert_eq!(reported_body(" \n"), Value::Null);
        let long = format!("[{}]", "1,".repeat(MAX_BODY) + "1");
        let reported = reported_body(&long);
        assert_eq!(reported.as_str().unwrap().len(), MAX_BODY + 3);
        assert_eq!(
            redact("token s3cr3t echoed", Some("s3cr3t")),
            "token [secret] echoed"
        );
        assert_eq!(truncate("héllo", 2), "h...");
    }
}
