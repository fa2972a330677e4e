//! Outbound HTTP: the allowlist a plugin's sidecar grants, enforced on every
//! `wasi:http` request before any connection is made.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime_wasi_http::{
    default_send_request, Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks,
};

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// Lower-case host name or IP literal; `*.example.com` matches strict
    /// subdomains of `example.com`.
    host: String,
    port: PortRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    /// No port written: the default ports of http and https (80, 443).
    Default,
    Any,
    Exact(u16),
}

impl AllowRule {
    /// Parses `host`, `host:port`, `host:*`, `*.domain` or `[v6]:port`.
    pub fn parse(raw: &str) -> Result<AllowRule, String> {
        let raw = raw.trim().to_ascii_lowercase();
        if raw.is_empty() {
            return Err("empty host".into());
        }
        if raw.contains("://") || raw.contains('/') {
            return Err(
                "write a host (`api.example.com` or `api.example.com:8443`), not a URL".into(),
            );
        }
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| "unclosed `[` in IPv6 address".to_string())?;
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match raw.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (raw.clone(), None),
            }
        };
        let port = match port {
            None => PortRule::Default,
            Some("*") => PortRule::Any,
            Some(p) => PortRule::Exact(
                p.parse::<u16>()
                    .map_err(|_| format!("invalid port `{p}`"))?,
            ),
        };
        let name = host.strip_prefix("*.").unwrap_or(&host);
        if name.is_empty() || name.contains('*') {
            return Err("a wildcard may only stand first, as in `*.example.com`".into());
        }
        Ok(AllowRule { host, port })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = match self.host.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
            None => self.host == host,
        };
        let port_ok = match self.port {
            PortRule::Default => port == 80 || port == 443,
            PortRule::Any => true,
            PortRule::Exact(p) => p == port,
        };
        host_ok && port_ok
    }
}

impl std::fmt::Display for AllowRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            PortRule::Default => write!(f, "{}", self.host),
            PortRule::Any => write!(f, "{}:*", self.host),
            PortRule::Exact(p) => write!(f, "{}:{p}", self.host),
        }
    }
}

/// The hosts one plugin may call. Empty (the default) allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    rules: Vec<AllowRule>,
}

impl Allowlist {
    pub fn new(rules: Vec<AllowRule>) -> Allowlist {
        Allowlist { rules }
    }

    /// Whether a request to `host:port` is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        self.rules.iter().any(|r| r.matches(host, port))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Serialize for Allowlist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.rules.iter().map(|r| r.to_string()))
    }
}

/// The `wasi:http` hooks of one call: refuse what the allowlist does not
/// name, and never wait on the network past the call's deadline (a host call
/// blocked on I/O is out of reach of epoch interruption).
pub(crate) struct OutboundHooks {
    pub allow: Allowlist,
    pub deadline: Instant,
    /// Requests refused, for the call's log.
    pub denied: Vec<String>,
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                )>,
            > + Send,
    > {
        drop(fut);
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !self.allow.allows(&host, port) {
            self.denied.push(format!("{host}:{port}"));
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let left = self
            .deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let cap = |d: Option<Duration>| Some(d.map_or(left, |d| d.min(left)));
        let options = RequestOptions {
            connect_timeout: cap(options.and_then(|o| o.connect_timeout)),
            first_byte_timeout: cap(options.and_then(|o| o.first_byte_timeout)),
            between_bytes_timeout: cap(options.and_then(|o| o.between_bytes_timeout)),
        };
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = default_send_request(request, Some(options)).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> Allowlist {
        Allowlist::new(rules.iter().map(|r| AllowRule::parse(r).unwrap()).collect())
    }

    #[test]
    fn empty_allowlist_denies_everything() {
        assert!(!Allowlist::default().allows("localhost", 80));
    }

    #[test]
    fn bare_host_allows_default_ports_only() {
        let l = list(&["API.github.com"]);
        assert!(l.allows("api.github.com", 443));
        assert!(l.allows("api.github.com.", 80));
        assert!(!l.allows("api.github.com", 8080));
        assert!(!l.allows("github.com", 443));
    }

    #[test]
    fn explicit_and_any_port() {
        let l = list(&["127.0.0.1:8080", "internal:*"]);
        assert!(l.allows("127.0.0.1", 8080));
        assert!(!l.allows("127.0.0.1", 8081));
        assert!(l.allows("internal", 1));
    }

    #[test]
    fn wildcard_matches_strict_subdomains() {
        let l = list(&["*.example.com"]);
        assert!(l.allows("a.example.com", 443));
        assert!(l.allows("a.b.example.com", 443));
        assert!(!l.allows("example.com", 443));
        assert!(!l.allows("badexample.com", 443));
    }

    #[test]
    fn urls_and_odd_wildcards_are_refused() {
        assert!(AllowRule::parse("https://x.com").is_err());
        assert!(AllowRule::parse("a.*.com").is_err());
        assert!(AllowRule::parse("x.com:http").is_err());
    }
}
