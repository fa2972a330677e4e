//! The action role: a day-2 operation (restart a service, create a database,
//! trigger a pipeline) run on behalf of a developer as a recorded run.

use std::fmt;

use serde_json::{Map, Value};

use crate::{About, Entity, Link};

/// An action. Export it with `portolan_sdk::export!(Action for MyAction);`.
pub trait Action {
    /// Describes the action. Called once when the plugin is loaded; must not
    /// perform I/O.
    fn describe() -> ActionInfo;

    /// Performs the action. Log lines ([`info!`](crate::info) & co.) become
    /// the run's log, shown live to the person who started it.
    fn run(invocation: Invocation) -> Result<Outcome, Error>;
}

/// What an action says about itself.
#[derive(Clone, Debug)]
pub struct ActionInfo {
    /// Title, version and description for the plugin list.
    pub about: About,
    /// The entity kinds the action applies to (e.g. `Component`); empty means
    /// the action stands alone, outside any entity.
    pub entity_kinds: Vec<String>,
    /// If not empty, the action applies only to entities whose `spec.type` is
    /// one of these (e.g. `service`).
    pub entity_types: Vec<String>,
    /// If not empty, the action applies only to entities that carry at least
    /// one of these tags.
    pub entity_tags: Vec<String>,
    /// The input as a JSON Schema object.
    pub input_schema: Value,
    /// The lowest role allowed to start a run ([`Role::Member`] unless set).
    /// The operator may raise it in the plugin's sidecar, never lower it.
    pub required_role: Role,
    /// If set, every run waits until a user with at least this role, other
    /// than the one who started it, approves it. `None` unless set.
    pub approval: Option<Role>,
}

impl ActionInfo {
    /// An action that stands alone, outside any entity, that any member may
    /// start without approval.
    pub fn new(about: About, input_schema: Value) -> Self {
        ActionInfo {
            about,
            entity_kinds: Vec::new(),
            entity_types: Vec::new(),
            entity_tags: Vec::new(),
            input_schema,
            required_role: Role::Member,
            approval: None,
        }
    }

    /// Offers the action on entities of these kinds.
    pub fn for_kinds<I: IntoIterator<Item = S>, S: Into<String>>(mut self, kinds: I) -> Self {
        self.entity_kinds = kinds.into_iter().map(Into::into).collect();
        self
    }

    /// Offers the action only on entities whose `spec.type` is one of these.
    pub fn for_types<I: IntoIterator<Item = S>, S: Into<String>>(mut self, types: I) -> Self {
        self.entity_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Offers the action only on entities that carry one of these tags.
    pub fn for_tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.entity_tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the lowest role allowed to start a run.
    pub fn required_role(mut self, role: Role) -> Self {
        self.required_role = role;
        self
    }

    /// Makes every run wait for the approval of a user with at least `role`,
    /// other than the one who started it.
    pub fn needs_approval(mut self, role: Role) -> Self {
        self.approval = Some(role);
        self
    }
}

/// A role in the portal, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads the portal.
    Viewer,
    /// Works on the catalog; the default role for starting an action.
    Member,
    /// Administers the portal.
    Admin,
}

/// One run of the action.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The run's identifier, for logs and idempotency keys.
    pub run_id: String,
    /// Who started the run (the token's name, e.g. `alice`).
    pub actor: String,
    /// 1 for the first attempt; a retried run counts up. With the run id it
    /// tells a retry from a new run.
    pub attempt: u32,
    /// The input, a JSON object the host validated against
    /// [`ActionInfo::input_schema`].
    pub input: Value,
    /// The entity the action was started on, if any.
    pub entity: Option<Entity>,
}

/// What a successful run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Output values as a JSON object.
    pub output: Value,
    /// Links for the person who ran the action.
    pub links: Vec<Link>,
}

impl Outcome {
    /// An outcome with these output values (a JSON object) and no links.
    pub fn new(output: Value) -> Self {
        Outcome {
            output,
            links: Vec::new(),
        }
    }

    /// Adds a link.
    pub fn with_link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }
}

impl Default for Outcome {
    /// No output values (`{}`) and no links.
    fn default() -> Self {
        Outcome::new(Value::Object(Map::new()))
    }
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// An input value is unacceptable beyond what the schema can say.
    InvalidInput {
        /// The field as a JSON pointer, e.g. `/service`.
        pointer: String,
        /// Why it is unacceptable.
        reason: String,
    },
    /// The automation behind the action refused or failed; for the person
    /// who started the run.
    Failed(String),
    /// Anything else; the text is for humans.
    Other(String),
}

impl Error {
    /// An [`Error::InvalidInput`].
    pub fn invalid_input(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            pointer: pointer.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput { pointer, reason } => write!(f, "input {pointer}: {reason}"),
            Error::Failed(message) | Error::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// A request that got no response means the automation could not be reached.
impl From<crate::http::Error> for Error {
    fn from(e: crate::http::Error) -> Self {
        Error::Failed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_action_defaults_to_members_without_approval() {
        let info = ActionInfo::new(About::new("Restart", "1.0.0", "Restarts."), json!({}));
        assert_eq!(info.required_role, Role::Member);
        assert_eq!(info.approval, None);
        assert!(info.entity_types.is_empty() && info.entity_tags.is_empty());

        let info = info
            .for_kinds(["Component"])
            .for_types(["service"])
            .for_tags(["prod"])
            .required_role(Role::Admin)
            .needs_approval(Role::Admin);
        assert_eq!(info.entity_kinds, ["Component"]);
        assert_eq!(info.entity_types, ["service"]);
        assert_eq!(info.entity_tags, ["prod"]);
        assert_eq!(info.required_role, Role::Admin);
        assert_eq!(info.approval, Some(Role::Admin));
        assert!(Role::Viewer < Role::Member && Role::Member < Role::Admin);
    }
}
