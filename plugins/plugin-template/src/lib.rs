//! Scaffold generator `plugin-template`: a new Portolan plugin, so the
//! portal scaffolds its own extensions.
//!
//! It renders the template tree in `template/` (embedded at build time by
//! `build.rs`, rendered with minijinja through `template-tree`): the layer
//! `base` (a standalone `cdylib` crate on the Portolan Rust SDK, the
//! `debweb`/`wasm32-wasip2` build set-up of `plugins/`, a commented sidecar
//! `NAME.toml`, a README with build and install steps and a
//! `catalog-info.yaml` for a Component of type `portolan-plugin`) plus the
//! layer of the chosen role, whose `src/lib.rs` is a working skeleton with
//! unit tests for contract 0.4.0.
//!
//! With `language` other than `rust`, the project is the SDK template of that
//! language and role (`sdk/python`, `sdk/js` or `sdk/c`, `templates/ROLE`,
//! embedded by `build.rs`) with the plugin's name filled in, plus the
//! layer `polyglot` (a README with the build steps of
//! `scripts/build-guest.sh`) and the sidecar and `catalog-info.yaml` of
//! `base`.
//!
//! Parameters, a two-page form:
//!
//! | page | parameter | |
//! | --- | --- | --- |
//! | 1 | `name` | required; 2-63 of `a-z`, `0-9`, `-`, starting with a letter: crate, plugin id and entity name |
//! | 1 | `description` | optional, one sentence |
//! | 1 | `owner` | required; a group name or reference |
//! | 1 | `system` | optional; the system the plugin belongs to |
//! | 2 | `role` | required: `catalog-source`, `scaffold-generator`, `action` or `scorecard-check` |
//! | 2 | `language` | `rust` (default), `python`, `javascript` or `c` |
//! | 2 | `sdk` | how `Cargo.toml` depends on the SDK: `git` (default) or `path` |
//! | 2 | `sdk_location` | the git URL or the path; defaults: the setting `sdk_git` (else [`DEFAULT_SDK_GIT`]), [`DEFAULT_SDK_PATH`] |
//! | 2 | `repo` | optional `owner/repository` on GitHub: the `github.com/project-slug` annotation |
//!
//! Setting (sidecar `[settings]`): `sdk_git`, the URL of the operator's
//! Portolan repository, the default of `sdk_location` for `sdk = "git"`.

use portolan_sdk::scaffold::{Error, File, GeneratorInfo, Output};
use portolan_sdk::{about, Entity, Link, ScaffoldGenerator};
use serde_json::{json, Map, Value};
use template_tree::TemplateFile;

/// The embedded `template/` folder.
static TREE: &[TemplateFile] = include!(concat!(env!("OUT_DIR"), "/template.rs"));

/// The SDK templates of the other languages, one layer per role.
static PYTHON: &[TemplateFile] = include!(concat!(env!("OUT_DIR"), "/python.rs"));
static JAVASCRIPT: &[TemplateFile] = include!(concat!(env!("OUT_DIR"), "/javascript.rs"));
static C: &[TemplateFile] = include!(concat!(env!("OUT_DIR"), "/c.rs"));

/// The languages, with the SDK folder of each (none for Rust, whose
/// templates are `template/`).
const LANGUAGES: [(&str, &str); 4] = [
    ("rust", ""),
    ("python", "python"),
    ("javascript", "js"),
    ("c", "c"),
];

/// The plugin name as the SDK templates spell it; generation replaces it.
const TEMPLATE_NAME: &str = "my-plugin";

/// The plugin name: crate name, plugin id (its file name) and entity name.
const NAME_PATTERN: &str = "^[a-z][a-z0-9-]{0,61}[a-z0-9]$";

/// `owner/repository` on GitHub.
const REPO_PATTERN: &str = "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$";

/// The roles, each a layer of the tree, with the SDK trait that plays it.
const ROLES: [(&str, &str); 4] = [
    ("catalog-source", "CatalogSource"),
    ("scaffold-generator", "ScaffoldGenerator"),
    ("action", "Action"),
    ("scorecard-check", "ScorecardCheck"),
];

/// Where the SDK comes from when neither the form nor the setting `sdk_git`
/// says: the Portolan repository's placeholder address (its `Cargo.toml`'s
/// `repository`); the generated README says to change it.
pub const DEFAULT_SDK_GIT: &str = "https://example.invalid/portolan";

/// The SDK of a Portolan checkout next to the new project.
pub const DEFAULT_SDK_PATH: &str = "../portolan/sdk/rust";

struct PluginTemplate;

impl ScaffoldGenerator for PluginTemplate {
    fn describe() -> GeneratorInfo {
        GeneratorInfo::new(
            about!(
                "Portolan plugin",
                "A new Portolan plugin in Rust on the Portolan SDK: a catalog source, scaffold \
                 generator, action or scorecard check, with its build set-up, sidecar, README and \
                 catalog entry."
            ),
            schema(),
        )
        .with_tags(["portolan-plugin", "rust", "webassembly"])
    }

    fn generate(parameters: Value) -> Result<Output, Error> {
        let sdk_git = portolan_sdk::setting("sdk_git");
        let params = Params::read(&parameters, sdk_git.as_deref())?;
        let output = generate(&params)?;
        portolan_sdk::info!(
            "generated {} files for the {} plugin {}",
            output.files.len(),
            params.role,
            params.name
        );
        Ok(output)
    }
}

portolan_sdk::export!(ScaffoldGenerator for PluginTemplate);

/// Renders the tree for `params`: files, the entity from their
/// `catalog-info.yaml`, links and messages. Pure (no host calls), so the
/// unit tests run it natively.
fn generate(params: &Params) -> Result<Output, Error> {
    if params.language != "rust" {
        return generate_polyglot(params);
    }
    let rendered = template_tree::render(TREE, &["base", params.role], &params.context())
        .map_err(|e| Error::Other(format!("plugin-template: {e}")))?;
    let catalog_info = rendered
        .iter()
        .find(|f| f.path == "catalog-info.yaml")
        .and_then(|f| f.text())
        .ok_or_else(|| Error::Other("plugin-template: no catalog-info.yaml".into()))?;
    let entity = entity_from_yaml(catalog_info)?;
    let files = rendered
        .into_iter()
        .map(|f| File {
            path: f.path,
            content: f.contents,
            executable: f.executable,
        })
        .collect();
    let links = params
        .repo
        .map(|repo| Link::new(format!("https://github.com/{repo}")).with_title("Repository"))
        .into_iter()
        .collect();
    let crate_name = params.name.replace('-', "_");
    Ok(Output {
        files,
        entity: Some(entity),
        links,
        messages: vec![
            format!(
                "Created the {} plugin {} ({} on the Portolan SDK, contract 0.4.0), owned by {}.",
                params.role,
                params.name,
                role_trait(params.role),
                params.owner
            ),
            format!(
                "Build it with `cargo build --release` (the debweb toolchain from Portolan's scripts/bootstrap.sh), \
                 then copy {name}.toml and target/wasm32-wasip2/release/{crate_name}.wasm into the portal's \
                 plugins folder as {name}.toml and {name}.wasm. README.md has the details.",
                name = params.name
            ),
        ],
    })
}

/// A plugin in Python, JavaScript or C: the SDK template of the role with
/// the name filled in, the `polyglot` README, and the sidecar and catalog
/// entry of `base`.
fn generate_polyglot(params: &Params) -> Result<Output, Error> {
    let failed = |e: template_tree::Error| Error::Other(format!("plugin-template: {e}"));
    let context = params.context();
    let sdk_tree = match params.language {
        "python" => PYTHON,
        "javascript" => JAVASCRIPT,
        _ => C,
    };
    let mut rendered = template_tree::render(sdk_tree, &[params.role], &context).map_err(failed)?;
    for file in &mut rendered {
        if let Some(text) = file.text() {
            file.contents = text.replace(TEMPLATE_NAME, params.name).into_bytes();
        }
    }
    rendered.extend(template_tree::render(TREE, &["polyglot"], &context).map_err(failed)?);
    let sidecar = format!("{}.toml", params.name);
    rendered.extend(
        template_tree::render(TREE, &["base"], &context)
            .map_err(failed)?
            .into_iter()
            .filter(|f| f.path == "catalog-info.yaml" || f.path == sidecar),
    );
    rendered.sort_by(|a, b| a.path.cmp(&b.path));
    let catalog_info = rendered
        .iter()
        .find(|f| f.path == "catalog-info.yaml")
        .and_then(|f| f.text())
        .ok_or_else(|| Error::Other("plugin-template: no catalog-info.yaml".into()))?;
    let entity = entity_from_yaml(catalog_info)?;
    let files = rendered
        .into_iter()
        .map(|f| File {
            path: f.path,
            content: f.contents,
            executable: f.executable,
        })
        .collect();
    Ok(Output {
        files,
        entity: Some(entity),
        links: Vec::new(),
        messages: vec![
            format!(
                "Created the {} plugin {} in {}, owned by {}.",
                params.role, params.name, params.language, params.owner
            ),
            format!(
                "Build it from a Portolan checkout with scripts/build-guest.sh DIR {name}.wasm, then copy \
                 {name}.wasm and {name}.toml into the portal's plugins folder. README.md has the details.",
                name = params.name
            ),
        ],
    })
}

/// The parameters as a two-page form. A page sees the whole parameter
/// object, so no page says `additionalProperties: false` (it would refuse the
/// other page's fields); [`Params::read`] refuses unknown ones instead.
fn schema() -> Value {
    let roles: Vec<&str> = ROLES.iter().map(|(id, _)| *id).collect();
    let languages: Vec<&str> = LANGUAGES.iter().map(|(id, _)| *id).collect();
    json!([
        {
            "type": "object",
            "title": "Plugin",
            "required": ["name", "owner"],
            "properties": {
                "name": {
                    "type": "string",
                    "title": "Name",
                    "description": "The crate, the plugin's id (its file name) and its catalog entry, e.g. cost-check.",
                    "pattern": NAME_PATTERN,
                    "maxLength": 63
                },
                "description": {
                    "type": "string",
                    "title": "Description",
                    "description": "One sentence: what the plugin does.",
                    "default": ""
                },
                "owner": {
                    "type": "string",
                    "title": "Owner",
                    "description": "The owning group, e.g. platform or group:default/platform.",
                    "minLength": 1
                },
                "system": {
                    "type": "string",
                    "title": "System",
                    "description": "The system the plugin is part of, if any, e.g. developer-portal."
                }
            }
        },
        {
            "type": "object",
            "title": "Role and build",
            "required": ["role"],
            "properties": {
                "role": {
                    "type": "string",
                    "title": "Role",
                    "description": "What the plugin does in the portal.",
                    "enum": roles
                },
                "language": {
                    "type": "string",
                    "title": "Language",
                    "description": "What the plugin is written in; Rust uses the Rust SDK, the others the SDK of sdk/python, sdk/js or sdk/c.",
                    "enum": languages,
                    "default": "rust"
                },
                "sdk": {
                    "type": "string",
                    "title": "SDK dependency",
                    "description": "git: from the Portolan repository by URL; path: from a checkout next to the new project.",
                    "enum": ["git", "path"],
                    "default": "git"
                },
                "sdk_location": {
                    "type": "string",
                    "title": "SDK location",
                    "description": "The Portolan repository's git URL, or the path of its sdk/rust folder; empty for the default."
                },
                "repo": {
                    "type": "string",
                    "title": "Repository",
                    "description": "owner/repository on GitHub, e.g. acme/cost-check.",
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
    role: &'a str,
    language: &'a str,
    sdk: &'a str,
    sdk_location: String,
    repo: Option<&'a str>,
}

impl<'a> Params<'a> {
    /// Checks `parameters`; `sdk_git` is the operator's setting of that name.
    fn read(parameters: &'a Value, sdk_git: Option<&str>) -> Result<Self, Error> {
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
        let role = text("role")?.ok_or_else(|| Error::invalid_parameter("/role", "is required"))?;
        if !ROLES.iter().any(|(id, _)| *id == role) {
            let ids: Vec<&str> = ROLES.iter().map(|(id, _)| *id).collect();
            return Err(Error::invalid_parameter(
                "/role",
                format!("must be one of {}", ids.join(", ")),
            ));
        }
        let language = text("language")?.unwrap_or("rust");
        if !LANGUAGES.iter().any(|(id, _)| *id == language) {
            let ids: Vec<&str> = LANGUAGES.iter().map(|(id, _)| *id).collect();
            return Err(Error::invalid_parameter(
                "/language",
                format!("must be one of {}", ids.join(", ")),
            ));
        }
        let sdk = text("sdk")?.unwrap_or("git");
        if !matches!(sdk, "git" | "path") {
            return Err(Error::invalid_parameter("/sdk", "must be git or path"));
        }
        let sdk_location = match text("sdk_location")? {
            Some(location) if location.chars().any(char::is_control) => {
                return Err(Error::invalid_parameter(
                    "/sdk_location",
                    "must be one line of text",
                ))
            }
            Some(location) => location.to_owned(),
            None if sdk == "git" => sdk_git
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .unwrap_or(DEFAULT_SDK_GIT)
                .to_owned(),
            None => DEFAULT_SDK_PATH.to_owned(),
        };
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
            role,
            language,
            sdk,
            sdk_location,
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
            "crate": self.name.replace('-', "_"),
            "type_name": type_name(self.name),
            "title": title(self.name),
            "description": self.description,
            "summary": if summary.is_empty() { format!("A Portolan {} plugin.", self.role) } else { summary },
            "owner": self.owner,
            "system": self.system,
            "role": self.role,
            "role_trait": role_trait(self.role),
            "language": self.language,
            "sdk_folder": LANGUAGES.iter().find(|(id, _)| *id == self.language).map_or("", |(_, f)| *f),
            // The interpreters inside Python and JavaScript components need
            // more memory than a Rust or C plugin.
            "memory_mb": if matches!(self.language, "python" | "javascript") { 128 } else { 64 },
            "sdk": self.sdk,
            "sdk_location": self.sdk_location,
            "repo": self.repo,
        })
    }
}

fn role_trait(role: &str) -> &'static str {
    ROLES
        .iter()
        .find(|(id, _)| *id == role)
        .map_or("", |(_, name)| name)
}

/// `cost-check` → `CostCheck`, the plugin's type. A name is ASCII and starts
/// with a letter, so the result is a Rust identifier.
fn type_name(name: &str) -> String {
    words(name).concat()
}

/// `cost-check` → `Cost Check`, the plugin's title.
fn title(name: &str) -> String {
    words(name).join(" ")
}

fn words(name: &str) -> Vec<String> {
    name.split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let (first, rest) = w.split_at(1);
            first.to_ascii_uppercase() + rest
        })
        .collect()
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
            "plugin-template: the rendered catalog-info.yaml is not YAML: {e}"
        ))
    })?;
    Entity::from_descriptor(&descriptor).map_err(|e| {
        Error::Other(format!(
            "plugin-template: the rendered catalog-info.yaml is not an entity: {e}"
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

    fn render(parameters: Value) -> Result<Output, Error> {
        generate(&Params::read(&parameters, None)?)
    }

    fn text<'o>(output: &'o Output, path: &str) -> &'o str {
        let file = output
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path}"));
        std::str::from_utf8(&file.content).unwrap()
    }

    #[test]
    fn names_become_types_and_titles() {
        assert_eq!(type_name("cost-check"), "CostCheck");
        assert_eq!(type_name("a1-b2"), "A1B2");
        assert_eq!(title("cost-check"), "Cost Check");
    }

    #[test]
    fn other_languages_get_the_sdk_template_with_the_name_filled_in() {
        for (language, source) in [
            ("python", "app.py"),
            ("javascript", "app.js"),
            ("c", "plugin.c"),
        ] {
            for (role, _) in ROLES {
                let output = render(json!({"name": "cost-check", "owner": "platform", "role": role, "language": language}))
                    .unwrap_or_else(|e| panic!("{language} {role}: {e}"));
                let paths: Vec<&str> = output.files.iter().map(|f| f.path.as_str()).collect();
                assert_eq!(
                    paths,
                    [
                        "README.md",
                        source,
                        "catalog-info.yaml",
                        "cost-check.toml",
                        "portolan-plugin.toml"
                    ]
                    .iter()
                    .copied()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>(),
                    "{language} {role}"
                );
                let manifest = text(&output, "portolan-plugin.toml");
                assert!(
                    manifest.contains(&format!("world = \"{role}\"")),
                    "{manifest}"
                );
                let code = text(&output, source);
                assert!(
                    code.contains("cost-check") && !code.contains(TEMPLATE_NAME),
                    "{code}"
                );
                assert!(text(&output, "README.md").contains(&format!("**{role}**")));
                let entity = output.entity.as_ref().unwrap();
                assert!(
                    entity.tags.iter().any(|t| t == language),
                    "{:?}",
                    entity.tags
                );
            }
        }
        let sidecar = |language: &str| {
            let output = render(json!({"name": "cost-check", "owner": "platform",
                                       "role": "action", "language": language}))
            .unwrap();
            text(&output, "cost-check.toml").to_owned()
        };
        assert!(sidecar("python").contains("memory_mb = 128 "));
        assert!(sidecar("c").contains("memory_mb = 64 "));
        assert!(matches!(
            render(json!({"name": "x-y", "owner": "p", "role": "action", "language": "cobol"})),
            Err(Error::InvalidParameter { ref pointer, .. }) if pointer == "/language"
        ));
    }

    #[test]
    fn every_role_gets_its_skeleton() {
        for (role, trait_name) in ROLES {
            let output = render(json!({"name": "cost-check", "owner": "platform", "role": role}))
                .unwrap_or_else(|e| panic!("{role}: {e}"));
            let mut paths: Vec<&str> = output.files.iter().map(|f| f.path.as_str()).collect();
            paths.sort();
            assert_eq!(
                paths,
                [
                    ".cargo/config.toml",
                    ".gitignore",
                    "Cargo.toml",
                    "README.md",
                    "catalog-info.yaml",
                    "cost-check.toml",
                    "rust-toolchain.toml",
                    "src/lib.rs"
                ],
                "{role}"
            );
            let lib = text(&output, "src/lib.rs");
            assert!(
                lib.contains(&format!("impl {trait_name} for CostCheck {{")),
                "{role}: {lib}"
            );
            assert!(
                lib.contains(&format!(
                    "portolan_sdk::export!({trait_name} for CostCheck);"
                )),
                "{role}"
            );
            assert!(lib.contains("#[cfg(test)]"), "{role}");
            assert!(text(&output, "README.md").contains(&format!("**{role}**")));
            let entity = output.entity.unwrap();
            assert_eq!(entity.spec()["type"], "portolan-plugin");
            assert!(entity.tags.iter().any(|t| t == role), "{:?}", entity.tags);
        }
    }

    #[test]
    fn the_sdk_comes_by_git_or_by_path() {
        let output =
            render(json!({"name": "cost-check", "owner": "platform", "role": "action"})).unwrap();
        assert!(text(&output, "Cargo.toml")
            .contains("portolan-sdk = { git = \"https://example.invalid/portolan\" }"));
        let params = json!({"name": "cost-check", "owner": "platform", "role": "action"});
        let output =
            generate(&Params::read(&params, Some("https://git.example.com/portolan")).unwrap())
                .unwrap();
        assert!(text(&output, "Cargo.toml")
            .contains("portolan-sdk = { git = \"https://git.example.com/portolan\" }"));
        let output = render(
            json!({"name": "cost-check", "owner": "platform", "role": "action", "sdk": "path"}),
        )
        .unwrap();
        assert!(text(&output, "Cargo.toml")
            .contains("portolan-sdk = { path = \"../portolan/sdk/rust\" }"));
        assert!(text(&output, "README.md").contains("**path** dependency"));
    }

    #[test]
    fn the_sidecar_fits_the_role() {
        let sidecar = |role: &str| {
            let output =
                render(json!({"name": "cost-check", "owner": "platform", "role": role})).unwrap();
            text(&output, "cost-check.toml").to_owned()
        };
        assert!(sidecar("catalog-source").contains("[schedule]\nevery = \"1h\""));
        assert!(sidecar("action").contains("# [action]"));
        assert!(!sidecar("scorecard-check").contains("[schedule]"));
        assert!(sidecar("scaffold-generator").contains("[limits]\ntimeout_ms = 10000"));
    }

    #[test]
    fn bad_parameters_name_the_field() {
        for (parameters, pointer) in [
            (
                json!({"name": "x", "owner": "a", "role": "action"}),
                "/name",
            ),
            (json!({"name": "ok-name", "owner": "a"}), "/role"),
            (
                json!({"name": "ok-name", "owner": "a", "role": "daemon"}),
                "/role",
            ),
            (
                json!({"name": "ok-name", "owner": "a", "role": "action", "sdk": "crates"}),
                "/sdk",
            ),
            (
                json!({"name": "ok-name", "owner": "a", "role": "action", "sdk_location": "a\nb"}),
                "/sdk_location",
            ),
            (
                json!({"name": "ok-name", "owner": "a", "role": "action", "language": "go"}),
                "/language",
            ),
        ] {
            let err = Params::read(&parameters, None).unwrap_err();
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
        let keys = |i: usize| -> Vec<&str> {
            pages[i]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect()
        };
        assert_eq!(keys(0), ["name", "description", "owner", "system"]);
        assert_eq!(keys(1), ["role", "language", "sdk", "sdk_location", "repo"]);
    }
}
