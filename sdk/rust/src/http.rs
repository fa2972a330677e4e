//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! ```ignore
//! let response = portolan_sdk::http::get("https://api.github.com/repos/acme/payments")?;
//! let repo: serde_json::Value = response.json()?;
//! ```
//!
//! The host lets a plugin reach only the hosts on its sidecar's `[http] allow`
//! list. A request to any other host fails with [`Error::Http`] carrying
//! [`ErrorCode::HttpRequestDenied`]; [`Error::is_denied`] tells that case
//! apart and the error's text says what to grant.
//!
//! Bodies are read whole into memory, which the host caps per call.

use std::fmt;
use std::time::Duration;

use crate::__private::bindings::wasi::http::outgoing_handler;
use crate::__private::bindings::wasi::http::types::{
    Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme,
};
use crate::__private::bindings::wasi::io::streams::StreamError;

/// The `wasi:http` error code behind a failed request (e.g.
/// `HttpRequestDenied`, `ConnectionRefused`, `DnsError(..)`).
pub use crate::__private::bindings::wasi::http::types::ErrorCode;

/// Sent unless the request sets its own: some APIs (GitHub's among them)
/// refuse requests without a user agent.
const USER_AGENT: &str = concat!(
    "portolan-plugin (portolan-sdk/",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// The largest chunk `output-stream.blocking-write-and-flush` accepts.
const WRITE_CHUNK: usize = 4096;

/// How much to ask for per read of a response body.
const READ_CHUNK: u64 = 64 * 1024;

/// Sends a `GET` request.
pub fn get(url: &str) -> Result<Response, Error> {
    Request::new(Method::Get, url).send()
}

/// Sends a `POST` request with `value` as its JSON body
/// (`content-type: application/json`).
pub fn post_json(url: &str, value: &serde_json::Value) -> Result<Response, Error> {
    Request::new(Method::Post, url).json(value).send()
}

/// An HTTP method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `OPTIONS`
    Options,
    /// Any other method, by name.
    Other(String),
}

/// A request under construction; [`Request::send`] sends it and waits for the
/// whole response.
#[derive(Clone, Debug)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// Adds a header (repeat the call for a repeated header).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `authorization: Bearer TOKEN`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// Bounds connecting, waiting for the first byte and waiting between
    /// bytes, each by `timeout`. Without it only the host's deadline for the
    /// call applies.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and reads the whole response.
    ///
    /// Any status counts as a response; check [`Response::is_success`].
    pub fn send(self) -> Result<Response, Error> {
        let target = Target::parse(&self.url)?;
        let display = target.display();

        let mut headers = self.headers;
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
        {
            headers.push(("user-agent".to_owned(), USER_AGENT.as_bytes().to_vec()));
        }
        // The whole body is known up front: say how long it is rather than
        // have it sent chunked, which some webhook receivers do not read.
        if !self.body.is_empty()
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            headers.push((
                "content-length".to_owned(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        let fields = Fields::from_list(&headers).map_err(|e| Error::InvalidRequest {
            url: display.clone(),
            reason: format!("invalid header: {e:?}"),
        })?;

        let request = OutgoingRequest::new(fields);
        let invalid = |what: &str| Error::InvalidRequest {
            url: display.clone(),
            reason: format!("invalid {what}"),
        };
        request
            .set_method(&self.method.to_wasi())
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&target.scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(&target.authority))
            .map_err(|()| invalid("host"))?;
        request
            .set_path_with_query(Some(&target.path_with_query))
            .map_err(|()| invalid("path"))?;

        let options = self.timeout.map(|timeout| {
            let options = RequestOptions::new();
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            // A host that does not support one of these keeps its default.
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
            options
        });

        let body = request.body().map_err(|()| invalid("body"))?;
        // Hand the request over before writing the body so that a denied
        // host fails here, before any byte is written.
        let pending = outgoing_handler::handle(request, options).map_err(|code| Error::Http {
            url: display.clone(),
            code,
        })?;
        {
            let stream = body.write().map_err(|()| invalid("body"))?;
            for chunk in self.body.chunks(WRITE_CHUNK) {
                if let Err(e) = stream.blocking_write_and_flush(chunk) {
                    // A host that refuses the request after accepting it
                    // closes the body; its reason is the better error, and
                    // it may arrive a moment after the body closed: wait
                    // for the answer (the call's deadline bounds the wait).
                    let answer = loop {
                        match pending.get() {
                            Some(answer) => break answer,
                            None => pending.subscribe().block(),
                        }
                    };
                    if let Ok(Err(code)) = answer {
                        return Err(Error::Http { url: display, code });
                    }
                    return Err(Error::Body {
                        url: display,
                        message: stream_error_text(e),
                    });
                }
            }
            // The stream must be dropped before its body is finished.
        }
        OutgoingBody::finish(body, None).map_err(|code| Error::Http {
            url: display.clone(),
            code,
        })?;

        let response = loop {
            match pending.get() {
                Some(result) => break result,
                None => pending.subscribe().block(),
            }
        };
        let response = match response {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => return Err(Error::Http { url: display, code }),
            Err(()) => {
                return Err(Error::Body {
                    url: display,
                    message: "response was already taken".into(),
                })
            }
        };

        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response.consume().map_err(|()| Error::Body {
            url: display.clone(),
            message: "response body was already taken".into(),
        })?;
        let mut bytes = Vec::new();
        {
            let stream = incoming.stream().map_err(|()| Error::Body {
                url: display.clone(),
                message: "response body stream was already taken".into(),
            })?;
            loop {
                match stream.blocking_read(READ_CHUNK) {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(e) => {
                        return Err(Error::Body {
                            url: display,
                            message: stream_error_text(e),
                        })
                    }
                }
            }
        }
        // Trailers are not offered; finishing only releases the body.
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}

/// A whole response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The headers as received, names in lower case.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header, if present and UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Why a request got no response.
#[derive(Debug)]
pub enum Error {
    /// The URL or a header could not be turned into a request.
    InvalidRequest {
        /// The URL (without its query).
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The host or the network failed the request; `code` is the `wasi:http`
    /// error code, e.g. `HttpRequestDenied` for a host not on the allowlist.
    Http {
        /// The URL (without its query).
        url: String,
        /// The `wasi:http` error code.
        code: ErrorCode,
    },
    /// Writing the request body or reading the response body failed.
    Body {
        /// The URL (without its query).
        url: String,
        /// What failed.
        message: String,
    },
}

impl Error {
    /// The `wasi:http` error code, if the failure has one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Http { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the host refused the request because the destination is not on
    /// the plugin's `[http] allow` list.
    pub fn is_denied(&self) -> bool {
        matches!(self.code(), Some(ErrorCode::HttpRequestDenied))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidRequest { url, reason } => write!(f, "request to {url}: {reason}"),
            Error::Http {
                url,
                code: ErrorCode::HttpRequestDenied,
            } => write!(
                f,
                "request to {url} denied by the host (wasi:http error-code http-request-denied): \
                 its host is not on this plugin's [http] allow list"
            ),
            Error::Http { url, code } => {
                write!(
                    f,
                    "request to {url} failed (wasi:http error-code {})",
                    error_code_text(code)
                )
            }
            Error::Body { url, message } => write!(f, "request to {url}: body: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// The WIT name of an error code (`connection-refused`), with its payload if
/// it has one.
fn error_code_text(code: &ErrorCode) -> String {
    // The generated Debug reads `ErrorCode::DnsError(DnsErrorPayload { .. })`.
    let debug = format!("{code:?}");
    let debug = debug.strip_prefix("ErrorCode::").unwrap_or(&debug);
    let split = debug
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(debug.len());
    let (variant, payload) = debug.split_at(split);
    let mut name = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                name.push('-');
            }
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    format!("{name}{payload}")
}

fn stream_error_text(error: StreamError) -> String {
    match error {
        StreamError::Closed => "stream closed".to_owned(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

impl Method {
    fn to_wasi(&self) -> WasiMethod {
        match self {
            Method::Get => WasiMethod::Get,
            Method::Head => WasiMethod::Head,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Delete => WasiMethod::Delete,
            Method::Patch => WasiMethod::Patch,
            Method::Options => WasiMethod::Options,
            Method::Other(name) => WasiMethod::Other(name.clone()),
        }
    }
}

/// The parts of an absolute `http` or `https` URL that wasi:http wants.
#[derive(Debug)]
struct Target {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, Error> {
        let invalid = |reason: &str| Error::InvalidRequest {
            url: url.split(['?', '#']).next().unwrap_or(url).to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("not an absolute URL"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(invalid("only http and https URLs are supported")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(invalid("the URL has no host"));
        }
        if authority.contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported; use a header",
            ));
        }
        let path_with_query = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Target {
            scheme,
            authority: authority.to_owned(),
            path_with_query,
        })
    }

    /// The URL for messages: without the query, which may carry tokens.
    fn display(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            _ => "http",
        };
        let path = self.path_with_query.split('?').next().unwrap_or_default();
        format!("{scheme}://{}{path}", self.authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_wasi_parts() {
        let t = Target::parse("https://api.example.com:8443/v1/x?y=1#frag").unwrap();
        assert!(matches!(t.scheme, Scheme::Https));
        assert_eq!(t.authority, "api.example.com:8443");
        assert_eq!(t.path_with_query, "/v1/x?y=1");
        assert_eq!(t.display(), "https://api.example.com:8443/v1/x");
        let t = Target::parse("http://127.0.0.1:9000?a=b").unwrap();
        assert_eq!(t.path_with_query, "/?a=b");
        assert_eq!(Target::parse("HTTP://h").unwrap().path_with_query, "/");
        assert!(Target::parse("ftp://h/x").is_err());
        assert!(Target::parse("/relative").is_err());
        assert!(Target::parse("http://user:pw@h/").is_err());
    }

    #[test]
    fn denied_requests_say_what_to_grant() {
        let err = Error::Http {
            url: "https://evil.example/".into(),
            code: ErrorCode::HttpRequestDenied,
        };
        assert!(err.is_denied());
        let text = err.to_string();
        assert!(text.contains("http-request-denied"), "{text}");
        assert!(text.contains("allow list"), "{text}");
        let err = Error::Http {
            url: "http://h/".into(),
            code: ErrorCode::ConnectionRefused,
        };
        assert_eq!(
            err.to_string(),
            "request to http://h/ failed (wasi:http error-code connection-refused)"
        );
    }
}
