//! The catalog-source role: pull entities into the catalog from somewhere.
//!
//! A sync is a sequence of [`CatalogSource::sync`] calls, one page each, each
//! in a fresh instance: the host passes back the cursor the previous page
//! returned until a page returns none. When a sync completes, the host removes
//! the source's entities that no page returned.

use std::fmt;

use serde_json::Value;

use crate::{About, Entity};

/// A catalog source. Export it with `portolan_sdk::export!(CatalogSource for MySource);`.
pub trait CatalogSource {
    /// Describes the source. Called once when the plugin is loaded; must not
    /// perform I/O.
    fn describe() -> SourceInfo;

    /// Returns one page of entities.
    fn sync(request: SyncRequest) -> Result<SyncPage, Error>;
}

/// What a source says about itself.
#[derive(Clone, Debug)]
pub struct SourceInfo {
    /// Title, version and description for the plugin list.
    pub about: About,
    /// JSON Schema of the `[settings]` the source understands, if any.
    pub settings_schema: Option<Value>,
}

impl SourceInfo {
    /// A source that takes no settings.
    pub fn new(about: About) -> Self {
        SourceInfo {
            about,
            settings_schema: None,
        }
    }

    /// Sets the JSON Schema of the source's `[settings]`.
    pub fn with_settings_schema(mut self, schema: Value) -> Self {
        self.settings_schema = Some(schema);
        self
    }
}

/// Where a sync stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    /// `None` on the first page; afterwards the `next_cursor` of the previous
    /// page.
    pub cursor: Option<String>,
}

/// One page of a sync.
#[derive(Clone, Debug, Default)]
pub struct SyncPage {
    /// The entities of this page.
    pub entities: Vec<Entity>,
    /// `None` when this is the last page.
    pub next_cursor: Option<String>,
    /// The source's estimate of the total number of entities, if known.
    pub total_hint: Option<u64>,
}

impl SyncPage {
    /// The only (or last) page: these entities and no cursor, with their
    /// count as the total.
    pub fn last(entities: Vec<Entity>) -> Self {
        let total_hint = Some(entities.len() as u64);
        SyncPage {
            entities,
            next_cursor: None,
            total_hint,
        }
    }
}

/// Why a page failed; the host keeps the last good data and records this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The system the source reads from could not be reached.
    Unreachable(String),
    /// The system refused the source's credentials.
    Unauthorized(String),
    /// The data read was not understood; the text says where and why.
    InvalidData(String),
    /// The source's settings (or grants) are missing or wrong.
    Misconfigured(String),
    /// Anything else; the text is for humans.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, message) = match self {
            Error::Unreachable(m) => ("unreachable", m),
            Error::Unauthorized(m) => ("unauthorized", m),
            Error::InvalidData(m) => ("invalid data", m),
            Error::Misconfigured(m) => ("misconfigured", m),
            Error::Other(m) => return f.write_str(m),
        };
        write!(f, "{what}: {message}")
    }
}

impl std::error::Error for Error {}

/// A host not on the allowlist is a configuration problem; anything else
/// means the system could not be reached.
impl From<crate::http::Error> for Error {
    fn from(e: crate::http::Error) -> Self {
        if e.is_denied() {
            Error::Misconfigured(e.to_string())
        } else {
            Error::Unreachable(e.to_string())
        }
    }
}
