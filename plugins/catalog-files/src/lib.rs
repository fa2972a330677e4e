//! Catalog source `catalog-files`: reads a Backstage catalog from a directory
//! the operator granted, e.g. a Git checkout of `catalog-info.yaml` files,
//! the way Backstage reads it.
//!
//! - The sync starts from the root descriptor (setting `root`, default
//!   `catalog-info.yaml`) in the directory (setting `directory`, default
//!   `/catalog`). Each file may hold many YAML documents, each one Backstage
//!   descriptor.
//! - `kind: Location` entities lead to more files through `spec.target` and
//!   `spec.targets`, relative to the file that declares them; simple globs
//!   (`./components/*.yaml`, `teams/**/catalog-info.yaml`) work. Locations
//!   are entities of the catalog too. A file is read once however many
//!   Locations name it, so cycles end.
//! - `{$text: path}`, `{$json: path}` and `{$yaml: path}` anywhere in a
//!   descriptor are replaced by that file's text or parsed value.
//! - No path may be absolute, a URL, or lead outside the directory. Remote
//!   Location targets (`https://...`) are refused rather than skipped: a
//!   catalog that silently lost part of itself would look complete. A `type:
//!   url` Location whose targets are relative paths is read from the
//!   checkout, which is how Git-hosted Backstage catalogs usually write them.
//!
//! Anything wrong (unreadable file, bad YAML, a descriptor that is not one,
//! a bad path, an entity defined twice) fails the whole sync with an error
//! naming the file, the document and, where the parser knows it, the line.
//! The host then keeps the last good data; skipping the file instead would
//! make the host delete its entities as orphans.
//!
//! Modules: [`path`] (normalisation, escape refusal, globs), [`placeholder`]
//! (`$text`/`$json`/`$yaml`), [`reader`] (Location following).

mod path;
mod placeholder;
mod reader;
#[cfg(test)]
mod testdir;

use std::collections::HashMap;
use std::path::Path;

use portolan_sdk::source::{Error, SourceInfo, SyncPage, SyncRequest};
use portolan_sdk::{about, CatalogSource, Entity};
use serde_json::json;

/// Where the sidecar's `[[dirs]]` grant usually puts the catalog.
const DEFAULT_DIRECTORY: &str = "/catalog";

/// The descriptor a sync starts from, relative to the directory.
const DEFAULT_ROOT: &str = "catalog-info.yaml";

/// Entities per page unless the `page_size` setting says otherwise.
const DEFAULT_PAGE_SIZE: usize = 500;

/// Largest `page_size` accepted: the page is built in the plugin's memory
/// and copied to the host in one piece.
const MAX_PAGE_SIZE: usize = 10_000;

struct CatalogFiles;

impl CatalogSource for CatalogFiles {
    fn describe() -> SourceInfo {
        SourceInfo::new(about!(
            "Catalog files",
            "Reads a Backstage catalog from a directory granted to the plugin, such as a Git \
             checkout: the root catalog-info.yaml, the files its Locations name, and the \
             $text/$json/$yaml files they refer to."
        ))
        .with_settings_schema(json!({
            "type": "object",
            "properties": {
                "directory": {
                    "type": "string",
                    "default": DEFAULT_DIRECTORY,
                    "description": "The directory to read, as the plugin sees it (the `guest` path of a [[dirs]] grant). Nothing outside it is read."
                },
                "root": {
                    "type": "string",
                    "default": DEFAULT_ROOT,
                    "description": "The descriptor to start from, relative to the directory. May be a glob such as `**/catalog-info.yaml`."
                },
                "page_size": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_PAGE_SIZE,
                    "default": DEFAULT_PAGE_SIZE,
                    "description": "Entities per page of a sync."
                }
            }
        }))
    }

    fn sync(request: SyncRequest) -> Result<SyncPage, Error> {
        let directory =
            portolan_sdk::setting("directory").unwrap_or_else(|| DEFAULT_DIRECTORY.to_owned());
        let root = portolan_sdk::setting("root").unwrap_or_else(|| DEFAULT_ROOT.to_owned());
        let page_size = match portolan_sdk::setting("page_size") {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    Error::Misconfigured(format!(
                        "setting `page_size` is {text:?}; expected a whole number from 1 to {MAX_PAGE_SIZE}"
                    ))
                })?,
        };
        let cursor = request.cursor.as_deref().map(Cursor::parse).transpose()?;
        let page = read_page(
            Path::new(&directory),
            &root,
            cursor.as_ref().map_or(0, |c| c.offset),
            page_size,
        )?;
        for note in &page.notes {
            portolan_sdk::info!("{note}");
        }
        if let Some(cursor) = &cursor {
            if cursor.fingerprint != page.fingerprint {
                return Err(Error::Other(format!(
                    "the files under {directory} changed during the sync (between pages); \
                     the next sync reads them afresh"
                )));
            }
        }
        let next_cursor = (page.next_offset < page.total).then(|| {
            Cursor {
                offset: page.next_offset,
                fingerprint: page.fingerprint,
            }
            .to_string()
        });
        portolan_sdk::info!(
            "read {} entities from {} files under {directory}; this page has {} from #{}",
            page.total,
            page.files,
            page.entities.len(),
            page.next_offset - page.entities.len()
        );
        Ok(SyncPage {
            entities: page.entities,
            next_cursor,
            total_hint: Some(page.total as u64),
        })
    }
}

portolan_sdk::export!(CatalogSource for CatalogFiles);

/// Where the next page starts, and which state of the files the sync is
/// reading.
///
/// Every call runs in a fresh instance, so each page reads the whole catalog
/// again and keeps only its slice. That costs a re-read per page, and buys
/// bounded memory and host-side progress for a large catalog. The
/// fingerprint makes the slices safe: if a file changed between two pages
/// (a `git pull` mid-sync), offsets would shift and an entity could land on
/// no page at all, which the host would read as deleted; instead the sync
/// fails and the host keeps its data until the next one.
#[derive(Debug, PartialEq, Eq)]
struct Cursor {
    offset: usize,
    fingerprint: u64,
}

impl Cursor {
    fn parse(text: &str) -> Result<Cursor, Error> {
        let invalid = || Error::Other(format!("cursor {text:?} was not made by this plugin"));
        let (offset, fingerprint) = text.split_once(':').ok_or_else(invalid)?;
        Ok(Cursor {
            offset: offset.parse().map_err(|_| invalid())?,
            fingerprint: u64::from_str_radix(fingerprint, 16).map_err(|_| invalid())?,
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{:016x}", self.offset, self.fingerprint)
    }
}

/// One page of the catalog and what the whole read saw.
#[derive(Debug)]
struct Page {
    entities: Vec<Entity>,
    /// Where the page after this one starts.
    next_offset: usize,
    /// Entities in the whole catalog.
    total: usize,
    files: usize,
    fingerprint: u64,
    notes: Vec<String>,
}

/// Reads the whole catalog and keeps entities `offset..offset + limit`.
fn read_page(directory: &Path, root: &str, offset: usize, limit: usize) -> Result<Page, Error> {
    let mut entities = Vec::new();
    let mut total = 0;
    // Where each entity was defined, to name both sides of a clash.
    let mut seen: HashMap<String, String> = HashMap::new();
    let summary = reader::read(directory, root, &mut |entity, origin| {
        let key = entity.reference().to_lowercase();
        if let Some(first) = seen.insert(key, origin.to_owned()) {
            return Err(Error::InvalidData(format!(
                "{origin}: {} is already defined in {first}",
                entity.reference()
            )));
        }
        if (offset..offset.saturating_add(limit)).contains(&total) {
            entities.push(entity);
        }
        total += 1;
        Ok(())
    })?;
    Ok(Page {
        next_offset: offset + entities.len(),
        entities,
        total,
        files: summary.files,
        fingerprint: summary.fingerprint,
        notes: summary.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn group(name: &str) -> String {
        format!("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {name}\nspec:\n  type: team\n  children: []\n---\n")
    }

    #[test]
    fn pages_cover_the_catalog_once() {
        let dir = TestDir::new();
        dir.write(
            "catalog-info.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: teams\nspec:\n  targets: [./teams/*.yaml]\n",
        );
        for file in 0..3 {
            let text: String = (0..4).map(|i| group(&format!("team-{file}-{i}"))).collect();
            dir.write(&format!("teams/{file}.yaml"), &text);
        }
        let mut names = Vec::new();
        let mut offset = 0;
        let mut fingerprints = Vec::new();
        loop {
            let page = read_page(dir.path(), DEFAULT_ROOT, offset, 5).unwrap();
            assert_eq!(page.total, 13);
            names.extend(page.entities.iter().map(|e| e.name.clone()));
            fingerprints.push(page.fingerprint);
            offset = page.next_offset;
            if offset >= page.total {
                break;
            }
        }
        assert_eq!(names.len(), 13);
        assert_eq!(names[0], "teams");
        assert_eq!(names[12], "team-2-3");
        assert_eq!(fingerprints.len(), 3);
        assert!(fingerprints.iter().all(|f| *f == fingerprints[0]));
    }

    #[test]
    fn an_entity_defined_twice_names_both_places() {
        let dir = TestDir::new();
        dir.write(
            "catalog-info.yaml",
            &format!("{}apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: more\nspec:\n  target: ./more.yaml\n", group("team-a")),
        );
        dir.write("more.yaml", &group("Team-A"));
        let err = read_page(dir.path(), DEFAULT_ROOT, 0, 10).unwrap_err();
        let root = dir.path().display().to_string();
        assert_eq!(
            err,
            Error::InvalidData(format!(
                "{root}/more.yaml document 1: Group:default/Team-A is already defined in \
                 {root}/catalog-info.yaml document 1"
            ))
        );
    }

    #[test]
    fn the_example_catalog_reads_whole() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog");
        let page = read_page(&examples, DEFAULT_ROOT, 0, DEFAULT_PAGE_SIZE).unwrap();
        assert!(page.notes.is_empty(), "{:?}", page.notes);
        let refs: Vec<String> = page.entities.iter().map(Entity::reference).collect();
        assert_eq!(page.total, 13, "{refs:?}");
        assert_eq!(page.files, 4);
        for expected in [
            "System:default/shop",
            "Location:default/example-catalog",
            "Component:default/payments-service",
            "API:default/inventory-api",
            "User:default/linus",
            "API:default/payments-api",
        ] {
            assert!(refs.iter().any(|r| r == expected), "{expected}: {refs:?}");
        }
        let api = page
            .entities
            .iter()
            .find(|e| e.name == "payments-api")
            .unwrap();
        let definition = api.spec()["definition"].as_str().unwrap().to_owned();
        assert!(definition.starts_with("openapi: 3.0.3\n"), "{definition}");
        assert!(definition.contains("/payments/{id}/capture:"));
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            offset: 500,
            fingerprint: 0xabc,
        };
        assert_eq!(cursor.to_string(), "500:0000000000000abc");
        assert_eq!(Cursor::parse(&cursor.to_string()).unwrap(), cursor);
        assert!(Cursor::parse("500").is_err());
        assert!(Cursor::parse("x:1").is_err());
    }
}
