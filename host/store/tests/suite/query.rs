//! The catalog's read side on both backends: filters on any field,
//! full-text search, sorting with cursor pages, facets and the relation
//! graph. Every test in `suite` runs as `sqlite::<name>` and
//! `postgres::<name>` on a fresh database.

use std::collections::{BTreeMap, HashSet};

use portolan_catalog::{Entity, EntityRef};
use portolan_store::testing::TestDatabase;
use portolan_store::{
    Cursor, Direction, EntityQuery, FacetCount, FieldFilter, FieldPath, GraphQuery, Origin,
    SortKey, Store,
};
use serde_json::{json, Value};

portolan_store::both_backends!(
    filters_on_labels_annotations_and_any_field,
    search_matches_word_prefixes_and_ranks_names_first,
    search_follows_writes_and_deletes,
    sorted_pages_cover_every_match_once,
    search_pages_by_relevance,
    cursors_belong_to_their_order,
    relations_can_be_left_out,
    facets_count_values_under_the_filters,
    relation_graph_to_a_depth,
    relation_graph_is_bounded,
    an_upgraded_database_is_searchable_and_sortable,
    counts_follow_every_write,
    a_catalog_written_before_0007_reads_and_changes_as_a_new_one,
    relation_facets_and_filters_agree_with_each_entitys_relations,
);

async fn run<F, Fut>(db: TestDatabase, test: F)
where
    F: FnOnce(Store, TestDatabase) -> Fut,
    Fut: std::future::Future<Output = TestDatabase>,
{
    // The upgrade test opens the database itself; the rest get a store.
    let db = test(Store::connect(&db.url).await.expect("connect"), db).await;
    db.drop_db().await;
}

fn entity(v: Value) -> Entity {
    Entity::from_value(v).unwrap()
}

fn component(name: &str, spec: Value, metadata: Value) -> Entity {
    let mut meta = json!({"name": name});
    meta.as_object_mut()
        .unwrap()
        .extend(metadata.as_object().unwrap().clone());
    let mut full = json!({"type": "service", "lifecycle": "production", "owner": "team-a"});
    full.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    entity(json!({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": meta, "spec": full
    }))
}

/// A small catalog with something for every filter: groups, a user, a
/// system, an API, four hand-written components and twelve fillers.
fn catalog() -> Vec<Entity> {
    let mut out = vec![
        entity(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "team-a", "title": "Team A"},
            "spec": {"type": "team", "children": [], "profile": {"email": "team-a@example.com"}}}),
        ),
        entity(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "team-b"}, "spec": {"type": "team", "children": []}}),
        ),
        entity(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User",
            "metadata": {"name": "jane"},
            "spec": {"profile": {"displayName": "Jane Doe", "email": "jane@example.com"},
                     "memberOf": ["team-a"]}}),
        ),
        entity(
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "System",
            "metadata": {"name": "shop"}, "spec": {"owner": "team-a"}}),
        ),
        entity(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
            "metadata": {"name": "payments-api", "title": "Payments API"},
            "spec": {"type": "openapi", "lifecycle": "production", "owner": "team-a",
                     "system": "shop", "definition": "{}"}})),
        component(
            "payments-service",
            json!({"system": "shop", "providesApis": ["payments-api"],
                   "dependsOn": ["component:billing"]}),
            json!({"title": "Payments Service", "description": "Moves money",
                   "tags": ["java", "payments"], "labels": {"tier": "gold"},
                   "annotations": {"backstage.io/techdocs-ref": "dir:."}}),
        ),
        component(
            "billing",
            json!({"lifecycle": "experimental", "owner": "team-b", "system": "shop",
                   "dependsOn": ["resource:ledger-db"]}),
            json!({"description": "Sends invoices for payments", "tags": ["go"],
                   "labels": {"tier": "silver"}}),
        ),
        component(
            "web",
            json!({"type": "website", "owner": "team-b", "system": "Shop",
                   "consumesApis": ["payments-api"]}),
            json!({"title": "Storefront", "description": "The web shop",
                   "tags": ["typescript", "frontend"], "labels": {"tier": "gold"}}),
        ),
        component(
            "docs",
            json!({"type": "documentation", "lifecycle": "deprecated", "owner": "team-b",
                   "ports": [8080, 9090], "public": true}),
            json!({"tags": ["docs"]}),
        ),
    ];
    for i in 0..12 {
        let lifecycle = ["production", "experimental", "deprecated"][i % 3];
        let namespace = if i % 4 == 3 { "ops" } else { "default" };
        out.push(component(
            &format!("svc-{i:02}"),
            json!({"lifecycle": lifecycle, "type": "library"}),
            json!({"namespace": namespace, "description": format!("Filler number {i}")}),
        ));
    }
    out
}

async fn load(store: &Store) {
    store.put_entities(&catalog(), &Origin::Api).await.unwrap();
}

fn path(text: &str) -> FieldPath {
    FieldPath::parse(text).unwrap()
}

fn filter(text: &str, values: &[&str]) -> FieldFilter {
    FieldFilter::new(path(text), values.iter().map(|v| v.to_string()).collect()).unwrap()
}

fn sort(text: &str) -> SortKey {
    match text.strip_prefix('-') {
        Some(p) => SortKey::new(path(p), true).unwrap(),
        None => SortKey::new(path(text), false).unwrap(),
    }
}

fn query(f: impl FnOnce(&mut EntityQuery)) -> EntityQuery {
    let mut q = EntityQuery {
        limit: 1000,
        ..EntityQuery::default()
    };
    f(&mut q);
    q
}

/// The names of every match, on one page, in order.
async fn names(store: &Store, q: EntityQuery) -> Vec<String> {
    let page = store.list_entities(&q).await.unwrap();
    assert_eq!(page.total as usize, page.items.len(), "one page holds all");
    page.items
        .iter()
        .map(|s| s.entity.metadata.name.clone())
        .collect()
}

async fn sorted_names(store: &Store, q: EntityQuery) -> Vec<String> {
    let mut n = names(store, q).await;
    n.sort();
    n
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Walks every page of `q` with `limit` entities per page; returns the
/// keys in order.
async fn walk(store: &Store, mut q: EntityQuery, limit: u32) -> Vec<String> {
    q.limit = limit;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.list_entities(&q).await.unwrap();
        assert!(page.items.len() <= limit as usize);
        seen.extend(page.items.iter().map(|s| s.entity.entity_ref().key()));
        pages += 1;
        assert!(pages < 100, "paging does not end");
        match page.next_cursor {
            Some(cursor) => {
                // Through its text form, as a client sends it back.
                q.cursor = Some(Cursor::decode(&cursor.encode(), &q).unwrap());
            }
            None => break,
        }
    }
    seen
}

fn counts(pairs: &[(&str, u64)]) -> Vec<FacetCount> {
    pairs
        .iter()
        .map(|(value, count)| FacetCount {
            value: value.to_string(),
            count: *count,
        })
        .collect()
}

/// What the promoted fields of `entities` count to, worked out here from
/// the entities themselves: per field, value -> entities, for those of
/// `kind` (all if `None`).
fn model_facets(entities: &[Entity], kind: Option<&str>) -> BTreeMap<String, Vec<FacetCount>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for e in entities {
        if kind.is_some_and(|k| !e.kind.eq_ignore_ascii_case(k)) {
            continue;
        }
        let mut add = |field: &str, value: Option<String>| {
            if let Some(v) = value {
                *out.entry(field.into()).or_default().entry(v).or_default() += 1;
            }
        };
        add("kind", Some(e.kind.to_lowercase()));
        add(
            "metadata.namespace",
            Some(e.metadata.namespace.to_lowercase()),
        );
        add(
            "spec.lifecycle",
            e.spec_str("lifecycle").map(str::to_lowercase),
        );
        add("spec.type", e.spec_str("type").map(str::to_lowercase));
        let owner = e.spec_str("owner").map(|o| {
            EntityRef::parse(
                o,
                portolan_catalog::RefDefaults {
                    kind: Some("Group"),
                    namespace: &e.metadata.namespace,
                },
            )
            .unwrap()
            .key()
        });
        add("relations.ownedBy", owner);
        let tags: HashSet<String> = e.metadata.tags.iter().map(|t| t.to_lowercase()).collect();
        for t in tags {
            add("metadata.tags", Some(t));
        }
    }
    out.into_iter()
        .map(|(field, values)| {
            let mut counts: Vec<FacetCount> = values
                .into_iter()
                .map(|(value, count)| FacetCount { value, count })
                .collect();
            counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
            (field, counts)
        })
        .collect()
}

/// Writes `entities` the way the store did up to migration 0005: every
/// column, the body as JSON text, the lower-cased tags and each derived
/// relation in both directions with its declaring entity. On SQLite that
/// schema's triggers fill the search index and the value counts.
async fn write_as_of_0005<'c, DB>(conn: &'c mut DB::Connection, entities: &[Entity], cast: &str)
where
    DB: sqlx::Database,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for e in entities {
        let me = e.entity_ref();
        let key = me.key();
        let mut body = serde_json::to_value(e).unwrap();
        body.as_object_mut().unwrap().remove("relations");
        let relations = portolan_catalog::derive_relations(e);
        let owner = relations
            .iter()
            .find(|r| r.kind == "ownedBy" && r.source == me)
            .map(|r| r.target.key());
        sqlx::query::<DB>(&format!(
            "INSERT INTO entities (entity_ref, kind, namespace, name, kind_key, namespace_key, \
             lifecycle, spec_type, name_key, owner_key, body, etag, origin, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11{cast}, $12, 'api', \
             '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
        ))
        .bind(key.clone())
        .bind(e.kind.clone())
        .bind(e.metadata.namespace.clone())
        .bind(e.metadata.name.clone())
        .bind(e.kind.to_lowercase())
        .bind(e.metadata.namespace.to_lowercase())
        .bind(e.spec_str("lifecycle").map(str::to_lowercase))
        .bind(e.spec_str("type").map(str::to_lowercase))
        .bind(e.metadata.name.to_lowercase())
        .bind(owner)
        .bind(body.to_string())
        .bind(e.etag())
        .execute(&mut *conn)
        .await
        .unwrap();
        let tags: std::collections::BTreeSet<String> =
            e.metadata.tags.iter().map(|t| t.to_lowercase()).collect();
        for tag in tags {
            sqlx::query::<DB>("INSERT INTO entity_tags (entity_ref, tag) VALUES ($1, $2)")
                .bind(key.clone())
                .bind(tag)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        for r in relations {
            sqlx::query::<DB>(
                "INSERT INTO entity_relations (origin_ref, source_key, type, target_key, \
                 target_ref) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(key.clone())
            .bind(r.source.key())
            .bind(r.kind.to_owned())
            .bind(r.target.key())
            .bind(r.target.to_string())
            .execute(&mut *conn)
            .await
            .unwrap();
        }
    }
}

/// What a user sees of a catalog: every entity with its relations, pages
/// under filters and searches, facets and a relation graph, in a form two
/// stores can be compared by (no timestamps).
async fn everything_seen(store: &Store) -> Vec<String> {
    let mut seen = Vec::new();
    let all = store.list_entities(&query(|_| {})).await.unwrap();
    for item in &all.items {
        seen.push(format!("{} {} {:?}", item.etag, item.origin, item.entity));
    }
    let queries = [
        query(|q| q.search = Some("pay".into())),
        query(|q| q.search = Some("team".into())),
        query(|q| q.search = Some("jane example".into())),
        query(|q| q.search = Some("openapi shop".into())),
        query(|q| q.search = Some("production".into())),
        query(|q| q.search = Some("go".into())),
        query(|q| {
            q.kinds = strings(&["component"]);
            q.lifecycles = strings(&["production"]);
            q.sort = vec![sort("metadata.name")];
        }),
        query(|q| q.tags = strings(&["go"])),
        query(|q| q.owners = vec![EntityRef::new("group", "default", "team-b")]),
        query(|q| {
            q.filters = vec![filter(
                "relations.dependsOn",
                &["component:default/billing"],
            )]
        }),
        query(|q| q.filters = vec![filter("relations.ownerOf", &["component:default/web"])]),
        query(|q| q.filters = vec![filter("relations.hasPart", &[])]),
    ];
    for q in queries {
        let page = store.list_entities(&q).await.unwrap();
        let keys: Vec<String> = page
            .items
            .iter()
            .map(|s| s.entity.entity_ref().key())
            .collect();
        seen.push(format!("{q:?}: {} {keys:?}", page.total));
    }
    let fields: Vec<FieldPath> = [
        "kind",
        "metadata.namespace",
        "spec.lifecycle",
        "spec.type",
        "relations.ownedBy",
        "relations.ownerOf",
        "relations.partOf",
        "relations.hasPart",
        "metadata.tags",
    ]
    .map(path)
    .into();
    for q in [query(|_| {}), query(|q| q.kinds = strings(&["component"]))] {
        let facets = store.entity_facets(&q, &fields).await.unwrap();
        seen.push(format!("facets {q:?}: {facets:?}"));
    }
    let graph = store
        .relation_graph(&GraphQuery {
            root: EntityRef::new("group", "default", "team-a"),
            depth: 3,
            direction: Direction::Both,
            types: Vec::new(),
        })
        .await
        .unwrap();
    seen.push(format!("graph {graph:?}"));
    seen
}

mod suite {
    use super::*;

    pub async fn relation_facets_and_filters_agree_with_each_entitys_relations(
        store: Store,
        db: TestDatabase,
    ) -> TestDatabase {
        use portolan_catalog::relations::names::ALL;
        load(&store).await;
        // Relations towards entities that are not in the catalog: their
        // reverse relations name no entity, and count for none.
        let stray = Entity::from_value(json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "stray"},
            "spec": {
                "type": "service",
                "lifecycle": "production",
                "owner": "group:default/ghosts",
                "system": "nowhere",
                "dependsOn": ["component:default/missing", "Component:default/Web"],
                "consumesApis": ["missing-api"]
            }
        }))
        .unwrap();
        store.put_entities(&[stray], &Origin::Api).await.unwrap();

        let all = store.list_entities(&query(|_| {})).await.unwrap();
        assert_eq!(all.total as usize, all.items.len(), "one page holds all");
        let types = ALL.into_iter().chain(["noSuchRelation"]);
        for (i, kind) in types.into_iter().enumerate() {
            // What the entities' own relations say: per related entity,
            // how many entities have the relation towards it; and which
            // entities have one at all.
            let mut expected: BTreeMap<String, u64> = BTreeMap::new();
            let mut having = Vec::new();
            for item in &all.items {
                let targets: std::collections::BTreeSet<String> = item
                    .entity
                    .relations
                    .iter()
                    .filter(|r| r.kind == kind)
                    .map(|r| r.target_ref.to_lowercase())
                    .collect();
                if !targets.is_empty() {
                    having.push(item.entity.entity_ref().key());
                }
                for target in targets {
                    *expected.entry(target).or_default() += 1;
                }
            }
            having.sort();
            // Types match whatever their case.
            let field = if i % 2 == 0 {
                format!("relations.{kind}")
            } else {
                format!("relations.{}", kind.to_uppercase())
            };
            let facets = store
                .entity_facets(&query(|_| {}), &[path(&field)])
                .await
                .unwrap();
            let counted: BTreeMap<String, u64> = facets[field.as_str()]
                .iter()
                .map(|f| (f.value.clone(), f.count))
                .collect();
            assert_eq!(counted, expected, "facet on {field}");

            let page = store
                .list_entities(&query(|q| q.filters = vec![filter(&field, &[])]))
                .await
                .unwrap();
            let mut keys: Vec<String> = page
                .items
                .iter()
                .map(|s| s.entity.entity_ref().key())
                .collect();
            keys.sort();
            assert_eq!(keys, having, "filter {field}");
            assert_eq!(page.total as usize, having.len(), "total of {field}");
        }
        db
    }

    pub async fn filters_on_labels_annotations_and_any_field(
        store: Store,
        db: TestDatabase,
    ) -> TestDatabase {
        load(&store).await;
        let by = |filters: Vec<FieldFilter>| query(|q| q.filters = filters);

        // Labels and annotations: a value, or the key's presence.
        assert_eq!(
            sorted_names(&store, by(vec![filter("metadata.labels.tier", &["GOLD"])])).await,
            strings(&["payments-service", "web"])
        );
        assert_eq!(
            sorted_names(&store, by(vec![filter("metadata.labels.tier", &[])])).await,
            strings(&["billing", "payments-service", "web"])
        );
        assert_eq!(
            names(
                &store,
                by(vec![FieldFilter::new(
                    FieldPath::map_entry("annotations", "backstage.io/techdocs-ref").unwrap(),
                    vec![]
                )
                .unwrap()])
            )
            .await,
            strings(&["payments-service"])
        );
        // Any path, case-insensitive; alternatives within one filter, and
        // every filter must hold.
        assert_eq!(
            sorted_names(&store, by(vec![filter("spec.system", &["shop"])])).await,
            strings(&["billing", "payments-api", "payments-service", "web"])
        );
        assert_eq!(
            sorted_names(
                &store,
                by(vec![
                    filter("spec.system", &["shop"]),
                    filter("kind", &["component"]),
                    filter("spec.lifecycle", &["experimental", "deprecated"]),
                ])
            )
            .await,
            strings(&["billing"])
        );
        assert_eq!(
            names(
                &store,
                by(vec![filter("spec.profile.email", &["JANE@example.com"])])
            )
            .await,
            strings(&["jane"])
        );
        assert_eq!(
            sorted_names(&store, by(vec![filter("spec.profile.email", &[])])).await,
            strings(&["jane", "team-a"])
        );
        // Arrays match per element; numbers and booleans as text.
        assert_eq!(
            names(&store, by(vec![filter("spec.ports", &["9090"])])).await,
            strings(&["docs"])
        );
        assert_eq!(
            names(&store, by(vec![filter("spec.public", &["true"])])).await,
            strings(&["docs"])
        );
        assert_eq!(
            sorted_names(
                &store,
                by(vec![filter("metadata.tags", &["Payments", "go"])])
            )
            .await,
            strings(&["billing", "payments-service"])
        );
        // An object is not a value.
        assert!(
            names(&store, by(vec![filter("metadata.labels", &["gold"])]))
                .await
                .is_empty()
        );
        // Promoted fields as paths.
        assert_eq!(
            sorted_names(&store, by(vec![filter("metadata.name", &["WEB", "docs"])])).await,
            strings(&["docs", "web"])
        );
        assert_eq!(
            sorted_names(&store, by(vec![filter("spec.owner", &["team-b"])])).await,
            strings(&["billing", "docs", "web"])
        );
        assert_eq!(
            names(
                &store,
                by(vec![
                    filter("metadata.namespace", &["ops"]),
                    filter("spec.lifecycle", &["production"]),
                ])
            )
            .await,
            strings(&["svc-03"])
        );
        assert_eq!(
            sorted_names(
                &store,
                by(vec![filter("relations.ownedBy", &["group:default/team-b"])])
            )
            .await,
            strings(&["billing", "docs", "web"])
        );
        assert_eq!(
            sorted_names(&store, by(vec![filter("relations.providesapi", &[])])).await,
            strings(&["payments-service"])
        );
        // A path nobody has, and the typed filters alongside.
        assert!(names(&store, by(vec![filter("spec.nothing", &[])]))
            .await
            .is_empty());
        assert_eq!(
            sorted_names(
                &store,
                query(|q| {
                    q.kinds = strings(&["component"]);
                    q.owners = vec![EntityRef::new("group", "default", "team-b")];
                    q.filters = vec![filter("metadata.labels.tier", &["gold"])];
                })
            )
            .await,
            strings(&["web"])
        );
        store.close().await;
        db
    }

    pub async fn search_matches_word_prefixes_and_ranks_names_first(
        store: Store,
        db: TestDatabase,
    ) -> TestDatabase {
        load(&store).await;
        let search = |text: &str| query(|q| q.search = Some(text.into()));

        // A prefix of a word of the name, title, description or tags.
        let hits = names(&store, search("pay")).await;
        assert_eq!(
            hits.iter().cloned().collect::<HashSet<_>>(),
            ["payments-service", "payments-api", "billing"]
                .map(String::from)
                .into(),
        );
        // Names (and titles) outrank a mention in the description.
        assert_eq!(hits.last().unwrap(), "billing", "{hits:?}");

        // Every word must match; punctuation splits words.
        // (billing's spec.type is service.)
        let hits = names(&store, search("payments-serv")).await;
        assert_eq!(hits, strings(&["payments-service", "billing"]));
        assert_eq!(
            names(&store, search("PAY money")).await,
            strings(&["payments-service"])
        );
        // Tags, kind, owner, a profile's e-mail.
        assert_eq!(names(&store, search("typescr")).await, strings(&["web"]));
        assert_eq!(
            sorted_names(&store, search("team-b website")).await,
            strings(&["web"])
        );
        assert_eq!(
            names(&store, search("jane@example")).await,
            strings(&["jane"])
        );
        assert_eq!(names(&store, search("storefront")).await, strings(&["web"]));
        assert!(names(&store, search("nothing-like-this")).await.is_empty());
        // With filters.
        let q = query(|q| {
            q.search = Some("pay".into());
            q.kinds = strings(&["component"]);
        });
        assert_eq!(
            sorted_names(&store, q).await,
            strings(&["billing", "payments-service"])
        );
        // A given sort overrides relevance.
        let q = query(|q| {
            q.search = Some("pay".into());
            q.sort = vec![sort("metadata.name")];
        });
        assert_eq!(
            names(&store, q).await,
            strings(&["billing", "payments-api", "payments-service"])
        );
        // Text without words searches nothing.
        assert_eq!(names(&store, search(" -- ")).await.len(), catalog().len());
        store.close().await;
        db
    }

    pub async fn search_follows_writes_and_deletes(store: Store, db: TestDatabase) -> TestDatabase {
        load(&store).await;
        let search = |text: &str| query(|q| q.search = Some(text.into()));
        let renamed = component(
            "billing",
            json!({"owner": "team-b"}),
            json!({"description": "Ships parcels"}),
        );
        store
            .put_entity(&renamed, &Origin::Api, None)
            .await
            .unwrap();
        assert_eq!(
            names(&store, search("parcels")).await,
            strings(&["billing"])
        );
        assert!(!names(&store, search("invoices"))
            .await
            .contains(&"billing".into()));

        store
            .delete_entity(&EntityRef::new("component", "default", "web"), None)
            .await
            .unwrap();
        assert!(names(&store, search("storefront")).await.is_empty());

        // A source's sync removes its orphans' search rows too.
        let synced = vec![component("synced", json!({}), json!({"title": "Quokka"}))];
        store
            .sync_source("files", &synced, &HashSet::new())
            .await
            .unwrap();
        assert_eq!(names(&store, search("quokka")).await, strings(&["synced"]));
        store
            .sync_source("files", &[], &HashSet::new())
            .await
            .unwrap();
        assert!(names(&store, search("quokka")).await.is_empty());
        store.close().await;
        db
    }

    pub async fn sorted_pages_cover_every_match_once(
        store: Store,
        db: TestDatabase,
    ) -> TestDatabase {
        load(&store).await;
        let all = catalog().len();
        for order in [
            vec![],
            vec![sort("metadata.name")],
            vec![sort("-metadata.name")],
            vec![sort("spec.lifecycle"), sort("-metadata.name")],
            vec![sort("-kind"), sort("metadata.namespace")],
            vec![sort("spec.system")],
            vec![sort("-metadata.title"), sort("spec.owner")],
            vec![sort("metadata.labels.tier"), sort("-spec.type")],
        ] {
            let q = query(|q| q.sort = order.clone());
            let one_page: Vec<String> = store
                .list_entities(&q)
                .await
                .unwrap()
                .items
                .iter()
                .map(|s| s.entity.entity_ref().key())
                .collect();
            assert_eq!(one_page.len(), all);
            for limit in [1, 3, 7] {
                let paged = walk(&store, q.clone(), limit).await;
                assert_eq!(paged, one_page, "{order:?} in pages of {limit}");
            }
        }

        // The orders themselves.
        let q = |keys: Vec<SortKey>, kinds: &[&str]| {
            query(|q| {
                q.sort = keys;
                q.kinds = strings(kinds);
            })
        };
        assert_eq!(
            names(&store, q(vec![sort("-metadata.name")], &["group", "user"])).await,
            strings(&["team-b", "team-a", "jane"])
        );
        // Missing values sort as empty: first ascending; the entity key
        // breaks ties the way the first key runs.
        assert_eq!(
            names(&store, q(vec![sort("spec.system")], &["component"])).await[..6],
            strings(&["docs", "svc-00", "svc-01", "svc-02", "svc-04", "svc-05"])
        );
        assert_eq!(
            names(
                &store,
                q(
                    vec![sort("spec.system"), sort("-metadata.title")],
                    &["component"]
                )
            )
            .await[13..],
            strings(&["web", "payments-service", "billing"])
        );
        assert_eq!(
            names(
                &store,
                q(
                    vec![sort("-spec.lifecycle"), sort("metadata.name")],
                    &["component"]
                )
            )
            .await[..6],
            strings(&[
                "payments-service",
                "svc-00",
                "svc-03",
                "svc-06",
                "svc-09",
                "web"
            ])
        );
        // Filters and search with the orders that can walk an index
        // (by name, by key), in small pages and one big one.
        let filters: Vec<fn(&mut EntityQuery)> = vec![
            |q| q.kinds = strings(&["component"]),
            |q| q.kinds = strings(&["component", "api"]),
            |q| {
                q.kinds = strings(&["Component"]);
                q.lifecycles = strings(&["production", "deprecated"]);
            },
            |q| q.owners = vec![EntityRef::new("group", "default", "team-a")],
            |q| q.tags = strings(&["java", "go", "docs"]),
            |q| q.search = Some("filler".into()),
            |q| q.filters = vec![filter("spec.type", &["library"])],
        ];
        for set in filters {
            for order in [
                vec![],
                vec![sort("metadata.name")],
                vec![sort("-metadata.name")],
            ] {
                let q = query(|q| {
                    set(q);
                    q.sort = order.clone();
                });
                let one_page: Vec<String> = store
                    .list_entities(&q)
                    .await
                    .unwrap()
                    .items
                    .iter()
                    .map(|s| s.entity.entity_ref().key())
                    .collect();
                assert!(!one_page.is_empty());
                for limit in [1, 2] {
                    assert_eq!(walk(&store, q.clone(), limit).await, one_page, "{q:?}");
                }
            }
        }

        // Filters and sort together, across pages.
        let filtered = query(|q| {
            q.sort = vec![sort("-metadata.name")];
            q.filters = vec![filter("spec.lifecycle", &["production", "deprecated"])];
        });
        let keys = walk(&store, filtered.clone(), 2).await;
        let expected: Vec<String> = store
            .list_entities(&filtered)
            .await
            .unwrap()
            .items
            .iter()
            .map(|s| s.entity.entity_ref().key())
            .collect();
        assert_eq!(keys, expected);
        assert_eq!(keys.len(), 12);
        store.close().await;
        db
    }

    pub async fn search_pages_by_relevance(store: Store, db: TestDatabase) -> TestDatabase {
        load(&store).await;
        let q = query(|q| q.search = Some("filler".into()));
        let one_page = names(&store, q.clone()).await;
        assert_eq!(one_page.len(), 12);
        let paged = walk(&store, q, 5).await;
        let unique: HashSet<&String> = paged.iter().collect();
        assert_eq!(unique.len(), 12, "{paged:?}");
        store.close().await;
        db
    }

    pub async fn cursors_belong_to_their_order(store: Store, db: TestDatabase) -> TestDatabase {
        load(&store).await;
        let by_name = query(|q| {
            q.sort = vec![sort("metadata.name")];
            q.limit = 2;
        });
        let page = store.list_entities(&by_name).await.unwrap();
        let text = page.next_cursor.unwrap().encode();
        assert!(Cursor::decode(&text, &by_name).is_ok());
        let by_ref = query(|_| {});
        assert!(Cursor::decode(&text, &by_ref).is_err());
        let by_kind = query(|q| q.sort = vec![sort("kind")]);
        assert!(Cursor::decode(&text, &by_kind).is_err());
        assert!(Cursor::decode("00", &by_name).is_err());

        // The default order still pages by key for callers that use it.
        let page = store.list_entities(&query(|q| q.limit = 4)).await.unwrap();
        let after = page.next_after.unwrap();
        let next = store
            .list_entities(&query(|q| {
                q.limit = 4;
                q.after = Some(after.clone());
            }))
            .await
            .unwrap();
        assert!(next.items[0].entity.entity_ref().key() > after);
        store.close().await;
        db
    }

    pub async fn relations_can_be_left_out(store: Store, db: TestDatabase) -> TestDatabase {
        load(&store).await;
        let q = |skip| {
            query(|q| {
                q.filters = vec![filter("metadata.name", &["payments-service"])];
                q.skip_relations = skip;
            })
        };
        let with = store.list_entities(&q(false)).await.unwrap();
        assert_eq!(with.items[0].entity.relations.len(), 4);
        let without = store.list_entities(&q(true)).await.unwrap();
        assert!(without.items[0].entity.relations.is_empty());
        assert_eq!(without.items[0].etag, with.items[0].etag);
        // A page reads each entity's relations in the same statement as its
        // body; they are those a single read gives, sorted, each once (both
        // ends of a dependency may declare it).
        let all = store.list_entities(&query(|_| {})).await.unwrap();
        assert!(all.items.iter().any(|i| i.entity.relations.len() > 1));
        for item in &all.items {
            let one = store.entity(&item.entity.entity_ref()).await.unwrap();
            let one = one.expect("a listed entity reads back");
            assert_eq!(item.entity.relations, one.entity.relations);
            assert!(item.entity.relations.windows(2).all(|w| w[0] < w[1]));
        }
        store.close().await;
        db
    }

    pub async fn facets_count_values_under_the_filters(
        store: Store,
        db: TestDatabase,
    ) -> TestDatabase {
        load(&store).await;
        let fields: Vec<FieldPath> = [
            "kind",
            "spec.lifecycle",
            "metadata.tags",
            "spec.owner",
            "metadata.namespace",
            "spec.system",
            "metadata.labels.tier",
            "relations.ownedBy",
            "spec.ports",
        ]
        .map(path)
        .into();
        let all = store
            .entity_facets(&EntityQuery::default(), &fields)
            .await
            .unwrap();
        let expected: BTreeMap<String, Vec<FacetCount>> = [
            (
                "kind",
                counts(&[
                    ("component", 16),
                    ("api", 1),
                    ("group", 2),
                    ("system", 1),
                    ("user", 1),
                ]),
            ),
            (
                "spec.lifecycle",
                counts(&[("production", 7), ("deprecated", 5), ("experimental", 5)]),
            ),
            (
                "metadata.tags",
                counts(&[
                    ("docs", 1),
                    ("frontend", 1),
                    ("go", 1),
                    ("java", 1),
                    ("payments", 1),
                    ("typescript", 1),
                ]),
            ),
            ("spec.owner", counts(&[("team-a", 15), ("team-b", 3)])),
            ("metadata.namespace", counts(&[("default", 18), ("ops", 3)])),
            ("spec.system", counts(&[("shop", 4)])),
            (
                "metadata.labels.tier",
                counts(&[("gold", 2), ("silver", 1)]),
            ),
            (
                "relations.ownedBy",
                counts(&[
                    ("group:default/team-a", 12),
                    ("group:default/team-b", 3),
                    ("group:ops/team-a", 3),
                ]),
            ),
            ("spec.ports", counts(&[("8080", 1), ("9090", 1)])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // Sorted by count, then value.
        let mut kind = expected["kind"].clone();
        kind.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
        let mut expected = expected;
        expected.insert("kind".into(), kind);
        assert_eq!(all, expected);

        // Under filters and a search.
        let components = query(|q| q.kinds = strings(&["component"]));
        let facets = store
            .entity_facets(&components, &[path("spec.type"), path("spec.owner")])
            .await
            .unwrap();
        assert_eq!(
            facets["spec.type"],
            counts(&[
                ("library", 12),
                ("service", 2),
                ("documentation", 1),
                ("website", 1)
            ])
        );
        assert_eq!(
            facets["spec.owner"],
            counts(&[("team-a", 13), ("team-b", 3)])
        );
        let searching = query(|q| q.search = Some("pay".into()));
        let facets = store
            .entity_facets(&searching, &[path("kind"), path("metadata.tags")])
            .await
            .unwrap();
        assert_eq!(facets["kind"], counts(&[("component", 2), ("api", 1)]));
        assert_eq!(
            facets["metadata.tags"],
            counts(&[("go", 1), ("java", 1), ("payments", 1)])
        );
        let gold = query(|q| q.filters = vec![filter("metadata.labels.tier", &["gold"])]);
        let facets = store
            .entity_facets(&gold, &[path("relations.ownedBy"), path("spec.system")])
            .await
            .unwrap();
        assert_eq!(
            facets["relations.ownedBy"],
            counts(&[("group:default/team-a", 1), ("group:default/team-b", 1)])
        );
        assert_eq!(facets["spec.system"], counts(&[("shop", 2)]));
        store.close().await;
        db
    }

    pub async fn relation_graph_to_a_depth(store: Store, db: TestDatabase) -> TestDatabase {
        load(&store).await;
        let graph = |root: &str, depth, direction, types: &[&str]| {
            let store = store.clone();
            let q = GraphQuery {
                root: EntityRef::parse(
                    root,
                    portolan_catalog::RefDefaults {
                        kind: None,
                        namespace: "default",
                    },
                )
                .unwrap(),
                depth,
                direction,
                types: strings(types),
            };
            async move { store.relation_graph(&q).await.unwrap() }
        };
        let edges = |g: &portolan_store::RelationGraph| -> Vec<String> {
            g.edges
                .iter()
                .map(|e| format!("{} {} {}", e.source, e.kind, e.target))
                .collect()
        };

        // One step out of payments-service.
        let g = graph("component:payments-service", 1, Direction::Outgoing, &[])
            .await
            .unwrap();
        assert_eq!(
            edges(&g),
            [
                "component:default/payments-service dependsOn component:default/billing",
                "component:default/payments-service ownedBy group:default/team-a",
                "component:default/payments-service partOf system:default/shop",
                "component:default/payments-service providesApi api:default/payments-api",
            ]
        );
        assert_eq!(g.nodes[0].entity_ref, "component:default/payments-service");
        assert_eq!(g.nodes[0].depth, 0);
        assert_eq!(g.nodes.len(), 5);
        let api = g
            .nodes
            .iter()
            .find(|n| n.entity_ref == "api:default/payments-api")
            .unwrap();
        assert_eq!(api.depth, 1);
        let shown = api.entity.as_ref().unwrap();
        assert_eq!(
            (
                shown.kind.as_str(),
                shown.name.as_str(),
                shown.title.as_deref()
            ),
            ("API", "payments-api", Some("Payments API"))
        );
        assert!(!g.truncated);

        // Two steps, dependencies only: billing, then the database, which
        // is not in the catalog.
        let g = graph(
            "component:payments-service",
            2,
            Direction::Outgoing,
            &["DEPENDSON"],
        )
        .await
        .unwrap();
        assert_eq!(
            edges(&g),
            [
                "component:default/billing dependsOn resource:default/ledger-db",
                "component:default/payments-service dependsOn component:default/billing",
            ]
        );
        let db_node = g.nodes.iter().find(|n| n.depth == 2).unwrap();
        assert_eq!(db_node.entity_ref, "resource:default/ledger-db");
        assert!(db_node.entity.is_none());

        // Incoming to the API: who provides and who consumes it.
        let g = graph(
            "api:payments-api",
            1,
            Direction::Incoming,
            &["providesApi", "consumesApi"],
        )
        .await
        .unwrap();
        assert_eq!(
            edges(&g),
            [
                "component:default/payments-service providesApi api:default/payments-api",
                "component:default/web consumesApi api:default/payments-api",
            ]
        );

        // Both directions: team-b's components, each relation stored both
        // ways.
        let g = graph("group:team-b", 1, Direction::Both, &["ownedBy", "ownerOf"])
            .await
            .unwrap();
        let mut refs: Vec<&str> = g.nodes.iter().map(|n| n.entity_ref.as_str()).collect();
        refs.sort();
        assert_eq!(
            refs,
            [
                "component:default/billing",
                "component:default/docs",
                "component:default/web",
                "group:default/team-b"
            ]
        );
        assert_eq!(g.edges.len(), 6, "{:?}", edges(&g));

        // Depth 3 from the user: the group, what it owns, and what that
        // depends on or holds.
        let g = graph("user:jane", 3, Direction::Outgoing, &[])
            .await
            .unwrap();
        assert_eq!(
            g.nodes.iter().map(|n| n.depth).max(),
            Some(3),
            "{:?}",
            edges(&g)
        );
        assert!(g
            .nodes
            .iter()
            .any(|n| n.entity_ref == "component:default/billing" && n.depth == 3));

        assert!(graph("component:nope", 1, Direction::Both, &[])
            .await
            .is_none());
        store.close().await;
        db
    }

    pub async fn relation_graph_is_bounded(store: Store, db: TestDatabase) -> TestDatabase {
        let many: Vec<Entity> = (0..1_100)
            .map(|i| component(&format!("c{i:04}"), json!({"owner": "big"}), json!({})))
            .collect();
        store.put_entities(&many, &Origin::Api).await.unwrap();
        let g = store
            .relation_graph(&GraphQuery {
                root: EntityRef::new("component", "default", "c0000"),
                depth: 2,
                direction: Direction::Outgoing,
                types: vec![],
            })
            .await
            .unwrap()
            .unwrap();
        assert!(g.truncated);
        assert_eq!(g.nodes.len(), portolan_store::query::MAX_GRAPH_NODES);
        // Every edge joins two of the nodes.
        let refs: HashSet<&str> = g.nodes.iter().map(|n| n.entity_ref.as_str()).collect();
        assert!(g
            .edges
            .iter()
            .all(|e| refs.contains(e.source.as_str()) && refs.contains(e.target.as_str())));
        store.close().await;
        db
    }

    pub async fn counts_follow_every_write(store: Store, db: TestDatabase) -> TestDatabase {
        let fields: Vec<FieldPath> = [
            "kind",
            "metadata.namespace",
            "spec.lifecycle",
            "spec.type",
            "relations.ownedBy",
            "metadata.tags",
        ]
        .map(path)
        .into();
        // Every facet and a few totals, checked against the entities the
        // catalog should hold now.
        let check = |now: Vec<Entity>, step: &'static str| {
            let store = store.clone();
            let fields = fields.clone();
            async move {
                let all = store
                    .entity_facets(&EntityQuery::default(), &fields)
                    .await
                    .unwrap();
                let mut want = model_facets(&now, None);
                for f in &fields {
                    want.entry(f.to_string()).or_default();
                }
                assert_eq!(all, want, "{step}: every entity");
                let components = query(|q| q.kinds = strings(&["component"]));
                let facets = store
                    .entity_facets(&components, &fields[1..])
                    .await
                    .unwrap();
                for f in &fields[1..] {
                    assert_eq!(
                        facets[f.as_str()],
                        model_facets(&now, Some("component"))
                            .remove(f.as_str())
                            .unwrap_or_default(),
                        "{step}: {f} of components"
                    );
                }
                let total = |q: EntityQuery| {
                    let store = store.clone();
                    async move { store.list_entities(&q).await.unwrap().total }
                };
                let count =
                    |f: &dyn Fn(&Entity) -> bool| now.iter().filter(|e| f(e)).count() as u64;
                assert_eq!(total(query(|_| {})).await, now.len() as u64, "{step}");
                assert_eq!(
                    total(query(|q| q.kinds = strings(&["component", "API"]))).await,
                    count(&|e| e.kind == "Component" || e.kind == "API"),
                    "{step}"
                );
                assert_eq!(
                    total(query(|q| {
                        q.kinds = strings(&["component"]);
                        q.lifecycles = strings(&["production"]);
                    }))
                    .await,
                    count(
                        &|e| e.kind == "Component" && e.spec_str("lifecycle") == Some("production")
                    ),
                    "{step}"
                );
                assert_eq!(
                    total(query(|q| q.tags = strings(&["go"]))).await,
                    count(&|e| e.metadata.tags.iter().any(|t| t == "go")),
                    "{step}"
                );
                assert_eq!(
                    total(query(|q| {
                        q.tags = strings(&["go"]);
                        q.kinds = strings(&["component"]);
                    }))
                    .await,
                    count(&|e| e.kind == "Component" && e.metadata.tags.iter().any(|t| t == "go")),
                    "{step}"
                );
                assert_eq!(
                    total(query(|q| q.tags = strings(&["go", "rust"]))).await,
                    count(&|e| e.metadata.tags.iter().any(|t| t == "go" || t == "rust")),
                    "{step}"
                );
            }
        };

        let mut now = catalog();
        store.put_entities(&now, &Origin::Api).await.unwrap();
        check(now.clone(), "loaded").await;

        // A change of lifecycle, owner and tags; an unchanged re-send.
        let billing = component(
            "billing",
            json!({"owner": "team-a"}),
            json!({"tags": ["go", "rust"]}),
        );
        for _ in 0..2 {
            store
                .put_entities(std::slice::from_ref(&billing), &Origin::Api)
                .await
                .unwrap();
        }
        let i = now
            .iter()
            .position(|e| e.metadata.name == "billing")
            .unwrap();
        now[i] = billing;
        check(now.clone(), "updated").await;

        // A delete takes its tags along.
        store
            .delete_entity(&EntityRef::new("component", "default", "web"), None)
            .await
            .unwrap();
        now.retain(|e| e.metadata.name != "web");
        check(now.clone(), "deleted").await;

        // A source's entities come, change, and go as orphans.
        let synced: Vec<Entity> = (0..3)
            .map(|i| {
                component(
                    &format!("synced-{i}"),
                    json!({"lifecycle": "experimental", "owner": "group:ops/sre"}),
                    json!({"namespace": "ops", "tags": ["go", "ops"]}),
                )
            })
            .collect();
        store
            .sync_source("files", &synced, &HashSet::new())
            .await
            .unwrap();
        let mut with_synced = now.clone();
        with_synced.extend(synced.iter().cloned());
        check(with_synced, "synced").await;
        store
            .sync_source("files", &synced[..1], &HashSet::new())
            .await
            .unwrap();
        let mut with_one = now.clone();
        with_one.push(synced[0].clone());
        check(with_one, "orphans removed").await;
        store
            .sync_source("files", &[], &HashSet::new())
            .await
            .unwrap();
        check(now, "all removed").await;
        store.close().await;
        db
    }

    pub async fn an_upgraded_database_is_searchable_and_sortable(
        store: Store,
        db: TestDatabase,
    ) -> TestDatabase {
        // Start over on a database at the schema before this feature,
        // holding an entity written then, and open it with today's store.
        store.close().await;
        let backend = store.backend();
        db.drop_db().await;
        let dir = tempfile::tempdir().unwrap();
        let db = match backend {
            portolan_store::Backend::Sqlite => TestDatabase::sqlite(dir.path()).await,
            portolan_store::Backend::Postgres => TestDatabase::postgres().await,
        };
        db.migrate_up_to(2).await;
        let body = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "Legacy-App", "title": "Old Faithful"},
            "spec": {"type": "service", "lifecycle": "production", "owner": "Team-Z"}})
        .to_string();
        let insert = "INSERT INTO entities (entity_ref, kind, namespace, name, kind_key, \
             namespace_key, lifecycle, spec_type, body, etag, origin, created_at, updated_at) \
             VALUES ('component:default/legacy-app', 'Component', 'default', 'Legacy-App', \
             'component', 'default', 'production', 'service', $1, 'e1', 'api', \
             '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')";
        // Its relations, both directions, as the writer of the time stored them.
        let relations = "INSERT INTO entity_relations \
             (origin_ref, source_key, type, target_key, target_ref) VALUES \
             ('component:default/legacy-app', 'component:default/legacy-app', 'ownedBy', \
              'group:default/team-z', 'group:default/Team-Z'), \
             ('component:default/legacy-app', 'group:default/team-z', 'ownerOf', \
              'component:default/legacy-app', 'component:default/Legacy-App')";
        match backend {
            portolan_store::Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", db.url))
                    .await
                    .unwrap();
                sqlx::query(insert)
                    .bind(&body)
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query(relations).execute(&pool).await.unwrap();
                pool.close().await;
            }
            portolan_store::Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                sqlx::query(&insert.replace("$1", "$1::jsonb"))
                    .bind(&body)
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query(relations).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }

        let store = Store::connect(&db.url).await.unwrap();
        let q = |f: fn(&mut EntityQuery)| query(f);
        assert_eq!(
            names(&store, q(|q| q.search = Some("faithful".into()))).await,
            strings(&["Legacy-App"])
        );
        assert_eq!(
            names(
                &store,
                q(|q| q.filters = vec![filter("metadata.name", &["legacy-app"])])
            )
            .await,
            strings(&["Legacy-App"])
        );
        assert_eq!(
            names(
                &store,
                q(|q| q.filters = vec![filter("spec.owner", &["team-z"])])
            )
            .await,
            strings(&["Legacy-App"])
        );
        assert_eq!(
            names(
                &store,
                q(|q| q.owners = vec![EntityRef::new("group", "default", "team-z")])
            )
            .await,
            strings(&["Legacy-App"])
        );
        let facets = store
            .entity_facets(
                &EntityQuery::default(),
                &[path("spec.owner"), path("relations.ownedBy")],
            )
            .await
            .unwrap();
        assert_eq!(facets["spec.owner"], counts(&[("team-z", 1)]));
        assert_eq!(
            facets["relations.ownedBy"],
            counts(&[("group:default/team-z", 1)])
        );
        // And it keeps working for what is written next.
        store.put_entities(&catalog(), &Origin::Api).await.unwrap();
        assert_eq!(
            names(
                &store,
                q(|q| {
                    q.sort = vec![sort("metadata.name")];
                    q.kinds = vec!["group".into()];
                })
            )
            .await,
            strings(&["team-a", "team-b"])
        );
        store.close().await;
        drop(dir);
        db
    }

    pub async fn a_catalog_written_before_0007_reads_and_changes_as_a_new_one(
        store: Store,
        db: TestDatabase,
    ) -> TestDatabase {
        // A database at migration 0005 holding the catalog as that
        // version's store wrote it, opened by today's store, beside a new
        // database that today's store fills with the same catalog.
        store.close().await;
        let backend = store.backend();
        db.drop_db().await;
        let dir = tempfile::tempdir().unwrap();
        let new_dir = tempfile::tempdir().unwrap();
        let (db, new_db) = match backend {
            portolan_store::Backend::Sqlite => (
                TestDatabase::sqlite(dir.path()).await,
                TestDatabase::sqlite(new_dir.path()).await,
            ),
            portolan_store::Backend::Postgres => (
                TestDatabase::postgres().await,
                TestDatabase::postgres().await,
            ),
        };
        db.migrate_up_to(5).await;
        let mut before = catalog();
        // A relation whose target spells a name in another case, and a
        // component that depends on itself: both rows of a pair meet.
        before.push(component(
            "loop",
            json!({"dependsOn": ["component:default/LOOP", "component:default/Billing"]}),
            json!({"tags": ["go"]}),
        ));
        match backend {
            portolan_store::Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", db.url))
                    .await
                    .unwrap();
                let mut conn = pool.acquire().await.unwrap();
                write_as_of_0005::<sqlx::Sqlite>(&mut conn, &before, "").await;
                drop(conn);
                pool.close().await;
            }
            portolan_store::Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                let mut conn = pool.acquire().await.unwrap();
                write_as_of_0005::<sqlx::Postgres>(&mut conn, &before, "::jsonb").await;
                drop(conn);
                pool.close().await;
            }
        }
        let upgraded = Store::connect(&db.url).await.unwrap();
        let new = Store::connect(&new_db.url).await.unwrap();
        new.put_entities(&before, &Origin::Api).await.unwrap();
        let seen = everything_seen(&new).await;
        assert_eq!(everything_seen(&upgraded).await, seen, "as loaded");
        assert!(seen.len() > 10);

        // The same changes on both: an update that changes owner, tags and
        // relations, a delete, and a source's entities coming and going.
        for store in [&upgraded, &new] {
            let billing = component(
                "billing",
                json!({"owner": "team-a", "dependsOn": ["component:web"]}),
                json!({"tags": ["rust"]}),
            );
            store.put_entities(&[billing], &Origin::Api).await.unwrap();
            store
                .delete_entity(
                    &EntityRef::new("component", "default", "payments-service"),
                    None,
                )
                .await
                .unwrap();
            store
                .delete_entity(&EntityRef::new("component", "default", "loop"), None)
                .await
                .unwrap();
            let synced = component(
                "synced",
                json!({"owner": "team-b", "dependsOn": ["component:billing"]}),
                json!({"tags": ["go"]}),
            );
            store
                .sync_source("files", &[synced], &HashSet::new())
                .await
                .unwrap();
        }
        assert_eq!(
            everything_seen(&upgraded).await,
            everything_seen(&new).await,
            "after the same changes"
        );
        upgraded.close().await;
        new.close().await;
        new_db.drop_db().await;
        drop((dir, new_dir));
        db
    }
}
