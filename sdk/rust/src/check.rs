//! The scorecard-check role: judge a batch of entities against one rule.
//!
//! A scorecard's rule names a check and its parameters; the host evaluates
//! many entities per call, so the cost of an instance is paid once per batch.

use std::fmt;

use serde_json::Value;

use crate::{About, Entity};

/// A scorecard check. Export it with `portolan_sdk::export!(ScorecardCheck for MyCheck);`.
pub trait ScorecardCheck {
    /// Describes the check. Called once when the plugin is loaded; must not
    /// perform I/O.
    fn describe() -> CheckInfo;

    /// Evaluates `entities` under one rule's `parameters` (a JSON object the
    /// host validated against [`CheckInfo::parameters_schema`]).
    ///
    /// Must return exactly one [`Outcome`] per entity, in the same order; the
    /// host fails the call otherwise. An `Err` fails the whole batch.
    fn evaluate(parameters: Value, entities: Vec<Entity>) -> Result<Vec<Outcome>, Error>;
}

/// What a check says about itself.
#[derive(Clone, Debug)]
pub struct CheckInfo {
    /// Title, version and description for the plugin list.
    pub about: About,
    /// The entity kinds the check applies to (e.g. `Component`); empty means any kind.
    pub entity_kinds: Vec<String>,
    /// The rule parameters as a JSON Schema object.
    pub parameters_schema: Value,
}

impl CheckInfo {
    /// A check for any kind of entity.
    pub fn new(about: About, parameters_schema: Value) -> Self {
        CheckInfo {
            about,
            entity_kinds: Vec::new(),
            parameters_schema,
        }
    }

    /// Restricts the check to these entity kinds.
    pub fn for_kinds<I: IntoIterator<Item = S>, S: Into<String>>(mut self, kinds: I) -> Self {
        self.entity_kinds = kinds.into_iter().map(Into::into).collect();
        self
    }
}

/// The verdict for one entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The entity meets the rule.
    Pass,
    /// The entity does not meet the rule.
    Fail,
    /// The rule does not apply to this entity; it counts as neither.
    Skip,
}

/// The result for one entity.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The verdict.
    pub status: Status,
    /// Why, for the entity's owners, e.g. "no runbook link".
    pub message: Option<String>,
    /// A measured value behind the verdict, if any (e.g. a coverage percentage).
    pub value: Option<Value>,
}

impl Outcome {
    /// A pass with no message.
    pub fn pass() -> Self {
        Outcome {
            status: Status::Pass,
            message: None,
            value: None,
        }
    }

    /// A fail, saying why.
    pub fn fail(message: impl Into<String>) -> Self {
        Outcome {
            status: Status::Fail,
            message: Some(message.into()),
            value: None,
        }
    }

    /// A skip, saying why the rule does not apply.
    pub fn skip(message: impl Into<String>) -> Self {
        Outcome {
            status: Status::Skip,
            message: Some(message.into()),
            value: None,
        }
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the measured value.
    pub fn with_value(mut self, value: Value) -> Self {
        self.value = Some(value);
        self
    }
}

/// Why a whole batch failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The rule's parameters are unacceptable.
    InvalidParameter {
        /// The parameter as a JSON pointer, e.g. `/fields`.
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

impl From<crate::http::Error> for Error {
    fn from(e: crate::http::Error) -> Self {
        Error::Other(e.to_string())
    }
}
