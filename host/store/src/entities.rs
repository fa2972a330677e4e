//! The catalog's tables: entities, their tags and their relations.
//!
//! An entity is keyed by its lower-cased reference (`kind:namespace/name`),
//! so `Component:default/Web` and `component:default/web` are one entity.
//! Its body is stored as sent; its etag (see [`Entity::etag`]) changes only
//! when the content does, so re-sending an unchanged entity writes nothing.
//! Relations are stored once per relation an entity declares, with that
//! entity (`origin_ref`) and the reverse relation's name, and replaced in
//! the same transaction as that entity; queries see them in both
//! directions through the `entity_relations` view (migration 0007), and
//! look them up by target through `entity_relations_by_target` (on SQLite
//! the incoming side is a table of its own, migration 0011). Reads
//! of whole entities take an entity's own declared relations from its body
//! (the same derivation the write stored) and only the relations others
//! declare towards it from the table.
//!
//! Writes go through one path ([`Store::put_entities`] and
//! [`Store::put_entity`] share it): read the current etags of every entity
//! in the batch, decide per entity whether it is new, changed or unchanged,
//! then write only the new and changed ones, in bulk statements, all
//! in one transaction. On SQLite the same path keeps the search index and
//! the value counts, per batch; so does every delete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use portolan_catalog::{declared_relations, Entity, EntityRef, Relation};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::QueryBuilder;

use crate::store::{in_write_transaction, Pool};
use crate::{Store, StoreError};

/// Value-count rows per upsert on SQLite (4 binds each).
const COUNT_ROWS_PER_INSERT: usize = 8_000;

/// Keys per `IN (...)` lookup or delete.
const KEYS_PER_STATEMENT: usize = 8_000;

/// Who owns an entity: the API (pushed by a person or a CI job) or one
/// catalog source plugin. A source only ever replaces or removes its own
/// entities.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Pushed through the HTTP API.
    Api,
    /// Returned by the catalog-source plugin with this id.
    Source(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Api => f.write_str("api"),
            Origin::Source(id) => write!(f, "source:{id}"),
        }
    }
}

impl FromStr for Origin {
    type Err = String;

    fn from_str(s: &str) -> Result<Origin, String> {
        match s.split_once(':') {
            None if s == "api" => Ok(Origin::Api),
            Some(("source", id)) if !id.is_empty() => Ok(Origin::Source(id.to_owned())),
            _ => Err(format!(
                "unknown origin {s:?}; expected \"api\" or \"source:<plugin-id>\""
            )),
        }
    }
}

/// An `If-Match` precondition on a write or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the entity must exist.
    Any,
    /// The entity's current etag must be one of these.
    Etags(Vec<String>),
}

impl IfMatch {
    fn admits(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (_, None) => false,
            (IfMatch::Any, Some(_)) => true,
            (IfMatch::Etags(etags), Some(cur)) => etags.iter().any(|e| e == cur),
        }
    }
}

/// An entity as stored, with its relations from every declaring entity.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntity {
    pub entity: Entity,
    pub etag: String,
    pub origin: Origin,
    pub created_at: DateTime<Utc>,
    /// When the content last changed; an unchanged re-send leaves it.
    pub updated_at: DateTime<Utc>,
}

/// What a write did to one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Created,
    Updated,
    /// Same content as stored: nothing was written.
    Unchanged,
}

/// What a batch write did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// An entity of a batch before we know whether it changed: its key and
/// etag only, so that an unchanged re-send (a source's resync) costs a hash
/// per entity and no more.
struct Pending<'a> {
    key: String,
    etag: String,
    /// The body to store, serialised on the way to the etag.
    body: String,
    entity: &'a Entity,
}

impl<'a> Pending<'a> {
    fn new(entity: &'a Entity) -> Pending<'a> {
        let (body, etag) = entity.stored_form();
        Pending {
            key: entity.entity_ref().key(),
            etag,
            body,
            entity,
        }
    }
}

/// An entity ready to write: the columns and the rows that hang off it.
struct Prepared {
    key: String,
    kind: String,
    namespace: String,
    name: String,
    /// The reference as Backstage writes it: the target of the reverse of
    /// each relation the entity declares.
    source_ref: String,
    /// The kind and namespace lower-cased, for filters and counts.
    kind_key: String,
    namespace_key: String,
    lifecycle: Option<String>,
    spec_type: Option<String>,
    /// The name lower-cased, for sorting by name.
    name_key: String,
    /// The key of the `ownedBy` target (spec.owner resolved), for the
    /// owner filter and facet (see [`crate::query`]).
    owner_key: Option<String>,
    /// That relation's target as written (Backstage's form), where it
    /// differs from `owner_key`: SQLite serves the relation from these two
    /// columns (migration 0012).
    owner_ref: Option<String>,
    /// The stored body: the entity as JSON text, without relations.
    body: String,
    etag: String,
    tags: Vec<String>,
    relations: Vec<RelationRow>,
    /// SQLite: which of `relations` the entity's row and the incoming
    /// table hold (see [`row_relations`]), and the row's
    /// `declared_relations` column made of them (see [`declared_list`]).
    /// Made here, on every core, rather than by the writer.
    row_relations: Vec<usize>,
    declared_list: Option<String>,
    /// The entity's row of SQLite's search index (see [`SearchText`]).
    search: SearchText,
}

/// One relation the entity declares (migration 0007 stores each once and
/// reads it in both directions; on SQLite, in the entity's row since 0013).
struct RelationRow {
    kind: &'static str,
    target_key: String,
    target_ref: String,
    reverse: &'static str,
}

impl Prepared {
    fn new(pending: &Pending<'_>) -> Prepared {
        let entity = pending.entity;
        let me = entity.entity_ref();
        let mut tags: Vec<String> = entity
            .metadata
            .tags
            .iter()
            .map(|t| t.to_lowercase())
            .collect();
        tags.sort();
        tags.dedup();
        let declared = declared_relations(entity);
        let owner = declared
            .iter()
            .find(|r| r.kind == portolan_catalog::relations::names::OWNED_BY);
        let owner_key = owner.map(|r| r.target.key());
        let owner_ref = owner
            .map(|r| r.target.to_string())
            .filter(|written| Some(written) != owner_key.as_ref());
        let relations = declared
            .into_iter()
            .map(|r| RelationRow {
                kind: r.kind,
                target_key: r.target.key(),
                target_ref: r.target.to_string(),
                reverse: r.reverse,
            })
            .collect::<Vec<_>>();
        let row_relations = row_relations(&relations, owner_key.as_deref());
        let declared_list = declared_list(&relations, &row_relations);
        Prepared {
            key: pending.key.clone(),
            kind: entity.kind.clone(),
            namespace: entity.metadata.namespace.clone(),
            name: entity.metadata.name.clone(),
            source_ref: me.to_string(),
            kind_key: entity.kind.to_lowercase(),
            namespace_key: entity.metadata.namespace.to_lowercase(),
            lifecycle: entity.spec_str("lifecycle").map(str::to_lowercase),
            spec_type: entity.spec_str("type").map(str::to_lowercase),
            name_key: entity.metadata.name.to_lowercase(),
            owner_key,
            owner_ref,
            // Without relations: they live in their own table, and
            // whatever the caller put there is not the stored truth.
            body: pending.body.clone(),
            etag: pending.etag.clone(),
            tags,
            relations,
            row_relations,
            declared_list,
            search: SearchText::new(entity),
        }
    }
}

/// The relations an entity's row holds on SQLite: all it declares but the
/// ownedBy relation to `owner_key`, which the owner columns hold (migration
/// 0012), once each, in the order of the incoming table's key within one
/// declaring entity. Indexes into `relations`.
fn row_relations(relations: &[RelationRow], owner_key: Option<&str>) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..relations.len())
        .filter(|&i| {
            let r = &relations[i];
            r.kind != portolan_catalog::relations::names::OWNED_BY
                || owner_key != Some(r.target_key.as_str())
        })
        .collect();
    let sort_key = |i: &usize| {
        let r = &relations[*i];
        (r.kind, r.target_key.as_str(), r.target_ref.as_str())
    };
    rows.sort_unstable_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    rows.dedup_by(|a, b| sort_key(a) == sort_key(b));
    rows
}

/// SQLite's `declared_relations` column (migration 0013) of the relations
/// `rows` picks: `[type, target_key, target_ref, reverse_type]` each, the
/// target as written `''` where it equals its key; `None` when there are
/// none.
fn declared_list(relations: &[RelationRow], rows: &[usize]) -> Option<String> {
    let list: Vec<[&str; 4]> = rows
        .iter()
        .map(|&i| {
            let r = &relations[i];
            [
                r.kind,
                r.target_key.as_str(),
                unless_key(&r.target_ref, &r.target_key),
                r.reverse,
            ]
        })
        .collect();
    // An array of strings always serialises.
    (!list.is_empty()).then(|| serde_json::to_string(&list).unwrap_or_default())
}

/// A reference as written is stored as '' on SQLite where it equals its
/// key.
fn unless_key<'s>(reference: &'s str, key: &str) -> &'s str {
    if reference == key {
        ""
    } else {
        reference
    }
}

/// The columns of SQLite's full-text index (`entities_fts`, migration
/// 0003) for one entity: the text the trigger of that migration made from
/// the stored body, field for field, now made here from the entity in hand
/// (migration 0007) so that a batch writes its search rows in a few
/// statements without parsing any JSON again. Only the words matter (the
/// tokenizer splits at anything but letters and digits); each field still
/// reads as `json_extract` would give it, so that ranking sees the same
/// words in the same columns.
struct SearchText {
    name: String,
    title: Option<String>,
    tags: Option<String>,
    description: Option<String>,
    other: String,
}

impl SearchText {
    fn new(entity: &Entity) -> SearchText {
        let meta = &entity.metadata;
        let spec = |path: &[&str]| {
            let mut value = entity.spec.get(path[0])?;
            for key in &path[1..] {
                value = value.as_object()?.get(*key)?;
            }
            sql_text(value)
        };
        let mut other = format!("{} {}", entity.kind, meta.namespace);
        for path in [
            &["type"][..],
            &["lifecycle"],
            &["owner"],
            &["system"],
            &["domain"],
            &["profile", "displayName"],
            &["profile", "email"],
        ] {
            if let Some(text) = spec(path) {
                other.push(' ');
                other.push_str(&text);
            }
        }
        SearchText {
            name: meta.name.clone(),
            title: meta.title.clone(),
            tags: (!meta.tags.is_empty()).then(|| meta.tags.join(" ")),
            description: meta.description.clone(),
            other,
        }
    }
}

/// A JSON value as SQLite's `json_extract` gives it to text functions:
/// strings as they are, `true`/`false` as 1/0, other scalars as written,
/// objects and arrays as JSON, and null as SQL NULL.
fn sql_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        other => Some(other.to_string()),
    }
}

/// What a write finds already stored.
struct Existing {
    etag: String,
    origin: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct EntityRow {
    pub(crate) entity_ref: String,
    body: Body,
    etag: String,
    origin: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RelationOut {
    source_key: String,
    #[sqlx(rename = "type")]
    kind: String,
    target_ref: String,
}

/// A stored body, read straight into an [`Entity`] (not through a JSON
/// value first: listing pages and evaluations read many). A body that does
/// not parse is kept as its error, so that the caller can name the entity.
pub(crate) struct Body(Result<Entity, String>);

/// The column type and decoding of [`Body`] for one backend: whatever
/// `Json<Entity>` accepts, with a parse failure kept rather than raised.
macro_rules! body_decode {
    ($db:ty) => {
        impl sqlx::Type<$db> for Body {
            fn type_info() -> <$db as sqlx::Database>::TypeInfo {
                <Json<Entity> as sqlx::Type<$db>>::type_info()
            }

            fn compatible(ty: &<$db as sqlx::Database>::TypeInfo) -> bool {
                <Json<Entity> as sqlx::Type<$db>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, $db> for Body {
            fn decode(
                value: <$db as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(Body(
                    <Json<Entity> as sqlx::Decode<'r, $db>>::decode(value)
                        .map(|json| json.0)
                        .map_err(|e| e.to_string()),
                ))
            }
        }
    };
}

body_decode!(sqlx::Sqlite);
body_decode!(sqlx::Postgres);

impl EntityRow {
    /// The stored entity with its relations: those its own spec declares
    /// (derived from the body, as the write that stored it derived the
    /// relations it stored) and `incoming`, those other
    /// entities declare towards it. `None` leaves the relations out.
    pub(crate) fn into_stored(
        self,
        incoming: Option<Vec<Relation>>,
    ) -> Result<StoredEntity, StoreError> {
        let mut entity: Entity = self.body.0.map_err(|e| {
            StoreError::InvalidData(format!(
                "entity {}: body does not parse: {e}",
                self.entity_ref
            ))
        })?;
        if let Some(mut relations) = incoming {
            relations.extend(declared_relations(&entity).into_iter().map(|d| Relation {
                kind: d.kind.to_owned(),
                target_ref: d.target.to_string(),
            }));
            relations.sort();
            relations.dedup();
            entity.relations = relations;
        }
        let origin = self
            .origin
            .parse()
            .map_err(|e| StoreError::InvalidData(format!("entity {}: {e}", self.entity_ref)))?;
        Ok(StoredEntity {
            entity,
            etag: self.etag,
            origin,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The reverse half of `entity_relations` (the relations other entities
/// declare towards `source_key`) as relations of that key, through the
/// view `entity_relations_reverse` (migration 0012; on SQLite over the
/// incoming table and the owners' columns of `entities`). The declared
/// half is derived from each entity's body instead (see
/// [`EntityRow::into_stored`]), which spares a page one index probe and
/// about two rows per entity.
pub(crate) const INCOMING_RELATIONS: &str =
    "SELECT source_key, type, target_ref FROM entity_relations_reverse WHERE source_key";

/// Groups relation rows by source, sorted, without duplicates (two
/// entities may declare the same relation: `a dependsOn b` and
/// `b dependencyOf a`).
pub(crate) fn group_relations(rows: Vec<RelationOut>) -> HashMap<String, Vec<Relation>> {
    let mut out: HashMap<String, Vec<Relation>> = HashMap::new();
    for row in rows {
        out.entry(row.source_key).or_default().push(Relation {
            kind: row.kind,
            target_ref: row.target_ref,
        });
    }
    for relations in out.values_mut() {
        relations.sort();
        relations.dedup();
    }
    out
}

/// Items one worker of [`parallel_map`] takes at least: below this, handing
/// work to another thread costs more than it saves.
const MIN_ITEMS_PER_THREAD: usize = 512;

/// `items.iter().map(f)`, spread over the machine's cores (rayon's pool) for
/// big batches, in order. Hashing and preparing an entity (its etag, stored
/// body, relations and search text) costs some 10 µs, a large share of a
/// 10,000-entity batch's time when done on one thread. Blocks the calling
/// thread meanwhile, as the sequential map did; on a multi-threaded tokio
/// runtime, through [`crate::sqlite_direct::blocking`], so that the
/// runtime's other tasks (a token check, a page) move to another worker
/// rather than wait: several batches may be preparing at once. The pool's
/// threads live on between batches: spawning fresh ones for each batch
/// also gave each a fresh allocator heap, whose pages the kernel zeroed
/// again every time.
fn parallel_map<'a, T: Sync, U: Send>(items: &'a [T], f: impl Fn(&'a T) -> U + Sync) -> Vec<U> {
    use rayon::prelude::*;
    if items.len() < 2 * MIN_ITEMS_PER_THREAD {
        return items.iter().map(f).collect();
    }
    crate::sqlite_direct::blocking(|| {
        items
            .par_iter()
            .with_min_len(MIN_ITEMS_PER_THREAD)
            .map(&f)
            .collect()
    })
}

/// The current time at the precision both backends store.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The rows of the entities `chosen` (indexes into `pending`) to write:
/// each one [`Store::prepare_early`] made, or, for an entity it took for
/// unchanged and someone has changed or deleted since, one made now into
/// `late`.
fn rows_to_write<'a>(
    pending: &[Pending<'_>],
    early: &'a [Option<Prepared>],
    chosen: &[usize],
    late: &'a mut Vec<Prepared>,
) -> Vec<&'a Prepared> {
    let missing: Vec<usize> = chosen
        .iter()
        .copied()
        .filter(|&i| early[i].is_none())
        .collect();
    *late = parallel_map(&missing, |&i| Prepared::new(&pending[i]));
    let late: &'a Vec<Prepared> = late;
    chosen
        .iter()
        .filter_map(|&i| early[i].as_ref())
        .chain(late)
        .collect()
}

/// Decides what to do with each entity of a batch, given what is stored.
/// Fails the whole batch on the first precondition or ownership conflict.
fn plan(
    batch: &[Pending<'_>],
    existing: &HashMap<String, Existing>,
    origin: &Origin,
    if_match: Option<&IfMatch>,
) -> Result<Vec<WriteOutcome>, StoreError> {
    let origin_text = origin.to_string();
    batch
        .iter()
        .map(|p| {
            let current = existing.get(&p.key);
            if let Some(cond) = if_match {
                if !cond.admits(current.map(|c| c.etag.as_str())) {
                    return Err(StoreError::PreconditionFailed {
                        entity: p.key.clone(),
                        current: current.map(|c| c.etag.clone()),
                    });
                }
            }
            match current {
                None => Ok(WriteOutcome::Created),
                Some(c) if c.origin != origin_text => Err(StoreError::OriginConflict {
                    entity: p.key.clone(),
                    owner: c.origin.clone(),
                }),
                Some(c) if c.etag == p.etag => Ok(WriteOutcome::Unchanged),
                Some(_) => Ok(WriteOutcome::Updated),
            }
        })
        .collect()
}

/// The backend-specific halves: the same code instantiated for each
/// backend's types, so each statement is type-checked per backend while
/// the SQL is written once. Where the dialects differ, the arguments say
/// how (row locks on PostgreSQL; SQLite's writer lock is taken by
/// `BEGIN IMMEDIATE`).
macro_rules! backend_impl {
    (
        $module:ident,
        $db:ty,
        $conn:ty,
        $for_update:expr,
        $clear_new:expr,
        $bulk:ident
    ) => {
        mod $module {
            use super::*;

            type Db = $db;
            type Conn = $conn;

            /// The stored etag and owner of each of `keys` that exists,
            /// locked for the transaction on PostgreSQL.
            pub(super) async fn existing(
                conn: &mut Conn,
                keys: &[&str],
            ) -> Result<HashMap<String, Existing>, StoreError> {
                read_existing(conn, keys, $for_update).await
            }

            /// [`existing`] outside any transaction: a glance that locks
            /// nothing (see [`Store::prepare_early`]).
            pub(super) async fn glance(
                conn: &mut Conn,
                keys: &[&str],
            ) -> Result<HashMap<String, Existing>, StoreError> {
                read_existing(conn, keys, "").await
            }

            async fn read_existing(
                conn: &mut Conn,
                keys: &[&str],
                lock: &str,
            ) -> Result<HashMap<String, Existing>, StoreError> {
                let mut out = HashMap::with_capacity(keys.len());
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "SELECT entity_ref, etag, origin FROM entities WHERE entity_ref IN (",
                    );
                    let mut list = qb.separated(", ");
                    for key in chunk {
                        list.push_bind(*key);
                    }
                    qb.push(")");
                    qb.push(lock);
                    let rows: Vec<(String, String, String)> =
                        qb.build_query_as().fetch_all(&mut *conn).await?;
                    for (key, etag, origin) in rows {
                        out.insert(key, Existing { etag, origin });
                    }
                }
                Ok(out)
            }

            async fn delete_keys(
                conn: &mut Conn,
                table: &str,
                column: &str,
                keys: &[&str],
            ) -> Result<(), StoreError> {
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    let mut qb =
                        QueryBuilder::<Db>::new(format!("DELETE FROM {table} WHERE {column} IN ("));
                    let mut list = qb.separated(", ");
                    for key in chunk {
                        list.push_bind(*key);
                    }
                    qb.push(")");
                    qb.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Writes new and changed entities with their tags and
            /// relations. `stored` are the keys of those that exist: their
            /// old search rows, counts, tags and relations must go first.
            pub(super) async fn write(
                conn: &mut Conn,
                rows: &[&Prepared],
                stored: &[&str],
                origin: &str,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                super::$bulk::retract(conn, stored).await?;
                let written = super::$bulk::insert_entities(conn, rows, stored, origin, at).await?;
                if written < rows.len() as u64 {
                    // Another origin created one of these after we looked
                    // (PostgreSQL only: there was no row to lock). Name it;
                    // the caller's rollback undoes the rest.
                    let keys: Vec<&str> = rows.iter().map(|p| p.key.as_str()).collect();
                    let now = existing(conn, &keys).await?;
                    let (entity, owner) = now
                        .into_iter()
                        .find(|(_, e)| e.origin != origin)
                        .map(|(k, e)| (k, e.origin))
                        .unwrap_or_else(|| (keys[0].to_owned(), "another origin".into()));
                    return Err(StoreError::OriginConflict { entity, owner });
                }
                // Only now, with every row written and so locked: on
                // PostgreSQL a concurrent writer of the same new entity has
                // committed by the time our upsert got past it, and these
                // statements (each a fresh snapshot) see and clear its rows.
                // So there, new entities are cleared too; SQLite's writer
                // holds the database from BEGIN IMMEDIATE on, and a new
                // entity has nothing to clear.
                let cleared: Vec<&str> = if $clear_new {
                    rows.iter().map(|p| p.key.as_str()).collect()
                } else {
                    stored.to_vec()
                };
                super::$bulk::clear_declared(conn, &cleared).await?;
                delete_keys(conn, "entity_tags", "entity_ref", &cleared).await?;
                let tags: Vec<(&str, &str)> = rows
                    .iter()
                    .flat_map(|p| p.tags.iter().map(|t| (p.key.as_str(), t.as_str())))
                    .collect();
                super::$bulk::insert_tags(conn, &tags).await?;
                super::$bulk::insert_relations(conn, rows).await?;
                Ok(())
            }

            /// The keys of every entity `origin` owns.
            pub(super) async fn keys_of_origin(
                conn: &mut Conn,
                origin: &str,
            ) -> Result<Vec<String>, StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT entity_ref FROM entities WHERE origin = $1")
                        .bind(origin)
                        .fetch_all(&mut *conn)
                        .await?,
                )
            }

            /// Deletes these entities with their tags and the relations
            /// they declared (explicitly: SQLite's tables of migration 0007
            /// have no foreign keys to cascade).
            pub(super) async fn delete_many(
                conn: &mut Conn,
                keys: &[&str],
            ) -> Result<(), StoreError> {
                super::$bulk::retract(conn, keys).await?;
                super::$bulk::clear_declared(conn, keys).await?;
                delete_keys(conn, "entity_tags", "entity_ref", keys).await?;
                delete_keys(conn, "entities", "entity_ref", keys).await
            }

            pub(super) async fn delete(conn: &mut Conn, key: &str) -> Result<bool, StoreError> {
                super::$bulk::retract(conn, &[key]).await?;
                super::$bulk::clear_declared(conn, &[key]).await?;
                delete_keys(conn, "entity_tags", "entity_ref", &[key]).await?;
                let done = sqlx::query("DELETE FROM entities WHERE entity_ref = $1")
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            /// Relations other entities declare towards each of `keys`,
            /// grouped by key.
            async fn incoming(
                conn: &mut Conn,
                keys: &[&str],
            ) -> Result<HashMap<String, Vec<Relation>>, StoreError> {
                let mut rows = Vec::new();
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    if chunk.is_empty() {
                        continue;
                    }
                    let mut qb = QueryBuilder::<Db>::new(INCOMING_RELATIONS);
                    qb.push(" IN (");
                    let mut list = qb.separated(", ");
                    for key in chunk {
                        list.push_bind(*key);
                    }
                    qb.push(")");
                    rows.extend(
                        qb.build_query_as::<RelationOut>()
                            .fetch_all(&mut *conn)
                            .await?,
                    );
                }
                Ok(group_relations(rows))
            }

            async fn attach(
                conn: &mut Conn,
                rows: Vec<EntityRow>,
            ) -> Result<Vec<StoredEntity>, StoreError> {
                let keys: Vec<&str> = rows.iter().map(|r| r.entity_ref.as_str()).collect();
                let mut relations = incoming(conn, &keys).await?;
                rows.into_iter()
                    .map(|row| {
                        let rels = relations.remove(&row.entity_ref).unwrap_or_default();
                        row.into_stored(Some(rels))
                    })
                    .collect()
            }

            pub(super) async fn get(
                conn: &mut Conn,
                key: &str,
            ) -> Result<Option<StoredEntity>, StoreError> {
                let row: Option<EntityRow> = sqlx::query_as(
                    "SELECT entity_ref, body, etag, origin, created_at, updated_at \
                     FROM entities WHERE entity_ref = $1",
                )
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(attach(conn, vec![row]).await?.pop()),
                }
            }

            /// The entities stored under `keys` (each once), with their
            /// relations, in no particular order.
            pub(super) async fn get_many(
                conn: &mut Conn,
                keys: &[&str],
            ) -> Result<Vec<StoredEntity>, StoreError> {
                let mut rows: Vec<EntityRow> = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "SELECT entity_ref, body, etag, origin, created_at, updated_at \
                         FROM entities WHERE entity_ref IN (",
                    );
                    let mut list = qb.separated(", ");
                    for key in chunk {
                        list.push_bind(*key);
                    }
                    qb.push(")");
                    rows.extend(
                        qb.build_query_as::<EntityRow>()
                            .fetch_all(&mut *conn)
                            .await?,
                    );
                }
                attach(conn, rows).await
            }
        }
    };
}

backend_impl!(
    sqlite,
    sqlx::Sqlite,
    sqlx::SqliteConnection,
    "",
    false,
    sqlite_bulk
);
backend_impl!(
    postgres,
    sqlx::Postgres,
    sqlx::PgConnection,
    " FOR UPDATE",
    true,
    postgres_bulk
);

/// The conflict clause of every entity upsert. The `WHERE` keeps an upsert
/// from taking over another origin's entity; the caller sees the row it
/// skipped in the row count.
macro_rules! upsert_entity {
    ($($more:literal)?) => {
        concat!(
            " ON CONFLICT (entity_ref) DO UPDATE SET kind = excluded.kind, \
             namespace = excluded.namespace, name = excluded.name, \
             kind_key = excluded.kind_key, namespace_key = excluded.namespace_key, \
             lifecycle = excluded.lifecycle, spec_type = excluded.spec_type, \
             name_key = excluded.name_key, owner_key = excluded.owner_key, \
             owner_ref = excluded.owner_ref, \
             body = excluded.body, etag = excluded.etag, origin = excluded.origin, \
             updated_at = excluded.updated_at",
            $($more,)?
            " WHERE entities.origin = excluded.origin"
        )
    };
}
const UPSERT_ENTITY: &str = upsert_entity!();

/// Bulk inserts on SQLite: a prepared single-row statement per table,
/// stepped once per row through SQLite's own interface. SQLite also keeps
/// the search index and the per-kind value counts here, per batch
/// (migration 0007 explains why not per row in triggers).
mod sqlite_bulk {
    use super::*;
    use crate::sqlite_direct::{blocking, Direct};

    type Db = sqlx::Sqlite;

    /// Takes the stored state of `keys`, entities about to be replaced or
    /// deleted, out of the search index and the value counts. Keys travel
    /// as one JSON array, so a batch of any size is one statement each.
    pub(super) async fn retract(
        conn: &mut sqlx::SqliteConnection,
        keys: &[&str],
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys = serde_json::to_string(keys)
            .map_err(|e| StoreError::InvalidData(format!("entity keys: {e}")))?;
        sqlx::query(
            "DELETE FROM entities_fts WHERE rowid IN (SELECT rowid FROM entities \
             WHERE entity_ref IN (SELECT value FROM json_each($1)))",
        )
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
        // The incoming side of the relations they declared, found from
        // their stored lists (migration 0013) while the rows still hold
        // them.
        sqlx::query(
            "DELETE FROM entity_relations_incoming \
             WHERE (target_key, reverse_type, origin_ref, target_ref) IN ( \
                 SELECT r.value ->> 1, r.value ->> 3, e.entity_ref, r.value ->> 2 \
                 FROM entities e, json_each(e.declared_relations) r \
                 WHERE e.entity_ref IN (SELECT value FROM json_each($1)))",
        )
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
        sqlx::query(RETRACT_COUNTS)
            .bind(&keys)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Nothing left to do: the relations these entities declared live in
    /// their rows (migration 0013), and [`retract`], which every replace
    /// and delete runs first, took their incoming rows out.
    pub(super) async fn clear_declared(
        _conn: &mut sqlx::SqliteConnection,
        _keys: &[&str],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Subtracts the counted values of the entities whose keys are the JSON
    /// array `$1`, and of their tags (a tag's kind is its entity key's
    /// first part, as when it was counted).
    const RETRACT_COUNTS: &str = "WITH gone AS (SELECT value AS entity_ref FROM json_each($1)) \
         INSERT INTO entity_value_counts (field, kind_key, value, n) \
         SELECT field, kind_key, value, -COUNT(*) FROM ( \
             SELECT 'kind' AS field, e.kind_key, e.kind_key AS value FROM entities e \
                 WHERE e.entity_ref IN gone \
             UNION ALL SELECT 'metadata.namespace', e.kind_key, e.namespace_key FROM entities e \
                 WHERE e.entity_ref IN gone \
             UNION ALL SELECT 'spec.lifecycle', e.kind_key, e.lifecycle FROM entities e \
                 WHERE e.entity_ref IN gone \
             UNION ALL SELECT 'spec.type', e.kind_key, e.spec_type FROM entities e \
                 WHERE e.entity_ref IN gone \
             UNION ALL SELECT 'relations.ownedBy', e.kind_key, e.owner_key FROM entities e \
                 WHERE e.entity_ref IN gone \
             UNION ALL SELECT 'metadata.tags', \
                 substr(t.entity_ref, 1, instr(t.entity_ref, ':') - 1), t.tag \
                 FROM entity_tags t WHERE t.entity_ref IN gone \
         ) WHERE value IS NOT NULL GROUP BY field, kind_key, value \
         ON CONFLICT (field, kind_key, value) DO UPDATE SET n = n + excluded.n";

    /// Writes the rows with their search rows, and adds their values to
    /// the counts (whatever they replace was retracted before); returns
    /// how many were written. `stored` are the keys of rows that exist.
    ///
    /// New rows go in with `INSERT OR IGNORE` and only replaced ones with
    /// the upsert, whose `WHERE` skips another origin's row (the caller
    /// sees it in the count). The writer holds the database (`BEGIN
    /// IMMEDIATE`) and has seen that the new ones are absent, so nothing is
    /// ignored. Row by row through SQLite's own interface (see
    /// [`crate::sqlite_direct`]).
    pub(super) async fn insert_entities(
        conn: &mut sqlx::SqliteConnection,
        rows: &[&Prepared],
        stored: &[&str],
        origin: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let stored: HashSet<&str> = stored.iter().copied().collect();
        // The text sqlx writes for a `DateTime<Utc>`, as every other
        // statement stores these columns.
        let at = at.to_rfc3339_opts(SecondsFormat::AutoSi, false);
        let written = {
            let direct = Direct::lock(conn).await?;
            blocking(|| -> Result<u64, StoreError> {
                const INSERT: &str = "INTO entities (entity_ref, kind, namespace, name, \
                     kind_key, namespace_key, lifecycle, spec_type, name_key, owner_key, body, \
                     etag, origin, created_at, updated_at, owner_ref, declared_relations) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, \
                     ?15, ?16)";
                let mut new =
                    direct.prepare(&format!("INSERT OR IGNORE {INSERT} RETURNING rowid"))?;
                let mut replace = direct.prepare(&format!(
                    "INSERT {INSERT} {} RETURNING rowid",
                    upsert_entity!(", declared_relations = excluded.declared_relations")
                ))?;
                let mut ids: Vec<(i64, &SearchText)> = Vec::with_capacity(rows.len());
                for p in rows {
                    let statement = if stored.contains(p.key.as_str()) {
                        &mut replace
                    } else {
                        &mut new
                    };
                    let id = statement.run(&[
                        p.key.as_str().into(),
                        p.kind.as_str().into(),
                        p.namespace.as_str().into(),
                        p.name.as_str().into(),
                        p.kind_key.as_str().into(),
                        p.namespace_key.as_str().into(),
                        p.lifecycle.as_deref().into(),
                        p.spec_type.as_deref().into(),
                        p.name_key.as_str().into(),
                        p.owner_key.as_deref().into(),
                        p.body.as_str().into(),
                        p.etag.as_str().into(),
                        origin.into(),
                        at.as_str().into(),
                        p.owner_ref.as_deref().into(),
                        p.declared_list.as_deref().into(),
                    ])?;
                    // An upsert keeps the rowid of the row it updates, and
                    // the search row is keyed by it.
                    if let Some(id) = id {
                        ids.push((id, &p.search));
                    }
                }
                // The search rows after all entity rows: each table's pages
                // stay together in the cache while they are written.
                let mut search = direct.prepare(
                    "INSERT INTO entities_fts (rowid, name, title, tags, description, other) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (id, s) in &ids {
                    search.run(&[
                        (*id).into(),
                        s.name.as_str().into(),
                        s.title.as_deref().into(),
                        s.tags.as_deref().into(),
                        s.description.as_deref().into(),
                        s.other.as_str().into(),
                    ])?;
                }
                Ok(ids.len() as u64)
            })?
        };
        add_counts(conn, rows).await?;
        Ok(written)
    }

    /// Adds the rows' values to `entity_value_counts`: one row per
    /// distinct (field, kind, value) of the batch.
    async fn add_counts<'a>(
        conn: &mut sqlx::SqliteConnection,
        rows: &[&'a Prepared],
    ) -> Result<(), StoreError> {
        let mut counts: HashMap<(&'static str, &'a str, &'a str), i64> = HashMap::new();
        for p in rows {
            let mut add = |field: &'static str, value: &'a str| {
                *counts
                    .entry((field, p.kind_key.as_str(), value))
                    .or_default() += 1;
            };
            add("kind", &p.kind_key);
            add("metadata.namespace", &p.namespace_key);
            for (field, value) in [
                ("spec.lifecycle", &p.lifecycle),
                ("spec.type", &p.spec_type),
                ("relations.ownedBy", &p.owner_key),
            ] {
                if let Some(value) = value {
                    add(field, value);
                }
            }
            // A tag counts under its entity key's kind, as retract reads it.
            let tag_kind = p.key.split(':').next().unwrap_or_default();
            for tag in &p.tags {
                *counts
                    .entry(("metadata.tags", tag_kind, tag.as_str()))
                    .or_default() += 1;
            }
        }
        let counts: Vec<_> = counts.into_iter().collect();
        for chunk in counts.chunks(COUNT_ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO entity_value_counts (field, kind_key, value, n) ",
            );
            qb.push_values(chunk, |mut b, ((field, kind, value), n)| {
                b.push_bind(*field)
                    .push_bind(*kind)
                    .push_bind(*value)
                    .push_bind(*n);
            });
            qb.push(" ON CONFLICT (field, kind_key, value) DO UPDATE SET n = n + excluded.n");
            qb.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub(super) async fn insert_tags(
        conn: &mut sqlx::SqliteConnection,
        tags: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        if tags.is_empty() {
            return Ok(());
        }
        // OR IGNORE, as for new entities: an entity's old tags were deleted
        // first and its new ones are distinct, so nothing is ignored.
        let direct = Direct::lock(conn).await?;
        blocking(|| {
            let mut insert = direct
                .prepare("INSERT OR IGNORE INTO entity_tags (entity_ref, tag) VALUES (?1, ?2)")?;
            for (key, tag) in tags {
                insert.run(&[(*key).into(), (*tag).into()])?;
            }
            Ok(())
        })
    }

    /// Writes the incoming side of the relations (migration 0011); the
    /// declared side went into each entity's row with it (0013).
    pub(super) async fn insert_relations(
        conn: &mut sqlx::SqliteConnection,
        rows: &[&Prepared],
    ) -> Result<(), StoreError> {
        // In the order of the table's key, so the B-tree takes the batch's
        // inserts one page after the other: in the declaring entities'
        // order they would land anywhere in it.
        let mut incoming: Vec<(&Prepared, &RelationRow)> = rows
            .iter()
            .flat_map(|p| p.row_relations.iter().map(move |&i| (*p, &p.relations[i])))
            .collect();
        if incoming.is_empty() {
            return Ok(());
        }
        incoming.sort_unstable_by(|(p, r), (q, s)| {
            (
                r.target_key.as_str(),
                r.reverse,
                p.key.as_str(),
                r.target_ref.as_str(),
            )
                .cmp(&(
                    s.target_key.as_str(),
                    s.reverse,
                    q.key.as_str(),
                    s.target_ref.as_str(),
                ))
        });
        // OR IGNORE, as for tags: an entity's old relations were deleted
        // first, and one that two relation types share would be a second
        // row of the same key only if they were the same relation.
        let direct = Direct::lock(conn).await?;
        blocking(|| {
            let mut insert = direct.prepare(
                "INSERT OR IGNORE INTO entity_relations_incoming \
                 (target_key, reverse_type, origin_ref, target_ref, type, source_ref) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (p, r) in incoming {
                insert.run(&[
                    r.target_key.as_str().into(),
                    r.reverse.into(),
                    p.key.as_str().into(),
                    unless_key(&r.target_ref, &r.target_key).into(),
                    r.kind.into(),
                    unless_key(&p.source_ref, &p.key).into(),
                ])?;
            }
            Ok(())
        })
    }
}

/// Bulk inserts on PostgreSQL: one array per column and `UNNEST`, so a
/// statement has a dozen binds however many rows it carries, and the server
/// parses and plans it once.
mod postgres_bulk {
    use super::*;

    /// Rows per `UNNEST` statement; bounds one statement's message size.
    const ROWS_PER_UNNEST: usize = 20_000;

    /// Nothing to do: PostgreSQL's search column is generated from each
    /// row, and it counts values from its indexes (no counts table).
    pub(super) async fn retract(
        _conn: &mut sqlx::PgConnection,
        _keys: &[&str],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    pub(super) async fn insert_entities(
        conn: &mut sqlx::PgConnection,
        rows: &[&Prepared],
        _stored: &[&str],
        origin: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        for chunk in rows.chunks(ROWS_PER_UNNEST) {
            let col = |f: fn(&Prepared) -> &str| chunk.iter().map(|p| f(p)).collect::<Vec<&str>>();
            let kind_keys = col(|p| &p.kind_key);
            let namespace_keys = col(|p| &p.namespace_key);
            let lifecycles: Vec<Option<&str>> =
                chunk.iter().map(|p| p.lifecycle.as_deref()).collect();
            let types: Vec<Option<&str>> = chunk.iter().map(|p| p.spec_type.as_deref()).collect();
            let owners: Vec<Option<&str>> = chunk.iter().map(|p| p.owner_key.as_deref()).collect();
            let owner_refs: Vec<Option<&str>> =
                chunk.iter().map(|p| p.owner_ref.as_deref()).collect();
            let bodies = col(|p| &p.body);
            let sql = format!(
                "INSERT INTO entities (entity_ref, kind, namespace, name, kind_key, \
                 namespace_key, lifecycle, spec_type, body, etag, origin, created_at, updated_at, \
                 name_key, owner_key, owner_ref) \
                 SELECT u.r, u.k, u.ns, u.n, u.kk, u.nk, u.l, u.t, u.b::jsonb, u.e, $11, $12, $12, \
                 u.nm, u.o, u.orf \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $13::text[], \
                 $14::text[], $15::text[]) \
                 AS u(r, k, ns, n, kk, nk, l, t, b, e, nm, o, orf){UPSERT_ENTITY}"
            );
            written += sqlx::query(&sql)
                .bind(col(|p| &p.key))
                .bind(col(|p| &p.kind))
                .bind(col(|p| &p.namespace))
                .bind(col(|p| &p.name))
                .bind(kind_keys)
                .bind(namespace_keys)
                .bind(lifecycles)
                .bind(types)
                .bind(bodies)
                .bind(col(|p| &p.etag))
                .bind(origin)
                .bind(at)
                .bind(col(|p| &p.name_key))
                .bind(owners)
                .bind(owner_refs)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        Ok(written)
    }

    pub(super) async fn insert_tags(
        conn: &mut sqlx::PgConnection,
        tags: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        for chunk in tags.chunks(ROWS_PER_UNNEST) {
            let keys: Vec<&str> = chunk.iter().map(|(k, _)| *k).collect();
            let values: Vec<&str> = chunk.iter().map(|(_, t)| *t).collect();
            sqlx::query(
                "INSERT INTO entity_tags (entity_ref, tag) \
                 SELECT * FROM UNNEST($1::text[], $2::text[])",
            )
            .bind(keys)
            .bind(values)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Deletes the relations these entities declared (their incoming
    /// side is the same rows, read through an index).
    pub(super) async fn clear_declared(
        conn: &mut sqlx::PgConnection,
        keys: &[&str],
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM entity_relations_declared WHERE origin_ref = ANY($1)")
            .bind(keys)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub(super) async fn insert_relations(
        conn: &mut sqlx::PgConnection,
        rows: &[&Prepared],
    ) -> Result<(), StoreError> {
        let relations: Vec<(&Prepared, &RelationRow)> = rows
            .iter()
            .flat_map(|p| p.relations.iter().map(move |r| (*p, r)))
            .collect();
        for chunk in relations.chunks(ROWS_PER_UNNEST) {
            let origins: Vec<&str> = chunk.iter().map(|(p, _)| p.key.as_str()).collect();
            let kinds: Vec<&str> = chunk.iter().map(|(_, r)| r.kind).collect();
            let targets: Vec<&str> = chunk.iter().map(|(_, r)| r.target_key.as_str()).collect();
            let refs: Vec<&str> = chunk.iter().map(|(_, r)| r.target_ref.as_str()).collect();
            let reverses: Vec<&str> = chunk.iter().map(|(_, r)| r.reverse).collect();
            let sources: Vec<&str> = chunk.iter().map(|(p, _)| p.source_ref.as_str()).collect();
            sqlx::query(
                "INSERT INTO entity_relations_declared \
                 (origin_ref, type, target_key, target_ref, reverse_type, source_ref) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
                 $5::text[], $6::text[])",
            )
            .bind(origins)
            .bind(kinds)
            .bind(targets)
            .bind(refs)
            .bind(reverses)
            .bind(sources)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// What a source sync did to the catalog, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSyncSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// The source's entities it no longer returned, deleted.
    pub removed: usize,
    /// Entities the source returned that another origin owns: left as
    /// they are, each with its owner (`api` or `source:<id>`).
    pub conflicts: Vec<(String, String)>,
}

impl Store {
    /// Prepares the rows of the entities of a batch that will be written,
    /// as far as a glance at what is stored tells, before the writer's turn
    /// is taken: this CPU work (a tenth of a large batch's) then runs while
    /// another batch may be writing rather than inside the turn, where it
    /// also waited for the cores behind that other batch's parsing. An
    /// entity the glance took for unchanged is `None`; the turn's own
    /// reading decides, and [`rows_to_write`] makes what is missing.
    ///
    /// A batch too small for [`parallel_map`] to spread is left to the
    /// turn whole: preparing it costs less than the glance's read (a single
    /// `PUT` is one entity), so nothing is read or prepared here.
    async fn prepare_early(
        &self,
        pending: &[Pending<'_>],
        keys: &[&str],
    ) -> Result<Vec<Option<Prepared>>, StoreError> {
        if pending.len() < 2 * MIN_ITEMS_PER_THREAD {
            return Ok(pending.iter().map(|_| None).collect());
        }
        let seen = match &self.pool {
            Pool::Sqlite(pool) => sqlite::glance(&mut *pool.acquire().await?, keys).await?,
            Pool::Postgres(pool) => postgres::glance(&mut *pool.acquire().await?, keys).await?,
        };
        Ok(parallel_map(pending, |p| {
            let unchanged = seen.get(&p.key).is_some_and(|e| e.etag == p.etag);
            (!unchanged).then(|| Prepared::new(p))
        }))
    }

    /// Writes a batch of entities in one transaction, all or nothing, as
    /// owned by `origin`. Unchanged entities (same etag) are not rewritten.
    ///
    /// Fails without writing anything if two entities in the batch share a
    /// reference ([`StoreError::DuplicateEntity`]) or one of them belongs
    /// to another origin ([`StoreError::OriginConflict`]).
    pub async fn put_entities(
        &self,
        entities: &[Entity],
        origin: &Origin,
    ) -> Result<BatchSummary, StoreError> {
        let outcomes = self.write(entities, origin, None).await?;
        let mut summary = BatchSummary::default();
        for outcome in outcomes {
            match outcome {
                WriteOutcome::Created => summary.added += 1,
                WriteOutcome::Updated => summary.updated += 1,
                WriteOutcome::Unchanged => summary.unchanged += 1,
            }
        }
        Ok(summary)
    }

    /// Writes one entity and returns it as stored. With `if_match`, fails
    /// with [`StoreError::PreconditionFailed`] unless the stored etag
    /// matches (or, for [`IfMatch::Any`], the entity exists).
    pub async fn put_entity(
        &self,
        entity: &Entity,
        origin: &Origin,
        if_match: Option<&IfMatch>,
    ) -> Result<(WriteOutcome, StoredEntity), StoreError> {
        let outcome = self
            .write(std::slice::from_ref(entity), origin, if_match)
            .await?[0];
        let stored = self.entity(&entity.entity_ref()).await?.ok_or_else(|| {
            // Deleted by someone else between our commit and this read.
            StoreError::InvalidData(format!(
                "entity {} vanished right after it was written",
                entity.entity_ref()
            ))
        })?;
        Ok((outcome, stored))
    }

    async fn write(
        &self,
        entities: &[Entity],
        origin: &Origin,
        if_match: Option<&IfMatch>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let prepared: Vec<Pending<'_>> = parallel_map(entities, Pending::new);
        let mut seen = HashSet::with_capacity(prepared.len());
        for p in &prepared {
            if !seen.insert(p.key.as_str()) {
                return Err(StoreError::DuplicateEntity(p.key.clone()));
            }
        }
        let keys: Vec<&str> = prepared.iter().map(|p| p.key.as_str()).collect();
        let early = self.prepare_early(&prepared, &keys).await?;
        self.write_prepared(&prepared, &keys, &early, origin, if_match)
            .await
    }

    /// The writer's half of [`Store::write`]: `keys` are `prepared`'s,
    /// `early` is what [`Store::prepare_early`] made of them.
    async fn write_prepared(
        &self,
        prepared: &[Pending<'_>],
        keys: &[&str],
        early: &[Option<Prepared>],
        origin: &Origin,
        if_match: Option<&IfMatch>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let origin_text = origin.to_string();
        let at = now();
        let outcomes = in_write_transaction!(self, |backend, conn| {
            let existing = backend::existing(conn, keys).await?;
            let outcomes = plan(prepared, &existing, origin, if_match)?;
            let mut chosen = Vec::new();
            let mut stored = Vec::new();
            for (i, (p, outcome)) in prepared.iter().zip(&outcomes).enumerate() {
                match outcome {
                    WriteOutcome::Unchanged => continue,
                    WriteOutcome::Updated => stored.push(p.key.as_str()),
                    WriteOutcome::Created => {}
                }
                chosen.push(i);
            }
            let mut late = Vec::new();
            let changed = rows_to_write(prepared, early, &chosen, &mut late);
            if !changed.is_empty() {
                backend::write(conn, &changed, &stored, &origin_text, at).await?;
            }
            outcomes
        });
        Ok(outcomes)
    }

    /// Makes the catalog hold exactly what source `source_id` returned in a
    /// complete sync, in one transaction: its new and changed entities are
    /// written, unchanged ones are left alone, and the entities it owned but
    /// no longer returned (orphans) are deleted, except those whose keys
    /// are in `keep` (entities the source did return but in a form we
    /// refused: their last good version stays). Entities owned by another
    /// origin are never touched; they come back in
    /// [`SourceSyncSummary::conflicts`].
    ///
    /// The entities must have distinct references
    /// ([`StoreError::DuplicateEntity`] otherwise, with nothing written).
    pub async fn sync_source(
        &self,
        source_id: &str,
        entities: &[Entity],
        keep: &HashSet<String>,
    ) -> Result<SourceSyncSummary, StoreError> {
        let origin = Origin::Source(source_id.to_owned());
        let origin_text = origin.to_string();
        let pending: Vec<Pending<'_>> = parallel_map(entities, Pending::new);
        let mut returned = HashSet::with_capacity(pending.len());
        for p in &pending {
            if !returned.insert(p.key.as_str()) {
                return Err(StoreError::DuplicateEntity(p.key.clone()));
            }
        }
        let keys: Vec<&str> = pending.iter().map(|p| p.key.as_str()).collect();
        let early = self.prepare_early(&pending, &keys).await?;
        let at = now();
        let summary = in_write_transaction!(self, |backend, conn| {
            let existing = backend::existing(conn, &keys).await?;
            let mut summary = SourceSyncSummary::default();
            let mut chosen = Vec::new();
            let mut stored = Vec::new();
            for (i, p) in pending.iter().enumerate() {
                match existing.get(&p.key) {
                    Some(e) if e.origin != origin_text => {
                        summary.conflicts.push((p.key.clone(), e.origin.clone()));
                    }
                    Some(e) if e.etag == p.etag => summary.unchanged += 1,
                    Some(_) => {
                        summary.updated += 1;
                        stored.push(p.key.as_str());
                        chosen.push(i);
                    }
                    None => {
                        summary.added += 1;
                        chosen.push(i);
                    }
                }
            }
            let mut late = Vec::new();
            let changed = rows_to_write(&pending, &early, &chosen, &mut late);
            if !changed.is_empty() {
                backend::write(conn, &changed, &stored, &origin_text, at).await?;
            }
            let owned = backend::keys_of_origin(conn, &origin_text).await?;
            let orphans: Vec<&str> = owned
                .iter()
                .map(String::as_str)
                .filter(|k| !returned.contains(k) && !keep.contains(*k))
                .collect();
            if !orphans.is_empty() {
                backend::delete_many(conn, &orphans).await?;
            }
            summary.removed = orphans.len();
            summary
        });
        Ok(summary)
    }

    /// The entity with this reference (case-insensitive), with its
    /// relations.
    pub async fn entity(&self, entity: &EntityRef) -> Result<Option<StoredEntity>, StoreError> {
        let key = entity.key();
        match &self.pool {
            Pool::Sqlite(pool) => sqlite::get(&mut *pool.acquire().await?, &key).await,
            Pool::Postgres(pool) => postgres::get(&mut *pool.acquire().await?, &key).await,
        }
    }

    /// The entities with these references (case-insensitive), with their
    /// relations: one answer per reference, in order, `None` where there is
    /// none. A repeated reference is read once and answered each time. For
    /// lookups in bulk (a plugin's catalog lookups), one statement per
    /// 8,000 distinct references rather than one per reference.
    pub async fn entities(
        &self,
        refs: &[EntityRef],
    ) -> Result<Vec<Option<StoredEntity>>, StoreError> {
        let keys: Vec<String> = refs.iter().map(EntityRef::key).collect();
        let mut distinct: Vec<&str> = keys.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        let found = match &self.pool {
            Pool::Sqlite(pool) => sqlite::get_many(&mut *pool.acquire().await?, &distinct).await?,
            Pool::Postgres(pool) => {
                postgres::get_many(&mut *pool.acquire().await?, &distinct).await?
            }
        };
        let by_key: HashMap<String, StoredEntity> = found
            .into_iter()
            .map(|e| (e.entity.entity_ref().key(), e))
            .collect();
        Ok(keys.iter().map(|k| by_key.get(k).cloned()).collect())
    }

    /// Deletes an entity with the tags and relations it declared (relations
    /// other entities declare towards it stay, as in Backstage). Returns
    /// `false` if there was none; with `if_match`, fails with
    /// [`StoreError::PreconditionFailed`] unless the stored etag matches.
    pub async fn delete_entity(
        &self,
        entity: &EntityRef,
        if_match: Option<&IfMatch>,
    ) -> Result<bool, StoreError> {
        let key = entity.key();
        let deleted = in_write_transaction!(self, |backend, conn| {
            let existing = backend::existing(conn, &[key.as_str()]).await?;
            let current = existing.get(&key).map(|e| e.etag.clone());
            match if_match {
                Some(cond) if !cond.admits(current.as_deref()) => {
                    return Err(StoreError::PreconditionFailed {
                        entity: key,
                        current,
                    })
                }
                _ => {}
            }
            // With its tags and declared relations.
            backend::delete(conn, &key).await?
        });
        Ok(deleted)
    }

    /// How many entities each origin owns; for sync reports and tests.
    pub async fn count_entities_by_origin(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows: Vec<(String, i64)> = crate::store::on_pool!(&self.pool, pool => {
            sqlx::query_as("SELECT origin, COUNT(*) FROM entities GROUP BY origin")
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(o, n)| (o, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EntityQuery, FieldPath};

    #[test]
    fn origins_round_trip() {
        for o in [Origin::Api, Origin::Source("catalog-files".into())] {
            assert_eq!(o.to_string().parse::<Origin>(), Ok(o));
        }
        for bad in ["", "API", "source:", "plugin:x"] {
            assert!(bad.parse::<Origin>().is_err(), "{bad}");
        }
    }

    /// A re-sent batch that the glance before the writer's turn finds
    /// unchanged gets no early rows; when someone deletes one of its
    /// entities before the turn, the write creates it again with rows made
    /// in the turn, and every side of it (relations, tags, search, counts)
    /// is there. The batch is large enough to be glanced at.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entity_deleted_after_the_glance_is_written_whole() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let entity = Entity::from_value(serde_json::json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "payments", "tags": ["java"],
                         "description": "Takes card payments"},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team-a",
                     "system": "shop", "dependsOn": ["component:ledger"]}
        }))
        .unwrap();
        let mut batch = vec![entity.clone()];
        batch.extend((1..2 * MIN_ITEMS_PER_THREAD).map(|i| {
            Entity::from_value(serde_json::json!({
                "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": format!("filler-{i}")},
                "spec": {"type": "library", "lifecycle": "experimental", "owner": "team-b"}
            }))
            .unwrap()
        }));
        store.put_entities(&batch, &Origin::Api).await.unwrap();

        let pending: Vec<Pending<'_>> = batch.iter().map(Pending::new).collect();
        let keys: Vec<&str> = pending.iter().map(|p| p.key.as_str()).collect();
        let early = store.prepare_early(&pending, &keys).await.unwrap();
        assert!(
            early.iter().all(Option::is_none),
            "the glance saw them unchanged"
        );
        assert!(store
            .delete_entity(&entity.entity_ref(), None)
            .await
            .unwrap());

        let outcomes = store
            .write_prepared(&pending, &keys, &early, &Origin::Api, None)
            .await
            .unwrap();
        assert_eq!(outcomes[0], WriteOutcome::Created);
        assert!(outcomes[1..].iter().all(|o| *o == WriteOutcome::Unchanged));
        let stored = store.entity(&entity.entity_ref()).await.unwrap().unwrap();
        let mut relations: Vec<String> = stored
            .entity
            .relations
            .iter()
            .map(|r| format!("{} {}", r.kind, r.target_ref))
            .collect();
        relations.sort();
        assert_eq!(
            relations,
            [
                "dependsOn component:default/ledger",
                "ownedBy group:default/team-a",
                "partOf system:default/shop"
            ]
        );
        for query in [
            EntityQuery {
                tags: vec!["java".into()],
                ..EntityQuery::default()
            },
            EntityQuery {
                search: Some("card".into()),
                ..EntityQuery::default()
            },
        ] {
            let page = store.list_entities(&query).await.unwrap();
            assert_eq!(page.total, 1, "{query:?}");
        }
        let lifecycle = FieldPath::parse("spec.lifecycle").unwrap();
        let facets = store
            .entity_facets(&EntityQuery::default(), &[lifecycle])
            .await
            .unwrap();
        let counts: BTreeMap<String, u64> = facets
            .into_values()
            .flatten()
            .map(|c| (c.value, c.count))
            .collect();
        let fillers = (2 * MIN_ITEMS_PER_THREAD - 1) as u64;
        assert_eq!(
            counts,
            BTreeMap::from([
                ("experimental".to_owned(), fillers),
                ("production".to_owned(), 1)
            ])
        );
    }

    #[test]
    fn if_match_needs_a_current_entity() {
        assert!(!IfMatch::Any.admits(None));
        assert!(IfMatch::Any.admits(Some("a")));
        let etags = IfMatch::Etags(vec!["a".into(), "b".into()]);
        assert!(etags.admits(Some("b")));
        assert!(!etags.admits(Some("c")));
        assert!(!etags.admits(None));
    }
}
