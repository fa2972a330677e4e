//! A loaded plugin: its role, what it says about itself, and typed calls.
//!
//! Each call instantiates the plugin afresh from its pre-linked component
//! (`InstancePre`), so no state leaks between calls and a crash affects one
//! call only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use wasmtime::component::Component;
use wasmtime::Store;

use crate::bindings;
use crate::call::{CallError, CallReport, CallState};
use crate::engine::{Runtime, EPOCH_TICK};
use crate::model::{
    self, ActionInvocation, ActionOutcome, CheckOutcome, CheckStatus, Entity, GeneratedFile,
    GeneratorOutput, SyncPage,
};
use crate::sidecar::Grants;

/// The four plugin roles, one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    CatalogSource,
    ScaffoldGenerator,
    Action,
    ScorecardCheck,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::CatalogSource => "catalog-source",
            Role::ScaffoldGenerator => "scaffold-generator",
            Role::Action => "action",
            Role::ScorecardCheck => "scorecard-check",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin said about itself in `describe`, with JSON fields parsed.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub title: String,
    pub version: String,
    pub description: String,
    /// Role-specific fields: schemas, entity kinds, tags.
    #[serde(flatten)]
    pub details: serde_json::Map<String, Value>,
}

enum Pre {
    Source(bindings::source::CatalogSourcePre<CallState>),
    Generator(bindings::generator::ScaffoldGeneratorPre<CallState>),
    Action(bindings::action::ActionPre<CallState>),
    Check(bindings::check::ScorecardCheckPre<CallState>),
}

/// A plugin ready to be called.
pub struct Plugin {
    pub id: String,
    pub role: Role,
    /// SHA-256 of the `.wasm` file, hex.
    pub hash: String,
    pub description: Description,
    pub grants: Arc<Grants>,
    runtime: Runtime,
    pre: Pre,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("version", &self.description.version)
            .finish_non_exhaustive()
    }
}

/// The longest `describe` may take, whatever the plugin's own limit.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

impl Plugin {
    /// Checks which role the component implements, links it and calls its
    /// `describe`. Blocking: call it off the async threads.
    pub fn load(
        runtime: &Runtime,
        id: &str,
        hash: String,
        component: &Component,
        grants: Grants,
    ) -> Result<Plugin, String> {
        let engine = runtime.engine();
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let roles: Vec<crate::Role> = bindings::ROLE_EXPORTS
            .iter()
            .filter(|(_, name)| exports.iter().any(|e| e == name))
            .map(|(role, _)| *role)
            .collect();
        let role = match roles.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "the component implements no Portolan plugin world (it exports {}); \
                     build it against wit/ for one of: catalog-source, scaffold-generator, action, scorecard-check",
                    if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") }
                ))
            }
            many => {
                return Err(format!(
                    "the component exports the interfaces of several roles ({}); a plugin has exactly one",
                    many.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                ))
            }
        };

        let instance_pre = runtime
            .linker()
            .instantiate_pre(component)
            .map_err(|e| format!("cannot link the component: {e:#}"))?;
        let typed =
            |e: wasmtime::Error| format!("the {role} exports do not match the contract: {e:#}");
        let pre = match role {
            Role::CatalogSource => {
                Pre::Source(bindings::source::CatalogSourcePre::new(instance_pre).map_err(typed)?)
            }
            Role::ScaffoldGenerator => Pre::Generator(
                bindings::generator::ScaffoldGeneratorPre::new(instance_pre).map_err(typed)?,
            ),
            Role::Action => {
                Pre::Action(bindings::action::ActionPre::new(instance_pre).map_err(typed)?)
            }
            Role::ScorecardCheck => {
                Pre::Check(bindings::check::ScorecardCheckPre::new(instance_pre).map_err(typed)?)
            }
        };

        let mut plugin = Plugin {
            id: id.to_owned(),
            role,
            hash,
            description: Description {
                title: String::new(),
                version: String::new(),
                description: String::new(),
                details: Default::default(),
            },
            grants: Arc::new(grants),
            runtime: runtime.clone(),
            pre,
        };
        let report = plugin.describe();
        plugin.description = report.result.map_err(|e| format!("describe failed: {e}"))?;
        Ok(plugin)
    }

    pub fn version(&self) -> &str {
        &self.description.version
    }

    /// Runs `f` on a fresh instance under the plugin's limits.
    fn call<R>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&Pre, &mut Store<CallState>) -> wasmtime::Result<Result<R, CallError>>,
    ) -> CallReport<R> {
        let started = Instant::now();
        let limits = self.grants.limits;
        let state =
            match CallState::new(self.grants.clone(), self.runtime.secrets().clone(), timeout) {
                Ok(s) => s,
                Err(e) => {
                    return CallReport::unavailable(format!(
                        "plugin \"{}\": cannot prepare the sandbox: {e:#}",
                        self.id
                    ))
                }
            };
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.limiter);
        let ticks = timeout.as_millis().div_ceil(EPOCH_TICK.as_millis()) as u64;
        store.set_epoch_deadline(ticks.max(1));
        store.epoch_deadline_trap();
        let fuel = limits.fuel;
        if self.runtime.config().limits.fuel_enabled {
            // Fuel metering is engine-wide; plugins without a budget get all.
            let _ = store.set_fuel(fuel.unwrap_or(u64::MAX));
        }
        let outcome = f(&self.pre, &mut store);
        let state = store.data_mut();
        let result = match outcome {
            Ok(r) => r,
            Err(e) => {
                let mut err = state.classify(e, fuel);
                if let CallError::Timeout { timeout_ms } = &mut err {
                    *timeout_ms = timeout.as_millis() as u64;
                }
                Err(err)
            }
        };
        let logs = state.finish();
        CallReport {
            result,
            logs,
            elapsed: started.elapsed(),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.grants.limits.timeout_ms)
    }

    fn wrong_role<R>(&self, wanted: Role) -> CallReport<R> {
        CallReport::unavailable(format!(
            "plugin \"{}\" is a {} plugin, not a {wanted} plugin",
            self.id, self.role
        ))
    }

    /// Calls `describe` and checks that its JSON fields parse.
    fn describe(&self) -> CallReport<Description> {
        let timeout = self.timeout().min(DESCRIBE_TIMEOUT);
        // Role-specific fields: (name in the API, WIT field name, value,
        // whether the value is JSON text to parse).
        type Fields = Vec<(&'static str, &'static str, Value)>;
        let CallReport {
            result,
            logs,
            elapsed,
        } = self.call(timeout, |pre, store| {
            let mut fields: Fields = Vec::new();
            let about = match pre {
                Pre::Source(p) => {
                    let info = p
                        .instantiate(&mut *store)?
                        .portolan_plugin_source()
                        .call_describe(&mut *store)?;
                    if let Some(s) = info.settings_schema {
                        fields.push(("settingsSchema", "settings-schema", Value::String(s)));
                    }
                    info.about
                }
                Pre::Generator(p) => {
                    let info = p
                        .instantiate(&mut *store)?
                        .portolan_plugin_generator()
                        .call_describe(&mut *store)?;
                    fields.push(("tags", "", Value::from(info.tags)));
                    fields.push((
                        "parametersSchema",
                        "parameters-schema",
                        Value::String(info.parameters_schema),
                    ));
                    info.about
                }
                Pre::Action(p) => {
                    let info = p
                        .instantiate(&mut *store)?
                        .portolan_plugin_operation()
                        .call_describe(&mut *store)?;
                    fields.push(("entityKinds", "", Value::from(info.entity_kinds)));
                    fields.push((
                        "inputSchema",
                        "input-schema",
                        Value::String(info.input_schema),
                    ));
                    info.about
                }
                Pre::Check(p) => {
                    let info = p
                        .instantiate(&mut *store)?
                        .portolan_plugin_check()
                        .call_describe(&mut *store)?;
                    fields.push(("entityKinds", "", Value::from(info.entity_kinds)));
                    fields.push((
                        "parametersSchema",
                        "parameters-schema",
                        Value::String(info.parameters_schema),
                    ));
                    info.about
                }
            };
            Ok(Ok((about, fields)))
        });
        let result = result.and_then(|(about, fields)| {
            let mut details = serde_json::Map::new();
            for (key, wit_name, value) in fields {
                let value = match (wit_name, value) {
                    ("", v) => v,
                    (name, Value::String(text)) => model::parse_json(name, &text)
                        .map_err(|message| CallError::BadOutput { message })?,
                    (_, v) => v,
                };
                details.insert(key.to_owned(), value);
            }
            Ok(Description {
                title: about.title,
                version: about.version,
                description: about.description,
                details,
            })
        });
        CallReport {
            result,
            logs,
            elapsed,
        }
    }

    /// Evaluates a batch of entities under one rule's parameters.
    pub fn evaluate(
        &self,
        parameters: &Value,
        entities: &[Entity],
    ) -> CallReport<Vec<CheckOutcome>> {
        if self.role != Role::ScorecardCheck {
            return self.wrong_role(Role::ScorecardCheck);
        }
        let params = model::json_text(parameters);
        let batch: Vec<bindings::types::Entity> = entities.iter().map(Into::into).collect();
        let expected = entities.len();
        self.call(self.timeout(), |pre, store| {
            let Pre::Check(p) = pre else {
                unreachable!("role checked above")
            };
            let result = p
                .instantiate(&mut *store)?
                .portolan_plugin_check()
                .call_evaluate(&mut *store, &params, &batch)?;
            use bindings::check::exports::portolan::plugin::check as wit;
            Ok(match result {
                Err(wit::Error::InvalidParameter((field, message))) => {
                    Err(plugin_error("invalid-parameter", Some(field), message))
                }
                Err(wit::Error::Other(message)) => Err(plugin_error("other", None, message)),
                Ok(outcomes) if outcomes.len() != expected => Err(CallError::BadOutput {
                    message: format!(
                        "evaluate returned {} outcomes for {expected} entities",
                        outcomes.len()
                    ),
                }),
                Ok(outcomes) => outcomes
                    .into_iter()
                    .enumerate()
                    .map(|(i, o)| {
                        Ok(CheckOutcome {
                            status: match o.status {
                                wit::Status::Pass => CheckStatus::Pass,
                                wit::Status::Fail => CheckStatus::Fail,
                                wit::Status::Skip => CheckStatus::Skip,
                            },
                            message: o.message,
                            value: match o.value {
                                Some(v) => Some(
                                    model::parse_json(&format!("outcome[{i}].value"), &v)
                                        .map_err(|message| CallError::BadOutput { message })?,
                                ),
                                None => None,
                            },
                        })
                    })
                    .collect(),
            })
        })
    }

    /// Fetches one page of a catalog source's sync.
    pub fn sync(&self, cursor: Option<String>) -> CallReport<SyncPage> {
        if self.role != Role::CatalogSource {
            return self.wrong_role(Role::CatalogSource);
        }
        self.call(self.timeout(), |pre, store| {
            let Pre::Source(p) = pre else {
                unreachable!("role checked above")
            };
            use bindings::source::exports::portolan::plugin::source as wit;
            let result = p
                .instantiate(&mut *store)?
                .portolan_plugin_source()
                .call_sync(&mut *store, &wit::SyncRequest { cursor })?;
            Ok(match result {
                Err(e) => {
                    let (code, message) = match e {
                        wit::Error::Unreachable(m) => ("unreachable", m),
                        wit::Error::Unauthorized(m) => ("unauthorized", m),
                        wit::Error::InvalidData(m) => ("invalid-data", m),
                        wit::Error::Misconfigured(m) => ("misconfigured", m),
                        wit::Error::Other(m) => ("other", m),
                    };
                    Err(plugin_error(code, None, message))
                }
                Ok(page) => page
                    .entities
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| {
                        Entity::try_from(e).map_err(|m| CallError::BadOutput {
                            message: format!("entity {i}: {m}"),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|entities| SyncPage {
                        entities,
                        next_cursor: page.next_cursor,
                        total_hint: page.total_hint,
                    }),
            })
        })
    }

    /// Generates a new project's files from validated parameters.
    pub fn generate(&self, parameters: &Value) -> CallReport<GeneratorOutput> {
        if self.role != Role::ScaffoldGenerator {
            return self.wrong_role(Role::ScaffoldGenerator);
        }
        let params = model::json_text(parameters);
        self.call(self.timeout(), |pre, store| {
            let Pre::Generator(p) = pre else {
                unreachable!("role checked above")
            };
            use bindings::generator::exports::portolan::plugin::generator as wit;
            let result = p
                .instantiate(&mut *store)?
                .portolan_plugin_generator()
                .call_generate(&mut *store, &params)?;
            Ok(match result {
                Err(wit::Error::InvalidParameter((field, message))) => {
                    Err(plugin_error("invalid-parameter", Some(field), message))
                }
                Err(wit::Error::Other(message)) => Err(plugin_error("other", None, message)),
                Ok(out) => {
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
            })
        })
    }

    /// Runs a day-2 action.
    pub fn run_action(&self, invocation: &ActionInvocation) -> CallReport<ActionOutcome> {
        if self.role != Role::Action {
            return self.wrong_role(Role::Action);
        }
        use bindings::action::exports::portolan::plugin::operation as wit;
        let inv = wit::Invocation {
            run_id: invocation.run_id.clone(),
            input: model::json_text(&invocation.input),
            entity: invocation.entity.as_ref().map(Into::into),
        };
        self.call(self.timeout(), |pre, store| {
            let Pre::Action(p) = pre else {
                unreachable!("role checked above")
            };
            let result = p
                .instantiate(&mut *store)?
                .portolan_plugin_operation()
                .call_run(&mut *store, &inv)?;
            Ok(match result {
                Err(wit::Error::InvalidInput((field, message))) => {
                    Err(plugin_error("invalid-input", Some(field), message))
                }
                Err(wit::Error::Failed(message)) => Err(plugin_error("failed", None, message)),
                Err(wit::Error::Other(message)) => Err(plugin_error("other", None, message)),
                Ok(o) => model::parse_json("output", &o.output)
                    .map_err(|message| CallError::BadOutput { message })
                    .map(|output| ActionOutcome {
                        output,
                        links: o.links.into_iter().map(Into::into).collect(),
                    }),
            })
        })
    }
}

/// The error a plugin returned through its interface's `variant error`.
fn plugin_error(code: &str, field: Option<String>, message: String) -> CallError {
    CallError::Plugin {
        code: code.to_owned(),
        field,
        message,
    }
}
