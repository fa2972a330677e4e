//! Scaffold generator `service-template`: a new HTTP service on the golden
//! path, in Rust, Go, Python or TypeScript.
//!
//! The files come from the template tree in `template/` (embedded at build
//! time by `build.rs`, rendered with minijinja through `template-tree`; see
//! that crate for the rules): the layer `base` for every service plus the
//! layer named by the `language` parameter. Together they give a README, the
//! `catalog-info.yaml` that registers the service, a minimal HTTP service
//! with a health endpoint and a unit test, its build manifest, a Dockerfile,
//! a CI workflow and an executable `scripts/smoke-test.sh`.
//!
//! The returned entity is parsed back from the rendered `catalog-info.yaml`,
//! so the catalog registers exactly what the repository says.
//!
//! Parameters, a two-page form:
//!
//! | page | parameter | |
//! | --- | --- | --- |
//! | 1 | `name` | required; 2-63 of `a-z`, `0-9`, `-`, starting with a letter |
//! | 1 | `description` | optional, one sentence |
//! | 1 | `owner` | required; a group name or reference |
//! | 1 | `system` | optional; the system the service belongs to |
//! | 2 | `language` | `rust` (default), `go`, `python`, `typescript` |
//! | 2 | `lifecycle` | `experimental` (default), `production`, `deprecated` |
//! | 2 | `repo` | optional `owner/repository` on GitHub: the `github.com/project-slug` annotation |

use portolan_sdk::scaffold::{Error, File, GeneratorInfo, Output};
use portolan_sdk::{about, Entity, Link, ScaffoldGenerator};
use serde_json::{json, Map, Value};
use template_tree::TemplateFile;

/// The embedded `template/` folder.
static TREE: &[TemplateFile] = include!(concat!(env!("OUT_DIR"), "/template.rs"));

/// What the schema's `pattern` says, checked again here because the files'
/// contents depend on it (a name ends up in paths and package names).
const NAME_PATTERN: &str = "^[a-z][a-z0-9-]{0,61}[a-z0-9]$";

/// `owner/repository` on GitHub.
const REPO_PATTERN: &str = "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$";

/// The languages, each a layer of the tree, with the name the README uses.
const LANGUAGES: [(&str, &str); 4] = [
    ("rust", "Rust"),
    ("go", "Go"),
    ("python", "Python"),
    ("typescript", "TypeScript"),
];

const LIFECYCLES: [&str; 3] = ["experimental", "production", "deprecated"];

struct ServiceTemplate;

impl ScaffoldGenerator for ServiceTemplate {
    fn describe() -> GeneratorInfo {
        GeneratorInfo::new(
            about!(
                "Service",
                "A new HTTP service with a health endpoint, tests, a Dockerfile, a CI workflow and \
                 its catalog entry, in Rust, Go, Python or TypeScript."
            ),
            schema(),
        )
        .with_tags(["service", "rust", "go", "python", "typescript"])
    }

    fn generate(parameters: Value) -> Result<Output, Error> {
        let params = Params::read(&parameters)?;
        let output = generate(&params)?;
        portolan_sdk::info!(
            "generated {} files for {} ({})",
            output.files.len(),
            params.name,
            params.language
        );
        Ok(output)
    }
}

portolan_sdk::export!(ScaffoldGenerator for ServiceTemplate);

/// Renders the tree for `params`: files, the entity from their
/// `catalog-info.yaml`, links and messages. Pure (no host calls), so the
/// unit tests run it natively.
fn generate(params: &Params) -> Result<Output, Error> {
    let rendered = template_tree::render(TREE, &["base", params.language], &params.context())
        .map_err(|e| Error::Other(format!("service-template: {e}")))?;
    let catalog_info = rendered
        .iter()
        .find(|f| f.path == "catalog-info.yaml")
        .and_then(|f| f.text())
        .ok_or_else(|| Error::Other("service-template: no catalog-info.yaml".into()))?;
    let entity = entity_from_yaml(catalog_info)?;

    let files = rendered
        .into_iter()
        .map(|f| File {
            path: f.path,
            content: f.contents,
            executable: f.executable,
        })
        .collect();
    let mut links = Vec::new();
    let mut messages = vec![format!(
        "Created {} ({}), owned by {}.",
        params.name,
        language_name(params.language),
        params.owner
    )];
    match params.repo {
        Some(repo) => {
            links.push(Link::new(format!("https://github.com/{repo}")).with_title("Repository"));
            messages.push(format!(
                "Push it to {repo}; CI runs .github/workflows/ci.yml and the catalog reads catalog-info.yaml."
            ));
        }
        None => messages.push(
            "Push it to a new repository; CI runs .github/workflows/ci.yml and the catalog reads catalog-info.yaml."
                .to_owned(),
        ),
    }
    Ok(Output {
        files,
        entity: Some(entity),
        links,
        messages,
    })
}

/// The parameters as a two-page form. A page sees the whole parameter
/// object, so no page says `additionalProperties: false` (it would refuse the
/// other page's fields); [`Params::read`] refuses unknown ones instead.
fn schema() -> Value {
    let languages: Vec<&str> = LANGUAGES.iter().map(|(id, _)| *id).collect();
    json!([
        {
            "type": "object",
            "title": "Service",
            "required": ["name", "owner"],
            "properties": {
                "name": {
                    "type": "string",
                    "title": "Name",
                    "description": "Lower-case letters, digits and dashes, e.g. billing-service.",
                    "pattern": NAME_PATTERN,
                    "maxLength": 63
                },
                "description": {
                    "type": "string",
                    "title": "Description",
                    "description": "One sentence: what the service does.",
                    "default": ""
                },
                "owner": {
                    "type": "string",
                    "title": "Owner",
                    "description": "The owning group, e.g. payments or group:default/payments.",
                    "minLength": 1
                },
                "system": {
                    "type": "string",
                    "title": "System",
                    "description": "The system the service is part of, if any, e.g. billing."
                }
            }
        },
        {
            "type": "object",
            "title": "Build and repository",
            "properties": {
                "language": {
                    "type": "string",
                    "title": "Language",
                    "enum": languages,
                    "default": "rust"
                },
                "lifecycle": {
                    "type": "string",
                    "title": "Lifecycle",
                    "enum": LIFECYCLES,
                    "default": "experimental"
                },
                "repo": {
                    "type": "string",
                    "title": "Repository",
                    "description": "owner/repository on GitHub, e.g. acme/billing-service.",
                    "pattern": REPO_PATTERN
                }
            }
        }
    ])
}

/// The validated parameters.
#[derive(Debug)]
struct Params<'a> {
    name: &'a str,
    description: &'a str,
    owner: &'a str,
    system: Option<&'a str>,
    language: &'a str,
    lifecycle: &'a str,
    repo: Option<&'a str>,
}

impl<'a> Params<'a> {
    fn read(parameters: &'a Value) -> Result<Self, Error> {
        let object = parameters
            .as_object()
            .ok_or_else(|| Error::invalid_parameter("", "must be an object"))?;
        refuse_unknown(object, &schema())?;
        let text = |key: &str| -> Result<Option<&'a str>, Error> {
            match parameters.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim()).filter(|s| !s.is_empty())),
                Some(_) => Err(Error::invalid_parameter(
                    format!("/{key}"),
                    "must be a string",
                )),
            }
        };
        let name = text("name")?.ok_or_else(|| Error::invalid_parameter("/name", "is required"))?;
        if !valid_name(name) {
            return Err(Error::invalid_parameter(
                "/name",
                format!("`{name}` must be 2-63 lower-case letters, digits and dashes, starting with a letter"),
            ));
        }
        let owner =
            text("owner")?.ok_or_else(|| Error::invalid_parameter("/owner", "is required"))?;
        let system = text("system")?;
        if let Some(system) = system {
            if !valid_entity_name(system) {
                return Err(Error::invalid_parameter(
                    "/system",
                    format!("`{system}` is not an entity name (letters, digits, `-`, `_`, `.`; at most 63)"),
                ));
            }
        }
        let language = text("language")?.unwrap_or("rust");
        if !LANGUAGES.iter().any(|(id, _)| *id == language) {
            let ids: Vec<&str> = LANGUAGES.iter().map(|(id, _)| *id).collect();
            return Err(Error::invalid_parameter(
                "/language",
                format!("must be one of {}", ids.join(", ")),
            ));
        }
        let lifecycle = text("lifecycle")?.unwrap_or("experimental");
        if !LIFECYCLES.contains(&lifecycle) {
            return Err(Error::invalid_parameter(
                "/lifecycle",
                format!("must be one of {}", LIFECYCLES.join(", ")),
            ));
        }
        let repo = text("repo")?;
        if let Some(repo) = repo {
            if !valid_repo(repo) {
                return Err(Error::invalid_parameter(
                    "/repo",
                    format!("`{repo}` must be owner/repository"),
                ));
            }
        }
        Ok(Params {
            name,
            description: text("description")?.unwrap_or(""),
            owner,
            system,
            language,
            lifecycle,
            repo,
        })
    }

    /// What the templates see. Optional parameters are always present (as
    /// null), since the templates render with strict undefined.
    fn context(&self) -> Value {
        let summary = self
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        json!({
            "name": self.name,
            "module": self.name.replace('-', "_"),
            "description": self.description,
            "summary": if summary.is_empty() { "A new service.".to_owned() } else { summary },
            "owner": self.owner,
            "system": self.system,
            "language": self.language,
            "language_name": language_name(self.language),
            "lifecycle": self.lifecycle,
            "repo": self.repo,
        })
    }
}

fn language_name(id: &str) -> &'static str {
    LANGUAGES
        .iter()
        .find(|(lang, _)| *lang == id)
        .map_or("", |(_, name)| name)
}

/// Refuses a parameter that no page of `schema` declares (a typo would
/// otherwise be dropped silently).
fn refuse_unknown(parameters: &Map<String, Value>, schema: &Value) -> Result<(), Error> {
    let known = |key: &str| {
        schema
            .as_array()
            .into_iter()
            .flatten()
            .any(|page| page["properties"].get(key).is_some())
    };
    match parameters.keys().find(|key| !known(key)) {
        Some(key) => Err(Error::invalid_parameter(
            format!("/{key}"),
            "is not a parameter of this template",
        )),
        None => Ok(()),
    }
}

/// The entity a rendered `catalog-info.yaml` describes. A failure here is
/// the template's bug, reported as such.
fn entity_from_yaml(text: &str) -> Result<Entity, Error> {
    let descriptor: Value = serde_norway::from_str(text).map_err(|e| {
        Error::Other(format!(
            "service-template: the rendered catalog-info.yaml is not YAML: {e}"
        ))
    })?;
    Entity::from_descriptor(&descriptor).map_err(|e| {
        Error::Other(format!(
            "service-template: the rendered catalog-info.yaml is not an entity: {e}"
        ))
    })
}

/// `NAME_PATTERN` without a regex engine.
fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (2..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

/// A Backstage entity name: 1-63 of letters, digits, `-`, `_`, `.`,
/// starting and ending with a letter or digit.
fn valid_entity_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `REPO_PATTERN` without a regex engine.
fn valid_repo(repo: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    matches!(repo.split_once('/'), Some((owner, name)) if part(owner) && part(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(parameters: Value) -> Result<Output, Error> {
        super::generate(&Params::read(&parameters)?)
    }

    fn text<'o>(output: &'o Output, path: &str) -> &'o str {
        let file = output
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path}"));
        std::str::from_utf8(&file.content).unwrap()
    }

    fn paths(output: &Output) -> Vec<&str> {
        output.files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn names_follow_the_pattern() {
        assert!(valid_name("billing-service"));
        assert!(valid_name("a1"));
        for bad in ["a", "Billing", "1abc", "abc-", "a_b", ""] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_repo("acme/billing.svc"));
        for bad in ["acme", "/x", "a/b/c", "a/", "a b/c"] {
            assert!(!valid_repo(bad), "{bad}");
        }
        assert!(valid_entity_name("Billing_v2.x"));
        assert!(!valid_entity_name("-x") && !valid_entity_name("a/b"));
    }

    #[test]
    fn bad_parameters_name_the_field() {
        for (parameters, pointer) in [
            (json!({"name": "x", "owner": "a"}), "/name"),
            (json!({"name": "ok-name"}), "/owner"),
            (
                json!({"name": "ok-name", "owner": "a", "language": "cobol"}),
                "/language",
            ),
            (
                json!({"name": "ok-name", "owner": "a", "lifecycle": "alive"}),
                "/lifecycle",
            ),
            (
                json!({"name": "ok-name", "owner": "a", "repo": "no-slash"}),
                "/repo",
            ),
            (
                json!({"name": "ok-name", "owner": "a", "system": "a b"}),
                "/system",
            ),
            (
                json!({"name": "ok-name", "owner": "a", "nmae": "x"}),
                "/nmae",
            ),
            (json!({"name": 3, "owner": "a"}), "/name"),
        ] {
            let err = Params::read(&parameters).unwrap_err();
            assert!(
                matches!(err, Error::InvalidParameter { pointer: ref p, .. } if p == pointer),
                "{parameters}: {err:?}"
            );
        }
    }

    #[test]
    fn the_schema_is_two_pages_that_declare_every_parameter() {
        let schema = schema();
        let pages = schema.as_array().unwrap();
        assert_eq!(pages.len(), 2);
        let keys = |i: usize| -> Vec<&str> {
            pages[i]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect()
        };
        assert_eq!(keys(0), ["name", "description", "owner", "system"]);
        assert_eq!(keys(1), ["language", "lifecycle", "repo"]);
        assert!(pages
            .iter()
            .all(|p| p.get("additionalProperties").is_none()));
    }

    #[test]
    fn every_language_renders_its_tree() {
        for (language, manifest, source) in [
            ("rust", "Cargo.toml", "src/main.rs"),
            ("go", "go.mod", "cmd/billing/main.go"),
            ("python", "pyproject.toml", "src/billing/__main__.py"),
            ("typescript", "package.json", "src/index.ts"),
        ] {
            let output =
                generate(json!({"name": "billing", "owner": "payments", "language": language}))
                    .unwrap_or_else(|e| panic!("{language}: {e}"));
            let paths = paths(&output);
            for path in [
                "README.md",
                "catalog-info.yaml",
                "Dockerfile",
                ".github/workflows/ci.yml",
                "scripts/smoke-test.sh",
                manifest,
                source,
            ] {
                assert!(paths.contains(&path), "{language}: no {path} in {paths:?}");
            }
            assert!(
                paths
                    .iter()
                    .all(|p| !p.contains("{{") && !p.ends_with(".jinja")),
                "{paths:?}"
            );
            let smoke = output
                .files
                .iter()
                .find(|f| f.path == "scripts/smoke-test.sh")
                .unwrap();
            assert!(smoke.executable);
            assert!(text(&output, "README.md").contains(language_name(language)));
        }
    }

    #[test]
    fn the_entity_is_the_catalog_info() {
        let output = generate(json!({
            "name": "billing",
            "owner": "group:default/payments",
            "description": "Bills: \"all\" of them.\nReally.",
            "system": "money",
            "lifecycle": "production",
            "repo": "acme/billing",
            "language": "go"
        }))
        .unwrap();
        let entity = output.entity.as_ref().unwrap();
        let yaml: Value = serde_norway::from_str(text(&output, "catalog-info.yaml")).unwrap();
        assert_eq!(entity.to_descriptor()["metadata"], {
            let mut m = yaml["metadata"].clone();
            m["namespace"] = json!("default");
            m
        });
        assert_eq!(entity.kind, "Component");
        assert_eq!(
            entity.description.as_deref(),
            Some("Bills: \"all\" of them.\nReally.")
        );
        assert_eq!(
            entity.spec(),
            json!({"type": "service", "lifecycle": "production", "owner": "group:default/payments", "system": "money"})
        );
        assert_eq!(
            entity.annotation("github.com/project-slug"),
            Some("acme/billing")
        );
        assert_eq!(
            text(&output, "go.mod"),
            "module github.com/acme/billing\n\ngo 1.22\n"
        );
        assert!(text(&output, "cmd/billing/main.go")
            .starts_with("// Command billing: Bills: \"all\" of them. Really.\n"));
        assert_eq!(output.links.len(), 1);
        assert_eq!(output.links[0].url, "https://github.com/acme/billing");
    }

    #[test]
    fn optional_parameters_can_be_left_out() {
        let output = generate(json!({"name": "billing", "owner": "payments"})).unwrap();
        let entity = output.entity.unwrap();
        assert_eq!(entity.description, None);
        assert!(entity.annotations.is_empty());
        assert_eq!(
            entity.spec(),
            json!({"type": "service", "lifecycle": "experimental", "owner": "payments"})
        );
        assert!(output.links.is_empty());
    }
}
