//! A loaded plugin: its role, what it says about itself, and typed calls.
//!
//! Each call instantiates the plugin afresh from its pre-linked component
//! (`InstancePre`), so no state leaks between calls and a crash affects one
//! call only.
//!
//! A plugin may be built against any supported contract version
//! ([`Contract`]); the typed calls take and return the current model either
//! way, and older versions are adapted (`crate::convert`).

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use crate::bindings::{self, v0_1, v0_2, v0_3, v0_4, Contract};
use crate::call::{CallControl, CallError, CallReport, CallState, CancelRequested, LogLine};
use crate::convert::{self, Described, DescribedCheck, DescribedRole};
use crate::engine::{Runtime, EPOCH_TICK};
use crate::model::{
    self, ActionInfo, ActionInvocation, ActionOutcome, ActionRole, CheckInfo, CheckOutcome,
    CheckStatus, Entity, GeneratorOutput, SyncPage,
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
    /// Role-specific fields: schemas, entity kinds, tags; a check plugin's
    /// `checks` ([`CheckInfo`]); an action's [`ActionInfo`].
    #[serde(flatten)]
    pub details: serde_json::Map<String, Value>,
}

/// Entities to evaluate, with their conversions into each contract
/// version's shape made on first use and kept: a scorecard's rules (often
/// ten or more) evaluate the same batch, and converting it (copying every
/// string, writing each `spec` as JSON text) once instead of per rule is a
/// good share of a check call's host-side cost.
pub struct EntityBatch<'a> {
    entities: Cow<'a, [Entity]>,
    v0_4: OnceLock<Vec<v0_4::types::Entity>>,
    v0_3: OnceLock<Vec<v0_3::types::Entity>>,
    v0_2: OnceLock<Vec<v0_2::types::Entity>>,
    v0_1: OnceLock<Vec<v0_1::types::Entity>>,
}

impl EntityBatch<'static> {
    /// A batch that owns its entities (to share between threads).
    pub fn new(entities: Vec<Entity>) -> Self {
        EntityBatch::from_cow(Cow::Owned(entities))
    }
}

impl<'a> EntityBatch<'a> {
    /// A batch over borrowed entities.
    pub fn borrowed(entities: &'a [Entity]) -> Self {
        EntityBatch::from_cow(Cow::Borrowed(entities))
    }

    fn from_cow(entities: Cow<'a, [Entity]>) -> Self {
        EntityBatch {
            entities,
            v0_4: OnceLock::new(),
            v0_3: OnceLock::new(),
            v0_2: OnceLock::new(),
            v0_1: OnceLock::new(),
        }
    }

    /// The entities, in order.
    pub fn entities(&self) -> &[Entity] {
        &self.entities
    }

    /// The entities `sent` to a call in a contract's shape: when they are
    /// the whole batch (every entity is of a kind the check applies to, the
    /// usual case), the batch's conversion, made once; otherwise the call's
    /// own conversion of those it sends.
    fn shaped<'s, T>(&'s self, cache: &'s OnceLock<Vec<T>>, sent: &[&Entity]) -> Cow<'s, [T]>
    where
        T: Clone + for<'e> From<&'e Entity>,
    {
        if sent.len() == self.entities.len() {
            Cow::Borrowed(cache.get_or_init(|| self.entities.iter().map(T::from).collect()))
        } else {
            Cow::Owned(sent.iter().map(|e| T::from(e)).collect())
        }
    }

    fn v0_4(&self, sent: &[&Entity]) -> Cow<'_, [v0_4::types::Entity]> {
        self.shaped(&self.v0_4, sent)
    }

    fn v0_3(&self, sent: &[&Entity]) -> Cow<'_, [v0_3::types::Entity]> {
        self.shaped(&self.v0_3, sent)
    }

    fn v0_2(&self, sent: &[&Entity]) -> Cow<'_, [v0_2::types::Entity]> {
        self.shaped(&self.v0_2, sent)
    }

    fn v0_1(&self, sent: &[&Entity]) -> Cow<'_, [v0_1::types::Entity]> {
        self.shaped(&self.v0_1, sent)
    }
}

/// One rule of a [`Plugin::evaluate_rules`] call: a check the plugin
/// offers and the rule's parameters.
#[derive(Debug, Clone, Copy)]
pub struct RuleCall<'a> {
    pub check: &'a str,
    pub parameters: &'a Value,
}

/// What [`Plugin::evaluate_rules`] answered, with the log and time of
/// every call it made.
#[derive(Debug)]
pub struct RulesReport {
    /// One per rule, in order.
    pub results: Vec<Result<Vec<CheckOutcome>, CallError>>,
    pub logs: Vec<LogLine>,
    /// The calls' time, added up.
    pub elapsed: Duration,
    /// Calls made to the plugin (a call for several rules counts once).
    pub calls: usize,
    /// Why a call for several rules failed as a whole, when its rules were
    /// then evaluated one by one.
    pub split: Option<CallError>,
}

impl RulesReport {
    fn add(&mut self, logs: Vec<LogLine>, elapsed: Duration) {
        self.logs.extend(logs);
        self.elapsed += elapsed;
    }
}

/// A check's outcomes for the entities it was sent, spread over the whole
/// batch: the entities of kinds it does not apply to are skipped.
fn with_skips(
    info: &CheckInfo,
    applies: &[bool],
    outcomes: Vec<CheckOutcome>,
) -> Vec<CheckOutcome> {
    if applies.iter().all(|a| *a) {
        return outcomes;
    }
    let mut outcomes = outcomes.into_iter();
    applies
        .iter()
        .map(|applies| match applies {
            true => outcomes.next().expect("one outcome per entity sent"),
            false => CheckOutcome {
                status: CheckStatus::Skip,
                message: Some(format!(
                    "the check applies to {} only",
                    info.entity_kinds.join(", ")
                )),
                value: None,
            },
        })
        .collect()
}

/// Declares the pre-linked component of one role: one variant per
/// supported contract version (the `Contract` variant's name), and `new`,
/// which type-checks a component against that version's world. Adding a
/// contract version means adding it here and in [`on_version`].
macro_rules! role_pre {
    ($name:ident, $world:ident::$pre:ident) => {
        enum $name {
            V0_4(v0_4::$world::$pre<CallState>),
            V0_3(v0_3::$world::$pre<CallState>),
            V0_2(v0_2::$world::$pre<CallState>),
            V0_1(v0_1::$world::$pre<CallState>),
        }

        impl $name {
            fn new(
                contract: Contract,
                pre: wasmtime::component::InstancePre<CallState>,
            ) -> wasmtime::Result<$name> {
                Ok(match contract {
                    Contract::V0_4 => $name::V0_4(v0_4::$world::$pre::new(pre)?),
                    Contract::V0_3 => $name::V0_3(v0_3::$world::$pre::new(pre)?),
                    Contract::V0_2 => $name::V0_2(v0_2::$world::$pre::new(pre)?),
                    Contract::V0_1 => $name::V0_1(v0_1::$world::$pre::new(pre)?),
                })
            }
        }
    };
}

/// Runs `$body` with `$p` bound to the pre-linked component `$pre` (a
/// [`role_pre`] type) of whichever contract version it holds, and `$v`
/// naming that version's bindings module. The body is expanded once per
/// version, so each arm type-checks against its own bindings.
macro_rules! on_version {
    ($pre:expr, $name:ident, |$p:ident, $v:ident| $body:expr) => {
        match $pre {
            $name::V0_4($p) => {
                #[allow(unused_imports)]
                use crate::bindings::v0_4 as $v;
                $body
            }
            $name::V0_3($p) => {
                #[allow(unused_imports)]
                use crate::bindings::v0_3 as $v;
                $body
            }
            $name::V0_2($p) => {
                #[allow(unused_imports)]
                use crate::bindings::v0_2 as $v;
                $body
            }
            $name::V0_1($p) => {
                #[allow(unused_imports)]
                use crate::bindings::v0_1 as $v;
                $body
            }
        }
    };
}

role_pre!(SourcePre, source::CatalogSourcePre);
role_pre!(GeneratorPre, generator::ScaffoldGeneratorPre);
role_pre!(ActionPre, action::ActionPre);
role_pre!(CheckPre, check::ScorecardCheckPre);

/// A component pre-linked against its role's world, in the contract
/// version it was built against.
enum Pre {
    Source(SourcePre),
    Generator(GeneratorPre),
    Action(ActionPre),
    Check(CheckPre),
}

/// A plugin ready to be called.
pub struct Plugin {
    pub id: String,
    pub role: Role,
    /// The contract version the component was built against.
    pub contract: Contract,
    /// SHA-256 of the `.wasm` file, hex.
    pub hash: String,
    pub description: Description,
    pub grants: Arc<Grants>,
    runtime: Runtime,
    pre: Pre,
    /// A check plugin's checks (never empty for one); empty for other roles.
    checks: Vec<CheckInfo>,
    /// An action's entity filter, role and approval; `None` for other roles.
    action: Option<ActionInfo>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("contract", &self.contract)
            .field("version", &self.description.version)
            .finish_non_exhaustive()
    }
}

/// The longest `describe` may take, whatever the plugin's own limit.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often, in epoch ticks, a cancellable call looks at its cancel flag
/// (10 ticks: every 50 ms of running code).
const CANCEL_CHECK_TICKS: u64 = 10;

/// Longest check id, as `wit/scorecard-check.wit` says.
pub const MAX_CHECK_ID_LEN: usize = 63;

impl Plugin {
    /// Checks which role and contract version the component implements,
    /// links it and calls its `describe`. Blocking: call it off the async
    /// threads.
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
        let worlds: Vec<(Role, Contract)> = bindings::ROLE_EXPORTS
            .iter()
            .filter(|(_, _, name)| exports.iter().any(|e| e == name))
            .map(|(role, contract, _)| (*role, *contract))
            .collect();
        let (role, contract) = match worlds.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "the component implements no Portolan plugin world (it exports {}); \
                     build it against wit/ (portolan:plugin@{}) for one of: catalog-source, scaffold-generator, action, scorecard-check",
                    if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") },
                    Contract::CURRENT,
                ))
            }
            many => {
                return Err(format!(
                    "the component exports the interfaces of several roles or contract versions ({}); a plugin implements exactly one world",
                    many.iter().map(|(r, c)| format!("{r}@{c}")).collect::<Vec<_>>().join(", ")
                ))
            }
        };

        let instance_pre = runtime
            .linker()
            .instantiate_pre(component)
            .map_err(|e| format!("cannot link the component: {e:#}"))?;
        let typed = |e: wasmtime::Error| {
            format!("the {role} exports do not match contract {contract}: {e:#}")
        };
        let pre = match role {
            Role::CatalogSource => SourcePre::new(contract, instance_pre).map(Pre::Source),
            Role::ScaffoldGenerator => {
                GeneratorPre::new(contract, instance_pre).map(Pre::Generator)
            }
            Role::Action => ActionPre::new(contract, instance_pre).map(Pre::Action),
            Role::ScorecardCheck => CheckPre::new(contract, instance_pre).map(Pre::Check),
        }
        .map_err(typed)?;

        let mut plugin = Plugin {
            id: id.to_owned(),
            role,
            contract,
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
            checks: Vec::new(),
            action: None,
        };
        let described = plugin
            .describe()
            .result
            .and_then(|d| parse_described(d).map_err(|message| CallError::BadOutput { message }))
            .map_err(|e| format!("describe failed: {e}"))?;
        plugin.description = described.description;
        plugin.checks = described.checks;
        plugin.action = described.action;
        plugin.apply_action_policy()?;
        Ok(plugin)
    }

    /// Raises the action's required role and approval to the sidecar's
    /// `[action]` policy. Lowering either fails the load: the plugin's
    /// author decided how dangerous the action is.
    fn apply_action_policy(&mut self) -> Result<(), String> {
        let Some(policy) = self.grants.action else {
            return Ok(());
        };
        let Some(info) = self.action.as_mut() else {
            return Err("the sidecar has an [action] table but the plugin is not an action".into());
        };
        let mut problems = Vec::new();
        if let Some(role) = policy.required_role {
            if role < info.required_role {
                problems.push(format!(
                    "action.required_role = {:?} is lower than the {:?} the plugin requires; \
                     a sidecar may only raise it",
                    role_name(role),
                    role_name(info.required_role)
                ));
            } else {
                info.required_role = role;
            }
        }
        if let Some(role) = policy.approval {
            match info.approval {
                Some(own) if role < own => problems.push(format!(
                    "action.approval = {:?} is lower than the {:?} the plugin requires; \
                     a sidecar may only raise it",
                    role_name(role),
                    role_name(own)
                )),
                _ => info.approval = Some(role),
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let details = &mut self.description.details;
        details.insert(
            "requiredRole".into(),
            Value::from(role_name(info.required_role)),
        );
        details.insert(
            "approval".into(),
            info.approval
                .map(role_name)
                .map(Value::from)
                .unwrap_or(Value::Null),
        );
        Ok(())
    }

    pub fn version(&self) -> &str {
        &self.description.version
    }

    /// The checks a scorecard-check plugin offers, in the order it described
    /// them; empty for other roles. A plugin built against contract 0.1.0
    /// offers one, [`CheckInfo::LEGACY_ID`].
    pub fn checks(&self) -> &[CheckInfo] {
        &self.checks
    }

    /// What an action says about the entities it applies to, the role it
    /// needs and its approval; `None` for other roles.
    pub fn action_info(&self) -> Option<&ActionInfo> {
        self.action.as_ref()
    }

    /// Runs `f` on a fresh instance under the plugin's limits.
    fn call<R>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&Pre, &mut Store<CallState>) -> wasmtime::Result<Result<R, CallError>>,
    ) -> CallReport<R> {
        self.call_with(timeout, &CallControl::default(), f)
    }

    /// [`call`](Self::call) under the caller's control: its log sink sees
    /// each line as it is written, and its cancel flag stops the call.
    fn call_with<R>(
        &self,
        timeout: Duration,
        control: &CallControl,
        f: impl FnOnce(&Pre, &mut Store<CallState>) -> wasmtime::Result<Result<R, CallError>>,
    ) -> CallReport<R> {
        if control.cancelled() {
            return CallReport::failed(CallError::Cancelled);
        }
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
        let mut state = state;
        state.log_sink = control.log_sink.clone();
        state.cancel = control.cancel.clone();
        state.catalog = self.runtime.config().catalog.clone();
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.limiter);
        let ticks = timeout.as_millis().div_ceil(EPOCH_TICK.as_millis()) as u64;
        match control.cancel.clone() {
            None => {
                store.set_epoch_deadline(ticks.max(1));
                store.epoch_deadline_trap();
            }
            Some(cancel) => {
                // Look at the flag every few ticks; the deadline is kept by
                // counting the ticks that passed.
                let mut left = ticks.max(1);
                let step = CANCEL_CHECK_TICKS.min(left);
                store.set_epoch_deadline(step);
                let mut last = step;
                store.epoch_deadline_callback(move |_| {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(CancelRequested.into());
                    }
                    left = left.saturating_sub(last);
                    if left == 0 {
                        return Ok(UpdateDeadline::Interrupt);
                    }
                    last = CANCEL_CHECK_TICKS.min(left);
                    Ok(UpdateDeadline::Continue(last))
                });
            }
        }
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

    /// Calls `describe`, adapted to the current contract; its JSON fields
    /// are still text ([`parse_described`] checks them).
    fn describe(&self) -> CallReport<Described> {
        let timeout = self.timeout().min(DESCRIBE_TIMEOUT);
        self.call(timeout, |pre, store| {
            let described: Described = match pre {
                Pre::Source(pre) => on_version!(pre, SourcePre, |p, _v| p
                    .instantiate(&mut *store)?
                    .portolan_plugin_source()
                    .call_describe(&mut *store)?
                    .into()),
                Pre::Generator(pre) => on_version!(pre, GeneratorPre, |p, _v| p
                    .instantiate(&mut *store)?
                    .portolan_plugin_generator()
                    .call_describe(&mut *store)?
                    .into()),
                Pre::Action(pre) => on_version!(pre, ActionPre, |p, _v| p
                    .instantiate(&mut *store)?
                    .portolan_plugin_operation()
                    .call_describe(&mut *store)?
                    .into()),
                Pre::Check(pre) => on_version!(pre, CheckPre, |p, _v| p
                    .instantiate(&mut *store)?
                    .portolan_plugin_check()
                    .call_describe(&mut *store)?
                    .into()),
            };
            Ok(Ok(described))
        })
    }

    /// Evaluates a batch of entities under one of the plugin's checks and
    /// one rule's parameters. Returns one outcome per entity, in order.
    ///
    /// A `check` the plugin does not offer fails with the plugin error
    /// `unknown-check`, without calling the plugin. Entities of kinds the
    /// check does not apply to are not passed to the plugin (the contract
    /// promises it only entities of its kinds); their outcome is `skip`.
    pub fn evaluate(
        &self,
        check: &str,
        parameters: &Value,
        entities: &[Entity],
    ) -> CallReport<Vec<CheckOutcome>> {
        self.evaluate_batch(check, parameters, &EntityBatch::borrowed(entities))
    }

    /// [`Plugin::evaluate`] on a batch that keeps its entities in the
    /// contracts' shapes once converted, so that many rules (or plugins)
    /// evaluating the same entities convert them once.
    pub fn evaluate_batch(
        &self,
        check: &str,
        parameters: &Value,
        batch: &EntityBatch<'_>,
    ) -> CallReport<Vec<CheckOutcome>> {
        if self.role != Role::ScorecardCheck {
            return self.wrong_role(Role::ScorecardCheck);
        }
        let info = match self.offered_check(check) {
            Ok(info) => info,
            Err(e) => return CallReport::failed(e),
        };
        let entities = batch.entities();
        let applies: Vec<bool> = entities.iter().map(|e| info.applies_to(&e.kind)).collect();
        let sent: Vec<&Entity> = entities
            .iter()
            .zip(&applies)
            .filter_map(|(e, applies)| applies.then_some(e))
            .collect();
        let mut report = if sent.is_empty() {
            CallReport::answered(Vec::new())
        } else {
            let params = model::json_text(parameters);
            let expected = sent.len();
            self.call(self.timeout(), |pre, store| {
                let result = match pre {
                    Pre::Check(CheckPre::V0_4(p)) => {
                        let batch = batch.v0_4(&sent);
                        p.instantiate(&mut *store)?
                            .portolan_plugin_check()
                            .call_evaluate(&mut *store, check, &params, &batch)?
                            .map_err(CallError::from)
                            .and_then(|o| convert::check_outcomes(o, expected))
                    }
                    Pre::Check(CheckPre::V0_3(p)) => {
                        let batch = batch.v0_3(&sent);
                        p.instantiate(&mut *store)?
                            .portolan_plugin_check()
                            .call_evaluate(&mut *store, check, &params, &batch)?
                            .map_err(CallError::from)
                            .and_then(|o| convert::check_outcomes(o, expected))
                    }
                    Pre::Check(CheckPre::V0_2(p)) => {
                        let batch = batch.v0_2(&sent);
                        p.instantiate(&mut *store)?
                            .portolan_plugin_check()
                            .call_evaluate(&mut *store, check, &params, &batch)?
                            .map_err(CallError::from)
                            .and_then(|o| convert::check_outcomes(o, expected))
                    }
                    Pre::Check(CheckPre::V0_1(p)) => {
                        let batch = batch.v0_1(&sent);
                        p.instantiate(&mut *store)?
                            .portolan_plugin_check()
                            .call_evaluate(&mut *store, &params, &batch)?
                            .map_err(CallError::from)
                            .and_then(|o| convert::check_outcomes(o, expected))
                    }
                    _ => unreachable!("role checked above"),
                };
                Ok(result)
            })
        };
        report.result = report
            .result
            .map(|outcomes| with_skips(info, &applies, outcomes));
        self.redact_check_result(&mut report.result);
        report
    }

    /// Evaluates a batch of entities under several rules of this plugin
    /// (each a check it offers and that rule's parameters). Returns one
    /// result per rule, in order: that rule's outcome per entity, or why
    /// its share failed, as [`Plugin::evaluate_batch`] would for the rule
    /// alone.
    ///
    /// A plugin built against contract 0.4.0 is called once for all the
    /// rules (`evaluate-rules`; once per set of entities, when the rules'
    /// checks apply to different kinds), so the batch crosses into the
    /// plugin once instead of once per rule; the call may take the
    /// plugin's timeout once per rule. If such a call fails as a whole (a
    /// trap, the deadline, an answer of the wrong shape), its rules are
    /// evaluated again one by one, so a misbehaving check costs only its
    /// own rules; [`RulesReport::split`] says why. Older plugins, and
    /// single rules, are called once per rule.
    pub fn evaluate_rules(&self, rules: &[RuleCall<'_>], batch: &EntityBatch<'_>) -> RulesReport {
        let mut report = RulesReport {
            results: Vec::with_capacity(rules.len()),
            logs: Vec::new(),
            elapsed: Duration::ZERO,
            calls: 0,
            split: None,
        };
        let one_by_one = |report: &mut RulesReport, rule: &RuleCall<'_>| {
            let single = self.evaluate_batch(rule.check, rule.parameters, batch);
            report.calls += 1;
            report.add(single.logs, single.elapsed);
            single.result
        };
        let grouped = matches!(&self.pre, Pre::Check(CheckPre::V0_4(_)));
        if !grouped || rules.len() < 2 {
            for rule in rules {
                let result = one_by_one(&mut report, rule);
                report.results.push(result);
            }
            return report;
        }
        // Rules whose checks apply to the same entities share a call; a
        // rule naming a check the plugin does not offer fails alone.
        let entities = batch.entities();
        let mut results: Vec<Option<Result<Vec<CheckOutcome>, CallError>>> =
            (0..rules.len()).map(|_| None).collect();
        // Each group: which entities its checks apply to, and its rules
        // (position, check).
        type Members<'c> = Vec<(usize, &'c CheckInfo)>;
        let mut groups: Vec<(Vec<bool>, Members<'_>)> = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            match self.offered_check(rule.check) {
                Err(e) => results[r] = Some(Err(e)),
                Ok(info) => {
                    let applies: Vec<bool> =
                        entities.iter().map(|e| info.applies_to(&e.kind)).collect();
                    match groups.iter_mut().find(|(a, _)| *a == applies) {
                        Some((_, members)) => members.push((r, info)),
                        None => groups.push((applies, vec![(r, info)])),
                    }
                }
            }
        }
        for (applies, members) in groups {
            let sent: Vec<&Entity> = entities
                .iter()
                .zip(&applies)
                .filter_map(|(e, applies)| applies.then_some(e))
                .collect();
            if sent.is_empty() || members.len() == 1 {
                for (r, _) in members {
                    results[r] = Some(one_by_one(&mut report, &rules[r]));
                }
                continue;
            }
            let calls: Vec<(String, String)> = members
                .iter()
                .map(|&(r, _)| {
                    (
                        rules[r].check.to_owned(),
                        model::json_text(rules[r].parameters),
                    )
                })
                .collect();
            let expected = sent.len();
            let timeout = self.timeout().saturating_mul(members.len() as u32);
            let call = self.call(timeout, |pre, store| {
                let Pre::Check(CheckPre::V0_4(p)) = pre else {
                    unreachable!("grouped calls are made to 0.4.0 check plugins only")
                };
                use v0_4::check::exports::portolan::plugin::check as wit;
                let wit_rules: Vec<wit::Rule> = calls
                    .iter()
                    .map(|(check, parameters)| wit::Rule {
                        check: check.clone(),
                        parameters: parameters.clone(),
                    })
                    .collect();
                let batch = batch.v0_4(&sent);
                let answers = p
                    .instantiate(&mut *store)?
                    .portolan_plugin_check()
                    .call_evaluate_rules(&mut *store, &wit_rules, &batch)?;
                Ok(convert::rule_results(answers, calls.len(), expected))
            });
            report.calls += 1;
            report.add(call.logs, call.elapsed);
            match call.result {
                Ok(answers) => {
                    for (&(r, info), answer) in members.iter().zip(answers) {
                        let mut result = answer.map(|o| with_skips(info, &applies, o));
                        self.redact_check_result(&mut result);
                        results[r] = Some(result);
                    }
                }
                Err(mut whole) => {
                    self.redact_check_error(&mut whole);
                    report.split = Some(whole);
                    for (r, _) in members {
                        results[r] = Some(one_by_one(&mut report, &rules[r]));
                    }
                }
            }
        }
        // Every rule is answered above: it failed alone or was in a group.
        report.results = results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(CallError::Unavailable {
                        message: "the rule was not evaluated".into(),
                    })
                })
            })
            .collect();
        report
    }

    /// The check `check` as the plugin described it, or the plugin error
    /// `unknown-check` (the plugin is not called).
    fn offered_check(&self, check: &str) -> Result<&CheckInfo, CallError> {
        self.checks.iter().find(|c| c.id == check).ok_or_else(|| {
            let offered: Vec<&str> = self.checks.iter().map(|c| c.id.as_str()).collect();
            CallError::plugin(
                "unknown-check",
                None,
                format!(
                    "plugin \"{}\" offers no check {check:?}; it offers: {}",
                    self.id,
                    offered.join(", ")
                ),
            )
        })
    }

    /// Masks the host's secrets in what a check answered (messages,
    /// values, the plugin's own error message): outcomes are stored as
    /// results and shown on pages and badges, so a plugin that echoes a
    /// secret it was granted must not publish it.
    fn redact_check_result(&self, result: &mut Result<Vec<CheckOutcome>, CallError>) {
        if self.runtime.secrets().is_empty() {
            return;
        }
        let runtime = &self.runtime;
        match result {
            Ok(outcomes) => {
                for outcome in outcomes {
                    if let Some(message) = &mut outcome.message {
                        *message = runtime.redact(message);
                    }
                    if let Some(value) = &mut outcome.value {
                        *value = runtime.redact_json(value);
                    }
                }
            }
            Err(e) => self.redact_check_error(e),
        }
    }

    /// Masks the host's secrets in the text of a failed check call.
    fn redact_check_error(&self, error: &mut CallError) {
        if self.runtime.secrets().is_empty() {
            return;
        }
        match error {
            CallError::Plugin { message, .. }
            | CallError::BadOutput { message }
            | CallError::Trap { message } => *message = self.runtime.redact(message),
            _ => {}
        }
    }

    /// Fetches one page of a catalog source's sync.
    pub fn sync(&self, cursor: Option<String>) -> CallReport<SyncPage> {
        if self.role != Role::CatalogSource {
            return self.wrong_role(Role::CatalogSource);
        }
        self.call(self.timeout(), |pre, store| {
            Ok(match pre {
                Pre::Source(pre) => on_version!(pre, SourcePre, |p, v| settle(
                    p.instantiate(&mut *store)?
                        .portolan_plugin_source()
                        .call_sync(
                            &mut *store,
                            &v::source::exports::portolan::plugin::source::SyncRequest { cursor },
                        )?,
                )),
                _ => unreachable!("role checked above"),
            })
        })
    }

    /// Generates a new project's files from validated parameters.
    pub fn generate(&self, parameters: &Value) -> CallReport<GeneratorOutput> {
        self.generate_with(parameters, &CallControl::default())
    }

    /// [`generate`](Self::generate) with a live log and a way to stop it
    /// (see [`CallControl`]).
    pub fn generate_with(
        &self,
        parameters: &Value,
        control: &CallControl,
    ) -> CallReport<GeneratorOutput> {
        if self.role != Role::ScaffoldGenerator {
            return self.wrong_role(Role::ScaffoldGenerator);
        }
        let params = model::json_text(parameters);
        self.call_with(self.timeout(), control, |pre, store| {
            Ok(match pre {
                Pre::Generator(pre) => on_version!(pre, GeneratorPre, |p, _v| settle(
                    p.instantiate(&mut *store)?
                        .portolan_plugin_generator()
                        .call_generate(&mut *store, &params)?,
                )),
                _ => unreachable!("role checked above"),
            })
        })
    }

    /// Runs a day-2 action. A plugin built against contract 0.1.0 does not
    /// learn the invocation's actor and attempt.
    pub fn run_action(&self, invocation: &ActionInvocation) -> CallReport<ActionOutcome> {
        self.run_action_with(invocation, &CallControl::default())
    }

    /// [`run_action`](Self::run_action) with a live log and a way to stop
    /// it (see [`CallControl`]).
    pub fn run_action_with(
        &self,
        invocation: &ActionInvocation,
        control: &CallControl,
    ) -> CallReport<ActionOutcome> {
        if self.role != Role::Action {
            return self.wrong_role(Role::Action);
        }
        self.call_with(self.timeout(), control, |pre, store| {
            Ok(match pre {
                Pre::Action(pre) => on_version!(pre, ActionPre, |p, _v| settle(
                    p.instantiate(&mut *store)?
                        .portolan_plugin_operation()
                        .call_run(&mut *store, &invocation.into())?,
                )),
                _ => unreachable!("role checked above"),
            })
        })
    }
}

fn role_name(role: ActionRole) -> &'static str {
    match role {
        ActionRole::Viewer => "viewer",
        ActionRole::Member => "member",
        ActionRole::Admin => "admin",
    }
}

/// A role call's answer in the model: the plugin's error as
/// [`CallError::Plugin`], its result converted (which may find it invalid).
fn settle<T, E, M>(answer: Result<T, E>) -> Result<M, CallError>
where
    CallError: From<E>,
    M: TryFrom<T, Error = CallError>,
{
    answer.map_err(CallError::from).and_then(M::try_from)
}

/// What `describe` said, checked and parsed.
struct Parsed {
    description: Description,
    checks: Vec<CheckInfo>,
    action: Option<ActionInfo>,
}

/// Checks what `describe` returned: JSON fields parse (schemas as JSON
/// objects where the contract says so) and a check plugin's checks are well
/// formed. Reports every problem at once.
fn parse_described(d: Described) -> Result<Parsed, String> {
    let bad = |m: String| vec![m];
    let mut details = serde_json::Map::new();
    let mut checks = Vec::new();
    let mut action = None;
    let problems = match d.role {
        DescribedRole::Source { settings_schema } => match settings_schema {
            None => Ok(()),
            Some(text) => model::parse_json("settings-schema", &text)
                .map(|v| {
                    details.insert("settingsSchema".into(), v);
                })
                .map_err(bad),
        },
        DescribedRole::Generator {
            tags,
            parameters_schema,
        } => model::parse_schema("parameters-schema", &parameters_schema)
            .map(|schema| {
                details.insert("tags".into(), Value::from(tags));
                details.insert("parametersSchema".into(), schema);
            })
            .map_err(bad),
        DescribedRole::Action(a) => model::parse_schema("input-schema", &a.input_schema)
            .map(|input_schema| {
                let info = ActionInfo {
                    entity_kinds: a.entity_kinds,
                    entity_types: a.entity_types,
                    entity_tags: a.entity_tags,
                    input_schema,
                    required_role: a.required_role,
                    approval: a.approval,
                };
                if let Ok(Value::Object(fields)) = serde_json::to_value(&info) {
                    details.extend(fields);
                }
                action = Some(info);
            })
            .map_err(bad),
        DescribedRole::Check(described) => validate_checks(described).map(|valid| {
            details.insert(
                "checks".into(),
                serde_json::to_value(&valid).unwrap_or_default(),
            );
            checks = valid;
        }),
    };
    problems.map_err(|p| p.join("; "))?;
    Ok(Parsed {
        description: Description {
            title: d.title,
            version: d.version,
            description: d.description,
            details,
        },
        checks,
        action,
    })
}

/// Checks a check plugin's list of checks: at least one; ids of 1 to
/// [`MAX_CHECK_ID_LEN`] characters of `a-z`, `0-9` and `-`, unique; each
/// parameters schema a JSON object. Returns every problem found.
fn validate_checks(described: Vec<DescribedCheck>) -> Result<Vec<CheckInfo>, Vec<String>> {
    if described.is_empty() {
        return Err(vec![
            "checks is empty: a scorecard-check plugin offers at least one check".to_owned(),
        ]);
    }
    let mut problems = Vec::new();
    let mut checks = Vec::with_capacity(described.len());
    for (i, c) in described.into_iter().enumerate() {
        let well_formed = !c.id.is_empty()
            && c.id.len() <= MAX_CHECK_ID_LEN
            && c.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !well_formed {
            problems.push(format!(
                "checks[{i}].id {:?} must be 1 to {MAX_CHECK_ID_LEN} characters of a-z, 0-9 and '-'",
                c.id
            ));
        }
        if let Some(first) = checks.iter().position(|k: &CheckInfo| k.id == c.id) {
            problems.push(format!(
                "checks[{i}].id {:?} repeats the id of checks[{first}]",
                c.id
            ));
        }
        let schema = match model::parse_json(
            &format!("checks[{i}].parameters-schema"),
            &c.parameters_schema,
        ) {
            Ok(v @ Value::Object(_)) => v,
            Ok(other) => {
                problems.push(format!(
                    "checks[{i}].parameters-schema must be a JSON Schema object, not {}",
                    json_kind(&other)
                ));
                other
            }
            Err(e) => {
                problems.push(e);
                Value::Null
            }
        };
        checks.push(CheckInfo {
            id: c.id,
            title: c.title,
            description: c.description,
            entity_kinds: c.entity_kinds,
            parameters_schema: schema,
        });
    }
    if problems.is_empty() {
        Ok(checks)
    } else {
        Err(problems)
    }
}

/// The JSON type of a value, for messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, schema: &str) -> DescribedCheck {
        DescribedCheck {
            id: id.into(),
            title: format!("Check {id}"),
            description: String::new(),
            entity_kinds: vec![],
            parameters_schema: schema.into(),
        }
    }

    #[test]
    fn well_formed_checks_are_parsed_in_order() {
        let checks = validate_checks(vec![
            check("has-owner", r#"{"type": "object"}"#),
            check("a", "{}"),
            check(&"x".repeat(MAX_CHECK_ID_LEN), "{}"),
        ])
        .unwrap();
        let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["has-owner", "a", &"x".repeat(MAX_CHECK_ID_LEN)]);
        assert_eq!(
            checks[0].parameters_schema,
            serde_json::json!({"type": "object"})
        );
    }

    #[test]
    fn a_plugin_without_checks_is_refused() {
        let problems = validate_checks(vec![]).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("at least one check"), "{problems:?}");
    }

    #[test]
    fn every_bad_check_is_named() {
        let problems = validate_checks(vec![
            check("Has Owner", "{}"),
            check("dup", "{}"),
            check("dup", "{}"),
            check("", "{}"),
            check(&"x".repeat(MAX_CHECK_ID_LEN + 1), "{}"),
            check("not-json", "{oops"),
            check("not-object", "[1]"),
        ])
        .unwrap_err();
        let expect = [
            "checks[0].id \"Has Owner\" must be",
            "checks[2].id \"dup\" repeats the id of checks[1]",
            "checks[3].id \"\" must be",
            "checks[4].id",
            "checks[5].parameters-schema is not valid JSON",
            "checks[6].parameters-schema must be a JSON Schema object, not an array",
        ];
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
        for (problem, expected) in problems.iter().zip(expect) {
            assert!(problem.starts_with(expected), "{problem:?} vs {expected:?}");
        }
    }

    #[test]
    fn action_details_show_filters_role_and_approval() {
        let parsed = parse_described(Described {
            title: "Restart".into(),
            version: "1.0.0".into(),
            description: "Restarts a service.".into(),
            role: DescribedRole::Action(convert::DescribedAction {
                entity_kinds: vec!["Component".into()],
                entity_types: vec!["service".into()],
                entity_tags: vec![],
                input_schema: "{}".into(),
                required_role: model::ActionRole::Admin,
                approval: Some(model::ActionRole::Member),
            }),
        })
        .unwrap();
        let details = Value::Object(parsed.description.details);
        assert_eq!(
            details,
            serde_json::json!({
                "entityKinds": ["Component"],
                "entityTypes": ["service"],
                "entityTags": [],
                "inputSchema": {},
                "requiredRole": "admin",
                "approval": "member"
            })
        );
        assert_eq!(
            parsed.action.unwrap().required_role,
            model::ActionRole::Admin
        );
    }
}
