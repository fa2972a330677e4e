//! `portolan apply FILE...`: push entity files to a running portal.
//!
//! Every file given goes into **one** `POST /api/v1/entities/batch`, so a
//! run is all or nothing, like the batch itself: one bad entity in any file
//! and nothing is stored. The files are parsed here first, with the same
//! parser the server uses, so that a syntax error is reported with its file
//! before anything is sent, and each entity the server reports by its
//! position in the batch can be named by file and document.
//!
//! Backstage's placeholders (`{$text: ./openapi.yaml}`, `$json`, `$yaml`)
//! are filled in here, from files relative to the descriptor's folder (the
//! working directory for stdin), as Backstage does for a local file: the
//! portal cannot see the user's files. `Location` entities are applied as
//! entities; their targets are not followed (name the files, or let the
//! `catalog-files` source read the whole tree).
//!
//! The body is the file as written when there is one input and it has no
//! placeholders (YAML as `application/yaml`, JSON as `application/json`),
//! so the server reads exactly what the user wrote. Otherwise the parsed
//! entities of every input go as one JSON array; the parser keeps the
//! documents' order, so positions line up either way.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use portolan_catalog::{parse_documents, Document, Format};
use serde::Deserialize;
use serde_json::Value;

use crate::entities::MAX_BATCH_ENTITIES;

/// Where `--url` points when neither it nor `PORTOLAN_URL` is given: the
/// address `portolan serve` listens on by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7700";

/// How long to wait for the portal to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a whole request may take: a 100,000-entity batch is parsed,
/// validated and written in one transaction, which takes seconds, not
/// minutes; past this the portal is stuck and waiting longer helps no one.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// `portolan apply`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    /// Entity files: Backstage descriptors in YAML (one or many documents)
    /// or JSON (an entity, a list, or {"items": [...]}); `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The portal's base URL.
    #[arg(long, env = "PORTOLAN_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// API token with the member or admin role.
    #[arg(long, env = "PORTOLAN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the token from this file instead (surrounding whitespace is
    /// ignored); takes precedence over --token and PORTOLAN_TOKEN.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

/// One input, read and parsed.
struct Input {
    /// How to name it in messages: the path, or `<stdin>`.
    name: String,
    format: Format,
    bytes: Vec<u8>,
    documents: Vec<Document>,
    /// Whether a placeholder was filled in, so `bytes` is no longer what
    /// is sent.
    resolved: bool,
}

/// Where an entity of the batch came from, for messages.
struct Source {
    input: usize,
    /// Its YAML document (0-based; 0 for JSON).
    document: usize,
    /// Its place among the entities of that document, and how many the
    /// document holds (a document may be a list of entities).
    item: usize,
    items: usize,
}

/// The counts a successful batch answers.
#[derive(Debug, Deserialize)]
struct Summary {
    total: u64,
    added: u64,
    updated: u64,
    unchanged: u64,
}

/// The parts of a problem+json body this command shows.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
    errors: Vec<ProblemField>,
    entities: Vec<ProblemEntity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProblemField {
    field: String,
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProblemEntity {
    index: usize,
    #[serde(rename = "ref")]
    entity_ref: Option<String>,
    errors: Vec<ProblemField>,
}

/// Runs `portolan apply`: prints the summary line on success; any failure
/// comes back as one error whose message is ready to print (several lines
/// when the portal refused entities).
pub async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let token = match &args.token_file {
        Some(path) => Some(read_token(path)?),
        None => args.token.clone().filter(|t| !t.trim().is_empty()),
    };
    let endpoint = endpoint(&args.url)?;
    let inputs = read_inputs(&args.files)?;
    let sources = sources(&inputs);
    if sources.is_empty() {
        bail!(
            "nothing to apply: {} hold no entities",
            names(&inputs).join(", ")
        );
    }
    if sources.len() > MAX_BATCH_ENTITIES {
        bail!(
            "{} entities are more than one batch takes ({MAX_BATCH_ENTITIES}); \
             apply the files in several runs (each run is all or nothing on its own)",
            sources.len()
        );
    }
    let (content_type, body) = body(inputs.as_slice())?;

    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("setting up the HTTP client")?;
    let mut request = client
        .post(endpoint.clone())
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    if let Some(token) = &token {
        request = request.bearer_auth(token.trim());
    }
    let response = request
        .send()
        .await
        .map_err(|e| unreachable(&args.url, &e))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unreachable(&args.url, &e))?;

    if status.is_success() {
        let summary: Summary = serde_json::from_slice(&bytes).with_context(|| {
            format!("{endpoint} answered {status} with a body that is not a batch summary")
        })?;
        println!(
            "applied {} entities: {} added, {} updated, {} unchanged",
            summary.total, summary.added, summary.updated, summary.unchanged
        );
        return Ok(());
    }

    let mut message = match serde_json::from_slice::<Problem>(&bytes) {
        Ok(problem) if content_type.contains("json") => {
            render_problem(status, &problem, &inputs, &sources)
        }
        _ => format!(
            "{endpoint} answered {status}: {}",
            excerpt(&String::from_utf8_lossy(&bytes))
        ),
    };
    if status == reqwest::StatusCode::UNAUTHORIZED && token.is_none() {
        message.push_str("\n(no token given: pass --token or --token-file, or set PORTOLAN_TOKEN)");
    }
    nothing_stored(&mut message, status);
    Err(anyhow::Error::msg(message))
}

/// `.../api/v1/entities/batch` under the base URL, which may carry a path
/// prefix (a portal behind a reverse proxy).
fn endpoint(base: &str) -> anyhow::Result<reqwest::Url> {
    let parsed = reqwest::Url::parse(base.trim())
        .with_context(|| format!("--url {base:?} is not a URL such as {DEFAULT_URL}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("--url {base:?}: the portal is reached over http:// or https://");
    }
    let joined = format!(
        "{}/api/v1/entities/batch",
        parsed.as_str().trim_end_matches('/')
    );
    reqwest::Url::parse(&joined).with_context(|| format!("--url {base:?}"))
}

fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token.to_owned())
}

/// Reads and parses every input; the first unreadable or malformed one
/// stops the run before anything is sent.
fn read_inputs(files: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::with_capacity(files.len());
    let mut stdin_read = false;
    for path in files {
        let (name, bytes) = if path.as_os_str() == "-" {
            if std::mem::replace(&mut stdin_read, true) {
                bail!("`-` (stdin) is given more than once");
            }
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read stdin")?;
            ("<stdin>".to_owned(), bytes)
        } else {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            (path.display().to_string(), bytes)
        };
        let format = format_of(path, &bytes);
        let at = |document: usize| match format {
            Format::Yaml => format!("{name}, document {}", document + 1),
            Format::Json => name.clone(),
        };
        let mut documents = parse_documents(&bytes, format)
            .map_err(|e| anyhow::anyhow!("{}: {}; nothing was sent", at(e.document), e.message))?;
        let base = match path.parent() {
            Some(dir) if path.as_os_str() != "-" => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut resolved = false;
        for doc in &mut documents {
            let mut pointer = String::new();
            resolved |= fill_placeholders(&mut doc.value, &base, &mut pointer).map_err(|e| {
                anyhow::anyhow!("{}: {pointer}: {e}; nothing was sent", at(doc.document))
            })?;
        }
        inputs.push(Input {
            name,
            format,
            bytes,
            documents,
            resolved,
        });
    }
    Ok(inputs)
}

/// Replaces each `{$text|$json|$yaml: path}` mapping in `value` by the
/// file's text or parsed value, read relative to `base`; returns whether it
/// replaced any. On error `pointer` says where (a JSON pointer into the
/// entity). The loaded content is not searched again, so a file cannot
/// include itself.
fn fill_placeholders(value: &mut Value, base: &Path, pointer: &mut String) -> anyhow::Result<bool> {
    match value {
        Value::Object(map) => {
            if let Some((key, target)) = map.iter().next().filter(|_| map.len() == 1) {
                if matches!(key.as_str(), "$text" | "$json" | "$yaml") {
                    let key = key.clone();
                    let Value::String(target) = target else {
                        bail!("{key} must name a file as a string");
                    };
                    if target.contains("://") {
                        bail!("{key} {target}: only local files can be read, not URLs");
                    }
                    let file = base.join(target);
                    let text = std::fs::read_to_string(&file).with_context(|| {
                        format!("{key} {target}: cannot read {}", file.display())
                    })?;
                    *value = match key.as_str() {
                        "$json" => serde_json::from_str(&text)
                            .with_context(|| format!("{key} {target}: not valid JSON"))?,
                        "$yaml" => serde_norway::from_str(&text)
                            .with_context(|| format!("{key} {target}: not valid YAML"))?,
                        _ => Value::String(text),
                    };
                    return Ok(true);
                }
            }
            let mut any = false;
            for (key, child) in map.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                any |= fill_placeholders(child, base, pointer)?;
                pointer.truncate(len);
            }
            Ok(any)
        }
        Value::Array(items) => {
            let mut any = false;
            for (i, child) in items.iter_mut().enumerate() {
                let len = pointer.len();
                let _ = write!(pointer, "/{i}");
                any |= fill_placeholders(child, base, pointer)?;
                pointer.truncate(len);
            }
            Ok(any)
        }
        _ => Ok(false),
    }
}

/// JSON for `.json`, YAML for `.yaml`/`.yml`; anything else (stdin
/// included) is JSON if it starts like JSON, else YAML.
fn format_of(path: &Path, bytes: &[u8]) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => Format::Json,
        Some("yaml" | "yml") => Format::Yaml,
        _ => match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'[') => Format::Json,
            _ => Format::Yaml,
        },
    }
}

/// Where each entity of the batch comes from, in batch order.
fn sources(inputs: &[Input]) -> Vec<Source> {
    let mut out = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let docs = &input.documents;
        let mut start = 0;
        while start < docs.len() {
            let document = docs[start].document;
            let items = docs[start..]
                .iter()
                .take_while(|d| d.document == document)
                .count();
            out.extend((0..items).map(|item| Source {
                input: i,
                document,
                item,
                items,
            }));
            start += items;
        }
    }
    out
}

/// The request body and its media type (see the module docs).
fn body(inputs: &[Input]) -> anyhow::Result<(&'static str, Vec<u8>)> {
    if let [only @ Input {
        resolved: false, ..
    }] = inputs
    {
        let media = match only.format {
            Format::Json => "application/json",
            Format::Yaml => "application/yaml",
        };
        return Ok((media, only.bytes.clone()));
    }
    let all: Vec<&Value> = inputs
        .iter()
        .flat_map(|i| i.documents.iter().map(|d| &d.value))
        .collect();
    Ok((
        "application/json",
        serde_json::to_vec(&all).context("encoding the batch")?,
    ))
}

fn names(inputs: &[Input]) -> Vec<String> {
    inputs.iter().map(|i| i.name.clone()).collect()
}

/// `components.yaml document 2`, with `item 3` when the document (or JSON
/// file) holds a list of entities.
fn location(inputs: &[Input], source: &Source) -> String {
    let input = &inputs[source.input];
    let mut out = input.name.clone();
    if input.format == Format::Yaml {
        let _ = write!(out, " document {}", source.document + 1);
    }
    if source.items > 1 {
        let _ = write!(out, " item {}", source.item + 1);
    }
    out
}

/// The portal's problem, then one line per problem of each refused entity,
/// named by file and document.
fn render_problem(
    status: reqwest::StatusCode,
    problem: &Problem,
    inputs: &[Input],
    sources: &[Source],
) -> String {
    let title = problem
        .title
        .clone()
        .or_else(|| status.canonical_reason().map(str::to_owned))
        .unwrap_or_default();
    let mut out = format!("the portal refused the batch ({status}): {title}");
    if let Some(detail) = problem.detail.as_deref().filter(|d| !d.is_empty()) {
        let _ = write!(out, ": {detail}");
    }
    if problem.entities.is_empty() {
        for f in &problem.errors {
            let _ = write!(out, "\n  {}: {}", f.field, f.message);
        }
    }
    for e in &problem.entities {
        let at = match sources.get(e.index) {
            Some(source) => location(inputs, source),
            None => format!("entity #{}", e.index),
        };
        let which = e.entity_ref.as_deref().unwrap_or("no kind or name");
        for f in &e.errors {
            let _ = write!(out, "\n  {at} ({which}): {}: {}", f.field, f.message);
        }
    }
    out
}

/// A batch is all or nothing: say so when the answer means nothing was
/// written, so nobody has to wonder about a half-applied catalog.
fn nothing_stored(message: &mut String, status: reqwest::StatusCode) {
    if status.is_client_error() && !message.contains("nothing was stored") {
        message.push_str("\nnothing was stored");
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 500;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A transport error, named by its root cause (`Connection refused`, a
/// name that does not resolve, a certificate the system does not trust),
/// with the hint a user needs most often.
fn unreachable(url: &str, e: &reqwest::Error) -> anyhow::Error {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    if e.is_connect() {
        anyhow::anyhow!(
            "cannot reach the portal at {url}: {cause} (is `portolan serve` running there? \
             Set --url or PORTOLAN_URL); nothing was stored"
        )
    } else {
        // The batch went out: the portal may have stored it anyway.
        anyhow::anyhow!(
            "no answer from the portal at {url}: {cause}; the batch may or may not be \
             stored: apply it again (unchanged entities are not rewritten)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(name: &str, text: &str) -> Input {
        let bytes = text.as_bytes().to_vec();
        let format = format_of(Path::new(name), &bytes);
        Input {
            name: name.into(),
            format,
            documents: parse_documents(&bytes, format).unwrap(),
            bytes,
            resolved: false,
        }
    }

    #[test]
    fn endpoints_keep_a_path_prefix() {
        assert_eq!(
            endpoint("http://127.0.0.1:7700").unwrap().as_str(),
            "http://127.0.0.1:7700/api/v1/entities/batch"
        );
        assert_eq!(
            endpoint("https://tools.example.com/portal/")
                .unwrap()
                .as_str(),
            "https://tools.example.com/portal/api/v1/entities/batch"
        );
        assert!(endpoint("127.0.0.1:7700").is_err());
        assert!(endpoint("ftp://example.com").is_err());
    }

    #[test]
    fn formats_by_extension_then_by_content() {
        assert_eq!(format_of(Path::new("a.JSON"), b"kind: x"), Format::Json);
        assert_eq!(format_of(Path::new("a.yml"), b"{}"), Format::Yaml);
        assert_eq!(format_of(Path::new("-"), b"  \n[{}]"), Format::Json);
        assert_eq!(format_of(Path::new("-"), b"---\nkind: x"), Format::Yaml);
    }

    #[test]
    fn entities_are_named_by_file_document_and_item() {
        let e = |n: &str| format!("{{apiVersion: v1, kind: Group, metadata: {{name: {n}}}}}");
        let inputs = vec![
            input(
                "a.yaml",
                &format!("{}\n---\n# empty\n---\n[{}, {}]\n", e("a"), e("b"), e("c")),
            ),
            input(
                "b.json",
                r#"{"apiVersion": "v1", "kind": "Group", "metadata": {"name": "d"}}"#,
            ),
        ];
        let all = sources(&inputs);
        let named: Vec<String> = all.iter().map(|s| location(&inputs, s)).collect();
        assert_eq!(
            named,
            [
                "a.yaml document 1",
                "a.yaml document 3 item 1",
                "a.yaml document 3 item 2",
                "b.json"
            ]
        );
        let (media, body) = body(&inputs).unwrap();
        assert_eq!(media, "application/json");
        let sent: Vec<Value> = serde_json::from_slice(&body).unwrap();
        let names: Vec<&str> = sent
            .iter()
            .map(|v| v["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c", "d"]);

        // One input goes as written, with its own media type.
        let (media, body) = super::body(&inputs[..1]).unwrap();
        assert_eq!(media, "application/yaml");
        assert_eq!(body, inputs[0].bytes);
    }

    #[test]
    fn placeholders_are_filled_from_files_beside_the_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("def.yaml"), "openapi: 3.0.0\n").unwrap();
        std::fs::write(dir.path().join("extra.json"), r#"{"a": [1]}"#).unwrap();
        let mut value = json!({"spec": {
            "definition": {"$text": "./def.yaml"},
            "list": [{"$json": "extra.json"}],
            "parsed": {"$yaml": "def.yaml"},
            "plain": {"$text": "def.yaml", "beside": 1}
        }});
        let mut pointer = String::new();
        assert!(fill_placeholders(&mut value, dir.path(), &mut pointer).unwrap());
        assert_eq!(
            value,
            json!({"spec": {
                "definition": "openapi: 3.0.0\n",
                "list": [{"a": [1]}],
                "parsed": {"openapi": "3.0.0"},
                "plain": {"$text": "def.yaml", "beside": 1}
            }})
        );
        let mut none = json!({"spec": {"type": "service"}});
        assert!(!fill_placeholders(&mut none, dir.path(), &mut pointer).unwrap());

        for (target, needle) in [
            ("missing.yaml", "missing.yaml"),
            ("https://example.com/x", "not URLs"),
        ] {
            let mut bad = json!({"spec": {"definition": {"$text": target}}});
            let mut pointer = String::new();
            let err = fill_placeholders(&mut bad, dir.path(), &mut pointer).unwrap_err();
            assert_eq!(pointer, "/spec/definition");
            assert!(format!("{err:#}").contains(needle), "{err:#}");
        }
    }

    #[test]
    fn a_refusal_names_file_document_ref_and_field() {
        let inputs = vec![input(
            "c.yaml",
            "{apiVersion: v1, kind: Group, metadata: {name: a}}\n---\n{kind: Component}\n",
        )];
        let problem: Problem = serde_json::from_value(json!({
            "title": "Invalid input",
            "detail": "1 of the batch's entities are invalid and nothing was stored",
            "errors": [{"field": "/1/spec/owner", "message": "is required"}],
            "entities": [{"index": 1, "document": 1, "ref": "component:default/x",
                          "errors": [{"field": "/spec/owner", "message": "is required"}]}]
        }))
        .unwrap();
        let mut text = render_problem(
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            &problem,
            &inputs,
            &sources(&inputs),
        );
        nothing_stored(&mut text, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            text,
            "the portal refused the batch (422 Unprocessable Entity): Invalid input: \
             1 of the batch's entities are invalid and nothing was stored\n  \
             c.yaml document 2 (component:default/x): /spec/owner: is required"
        );
    }
}
