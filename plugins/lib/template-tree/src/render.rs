//! Run-time half: renders layers of an embedded tree (see the crate docs for
//! the rules a tree follows).

use std::collections::BTreeMap;
use std::fmt;

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, ErrorKind, Template, UndefinedBehavior, Value};
use serde_json::Value as Json;

use crate::TemplateFile;

/// The suffix that marks a file as a template; it is dropped from the output
/// path. Other files are copied as they are.
pub const TEMPLATE_SUFFIX: &str = ".jinja";

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative, `/`-separated, checked (no `..`, no empty segment).
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

impl RenderedFile {
    /// The contents as text (templates always render to UTF-8; copied files
    /// may not be text at all).
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.contents).ok()
    }
}

/// Why a tree did not render. These are bugs of the template (or of the
/// context a plugin builds), so each names the template at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The template (or, with `in_path`, its path) did not compile or
    /// render; `message` carries minijinja's reason, the line and, for an
    /// undefined variable, its name.
    Template {
        template: &'static str,
        in_path: bool,
        message: String,
    },
    /// The rendered path of `template` is not a safe relative path.
    Path {
        template: &'static str,
        path: String,
        reason: &'static str,
    },
    /// Two templates render to the same path.
    Duplicate {
        path: String,
        first: &'static str,
        second: &'static str,
    },
    /// A selected layer has no file at all (a misspelled layer name).
    UnknownLayer(String),
    /// A `.jinja` file is not UTF-8 text.
    NotText(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Template {
                template,
                in_path: false,
                message,
            } => write!(f, "template {template}: {message}"),
            Error::Template {
                template,
                in_path: true,
                message,
            } => write!(f, "the path of template {template}: {message}"),
            Error::Path {
                template,
                path,
                reason,
            } => write!(
                f,
                "template {template} renders to the path {path:?}, which {reason}"
            ),
            Error::Duplicate {
                path,
                first,
                second,
            } => write!(f, "templates {first} and {second} both render to {path}"),
            Error::UnknownLayer(layer) => write!(f, "the template tree has no layer {layer:?}"),
            Error::NotText(template) => write!(f, "template {template} is not UTF-8 text"),
        }
    }
}

impl std::error::Error for Error {}

/// Renders the files of `layers` (in that order) from `tree` with `context`
/// (a JSON object), sorted by output path.
pub fn render(
    tree: &'static [TemplateFile],
    layers: &[&str],
    context: &Json,
) -> Result<Vec<RenderedFile>, Error> {
    let env = environment();
    let ctx = to_value(context);
    let mut out: BTreeMap<String, (&'static str, RenderedFile)> = BTreeMap::new();
    for layer in layers {
        let prefix = format!("{layer}/");
        let files: Vec<&TemplateFile> = tree
            .iter()
            .filter(|f| f.path.starts_with(&prefix))
            .collect();
        if files.is_empty() {
            return Err(Error::UnknownLayer((*layer).to_owned()));
        }
        for file in files {
            let below = &file.path[prefix.len()..];
            let (below, is_template) = match below.strip_suffix(TEMPLATE_SUFFIX) {
                Some(stem) => (stem, true),
                None => (below, false),
            };
            let path = render_str(&env, file.path, true, below, &ctx, context)?;
            check_path(&path).map_err(|reason| Error::Path {
                template: file.path,
                path: path.clone(),
                reason,
            })?;
            let contents = if is_template {
                let source =
                    std::str::from_utf8(file.contents).map_err(|_| Error::NotText(file.path))?;
                render_str(&env, file.path, false, source, &ctx, context)?.into_bytes()
            } else {
                file.contents.to_vec()
            };
            if let Some((first, _)) = out.get(&path) {
                return Err(Error::Duplicate {
                    path,
                    first,
                    second: file.path,
                });
            }
            let rendered = RenderedFile {
                path: path.clone(),
                contents,
                executable: file.executable,
            };
            out.insert(path, (file.path, rendered));
        }
    }
    Ok(out.into_values().map(|(_, file)| file).collect())
}

/// The engine as the crate docs describe it.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    env.add_filter("quote", quote);
    env.add_filter("rust_str", rust_str);
    env.add_filter("snake", snake);
    env.add_filter("pascal", pascal);
    env.add_filter("one_line", one_line);
    env.add_filter("lower", |s: &str| s.to_lowercase());
    env.add_filter("upper", |s: &str| s.to_uppercase());
    env.add_filter("trim", |s: &str| s.trim().to_owned());
    env.add_filter("replace", |s: &str, from: &str, to: &str| {
        s.replace(from, to)
    });
    env.add_filter("join", join);
    env
}

fn render_str(
    env: &Environment<'static>,
    name: &'static str,
    in_path: bool,
    source: &'static str,
    ctx: &Value,
    context: &Json,
) -> Result<String, Error> {
    let error = |message: String| Error::Template {
        template: name,
        in_path,
        message,
    };
    let template = env
        .template_from_named_str(name, source)
        .map_err(|e| error(e.to_string()))?;
    template
        .render(ctx)
        .map_err(|e| error(explain(env, &template, &e, context)))
}

/// minijinja's message, plus, for an undefined variable, which of the
/// template's free variables the context lacks (minijinja only says
/// "undefined value" without its `debug` feature, which would cost size).
fn explain(env: &Environment, template: &Template, e: &minijinja::Error, context: &Json) -> String {
    let mut message = e.to_string();
    if e.kind() == ErrorKind::UndefinedError {
        let globals: Vec<&str> = env.globals().map(|(name, _)| name).collect();
        let mut missing: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| context.get(v).is_none() && !globals.contains(&v.as_str()))
            .collect();
        missing.sort();
        if !missing.is_empty() {
            message.push_str(&format!("; not in the context: {}", missing.join(", ")));
        }
    }
    message
}

/// Why `path` is not a safe relative output path, if it is not.
fn check_path(path: &str) -> Result<(), &'static str> {
    if path.starts_with('/') {
        return Err("is absolute");
    }
    if path.contains('\\') {
        return Err("contains a backslash");
    }
    if path.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err("has an empty segment"),
            "." | ".." => return Err("has a `.` or `..` segment"),
            _ => {}
        }
    }
    Ok(())
}

/// JSON as a minijinja value. By hand rather than through minijinja's serde
/// feature, which would add a serializer to every component.
fn to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(to_value).collect::<Vec<_>>()),
        Json::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// `quote`: a double-quoted literal of the value's text. JSON's string
/// syntax is also valid YAML, TOML (basic string), Python, Go and
/// TypeScript. `none` is refused: quoting it would hide a missing value.
fn quote(value: Value) -> Result<String, minijinja::Error> {
    let text = match value.as_str() {
        Some(s) => s.to_owned(),
        None if value.is_none() || value.is_undefined() => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "quote: the value is none",
            ))
        }
        None => value.to_string(),
    };
    Ok(serde_json::to_string(&text).expect("a string always serializes"))
}

/// `rust_str`: a Rust string literal of the text (`quote` is not one: Rust
/// has no `\b`, `\f` or `\uXXXX` escapes).
fn rust_str(value: &str) -> String {
    format!("{value:?}")
}

/// `snake`: `my-service` → `my_service` (a Rust crate or Python module name).
fn snake(value: &str) -> String {
    value.replace('-', "_")
}

/// `pascal`: `my-service` → `MyService` (a type name).
fn pascal(value: &str) -> String {
    value
        .split(['-', '_', ' '])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// `join(sep)`: the items of a list as text, separated by `sep` (default
/// none).
fn join(items: Vec<Value>, separator: Option<&str>) -> String {
    items
        .iter()
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(separator.unwrap_or(""))
}

/// `one_line`: every run of whitespace, newlines included, becomes one space.
fn one_line(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const fn file(path: &'static str, contents: &'static str) -> TemplateFile {
        TemplateFile {
            path,
            contents: contents.as_bytes(),
            executable: false,
        }
    }

    static TREE: &[TemplateFile] = &[
        file(
            "base/README.md.jinja",
            "# {{ name }}\n{% if system %}\nPart of {{ system }}.\n{% endif %}\nDone.\n",
        ),
        file("base/.github/workflows/ci.yml", "run: ${{ matrix.os }}\n"),
        TemplateFile {
            path: "base/bin/run.sh.jinja",
            contents: b"#!/bin/sh\nexec {{ name | snake }}\n",
            executable: true,
        },
        file(
            "rust/src/{{ name | snake }}/lib.rs.jinja",
            "// {{ description | one_line }}\n",
        ),
        file(
            "rust/Cargo.toml.jinja",
            "name = {{ name | quote }}\ndescription = {{ description | quote }}\n",
        ),
        file("go/main.go.jinja", "package main\n"),
        file("typo/README.md.jinja", "{{ nmae }}"),
        file("escape/{{ path }}", "x"),
        file("quote-none/x.jinja", "{{ system | quote }}"),
    ];

    fn context() -> Json {
        json!({"name": "my-svc", "description": "Says \"hi\"\n  to\tall", "system": null, "path": "../up"})
    }

    fn paths(files: &[RenderedFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn renders_selected_layers_with_templated_paths() {
        let files = render(TREE, &["base", "rust"], &context()).unwrap();
        assert_eq!(
            paths(&files),
            [
                ".github/workflows/ci.yml",
                "Cargo.toml",
                "README.md",
                "bin/run.sh",
                "src/my_svc/lib.rs"
            ]
        );
        let text = |p: &str| files.iter().find(|f| f.path == p).unwrap().text().unwrap();
        // Blocks on their own line leave no blank line; the last newline stays.
        assert_eq!(text("README.md"), "# my-svc\nDone.\n");
        // Files without the suffix are copied, `${{ }}` and all.
        assert_eq!(text(".github/workflows/ci.yml"), "run: ${{ matrix.os }}\n");
        assert_eq!(
            text("Cargo.toml"),
            "name = \"my-svc\"\ndescription = \"Says \\\"hi\\\"\\n  to\\tall\"\n"
        );
        assert_eq!(text("src/my_svc/lib.rs"), "// Says \"hi\" to all\n");
        let run = files.iter().find(|f| f.path == "bin/run.sh").unwrap();
        assert!(run.executable);
        assert_eq!(run.text().unwrap(), "#!/bin/sh\nexec my_svc\n");
        assert!(!files.iter().any(|f| f.path == "main.go"));
    }

    #[test]
    fn an_undefined_variable_fails_naming_it() {
        let err = render(TREE, &["typo"], &context()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("template typo/README.md.jinja: undefined value"),
            "{message}"
        );
        assert!(message.contains("not in the context: nmae"), "{message}");
        assert!(message.contains(":1)"), "names the line: {message}");
    }

    #[test]
    fn quoting_none_fails_instead_of_writing_null() {
        let err = render(TREE, &["quote-none"], &context()).unwrap_err();
        assert!(
            err.to_string().contains("quote: the value is none"),
            "{err}"
        );
    }

    #[test]
    fn a_path_that_leaves_the_tree_is_refused() {
        let err = render(TREE, &["escape"], &context()).unwrap_err();
        assert_eq!(
            err,
            Error::Path {
                template: "escape/{{ path }}",
                path: "../up".into(),
                reason: "has a `.` or `..` segment"
            }
        );
        for (bad, reason) in [
            ("/etc/x", "is absolute"),
            ("a\\b", "contains a backslash"),
            ("a//b", "has an empty segment"),
            ("", "has an empty segment"),
            ("a/./b", "has a `.` or `..` segment"),
            ("a\nb", "contains a control character"),
        ] {
            assert_eq!(check_path(bad), Err(reason), "{bad:?}");
        }
        assert_eq!(check_path(".github/workflows/ci.yml"), Ok(()));
    }

    #[test]
    fn layers_must_exist_and_not_collide() {
        assert_eq!(
            render(TREE, &["base", "cobol"], &context()).unwrap_err(),
            Error::UnknownLayer("cobol".into())
        );
        let err = render(TREE, &["base", "base"], &context()).unwrap_err();
        assert!(matches!(err, Error::Duplicate { .. }), "{err:?}");
    }

    #[test]
    fn filters() {
        assert_eq!(snake("a-b-c"), "a_b_c");
        assert_eq!(pascal("my-plugin_x"), "MyPluginX");
        assert_eq!(one_line(" a \n b\t"), "a b");
        assert_eq!(quote(Value::from("it's")).unwrap(), "\"it's\"");
        assert_eq!(quote(Value::from(3)).unwrap(), "\"3\"");
        assert_eq!(rust_str("a\"\u{8}"), r#""a\"\u{8}""#);
        assert_eq!(
            join(vec![Value::from("a"), Value::from(1)], Some(", ")),
            "a, 1"
        );
        let env = environment();
        let rendered = env
            .render_str(
                "{{ x | lower }} {{ x | upper }} [{{ ' y ' | trim }}] {{ x | replace('B', '-') }} {{ l | join('+') }}",
                minijinja::context! { x => "aBc", l => vec!["p", "q"] },
            )
            .unwrap();
        assert_eq!(rendered, "abc ABC [y] a-c p+q");
    }

    #[test]
    fn json_becomes_template_values() {
        let value = to_value(&json!({"a": [1, -2, 1.5, true, null, "x"], "b": {"c": "d"}}));
        assert_eq!(
            value.to_string(),
            "{'a': [1, -2, 1.5, True, None, 'x'], 'b': {'c': 'd'}}"
        );
    }
}
