//! Reads a catalog the way Backstage does: from a root descriptor, following
//! `kind: Location` entities to more files, resolving placeholders.
//!
//! Files are read breadth-first in the order their Locations name them; a
//! file reached twice (two Locations, a cycle, a glob that overlaps a
//! literal target) is read once. Every entity is handed to a sink together
//! with the file and document it came from, so that the caller decides what
//! to keep (one page of them) without holding the whole catalog.
//!
//! Everything that is wrong fails the read, naming the file, the document
//! and what is wrong: a sync that skipped a broken file would make the host
//! delete that file's entities as orphans.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io;
use std::path::Path;

use portolan_sdk::source::Error;
use portolan_sdk::Entity;
use serde::Deserialize;
use serde_json::Value;

use crate::path::{CatalogPath, PathError};
use crate::placeholder::{self, Placeholder};

/// Largest file read, descriptor or placeholder. A bigger file is almost
/// certainly not a descriptor or an API definition (a build artefact checked
/// in by mistake), and reading it would spend the call's memory cap.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// What a whole read saw, besides the entities.
#[derive(Debug, Default)]
pub struct Summary {
    /// How many descriptor files were read.
    pub files: usize,
    /// A hash of every file read (path and bytes, in reading order), so that
    /// the pages of one sync can tell that the checkout changed under them.
    pub fingerprint: u64,
    /// Things worth a log line that are not errors (a file reached twice, a
    /// glob that matched nothing).
    pub notes: Vec<String>,
}

/// Reads the catalog below `root` (the directory as the plugin sees it)
/// starting from `start` (a path relative to `root`, possibly a glob), and
/// hands each entity with its origin (`FILE document N`) to `sink`.
pub fn read(
    root: &Path,
    start: &str,
    sink: &mut dyn FnMut(Entity, &str) -> Result<(), Error>,
) -> Result<Summary, Error> {
    let shown = root.display().to_string();
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::Misconfigured(format!(
                "{shown} is not a directory (setting `directory`)"
            )))
        }
        Err(e) => {
            return Err(Error::Misconfigured(format!(
                "cannot read directory {shown}: {e} (grant it with a [[dirs]] entry whose guest path is {shown})"
            )))
        }
    }
    // The setting may repeat the directory (`/catalog/catalog-info.yaml`).
    let relative = start
        .strip_prefix(shown.trim_end_matches('/'))
        .filter(|rest| rest.starts_with('/'))
        .map(|rest| rest.trim_start_matches('/'))
        .unwrap_or(start);
    let first = CatalogPath::root()
        .resolve(relative)
        .map_err(|e| Error::Misconfigured(format!("setting `root` {start:?} {e}")))?;
    let mut reader = Reader {
        root,
        shown,
        visited: HashSet::new(),
        queue: VecDeque::new(),
        texts: HashMap::new(),
        summary: Summary {
            fingerprint: FNV_OFFSET,
            ..Summary::default()
        },
    };
    let starts = reader.expand(&first).map_err(|e| {
        Error::Unreachable(format!("cannot list {}: {e}", first.display(&reader.shown)))
    })?;
    if starts.is_empty() {
        return Err(Error::Misconfigured(format!(
            "setting `root` {start:?} matches no file in {}",
            reader.shown
        )));
    }
    for path in starts {
        reader.queue.push_back(Pending {
            path,
            asked_by: None,
            optional: false,
        });
    }
    while let Some(pending) = reader.queue.pop_front() {
        reader.read_file(pending, sink)?;
    }
    Ok(reader.summary)
}

/// A descriptor file waiting to be read.
struct Pending {
    path: CatalogPath,
    /// The Location (and its target as written) that named it; `None` for
    /// the root descriptor.
    asked_by: Option<String>,
    /// The Location said `presence: optional`: a missing file is no error.
    optional: bool,
}

struct Reader<'a> {
    root: &'a Path,
    /// The root as shown in messages, e.g. `/catalog`.
    shown: String,
    visited: HashSet<CatalogPath>,
    queue: VecDeque<Pending>,
    /// Placeholder files already read, by path: several entities often share
    /// one definition file.
    texts: HashMap<CatalogPath, String>,
    summary: Summary,
}

impl Reader<'_> {
    fn expand(&self, path: &CatalogPath) -> io::Result<Vec<CatalogPath>> {
        path.expand(self.root)
    }

    fn read_file(
        &mut self,
        pending: Pending,
        sink: &mut dyn FnMut(Entity, &str) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let file = pending.path.display(&self.shown);
        if !self.visited.insert(pending.path.clone()) {
            if let Some(by) = &pending.asked_by {
                self.summary
                    .notes
                    .push(format!("{by}: {file} was already read; read once"));
            }
            return Ok(());
        }
        let text = match self.read_text(&pending.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return match (&pending.asked_by, pending.optional) {
                    (Some(by), true) => {
                        self.summary.notes.push(format!(
                            "{by}: {file} does not exist (presence: optional, skipped)"
                        ));
                        Ok(())
                    }
                    (Some(by), false) => {
                        Err(Error::InvalidData(format!("{by}: {file} does not exist")))
                    }
                    (None, _) => Err(Error::Misconfigured(format!(
                        "the root descriptor {file} does not exist (setting `root`)"
                    ))),
                };
            }
            Err(e) => {
                let by = pending
                    .asked_by
                    .as_deref()
                    .map(|by| format!(" (named by {by})"))
                    .unwrap_or_default();
                return Err(read_error(&file, &e, &by));
            }
        };
        self.summary.files += 1;
        let folder = pending.path.parent();
        for (number, mut value) in parse_documents(&file, &text)? {
            let origin = format!("{file} document {number}");
            placeholder::resolve(&mut value, &mut |kind, written| {
                self.load(&folder, kind, written)
            })
            .map_err(|e| {
                let field = if e.field.is_empty() {
                    String::new()
                } else {
                    format!("`{}`: ", e.field)
                };
                Error::InvalidData(format!("{origin}: {field}{}", e.reason))
            })?;
            let entity = Entity::from_descriptor(&value)
                .map_err(|e| Error::InvalidData(format!("{origin}: {e}")))?;
            if entity.kind.eq_ignore_ascii_case("location") {
                self.follow(&value, &entity, &folder, &origin)?;
            }
            sink(entity, &origin)?;
        }
        Ok(())
    }

    /// Queues the files a Location names.
    fn follow(
        &mut self,
        value: &Value,
        entity: &Entity,
        folder: &CatalogPath,
        origin: &str,
    ) -> Result<(), Error> {
        let location = format!("{origin}: Location {}", entity.reference());
        let invalid = |what: String| Error::InvalidData(format!("{location}: {what}"));
        let spec = value.get("spec").unwrap_or(&Value::Null);
        let string = |key: &str| match spec.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(invalid(format!("`spec.{key}` is not a string"))),
        };
        // `url` Locations whose targets are relative name files of the same
        // checkout, which is what a Git-based catalog usually writes; their
        // absolute URLs are refused below, target by target.
        match string("type")? {
            None | Some("file" | "url") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "type `{other}` is not supported; catalog-files follows only `file` \
                     (and relative `url`) targets inside {}",
                    self.shown
                )))
            }
        }
        let optional = string("presence")? == Some("optional");
        let mut targets: Vec<&str> = string("target")?.into_iter().collect();
        match spec.get("targets") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let target = item
                        .as_str()
                        .ok_or_else(|| invalid(format!("`spec.targets[{i}]` is not a string")))?;
                    targets.push(target);
                }
            }
            Some(_) => return Err(invalid("`spec.targets` is not a list".into())),
        }
        if targets.is_empty() {
            self.summary
                .notes
                .push(format!("{location}: names no target"));
        }
        for target in targets {
            let path = folder.resolve(target).map_err(|e| match e {
                PathError::Remote => invalid(format!(
                    "target {target:?} is a remote URL; catalog-files reads only files inside {} \
                     (write the target relative to this file, or sync that repository with a \
                     source of its own)",
                    self.shown
                )),
                e => invalid(format!("target {target:?} {e}")),
            })?;
            let paths = self.expand(&path).map_err(|e| {
                Error::Unreachable(format!(
                    "{location}: target {target:?}: cannot list {}: {e}",
                    path.display(&self.shown)
                ))
            })?;
            if paths.is_empty() {
                self.summary
                    .notes
                    .push(format!("{location}: target {target:?} matches no file"));
            }
            for path in paths {
                self.queue.push_back(Pending {
                    path,
                    asked_by: Some(format!("{location}: target {target:?}")),
                    optional,
                });
            }
        }
        Ok(())
    }

    /// The replacement for one placeholder in a descriptor in `folder`.
    fn load(
        &mut self,
        folder: &CatalogPath,
        kind: Placeholder,
        written: &str,
    ) -> Result<Value, String> {
        let path = folder.resolve(written).map_err(|e| e.to_string())?;
        if !self.texts.contains_key(&path) {
            let file = path.display(&self.shown);
            let text = self.read_text(&path).map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    format!("{file} does not exist")
                } else {
                    read_error(&file, &e, "").to_string()
                }
            })?;
            self.texts.insert(path.clone(), text);
        }
        placeholder::parse(kind, &self.texts[&path])
    }

    /// Reads a file as text and adds it to the fingerprint.
    fn read_text(&mut self, path: &CatalogPath) -> io::Result<String> {
        let on_disk = path.on_disk(self.root);
        let size = fs::metadata(&on_disk)?.len();
        if size > MAX_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "{size} bytes; at most {} MiB are read",
                    MAX_FILE_BYTES / (1024 * 1024)
                ),
            ));
        }
        let text = fs::read_to_string(on_disk)?;
        let fingerprint = &mut self.summary.fingerprint;
        fnv(fingerprint, path.display("").as_bytes());
        fnv(fingerprint, &[0]);
        fnv(fingerprint, text.as_bytes());
        fnv(fingerprint, &[0]);
        Ok(text)
    }
}

fn read_error(file: &str, e: &io::Error, by: &str) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData => Error::InvalidData(format!("{file}{by}: is not UTF-8 text")),
        io::ErrorKind::FileTooLarge => Error::InvalidData(format!("{file}{by}: too large: {e}")),
        _ => Error::Unreachable(format!("{file}{by}: cannot read: {e}")),
    }
}

/// The documents of one file with their 1-based numbers; empty documents (a
/// trailing `---`) are skipped. A YAML error names the document and, from
/// the parser, the line and column in the file.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<(usize, Value)>, Error> {
    let mut documents = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value = Value::deserialize(document).map_err(|e| {
            Error::InvalidData(format!("{file} document {number}: not valid YAML: {e}"))
        })?;
        if !value.is_null() {
            documents.push((number, value));
        }
    }
    Ok(documents)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// FNV-1a: small, stable across builds and platforms, and enough to notice
/// that a file changed between two pages (not a defence against anyone).
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= u64::from(b);
        *hash = hash.wrapping_mul(FNV_PRIME);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn doc(kind: &str, name: &str, spec: &str) -> String {
        format!("apiVersion: backstage.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}")
    }

    fn location(name: &str, targets: &[&str]) -> String {
        let mut spec = "  type: file\n  targets:\n".to_owned();
        for t in targets {
            spec.push_str(&format!("    - {t}\n"));
        }
        doc("Location", name, &spec)
    }

    fn group(name: &str) -> String {
        doc("Group", name, "  type: team\n  children: []\n")
    }

    /// Every entity's reference with its origin, relative to the test dir.
    fn read_all(dir: &TestDir, start: &str) -> Result<(Vec<(String, String)>, Summary), Error> {
        let mut out = Vec::new();
        let root = dir.path().display().to_string();
        let summary = read(dir.path(), start, &mut |entity, origin| {
            out.push((entity.reference(), origin.replace(&root, "")));
            Ok(())
        })?;
        Ok((out, summary))
    }

    /// The message of a failed read, with the test dir's path cut out.
    fn failure(dir: &TestDir, start: &str) -> String {
        let message = match read_all(dir, start).unwrap_err() {
            Error::InvalidData(m) | Error::Misconfigured(m) | Error::Unreachable(m) => m,
            other => panic!("{other:?}"),
        };
        message.replace(&dir.path().display().to_string(), "")
    }

    #[test]
    fn locations_are_followed_and_emitted() {
        let dir = TestDir::new();
        dir.write(
            "catalog-info.yaml",
            &format!(
                "{}---\n{}",
                doc("System", "shop", "  owner: team-a\n"),
                location(
                    "root",
                    &["./org.yaml", "teams/*/catalog-info.yaml", "missing-ok.yaml"]
                )
                .replace("type: file", "type: file\n  presence: optional")
            ),
        );
        dir.write("org.yaml", &group("team-a"));
        dir.write(
            "teams/b/catalog-info.yaml",
            &format!(
                "{}---\n{}",
                group("team-b"),
                // Back to the root (a cycle) and to a file already read.
                location(
                    "team-b-more",
                    &["../../catalog-info.yaml", "../../org.yaml", "./more.yaml"]
                )
            ),
        );
        dir.write("teams/b/more.yaml", &group("team-b-more"));
        dir.write("teams/c/catalog-info.yaml", &group("team-c"));
        dir.write("teams/c/unnamed.yaml", &group("never-read"));

        let (entities, summary) = read_all(&dir, "catalog-info.yaml").unwrap();
        let refs: Vec<&str> = entities.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(
            refs,
            [
                "System:default/shop",
                "Location:default/root",
                "Group:default/team-a",
                "Group:default/team-b",
                "Location:default/team-b-more",
                "Group:default/team-c",
                "Group:default/team-b-more",
            ]
        );
        assert_eq!(entities[4].1, "/teams/b/catalog-info.yaml document 2");
        assert_eq!(summary.files, 5);
        let notes = summary.notes.join("\n");
        assert!(
            notes.contains("missing-ok.yaml does not exist (presence: optional"),
            "{notes}"
        );
        assert!(
            notes.contains("catalog-info.yaml was already read; read once"),
            "{notes}"
        );

        // Same files, same fingerprint; one byte changed, another.
        let (_, again) = read_all(&dir, "catalog-info.yaml").unwrap();
        assert_eq!(again.fingerprint, summary.fingerprint);
        dir.write("teams/b/more.yaml", &group("team-b-extra"));
        let (_, changed) = read_all(&dir, "catalog-info.yaml").unwrap();
        assert_ne!(changed.fingerprint, summary.fingerprint);

        // A glob as the root reads every match once.
        let (entities, _) = read_all(&dir, "**/catalog-info.yaml").unwrap();
        assert_eq!(entities.len(), 7);
    }

    #[test]
    fn missing_and_escaping_targets_fail_naming_the_location() {
        let dir = TestDir::new();
        dir.write(
            "catalog-info.yaml",
            &location("root", &["./sub/catalog-info.yaml"]),
        );
        dir.write(
            "sub/catalog-info.yaml",
            &location("sub", &["../../outside.yaml"]),
        );
        let err = failure(&dir, "catalog-info.yaml");
        assert_eq!(
            err,
            "/sub/catalog-info.yaml document 1: Location Location:default/sub: \
             target \"../../outside.yaml\" leads outside the catalog directory"
        );

        dir.write("sub/catalog-info.yaml", &location("sub", &["/etc/passwd"]));
        let err = failure(&dir, "catalog-info.yaml");
        assert!(
            err.contains("target \"/etc/passwd\" is an absolute path"),
            "{err}"
        );

        dir.write("sub/catalog-info.yaml", &location("sub", &["./gone.yaml"]));
        let err = failure(&dir, "catalog-info.yaml");
        assert!(
            err.starts_with("/sub/catalog-info.yaml document 1: Location Location:default/sub: target \"./gone.yaml\": ")
                && err.ends_with("/sub/gone.yaml does not exist"),
            "{err}"
        );

        dir.write(
            "sub/catalog-info.yaml",
            &location(
                "sub",
                &["https://github.com/acme/x/blob/main/catalog-info.yaml"],
            ),
        );
        let err = failure(&dir, "catalog-info.yaml");
        assert!(err.contains("is a remote URL"), "{err}");

        dir.write(
            "sub/catalog-info.yaml",
            &location("sub", &[]).replace("type: file", "type: github-discovery"),
        );
        let err = failure(&dir, "catalog-info.yaml");
        assert!(
            err.contains("type `github-discovery` is not supported"),
            "{err}"
        );

        let err = read_all(&dir, "nope.yaml").unwrap_err();
        assert!(
            matches!(err, Error::Misconfigured(ref m) if m.contains("root descriptor")),
            "{err:?}"
        );
        let err = read_all(&dir, "../x.yaml").unwrap_err();
        assert!(matches!(err, Error::Misconfigured(_)), "{err:?}");
    }

    #[test]
    fn placeholders_resolve_relative_to_the_descriptor() {
        let dir = TestDir::new();
        dir.write(
            "catalog-info.yaml",
            &location("root", &["apis/payments.yaml"]),
        );
        let api = |definition: &str| {
            doc(
                "API",
                "payments-api",
                &format!("  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition:\n    $text: {definition}\n  schema:\n    $json: ../schemas/payment.json\n"),
            )
        };
        dir.write("apis/payments.yaml", &api("./payments-openapi.yaml"));
        dir.write(
            "apis/payments-openapi.yaml",
            "openapi: 3.0.3\ninfo:\n  title: Payments\n",
        );
        dir.write("schemas/payment.json", "{\"type\": \"object\"}");
        let mut definition = None;
        read(dir.path(), "catalog-info.yaml", &mut |entity, _| {
            if entity.kind == "API" {
                definition = Some(entity.spec());
            }
            Ok(())
        })
        .unwrap();
        let spec = definition.expect("the API was read");
        assert_eq!(
            spec["definition"],
            "openapi: 3.0.3\ninfo:\n  title: Payments\n"
        );
        assert_eq!(spec["schema"]["type"], "object");

        dir.write("apis/payments.yaml", &api("../../../etc/passwd"));
        let err = failure(&dir, "catalog-info.yaml");
        assert_eq!(
            err,
            "/apis/payments.yaml document 1: `spec.definition`: $text ../../../etc/passwd: \
             leads outside the catalog directory"
        );
        dir.write("apis/payments.yaml", &api("./nope.yaml"));
        let err = failure(&dir, "catalog-info.yaml");
        assert_eq!(
            err,
            "/apis/payments.yaml document 1: `spec.definition`: $text ./nope.yaml: \
             /apis/nope.yaml does not exist"
        );
    }

    #[test]
    fn errors_name_file_document_and_line() {
        let dir = TestDir::new();
        dir.write("catalog-info.yaml", &location("root", &["teams.yaml"]));
        dir.write(
            "teams.yaml",
            &format!("{}---\nkind: [unclosed\n", group("a")),
        );
        let err = failure(&dir, "catalog-info.yaml");
        assert!(
            err.starts_with("/teams.yaml document 2: not valid YAML") && err.contains("line 9"),
            "{err}"
        );

        dir.write(
            "teams.yaml",
            "apiVersion: v1\nkind: Group\nmetadata: {title: no name}\n",
        );
        let err = failure(&dir, "catalog-info.yaml");
        assert_eq!(err, "/teams.yaml document 1: `metadata.name` is missing");
    }

    #[test]
    fn reads_every_document_of_a_file() {
        let text = "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec:
  type: team
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: ada
  annotations:
    example.com/employee-id: 42
spec:
  memberOf: [team-a]
---
";
        let documents = parse_documents("people.yaml", text).unwrap();
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[1].0, 2);
        let user = Entity::from_descriptor(&documents[1].1).unwrap();
        assert_eq!(user.reference(), "User:default/ada");
        assert_eq!(user.annotation("example.com/employee-id"), Some("42"));
    }
}
