//! Pagination by URL: the `Link` response header (RFC 8288, as GitHub sends
//! it) and the `page` query parameter for servers that send no such header.

/// The target of the first link in a `Link` header whose `rel` includes
/// `rel` (`next`, `last`), resolved against `base` when it is relative.
///
/// `<https://api.github.com/organizations/1/repos?page=2>; rel="next", <...>; rel="last"`
pub fn find(header: &str, rel: &str, base: &str) -> Option<String> {
    parse(header)
        .into_iter()
        .find(|(_, rels)| rels.iter().any(|r| r.eq_ignore_ascii_case(rel)))
        .map(|(target, _)| resolve(base, &target))
}

/// Every link of a header as (target, relation types).
fn parse(header: &str) -> Vec<(String, Vec<String>)> {
    let mut links = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(after) = rest.strip_prefix('<') else {
            break;
        };
        let Some(end) = after.find('>') else {
            break;
        };
        let target = after[..end].trim().to_owned();
        rest = &after[end + 1..];
        // Parameters run to the next comma outside a quoted string.
        let mut rels = Vec::new();
        let mut in_quotes = false;
        let cut = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    in_quotes = !in_quotes;
                }
                c == ',' && !in_quotes
            })
            .map_or(rest.len(), |(i, _)| i);
        for param in rest[..cut].split(';') {
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("rel") {
                    let value = value.trim().trim_matches('"');
                    rels.extend(value.split_whitespace().map(str::to_owned));
                }
            }
        }
        rest = &rest[cut..];
        links.push((target, rels));
    }
    links
}

/// `target` made absolute: a path starting with `/` takes `base`'s scheme
/// and host. Other relative forms are not used by the APIs this plugin
/// reads; they resolve against `base`'s folder.
fn resolve(base: &str, target: &str) -> String {
    if target.contains("://") {
        return target.to_owned();
    }
    let origin = origin(base).unwrap_or_default();
    if target.starts_with('/') {
        return format!("{origin}{target}");
    }
    let path = base[origin.len()..].split(['?', '#']).next().unwrap_or("");
    let folder = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let folder = if folder.is_empty() { "/" } else { folder };
    format!("{origin}{folder}{target}")
}

/// `scheme://authority` of an absolute URL, lower-cased; `None` for
/// anything else.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if scheme.is_empty() || authority.is_empty() {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

/// The host of an absolute URL, without port or credentials, lower-cased.
pub fn host(url: &str) -> Option<String> {
    let origin = origin(url)?;
    let authority = origin.split_once("://")?.1;
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if authority.starts_with('[') {
        // An IPv6 literal keeps its brackets' content.
        authority
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    Some(host.to_owned())
}

/// The value of query parameter `name`, if present.
pub fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split('#').next()?.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `url` with query parameter `name` set to `value` (replaced if present,
/// appended otherwise).
pub fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let (url, fragment) = match url.split_once('#') {
        Some((u, f)) => (u, format!("#{f}")),
        None => (url, String::new()),
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let new = format!("{name}={value}");
    match pairs.iter_mut().find(|p| p.split('=').next() == Some(name)) {
        Some(pair) => *pair = new,
        None => pairs.push(new),
    }
    format!("{path}?{}{fragment}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://api.github.com/orgs/acme/repos?per_page=100&page=1";

    #[test]
    fn github_link_headers_give_next_and_last() {
        let header = "<https://api.github.com/organizations/42/repos?per_page=100&page=2>; rel=\"next\", \
                      <https://api.github.com/organizations/42/repos?per_page=100&page=7>; rel=\"last\"";
        assert_eq!(
            find(header, "next", BASE).as_deref(),
            Some("https://api.github.com/organizations/42/repos?per_page=100&page=2")
        );
        assert_eq!(
            find(header, "last", BASE).as_deref(),
            Some("https://api.github.com/organizations/42/repos?per_page=100&page=7")
        );
        assert_eq!(find(header, "prev", BASE), None);
        // The last page has only prev and first.
        let header = "<https://x/r?page=6>; rel=\"prev\", <https://x/r?page=1>; rel=\"first\"";
        assert_eq!(find(header, "next", BASE), None);
    }

    #[test]
    fn link_headers_in_other_spellings() {
        // Unquoted, several relation types, commas inside quotes, odd spaces.
        let header =
            "<https://h/a?page=2>;rel=next ,<https://h/b>; title=\"a, b\"; rel=\"last alternate\"";
        assert_eq!(
            find(header, "next", BASE).as_deref(),
            Some("https://h/a?page=2")
        );
        assert_eq!(
            find(header, "alternate", BASE).as_deref(),
            Some("https://h/b")
        );
        assert_eq!(
            find(header, "NEXT", BASE).as_deref(),
            Some("https://h/a?page=2")
        );
        // Relative targets take the request's origin.
        let base = "http://127.0.0.1:8080/api/orgs/acme/repos?page=1";
        assert_eq!(
            find("</api/orgs/acme/repos?page=2>; rel=\"next\"", "next", base).as_deref(),
            Some("http://127.0.0.1:8080/api/orgs/acme/repos?page=2")
        );
        assert_eq!(
            find("<repos?page=2>; rel=\"next\"", "next", base).as_deref(),
            Some("http://127.0.0.1:8080/api/orgs/acme/repos?page=2")
        );
        assert_eq!(find("", "next", base), None);
        assert_eq!(find("garbage", "next", base), None);
        assert_eq!(find("<unterminated; rel=next", "next", base), None);
    }

    #[test]
    fn urls_take_apart_and_change() {
        assert_eq!(origin(BASE).as_deref(), Some("https://api.github.com"));
        assert_eq!(origin("HTTP://Host:80").as_deref(), Some("http://host:80"));
        assert_eq!(origin("/relative"), None);
        assert_eq!(
            host("http://127.0.0.1:9000/x").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            host("https://u@GitHub.com/x").as_deref(),
            Some("github.com")
        );
        assert_eq!(host("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(query_param(BASE, "page"), Some("1"));
        assert_eq!(query_param(BASE, "per_page"), Some("100"));
        assert_eq!(query_param(BASE, "nope"), None);
        assert_eq!(
            with_query_param(BASE, "page", "2"),
            "https://api.github.com/orgs/acme/repos?per_page=100&page=2"
        );
        assert_eq!(
            with_query_param("http://h/x", "page", "2"),
            "http://h/x?page=2"
        );
    }
}
