//! `portolan:plugin/catalog` (since contract 0.3.0): read-only catalog lookups
//! for plugins.
//!
//! The runtime does not know the catalog's tables: the server hands it a
//! [`CatalogLookup`] (in [`RuntimeConfig::catalog`](crate::RuntimeConfig))
//! and the host function here checks the call's shape and forwards it.
//! Without one, every lookup fails with `unavailable`, never a trap.

use std::sync::Arc;
use std::time::Instant;

use crate::model::Entity;

/// Most references one `lookup` call may carry, as `wit/catalog.wit` says.
/// Bounds what one call makes the host read and hand back (each answer is
/// a whole entity, relations included): a plugin that needs more splits its
/// list.
pub const MAX_LOOKUP_REFS: usize = 1_000;

/// Why a lookup failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The reference at `index` is not `kind:namespace/name` or `kind:name`.
    #[error("reference {index}: {message}")]
    InvalidReference { index: usize, message: String },
    /// The catalog could not be read now; the text is for the plugin's
    /// author and must not carry internals (it may end up in a check's
    /// message).
    #[error("{0}")]
    Unavailable(String),
}

/// Reads entities by reference for plugins. Implemented by the server over
/// its store; called on the thread of the plugin call (a blocking thread,
/// never an async worker), inside the call.
pub trait CatalogLookup: Send + Sync {
    /// One answer per reference of `refs`, in order (`None`: no such
    /// entity). Must give up by `deadline`, the call's own, with
    /// [`LookupError::Unavailable`]: the guest cannot be interrupted while
    /// the host works for it. `refs` holds at most [`MAX_LOOKUP_REFS`].
    fn lookup(
        &self,
        refs: &[String],
        deadline: Instant,
    ) -> Result<Vec<Option<Entity>>, LookupError>;
}

/// The lookup a runtime hands its plugins; shared by every call.
#[derive(Clone)]
pub struct CatalogAccess(pub Arc<dyn CatalogLookup>);

impl std::fmt::Debug for CatalogAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatalogAccess(..)")
    }
}

/// Checks a plugin's lookup and runs it on `access`; what the host function
/// of every contract version that has `catalog` answers.
pub(crate) fn lookup(
    access: Option<&CatalogAccess>,
    refs: &[String],
    deadline: Instant,
) -> Result<Vec<Option<Entity>>, Refused> {
    if refs.len() > MAX_LOOKUP_REFS {
        return Err(Refused::TooMany(refs.len()));
    }
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let Some(access) = access else {
        return Err(Refused::Lookup(LookupError::Unavailable(
            "this host has no catalog to look entities up in".into(),
        )));
    };
    let found = access.0.lookup(refs, deadline).map_err(Refused::Lookup)?;
    if found.len() != refs.len() {
        // A host bug, but the plugin's answer must still line up.
        return Err(Refused::Lookup(LookupError::Unavailable(format!(
            "the catalog answered {} of {} references",
            found.len(),
            refs.len()
        ))));
    }
    Ok(found)
}

/// Why the host refused a lookup, before the WIT error of a version.
#[derive(Debug)]
pub(crate) enum Refused {
    TooMany(usize),
    Lookup(LookupError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Fixed;

    impl CatalogLookup for Fixed {
        fn lookup(
            &self,
            refs: &[String],
            _deadline: Instant,
        ) -> Result<Vec<Option<Entity>>, LookupError> {
            if refs.iter().any(|r| r == "bad") {
                return Err(LookupError::InvalidReference {
                    index: 0,
                    message: "no kind".into(),
                });
            }
            Ok(refs.iter().map(|_| None).collect())
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(1)
    }

    #[test]
    fn too_many_references_are_refused_before_the_catalog_is_asked() {
        let refs = vec!["group:default/a".to_owned(); MAX_LOOKUP_REFS + 1];
        let access = CatalogAccess(Arc::new(Fixed));
        match lookup(Some(&access), &refs, soon()) {
            Err(Refused::TooMany(n)) => assert_eq!(n, MAX_LOOKUP_REFS + 1),
            other => panic!("{other:?}"),
        }
        let refs = vec!["group:default/a".to_owned(); MAX_LOOKUP_REFS];
        assert_eq!(
            lookup(Some(&access), &refs, soon()).unwrap().len(),
            MAX_LOOKUP_REFS
        );
    }

    #[test]
    fn without_a_catalog_a_lookup_is_unavailable_not_a_trap() {
        match lookup(None, &["group:default/a".to_owned()], soon()) {
            Err(Refused::Lookup(LookupError::Unavailable(m))) => {
                assert!(m.contains("no catalog"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        // An empty list needs no catalog.
        assert!(lookup(None, &[], soon()).unwrap().is_empty());
    }

    #[test]
    fn the_catalog_errors_pass_through() {
        let access = CatalogAccess(Arc::new(Fixed));
        match lookup(Some(&access), &["bad".to_owned()], soon()) {
            Err(Refused::Lookup(LookupError::InvalidReference { index: 0, .. })) => {}
            other => panic!("{other:?}"),
        }
    }
}
