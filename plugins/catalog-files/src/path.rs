//! Paths inside the granted catalog directory.
//!
//! Every path a descriptor names (a Location target, a `$text` placeholder)
//! is relative to the directory of that descriptor. It is normalised
//! lexically into a [`CatalogPath`], a list of plain segments below the
//! catalog root, before anything touches the filesystem: a path that is
//! absolute, remote, or climbs above the root with `..` is refused here with
//! a message that names it. The WASI sandbox would refuse such a read too,
//! but only with a bare "not permitted" that names neither the descriptor
//! nor the path.
//!
//! The last segments of a Location target may be simple globs: `*` and `?`
//! within one segment, and `**` as a whole segment for any depth of folders.
//! Wildcards never match hidden entries (names starting with `.`).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A normalised path below the catalog root: no empty, `.` or `..` segments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CatalogPath(Vec<String>);

/// Why a path written in a descriptor is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    /// The path is empty or only whitespace.
    Empty,
    /// The path starts at the filesystem root.
    Absolute,
    /// The path is a URL (`https://...`, `file:...`).
    Remote,
    /// After normalisation the path climbs above the catalog root.
    Escapes,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Empty => "is empty",
            PathError::Absolute => {
                "is an absolute path; write it relative to the file that names it"
            }
            PathError::Remote => {
                "is a URL; this source reads only files inside its catalog directory"
            }
            PathError::Escapes => "leads outside the catalog directory",
        })
    }
}

impl CatalogPath {
    /// The catalog root itself.
    pub fn root() -> Self {
        CatalogPath(Vec::new())
    }

    /// The folder this file is in (the root for a file at the top).
    pub fn parent(&self) -> CatalogPath {
        let mut segments = self.0.clone();
        segments.pop();
        CatalogPath(segments)
    }

    /// Resolves `written`, a path as a descriptor in folder `self` wrote it.
    pub fn resolve(&self, written: &str) -> Result<CatalogPath, PathError> {
        let written = written.trim();
        if written.is_empty() {
            return Err(PathError::Empty);
        }
        if is_url(written) {
            return Err(PathError::Remote);
        }
        if written.starts_with('/') || written.starts_with('\\') || has_drive_letter(written) {
            return Err(PathError::Absolute);
        }
        let mut segments = self.0.clone();
        for segment in written.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop().ok_or(PathError::Escapes)?;
                }
                other => segments.push(other.to_owned()),
            }
        }
        Ok(CatalogPath(segments))
    }

    /// Whether any segment holds a wildcard.
    pub fn is_glob(&self) -> bool {
        self.0.iter().any(|s| is_wildcard(s))
    }

    /// The path on the (sandboxed) filesystem below `root`.
    pub fn on_disk(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(&self.0);
        path
    }

    /// The path as people see it: `root` joined with the segments by `/`.
    pub fn display(&self, root: &str) -> String {
        let root = root.trim_end_matches('/');
        if self.0.is_empty() {
            return if root.is_empty() {
                "/".into()
            } else {
                root.into()
            };
        }
        format!("{root}/{}", self.0.join("/"))
    }

    /// The files a glob matches, sorted; hidden entries never match a
    /// wildcard and a folder that does not exist matches nothing. A path
    /// without wildcards comes back as is, whether or not it exists, so that
    /// reading it reports what is wrong.
    pub fn expand(&self, root: &Path) -> io::Result<Vec<CatalogPath>> {
        if !self.is_glob() {
            return Ok(vec![self.clone()]);
        }
        let mut candidates = vec![CatalogPath::root()];
        for (i, segment) in self.0.iter().enumerate() {
            let last = i + 1 == self.0.len();
            let mut next = Vec::new();
            for dir in &candidates {
                if segment == "**" {
                    // Zero or more folders: this one and every folder below.
                    next.push(dir.clone());
                    let mut pending = vec![dir.clone()];
                    while let Some(d) = pending.pop() {
                        for (name, is_dir) in list(&d.on_disk(root))? {
                            if is_dir && !name.starts_with('.') {
                                let child = d.child(&name);
                                next.push(child.clone());
                                pending.push(child);
                            }
                        }
                    }
                } else if is_wildcard(segment) {
                    for (name, is_dir) in list(&dir.on_disk(root))? {
                        if !name.starts_with('.')
                            && wildcard_match(segment, &name)
                            && is_dir != last
                        {
                            next.push(dir.child(&name));
                        }
                    }
                } else {
                    next.push(dir.child(segment));
                }
            }
            candidates = next;
        }
        // A literal last segment after a wildcard folder: keep only files
        // that exist, as a glob lists what is there.
        candidates.retain(|p| p.on_disk(root).is_file());
        candidates.sort();
        candidates.dedup();
        Ok(candidates)
    }

    fn child(&self, name: &str) -> CatalogPath {
        let mut segments = self.0.clone();
        segments.push(name.to_owned());
        CatalogPath(segments)
    }
}

/// A folder's entries as (name, is a folder); a folder that does not exist
/// has none.
fn list(dir: &Path) -> io::Result<Vec<(String, bool)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let is_dir = entry.file_type()?.is_dir();
        out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    Ok(out)
}

/// `scheme://...` or `scheme:` followed by something that is not a path
/// (Backstage writes `url:https://...` and `file:./x` targets too).
fn is_url(path: &str) -> bool {
    match path.split_once(':') {
        Some((scheme, _)) => {
            scheme.len() > 1
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

/// `C:\...` or `C:/...`.
fn has_drive_letter(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

fn is_wildcard(segment: &str) -> bool {
    segment.contains(['*', '?'])
}

/// Shell-style match of one name: `*` any run of characters, `?` one.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was and how much of the name it has taken so far.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn at(path: &str) -> CatalogPath {
        CatalogPath::root().resolve(path).unwrap()
    }

    #[test]
    fn relative_paths_resolve_against_the_descriptor_folder() {
        let dir = at("teams/payments/catalog-info.yaml").parent();
        assert_eq!(dir.display("/catalog"), "/catalog/teams/payments");
        let cases = [
            ("./openapi.yaml", "/catalog/teams/payments/openapi.yaml"),
            ("openapi.yaml", "/catalog/teams/payments/openapi.yaml"),
            ("../shared//x.yaml", "/catalog/teams/shared/x.yaml"),
            ("./a/./b/../c.yaml", "/catalog/teams/payments/a/c.yaml"),
            ("../../top.yaml", "/catalog/top.yaml"),
            ("sub/", "/catalog/teams/payments/sub"),
        ];
        for (written, expected) in cases {
            let resolved = dir.resolve(written).unwrap();
            assert_eq!(resolved.display("/catalog"), expected, "{written}");
        }
        assert_eq!(at("a.yaml").parent(), CatalogPath::root());
        assert_eq!(CatalogPath::root().display("/catalog/"), "/catalog");
    }

    #[test]
    fn escaping_absolute_and_remote_paths_are_refused() {
        let dir = at("teams/payments/catalog-info.yaml").parent();
        let cases = [
            ("../../../etc/passwd", PathError::Escapes),
            ("../../..", PathError::Escapes),
            // Climbing out and back in still went outside on the way.
            ("../../../catalog/teams/x.yaml", PathError::Escapes),
            ("/etc/passwd", PathError::Absolute),
            ("/catalog/teams/x.yaml", PathError::Absolute),
            ("\\\\server\\share", PathError::Absolute),
            ("C:/catalog/x.yaml", PathError::Absolute),
            (
                "https://github.com/acme/x/blob/main/catalog-info.yaml",
                PathError::Remote,
            ),
            ("url:https://example.com/x.yaml", PathError::Remote),
            ("file:./x.yaml", PathError::Remote),
            ("  ", PathError::Empty),
        ];
        for (written, expected) in cases {
            assert_eq!(dir.resolve(written), Err(expected.clone()), "{written}");
        }
        assert_eq!(
            PathError::Escapes.to_string(),
            "leads outside the catalog directory"
        );
    }

    #[test]
    fn wildcards_match_within_one_segment() {
        assert!(wildcard_match("*.yaml", "components.yaml"));
        assert!(wildcard_match("*.yaml", ".yaml"));
        assert!(wildcard_match("team-?.y*l", "team-a.yaml"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("a*b*c", "aXXbYYbc"));
        assert!(!wildcard_match("*.yaml", "components.yml"));
        assert!(!wildcard_match("team-?.yaml", "team-ab.yaml"));
        assert!(!wildcard_match("a*b", "ac"));
    }

    #[test]
    fn globs_list_matching_files_in_order() {
        let dir = TestDir::new();
        for file in [
            "components/b.yaml",
            "components/a.yaml",
            "components/notes.md",
            "components/.hidden.yaml",
            "components/nested/c.yaml",
            "teams/x/catalog-info.yaml",
            "teams/y/catalog-info.yaml",
            "teams/.git/catalog-info.yaml",
            "teams/z/other.yaml",
        ] {
            dir.write(file, "");
        }
        let names = |pattern: &str| -> Vec<String> {
            at(pattern)
                .expand(dir.path())
                .unwrap()
                .iter()
                .map(|p| p.display(""))
                .collect()
        };
        assert_eq!(
            names("./components/*.yaml"),
            ["/components/a.yaml", "/components/b.yaml"]
        );
        assert_eq!(
            names("teams/*/catalog-info.yaml"),
            ["/teams/x/catalog-info.yaml", "/teams/y/catalog-info.yaml"]
        );
        assert_eq!(
            names("components/**/*.yaml"),
            [
                "/components/a.yaml",
                "/components/b.yaml",
                "/components/nested/c.yaml"
            ]
        );
        assert!(names("missing/*.yaml").is_empty());
        // No wildcard: the path comes back for the reader to report.
        assert_eq!(names("missing/x.yaml"), ["/missing/x.yaml"]);
    }
}
