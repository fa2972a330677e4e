//! The scaffold-generator role: create a new project on the golden path.
//!
//! The host validates the parameters against the generator's JSON Schema
//! before it calls [`ScaffoldGenerator::generate`], checks every returned
//! path, writes the files to the configured target and registers the entity.

use std::fmt;

use serde_json::Value;

use crate::{About, Entity, Link};

/// A scaffold generator. Export it with `portolan_sdk::export!(ScaffoldGenerator for MyTemplate);`.
pub trait ScaffoldGenerator {
    /// Describes the generator. Called once when the plugin is loaded; must
    /// not perform I/O.
    fn describe() -> GeneratorInfo;

    /// Generates the files of a new project from validated `parameters` (a
    /// JSON object).
    fn generate(parameters: Value) -> Result<Output, Error>;
}

/// What a generator says about itself.
#[derive(Clone, Debug)]
pub struct GeneratorInfo {
    /// Title, version and description for the plugin list.
    pub about: About,
    /// Tags to find the template by, e.g. `rust`, `service`.
    pub tags: Vec<String>,
    /// The parameters as JSON Schema: one object schema, or an array of object
    /// schemas, one per page of a form.
    pub parameters_schema: Value,
}

impl GeneratorInfo {
    /// A generator with no tags.
    pub fn new(about: About, parameters_schema: Value) -> Self {
        GeneratorInfo {
            about,
            tags: Vec::new(),
            parameters_schema,
        }
    }

    /// Sets the tags.
    pub fn with_tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }
}

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// A relative path with `/` separators; never absolute, never `..`.
    pub path: String,
    /// The file's bytes.
    pub content: Vec<u8>,
    /// Whether the file gets the executable bit.
    pub executable: bool,
}

impl File {
    /// A regular file.
    pub fn new(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        File {
            path: path.into(),
            content: content.into(),
            executable: false,
        }
    }

    /// An executable file (a script).
    pub fn executable(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        File {
            path: path.into(),
            content: content.into(),
            executable: true,
        }
    }
}

/// What a generation produced.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// The files of the new project.
    pub files: Vec<File>,
    /// The catalog entity that describes the new project, if any.
    pub entity: Option<Entity>,
    /// Links for the person who ran the template.
    pub links: Vec<Link>,
    /// Messages for the person who ran the template.
    pub messages: Vec<String>,
}

/// Why a generation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A parameter is unacceptable beyond what the schema can say.
    InvalidParameter {
        /// The parameter as a JSON pointer, e.g. `/name`.
        pointer: String,
        /// Why it is unacceptable.
        reason: String,
    },
    /// Anything else; the text is for humans.
    Other(String),
}

impl Error {
    /// An [`Error::InvalidParameter`].
    pub fn invalid_parameter(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            pointer: pointer.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidParameter { pointer, reason } => {
                write!(f, "parameter {pointer}: {reason}")
            }
            Error::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}
