//! The scorecard-check role: judge a batch of entities against a rule.
//!
//! A scorecard-check plugin offers one or more checks. A scorecard's rule
//! names one as `plugin-id/check-id` with its parameters; the host evaluates
//! many entities per call, so the cost of an instance is paid once per batch.
//!
//! A plugin with one check describes itself with [`PluginInfo::single`]; one
//! with several adds each with [`PluginInfo::with_check`] and matches on the
//! check id in [`ScorecardCheck::evaluate`].
//!
//! A scorecard usually has several rules served by one plugin; the host
//! then hands the plugin one batch for all of them
//! ([`ScorecardCheck::evaluate_rules`], contract 0.4.0). Its default calls
//! `evaluate` once per rule; a plugin that reads the same parts of every
//! entity for each rule (parsing `spec`, say) may override it to do that
//! work once per entity.

use std::fmt;

use serde_json::Value;

use crate::{About, Entity};

/// A scorecard-check plugin. Export it with `portolan_sdk::export!(ScorecardCheck for MyCheck);`.
pub trait ScorecardCheck {
    /// Describes the plugin and its checks. Called once when the plugin is
    /// loaded; must not perform I/O.
    fn describe() -> PluginInfo;

    /// Evaluates `entities` under the check `check` (one of the ids
    /// [`describe`](Self::describe) returned) and one rule's `parameters` (a
    /// JSON object the host validated against that check's
    /// [`CheckInfo::parameters_schema`]).
    ///
    /// The host calls only with ids the plugin described, and passes only
    /// entities of the check's [`CheckInfo::entity_kinds`]; a plugin with one
    /// check may ignore `check`. Answer any other id with
    /// [`Error::unknown_check`].
    ///
    /// Must return exactly one [`Outcome`] per entity, in the same order; the
    /// host fails the call otherwise. An `Err` fails the whole batch; an
    /// entity the check cannot decide for gets [`Outcome::error`].
    fn evaluate(
        check: &str,
        parameters: Value,
        entities: Vec<Entity>,
    ) -> Result<Vec<Outcome>, Error>;

    /// Evaluates `entities` under several rules at once: one result per
    /// rule, in the order of `rules`, each what
    /// [`evaluate`](Self::evaluate) would return for that rule alone. An
    /// `Err` fails that rule's share of the batch only.
    ///
    /// The host sends only entities that every rule's check applies to.
    /// The default calls `evaluate` once per rule (each with its own copy
    /// of the entities); override it to share work between the rules.
    fn evaluate_rules(rules: Vec<Rule>, entities: Vec<Entity>) -> Vec<Result<Vec<Outcome>, Error>> {
        let mut entities = Some(entities);
        let last = rules.len().saturating_sub(1);
        rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                let batch = if i == last {
                    entities.take().unwrap_or_default()
                } else {
                    entities.clone().unwrap_or_default()
                };
                Self::evaluate(&rule.check, rule.parameters, batch)
            })
            .collect()
    }
}

/// One rule of an [`ScorecardCheck::evaluate_rules`] call.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The check the rule names: one of the ids the plugin described.
    pub check: String,
    /// The rule's parameters, validated by the host against the check's
    /// [`CheckInfo::parameters_schema`].
    pub parameters: Value,
}

/// What a scorecard-check plugin says about itself.
#[derive(Clone, Debug)]
pub struct PluginInfo {
    /// Title, version and description for the plugin list.
    pub about: About,
    /// The checks the plugin offers; at least one, with unique ids.
    pub checks: Vec<CheckInfo>,
}

impl PluginInfo {
    /// A plugin with no checks yet; add them with [`PluginInfo::with_check`].
    pub fn new(about: About) -> Self {
        PluginInfo {
            about,
            checks: Vec::new(),
        }
    }

    /// A plugin that offers one check, `id`, for any kind of entity, titled
    /// and described as the plugin itself.
    pub fn single(id: impl Into<String>, about: About, parameters_schema: Value) -> Self {
        let check = CheckInfo::new(
            id,
            about.title.clone(),
            about.description.clone(),
            parameters_schema,
        );
        PluginInfo::new(about).with_check(check)
    }

    /// Adds a check.
    pub fn with_check(mut self, check: CheckInfo) -> Self {
        self.checks.push(check);
        self
    }
}

/// One check a plugin offers.
#[derive(Clone, Debug)]
pub struct CheckInfo {
    /// Unique within the plugin: 1 to 63 characters of `a-z`, `0-9` and `-`
    /// (the host refuses to load the plugin otherwise).
    pub id: String,
    /// A short human title, e.g. "Has an owner".
    pub title: String,
    /// What the check looks at, for the people who read a scorecard.
    pub description: String,
    /// The entity kinds the check applies to (e.g. `Component`); empty means
    /// any kind. The host passes only entities of these kinds.
    pub entity_kinds: Vec<String>,
    /// The rule parameters as a JSON Schema object.
    pub parameters_schema: Value,
}

impl CheckInfo {
    /// A check for any kind of entity.
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        description: impl Into<String>,
        parameters_schema: Value,
    ) -> Self {
        CheckInfo {
            id: id.into(),
            title: title.into(),
            description: description.into(),
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
    /// The check could not decide for this entity (e.g. an external lookup
    /// failed); counts as not passing.
    Error,
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

    /// An error for this entity alone, saying why the check could not
    /// decide (the rest of the batch is unaffected).
    pub fn error(message: impl Into<String>) -> Self {
        Outcome {
            status: Status::Error,
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

/// Why a whole batch failed. For one entity that cannot be decided, return
/// [`Outcome::error`] instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The rule's parameters are unacceptable.
    InvalidParameter {
        /// The parameter as a JSON pointer, e.g. `/fields`.
        pointer: String,
        /// Why it is unacceptable.
        reason: String,
    },
    /// The check id is not one the plugin offers. Holds the id.
    UnknownCheck(String),
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

    /// An [`Error::UnknownCheck`], for an id the plugin does not offer.
    pub fn unknown_check(check: impl Into<String>) -> Self {
        Error::UnknownCheck(check.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidParameter { pointer, reason } => {
                write!(f, "parameter {pointer}: {reason}")
            }
            Error::UnknownCheck(check) => write!(f, "no check {check:?} in this plugin"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_single_check_is_titled_and_described_as_the_plugin() {
        let about = About::new("Has an owner", "1.0.0", "spec.owner names a group.");
        let info = PluginInfo::single("has-owner", about, json!({"type": "object"}));
        assert_eq!(info.checks.len(), 1);
        let check = &info.checks[0];
        assert_eq!(check.id, "has-owner");
        assert_eq!(check.title, "Has an owner");
        assert_eq!(check.description, "spec.owner names a group.");
        assert!(check.entity_kinds.is_empty());
    }

    #[test]
    fn checks_keep_the_order_they_were_added_in() {
        let info = PluginInfo::new(About::new("Hygiene", "1.0.0", "Catalog hygiene."))
            .with_check(CheckInfo::new("has-owner", "Has an owner", "", json!({})))
            .with_check(
                CheckInfo::new("has-system", "Has a system", "", json!({}))
                    .for_kinds(["Component"]),
            );
        let ids: Vec<&str> = info.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["has-owner", "has-system"]);
        assert_eq!(info.checks[1].entity_kinds, ["Component"]);
    }

    #[test]
    fn an_error_outcome_concerns_one_entity() {
        let outcome = Outcome::error("lookup failed");
        assert_eq!(outcome.status, Status::Error);
        assert_eq!(outcome.message.as_deref(), Some("lookup failed"));
        assert_eq!(
            Error::unknown_check("nope").to_string(),
            "no check \"nope\" in this plugin"
        );
    }
}
