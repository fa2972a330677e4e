//! Read-only lookups in the portal's catalog (since contract 0.3.0), for plugins
//! of every role: does an entity's owner exist, which system does a
//! component belong to.
//!
//! ```no_run
//! # fn demo() -> Result<(), portolan_sdk::catalog::LookupError> {
//! let found = portolan_sdk::catalog::lookup(&["group:default/team-a", "user:jdoe"])?;
//! if found[0].is_none() {
//!     portolan_sdk::warn!("team-a is not in the catalog");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Look up everything a batch needs in one call: each call waits on the
//! host's database, and its time counts against the plugin's deadline.

use std::fmt;

use crate::__private::bindings::portolan::plugin::catalog as wit;
use crate::Entity;

/// Most references one [`lookup`] may carry; split longer lists.
pub const MAX_REFS: usize = 1_000;

/// Why a [`lookup`] failed as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// The reference at `index` is not `kind:namespace/name` or
    /// `kind:name`; `message` says what is wrong.
    InvalidReference {
        /// Its position in the list passed to [`lookup`].
        index: usize,
        /// What is wrong with it, for humans.
        message: String,
    },
    /// More than [`MAX_REFS`] references; holds how many were sent.
    TooManyReferences(usize),
    /// The catalog could not be read now; a later call may succeed.
    Unavailable(String),
    /// Anything else; the text is for humans.
    Other(String),
}

/// Looks entities up by reference: one answer per reference, in order,
/// `None` where the catalog has no such entity.
///
/// A reference is `kind:namespace/name`, or `kind:name` in the namespace
/// `default`, compared case-insensitively. The kind is required: to look up
/// a shorthand such as `spec.owner`, complete it first with
/// [`full_ref`].
pub fn lookup<S: AsRef<str>>(refs: &[S]) -> Result<Vec<Option<Entity>>, LookupError> {
    if refs.len() > MAX_REFS {
        return Err(LookupError::TooManyReferences(refs.len()));
    }
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<String> = refs.iter().map(|r| r.as_ref().to_owned()).collect();
    wit::lookup(&refs).map_err(|e| match e {
        wit::Error::InvalidReference((index, message)) => LookupError::InvalidReference {
            index: index as usize,
            message,
        },
        wit::Error::TooManyReferences(n) => LookupError::TooManyReferences(n as usize),
        wit::Error::Unavailable(message) => LookupError::Unavailable(message),
        wit::Error::Other(message) => LookupError::Other(message),
    })
}

/// Completes a shorthand reference as Backstage does: `reference` may leave
/// out its kind (then `kind`) and its namespace (then `namespace`, usually
/// the referring entity's). `full_ref("team-a", "group", "default")` is
/// `group:default/team-a`; `full_ref("user:ops/jdoe", "group", "default")`
/// is `user:ops/jdoe`. The result is lower-cased where the catalog compares
/// case-insensitively (kind, namespace); the name is kept as written.
pub fn full_ref(reference: &str, kind: &str, namespace: &str) -> String {
    // A slash before the first colon means the colon belongs to the name.
    let slash = reference.find('/');
    let colon = reference.find(':').filter(|&c| slash.is_none_or(|s| c < s));
    let (k, rest) = match colon {
        Some(c) => (&reference[..c], &reference[c + 1..]),
        None => (kind, reference),
    };
    let (ns, name) = match rest.find('/') {
        Some(s) => (&rest[..s], &rest[s + 1..]),
        None => (namespace, rest),
    };
    format!("{}:{}/{}", k.to_lowercase(), ns.to_lowercase(), name)
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::InvalidReference { index, message } => {
                write!(f, "catalog lookup: reference {index} is invalid: {message}")
            }
            LookupError::TooManyReferences(n) => write!(
                f,
                "catalog lookup: {n} references in one call, at most {MAX_REFS}"
            ),
            LookupError::Unavailable(message) => {
                write!(f, "catalog lookup: the catalog is unavailable: {message}")
            }
            LookupError::Other(message) => write!(f, "catalog lookup failed: {message}"),
        }
    }
}

impl std::error::Error for LookupError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_references_are_completed_as_backstage_does() {
        assert_eq!(
            full_ref("team-a", "group", "default"),
            "group:default/team-a"
        );
        assert_eq!(
            full_ref("ops/team-a", "Group", "default"),
            "group:ops/team-a"
        );
        assert_eq!(full_ref("User:jdoe", "group", "Acme"), "user:acme/jdoe");
        assert_eq!(full_ref("user:ops/jdoe", "group", "x"), "user:ops/jdoe");
        assert_eq!(full_ref("ns/a:b", "group", "x"), "group:ns/a:b");
    }
}
