//! Conversions between the generated bindings of every supported contract
//! version and the model ([`crate::model`]).
//!
//! What every version shares (entities, links, sources, generators, action
//! outcomes and errors) is converted by one macro instantiated per version.
//! What changed in 0.2.0 (a check plugin's checks, an outcome's `error`
//! status, an action's filters, role and approval, an invocation's actor and
//! attempt) is converted by a second macro for 0.2.0, 0.3.0 and 0.4.0 (which
//! only add the `catalog` import and the check's `evaluate-rules`), and by
//! hand for 0.1.0, which is adapted to the current model as `wit/README.md`
//! ("Supported versions") says.
//!
//! `describe` answers are converted to [`Described`], whose JSON fields are
//! still text: [`crate::plugin`] validates them the same way for every
//! version.

use std::collections::BTreeMap;

use crate::bindings::v0_1;
use crate::call::CallError;
use crate::model::{
    self, ActionInvocation, ActionOutcome, ActionRole, CheckInfo, CheckOutcome, CheckStatus,
    Entity, GeneratedFile, GeneratorOutput, Link, Metadata, Relation, SyncPage,
};

/// What a plugin's `describe` returned, adapted to the current contract.
/// JSON fields are text, as the plugin sent them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Described {
    pub title: String,
    pub version: String,
    pub description: String,
    pub role: DescribedRole,
}

/// The role-specific part of [`Described`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DescribedRole {
    Source {
        settings_schema: Option<String>,
    },
    Generator {
        tags: Vec<String>,
        parameters_schema: String,
    },
    Action(DescribedAction),
    Check(Vec<DescribedCheck>),
}

/// One check as described, its schema still text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DescribedCheck {
    pub id: String,
    pub title: String,
    pub description: String,
    pub entity_kinds: Vec<String>,
    pub parameters_schema: String,
}

/// An action as described, its schema still text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DescribedAction {
    pub entity_kinds: Vec<String>,
    pub entity_types: Vec<String>,
    pub entity_tags: Vec<String>,
    pub input_schema: String,
    pub required_role: ActionRole,
    pub approval: Option<ActionRole>,
}

/// One outcome of `evaluate` in the current model, its value still text.
pub(crate) struct RawOutcome {
    status: CheckStatus,
    message: Option<String>,
    value: Option<String>,
}

/// Checks an `evaluate` answer against the batch it was for and converts
/// it: exactly `expected` outcomes, every value JSON.
pub(crate) fn check_outcomes<O: Into<RawOutcome>>(
    outcomes: Vec<O>,
    expected: usize,
) -> Result<Vec<CheckOutcome>, CallError> {
    if outcomes.len() != expected {
        return Err(CallError::BadOutput {
            message: format!(
                "evaluate returned {} outcomes for {expected} entities",
                outcomes.len()
            ),
        });
    }
    outcomes
        .into_iter()
        .map(Into::into)
        .enumerate()
        .map(|(i, o): (usize, RawOutcome)| {
            let value = match o.value {
                Some(v) => Some(
                    model::parse_json(&format!("outcome[{i}].value"), &v)
                        .map_err(|message| CallError::BadOutput { message })?,
                ),
                None => None,
            };
            Ok(CheckOutcome {
                status: o.status,
                message: o.message,
                value,
            })
        })
        .collect()
}

/// Checks an `evaluate-rules` answer against the call it was for and
/// converts it: exactly `rules` results, each as [`check_outcomes`] wants.
/// A wrong number of results, or of outcomes in any result, fails the
/// whole call; a rule's own error stands for that rule.
pub(crate) fn rule_results<O: Into<RawOutcome>, E: Into<CallError>>(
    results: Vec<Result<Vec<O>, E>>,
    rules: usize,
    expected: usize,
) -> Result<Vec<Result<Vec<CheckOutcome>, CallError>>, CallError> {
    if results.len() != rules {
        return Err(CallError::BadOutput {
            message: format!(
                "evaluate-rules returned {} results for {rules} rules",
                results.len()
            ),
        });
    }
    results
        .into_iter()
        .enumerate()
        .map(|(r, result)| match result {
            Err(e) => Ok(Err(e.into())),
            Ok(outcomes) => check_outcomes(outcomes, expected)
                .map(Ok)
                .map_err(|e| match e {
                    CallError::BadOutput { message } => CallError::BadOutput {
                        message: format!("rule {r}: {message}"),
                    },
                    other => other,
                }),
        })
        .collect()
}

/// Converts entities a plugin returned, naming the one at fault.
fn entities<E>(list: Vec<E>, what: &str) -> Result<Vec<Entity>, CallError>
where
    Entity: TryFrom<E, Error = String>,
{
    list.into_iter()
        .enumerate()
        .map(|(i, e)| {
            Entity::try_from(e).map_err(|m| CallError::BadOutput {
                message: format!("{what} {i}: {m}"),
            })
        })
        .collect()
}

/// The conversions that read the same in every contract version, for the
/// bindings module `$v` (e.g. `crate::bindings::v0_2`).
macro_rules! shared_conversions {
    ($($v:ident)::+) => {
        const _: () = {
            use $($v)::+::types as wit;
            use $($v)::+::source::exports::portolan::plugin::source as wit_source;
            use $($v)::+::generator::exports::portolan::plugin::generator as wit_generator;
            use $($v)::+::action::exports::portolan::plugin::operation as wit_operation;

            impl From<&Entity> for wit::Entity {
                fn from(e: &Entity) -> Self {
                    let pairs = |map: &BTreeMap<String, String>| {
                        map.iter()
                            .map(|(k, v)| wit::Pair {
                                key: k.clone(),
                                value: v.clone(),
                            })
                            .collect()
                    };
                    wit::Entity {
                        api_version: e.api_version.clone(),
                        kind: e.kind.clone(),
                        namespace: e.metadata.namespace.clone(),
                        name: e.metadata.name.clone(),
                        title: e.metadata.title.clone(),
                        description: e.metadata.description.clone(),
                        labels: pairs(&e.metadata.labels),
                        annotations: pairs(&e.metadata.annotations),
                        tags: e.metadata.tags.clone(),
                        links: e.metadata.links.iter().map(Into::into).collect(),
                        spec: model::json_text(&e.spec),
                        relations: e
                            .relations
                            .iter()
                            .map(|r| wit::Relation {
                                type_: r.kind.clone(),
                                target: r.target_ref.clone(),
                            })
                            .collect(),
                    }
                }
            }

            impl TryFrom<wit::Entity> for Entity {
                type Error = String;

                fn try_from(e: wit::Entity) -> Result<Self, String> {
                    let spec = if e.spec.trim().is_empty() {
                        model::empty_object()
                    } else {
                        model::parse_json("spec", &e.spec)?
                    };
                    let namespace = if e.namespace.is_empty() {
                        model::default_namespace()
                    } else {
                        e.namespace
                    };
                    Ok(Entity {
                        api_version: e.api_version,
                        kind: e.kind,
                        metadata: Metadata {
                            name: e.name,
                            namespace,
                            title: e.title,
                            description: e.description,
                            labels: e.labels.into_iter().map(|p| (p.key, p.value)).collect(),
                            annotations: e
                                .annotations
                                .into_iter()
                                .map(|p| (p.key, p.value))
                                .collect(),
                            tags: e.tags,
                            links: e.links.into_iter().map(Into::into).collect(),
                        },
                        spec,
                        relations: e
                            .relations
                            .into_iter()
                            .map(|r| Relation {
                                kind: r.type_,
                                target_ref: r.target,
                            })
                            .collect(),
                    })
                }
            }

            impl From<&Link> for wit::Link {
                fn from(l: &Link) -> Self {
                    wit::Link {
                        url: l.url.clone(),
                        title: l.title.clone(),
                        icon: l.icon.clone(),
                        type_: l.kind.clone(),
                    }
                }
            }

            impl From<wit::Link> for Link {
                fn from(l: wit::Link) -> Self {
                    Link {
                        url: l.url,
                        title: l.title,
                        icon: l.icon,
                        kind: l.type_,
                    }
                }
            }

            impl From<wit_source::SourceInfo> for Described {
                fn from(info: wit_source::SourceInfo) -> Self {
                    Described {
                        title: info.about.title,
                        version: info.about.version,
                        description: info.about.description,
                        role: DescribedRole::Source {
                            settings_schema: info.settings_schema,
                        },
                    }
                }
            }

            impl From<wit_source::Error> for CallError {
                fn from(e: wit_source::Error) -> Self {
                    let (code, message) = match e {
                        wit_source::Error::Unreachable(m) => ("unreachable", m),
                        wit_source::Error::Unauthorized(m) => ("unauthorized", m),
                        wit_source::Error::InvalidData(m) => ("invalid-data", m),
                        wit_source::Error::Misconfigured(m) => ("misconfigured", m),
                        wit_source::Error::Other(m) => ("other", m),
                    };
                    CallError::plugin(code, None, message)
                }
            }

            impl TryFrom<wit_source::SyncPage> for SyncPage {
                type Error = CallError;

                fn try_from(page: wit_source::SyncPage) -> Result<Self, CallError> {
                    Ok(SyncPage {
                        entities: entities(page.entities, "entity")?,
                        next_cursor: page.next_cursor,
                        total_hint: page.total_hint,
                    })
                }
            }

            impl From<wit_generator::GeneratorInfo> for Described {
                fn from(info: wit_generator::GeneratorInfo) -> Self {
                    Described {
                        title: info.about.title,
                        version: info.about.version,
                        description: info.about.description,
                        role: DescribedRole::Generator {
                            tags: info.tags,
                            parameters_schema: info.parameters_schema,
                        },
                    }
                }
            }

            impl From<wit_generator::Error> for CallError {
                fn from(e: wit_generator::Error) -> Self {
                    match e {
                        wit_generator::Error::InvalidParameter((field, message)) => {
                            CallError::plugin("invalid-parameter", Some(field), message)
                        }
                        wit_generator::Error::Other(message) => {
                            CallError::plugin("other", None, message)
                        }
                    }
                }
            }

            impl TryFrom<wit_generator::Output> for GeneratorOutput {
                type Error = CallError;

                fn try_from(out: wit_generator::Output) -> Result<Self, CallError> {
                    let entity = match out.entity {
                        Some(e) => Some(Entity::try_from(e).map_err(|m| CallError::BadOutput {
                            message: format!("entity: {m}"),
                        })?),
                        None => None,
                    };
                    Ok(GeneratorOutput {
                        files: out
                            .files
                            .into_iter()
                            .map(|f| GeneratedFile {
                                path: f.path,
                                content: f.content,
                                executable: f.executable,
                            })
                            .collect(),
                        entity,
                        links: out.links.into_iter().map(Into::into).collect(),
                        messages: out.messages,
                    })
                }
            }

            impl From<wit_operation::Error> for CallError {
                fn from(e: wit_operation::Error) -> Self {
                    match e {
                        wit_operation::Error::InvalidInput((field, message)) => {
                            CallError::plugin("invalid-input", Some(field), message)
                        }
                        wit_operation::Error::Failed(message) => {
                            CallError::plugin("failed", None, message)
                        }
                        wit_operation::Error::Other(message) => {
                            CallError::plugin("other", None, message)
                        }
                    }
                }
            }

            impl TryFrom<wit_operation::Outcome> for ActionOutcome {
                type Error = CallError;

                fn try_from(o: wit_operation::Outcome) -> Result<Self, CallError> {
                    let output = model::parse_json("output", &o.output)
                        .map_err(|message| CallError::BadOutput { message })?;
                    Ok(ActionOutcome {
                        output,
                        links: o.links.into_iter().map(Into::into).collect(),
                    })
                }
            }
        };
    };
}

shared_conversions!(crate::bindings::v0_4);
shared_conversions!(crate::bindings::v0_3);
shared_conversions!(crate::bindings::v0_2);
shared_conversions!(crate::bindings::v0_1);

// ---- What changed in 0.2.0 (and 0.3.0 and 0.4.0 keep): the current shapes.

/// The shapes 0.2.0 introduced, which 0.3.0 and 0.4.0 keep unchanged: one
/// conversion per version of the same code.
macro_rules! current_conversions {
    ($($v:ident)::+) => {
        const _: () = {
            use $($v)::+::action::exports::portolan::plugin::operation as wit_operation;
            use $($v)::+::check::exports::portolan::plugin::check as wit_check;

            impl From<wit_check::PluginInfo> for Described {
                fn from(info: wit_check::PluginInfo) -> Self {
                    Described {
                        title: info.about.title,
                        version: info.about.version,
                        description: info.about.description,
                        role: DescribedRole::Check(
                            info.checks
                                .into_iter()
                                .map(|c| DescribedCheck {
                                    id: c.id,
                                    title: c.title,
                                    description: c.description,
                                    entity_kinds: c.entity_kinds,
                                    parameters_schema: c.parameters_schema,
                                })
                                .collect(),
                        ),
                    }
                }
            }

            impl From<wit_check::Error> for CallError {
                fn from(e: wit_check::Error) -> Self {
                    match e {
                        wit_check::Error::InvalidParameter((field, message)) => {
                            CallError::plugin("invalid-parameter", Some(field), message)
                        }
                        wit_check::Error::UnknownCheck(check) => CallError::plugin(
                            "unknown-check",
                            None,
                            format!("the plugin does not offer the check {check:?}"),
                        ),
                        wit_check::Error::Other(message) => CallError::plugin("other", None, message),
                    }
                }
            }

            impl From<wit_check::Outcome> for RawOutcome {
                fn from(o: wit_check::Outcome) -> Self {
                    RawOutcome {
                        status: match o.status {
                            wit_check::Status::Pass => CheckStatus::Pass,
                            wit_check::Status::Fail => CheckStatus::Fail,
                            wit_check::Status::Skip => CheckStatus::Skip,
                            wit_check::Status::Error => CheckStatus::Error,
                        },
                        message: o.message,
                        value: o.value,
                    }
                }
            }

            impl From<wit_operation::Role> for ActionRole {
                fn from(role: wit_operation::Role) -> Self {
                    match role {
                        wit_operation::Role::Viewer => ActionRole::Viewer,
                        wit_operation::Role::Member => ActionRole::Member,
                        wit_operation::Role::Admin => ActionRole::Admin,
                    }
                }
            }

            impl From<wit_operation::ActionInfo> for Described {
                fn from(info: wit_operation::ActionInfo) -> Self {
                    Described {
                        title: info.about.title,
                        version: info.about.version,
                        description: info.about.description,
                        role: DescribedRole::Action(DescribedAction {
                            entity_kinds: info.entity_kinds,
                            entity_types: info.entity_types,
                            entity_tags: info.entity_tags,
                            input_schema: info.input_schema,
                            required_role: info.required_role.into(),
                            approval: info.approval.map(Into::into),
                        }),
                    }
                }
            }

            impl From<&ActionInvocation> for wit_operation::Invocation {
                fn from(inv: &ActionInvocation) -> Self {
                    wit_operation::Invocation {
                        run_id: inv.run_id.clone(),
                        actor: inv.actor.clone(),
                        attempt: inv.attempt,
                        input: model::json_text(&inv.input),
                        entity: inv.entity.as_ref().map(Into::into),
                    }
                }
            }
        };
    };
}

current_conversions!(crate::bindings::v0_4);
current_conversions!(crate::bindings::v0_3);
current_conversions!(crate::bindings::v0_2);

// ---- 0.1.0, adapted to the current shapes.

mod legacy {
    use super::*;
    use v0_1::action::exports::portolan::plugin::operation as wit_operation;
    use v0_1::check::exports::portolan::plugin::check as wit_check;

    /// A 0.1.0 check plugin is one check, [`CheckInfo::LEGACY_ID`], titled
    /// and described as the plugin.
    impl From<wit_check::CheckInfo> for Described {
        fn from(info: wit_check::CheckInfo) -> Self {
            let check = DescribedCheck {
                id: CheckInfo::LEGACY_ID.to_owned(),
                title: info.about.title.clone(),
                description: info.about.description.clone(),
                entity_kinds: info.entity_kinds,
                parameters_schema: info.parameters_schema,
            };
            Described {
                title: info.about.title,
                version: info.about.version,
                description: info.about.description,
                role: DescribedRole::Check(vec![check]),
            }
        }
    }

    impl From<wit_check::Error> for CallError {
        fn from(e: wit_check::Error) -> Self {
            match e {
                wit_check::Error::InvalidParameter((field, message)) => {
                    CallError::plugin("invalid-parameter", Some(field), message)
                }
                wit_check::Error::Other(message) => CallError::plugin("other", None, message),
            }
        }
    }

    impl From<wit_check::Outcome> for RawOutcome {
        fn from(o: wit_check::Outcome) -> Self {
            RawOutcome {
                status: match o.status {
                    wit_check::Status::Pass => CheckStatus::Pass,
                    wit_check::Status::Fail => CheckStatus::Fail,
                    wit_check::Status::Skip => CheckStatus::Skip,
                },
                message: o.message,
                value: o.value,
            }
        }
    }

    /// A 0.1.0 action applies to any entity of its kinds, needs the member
    /// role and no approval.
    impl From<wit_operation::ActionInfo> for Described {
        fn from(info: wit_operation::ActionInfo) -> Self {
            Described {
                title: info.about.title,
                version: info.about.version,
                description: info.about.description,
                role: DescribedRole::Action(DescribedAction {
                    entity_kinds: info.entity_kinds,
                    entity_types: Vec::new(),
                    entity_tags: Vec::new(),
                    input_schema: info.input_schema,
                    required_role: ActionRole::Member,
                    approval: None,
                }),
            }
        }
    }

    /// A 0.1.0 action does not learn the actor or the attempt.
    impl From<&ActionInvocation> for wit_operation::Invocation {
        fn from(inv: &ActionInvocation) -> Self {
            wit_operation::Invocation {
                run_id: inv.run_id.clone(),
                input: model::json_text(&inv.input),
                entity: inv.entity.as_ref().map(Into::into),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{v0_2, v0_3};

    fn payments() -> Entity {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {
                "name": "payments",
                "labels": {"tier": "1"},
                "tags": ["java"],
                "links": [{"url": "https://runbooks/payments", "title": "Runbook"}]
            },
            "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}
        }))
        .unwrap()
    }

    #[test]
    fn backstage_descriptor_round_trips_through_every_contract() {
        let entity = payments();
        assert_eq!(entity.metadata.namespace, "default");
        let current = Entity::try_from(v0_3::types::Entity::from(&entity)).unwrap();
        assert_eq!(current, entity);
        let previous = Entity::try_from(v0_2::types::Entity::from(&entity)).unwrap();
        assert_eq!(previous, entity);
        let legacy = Entity::try_from(v0_1::types::Entity::from(&entity)).unwrap();
        assert_eq!(legacy, entity);
    }

    #[test]
    fn spec_that_is_not_json_is_refused_with_the_field_named() {
        let mut e = v0_3::types::Entity::from(&payments());
        e.spec = "{not json".into();
        let err = Entity::try_from(e).unwrap_err();
        assert!(err.starts_with("spec is not valid JSON"), "{err}");
    }

    #[test]
    fn legacy_check_becomes_one_default_check_described_as_the_plugin() {
        use v0_1::check::exports::portolan::plugin::check as old;
        let described = Described::from(old::CheckInfo {
            about: v0_1::types::About {
                title: "Has owner".into(),
                version: "1.0.0".into(),
                description: "spec.owner is set".into(),
            },
            entity_kinds: vec!["Component".into()],
            parameters_schema: "{}".into(),
        });
        assert_eq!(
            described.role,
            DescribedRole::Check(vec![DescribedCheck {
                id: "default".into(),
                title: "Has owner".into(),
                description: "spec.owner is set".into(),
                entity_kinds: vec!["Component".into()],
                parameters_schema: "{}".into(),
            }])
        );
    }

    #[test]
    fn outcomes_must_match_the_batch_and_carry_json_values() {
        use v0_3::check::exports::portolan::plugin::check as wit;
        let outcome = |value: Option<&str>| wit::Outcome {
            status: wit::Status::Error,
            message: Some("lookup failed".into()),
            value: value.map(Into::into),
        };
        let ok = check_outcomes(vec![outcome(Some("{\"n\":1}"))], 1).unwrap();
        assert_eq!(ok[0].status, CheckStatus::Error);
        assert_eq!(ok[0].value, Some(serde_json::json!({"n": 1})));
        let short = check_outcomes(vec![outcome(None)], 2).unwrap_err();
        assert!(
            short.to_string().contains("1 outcomes for 2 entities"),
            "{short}"
        );
        let bad = check_outcomes(vec![outcome(None), outcome(Some("nope"))], 2).unwrap_err();
        assert!(bad.to_string().contains("outcome[1].value"), "{bad}");
    }
}
