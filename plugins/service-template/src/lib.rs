//! Scaffold generator `service-template`: a new service on the golden path.
//!
//! From a name, an owner, a description and a language it generates a
//! README, the `catalog-info.yaml` that registers the service, a minimal HTTP
//! service with a health endpoint (plus its build manifest) and a CI workflow,
//! and returns the catalog entity it describes.

use portolan_sdk::scaffold::{Error, File, GeneratorInfo, Output};
use portolan_sdk::{about, Entity, ScaffoldGenerator};
use serde_json::{json, Value};

/// What the schema's `pattern` says, checked again here because the files'
/// contents depend on it (a name ends up in paths and package names).
const NAME_PATTERN: &str = "^[a-z][a-z0-9-]{0,61}[a-z0-9]$";

const LANGUAGES: [&str; 4] = ["rust", "go", "python", "typescript"];

struct ServiceTemplate;

impl ScaffoldGenerator for ServiceTemplate {
    fn describe() -> GeneratorInfo {
        GeneratorInfo::new(
            about!(
                "Service",
                "A new HTTP service with a health endpoint, a CI workflow and its catalog entry, \
                 in Rust, Go, Python or TypeScript."
            ),
            json!({
                "type": "object",
                "title": "New service",
                "required": ["name", "owner"],
                "properties": {
                    "name": {
                        "type": "string",
                        "title": "Name",
                        "description": "Lower-case letters, digits and dashes, e.g. billing-service.",
                        "pattern": NAME_PATTERN,
                        "maxLength": 63
                    },
                    "owner": {
                        "type": "string",
                        "title": "Owner",
                        "description": "The owning group, e.g. payments or group:default/payments.",
                        "minLength": 1
                    },
                    "description": {
                        "type": "string",
                        "title": "Description",
                        "description": "One sentence: what the service does.",
                        "default": ""
                    },
                    "language": {
                        "type": "string",
                        "title": "Language",
                        "enum": LANGUAGES,
                        "default": "rust"
                    }
                },
                "additionalProperties": false
            }),
        )
        .with_tags(["service", "rust", "go", "python", "typescript"])
    }

    fn generate(parameters: Value) -> Result<Output, Error> {
        let params = Params::read(&parameters)?;
        let entity = params.entity();
        let catalog_info = serde_norway::to_string(&entity.to_descriptor())
            .map_err(|e| Error::Other(format!("cannot write catalog-info.yaml: {e}")))?;

        let mut files = vec![
            File::new("README.md", params.render(README)),
            File::new("catalog-info.yaml", catalog_info),
        ];
        let (sources, workflow): (&[(&str, &str)], &str) = match params.language {
            "rust" => (
                &[("Cargo.toml", RUST_MANIFEST), ("src/main.rs", RUST_MAIN)],
                RUST_CI,
            ),
            "go" => (&[("go.mod", GO_MOD), ("main.go", GO_MAIN)], GO_CI),
            "python" => (
                &[("pyproject.toml", PYTHON_PROJECT), ("app.py", PYTHON_MAIN)],
                PYTHON_CI,
            ),
            _ => (
                &[("package.json", TS_PACKAGE), ("src/index.ts", TS_MAIN)],
                TS_CI,
            ),
        };
        files.extend(
            sources
                .iter()
                .map(|(path, template)| File::new(*path, params.render(template))),
        );
        files.push(File::new(
            ".github/workflows/ci.yml",
            params.render(workflow),
        ));

        portolan_sdk::info!(
            "generated {} files for {} ({})",
            files.len(),
            params.name,
            params.language
        );
        Ok(Output {
            messages: vec![format!(
                "Created {} ({}), owned by {}. Push it and the catalog picks it up from catalog-info.yaml.",
                params.name, params.language, params.owner
            )],
            files,
            entity: Some(entity),
            links: Vec::new(),
        })
    }
}

portolan_sdk::export!(ScaffoldGenerator for ServiceTemplate);

/// The validated parameters.
#[derive(Debug)]
struct Params<'a> {
    name: &'a str,
    owner: &'a str,
    description: &'a str,
    language: &'a str,
}

impl<'a> Params<'a> {
    fn read(parameters: &'a Value) -> Result<Self, Error> {
        let text = |key: &str| parameters.get(key).and_then(Value::as_str).map(str::trim);
        let name = text("name").ok_or_else(|| Error::invalid_parameter("/name", "is required"))?;
        if !valid_name(name) {
            return Err(Error::invalid_parameter(
                "/name",
                format!("`{name}` must be 2-63 lower-case letters, digits and dashes, starting with a letter"),
            ));
        }
        let owner = text("owner")
            .filter(|o| !o.is_empty())
            .ok_or_else(|| Error::invalid_parameter("/owner", "is required"))?;
        let language = text("language").unwrap_or("rust");
        if !LANGUAGES.contains(&language) {
            return Err(Error::invalid_parameter(
                "/language",
                format!("must be one of {}", LANGUAGES.join(", ")),
            ));
        }
        Ok(Params {
            name,
            owner,
            description: text("description").unwrap_or(""),
            language,
        })
    }

    /// The description on one line: it lands in comments and manifests.
    fn one_line(&self) -> String {
        self.description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn entity(&self) -> Entity {
        let mut entity = Entity::new("Component", self.name);
        if !self.description.is_empty() {
            entity.description = Some(self.description.to_owned());
        }
        entity.tags.push(self.language.to_owned());
        entity.set_spec(
            &json!({"type": "service", "lifecycle": "experimental", "owner": self.owner}),
        );
        entity
    }

    fn render(&self, template: &str) -> String {
        let one_line = self.one_line();
        let description = if one_line.is_empty() {
            "A new service."
        } else {
            one_line.as_str()
        };
        template
            .replace("{{name}}", self.name)
            .replace("{{owner}}", self.owner)
            .replace(
                "{{description_quoted}}",
                &Value::from(description).to_string(),
            )
            .replace("{{description}}", description)
            .replace("{{language}}", self.language)
            .replace("{{ident}}", &self.name.replace('-', "_"))
    }
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

const README: &str = "# {{name}}

{{description}}

Owned by `{{owner}}`. Written in {{language}}; generated by Portolan's service template.

## Run it

The service listens on port 8080 (or `$PORT`) and answers `GET /health` with `ok`.
See `.github/workflows/ci.yml` for how it is built and tested.

## Catalog

`catalog-info.yaml` registers this service in the developer portal.
";

const RUST_MANIFEST: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
"#;

const RUST_MAIN: &str = r#"//! {{name}}: {{description}}
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = TcpListener::bind(("0.0.0.0", port.parse().unwrap_or(8080)))?;
    println!("{{name}} listening on :{port}");
    for stream in listener.incoming() {
        let mut stream = stream?;
        let mut request_line = String::new();
        BufReader::new(&stream).read_line(&mut request_line)?;
        let (status, body) = if request_line.starts_with("GET /health ") {
            ("200 OK", "ok")
        } else {
            ("404 Not Found", "not found")
        };
        write!(stream, "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{body}", body.len())?;
    }
    Ok(())
}
"#;

const RUST_CI: &str = "name: ci
on: [push, pull_request]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: cargo fmt --check
      - run: cargo clippy --all-targets -- -D warnings
      - run: cargo test
";

const GO_MOD: &str = "module example.com/{{name}}

go 1.22
";

const GO_MAIN: &str = r#"// {{name}}: {{description}}
package main

import (
	"log"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})
	log.Printf("{{name}} listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
"#;

const GO_CI: &str = "name: ci
on: [push, pull_request]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
        with:
          go-version-file: go.mod
      - run: go vet ./...
      - run: go test ./...
";

const PYTHON_PROJECT: &str = r#"[project]
name = "{{name}}"
version = "0.1.0"
description = {{description_quoted}}
requires-python = ">=3.11"
"#;

const PYTHON_MAIN: &str = r#"# {{name}}: {{description}}
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/health"
        body = b"ok" if ok else b"not found"
        self.send_response(200 if ok else 404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"{{name}} listening on :{port}")
    HTTPServer(("0.0.0.0", port), Handler).serve_forever()
"#;

const PYTHON_CI: &str = "name: ci
on: [push, pull_request]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: \"3.12\"
      - run: python -m compileall -q .
";

const TS_PACKAGE: &str = r#"{
  "name": "{{name}}",
  "version": "0.1.0",
  "private": true,
  "description": {{description_quoted}},
  "scripts": {
    "build": "tsc --outDir dist src/index.ts",
    "start": "node dist/index.js"
  },
  "devDependencies": {
    "@types/node": "^20.0.0",
    "typescript": "^5.4.0"
  }
}
"#;

const TS_MAIN: &str = r#"// {{name}}: {{description}}
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 8080);

createServer((req, res) => {
  const ok = req.method === "GET" && req.url === "/health";
  res.writeHead(ok ? 200 : 404).end(ok ? "ok" : "not found");
}).listen(port, () => console.log(`{{name}} listening on :${port}`));
"#;

const TS_CI: &str = "name: ci
on: [push, pull_request]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
      - run: npm install
      - run: npm run build
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        assert!(valid_name("billing-service"));
        assert!(valid_name("a1"));
        for bad in ["a", "Billing", "1abc", "abc-", "a_b", ""] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let err = Params::read(&json!({"name": "x", "owner": "a"})).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { ref pointer, .. } if pointer == "/name"),
            "{err:?}"
        );
        let err = Params::read(&json!({"name": "ok-name", "owner": "a", "language": "cobol"}))
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { ref pointer, .. } if pointer == "/language"),
            "{err:?}"
        );
    }
}
