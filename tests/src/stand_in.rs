//! A stand-in for the HTTP APIs plugins call (GitHub, Kubernetes, a
//! webhook): a local server that records every request and answers with
//! what the test says, so a test can assert the exact requests a plugin
//! made and feed it any answer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// One request as the stand-in received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON, else as text; null when empty.
    pub body: Value,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// `METHOD /path?query`.
    pub fn line(&self) -> String {
        match &self.query {
            Some(query) => format!("{} {}?{query}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

/// What the stand-in answers.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
        }
    }

    pub fn empty(status: u16) -> Answer {
        Answer::text(status, "")
    }
}

/// A local HTTP server that records every request and answers it with
/// `respond`.
pub struct StandIn {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    pub async fn start(respond: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> StandIn {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let respond = Arc::new(respond);
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let record = record.clone();
                let respond = respond.clone();
                async move {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let seen = Seen {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        query: uri.query().map(str::to_owned),
                        headers: headers
                            .iter()
                            .map(|(name, value)| {
                                let value = String::from_utf8_lossy(value.as_bytes());
                                (name.as_str().to_owned(), value.into_owned())
                            })
                            .collect(),
                        body: if text.is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_str(&text).unwrap_or(Value::String(text))
                        },
                    };
                    let answer = respond(&seen);
                    record.lock().unwrap().push(seen);
                    axum::response::Response::builder()
                        .status(answer.status)
                        .header("content-type", answer.content_type)
                        .body(axum::body::Body::from(answer.body))
                        .unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        StandIn { port, seen }
    }

    /// `127.0.0.1:PORT`, for `[http] allow`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Drops the requests seen so far, so that a test can assert what a
    /// later step sends on its own.
    pub fn forget(&self) {
        self.seen.lock().unwrap().clear();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.seen().iter().map(Seen::line).collect()
    }
}
