//! Catalog source `catalog-files`: reads Backstage descriptor files from a
//! directory the operator granted, e.g. a Git checkout of `catalog-info.yaml`
//! files.
//!
//! Every `*.yaml` / `*.yml` file under the directory (default `/catalog`,
//! setting `directory`) is read, hidden files and folders skipped, in path
//! order; each file may hold one or many YAML documents, each one Backstage
//! descriptor (`apiVersion`, `kind`, `metadata`, `spec`, `relations`). All of
//! them come back as one page. A document that is not valid YAML or not a
//! descriptor fails the sync with `invalid-data` naming the file and the
//! document, so a typo never silently drops entities from the catalog.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use portolan_sdk::source::{Error, SourceInfo, SyncPage, SyncRequest};
use portolan_sdk::{about, CatalogSource, Entity};
use serde::Deserialize;
use serde_json::{json, Value};

/// Where the sidecar's `[[dirs]]` grant usually puts the catalog.
const DEFAULT_DIRECTORY: &str = "/catalog";

struct CatalogFiles;

impl CatalogSource for CatalogFiles {
    fn describe() -> SourceInfo {
        SourceInfo::new(about!(
            "Catalog files",
            "Reads Backstage descriptor files (catalog-info.yaml and any other *.yaml) from a \
             directory granted to the plugin, such as a Git checkout."
        ))
        .with_settings_schema(json!({
            "type": "object",
            "properties": {
                "directory": {
                    "type": "string",
                    "default": DEFAULT_DIRECTORY,
                    "description": "The directory to read, as the plugin sees it (the `guest` path of a [[dirs]] grant)."
                }
            }
        }))
    }

    fn sync(_request: SyncRequest) -> Result<SyncPage, Error> {
        let directory =
            portolan_sdk::setting("directory").unwrap_or_else(|| DEFAULT_DIRECTORY.to_owned());
        let files = yaml_files(Path::new(&directory))?;
        let mut entities = Vec::new();
        // Which file and document each entity came from, to name both sides of a clash.
        let mut seen: HashMap<String, String> = HashMap::new();
        for file in &files {
            let name = file.display().to_string();
            let text = fs::read_to_string(file)
                .map_err(|e| Error::Unreachable(format!("{name}: cannot read: {e}")))?;
            for (document, entity) in parse_documents(&name, &text)? {
                let origin = format!("{name} document {document}");
                let key = entity.reference().to_lowercase();
                if let Some(first) = seen.insert(key, origin.clone()) {
                    return Err(Error::InvalidData(format!(
                        "{origin}: {} is already defined in {first}",
                        entity.reference()
                    )));
                }
                entities.push(entity);
            }
        }
        portolan_sdk::info!(
            "read {} entities from {} files under {directory}",
            entities.len(),
            files.len()
        );
        Ok(SyncPage::last(entities))
    }
}

portolan_sdk::export!(CatalogSource for CatalogFiles);

/// Every YAML file under `root`, in path order, hidden entries skipped.
fn yaml_files(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| {
            if dir == root {
                Error::Misconfigured(format!(
                    "cannot read directory {}: {e} (grant it with a [[dirs]] entry whose guest path is {0})",
                    root.display()
                ))
            } else {
                Error::Unreachable(format!("cannot read directory {}: {e}", dir.display()))
            }
        })?;
        for entry in entries {
            let entry = entry
                .map_err(|e| Error::Unreachable(format!("cannot list {}: {e}", dir.display())))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let file_type = entry
                .file_type()
                .map_err(|e| Error::Unreachable(format!("cannot stat {}: {e}", path.display())))?;
            if file_type.is_dir() {
                pending.push(path);
            } else if is_yaml(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// The entities of one file with their 1-based document numbers; empty
/// documents (a trailing `---`) are skipped.
fn parse_documents(name: &str, text: &str) -> Result<Vec<(usize, Entity)>, Error> {
    let mut entities = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let invalid =
            |reason: String| Error::InvalidData(format!("{name} document {number}: {reason}"));
        let value =
            Value::deserialize(document).map_err(|e| invalid(format!("not valid YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let entity = Entity::from_descriptor(&value).map_err(|e| invalid(e.to_string()))?;
        entities.push((number, entity));
    }
    Ok(entities)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let entities = parse_documents("people.yaml", text).unwrap();
        assert_eq!(entities.len(), 2);
        assert_eq!(entities[1].0, 2);
        assert_eq!(entities[1].1.reference(), "User:default/ada");
        assert_eq!(
            entities[1].1.annotation("example.com/employee-id"),
            Some("42")
        );
        assert_eq!(entities[1].1.spec()["memberOf"][0], "team-a");
    }

    #[test]
    fn errors_name_file_and_document() {
        let text = "apiVersion: v1\nkind: Group\nmetadata: {name: a}\n---\nkind: [unclosed\n";
        let err = parse_documents("teams.yaml", text).unwrap_err();
        let Error::InvalidData(message) = err else {
            panic!("{err:?}")
        };
        assert!(
            message.starts_with("teams.yaml document 2: not valid YAML"),
            "{message}"
        );

        let text = "apiVersion: v1\nkind: Group\nmetadata: {title: no name}\n";
        let err = parse_documents("teams.yaml", text).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidData("teams.yaml document 1: `metadata.name` is missing".into())
        );
    }
}
