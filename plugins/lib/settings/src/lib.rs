//! Reading a plugin's `[settings]` table (the sidecar's, as the host hands
//! it over in JSON) the way the REST plugins all do: text values trimmed,
//! blank ones absent; millisecond durations as numbers or numeric text;
//! an API base URL that must be http(s), without its trailing `/`. A
//! [`Reader`] collects every problem and [`Reader::finish`] names them all
//! in one message, so an operator fixes the sidecar in one go.

use std::time::Duration;

use serde_json::Value;

/// Reads one `[settings]` table, collecting problems.
pub struct Reader<'a> {
    settings: &'a Value,
    problems: Vec<String>,
}

impl<'a> Reader<'a> {
    pub fn new(settings: &'a Value) -> Reader<'a> {
        Reader {
            settings,
            problems: Vec::new(),
        }
    }

    /// A text setting, trimmed; `None` when absent, blank or not text.
    pub fn text(&self, key: &str) -> Option<String> {
        match self.settings.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        }
    }

    /// A text setting that must be set; `why` says what it is for (it
    /// follows "`key` is not set" in the problem).
    pub fn required(&mut self, key: &str, why: &str) -> String {
        let value = self.text(key).unwrap_or_default();
        if value.is_empty() {
            self.problems.push(format!("`{key}` is not set ({why})"));
        }
        value
    }

    /// A positive number of milliseconds (a number or numeric text), or
    /// `default` when absent; anything else is a problem (and `default`).
    pub fn millis(&mut self, key: &str, default: u64) -> Duration {
        let ms = match self.settings.get(key) {
            None => default,
            Some(value) => match value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            {
                Some(ms) if ms > 0 => ms,
                _ => {
                    self.problems
                        .push(format!("`{key}` {value} is not a positive number of ms"));
                    default
                }
            },
        };
        Duration::from_millis(ms)
    }

    /// The `api_url` setting without its trailing `/`, or `default` when
    /// absent; it must be an http(s) URL.
    pub fn api_url(&mut self, default: &str) -> String {
        let url = self
            .text("api_url")
            .unwrap_or_else(|| default.to_owned())
            .trim_end_matches('/')
            .to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            self.problems
                .push(format!("`api_url` {url:?} is not an http(s) URL"));
        }
        url
    }

    /// The `api_url` setting without its trailing `/`, which must be set
    /// (`why` says what it points at) and be an http(s) URL.
    pub fn required_api_url(&mut self, why: &str) -> String {
        let url = self
            .required("api_url", why)
            .trim_end_matches('/')
            .to_owned();
        if !url.is_empty() && !(url.starts_with("http://") || url.starts_with("https://")) {
            self.problems
                .push(format!("`api_url` {url:?} is not an http(s) URL"));
        }
        url
    }

    /// Records a problem the plugin found itself.
    pub fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// `Ok` when nothing was wrong; otherwise every problem in one message.
    pub fn finish(self) -> Result<(), String> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "settings: {} (under [settings] in the plugin's sidecar)",
                self.problems.join("; ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_values_and_names_every_problem() {
        let table = json!({
            "api_url": " https://api.example.com/ ",
            "blank": "  ",
            "timeout_ms": "250",
            "poll_ms": 0,
            "token_secret": "TOKEN"
        });
        let mut r = Reader::new(&table);
        assert_eq!(r.api_url("https://default"), "https://api.example.com");
        assert_eq!(r.text("blank"), None);
        assert_eq!(r.millis("timeout_ms", 9), Duration::from_millis(250));
        assert_eq!(r.millis("absent_ms", 9), Duration::from_millis(9));
        assert_eq!(r.required("token_secret", "a token"), "TOKEN");
        assert!(r.finish().is_ok());

        let table = json!({"api_url": "ftp://x", "poll_ms": 0});
        let mut r = Reader::new(&table);
        assert_eq!(r.millis("poll_ms", 9), Duration::from_millis(9));
        r.api_url("https://default");
        r.required("token_secret", "a token");
        assert_eq!(
            r.finish().unwrap_err(),
            "settings: `poll_ms` 0 is not a positive number of ms; `api_url` \"ftp://x\" is not \
             an http(s) URL; `token_secret` is not set (a token) (under [settings] in the \
             plugin's sidecar)"
        );
    }

    #[test]
    fn the_default_url_is_used_when_none_is_set() {
        let table = json!({});
        let mut r = Reader::new(&table);
        assert_eq!(
            r.api_url("https://api.github.com/"),
            "https://api.github.com"
        );
        assert!(r.finish().is_ok());
    }
}
