//! One repository (GitHub's REST shape) as one Backstage `Component`.

use portolan_sdk::{Entity, Link, Pair};
use serde_json::{json, Map, Value};

/// Longest entity name or tag (Backstage's, after Kubernetes').
const MAX_NAME_LEN: usize = 63;

/// What every Component of a sync shares, from the settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// `spec.owner`, e.g. `group:default/platform`.
    pub owner: String,
    /// `spec.type`, e.g. `service`.
    pub type_: String,
    /// `spec.lifecycle` of a repository that is not archived.
    pub lifecycle: String,
    /// The annotation that holds `org/name`, e.g. `github.com/project-slug`.
    pub slug_annotation: String,
}

/// Why a repository has no Component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The element is not a repository as the API describes one: the
    /// answer is not what this plugin understands, and the sync fails.
    Invalid(String),
    /// A well-formed repository that cannot be an entity (its name has no
    /// letter or digit, and it has no id): skipped, with a warning.
    Unusable(String),
}

/// The Component for one element of the repository list.
pub fn component(repo: &Value, defaults: &Defaults) -> Result<Entity, Problem> {
    let invalid = |reason: &str| Problem::Invalid(reason.to_owned());
    let repo = repo
        .as_object()
        .ok_or_else(|| invalid("is not a JSON object"))?;
    let text = |key: &str| {
        repo.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let original = text("name").ok_or_else(|| invalid("has no `name`"))?;
    let name = match sanitise_name(original) {
        Some(name) => name,
        // A name with no letter or digit at all: the id is stable, so the
        // entity keeps its identity across syncs.
        None => match repo.get("id").and_then(Value::as_u64) {
            Some(id) => format!("repo-{id}"),
            None => {
                return Err(Problem::Unusable(format!(
                    "name {original:?} cannot be an entity name"
                )))
            }
        },
    };

    let mut entity = Entity::new("Component", name.clone());
    if name != original {
        entity.title = Some(original.to_owned());
    }
    entity.description = text("description").map(str::to_owned);
    if let Some(topics) = repo.get("topics").and_then(Value::as_array) {
        for tag in topics
            .iter()
            .filter_map(Value::as_str)
            .filter_map(sanitise_tag)
        {
            if !entity.tags.contains(&tag) {
                entity.tags.push(tag);
            }
        }
    }
    let slug = text("full_name")
        .map(str::to_owned)
        .or_else(|| {
            let owner = repo.get("owner")?.get("login")?.as_str()?;
            Some(format!("{owner}/{original}"))
        })
        .unwrap_or_else(|| original.to_owned());
    entity
        .annotations
        .push(Pair::new(defaults.slug_annotation.clone(), slug));
    if let Some(url) = text("html_url") {
        if let Some(branch) = text("default_branch") {
            let location = format!("url:{}/tree/{branch}/", url.trim_end_matches('/'));
            entity
                .annotations
                .push(Pair::new("backstage.io/source-location", location));
        }
        let mut link = Link::new(url).with_title("Repository");
        link.icon = Some(
            if defaults.slug_annotation.starts_with("github.com/") {
                "github"
            } else {
                "code"
            }
            .to_owned(),
        );
        entity.links.push(link);
    }
    let archived = repo.get("archived").and_then(Value::as_bool) == Some(true);
    let lifecycle = if archived {
        "deprecated"
    } else {
        &defaults.lifecycle
    };
    let mut spec = Map::new();
    spec.insert("type".into(), json!(defaults.type_));
    spec.insert("lifecycle".into(), json!(lifecycle));
    spec.insert("owner".into(), json!(defaults.owner));
    entity.set_spec(&Value::Object(spec));
    Ok(entity)
}

/// A repository name as an entity name: `[A-Za-z0-9]` at both ends,
/// `[-_.A-Za-z0-9]` between, at most 63 characters. Other characters become
/// `-`; `None` when nothing usable is left.
pub fn sanitise_name(name: &str) -> Option<String> {
    let replaced: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = replaced.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    // All ASCII now, so byte slicing is safe.
    let cut = &trimmed[..trimmed.len().min(MAX_NAME_LEN)];
    let cut = cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    (!cut.is_empty()).then(|| cut.to_owned())
}

/// A topic as a Backstage tag: lower-case words of `[a-z0-9:+#]` joined by
/// single `-`, at most 63 characters; `None` when nothing usable is left.
pub fn sanitise_tag(topic: &str) -> Option<String> {
    let lower = topic.to_lowercase();
    let words: Vec<String> = lower
        .split(|c: char| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ':' | '+' | '#'))
        })
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let mut tag = words.join("-");
    tag.truncate(MAX_NAME_LEN);
    let tag = tag.trim_end_matches('-');
    (!tag.is_empty()).then(|| tag.to_owned())
}

/// The annotation that holds `org/name` for repositories served by
/// `base_url`: Backstage's `github.com/project-slug` for GitHub, and
/// `HOST/project-slug` for any other host (without an `api.` prefix or a
/// port), so that the key still says where the slug belongs. A host that
/// cannot prefix an annotation key (an IP v6 literal) gets
/// `portolan.dev/project-slug`.
pub fn slug_annotation(base_url: &str) -> String {
    let host = crate::link::host(base_url).unwrap_or_default();
    let host = host.strip_prefix("api.").unwrap_or(&host);
    let is_dns = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if host == "github.com" {
        "github.com/project-slug".to_owned()
    } else if !is_dns {
        "portolan.dev/project-slug".to_owned()
    } else {
        format!("{host}/project-slug")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            owner: "group:default/platform".into(),
            type_: "service".into(),
            lifecycle: "production".into(),
            slug_annotation: "github.com/project-slug".into(),
        }
    }

    #[test]
    fn a_github_repository_becomes_a_component() {
        let repo = json!({
            "id": 1296269,
            "name": "payments-service",
            "full_name": "acme/payments-service",
            "owner": {"login": "acme"},
            "description": "Takes money.",
            "html_url": "https://github.com/acme/payments-service",
            "topics": ["java", "Payments", "spring-boot", "payments"],
            "archived": false,
            "default_branch": "main",
            "language": "Java",
            "visibility": "internal"
        });
        let entity = component(&repo, &defaults()).unwrap();
        assert_eq!(
            entity.to_descriptor(),
            json!({
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Component",
                "metadata": {
                    "name": "payments-service",
                    "namespace": "default",
                    "description": "Takes money.",
                    "annotations": {
                        "github.com/project-slug": "acme/payments-service",
                        "backstage.io/source-location": "url:https://github.com/acme/payments-service/tree/main/"
                    },
                    "tags": ["java", "payments", "spring-boot"],
                    "links": [{"url": "https://github.com/acme/payments-service", "title": "Repository", "icon": "github"}]
                },
                "spec": {"type": "service", "lifecycle": "production", "owner": "group:default/platform"}
            })
        );
    }

    #[test]
    fn archived_odd_and_sparse_repositories() {
        let repo = json!({"id": 7, "name": ".github", "archived": true, "description": null, "topics": []});
        let entity = component(&repo, &defaults()).unwrap();
        assert_eq!(entity.name, "github");
        assert_eq!(entity.title.as_deref(), Some(".github"));
        assert_eq!(entity.description, None);
        assert_eq!(entity.spec()["lifecycle"], "deprecated");
        assert_eq!(
            entity.annotation("github.com/project-slug"),
            Some(".github")
        );
        assert!(entity.links.is_empty());

        let repo = json!({"id": 8, "name": "---", "owner": {"login": "acme"}});
        let entity = component(&repo, &defaults()).unwrap();
        assert_eq!(entity.name, "repo-8");
        assert_eq!(
            entity.annotation("github.com/project-slug"),
            Some("acme/---")
        );

        assert_eq!(
            component(&json!({"name": "___"}), &defaults()).unwrap_err(),
            Problem::Unusable("name \"___\" cannot be an entity name".into())
        );
        assert_eq!(
            component(&json!({"id": 1}), &defaults()).unwrap_err(),
            Problem::Invalid("has no `name`".into())
        );
        assert_eq!(
            component(&json!("x"), &defaults()).unwrap_err(),
            Problem::Invalid("is not a JSON object".into())
        );
    }

    #[test]
    fn names_follow_backstage_rules() {
        let cases = [
            ("payments-service", Some("payments-service")),
            ("Payments.Service_v2", Some("Payments.Service_v2")),
            ("my repo (old)", Some("my-repo--old")),
            ("-leading-and-trailing-", Some("leading-and-trailing")),
            ("émoji-🚀-svc", Some("moji---svc")),
            ("...", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitise_name(input).as_deref(), expected, "{input}");
        }
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        let name = sanitise_name(&long).unwrap();
        // Cut at 63, then the trailing '-' goes too.
        assert_eq!(name, "a".repeat(62));
        let name = sanitise_name(&"x".repeat(100)).unwrap();
        assert_eq!(name.len(), 63);
    }

    #[test]
    fn tags_follow_backstage_rules() {
        let cases = [
            ("java", Some("java")),
            ("Spring Boot", Some("spring-boot")),
            ("c++", Some("c++")),
            ("k8s:prod", Some("k8s:prod")),
            ("--a__b--", Some("a-b")),
            ("Ünïcode", Some("n-code")),
            ("!!!", None),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitise_tag(input).as_deref(), expected, "{input}");
        }
        assert_eq!(sanitise_tag(&"t".repeat(80)).unwrap().len(), 63);
    }

    #[test]
    fn slug_annotations_name_the_host() {
        assert_eq!(
            slug_annotation("https://api.github.com"),
            "github.com/project-slug"
        );
        assert_eq!(
            slug_annotation("https://github.com/api/v3"),
            "github.com/project-slug"
        );
        assert_eq!(
            slug_annotation("https://git.example.com:8443/api/v1"),
            "git.example.com/project-slug"
        );
        assert_eq!(
            slug_annotation("http://127.0.0.1:9000"),
            "127.0.0.1/project-slug"
        );
        assert_eq!(
            slug_annotation("http://[::1]:9000"),
            "portolan.dev/project-slug"
        );
    }
}
