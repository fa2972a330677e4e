//! Scorecard evaluation: a durable queue of evaluations, the scheduler that
//! fills it and the workers that run it.
//!
//! An evaluation covers one scorecard, either every entity it covers
//! (scope `all`) or a list of entities (scope `entities`). Full
//! evaluations are queued when a scorecard is new, when its revision
//! changes (its definition, or a plugin one of its rules calls, was
//! replaced), on the `[scorecards] every` schedule, and on demand. Entity
//! evaluations are queued when the catalog changes: the API and the source
//! sync mark the entities they wrote or removed as stale
//! (`Store::mark_entities_stale`), and the scheduler takes those marks and
//! queues one evaluation per scorecard. Exemptions that are granted,
//! revoked or expire mark their entity stale too.
//!
//! Full and entity evaluations of a scorecard are separate job subjects
//! (`ID` and `ID:entities`), so that the newest full evaluation tells the
//! scheduler which revision was last evaluated in full.
//!
//! A worker loads the definition, resolves each rule to a loaded check
//! plugin, and walks the covered entities in chunks: per chunk, each rule's
//! check is called with batches of entities (the calls of different rules
//! run in parallel on the blocking pool), each entity's answers and the
//! exemptions in force become its level, and the chunk's results are
//! written in one transaction. A full evaluation rewrites only the
//! entities whose results or level changed; once it has gone through every
//! entity it records when it started, which the entities it left alone
//! then show as the time they were evaluated. A check that fails (trap,
//! timeout, garbage, plugin not loaded) gives `error` results for its rule
//! on that batch only; every other rule is still evaluated.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use portolan_catalog::{Entity as CatalogEntity, EntityRef, RefDefaults};
use portolan_runtime::model::{
    Entity as PluginEntity, Link as PluginLink, Metadata, Relation as PluginRelation,
};
use portolan_runtime::{
    CallError, EntityBatch, Plugin, PluginEntry, PluginStatus, Role as PluginRole,
};
use portolan_scorecards::{
    covers, evaluate_entity, ActiveExemptions, CheckAnswer, CheckRef, Exemption, Outcome,
    ScorecardDefinition,
};
use portolan_store::{
    EntityEvaluation, EntityQuery, Job, JobStatus, NewJob, StoreError, WriteMode,
};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::checks::{self, CheckOffer};

/// The queue evaluations wait in.
pub const QUEUE: &str = "scorecard-evaluation";

/// How long a worker holds an evaluation before another replica may take
/// it over; renewed after every chunk.
pub const LEASE: Duration = Duration::from_secs(120);

/// How often the scheduler looks for due work.
pub const TICK: Duration = Duration::from_secs(1);

/// Evaluations run at once on one replica. One suffices: an evaluation
/// already spreads its plugin calls over the cores.
pub const WORKERS: usize = 1;

/// Entities per chunk: each chunk is read, evaluated and written before
/// the next one, and its results are one transaction.
pub const CHUNK: usize = 2_000;

/// Entities per plugin call.
pub const CALL_BATCH: usize = 500;

/// The most stale entities taken into entity evaluations per tick; when
/// more wait, every scorecard is evaluated in full instead.
pub const MAX_STALE: u32 = 5_000;

/// Subject of a scorecard's entity evaluations.
pub fn entities_subject(scorecard: &str) -> String {
    format!("{scorecard}:entities")
}

/// What an evaluation covers.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every entity the scorecard covers; forgets the others.
    All,
    /// These entities (lower-cased references).
    Entities(Vec<String>),
}

/// The loaded check plugin and offer a `plugin/check` reference names, or
/// why there is none.
pub fn resolve_check(
    state: &AppState,
    reference: &CheckRef,
) -> Result<(Arc<Plugin>, CheckOffer), String> {
    let Some(entry) = state.registry.get(&reference.plugin) else {
        return Err(format!("no plugin {:?} is installed", reference.plugin));
    };
    let plugin = match (&entry.plugin, entry.status) {
        (Some(p), PluginStatus::Ready) => p.clone(),
        _ => {
            return Err(format!(
                "plugin {:?} is not loaded{}",
                reference.plugin,
                entry
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ))
        }
    };
    if entry.role != Some(PluginRole::ScorecardCheck) {
        return Err(format!(
            "plugin {:?} is not a scorecard-check plugin",
            reference.plugin
        ));
    }
    checks::offers(&plugin)
        .into_iter()
        .find(|c| c.id == reference.check)
        .map(|offer| (plugin.clone(), offer))
        .ok_or_else(|| {
            format!(
                "plugin {:?} offers no check {:?}",
                reference.plugin, reference.check
            )
        })
}

/// A scorecard's revision: its definition and, for every plugin its rules
/// call, that plugin's component and grants. A new revision queues a full
/// evaluation.
pub fn revision(state: &AppState, definition: &Value) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(definition).unwrap_or_default());
    let mut plugins: Vec<&str> = definition
        .get("rules")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .filter_map(|r| r.get("check").and_then(Value::as_str))
                .filter_map(|c| c.split_once('/').map(|(p, _)| p))
                .collect()
        })
        .unwrap_or_default();
    plugins.sort_unstable();
    plugins.dedup();
    for id in plugins {
        h.update(id.as_bytes());
        match state.registry.get(id) {
            Some(entry) if entry.status == PluginStatus::Ready => {
                h.update(crate::sync::revision(&entry).as_bytes())
            }
            _ => h.update(b"-"),
        }
    }
    hex::encode(&h.finalize()[..8])
}

/// Queues an evaluation of `scorecard` and wakes the local workers.
/// Returns the job and whether it is new: a full evaluation already
/// waiting is returned instead of queueing a second one.
pub async fn enqueue(
    state: &AppState,
    scorecard: &str,
    definition: &Value,
    scope: Scope,
    triggered_by: &str,
    actor: Option<String>,
) -> Result<(Job, bool), StoreError> {
    let (subject, payload, dedupe) = match &scope {
        Scope::All => (
            scorecard.to_owned(),
            json!({"scope": "all", "revision": revision(state, definition)}),
            true,
        ),
        Scope::Entities(refs) => (
            entities_subject(scorecard),
            json!({"scope": "entities", "entities": refs, "revision": revision(state, definition)}),
            false,
        ),
    };
    let out = state
        .store
        .enqueue_job(&NewJob {
            queue: QUEUE.to_owned(),
            subject,
            triggered_by: triggered_by.to_owned(),
            actor,
            payload,
            dedupe,
        })
        .await?;
    if out.1 {
        tracing::debug!(scorecard, job = %out.0.id, triggered_by, "scorecard evaluation queued");
    }
    state.evaluation_wake.notify();
    Ok(out)
}

/// Starts the scheduler and the workers; they stop when `stop` turns true.
pub fn spawn(state: AppState, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let replica = crate::sync::replica_id();
    tokio::spawn(async move {
        let mut tasks = vec![tokio::spawn(scheduler(state.clone(), stop.clone()))];
        for n in 0..WORKERS {
            let owner = format!("{replica}/eval-{n}");
            tasks.push(tokio::spawn(worker(state.clone(), owner, stop.clone())));
        }
        for t in tasks {
            let _ = t.await;
        }
    })
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn scheduler(state: AppState, mut stop: watch::Receiver<bool>) {
    let interrupted = json!({
        "code": "interrupted",
        "message": "the portal process running this evaluation stopped before it finished \
                    (its lease expired); the results of the chunks it wrote are kept",
    });
    // Exemptions that expired while no replica was watching are caught by
    // the scheduled full evaluations; a day back covers restarts.
    let mut expiries_checked = Utc::now() - chrono::Duration::days(1);
    let mut ticks: u64 = 0;
    loop {
        if ticks.is_multiple_of(5) {
            crate::scorecards::load_files(&state).await;
        }
        ticks += 1;
        if let Err(e) = state.store.expire_jobs(QUEUE, &interrupted).await {
            tracing::warn!(error = format!("{e:#}"), "cannot expire stale evaluations");
        }
        let now = Utc::now();
        match mark_expired_exemptions(&state, expiries_checked, now).await {
            Ok(()) => expiries_checked = now,
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "cannot look up expired exemptions"
            ),
        }
        // Before the first scan of the plugins folder every check looks
        // missing; wait for it.
        if state.registry.scans_completed() > 0 {
            if let Err(e) = schedule_due(&state).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot schedule scorecard evaluations"
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

async fn mark_expired_exemptions(
    state: &AppState,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    let expired = state.store.exemptions_expired_between(after, until).await?;
    if !expired.is_empty() {
        let refs: Vec<String> = expired.into_iter().map(|e| e.entity_ref).collect();
        state.store.mark_entities_stale(&refs).await?;
    }
    Ok(())
}

async fn schedule_due(state: &AppState) -> Result<(), StoreError> {
    let scorecards = state.store.list_scorecards().await?;
    if scorecards.is_empty() {
        // Nothing to re-evaluate; don't let marks pile up.
        if state.store.count_stale_entities().await? > 0 {
            state.store.clear_stale_entities().await?;
        }
        return Ok(());
    }
    let latest: HashMap<String, Job> = state
        .store
        .latest_jobs(QUEUE)
        .await?
        .into_iter()
        .map(|j| (j.subject.clone(), j))
        .collect();
    let now = Utc::now();
    let every = state.config.scorecards.every;
    let stale = state.store.take_stale_entities(MAX_STALE).await?;
    let overflow = stale.len() as u32 >= MAX_STALE && state.store.count_stale_entities().await? > 0;
    if overflow {
        state.store.clear_stale_entities().await?;
    }
    for card in &scorecards {
        let current = revision(state, &card.definition);
        let reason = match latest.get(&card.id) {
            None => Some("created"),
            Some(job) if !job.status.is_final() => None,
            Some(job) if job.payload.get("revision").and_then(Value::as_str) != Some(&current) => {
                Some("changed")
            }
            Some(_) if overflow => Some("catalog-change"),
            Some(job) => {
                let last = job.started_at.unwrap_or(job.queued_at);
                let due = chrono::Duration::from_std(every)
                    .map(|d| last + d <= now)
                    .unwrap_or(false);
                due.then_some("schedule")
            }
        };
        if let Some(reason) = reason {
            enqueue(state, &card.id, &card.definition, Scope::All, reason, None).await?;
        } else if !stale.is_empty() && !overflow {
            enqueue(
                state,
                &card.id,
                &card.definition,
                Scope::Entities(stale.clone()),
                "catalog-change",
                None,
            )
            .await?;
        }
    }
    Ok(())
}

async fn worker(state: AppState, owner: String, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let wake = state.evaluation_wake.clone();
        let notified = wake.notified();
        match state.store.claim_job(QUEUE, &owner, LEASE).await {
            Ok(Some(job)) => {
                let id = job.id.clone();
                tokio::select! {
                    _ = run(&state, &owner, job) => {}
                    _ = stopped(&mut stop) => {
                        let error = json!({
                            "code": "interrupted",
                            "message": "the portal shut down during this evaluation; \
                                        the results of the chunks it wrote are kept",
                        });
                        let _ = state
                            .store
                            .finish_job(&id, &owner, JobStatus::Failed, None, Some(&error))
                            .await;
                        return;
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot claim an evaluation"),
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// What an evaluation did, counted.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Entities evaluated.
    pub entities: usize,
    /// Rule results written.
    pub results: usize,
    /// Entities whose level changed.
    pub level_changes: usize,
    /// Entities a full evaluation found with the results and level they
    /// had, whose stored standing it left as it was (and confirmed).
    pub unchanged: usize,
    /// Entities whose results were removed (gone from the catalog or no
    /// longer covered).
    pub forgotten: usize,
    /// Plugin calls made (a call for several rules counts once), and how
    /// many failures they met: a rule's share of a batch that failed, and
    /// a call for several rules that failed as a whole.
    pub calls: usize,
    pub failed_calls: usize,
}

/// Why an evaluation failed as a whole.
#[derive(Debug)]
struct Failure {
    code: &'static str,
    message: String,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure {
            code: "database",
            message: format!("{e:#}"),
        }
    }
}

async fn run(state: &AppState, owner: &str, job: Job) {
    let started = Instant::now();
    let mut problems: Vec<Value> = Vec::new();
    let outcome = evaluate(state, owner, &job, &mut problems).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let scorecard = job.payload_subject();
    let (status, result, error) = match outcome {
        Ok(counts) => {
            tracing::info!(scorecard, job = %job.id, duration_ms, ?counts, "scorecard evaluation succeeded");
            (
                JobStatus::Succeeded,
                json!({"counts": counts, "durationMs": duration_ms, "problems": problems}),
                None,
            )
        }
        Err(f) => {
            tracing::warn!(scorecard, job = %job.id, code = f.code, message = %f.message, "scorecard evaluation failed");
            (
                JobStatus::Failed,
                json!({"durationMs": duration_ms, "problems": problems}),
                Some(json!({"code": f.code, "message": f.message})),
            )
        }
    };
    if let Err(e) = state
        .store
        .finish_job(&job.id, owner, status, Some(&result), error.as_ref())
        .await
    {
        tracing::warn!(job = %job.id, error = format!("{e:#}"), "cannot record the end of an evaluation");
    }
}

/// The scorecard id of an evaluation job, whatever its scope.
trait EvaluationJob {
    fn payload_subject(&self) -> &str;
}

impl EvaluationJob for Job {
    fn payload_subject(&self) -> &str {
        self.subject
            .strip_suffix(":entities")
            .unwrap_or(&self.subject)
    }
}

/// One rule, ready to call.
struct RulePlan {
    id: String,
    check: Result<(Arc<Plugin>, String), String>,
    /// Lower-cased kinds the check looks at; empty means all.
    kinds: Vec<String>,
    parameters: Value,
}

/// The plan of a scorecard's evaluation.
pub struct Plan {
    definition: ScorecardDefinition,
    rules: Vec<RulePlan>,
    exemptions: ActiveExemptions,
    /// Plugins whose call for several rules failed as a whole during this
    /// evaluation: their rules are called one by one from then on.
    split: std::sync::Mutex<HashSet<String>>,
}

impl Plan {
    /// Resolves every rule of `definition` against the loaded plugins; the
    /// exemptions in force now apply.
    pub fn new(
        state: &AppState,
        definition: ScorecardDefinition,
        exemptions: &[Exemption],
    ) -> Plan {
        let rules = definition
            .rules
            .iter()
            .map(|rule| {
                let resolved = CheckRef::parse(&rule.check)
                    .and_then(|r| resolve_check(state, &r).map(|(p, offer)| (p, offer, r)));
                let (check, kinds) = match resolved {
                    Ok((plugin, offer, r)) => (
                        Ok((plugin, r.check)),
                        offer
                            .entity_kinds
                            .iter()
                            .map(|k| k.to_lowercase())
                            .collect(),
                    ),
                    Err(e) => (Err(e), Vec::new()),
                };
                RulePlan {
                    id: rule.id.clone(),
                    check,
                    kinds,
                    parameters: rule.parameters.clone(),
                }
            })
            .collect();
        Plan {
            definition,
            rules,
            exemptions: ActiveExemptions::at(exemptions, Utc::now()),
            split: std::sync::Mutex::new(HashSet::new()),
        }
    }

    /// Evaluates a chunk of entities: every rule's check on batches of
    /// them, in parallel on the blocking pool, then each entity's level.
    ///
    /// The rules a plugin serves over the same entities go to it together,
    /// one call per batch (`evaluate-rules`), so a batch crosses into the
    /// plugin once for all of them. When such a call fails as a whole, the
    /// runtime evaluates those rules again one by one, and the plugin's
    /// rules are called one by one for the rest of this evaluation: a
    /// misbehaving check then costs each batch one failed call, not two.
    pub async fn evaluate_chunk(
        &self,
        entities: &[CatalogEntity],
        counts: &mut Counts,
    ) -> Vec<EntityEvaluation> {
        let kinds: Vec<String> = entities.iter().map(|e| e.kind.to_lowercase()).collect();
        // answers[entity][rule]
        let mut answers: Vec<Vec<Option<CheckAnswer>>> =
            vec![vec![None; self.rules.len()]; entities.len()];
        // The rules that call a plugin, grouped by plugin and by the
        // entities they apply to (usually one group per plugin).
        let mut groups: Vec<RuleGroup> = Vec::new();
        for (r, rule) in self.rules.iter().enumerate() {
            let (applicable, other_kinds): (Vec<usize>, Vec<usize>) = (0..entities.len())
                .partition(|&i| rule.kinds.is_empty() || rule.kinds.contains(&kinds[i]));
            for i in other_kinds {
                answers[i][r] = Some(CheckAnswer {
                    outcome: Outcome::Skip,
                    message: Some(format!(
                        "the check looks only at entities of kind {}",
                        rule.kinds.join(", ")
                    )),
                    value: None,
                });
            }
            let (plugin, check) = match &rule.check {
                Ok((plugin, check)) => (plugin, check),
                Err(why) => {
                    for &i in &applicable {
                        answers[i][r] = Some(error_answer(why.clone()));
                    }
                    continue;
                }
            };
            if applicable.is_empty() {
                continue;
            }
            let alone = self.split.lock().is_ok_and(|s| s.contains(&plugin.id));
            let joins = groups
                .iter_mut()
                .find(|g| !alone && Arc::ptr_eq(&g.plugin, plugin) && g.applicable == applicable);
            match joins {
                Some(group) => group.rules.push((r, check.clone())),
                None => groups.push(RuleGroup {
                    plugin: plugin.clone(),
                    applicable,
                    rules: vec![(r, check.clone())],
                }),
            }
        }
        // The batches of entities as plugins see them, made once per set
        // of entities and shared by every group with that set.
        let mut batches_of: HashMap<Vec<usize>, Vec<CallBatch>> = HashMap::new();
        let mut calls = tokio::task::JoinSet::new();
        let parallel = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
        for group in groups {
            let batches = batches_of
                .entry(group.applicable.clone())
                .or_insert_with_key(|applicable| {
                    applicable
                        .chunks(CALL_BATCH)
                        .map(|indices| CallBatch {
                            indices: Arc::new(indices.to_vec()),
                            entities: Arc::new(EntityBatch::new(
                                indices
                                    .iter()
                                    .map(|&i| plugin_entity(&entities[i]))
                                    .collect(),
                            )),
                        })
                        .collect()
                });
            let rules: Arc<Vec<(usize, (String, Value))>> = Arc::new(
                group
                    .rules
                    .iter()
                    .map(|(r, check)| (*r, (check.clone(), self.rules[*r].parameters.clone())))
                    .collect(),
            );
            for batch in batches.iter() {
                let CallBatch { indices, entities } = batch.clone();
                let (plugin, rules) = (group.plugin.clone(), rules.clone());
                let permits = permits.clone();
                calls.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let call_rules = rules.clone();
                    let report = tokio::task::spawn_blocking(move || {
                        let calls: Vec<(String, Value)> =
                            call_rules.iter().map(|(_, call)| call.clone()).collect();
                        let answer = checks::evaluate_rules(&plugin, &calls, &entities);
                        (plugin, answer)
                    })
                    .await;
                    (rules, indices, report)
                });
            }
        }
        while let Some(joined) = calls.join_next().await {
            let Ok((rules, batch, report)) = joined else {
                continue;
            };
            let (plugin, report) = match report {
                Ok(done) => done,
                Err(e) => {
                    // The blocking task panicked: its rules err on its batch.
                    counts.calls += 1;
                    counts.failed_calls += 1;
                    for &(r, _) in rules.iter() {
                        for &i in batch.iter() {
                            answers[i][r] =
                                Some(error_answer(format!("the check's call failed: {e}")));
                        }
                    }
                    continue;
                }
            };
            counts.calls += report.calls;
            if let Some(why) = &report.split {
                counts.failed_calls += 1;
                tracing::warn!(
                    plugin = %plugin.id,
                    error = %why,
                    "a call for several rules failed as a whole; the plugin's rules are now called one by one"
                );
                if let Ok(mut split) = self.split.lock() {
                    split.insert(plugin.id.clone());
                }
            }
            for (&(r, _), result) in rules.iter().zip(report.results) {
                match result {
                    Ok(outcomes) => {
                        for (&i, answer) in batch.iter().zip(outcomes) {
                            answers[i][r] = Some(answer);
                        }
                    }
                    Err(e) => {
                        counts.failed_calls += 1;
                        let why = call_failure(&e);
                        for &i in batch.iter() {
                            answers[i][r] = Some(error_answer(why.clone()));
                        }
                    }
                }
            }
        }
        entities
            .iter()
            .zip(answers)
            .map(|(entity, answers)| {
                let by_rule: HashMap<&str, CheckAnswer> = self
                    .rules
                    .iter()
                    .zip(answers)
                    .filter_map(|(rule, a)| a.map(|a| (rule.id.as_str(), a)))
                    .collect();
                evaluate_entity(
                    &self.definition,
                    &entity.entity_ref().key(),
                    &by_rule,
                    &self.exemptions,
                )
            })
            .collect()
    }
}

/// Rules of one plugin over the same entities of a chunk, called together.
struct RuleGroup {
    plugin: Arc<Plugin>,
    /// The entities' positions in the chunk.
    applicable: Vec<usize>,
    /// The rules' positions in the plan, with the check each names.
    rules: Vec<(usize, String)>,
}

/// One call's share of a chunk: the entities' positions in the chunk and
/// the entities as plugins see them (converted to a contract's shape once,
/// for every rule that calls a plugin of that contract).
#[derive(Clone)]
struct CallBatch {
    indices: Arc<Vec<usize>>,
    entities: Arc<EntityBatch<'static>>,
}

fn error_answer(message: String) -> CheckAnswer {
    CheckAnswer {
        outcome: Outcome::Error,
        message: Some(message),
        value: None,
    }
}

/// The message an entity's result carries when its check's call failed.
fn call_failure(e: &CallError) -> String {
    format!("the check failed: {e}")
}

/// The entity as plugins see it.
pub fn plugin_entity(e: &CatalogEntity) -> PluginEntity {
    PluginEntity {
        api_version: e.api_version.clone(),
        kind: e.kind.clone(),
        metadata: Metadata {
            name: e.metadata.name.clone(),
            namespace: e.metadata.namespace.clone(),
            title: e.metadata.title.clone(),
            description: e.metadata.description.clone(),
            labels: e.metadata.labels.clone(),
            annotations: e.metadata.annotations.clone(),
            tags: e.metadata.tags.clone(),
            links: e
                .metadata
                .links
                .iter()
                .map(|l| PluginLink {
                    url: l.url.clone(),
                    title: l.title.clone(),
                    icon: l.icon.clone(),
                    kind: l.kind.clone(),
                })
                .collect(),
        },
        spec: Value::Object(e.spec.clone()),
        relations: e
            .relations
            .iter()
            .map(|r| PluginRelation {
                kind: r.kind.clone(),
                target_ref: r.target_ref.clone(),
            })
            .collect(),
    }
}

/// The catalog query that narrows the entities a scorecard may cover; the
/// filter itself ([`covers`]) decides.
fn coverage_query(definition: &ScorecardDefinition) -> EntityQuery {
    let f = &definition.filter;
    EntityQuery {
        kinds: f.kinds.clone(),
        namespaces: f.namespaces.clone(),
        lifecycles: f.lifecycles.clone(),
        types: f.types.clone(),
        tags: f.tags.clone(),
        limit: portolan_store::query::MAX_PAGE_SIZE,
        ..EntityQuery::default()
    }
}

/// Of the entities with a standing that a full evaluation did not see,
/// those to forget: gone from the catalog, or no longer covered by the
/// scorecard's filter. One that is there and covered was created (or moved
/// into coverage) after the run's pages passed its place; its standing
/// comes from the entity evaluation its change queued, which another
/// replica may already have written, and must stay.
async fn no_longer_covered(
    state: &AppState,
    filter: &portolan_scorecards::EntityFilter,
    unseen: Vec<String>,
) -> Result<Vec<String>, Failure> {
    if unseen.is_empty() {
        return Ok(unseen);
    }
    let defaults = RefDefaults {
        kind: None,
        namespace: "default",
    };
    // A stored key that no longer parses names nothing in the catalog.
    let refs: Vec<EntityRef> = unseen
        .iter()
        .filter_map(|r| EntityRef::parse(r, defaults).ok())
        .collect();
    let present: HashSet<String> = state
        .store
        .entities(&refs)
        .await?
        .into_iter()
        .flatten()
        .filter(|stored| covers(filter, &stored.entity))
        .map(|stored| stored.entity.entity_ref().key())
        .collect();
    Ok(unseen
        .into_iter()
        .filter(|r| !present.contains(r))
        .collect())
}

/// Runs an evaluation right here, outside the queue (benchmarks and
/// tools): the same steps a worker takes.
pub async fn evaluate_now(
    state: &AppState,
    scorecard: &str,
    scope: Scope,
) -> Result<Counts, String> {
    let mut problems = Vec::new();
    evaluate_scope(state, None, scorecard, scope, &mut problems)
        .await
        .map_err(|f| format!("{}: {}", f.code, f.message))
}

async fn evaluate(
    state: &AppState,
    owner: &str,
    job: &Job,
    problems: &mut Vec<Value>,
) -> Result<Counts, Failure> {
    let scope = match job.payload.get("scope").and_then(Value::as_str) {
        Some("entities") => Scope::Entities(
            job.payload
                .get("entities")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => Scope::All,
    };
    evaluate_scope(
        state,
        Some((owner, &job.id)),
        job.payload_subject(),
        scope,
        problems,
    )
    .await
}

/// Evaluates `scope` of scorecard `id`; with a `lease` (worker, job id),
/// renews it and records progress after every page.
async fn evaluate_scope(
    state: &AppState,
    lease: Option<(&str, &str)>,
    id: &str,
    scope: Scope,
    problems: &mut Vec<Value>,
) -> Result<Counts, Failure> {
    let id = id.to_owned();
    let Some(stored) = state.store.scorecard(&id).await? else {
        return Err(Failure {
            code: "not-found",
            message: format!("scorecard {id} was deleted before its evaluation ran"),
        });
    };
    let definition =
        ScorecardDefinition::from_value(stored.definition.clone()).map_err(|e| Failure {
            code: "invalid-definition",
            message: format!("the stored definition no longer validates: {e}"),
        })?;
    let exemptions: Vec<Exemption> = state
        .store
        .scorecard_exemptions(&id, None)
        .await?
        .into_iter()
        .map(Exemption::from)
        .collect();
    let plan = Plan::new(state, definition, &exemptions);
    for rule in &plan.rules {
        if let Err(why) = &rule.check {
            problems.push(json!({"rule": rule.id, "message": why}));
        }
    }
    let mut counts = Counts::default();
    match scope {
        Scope::All => {
            // Standings found unchanged are left alone, and confirmed as a
            // whole once every covered entity has been written.
            let started = Utc::now();
            let mut writer = ResultWriter::new(state, &id, WriteMode::ChangedOnly);
            let mut query = coverage_query(&plan.definition);
            let mut seen: HashSet<String> = HashSet::new();
            // Each page is read while the one before it is evaluated.
            let read = |query: EntityQuery| {
                let store = state.store.clone();
                tokio::spawn(async move { store.list_entities(&query).await })
            };
            let mut next = Some(read(query.clone()));
            while let Some(reading) = next.take() {
                let page = reading.await.map_err(|e| Failure {
                    code: "database",
                    message: format!("reading the catalog stopped: {e}"),
                })??;
                if let Some(after) = &page.next_after {
                    query.after = Some(after.clone());
                    next = Some(read(query.clone()));
                }
                let covered: Vec<CatalogEntity> = page
                    .items
                    .into_iter()
                    .map(|s| s.entity)
                    .filter(|e| covers(&plan.definition.filter, e))
                    .collect();
                for chunk in covered.chunks(CHUNK) {
                    let evaluations = plan.evaluate_chunk(chunk, &mut counts).await;
                    writer.write(evaluations, &mut counts).await?;
                    seen.extend(chunk.iter().map(|e| e.entity_ref().key()));
                }
                if let Some((owner, job_id)) = lease {
                    let progress = json!({"entities": counts.entities});
                    state
                        .store
                        .renew_job(job_id, owner, LEASE, Some(&progress))
                        .await?;
                }
            }
            writer.finish(&mut counts).await?;
            let unseen: Vec<String> = state
                .store
                .scorecard_entity_refs(&id)
                .await?
                .into_iter()
                .filter(|r| !seen.contains(r))
                .collect();
            let gone = no_longer_covered(state, &plan.definition.filter, unseen).await?;
            if !gone.is_empty() {
                let refs: Vec<&str> = gone.iter().map(String::as_str).collect();
                state.store.forget_scorecard_entities(&id, &refs).await?;
                counts.forgotten = gone.len();
            }
            state.store.confirm_scorecard_results(&id, started).await?;
        }
        Scope::Entities(refs) => {
            let mut writer = ResultWriter::new(state, &id, WriteMode::All);
            let mut covered = Vec::new();
            let mut gone = Vec::new();
            for r in refs {
                let defaults = RefDefaults {
                    kind: None,
                    namespace: "default",
                };
                let found = match EntityRef::parse(&r, defaults) {
                    Ok(entity_ref) => state.store.entity(&entity_ref).await?,
                    Err(_) => None,
                };
                match found {
                    Some(stored) if covers(&plan.definition.filter, &stored.entity) => {
                        covered.push(stored.entity)
                    }
                    _ => gone.push(r),
                }
            }
            for chunk in covered.chunks(CHUNK) {
                let evaluations = plan.evaluate_chunk(chunk, &mut counts).await;
                writer.write(evaluations, &mut counts).await?;
            }
            writer.finish(&mut counts).await?;
            if !gone.is_empty() {
                let refs: Vec<&str> = gone.iter().map(String::as_str).collect();
                state.store.forget_scorecard_entities(&id, &refs).await?;
                counts.forgotten = gone.len();
            }
        }
    }
    Ok(counts)
}

/// Writes each chunk's results while the next chunk is evaluated: the
/// checks keep the cores busy and the database write runs on its own
/// connection's thread, so the two overlap instead of taking turns. One
/// write is in flight at a time, so chunks land in order and a failed
/// write stops the evaluation at the next chunk.
struct ResultWriter {
    store: portolan_store::Store,
    scorecard: String,
    mode: WriteMode,
    in_flight: Option<JoinHandle<Result<portolan_store::ResultsWritten, StoreError>>>,
}

impl ResultWriter {
    fn new(state: &AppState, scorecard: &str, mode: WriteMode) -> ResultWriter {
        ResultWriter {
            store: state.store.clone(),
            scorecard: scorecard.to_owned(),
            mode,
            in_flight: None,
        }
    }

    /// Waits for the previous chunk's write, then starts this one's.
    async fn write(
        &mut self,
        evaluations: Vec<EntityEvaluation>,
        counts: &mut Counts,
    ) -> Result<(), Failure> {
        self.finish(counts).await?;
        let (store, scorecard, mode) = (self.store.clone(), self.scorecard.clone(), self.mode);
        self.in_flight = Some(tokio::spawn(async move {
            store
                .write_scorecard_results(&scorecard, &evaluations, Utc::now(), mode)
                .await
        }));
        Ok(())
    }

    /// Waits for the write in flight, if any, and counts what it wrote.
    async fn finish(&mut self, counts: &mut Counts) -> Result<(), Failure> {
        let Some(in_flight) = self.in_flight.take() else {
            return Ok(());
        };
        let written = in_flight.await.map_err(|e| Failure {
            code: "database",
            message: format!("writing the results stopped: {e}"),
        })??;
        counts.entities += written.entities;
        counts.results += written.results;
        counts.level_changes += written.level_changes;
        counts.unchanged += written.unchanged;
        Ok(())
    }
}

/// Tells the scorecards that the catalog changed: `refs` were written or
/// deleted, and `unknown_removals` says that entities whose references
/// the caller does not know were removed too (a source sync's orphans).
/// Few changes are marked stale for the scheduler's entity evaluations;
/// many, or unknown removals, queue a full evaluation of every scorecard.
/// Errors are logged, not returned: the catalog write has happened, and
/// the scheduled full evaluation catches up on a lost mark.
pub async fn catalog_changed(state: &AppState, refs: Vec<String>, unknown_removals: bool) {
    if refs.is_empty() && !unknown_removals {
        return;
    }
    let result = async {
        let scorecards = state.store.list_scorecards().await?;
        if scorecards.is_empty() {
            return Ok(());
        }
        if unknown_removals || refs.len() >= MAX_STALE as usize {
            for card in &scorecards {
                enqueue(
                    state,
                    &card.id,
                    &card.definition,
                    Scope::All,
                    "catalog-change",
                    None,
                )
                .await?;
            }
            Ok(())
        } else {
            state.store.mark_entities_stale(&refs).await
        }
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(
            error = format!("{e:#}"),
            "cannot queue the re-evaluation of changed entities"
        );
    }
}

/// Whether an entry is a loaded scorecard-check plugin.
pub fn is_check(entry: &PluginEntry) -> bool {
    entry.role == Some(PluginRole::ScorecardCheck) && entry.status == PluginStatus::Ready
}
