//! Issue 6's benchmark: a full evaluation of one scorecard with 10 rules
//! over 100,000 entities, through the real evaluator and the real check
//! plugin (`required-fields`, a wasm component), beside the same rules
//! written as native Rust functions in the same run.
//!
//! Run with `cargo bench -p portolan --bench scorecards` after
//! `scripts/build-plugins.sh`. A plain `main` (`harness = false`) that
//! builds the portal's state in this process (SQLite in a temporary
//! directory, the plugins folder holding `required-fields.wasm`), fills the
//! catalog with the store's own batch write, defines the scorecard, and
//! prints:
//!
//! 1. **Full evaluation, end to end** (`evaluate::evaluate_now`, the code a
//!    worker runs): read the covered entities page by page, call the
//!    plugin once per batch of 500 for its ten rules (batches in parallel
//!    on the blocking pool), compute levels, write every result and level;
//!    run three times: the first writes every result and level; the
//!    second finds every entity as it was and writes none of them (it
//!    records that it confirmed them); before the third, one entity in ten
//!    gains or loses its description, and only those are written.
//! 2. **The native baseline, end to end**: the same pages, the same ten
//!    rules as Rust closures, the same level computation and the same
//!    writes, on a second scorecard, one phase after another (no overlap),
//!    with the time of each phase (read, rules, write).
//! 3. **Checks alone**: the 1,000,000 rule verdicts without the database,
//!    wasm (batches of 500 on 2 threads, one `evaluate-rules` call per
//!    batch for the ten rules, as an evaluation calls them; and one call
//!    per rule and batch, as before contract 0.4.0) beside native (2
//!    threads).
//!
//! Goal (issue 6): a full evaluation of 100,000 entities x 10 rules in
//! <= 5 s on 2 cores. `BENCH_QUICK=1` runs 10,000 entities;
//! `BENCH_SQLITE_MALLOC=system` leaves SQLite on the C library's allocator
//! (the `portolan` binary moves it to the program's).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portolan::app::AppState;
use portolan::config::{Config, Overrides, ServeOverrides};
use portolan::evaluate::{self, Scope};
use portolan_catalog::Entity;
use portolan_scorecards::{
    evaluate_entity, ActiveExemptions, CheckAnswer, Outcome, ScorecardDefinition,
};
use portolan_store::{EntityQuery, Origin, WriteMode};
use serde_json::{json, Value};

/// The check every rule calls, as `plugin/check`.
const CHECK: &str = "required-fields/required-fields";

/// The ten rules: (id, level, field).
const RULES: [(&str, &str, &str); 10] = [
    ("owner", "Bronze", "spec.owner"),
    ("lifecycle", "Bronze", "spec.lifecycle"),
    ("description", "Bronze", "metadata.description"),
    ("system", "Silver", "spec.system"),
    ("tags", "Silver", "metadata.tags"),
    ("runbook", "Silver", "metadata.annotations.runbook"),
    ("links", "Gold", "metadata.links"),
    ("oncall", "Gold", "metadata.annotations.oncall"),
    ("docs", "Gold", "metadata.annotations.docs"),
    ("repo", "Gold", "metadata.annotations.repo"),
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Deterministic entities in which each optional field is present with a
/// different frequency, so every level is populated.
fn entities(n: usize) -> Vec<Entity> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let has = |modulus: usize| i % modulus != 0;
        let mut annotations = serde_json::Map::new();
        if has(3) {
            annotations.insert(
                "runbook".into(),
                json!(format!("https://runbooks.example/{i}")),
            );
        }
        if has(4) {
            annotations.insert("oncall".into(), json!("team-pager"));
        }
        if has(5) {
            annotations.insert("docs".into(), json!(format!("https://docs.example/{i}")));
        }
        annotations.insert("repo".into(), json!(format!("git@example:svc-{i}")));
        let mut metadata = json!({
            "name": format!("svc-{i:06}"),
            "annotations": annotations,
        });
        if has(7) {
            metadata["description"] =
                json!(format!("Service number {i}, which does one thing well."));
        }
        if has(2) {
            metadata["tags"] = json!(["java", "payments"]);
        }
        if has(6) {
            metadata["links"] =
                json!([{"url": format!("https://dash.example/{i}"), "title": "Dashboard"}]);
        }
        let mut spec = json!({
            "type": "service",
            "lifecycle": "production",
            "owner": format!("group:default/team-{}", i % 50),
        });
        if has(9) {
            spec["system"] = json!(format!("system-{}", i % 20));
        }
        let doc = json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": metadata,
            "spec": spec,
        });
        out.push(Entity::from_value(doc).expect("a valid entity"));
    }
    out
}

fn definition(id: &str) -> Value {
    json!({
        "id": id,
        "title": "Bench readiness",
        "filter": {"kinds": ["Component"]},
        "rules": RULES.iter().map(|(rule, level, field)| json!({
            "id": rule, "title": rule, "level": level, "check": CHECK,
            "parameters": {"fields": [field]},
        })).collect::<Vec<_>>(),
    })
}

/// The native twin of `required-fields`: the field is present and not
/// null, blank, empty list or empty mapping.
fn filled(descriptor: &Value, path: &str) -> bool {
    let mut at = descriptor;
    for part in path.split('.') {
        match at.get(part) {
            Some(v) => at = v,
            None => return false,
        }
    }
    match at {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn native_answers(entity: &Entity) -> HashMap<&'static str, CheckAnswer> {
    let descriptor = serde_json::to_value(entity).expect("serialises");
    RULES
        .iter()
        .map(|(rule, _, field)| {
            let ok = filled(&descriptor, field);
            (
                *rule,
                CheckAnswer {
                    outcome: if ok { Outcome::Pass } else { Outcome::Fail },
                    message: (!ok).then(|| format!("{field} is missing or empty")),
                    value: None,
                },
            )
        })
        .collect()
}

/// Where the native baseline's time went.
#[derive(Default)]
struct Phases {
    read: Duration,
    rules: Duration,
    write: Duration,
}

/// The native baseline of a full evaluation: same pages, same writes, one
/// after another (no overlap), timed per phase.
async fn native_full(state: &AppState, id: &str, def: &ScorecardDefinition) -> (usize, Phases) {
    let mut query = EntityQuery {
        kinds: vec!["Component".into()],
        limit: portolan_store::query::MAX_PAGE_SIZE,
        ..EntityQuery::default()
    };
    let none = ActiveExemptions::default();
    let started = chrono::Utc::now();
    let mut written = 0;
    let mut phases = Phases::default();
    loop {
        let t = Instant::now();
        let page = state.store.list_entities(&query).await.expect("page");
        phases.read += t.elapsed();
        let entities: Vec<Entity> = page.items.into_iter().map(|s| s.entity).collect();
        for chunk in entities.chunks(evaluate::CHUNK) {
            let t = Instant::now();
            let chunk = chunk.to_vec();
            let def2 = def.clone();
            let none2 = none.clone();
            let evaluations = tokio::task::spawn_blocking(move || {
                chunk
                    .iter()
                    .map(|e| {
                        let by: HashMap<&str, CheckAnswer> = native_answers(e);
                        evaluate_entity(&def2, &e.entity_ref().key(), &by, &none2)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .expect("native chunk");
            phases.rules += t.elapsed();
            let t = Instant::now();
            written += state
                .store
                .write_scorecard_results(
                    id,
                    &evaluations,
                    chrono::Utc::now(),
                    WriteMode::ChangedOnly,
                )
                .await
                .expect("write")
                .entities;
            phases.write += t.elapsed();
        }
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }
    let t = Instant::now();
    state
        .store
        .confirm_scorecard_results(id, started)
        .await
        .expect("confirm");
    phases.write += t.elapsed();
    (written, phases)
}

fn main() {
    println!("Heap on {}", common::heap_pages());
    println!("SQLite allocates with {}", common::sqlite_heap());
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let n: usize = std::env::var("BENCH_ENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 10_000 } else { 100_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(run(n));
}

async fn run(n: usize) {
    let wasm = repo_root().join("target/plugins/required-fields.wasm");
    if !wasm.exists() {
        eprintln!(
            "{} is missing: run scripts/build-plugins.sh first",
            wasm.display()
        );
        std::process::exit(2);
    }
    let work = tempfile::tempdir().expect("temp dir");
    let plugins = work.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&wasm, plugins.join("required-fields.wasm")).unwrap();
    let mut config = Config::load(
        &Overrides {
            data_dir: Some(work.path().join("data")),
            ..Overrides::default()
        },
        &ServeOverrides {
            plugins_dir: Some(plugins),
            ..ServeOverrides::default()
        },
        &HashMap::new(),
    )
    .expect("config");
    config.scorecards.dir = None;
    let state = portolan::app::build(config).await.expect("state");
    state.registry.scan().await;
    println!(
        "scorecard evaluation benchmark: {n} entities x {} rules, {} cores, load {}",
        RULES.len(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        loadavg()
    );

    let all = entities(n);
    let t = Instant::now();
    for batch in all.chunks(10_000) {
        state
            .store
            .put_entities(batch, &Origin::Api)
            .await
            .expect("ingest");
    }
    println!(
        "setup: catalog filled in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let def = portolan::scorecards::validate_definition(&state, definition("bench"))
        .unwrap_or_else(|e| panic!("bench definition: {e:?}"));
    let value = serde_json::to_value(&def).unwrap();
    state.store.put_scorecard("bench", &value).await.unwrap();
    let mut native_value = value.clone();
    native_value["id"] = json!("bench-native");
    state
        .store
        .put_scorecard("bench-native", &native_value)
        .await
        .unwrap();

    // 1 and 2: end to end, alternating so that drift hits both.
    let mut wasm_runs = Vec::new();
    let mut native_runs = Vec::new();
    for round in 0..3 {
        if round == 2 {
            let changed: Vec<Entity> = all
                .iter()
                .step_by(10)
                .map(|e| {
                    let mut e = e.clone();
                    e.metadata.description = match e.metadata.description {
                        Some(_) => None,
                        None => Some("Described at last.".into()),
                    };
                    e
                })
                .collect();
            for batch in changed.chunks(10_000) {
                state
                    .store
                    .put_entities(batch, &Origin::Api)
                    .await
                    .expect("change");
            }
            println!(
                "{} entities changed (description added or removed)",
                changed.len()
            );
        }
        let t = Instant::now();
        let counts = evaluate::evaluate_now(&state, "bench", Scope::All)
            .await
            .expect("evaluation");
        let took = t.elapsed();
        assert_eq!(counts.entities, n, "every entity evaluated");
        assert_eq!(counts.failed_calls, 0, "no check failed: {counts:?}");
        wasm_runs.push(took);
        let t = Instant::now();
        let (written, phases) = native_full(&state, "bench-native", &def).await;
        let native_took = t.elapsed();
        assert_eq!(written, n);
        native_runs.push(native_took);
        println!(
            "round {}: full evaluation (wasm checks) {:>7.2} s   native rules {:>7.2} s   ratio {:.2}x   ({} calls, {} entities unchanged)",
            round + 1,
            took.as_secs_f64(),
            native_took.as_secs_f64(),
            took.as_secs_f64() / native_took.as_secs_f64(),
            counts.calls,
            counts.unchanged
        );
        println!(
            "         native phases, one after another: read {:.2} s   rules {:.2} s   write {:.2} s",
            phases.read.as_secs_f64(),
            phases.rules.as_secs_f64(),
            phases.write.as_secs_f64()
        );
    }
    // The two scorecards must agree, or the comparison means nothing.
    let a = state.store.scorecard_summary("bench").await.unwrap();
    let b = state.store.scorecard_summary("bench-native").await.unwrap();
    assert_eq!(a.levels, b.levels, "wasm and native disagree on levels");
    println!("levels: {:?}", a.levels);

    // 3: the checks alone.
    let plugin = state.registry.plugin("required-fields").expect("loaded");
    // As in an evaluation: batches converted once and shared by the rules.
    let plugin_entities: Arc<Vec<portolan_runtime::EntityBatch<'static>>> = Arc::new(
        all.chunks(evaluate::CALL_BATCH)
            .map(|chunk| {
                portolan_runtime::EntityBatch::new(
                    chunk.iter().map(evaluate::plugin_entity).collect(),
                )
            })
            .collect(),
    );
    let threads = 2;
    // (a) One call per rule and batch, as before contract 0.4.0.
    let t = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            let plugin = plugin.clone();
            let entities = plugin_entities.clone();
            std::thread::spawn(move || {
                let mut verdicts = 0usize;
                for (r, (_, _, field)) in RULES.iter().enumerate() {
                    if r % threads != k {
                        continue;
                    }
                    let params = json!({"fields": [field]});
                    for batch in entities.iter() {
                        let out =
                            portolan::checks::evaluate(&plugin, "required-fields", &params, batch)
                                .expect("check call");
                        verdicts += out.len();
                    }
                }
                verdicts
            })
        })
        .collect();
    let per_rule_verdicts: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let wasm_per_rule = t.elapsed();
    // (b) One call for the ten rules per batch (`evaluate-rules`), as an
    // evaluation makes them; the threads take alternate batches.
    let rules: Arc<Vec<(String, Value)>> = Arc::new(
        RULES
            .iter()
            .map(|(_, _, field)| ("required-fields".to_owned(), json!({"fields": [field]})))
            .collect(),
    );
    let t = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            let plugin = plugin.clone();
            let entities = plugin_entities.clone();
            let rules = rules.clone();
            std::thread::spawn(move || {
                let mut verdicts = 0usize;
                for batch in entities.iter().skip(k).step_by(threads) {
                    let answer = portolan::checks::evaluate_rules(&plugin, &rules, batch);
                    assert_eq!(answer.calls, 1, "one call for all the rules");
                    for result in answer.results {
                        verdicts += result.expect("check call").len();
                    }
                }
                verdicts
            })
        })
        .collect();
    let verdicts: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let wasm_checks = t.elapsed();
    assert_eq!(verdicts, per_rule_verdicts);
    let t = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            let entities: Vec<Entity> = all.iter().skip(k).step_by(threads).cloned().collect();
            std::thread::spawn(move || {
                entities
                    .iter()
                    .map(|e| native_answers(e).len())
                    .sum::<usize>()
            })
        })
        .collect();
    let native_verdicts: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let native_checks = t.elapsed();
    assert_eq!(verdicts, native_verdicts);
    println!(
        "checks alone ({verdicts} verdicts, {threads} threads): wasm {:.2} s ({:.2} us/verdict, one call per batch for the {} rules)   native {:.2} s   ratio {:.1}x",
        wasm_checks.as_secs_f64(),
        wasm_checks.as_secs_f64() * 1e6 / verdicts as f64,
        RULES.len(),
        native_checks.as_secs_f64(),
        wasm_checks.as_secs_f64() / native_checks.as_secs_f64()
    );
    println!(
        "         wasm with one call per rule and batch (contract 0.3.0's only way): {:.2} s ({:.2} us/verdict)",
        wasm_per_rule.as_secs_f64(),
        wasm_per_rule.as_secs_f64() * 1e6 / per_rule_verdicts as f64,
    );
    let best = wasm_runs.iter().min().copied().unwrap_or(Duration::ZERO);
    let best_native = native_runs.iter().min().copied().unwrap_or(Duration::ZERO);
    println!(
        "SUMMARY full evaluation of {n} x {}: best {:.2} s (native {:.2} s, {:.2}x); goal <= 5 s at 100,000: {}",
        RULES.len(),
        best.as_secs_f64(),
        best_native.as_secs_f64(),
        best.as_secs_f64() / best_native.as_secs_f64(),
        if n >= 100_000 {
            if best <= Duration::from_secs(5) { "MET" } else { "MISSED" }
        } else {
            "n/a (not 100,000 entities)"
        }
    );
}
