//! Action `http-webhook`: tells another system about a request by POSTing a
//! JSON payload to the webhook URL in the plugin's `url` setting.
//!
//! Input: `{"service": "...", "reason": "..."}`. The payload adds the run id,
//! who started the run and which attempt this is (a receiver that sees the
//! same run id again with a higher attempt is seeing a retry) and, when the
//! action was started on an entity, the entity's reference.
//! Optional setting `token_secret` names a granted secret sent as a bearer
//! token. Output: `{"status": <HTTP status>}`; a non-2xx answer fails the run.

use portolan_sdk::action::{ActionInfo, Error, Invocation, Outcome};
use portolan_sdk::http::{Method, Request};
use portolan_sdk::{about, Action};
use serde_json::{json, Value};

/// How much of a failed answer's body goes into the run's error.
const MAX_ERROR_BODY: usize = 500;

struct HttpWebhook;

impl Action for HttpWebhook {
    fn describe() -> ActionInfo {
        ActionInfo::new(
            about!(
                "Call a webhook",
                "Posts the service and the reason to the webhook configured for this action, \
                 e.g. to trigger a pipeline or page a team."
            ),
            json!({
                "type": "object",
                "required": ["service", "reason"],
                "properties": {
                    "service": {"type": "string", "title": "Service", "minLength": 1},
                    "reason": {"type": "string", "title": "Reason", "description": "Why, for the audit trail.", "minLength": 1}
                },
                "additionalProperties": false
            }),
        )
        .for_kinds(["Component"])
    }

    fn run(invocation: Invocation) -> Result<Outcome, Error> {
        let url = portolan_sdk::setting("url")
            .filter(|url| !url.trim().is_empty())
            .ok_or_else(|| {
                Error::Other(
                    "no webhook URL: set `url` under [settings] in the plugin's sidecar".into(),
                )
            })?;
        let service = required_text(&invocation.input, "service")?;
        let reason = required_text(&invocation.input, "reason")?;

        let payload = json!({
            "event": "portolan.action",
            "action": "http-webhook",
            "run_id": invocation.run_id,
            "actor": invocation.actor,
            "attempt": invocation.attempt,
            "service": service,
            "reason": reason,
            "entity": invocation.entity.as_ref().map(|entity| entity.reference()),
        });
        let mut request = Request::new(Method::Post, url.as_str())
            .json(&payload)
            .header("x-portolan-run-id", invocation.run_id.as_str());
        if let Some(name) = portolan_sdk::setting("token_secret") {
            let token = portolan_sdk::secret(&name).map_err(|e| Error::Failed(e.to_string()))?;
            request = request.bearer(&token);
        }

        let target = url.split('?').next().unwrap_or_default();
        portolan_sdk::info!("POST {target} for service {service}");
        let response = request.send()?;
        portolan_sdk::info!("webhook answered {}", response.status);
        if !response.is_success() {
            let mut body = response.text();
            if body.len() > MAX_ERROR_BODY {
                let cut = (0..=MAX_ERROR_BODY)
                    .rev()
                    .find(|i| body.is_char_boundary(*i))
                    .unwrap_or(0);
                body.truncate(cut);
                body.push_str("...");
            }
            return Err(Error::Failed(format!(
                "webhook answered {}: {body}",
                response.status
            )));
        }
        Ok(Outcome::new(json!({ "status": response.status })))
    }
}

portolan_sdk::export!(Action for HttpWebhook);

fn required_text<'a>(input: &'a Value, key: &str) -> Result<&'a str, Error> {
    match input.get(key).and_then(Value::as_str).map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(Error::invalid_input(format!("/{key}"), "is required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_input_names_the_field() {
        let input = json!({"service": "payments", "reason": "  "});
        assert_eq!(required_text(&input, "service"), Ok("payments"));
        assert_eq!(
            required_text(&input, "reason"),
            Err(Error::invalid_input("/reason", "is required"))
        );
    }
}
